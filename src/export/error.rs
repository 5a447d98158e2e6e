//! The one error type of `export`: what a PyTorch script or an ONNX model cannot
//! express (named, with what the export covers), and the failures of the rooms
//! it reads from (dataset, vocabulary, saved model), which keep their messages.

use std::path::PathBuf;

use crate::compress::CompressError;
use crate::data::DataError;
use crate::data::maze::MazeError;
use crate::data::text::TextDataError;
use crate::infer::InferError;
use crate::spec::{SpecError, ValidationError};

/// Everything that can go wrong exporting an experiment or a trained run.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--eval-only` without trained weights.
    #[error("--eval-only needs a run folder with trained weights")]
    EvalOnlyNeedsWeights,
    /// A training feature the scripts do not implement.
    #[error("{what} is not exported yet: export pytorch writes plain training only")]
    FeatureNotExported {
        /// The field, e.g. "training.prune".
        what: &'static str,
    },
    /// A playground (Points) experiment.
    #[error(
        "export pytorch covers images, text and DQN gridworlds; playground (Points) \
         experiments are not exported yet"
    )]
    PointsNotExported,
    /// An image-folder dataset (the script may not decode PNG/JPEG).
    #[error(
        "export pytorch reads IDX datasets (MNIST, Fashion-MNIST); an image folder \
         (source: Folder) would need an image decoder the script may not use \
         (torch, numpy and safetensors only), so nothing was written"
    )]
    ImageFolder,
    /// A tabular gridworld agent.
    #[error(
        "agent.method {method} is tabular and not exported yet: export pytorch writes DQN \
         gridworlds (a Q-network), not Q-tables"
    )]
    Tabular {
        /// The method's name.
        method: String,
    },
    /// A layer with no equivalent in the target.
    #[error("model[{index}] ({kind}){problem}")]
    Layer {
        /// The layer's index in the model.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// The rest of the sentence: what has no equivalent and what is covered.
        problem: String,
    },
    /// Classification asked of unlabelled text.
    #[error("dataset.source {text_source} has no labels; classification needs labelled text")]
    NoLabels {
        /// The source as written (Debug form).
        text_source: String,
    },
    /// The split left nothing to train on.
    #[error("the training split is empty; lower val_fraction/test_fraction")]
    EmptyTrainSplit,
    /// `binary: true` with other than two classes.
    #[error("binary: true needs exactly 2 classes, the data has {classes}")]
    BinaryClasses {
        /// Classes in the data.
        classes: usize,
    },
    /// The class weights do not fit the labels.
    #[error(transparent)]
    ClassWeights(#[from] crate::data::text::ClassWeightsError),
    /// A template field left unfilled (a bug in the exporter).
    #[error("internal: a template field was left unfilled")]
    UnfilledTemplate,
    /// The gridworld layout does not make a maze.
    #[error("dataset.layout: {0}")]
    Layout(#[source] MazeError),
    /// The layer list does not chain.
    #[error(transparent)]
    Shapes(#[from] ValidationError),
    /// The image dataset could not be found or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The text corpus or vocabulary could not be read.
    #[error(transparent)]
    Text(#[from] TextDataError),
    /// A sidecar or metadata entry could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The run's experiment does not load.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The run's model does not load.
    #[error(transparent)]
    Infer(Box<InferError>),
    /// The model could not be quantised for `--int8`.
    #[error(transparent)]
    Compress(#[from] CompressError),
    /// A gridworld run that learned a Q-table.
    #[error("{} trained a Q-table, not a network: there is no model to export", dir.display())]
    QTable {
        /// The run folder.
        dir: PathBuf,
    },
    /// `export onnx --int8` of a model that does not read images.
    #[error(
        "{}: --int8 covers image models (MLPs and CNNs); export this one without it",
        dir.display()
    )]
    Int8NotImages {
        /// The run folder.
        dir: PathBuf,
    },
    /// The weights lack a tensor the layer list implies.
    #[error("the weights have no tensor {name}")]
    MissingTensor {
        /// The tensor's name.
        name: String,
    },
    /// A saved tensor could not be read to the host.
    #[error("{name}: {source}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A Linear layer on an input ONNX's mapping does not cover.
    #[error(
        "{name} reads a {shape:?} input per sample; export onnx maps Linear only \
         on flat inputs and sequences"
    )]
    LinearInput {
        /// The node's name.
        name: String,
        /// The per-sample input shape.
        shape: Vec<usize>,
    },
    /// An error inside layer `index`, named with its kind.
    #[error("model[{index}] ({kind}): {source}")]
    InLayer {
        /// The layer's index.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// What went wrong.
        source: Box<ExportError>,
    },
    /// Mean pooling without token ids to mask padding.
    #[error("model[{index}] (MeanPool) needs token input")]
    NeedsTokens {
        /// The layer's index.
        index: usize,
    },
    /// A quantised layer on an input QDQ does not cover.
    #[error(
        "model[{index}] ({kind}) on a {shape:?} input has no int8 ONNX form: \
         QDQ covers Linear on flat inputs and Conv2d"
    )]
    QdqInput {
        /// The layer's index.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// The per-sample input shape.
        shape: Vec<usize>,
    },
    /// A quantised layer whose int8 weights do not fit its shape.
    #[error(
        "model[{index}] ({kind}): {weights} int8 weights and {biases} biases do not fit {dims:?}"
    )]
    QdqMisfit {
        /// The layer's index.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// int8 weights.
        weights: usize,
        /// Biases.
        biases: usize,
        /// The weight shape the layer needs.
        dims: Vec<usize>,
    },
}

impl ExportError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

impl From<InferError> for ExportError {
    fn from(e: InferError) -> Self {
        // Boxed: a loading error is large and rare; the Ok path stays small.
        Self::Infer(Box::new(e))
    }
}
