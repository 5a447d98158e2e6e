//! The shape rule of every layer kind: what one sample looks like after the
//! layer and how many parameters it has, or why it cannot take its input. The
//! model table, validation and the builder all walk the list with
//! [`infer_shapes`], so they never disagree.

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
        let (next, params) = layer.output(i, &shape).map_err(|message| {
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
type Rule = Result<(Shape, usize), String>;

impl LayerSpec {
    /// The shape after this layer (the `index`-th) given `shape`, and its
    /// parameter count.
    fn output(&self, index: usize, shape: &[usize]) -> Rule {
        match self {
            Self::Linear { out } => linear(*out, shape),
            Self::Conv2d {
                out,
                kernel,
                stride,
                padding,
            } => conv2d(*out, *kernel, *stride, *padding, shape),
            Self::MaxPool2d { kernel, stride } => {
                max_pool(*kernel, stride.unwrap_or(*kernel), shape)
            }
            Self::Flatten => Ok((vec![shape.iter().product()], 0)),
            Self::ReLU | Self::Tanh | Self::Sigmoid | Self::GELU => Ok((shape.to_vec(), 0)),
            Self::Dropout { p } => {
                if !(0.0..1.0).contains(p) {
                    return Err(format!("p = {p} must be in [0, 1)"));
                }
                Ok((shape.to_vec(), 0))
            }
            Self::BatchNorm { momentum, eps } => batch_norm(*momentum, *eps, shape),
            Self::Embedding { dim } => embedding(index, *dim, shape),
            Self::LSTM {
                hidden,
                layers,
                dropout,
            } => recurrent(4, *hidden, *layers, *dropout, shape),
            Self::GRU {
                hidden,
                layers,
                dropout,
            } => recurrent(3, *hidden, *layers, *dropout, shape),
            Self::PositionEmbedding { context } => {
                let [t, d] = sequence(shape)?;
                if t > *context {
                    return Err(format!(
                        "sequences have {t} steps but context is {context}; raise context to at least {t}"
                    ));
                }
                Ok((shape.to_vec(), context * d))
            }
            Self::Transformer { heads, width } => transformer(*heads, *width, shape),
            Self::MeanPool | Self::LastStep => {
                let [_, d] = sequence(shape)?;
                Ok((vec![d], 0))
            }
        }
    }
}

fn linear(out: usize, shape: &[usize]) -> Rule {
    if out == 0 {
        return Err("out must be at least 1".into());
    }
    match shape {
        [n] => Ok((vec![out], n * out + out)),
        [t, n] => Ok((vec![*t, out], n * out + out)),
        _ => Err(format!(
            "Linear needs a flat input but gets {shape:?}; put Flatten before it"
        )),
    }
}

fn conv2d(out: usize, kernel: usize, stride: usize, padding: usize, shape: &[usize]) -> Rule {
    if out == 0 || kernel == 0 || stride == 0 {
        return Err("out, kernel and stride must be at least 1".into());
    }
    let [c, h, w] = shape else {
        return Err(format!(
            "Conv2d needs a [channels, height, width] input but gets {shape:?}; \
             convolutions must come before Flatten"
        ));
    };
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    if hp < kernel || wp < kernel {
        return Err(format!(
            "kernel {kernel} is larger than the padded input {hp}x{wp}; \
             use a smaller kernel or fewer pooling layers before it"
        ));
    }
    let ho = (hp - kernel) / stride + 1;
    let wo = (wp - kernel) / stride + 1;
    Ok((vec![out, ho, wo], out * c * kernel * kernel + out))
}

fn max_pool(kernel: usize, stride: usize, shape: &[usize]) -> Rule {
    if kernel == 0 || stride == 0 {
        return Err("kernel and stride must be at least 1".into());
    }
    let [c, h, w] = shape else {
        return Err(format!(
            "MaxPool2d needs a [channels, height, width] input but gets {shape:?}"
        ));
    };
    if *h < kernel || *w < kernel {
        return Err(format!(
            "window {kernel} is larger than the input {h}x{w}; remove this pooling layer"
        ));
    }
    Ok((
        vec![*c, (h - kernel) / stride + 1, (w - kernel) / stride + 1],
        0,
    ))
}

fn batch_norm(momentum: f64, eps: f64, shape: &[usize]) -> Rule {
    if !(0.0..=1.0).contains(&momentum) || eps <= 0.0 {
        return Err("momentum must be in [0, 1] and eps > 0".into());
    }
    let features = match shape {
        [n] | [n, _, _] => *n,
        _ => return Err(format!("BatchNorm cannot normalise {shape:?}")),
    };
    Ok((shape.to_vec(), 2 * features))
}

fn embedding(index: usize, dim: usize, shape: &[usize]) -> Rule {
    if index != 0 {
        return Err("Embedding reads token ids, so it must be the first layer".into());
    }
    let [t, vocab] = shape else {
        return Err(format!(
            "Embedding needs text input (token ids) but gets {shape:?}; \
             use it with a Text dataset"
        ));
    };
    if dim == 0 {
        return Err("dim must be at least 1".into());
    }
    Ok((vec![*t, dim], vocab * dim))
}

/// LSTM (4 gates) and GRU (3 gates).
fn recurrent(gates: usize, hidden: usize, layers: usize, dropout: f64, shape: &[usize]) -> Rule {
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

fn transformer(heads: usize, width: usize, shape: &[usize]) -> Rule {
    let [_, d] = sequence(shape)?;
    if heads == 0 || d % heads != 0 {
        return Err(format!(
            "the input has {d} features, which must divide by heads = {heads}"
        ));
    }
    if width == 0 {
        return Err("width must be at least 1 (4 x the input size is usual)".into());
    }
    let params = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * width + width) + (width * d + d);
    Ok((shape.to_vec(), params))
}

/// The `[steps, features]` of a sequence, or why the shape is not one (a
/// [`Rule`]'s words). Boundary: part of a Rule's message, above.
fn sequence(shape: &[usize]) -> Result<[usize; 2], String> {
    match shape {
        [t, d] => Ok([*t, *d]),
        _ => Err(format!(
            "needs a sequence [steps, features] but gets {shape:?}; \
             put Embedding first and no pooling before it"
        )),
    }
}
