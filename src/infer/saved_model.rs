//! Trained models read back from run folders: the one place that knows how a
//! run's experiment and files become a model again (image classifiers, text
//! models with their vocabulary and output layer, DQN Q-networks), and which file
//! a weight path names. Used by fine-tuning (`training.init_from`), the GUI's
//! trained-model views and `text::Generator` / `text::Classifier`.
//!
//! Contract: models are built on the CPU from the run's own `experiment.ron` (so
//! the layer list matches the weights) and every saved tensor must load; errors
//! ([`InferError`]) name the file.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::InferError;
use crate::data::text::Vocab;
use crate::events::TrainEvent;
use crate::model::Model;
use crate::runs::{files, read_events};
use crate::spec::{DatasetSpec, Experiment, TextTask, dataset_io, load_file, text_steps};

/// A model with the weights of a finished (or stopped) run.
pub struct SavedModel {
    /// The model, weights loaded, on the CPU.
    pub model: Model,
    /// The experiment that trained it.
    pub experiment: Experiment,
    /// Text runs: the vocabulary the token ids come from.
    pub vocab: Option<Vocab>,
    /// Class names by label (empty for language models and mazes).
    pub classes: Vec<String>,
    /// Whether the weight file holds half-precision tensors (a study trial's
    /// `trial_weights: F16`): figures computed from this model can differ slightly
    /// from the run's own record, measured with the weights as trained.
    pub half_precision: bool,
}

/// The weight file a path names: a run folder's `model.safetensors`, a checkpoint
/// folder's, or the path itself when it is a file.
pub fn weights_file(from: &Path) -> PathBuf {
    if from.is_dir() {
        from.join(files::WEIGHTS)
    } else {
        from.to_path_buf()
    }
}

/// Loads the run in `run_dir` with the experiment it recorded.
pub fn load_saved_model(run_dir: &Path) -> Result<SavedModel, InferError> {
    let exp = load_file(&run_dir.join(files::EXPERIMENT))?;
    load_saved_model_with(run_dir, exp)
}

/// Loads the weights of `run_dir` into the model `exp` describes.
pub fn load_saved_model_with(run_dir: &Path, exp: Experiment) -> Result<SavedModel, InferError> {
    let (input, head, vocab, classes) = match &exp.dataset {
        DatasetSpec::Images(spec) => {
            let input = dataset_io(&exp.dataset, exp.seed).0;
            // A folder's classes are its subfolders, recorded when the run started.
            let classes = if spec.is_folder() {
                classes_of(run_dir)?
            } else {
                crate::data::class_names(spec.name)
            };
            (input, None, None, classes)
        }
        DatasetSpec::Gridworld(_) | DatasetSpec::Points(_) => {
            let input = dataset_io(&exp.dataset, exp.seed).0;
            (input, None, None, Vec::new())
        }
        DatasetSpec::Text(spec) => {
            let vocab = Vocab::load(&run_dir.join(files::VOCAB))?;
            let (outputs, classes) = match &spec.task {
                TextTask::LanguageModel(_) => (vocab.len(), Vec::new()),
                TextTask::Classification(c) => {
                    let classes = classes_of(run_dir)?;
                    (if c.binary { 1 } else { classes.len() }, classes)
                }
            };
            // Token ids in, so the input's second size is the vocabulary.
            let input = vec![text_steps(spec), vocab.len()];
            (input, Some(outputs), Some(vocab), classes)
        }
    };
    let model = Model::build_with_head(&exp.model, &input, head, exp.seed, &Device::Cpu).map_err(
        |source| InferError::Build {
            dir: run_dir.to_path_buf(),
            source,
        },
    )?;
    let weights = run_dir.join(files::WEIGHTS);
    if let Err(source) = model.load(&weights) {
        return Err(InferError::Weights {
            path: weights,
            source,
        });
    }
    Ok(SavedModel {
        model,
        experiment: exp,
        vocab,
        classes,
        half_precision: holds_half_precision(&weights),
    })
}

/// Whether a safetensors file holds an F16 tensor, read from its header (an
/// 8-byte little-endian length, then that many bytes of JSON); false for a file
/// that cannot be read as one.
pub fn holds_half_precision(path: &Path) -> bool {
    use std::io::Read;
    let read = || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(path)?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        let mut header = Vec::new();
        file.take(len.min(100 << 20)).read_to_end(&mut header)?;
        Ok(header)
    };
    let Ok(header) = read() else { return false };
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice(&header) else {
        return false;
    };
    entries
        .values()
        .any(|e| e.get("dtype").and_then(|d| d.as_str()) == Some("F16"))
}

/// Class names recorded in the run's Started event.
fn classes_of(run_dir: &Path) -> Result<Vec<String>, InferError> {
    let events = read_events(run_dir).map_err(|source| InferError::Record {
        dir: run_dir.to_path_buf(),
        source,
    })?;
    events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Started(info) => Some(info.classes.clone()),
            _ => None,
        })
        .ok_or_else(|| InferError::NoStartedEvent {
            dir: run_dir.to_path_buf(),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{DType, Device, Tensor};

    use super::holds_half_precision;

    #[test]
    fn half_precision_is_read_from_the_header() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = Tensor::ones((3, 4), DType::F32, &Device::Cpu).expect("tensor");
        let n = Tensor::new(&[7u32], &Device::Cpu).expect("tensor");
        let write = |name: &str, w: &Tensor| {
            let path = dir.path().join(name);
            let map = HashMap::from([("w".to_string(), w.clone()), ("n".to_string(), n.clone())]);
            crate::util::atomic::write_safetensors(&path, &map).expect("write");
            path
        };
        assert!(!holds_half_precision(&write("f32", &w)));
        let half = w.to_dtype(DType::F16).expect("f16");
        assert!(holds_half_precision(&write("f16", &half)));
        let bf16 = w.to_dtype(DType::BF16).expect("bf16");
        assert!(!holds_half_precision(&write("bf16", &bf16)), "F16 only");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"\x10\0\0\0\0\0\0\0not json at all!").expect("write");
        assert!(!holds_half_precision(&junk));
        assert!(!holds_half_precision(&dir.path().join("missing")));
    }
}
