//! The layer list: each entry is one step applied to a sample. Input sizes are not
//! written in the file; they follow from the previous layer's output shape.

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
        }
    }

    /// Whether this layer owns trainable parameters.
    pub fn has_params(&self) -> bool {
        matches!(
            self,
            Self::Linear { .. } | Self::Conv2d { .. } | Self::BatchNorm { .. }
        )
    }
}
