//! GELU: an elementwise activation; the shape is unchanged.

use super::{Elementwise, Inference, LayerKind, Scripts, no_fields, same_shape};
use crate::spec::layers::LayerSpec;

// trainlab's GELU is the exact (erf) one, PyTorch's default.
pub(super) static KIND: LayerKind = LayerKind {
    name: "GELU",
    help: "A smooth ReLU, used in transformers.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::GELU,
    fields: no_fields,
    shape: same_shape,
    pytorch_scripts: Scripts::Both,
    pytorch: |_, _| "nn.GELU()".into(),
    inference: |_| Inference::Elementwise(Elementwise::Gelu),
};
