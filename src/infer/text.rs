//! Using a trained text model outside the worker: load a run folder
//! (experiment.ron + model.safetensors + vocab.json) and generate text or classify
//! sentences. The GUI uses this after a run; during a run it sends
//! `Probe::Generate` / `Probe::ClassifyText` instead.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::generate::{Sampling, generate};

use super::InferError;
use super::saved_model::{SavedModel, load_saved_model};
use crate::data::text::Vocab;
use crate::model::{Mode, Model};
use crate::spec::{DatasetSpec, TextDatasetSpec, TextTask};
use crate::util::rng::Rng;

/// The pieces every text model shares once loaded.
struct Loaded {
    model: Model,
    vocab: Vocab,
    spec: TextDatasetSpec,
}

fn load(run_dir: &Path) -> Result<(Loaded, Vec<String>), InferError> {
    let SavedModel {
        model,
        experiment,
        vocab,
        classes,
        ..
    } = load_saved_model(run_dir)?;
    let (DatasetSpec::Text(spec), Some(vocab)) = (experiment.dataset, vocab) else {
        return Err(InferError::WrongKind {
            dir: run_dir.to_path_buf(),
            problem: "is not a text run",
        });
    };
    Ok((Loaded { model, vocab, spec }, classes))
}

/// A trained language model, ready to write.
pub struct Generator {
    loaded: Loaded,
}

impl Generator {
    /// Loads a finished language-model run.
    pub fn load(run_dir: &Path) -> Result<Self, InferError> {
        let (loaded, _) = load(run_dir)?;
        if !matches!(loaded.spec.task, TextTask::LanguageModel(_)) {
            return Err(InferError::WrongKind {
                dir: run_dir.to_path_buf(),
                problem: "is a classifier, not a language model",
            });
        }
        Ok(Self { loaded })
    }

    /// Continues `prompt` with `len` tokens; the same seed gives the same text.
    pub fn generate(
        &self,
        prompt: &str,
        temperature: f64,
        top_k: Option<usize>,
        len: usize,
        seed: u64,
    ) -> Result<String, InferError> {
        let s = Sampling {
            temperature,
            top_k,
            length: len,
        };
        let l = &self.loaded;
        generate(
            &l.model,
            &l.vocab,
            &Device::Cpu,
            prompt,
            &s,
            &mut Rng::new(seed),
        )
        .map_err(InferError::from)
    }
}

/// A trained text classifier.
pub struct Classifier {
    loaded: Loaded,
    /// Class names in label order.
    pub classes: Vec<String>,
}

impl Classifier {
    /// Loads a finished classification run.
    pub fn load(run_dir: &Path) -> Result<Self, InferError> {
        let (loaded, classes) = load(run_dir)?;
        if !matches!(loaded.spec.task, TextTask::Classification(_)) {
            return Err(InferError::WrongKind {
                dir: run_dir.to_path_buf(),
                problem: "is a language model, not a classifier",
            });
        }
        Ok(Self { loaded, classes })
    }

    /// Probability per class of `sentence`.
    pub fn probabilities(&self, sentence: &str) -> Result<Vec<f32>, InferError> {
        let l = &self.loaded;
        let TextTask::Classification(c) = &l.spec.task else {
            return Err(InferError::NotClassifier);
        };
        classify_text(
            &l.model,
            &l.vocab,
            &Device::Cpu,
            sentence,
            c.max_len,
            c.binary,
        )
        .map_err(InferError::from)
    }
}

/// Class probabilities of one text (binary heads: `[1 - p, p]`).
pub(crate) fn classify_text(
    model: &Model,
    vocab: &Vocab,
    device: &Device,
    text: &str,
    max_len: usize,
    binary: bool,
) -> candle_core::Result<Vec<f32>> {
    let ids = vocab.encode_padded(text, max_len);
    let x = Tensor::new(ids.as_slice(), device)?.unsqueeze(0)?;
    let logits = model.forward(&x, Mode::Eval)?;
    if binary {
        let p = candle_nn::ops::sigmoid(&logits)?
            .flatten_all()?
            .to_vec1::<f32>()?[0];
        Ok(vec![1.0 - p, p])
    } else {
        candle_nn::ops::softmax_last_dim(&logits)?
            .get(0)?
            .to_vec1::<f32>()
    }
}
