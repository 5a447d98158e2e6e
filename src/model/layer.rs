//! One built layer: the candle module (or plain op) behind a `LayerSpec`.

use candle_core::DType;
use candle_core::{Result, Tensor};
use candle_nn::{BatchNorm, Linear, Module, ModuleT};

use super::Kernels;
use super::im2col::conv2d_im2col;

use super::dropout::dropout;
use crate::util::rng::Rng;

/// A layer ready to run.
pub(crate) enum Layer {
    Linear(Linear),
    Conv2d {
        weight: Tensor,
        bias: Tensor,
        stride: usize,
        padding: usize,
    },
    MaxPool2d {
        kernel: usize,
        stride: usize,
    },
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
    pub(crate) fn forward(
        &self,
        xs: &Tensor,
        rng: Option<&mut Rng>,
        kernels: Kernels,
    ) -> Result<Tensor> {
        match self {
            Self::Linear(l) => match l.bias() {
                Some(b)
                    if kernels == Kernels::Fast && super::fused::applies(xs) && xs.rank() == 2 =>
                {
                    super::fused::linear(xs, l.weight(), b)
                }
                _ => l.forward(xs),
            },
            Self::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                let fast =
                    kernels == Kernels::Fast && xs.device().is_cpu() && xs.dtype() == DType::F32;
                if fast {
                    conv2d_im2col(xs, weight, Some(bias), *stride, *padding)
                } else {
                    let o = weight.dim(0)?;
                    xs.conv2d(weight, *padding, *stride, 1, 1)?
                        .broadcast_add(&bias.reshape((1, o, 1, 1))?)
                }
            }
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
