//! Dropout: zeroes each activation with probability `p` while training; the
//! identity at inference.

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, fraction};
use crate::spec::layers::shapes::Rule;

pub(super) static KIND: LayerKind = LayerKind {
    name: "Dropout",
    help: "Randomly zeroes activations while training so the net cannot rely on any one.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::Dropout { p: 0.2 },
    fields,
    shape,
    pytorch_scripts: Scripts::Both,
    pytorch,
    inference: |_| Inference::Identity,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::Dropout { p } = layer else {
        return Vec::new();
    };
    vec![fraction(
        "p",
        "Probability that an activation is zeroed during training (0.1-0.5 is usual).",
        p,
        0.95,
        Some(2),
    )]
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let LayerSpec::Dropout { p } = layer else {
        return Err(not_this_kind(KIND.name));
    };
    if !(0.0..1.0).contains(p) {
        return Err(format!("p = {p} must be in [0, 1)"));
    }
    Ok((shape.to_vec(), 0))
}

fn pytorch(layer: &LayerSpec, _: &[usize]) -> String {
    let LayerSpec::Dropout { p } = layer else {
        return not_this_kind(KIND.name);
    };
    format!("nn.Dropout(p={p})")
}
