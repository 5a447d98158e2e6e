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

use candle_core::{DType, Device};

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
    let loaded = match model.load(&weights) {
        Ok(loaded) => loaded,
        Err(source) => {
            return Err(InferError::Weights {
                path: weights,
                source,
            });
        }
    };
    Ok(SavedModel {
        model,
        experiment: exp,
        vocab,
        classes,
        // A study trial's `trial_weights: F16` file, widened to f32 on loading.
        half_precision: loaded.values().any(|t| t.dtype() == DType::F16),
    })
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
    use candle_core::{DType, Device};

    use super::load_saved_model_with;
    use crate::model::Model;
    use crate::runs::files;
    use crate::spec::{Experiment, dataset_io};

    #[test]
    fn a_model_says_whether_its_weights_were_kept_in_half_precision() {
        let dir = tempfile::tempdir().expect("tmp");
        let exp = Experiment::default();
        let input = dataset_io(&exp.dataset, exp.seed).0;
        let model = Model::build(&exp.model, &input, exp.seed, &Device::Cpu).expect("model");
        let weights = dir.path().join(files::WEIGHTS);
        model.save(&weights).expect("save");
        let saved = load_saved_model_with(dir.path(), exp.clone()).expect("loads");
        assert!(!saved.half_precision);
        let halved = candle_core::safetensors::load(&weights, &Device::Cpu)
            .expect("load")
            .into_iter()
            .map(|(name, t)| (name, t.to_dtype(DType::F16).expect("f16")))
            .collect();
        crate::util::atomic::write_safetensors(&weights, &halved).expect("write");
        let saved = load_saved_model_with(dir.path(), exp.clone()).expect("loads");
        assert!(saved.half_precision);
        // Loaded widened: the model's own tensors stay f32.
        let back = saved.model.forward(
            &candle_core::Tensor::zeros((1, 1, 28, 28), DType::F32, &Device::Cpu).expect("x"),
            crate::model::Mode::Eval,
        );
        assert_eq!(back.expect("forward").dtype(), DType::F32);
        std::fs::write(&weights, b"\x10\0\0\0\0\0\0\0not json at all!").expect("write");
        assert!(
            load_saved_model_with(dir.path(), exp).is_err(),
            "not a weight file"
        );
    }
}
