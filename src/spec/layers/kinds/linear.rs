//! Linear: fully connected, `[n] -> [out]` (or each step of `[t, n]`).

use super::{Inference, LayerKind, Scripts, not_this_kind};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::editing::{LayerField, count};
use crate::spec::layers::shapes::Rule;

pub(super) static KIND: LayerKind = LayerKind {
    name: "Linear",
    help: "Fully connected: every output is a weighted sum of all inputs plus a bias.",
    takes_tokens: false,
    prunable: true,
    has_params: true,
    template: || LayerSpec::Linear { out: 64 },
    fields,
    shape,
    pytorch_scripts: Scripts::Both,
    pytorch,
    inference: |_| Inference::Dense,
};

fn fields(layer: &mut LayerSpec) -> Vec<LayerField<'_>> {
    let LayerSpec::Linear { out } = layer else {
        return Vec::new();
    };
    vec![count(
        "out",
        "Number of output features (neurons) of this layer.",
        out,
        1,
        8192,
    )]
}

fn shape(layer: &LayerSpec, _: usize, shape: &[usize]) -> Rule {
    let &LayerSpec::Linear { out } = layer else {
        return Err(not_this_kind(KIND.name));
    };
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

fn pytorch(layer: &LayerSpec, shape: &[usize]) -> String {
    let LayerSpec::Linear { out } = layer else {
        return not_this_kind(KIND.name);
    };
    format!("nn.Linear({}, {out})", shape[0])
}
