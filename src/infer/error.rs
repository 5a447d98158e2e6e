//! The one error type of `infer`: reading a run folder back into a model and
//! using it. Each variant keeps the run folder or file and the underlying error;
//! its message is the sentence the user reads (the GUI's message bar, the CLI).

use std::path::PathBuf;

use crate::data::DataError;
use crate::data::text::TextDataError;
use crate::spec::SpecError;

/// Everything that can go wrong loading or using a trained model.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The run's `experiment.ron` does not load.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The run's vocabulary does not load.
    #[error(transparent)]
    Vocab(#[from] TextDataError),
    /// The run's dataset (needed for normalisation or the test set) does not load.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run's record could not be read.
    #[error("{source}")]
    Record {
        /// The run folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The record has no Started event (which names the classes).
    #[error("{} has no Started event to read class names from", dir.display())]
    NoStartedEvent {
        /// The run folder.
        dir: PathBuf,
    },
    /// The recorded layers do not build.
    #[error("cannot build the model of {}: {source}", dir.display())]
    Build {
        /// The run folder.
        dir: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// The weights file does not load into the model.
    #[error("cannot load {}: {source}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// The run is of another kind than the caller needs.
    #[error("{} {problem}", dir.display())]
    WrongKind {
        /// The run folder.
        dir: PathBuf,
        /// What it is instead, e.g. "is not a text run".
        problem: &'static str,
    },
    /// A text model was used for a task it was not trained for.
    #[error("not a classifier")]
    NotClassifier,
    /// Only image runs have a test set to analyse.
    #[error("only image runs have a test set to analyse")]
    NoTestSet,
    /// The pixels given do not make whole images of the model's shape.
    #[error(
        "{bytes} bytes for {}; this model takes {}x{}x{} images",
        if *n == 1 { "one image".to_string() } else { format!("{n} images") },
        shape[0], shape[1], shape[2]
    )]
    PixelCount {
        /// Bytes given.
        bytes: usize,
        /// Images asked for.
        n: usize,
        /// `[channels, rows, cols]` of one image.
        shape: [usize; 3],
    },
    /// The forward pass of an image model failed.
    #[error("inference failed: {0}")]
    Inference(#[source] candle_core::Error),
    /// Attributing a class score to the pixels failed.
    #[error("saliency failed: {0}")]
    Saliency(#[source] candle_core::Error),
    /// The projector shows image and text runs only.
    #[error(
        "{}: the projector shows image runs (a layer's activations) and text runs (the \
         embedding table)",
        dir.display()
    )]
    NotProjectable {
        /// The run folder.
        dir: PathBuf,
    },
    /// An image projection was asked of a run that is not an image run.
    #[error("not an image run")]
    NotImageRun,
    /// The run's test split has no images to project.
    #[error("the run's test split is empty")]
    EmptyTestSplit,
    /// Running the model over the images to project failed.
    #[error("cannot run the model: {0}")]
    RunModel(#[source] candle_core::Error),
    /// A text run without a saved vocabulary.
    #[error("the run has no vocabulary")]
    NoVocabulary,
    /// A text model without an embedding table to project.
    #[error("the model has no embedding table (an Embedding layer) to project")]
    NoEmbeddingTable,
    /// Text generation or classification failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
