//! PositionEmbedding: learned position vectors added to each step,
//! `[t, d] -> [t, d]` with t <= context.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, count};
use crate::spec::layers::shapes::{Rule, sequence};

pub(super) static KIND: LayerKind = LayerKind {
    name: "PositionEmbedding",
    help: "Text: adds a learned vector per position, so attention knows word order.",
    takes_tokens: false,
    prunable: false,
    has_params: true,
    template: || LayerSpec::PositionEmbedding { context: 64 },
    fields,
    shape,
    pytorch_scripts: Scripts::Text,
    pytorch,
    inference: |_| Inference::Opaque,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::PositionEmbedding { context } = layer else {
        return Vec::new();
    };
    vec![count(
        "context",
        "Longest sequence the model can read.",
        context,
        1,
        4096,
    )]
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let &LayerSpec::PositionEmbedding { context } = layer else {
        return Err(not_this_kind(KIND.name));
    };
    let [t, d] = sequence(shape)?;
    if t > context {
        return Err(format!(
            "sequences have {t} steps but context is {context}; raise context to at least {t}"
        ));
    }
    Ok((shape.to_vec(), context * d))
}

/// The text script's `PositionEmbedding` module (its template defines it).
fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let LayerSpec::PositionEmbedding { context } = layer else {
        return not_this_kind(KIND.name);
    };
    let width = shape.last().copied().unwrap_or(1);
    format!("PositionEmbedding({context}, {width})")
}
