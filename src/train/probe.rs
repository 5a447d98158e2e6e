//! Answering [`Probe`]s with the live model between training steps.
//!
//! Contract: never changes the model (eval mode, no gradient step); a malformed
//! request or a tensor error becomes `ProbeAnswer::Unavailable`, never a failed run.

use candle_core::{Device, Tensor};

use crate::events::Probe;
use crate::events::ProbeAnswer;
use crate::model::{Mode, Model};

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
    /// A tensor could not be copied to the host.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The parameter.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
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
