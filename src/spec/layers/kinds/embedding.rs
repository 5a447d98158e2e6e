//! Embedding: token ids to vectors, `[t, vocab] -> [t, dim]` (the input is
//! written as one-hot rows; the vocabulary size comes from the data).

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, count};
use crate::spec::layers::shapes::Rule;

pub(super) static KIND: LayerKind = LayerKind {
    name: "Embedding",
    help: "Text: turns each token id into a learned vector (first layer of a text model).",
    takes_tokens: true,
    prunable: false,
    has_params: true,
    template: || LayerSpec::Embedding { dim: 32 },
    fields,
    shape,
    pytorch_scripts: Scripts::Text,
    pytorch,
    inference: |_| Inference::Lookup,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::Embedding { dim } = layer else {
        return Vec::new();
    };
    vec![count(
        "dim",
        "Size of each token's learned vector.",
        dim,
        1,
        4096,
    )]
}

fn shape(layer: &LayerSpec, index: usize, shape: &[usize]) -> Rule {
    let &LayerSpec::Embedding { dim } = layer else {
        return Err(not_this_kind(KIND.name));
    };
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

/// `shape` is `[t, vocab]`: the shape rule keeps Embedding first.
fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let LayerSpec::Embedding { dim } = layer else {
        return not_this_kind(KIND.name);
    };
    let vocab = shape.last().copied().unwrap_or(0);
    format!("nn.Embedding({vocab}, {dim})")
}
