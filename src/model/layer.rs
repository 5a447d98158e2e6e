//! One built layer: the candle module (or plain op) behind a `LayerSpec`.

use candle_core::{Result, Tensor};
use candle_nn::{BatchNorm, Conv2d, Linear, Module, ModuleT};

use super::dropout::dropout;
use crate::util::rng::Rng;

/// A layer ready to run.
pub(crate) enum Layer {
    Linear(Linear),
    Conv2d(Conv2d),
    MaxPool2d { kernel: usize, stride: usize },
    Flatten,
    ReLU,
    Tanh,
    Sigmoid,
    Gelu,
    Dropout(f64),
    BatchNorm(BatchNorm),
}

impl Layer {
    /// Applies the layer to a batch; `rng` is Some while training (dropout, batch stats).
    pub(crate) fn forward(&self, xs: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        match self {
            Self::Linear(l) => l.forward(xs),
            Self::Conv2d(c) => c.forward(xs),
            Self::MaxPool2d { kernel, stride } => xs.max_pool2d_with_stride(*kernel, *stride),
            Self::Flatten => xs.flatten_from(1),
            Self::ReLU => xs.relu(),
            Self::Tanh => xs.tanh(),
            Self::Sigmoid => candle_nn::ops::sigmoid(xs),
            Self::Gelu => xs.gelu_erf(),
            Self::Dropout(p) => match rng {
                Some(rng) => dropout(xs, *p, rng),
                None => Ok(xs.clone()),
            },
            Self::BatchNorm(bn) => bn.forward_t(xs, rng.is_some()),
        }
    }
}
