//! The layer list: each entry is one step applied to a sample. Input sizes are not
//! written in the file; they follow from the previous layer's output shape.
//!
//! A layer kind is the [`LayerSpec`] variant here plus, in this folder, everything
//! about it that needs neither candle nor egui: its shape rule and parameter
//! count (`shapes.rs`), and its palette template, help and editable fields
//! (`editing.rs`), which the model editor draws as they are. Outside spec a kind
//! has its candle builder (`model/build.rs`, `build_layer`) and its export lines
//! (`export/pytorch.rs`, `export/onnx*.rs`); exhaustive matches make the compiler
//! list each place a new kind must fill in.

mod editing;
mod shapes;

pub use editing::{FieldValue, LayerField};
pub use shapes::{LayerShapeInfo, infer_shapes};

use serde::{Deserialize, Serialize};

/// Shape of one sample (no batch axis), e.g. `[1, 28, 28]` or `[128]`.
pub type Shape = Vec<usize>;

/// One layer of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected: `[n] -> [out]`.
    Linear {
        /// Output features.
        out: usize,
    },
    /// 2-D convolution: `[c, h, w] -> [out, h', w']`.
    Conv2d {
        /// Output channels (filters).
        out: usize,
        /// Square kernel size.
        kernel: usize,
        /// Step between kernel positions.
        #[serde(default = "one")]
        stride: usize,
        /// Zeros added around each side.
        #[serde(default)]
        padding: usize,
    },
    /// Max over square windows: `[c, h, w] -> [c, h/k, w/k]`.
    MaxPool2d {
        /// Window size.
        kernel: usize,
        /// Step between windows (defaults to the window size).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Everything into one vector: `[c, h, w] -> [c*h*w]`.
    Flatten,
    /// max(0, x).
    ReLU,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Gaussian error linear unit.
    GELU,
    /// Zeroes each activation with probability `p` while training.
    Dropout {
        /// Drop probability, in [0, 1).
        p: f64,
    },
    /// Normalises each feature (or channel) over the batch; running stats for eval.
    BatchNorm {
        /// Momentum of the running mean/variance.
        #[serde(default = "default_bn_momentum")]
        momentum: f64,
        /// Added to the variance for stability.
        #[serde(default = "default_bn_eps")]
        eps: f64,
    },
    /// Token ids to vectors: `[t, vocab] -> [t, dim]` (the input is written as
    /// one-hot rows; the vocabulary size comes from the data).
    Embedding {
        /// Vector size per token.
        dim: usize,
    },
    /// Long short-term memory over the sequence: `[t, d] -> [t, hidden]`.
    LSTM {
        /// State size.
        hidden: usize,
        /// Stacked layers.
        #[serde(default = "one")]
        layers: usize,
        /// Dropout between stacked layers while training.
        #[serde(default)]
        dropout: f64,
    },
    /// Gated recurrent unit over the sequence: `[t, d] -> [t, hidden]`.
    GRU {
        /// State size.
        hidden: usize,
        /// Stacked layers.
        #[serde(default = "one")]
        layers: usize,
        /// Dropout between stacked layers while training.
        #[serde(default)]
        dropout: f64,
    },
    /// Learned position vectors added to each step: `[t, d] -> [t, d]`, t <= context.
    PositionEmbedding {
        /// Longest sequence it can handle.
        context: usize,
    },
    /// A causal (each step sees only the past) pre-norm transformer block:
    /// self-attention then a feed-forward network, `[t, d] -> [t, d]`.
    Transformer {
        /// Attention heads (`d` must divide by it).
        heads: usize,
        /// Hidden size of the feed-forward network (4 * d is usual).
        width: usize,
    },
    /// Mean over the (non-padding) steps: `[t, d] -> [d]`.
    MeanPool,
    /// The last step only: `[t, d] -> [d]` (sequences are padded on the left).
    LastStep,
}

fn one() -> usize {
    1
}
fn default_bn_momentum() -> f64 {
    0.1
}
fn default_bn_eps() -> f64 {
    1e-5
}

impl LayerSpec {
    /// Short name shown in tables and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Linear { .. } => "Linear",
            Self::Conv2d { .. } => "Conv2d",
            Self::MaxPool2d { .. } => "MaxPool2d",
            Self::Flatten => "Flatten",
            Self::ReLU => "ReLU",
            Self::Tanh => "Tanh",
            Self::Sigmoid => "Sigmoid",
            Self::GELU => "GELU",
            Self::Dropout { .. } => "Dropout",
            Self::BatchNorm { .. } => "BatchNorm",
            Self::Embedding { .. } => "Embedding",
            Self::LSTM { .. } => "LSTM",
            Self::GRU { .. } => "GRU",
            Self::PositionEmbedding { .. } => "PositionEmbedding",
            Self::Transformer { .. } => "Transformer",
            Self::MeanPool => "MeanPool",
            Self::LastStep => "LastStep",
        }
    }

    /// Whether this layer reads token ids (it must come first, on text data).
    pub fn takes_tokens(&self) -> bool {
        matches!(self, Self::Embedding { .. })
    }

    /// Whether magnitude pruning applies to this layer's weight matrices.
    pub fn prunable(&self) -> bool {
        matches!(
            self,
            Self::Linear { .. }
                | Self::Conv2d { .. }
                | Self::LSTM { .. }
                | Self::GRU { .. }
                | Self::Transformer { .. }
        )
    }

    /// Whether this layer owns trainable parameters.
    pub fn has_params(&self) -> bool {
        matches!(
            self,
            Self::Linear { .. }
                | Self::Conv2d { .. }
                | Self::BatchNorm { .. }
                | Self::Embedding { .. }
                | Self::LSTM { .. }
                | Self::GRU { .. }
                | Self::PositionEmbedding { .. }
                | Self::Transformer { .. }
        )
    }
}
