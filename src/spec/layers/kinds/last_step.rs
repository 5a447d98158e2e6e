//! LastStep: the last step only (sequences are padded on the left), `[t, d] -> [d]`.

use super::{Inference, LayerKind, Scripts, no_fields};
use crate::spec::layers::LayerSpec;
use crate::spec::layers::shapes::sequence;

pub(super) static KIND: LayerKind = LayerKind {
    name: "LastStep",
    help: "Text classifiers: keeps only the last step's vector.",
    takes_tokens: false,
    prunable: false,
    has_params: false,
    template: || LayerSpec::LastStep,
    fields: no_fields,
    shape: |_, _, shape| {
        let [_, d] = sequence(shape)?;
        Ok((vec![d], 0))
    },
    pytorch_scripts: Scripts::Text,
    // The text script's module (its template defines it).
    pytorch: |_, _| "LastStep()".into(),
    inference: |_| Inference::LastStep,
};
