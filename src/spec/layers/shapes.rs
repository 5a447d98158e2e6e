//! Walking the layer list through each kind's shape rule (`kinds/`): what one
//! sample looks like after each layer and how many parameters it has, or the
//! first layer that cannot take its input. The model table, validation and the
//! builder all walk the list with [`infer_shapes`], so they never disagree.
//! The rules' shared parts (recurrent layers, sequences) live here.

use super::{LayerSpec, Shape};
use crate::spec::validate::ValidationError;

/// Output shape and parameter count of one layer, as shown in model tables.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerShapeInfo {
    /// Layer kind, e.g. "Conv2d".
    pub kind: &'static str,
    /// Shape of one sample after this layer.
    pub output: Shape,
    /// Trainable parameters in this layer.
    pub params: usize,
}

/// Walks the layer list from `input`, returning each layer's output shape and
/// parameter count, or the first layer that cannot accept its input.
pub fn infer_shapes(
    layers: &[LayerSpec],
    input: &[usize],
) -> Result<Vec<LayerShapeInfo>, ValidationError> {
    let mut shape: Shape = input.to_vec();
    let mut out = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let (next, params) = (layer.descriptor().shape)(layer, i, &shape).map_err(|message| {
            ValidationError::new(format!("model[{i}] ({})", layer.kind()), message)
        })?;
        shape = next;
        out.push(LayerShapeInfo {
            kind: layer.kind(),
            output: shape.clone(),
            params,
        });
    }
    Ok(out)
}

/// What a layer's rule returns: (output shape, parameters), or what is wrong.
/// Boundary: the text is the message of the [`ValidationError`] that
/// [`infer_shapes`] makes, which adds the layer's field (`model[i] (Kind)`).
pub(super) type Rule = Result<(Shape, usize), String>;

/// LSTM (4 gates) and GRU (3 gates).
pub(super) fn recurrent(
    gates: usize,
    hidden: usize,
    layers: usize,
    dropout: f64,
    shape: &[usize],
) -> Rule {
    let [t, d] = sequence(shape)?;
    if hidden == 0 || layers == 0 {
        return Err("hidden and layers must be at least 1".into());
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(format!("dropout = {dropout} must be in [0, 1)"));
    }
    let bias = if gates == 4 { 4 * hidden } else { 6 * hidden };
    let params = (0..layers)
        .map(|l| {
            let input = if l == 0 { d } else { hidden };
            gates * hidden * (input + hidden) + bias
        })
        .sum();
    Ok((vec![t, hidden], params))
}

/// The `[steps, features]` of a sequence, or why the shape is not one (a
/// [`Rule`]'s words). Boundary: part of a Rule's message, above.
pub(super) fn sequence(shape: &[usize]) -> Result<[usize; 2], String> {
    match shape {
        [t, d] => Ok([*t, *d]),
        _ => Err(format!(
            "needs a sequence [steps, features] but gets {shape:?}; \
             put Embedding first and no pooling before it"
        )),
    }
}
