//! Flatten: everything into one vector, `[c, h, w] -> [c*h*w]`.

use super::{Inference, LayerKind, Scripts, no_fields};
use crate::spec::layers::LayerSpec;

pub(super) static KIND: LayerKind = LayerKind {
    name: "Flatten",
    help: "Turns a [channels, height, width] image into one long vector for Linear layers.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::Flatten,
    fields: no_fields,
    shape: |_, _, shape| Ok((vec![shape.iter().product()], 0)),
    pytorch_scripts: Scripts::Both,
    pytorch: |_, _| "nn.Flatten()".into(),
    inference: |_| Inference::Flatten,
};
