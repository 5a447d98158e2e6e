//! A trained model loaded back from a run folder, for the views that need one
//! (test-set analysis, first-layer weights, the digit canvas), plus the test-set
//! analysis itself.
//!
//! Contract: always runs on the CPU (one image or one test set: cheap), reads the
//! run's own `experiment.ron` so the layer list matches the weights, and
//! normalises pixels exactly as training did (`data::normalisation`; for an image
//! folder, the channel statistics of its training images, so the folder is read).
//! Errors ([`InferError`]) name the file.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::InferError;
use super::saved_model::load_saved_model_with;
use crate::data::{ImageSet, load_images, normalisation, standardise};
use crate::model::{Mode, Model};
use crate::runs::files;
use crate::spec::{DatasetSpec, Experiment, load_file};

/// A model with trained weights, ready for inference.
pub struct Predictor {
    model: Model,
    /// Per channel: mean and standard deviation of the training pixels.
    norm: Vec<(f32, f32)>,
    /// One image's shape, `[channels, rows, cols]`.
    input: [usize; 3],
    /// The run folder the weights came from.
    pub run_dir: PathBuf,
    /// The experiment that produced them.
    pub experiment: Experiment,
    /// Class names by label.
    pub classes: Vec<String>,
    /// The weights were kept in half precision (see [`super::SavedModel`]).
    pub half_precision: bool,
}

impl Predictor {
    /// Loads `<run_dir>/model.safetensors` for the experiment recorded in the folder.
    pub fn load(run_dir: &Path) -> Result<Self, InferError> {
        let exp = load_file(&run_dir.join(files::EXPERIMENT))?;
        Self::load_with(run_dir, exp)
    }

    /// Loads the weights of `run_dir` into a model built from `exp`.
    pub fn load_with(run_dir: &Path, exp: Experiment) -> Result<Self, InferError> {
        let DatasetSpec::Images(spec) = &exp.dataset else {
            return Err(InferError::WrongKind {
                dir: run_dir.to_path_buf(),
                problem: "is not an image classifier",
            });
        };
        let norm = if spec.is_folder() {
            load_images(spec, exp.seed)?.stats
        } else {
            vec![normalisation(spec.name)]
        };
        let input = spec.input_shape();
        let saved = load_saved_model_with(run_dir, exp)?;
        Ok(Self {
            model: saved.model,
            norm,
            input,
            run_dir: run_dir.to_path_buf(),
            classes: saved.classes,
            experiment: saved.experiment,
            half_precision: saved.half_precision,
        })
    }

    /// Class probabilities for `n` images of the model's input shape (28x28 grey
    /// for MNIST) stored back to back.
    pub fn probabilities(&self, pixels: &[u8], n: usize) -> Result<Vec<Vec<f32>>, InferError> {
        let [c, h, w] = self.input;
        if pixels.len() != n * c * h * w {
            return Err(InferError::PixelCount {
                bytes: pixels.len(),
                n,
                shape: self.input,
            });
        }
        let xs = standardise(pixels, &self.norm, h * w);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let x = Tensor::from_vec(xs, (n, c, h, w), &Device::Cpu)?;
            let logits = self.model.forward(&x, Mode::Eval)?;
            candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()
        };
        run().map_err(InferError::Inference)
    }

    /// Which pixels of one image (`pixels`, the model's input shape) the score of
    /// `class` depends on (`infer::saliency`).
    pub fn saliency(
        &self,
        pixels: &[u8],
        class: usize,
        method: super::saliency::SaliencyMethod,
    ) -> Result<super::saliency::Attribution, InferError> {
        let [c, h, w] = self.input;
        if pixels.len() != c * h * w {
            return Err(InferError::PixelCount {
                bytes: pixels.len(),
                n: 1,
                shape: self.input,
            });
        }
        super::saliency::explain_pixels(
            &self.model,
            &Device::Cpu,
            pixels,
            (&self.norm, self.input),
            Some(class),
            method,
        )
        .map_err(InferError::Saliency)
    }

    /// Named trainable tensors (for the weights view).
    pub fn params(&self) -> &[(String, candle_core::Var)] {
        self.model.params()
    }
}

/// The trained model's verdict on every test image.
pub struct Analysis {
    /// The test images (same limit as the run).
    pub test: ImageSet,
    /// Predicted class per image.
    pub predicted: Vec<u8>,
    /// Probability the model gave its prediction.
    pub confidence: Vec<f32>,
    /// Class names.
    pub classes: Vec<String>,
}

impl Analysis {
    /// Runs `predictor` over the test split of its own experiment.
    pub fn run(predictor: &Predictor) -> Result<Self, InferError> {
        let DatasetSpec::Images(spec) = &predictor.experiment.dataset else {
            return Err(InferError::NoTestSet);
        };
        let data = load_images(spec, predictor.experiment.seed)?;
        let test = data.test;
        let per = test.pixels_per_image();
        let mut predicted = Vec::with_capacity(test.len());
        let mut confidence = Vec::with_capacity(test.len());
        let batch = 500;
        let mut start = 0;
        while start < test.len() {
            let n = batch.min(test.len() - start);
            let probs = predictor.probabilities(&test.images[start * per..(start + n) * per], n)?;
            for p in probs {
                let (best, conf) = argmax(&p);
                predicted.push(best as u8);
                confidence.push(conf);
            }
            start += n;
        }
        Ok(Self {
            test,
            predicted,
            confidence,
            classes: data.classes,
        })
    }

    /// Indices of test images with true class `t` predicted as `p`.
    pub fn cell(&self, t: usize, p: usize) -> Vec<usize> {
        (0..self.predicted.len())
            .filter(|&i| {
                usize::from(self.test.labels[i]) == t && usize::from(self.predicted[i]) == p
            })
            .collect()
    }

    /// The `k` wrong predictions the model was most sure of, surest first.
    pub fn confident_mistakes(&self, k: usize) -> Vec<usize> {
        let mut wrong: Vec<usize> = (0..self.predicted.len())
            .filter(|&i| self.test.labels[i] != self.predicted[i])
            .collect();
        wrong.sort_by(|&a, &b| self.confidence[b].total_cmp(&self.confidence[a]));
        wrong.truncate(k);
        wrong
    }

    /// Fraction of test images classified correctly.
    pub fn accuracy(&self) -> f64 {
        let right = self
            .test
            .labels
            .iter()
            .zip(&self.predicted)
            .filter(|(a, b)| a == b)
            .count();
        right as f64 / self.predicted.len().max(1) as f64
    }
}

/// Index and value of the largest probability.
pub fn argmax(p: &[f32]) -> (usize, f32) {
    p.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

/// The newest image-classifier run under `root` that saved weights, if any.
pub fn latest_trained_run(root: &Path) -> Option<PathBuf> {
    crate::runs::list_runs(root)
        .into_iter()
        .map(|r| r.dir)
        .find(|d| {
            d.join(files::WEIGHTS).is_file()
                && load_file(&d.join(files::EXPERIMENT))
                    .is_ok_and(|e| matches!(e.dataset, DatasetSpec::Images(_)))
        })
}
