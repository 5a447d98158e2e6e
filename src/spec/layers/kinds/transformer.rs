//! Transformer: a causal (each step sees only the past) pre-norm block,
//! self-attention then a feed-forward network, `[t, d] -> [t, d]`.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, count};
use crate::spec::layers::shapes::{Rule, sequence};

pub(super) static KIND: LayerKind = LayerKind {
    name: "Transformer",
    help: "Text: causal self-attention then a feed-forward net; each step looks at the past.",
    takes_tokens: false,
    prunable: true,
    has_params: true,
    template: || LayerSpec::Transformer {
        heads: 4,
        width: 128,
    },
    fields,
    shape,
    pytorch_scripts: Scripts::Text,
    pytorch,
    inference: |_| Inference::Opaque,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::Transformer { heads, width } = layer else {
        return Vec::new();
    };
    vec![
        count(
            "heads",
            "Attention heads: each looks for a different kind of relation.",
            heads,
            1,
            64,
        ),
        count(
            "width",
            "Hidden size of the feed-forward part (4 x the input is usual).",
            width,
            1,
            16384,
        ),
    ]
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let &LayerSpec::Transformer { heads, width } = layer else {
        return Err(not_this_kind(KIND.name));
    };
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

/// The text script's `TransformerBlock` module (its template defines it).
fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let LayerSpec::Transformer { heads, width: ff } = layer else {
        return not_this_kind(KIND.name);
    };
    let width = shape.last().copied().unwrap_or(1);
    format!("TransformerBlock({width}, heads={heads}, width={ff})")
}
