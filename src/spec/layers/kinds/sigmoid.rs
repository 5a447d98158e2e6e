//! Sigmoid: an elementwise activation; the shape is unchanged.

use super::{Elementwise, Inference, LayerKind, Scripts, no_fields, same_shape};
use crate::spec::layers::LayerSpec;

pub(super) static KIND: LayerKind = LayerKind {
    name: "Sigmoid",
    help: "Squashes values into (0, 1).",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::Sigmoid,
    fields: no_fields,
    shape: same_shape,
    pytorch_scripts: Scripts::Both,
    pytorch: |_, _| "nn.Sigmoid()".into(),
    inference: |_| Inference::Elementwise(Elementwise::Sigmoid),
};
