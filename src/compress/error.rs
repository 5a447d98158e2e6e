//! The one error type of `compress`: making pruned and int8 variants of a run.
//! Errors from the rooms it uses (loading the model, quantising, reading the
//! dataset) pass through with their own messages.

use std::path::PathBuf;

use crate::data::DataError;
use crate::infer::InferError;
use crate::quant::QuantError;

/// Everything that can go wrong compressing a run.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// A target sparsity outside [0, 1).
    #[error("sparsity {value} must be in [0, 1) (0.9 zeroes nine weights in ten)")]
    Sparsity {
        /// The value asked for.
        value: f64,
    },
    /// The run folder has no trained weights.
    #[error(
        "{} has no trained model ({}): compress a run that finished with save_weights on",
        dir.display(),
        crate::runs::files::WEIGHTS
    )]
    NoWeights {
        /// The run folder.
        dir: PathBuf,
    },
    /// A gridworld run.
    #[error("maze agents are not compressed: compress an image, text or points run")]
    Maze,
    /// No layer has weights to prune.
    #[error(
        "the model has no prunable layer ({})",
        crate::spec::kind_names(|k| k.prunable)
    )]
    NothingPrunable,
    /// int8 asked of a model that does not read images.
    #[error("{flag}int8 covers image models (MLPs and CNNs)")]
    Int8NotImages {
        /// "--" when the user asked with the flag, "" otherwise.
        flag: &'static str,
    },
    /// A variant's run failed.
    #[error("{name}: {message}")]
    VariantFailed {
        /// The variant, e.g. "sparsity-0.80".
        name: String,
        /// The run's own failure message (from its Failed event).
        message: String,
    },
    /// A variant's run ended without a summary.
    #[error("{name}: the run ended without a summary")]
    VariantUnfinished {
        /// The variant.
        name: String,
    },
    /// A file or folder could not be read, created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `compress.json` could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Loading a run's model failed.
    #[error(transparent)]
    Infer(Box<InferError>),
    /// Quantising failed.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// The calibration or test images did not load.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A forward pass or tensor copy failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl CompressError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

impl From<InferError> for CompressError {
    fn from(e: InferError) -> Self {
        // Boxed: a loading error is large and rare; the Ok path stays small.
        Self::Infer(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::KINDS;

    #[test]
    fn nothing_prunable_names_exactly_the_kinds_the_descriptors_mark_prunable() {
        let message = CompressError::NothingPrunable.to_string();
        let listed = message
            .split_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .expect("a parenthesised list");
        let named: Vec<&str> = listed
            .split([',', ' '])
            .filter(|w| !w.is_empty() && *w != "and")
            .collect();
        let prunable: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.prunable)
            .map(|k| k.name)
            .collect();
        assert!(prunable.len() >= 2, "{prunable:?}");
        assert_eq!(named, prunable, "{message}");
    }
}
