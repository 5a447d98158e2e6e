//! The one error type of `quant`: quantising a model, saving and loading its
//! int8 file. Each variant keeps the layer, tensor or file it is about.

use std::path::PathBuf;

use crate::spec::ValidationError;

/// Everything that can go wrong quantising or reading back an int8 model.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The layer list does not chain (shape inference failed).
    #[error(transparent)]
    Shapes(#[from] ValidationError),
    /// A convolution or pooling layer that does not get an image.
    #[error("model[{index}] ({kind}): shape {shape:?} is not [c, h, w]")]
    NotAnImage {
        /// The layer's index in the model.
        index: usize,
        /// Its kind ("Conv2d", "MaxPool2d").
        kind: &'static str,
        /// The shape it gets.
        shape: Vec<usize>,
    },
    /// A layer kind int8 does not cover.
    #[error(
        "model[{index}] ({kind}) has no int8 form: int8 covers image models (Linear, \
         Conv2d, MaxPool2d, BatchNorm, Flatten, ReLU, Tanh, Sigmoid, GELU, Dropout)"
    )]
    NoInt8Form {
        /// The layer's index in the model.
        index: usize,
        /// Its kind.
        kind: &'static str,
    },
    /// The float model lacks a parameter the layer list implies.
    #[error("no parameter {name}")]
    MissingParam {
        /// The parameter's name, e.g. `layers.0.weight`.
        name: String,
    },
    /// A tensor could not be copied to the host.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The int8 file could not be encoded or decoded as a whole.
    #[error(transparent)]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// A tensor is missing from (or unreadable in) the int8 file.
    #[error("{name}: {source}")]
    Tensor {
        /// The tensor's name, or `layers.<i>` for a layer's weights.
        name: String,
        /// Why.
        source: safetensors::SafeTensorError,
    },
    /// A layer's weights, scales and biases in the file do not fit together.
    #[error(
        "layers.{index}: {weights} weights, {scales} scales and {biases} biases do not fit {inputs} inputs"
    )]
    Misfit {
        /// The layer's index.
        index: usize,
        /// Weights in the file.
        weights: usize,
        /// Scales in the file.
        scales: usize,
        /// Biases in the file.
        biases: usize,
        /// Inputs the layer list gives the layer.
        inputs: usize,
    },
    /// The int8 file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
