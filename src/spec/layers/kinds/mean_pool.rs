//! MeanPool: the mean over the (non-padding) steps, `[t, d] -> [d]`.

use super::{Inference, LayerKind, Scripts, no_fields};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::shapes::sequence;

pub(super) static KIND: LayerKind = LayerKind {
    name: "MeanPool",
    help: "Text classifiers: averages the steps into one vector.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::MeanPool,
    fields: no_fields,
    shape: |_, _, shape| {
        let [_, d] = sequence(shape)?;
        Ok((vec![d], 0))
    },
    pytorch_scripts: Scripts::Text,
    // The text script's module (its template defines it).
    pytorch: |_, _| "MeanPool()".into(),
    inference: |_| Inference::MeanPool,
};
