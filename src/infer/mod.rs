//! Using a trained model outside the worker: read a run folder back into a model
//! ([`load_saved_model`]), classify images ([`Predictor`], [`Analysis`]), generate
//! or classify text ([`Generator`], [`Classifier`]). The GUI's trained-model views,
//! fine-tuning, compression and the exports come here; none of them builds a model
//! itself. During a run the worker uses the same text functions to answer probes.
//!
//! Contract: models are rebuilt on the CPU from the run's own `experiment.ron`, and
//! inputs are prepared exactly as training prepared them (`data::standardise`).

mod error;
mod generate;
mod predictor;
pub mod projector;
pub mod saliency;
mod saved_model;
mod text;

pub use error::InferError;
pub use generate::{Sampling, generate, generate_with};
pub use predictor::{Analysis, Predictor, argmax, latest_trained_run};
pub use saved_model::{SavedModel, load_saved_model, load_saved_model_with, weights_file};
pub(crate) use text::classify_text;
pub use text::{Classifier, Generator};
