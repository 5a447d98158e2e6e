//! ReLU: an elementwise activation; the shape is unchanged.

use super::{Elementwise, Inference, LayerKind, Scripts, no_fields, same_shape};
use crate::spec::layers::LayerSpec;

pub(super) static KIND: LayerKind = LayerKind {
    name: "ReLU",
    help: "max(0, x): the non-linearity that lets stacked layers learn more than a line.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::ReLU,
    fields: no_fields,
    shape: same_shape,
    pytorch_scripts: Scripts::Both,
    pytorch: |_, _| "nn.ReLU()".into(),
    inference: |_| Inference::Elementwise(Elementwise::Relu),
};
