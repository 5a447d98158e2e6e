//! Answering [`Probe`]s with the live model between training steps.
//!
//! Contract: never changes the model (eval mode, no gradient step; saliency's
//! gradients go to a store of their own that is dropped); a malformed request or
//! a tensor error becomes `ProbeAnswer::Unavailable`, never a failed run. The
//! projector and saliency run `infer::projector` and `infer::saliency` on the live
//! model, the code that serves saved runs, so live and History answers agree.
//! A projection reads at most the first [`PROJECTED_SAMPLES`] test images (and
//! at most `infer::projector::LIVE_MAX_VALUES` activation values).

use candle_core::{Device, Tensor};

use crate::events::Probe;
use crate::events::ProbeAnswer;
use crate::infer::InferError;
use crate::infer::projector::{LIVE_MAX_VALUES, ProjectedImages, project_layer};
use crate::infer::saliency::explain_pixels;
use crate::model::{Mode, Model};
use crate::spec::LayerSpec;

/// Test images the live projector may show (the view's limit).
pub(crate) const PROJECTED_SAMPLES: usize = 1000;

/// The first test images as plain pixels, kept for the live projector.
pub(crate) struct ProjectorSamples {
    /// [`PROJECTED_SAMPLES`] images at most, back to back.
    pub(crate) pixels: Vec<u8>,
    /// Their classes.
    pub(crate) labels: Vec<u8>,
    /// Class names.
    pub(crate) classes: Vec<String>,
    /// The model's layer list.
    pub(crate) layers: Vec<LayerSpec>,
}

/// Why a run could not answer a probe; its text is the answer's reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    /// A probe for another kind of run.
    #[error("this run trains an image model; {0}")]
    WrongRun(&'static str),
    /// The image is not the model's input size.
    #[error("the image has {pixels} pixels; this model takes {}x{}x{}", shape[0], shape[1], shape[2])]
    PixelCount {
        /// Pixels given.
        pixels: usize,
        /// `[channels, rows, cols]` the model takes.
        shape: [usize; 3],
    },
    /// The forward pass failed.
    #[error("the model could not classify the image: {0}")]
    Classify(#[source] candle_core::Error),
    /// No layer has weights.
    #[error("the model has no trainable layer")]
    NoLayer,
    /// A playground run asked for something other than a field map.
    #[error("a playground run answers field probes only")]
    FieldOnly,
    /// A field grid too coarse or too fine.
    #[error("a field grid has 2 to {max} points a side")]
    Resolution {
        /// The most points a side.
        max: usize,
    },
    /// candle failed while computing the answer.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The projection failed.
    #[error("cannot project: {0}")]
    Project(#[source] Box<InferError>),
    /// The run kept no test images to project.
    #[error("this run has no test images to project")]
    NoSamples,
    /// Saliency failed.
    #[error("no saliency: {0}")]
    Saliency(#[source] candle_core::Error),
    /// A tensor could not be copied to the host.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The parameter.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
}

/// A text model's answer to `Probe::Project`: its embedding table, one point
/// per token of `tokens` (the vocabulary).
pub(crate) fn project_tokens(model: &Model, tokens: &[String], id: u64, step: u64) -> ProbeAnswer {
    match crate::infer::projector::project_embedding_table(model, tokens) {
        Ok(p) => ProbeAnswer::Projected {
            id,
            step,
            projection: Box::new(p),
        },
        Err(e) => ProbeAnswer::Unavailable {
            reason: ProbeError::Project(Box::new(e)).to_string(),
        },
    }
}

/// What a probe needs to know about the running model.
pub(crate) struct ProbeTarget<'a> {
    pub(crate) model: &'a Model,
    pub(crate) device: &'a Device,
    /// Per channel, the mean and standard deviation used to normalise pixels in
    /// training.
    pub(crate) norm: &'a [(f32, f32)],
    /// One sample's shape, e.g. `[1, 28, 28]`.
    pub(crate) input: [usize; 3],
    /// The test images the projector shows (None: it answers Unavailable).
    pub(crate) samples: Option<&'a ProjectorSamples>,
}

impl ProbeTarget<'_> {
    pub(crate) fn answer(&self, probe: &Probe, step: u64) -> ProbeAnswer {
        let result = match probe {
            Probe::Classify { id, pixels } => {
                self.classify(pixels)
                    .map(|probabilities| ProbeAnswer::Classified {
                        id: *id,
                        step,
                        probabilities,
                    })
            }
            Probe::FirstLayer => self.first_layer(step),
            Probe::Project { id, layer, limit } => {
                self.project(*layer, *limit)
                    .map(|projection| ProbeAnswer::Projected {
                        id: *id,
                        step,
                        projection: Box::new(projection),
                    })
            }
            Probe::Saliency {
                id,
                pixels,
                class,
                method,
            } => explain_pixels(
                self.model,
                self.device,
                pixels,
                (self.norm, self.input),
                *class,
                *method,
            )
            .map(|a| ProbeAnswer::Attributed {
                id: *id,
                step,
                attribution: Box::new(a),
            })
            .map_err(ProbeError::Saliency),
            Probe::Generate { .. } | Probe::ClassifyText { .. } => {
                Err(ProbeError::WrongRun("text probes need a text run"))
            }
            Probe::Field { .. } => Err(ProbeError::WrongRun("field maps need a points run")),
        };
        // The event contract carries the reason as text.
        result.unwrap_or_else(|e| ProbeAnswer::Unavailable {
            reason: e.to_string(),
        })
    }

    fn classify(&self, pixels: &[u8]) -> Result<Vec<f32>, ProbeError> {
        let [c, h, w] = self.input;
        if pixels.len() != c * h * w {
            return Err(ProbeError::PixelCount {
                pixels: pixels.len(),
                shape: self.input,
            });
        }
        let xs = crate::data::standardise(pixels, self.norm, h * w);
        let run = || -> candle_core::Result<Vec<f32>> {
            let x = Tensor::from_vec(xs, (1, c, h, w), self.device)?;
            let logits = self.model.forward(&x, Mode::Eval)?;
            candle_nn::ops::softmax_last_dim(&logits)?
                .squeeze(0)?
                .to_vec1::<f32>()
        };
        run().map_err(ProbeError::Classify)
    }

    fn project(
        &self,
        layer: Option<usize>,
        limit: usize,
    ) -> Result<crate::events::Projection, ProbeError> {
        let samples = self.samples.ok_or(ProbeError::NoSamples)?;
        let per: usize = self.input.iter().product();
        let n = samples.labels.len().min(limit.max(1));
        let images = ProjectedImages {
            pixels: samples.pixels.get(..n * per).ok_or(ProbeError::NoSamples)?,
            labels: &samples.labels[..n],
            shape: self.input,
            norm: self.norm,
            classes: &samples.classes,
            layers: &samples.layers,
        };
        project_layer(self.model, self.device, &images, layer, LIVE_MAX_VALUES)
            .map_err(|e| ProbeError::Project(Box::new(e)))
    }

    fn first_layer(&self, step: u64) -> Result<ProbeAnswer, ProbeError> {
        let (name, var) = self.model.params().first().ok_or(ProbeError::NoLayer)?;
        let t = var.as_tensor();
        let values = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|source| ProbeError::Read {
                name: name.clone(),
                source,
            })?;
        Ok(ProbeAnswer::FirstLayer {
            step,
            name: name.clone(),
            shape: t.dims().to_vec(),
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LayerSpec;

    #[test]
    fn classifies_and_snapshots_without_changing_the_model() {
        let layers = [
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 5 },
            LayerSpec::ReLU,
            LayerSpec::Linear { out: 3 },
        ];
        let model = Model::build(&layers, &[1, 4, 4], 7, &Device::Cpu).expect("model");
        let target = ProbeTarget {
            model: &model,
            device: &Device::Cpu,
            norm: &[(0.5, 0.25)],
            input: [1, 4, 4],
            samples: None,
        };
        let pixels: Vec<u8> = (0..16).map(|i| (i * 16) as u8).collect();
        let probe = Probe::Classify { id: 9, pixels };
        let ProbeAnswer::Classified {
            id,
            step,
            probabilities,
        } = target.answer(&probe, 3)
        else {
            panic!("expected probabilities");
        };
        assert_eq!((id, step, probabilities.len()), (9, 3, 3));
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(target.answer(&probe, 4), {
            let mut a = target.answer(&probe, 3);
            if let ProbeAnswer::Classified { step, .. } = &mut a {
                *step = 4;
            }
            a
        });
        let wrong = Probe::Classify {
            id: 1,
            pixels: vec![0; 3],
        };
        assert!(
            matches!(target.answer(&wrong, 0), ProbeAnswer::Unavailable { reason } if reason.contains("3 pixels"))
        );
        let ProbeAnswer::FirstLayer { shape, values, .. } = target.answer(&Probe::FirstLayer, 0)
        else {
            panic!("expected weights");
        };
        assert_eq!(shape, vec![5, 16]);
        assert_eq!(values.len(), 80);
    }
}
