//! Starting from another run's weights (`training.init_from`) and freezing layers
//! (`training.freeze`). Loading matches tensors by name and shape; everything that
//! does not match is listed for a Note event, never skipped silently.

use std::path::Path;

use candle_core::{Device, Var};

use super::emitter::Emitter;
use super::error::InitFromError;
use super::worker::RunFailure;
use crate::events::TrainEvent;
use crate::infer::weights_file;
use crate::model::Model;
use crate::spec::TrainingSpec;

/// What `init_from` did.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct InitReport {
    /// Tensors loaded.
    pub loaded: Vec<String>,
    /// One line per model tensor left at its fresh value, and why.
    pub mismatched: Vec<String>,
}

/// Loads every tensor of `from` whose name and shape match one of `model`'s,
/// except those of the layers in `exclude`.
pub(crate) fn init_from(
    model: &Model,
    from: &Path,
    exclude: &[String],
    device: &Device,
) -> Result<InitReport, InitFromError> {
    if !from.exists() {
        // Usually the run it names (a lesson's first step) was never trained.
        return Err(InitFromError::Missing {
            from: from.to_path_buf(),
        });
    }
    let path = weights_file(from);
    let loaded = match candle_core::safetensors::load(&path, device) {
        Ok(loaded) => loaded,
        Err(source) => return Err(InitFromError::Read { path, source }),
    };
    let mut report = InitReport::default();
    let mut state: Vec<_> = model.state().into_iter().collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, dst) in state {
        if is_frozen(&name, exclude) {
            report
                .mismatched
                .push(format!("{name}: excluded by training.init_exclude"));
            continue;
        }
        match loaded.get(&name) {
            None => report
                .mismatched
                .push(format!("{name}: not in {}", path.display())),
            Some(src) if src.dims() != dst.dims() => report.mismatched.push(format!(
                "{name}: file has shape {:?}, model needs {:?}",
                src.dims(),
                dst.dims()
            )),
            Some(src) => {
                let copied = src
                    .to_dtype(dst.dtype())
                    .and_then(|s| s.contiguous())
                    .and_then(|src| dst.slice_set(&src, 0, 0));
                if let Err(source) = copied {
                    return Err(InitFromError::Copy { name, source });
                }
                report.loaded.push(name);
            }
        }
    }
    Ok(report)
}

/// Applies `training.init_from` (unless the run resumes from a checkpoint, which
/// holds its own weights) and `training.freeze` to a freshly built model; each
/// reports in a Note what it did. Returns the parameters that train.
pub(crate) fn init_and_freeze(
    model: &Model,
    t: &TrainingSpec,
    device: &Device,
    resuming: bool,
    emitter: &mut Emitter,
) -> Result<Vec<Var>, RunFailure> {
    if let Some(from) = &t.init_from
        && !resuming
    {
        unmatched_pattern(model, "training.init_exclude", &t.init_exclude)?;
        let report = init_from(model, from, &t.init_exclude, device)?;
        let mut message = format!(
            "init_from {}: loaded {} tensor(s)",
            from.display(),
            report.loaded.len()
        );
        if !report.loaded.is_empty() {
            message.push_str(&format!(" ({})", report.loaded.join(", ")));
        }
        if !report.mismatched.is_empty() {
            message.push_str(&format!(
                "; {} kept their fresh values: {}",
                report.mismatched.len(),
                report.mismatched.join("; ")
            ));
        }
        emitter.emit(TrainEvent::Note { step: 0, message });
    }
    unmatched_pattern(model, "training.freeze", &t.freeze)?;
    let (vars, frozen) = trainable(model, &t.freeze);
    if !t.freeze.is_empty() {
        emitter.emit(TrainEvent::Note {
            step: 0,
            message: format!("frozen (not trained): {}", frozen.join(", ")),
        });
    }
    if vars.is_empty() {
        return Err(RunFailure::input(
            "every parameter is frozen; nothing would train",
        ));
    }
    Ok(vars)
}

/// An error naming the first of `patterns` that matches no parameter of `model`.
fn unmatched_pattern(model: &Model, field: &str, patterns: &[String]) -> Result<(), RunFailure> {
    let Some(unmatched) = patterns.iter().find(|f| {
        !model
            .params()
            .iter()
            .any(|(name, _)| is_frozen(name, std::slice::from_ref(f)))
    }) else {
        return Ok(());
    };
    let names: Vec<&str> = model.params().iter().map(|(n, _)| n.as_str()).collect();
    Err(RunFailure::input(format!(
        "{field}: {unmatched:?} matches no parameter; use a layer index (\"0\") or a name \
         prefix; this model's parameters are {}",
        names.join(", ")
    )))
}

/// Whether parameter `name` (`layers.3.weight`, `head.bias`) is frozen by one of
/// `freeze`'s entries: a layer index (`"3"`) or a name prefix (`"layers.3"`, `"head"`).
pub(crate) fn is_frozen(name: &str, freeze: &[String]) -> bool {
    freeze.iter().any(|f| {
        let prefix = if f.chars().all(|c| c.is_ascii_digit()) {
            format!("layers.{f}.")
        } else {
            format!("{}.", f.trim_end_matches('.'))
        };
        name.starts_with(&prefix) || name == f
    })
}

/// The parameters that train, and the names of those that do not.
pub(crate) fn trainable(model: &Model, freeze: &[String]) -> (Vec<Var>, Vec<String>) {
    let mut vars = Vec::new();
    let mut frozen = Vec::new();
    for (name, var) in model.params() {
        if is_frozen(name, freeze) {
            frozen.push(name.clone());
        } else {
            vars.push(var.clone());
        }
    }
    (vars, frozen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_matches_indices_and_prefixes() {
        let f = vec!["1".to_string(), "head".to_string()];
        assert!(is_frozen("layers.1.weight_ih_l0", &f));
        assert!(!is_frozen("layers.10.weight", &f));
        assert!(is_frozen("head.bias", &f));
        assert!(!is_frozen("layers.0.weight", &f));
    }
}
