//! One built layer: the candle module (or plain op) behind a `LayerSpec`.

use candle_core::{DType, Result, Tensor};
use candle_nn::{BatchNorm, Linear, Module, ModuleT};

use super::Kernels;
use super::attention::TransformerBlock;
use super::kernels::conv::{ConvStage, Fusion, conv_stack, conv2d};
use super::kernels::cpu_data::fast_cpu;
use super::kernels::dense_fused::{Act, Input, dense_stack_from};
use super::kernels::pool::{max_pool2d, max_pool2d_reshaped};
use super::recurrent::Recurrent;

use super::dropout::{Mask, dropout};
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
    /// Token ids `[b, t]` to vectors.
    Embedding(candle_nn::Embedding),
    Recurrent(Recurrent),
    /// Learned `[context, d]` position vectors.
    Positions(Tensor),
    Transformer(Box<TransformerBlock>),
    MeanPool,
    LastStep,
}

impl Layer {
    /// Applies the layer to a batch; `rng` is Some while training (dropout, batch stats);
    /// `mask` (`[b, t]`, 1 for real tokens, 0 for padding) is Some for token input.
    pub(crate) fn forward(
        &self,
        xs: &Tensor,
        rng: Option<&mut Rng>,
        kernels: Kernels,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        match self {
            Self::Linear(l) => match l.bias() {
                // Rank 3 too: a language model's head runs on every position at once.
                Some(b) if fast_cpu(xs, kernels) && xs.rank() >= 2 => {
                    super::kernels::fused::linear(xs, l.weight(), b)
                }
                _ => l.forward(xs),
            },
            // candle 0.11's CPU convolution has no bf16 kernel: widen to f32 and
            // round the result back, as its CPU matmul does for bf16 (the products
            // of bf16 values accumulated in f32, like a GPU's bf16 convolution).
            Self::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } if xs.dtype() == DType::BF16 && xs.device().is_cpu() => {
                let wide = |t: &Tensor| t.to_dtype(DType::F32);
                let o = weight.dim(0)?;
                wide(xs)?
                    .conv2d(&wide(weight)?, *padding, *stride, 1, 1)?
                    .broadcast_add(&wide(bias)?.reshape((1, o, 1, 1))?)?
                    .to_dtype(DType::BF16)
            }
            Self::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                if fast_cpu(xs, kernels) {
                    conv2d(xs, weight, bias, *stride, *padding, Fusion::default())
                } else {
                    let o = weight.dim(0)?;
                    xs.conv2d(weight, *padding, *stride, 1, 1)?
                        .broadcast_add(&bias.reshape((1, o, 1, 1))?)
                }
            }
            Self::MaxPool2d { kernel, stride } if fast_cpu(xs, kernels) => {
                max_pool2d(xs, *kernel, *stride)
            }
            // Mixed precision on the CPU: the f32 kernel on widened values gives the
            // same maximum (it is one of the inputs) and the defined gradient;
            // candle's own backward divides it by the window size.
            Self::MaxPool2d { kernel, stride }
                if xs.device().is_cpu() && kernels == Kernels::Fast =>
            {
                max_pool2d(&xs.to_dtype(DType::F32)?, *kernel, *stride)?.to_dtype(xs.dtype())
            }
            // GPUs and the reference kernels: not candle's op, whose backward
            // scales the gradient by 1/k² (see `max_pool2d_reshaped`).
            Self::MaxPool2d { kernel, stride } if kernel == stride => {
                max_pool2d_reshaped(xs, *kernel)
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
            // Batch statistics in f32 under mixed precision: a low-precision sum of
            // squares over a batch loses the variance (and f16 overflows).
            Self::BatchNorm(bn) if xs.dtype() != DType::F32 => bn
                .forward_t(&xs.to_dtype(DType::F32)?, rng.is_some())?
                .to_dtype(xs.dtype()),
            Self::BatchNorm(bn) => bn.forward_t(xs, rng.is_some()),
            Self::Embedding(e) => e.forward(xs),
            Self::Recurrent(r) => r.forward(xs, rng, kernels),
            Self::Positions(p) => xs.broadcast_add(&p.narrow(0, 0, xs.dim(1)?)?),
            Self::Transformer(block) => block.forward(xs, kernels),
            Self::MeanPool => match mask {
                // Padding does not count: sum of real steps / number of real steps.
                Some(m) => {
                    let m = m.unsqueeze(2)?;
                    let n = m.sum(1)?.maximum(1.0)?;
                    xs.broadcast_mul(&m)?.sum(1)?.broadcast_div(&n)
                }
                None => xs.mean(1),
            },
            Self::LastStep => xs.narrow(1, xs.dim(1)? - 1, 1)?.squeeze(1),
        }
    }
}

impl Layer {
    /// This layer with its weights cast to `dtype` (mixed precision: a fresh cast of
    /// the f32 master weights every forward pass; `to_dtype` has a backward, so the
    /// gradients arrive at the f32 `Var`s). Batch norm keeps its f32 weights and
    /// statistics: it normalises in f32 (see `forward`).
    pub(crate) fn cast(&self, dtype: DType) -> Result<Self> {
        Ok(match self {
            Self::Linear(l) => Self::Linear(Linear::new(
                l.weight().to_dtype(dtype)?,
                l.bias().map(|b| b.to_dtype(dtype)).transpose()?,
            )),
            Self::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => Self::Conv2d {
                weight: weight.to_dtype(dtype)?,
                bias: bias.to_dtype(dtype)?,
                stride: *stride,
                padding: *padding,
            },
            Self::MaxPool2d { kernel, stride } => Self::MaxPool2d {
                kernel: *kernel,
                stride: *stride,
            },
            Self::Flatten => Self::Flatten,
            Self::ReLU => Self::ReLU,
            Self::Tanh => Self::Tanh,
            Self::Sigmoid => Self::Sigmoid,
            Self::Gelu => Self::Gelu,
            Self::Dropout(p) => Self::Dropout(*p),
            Self::BatchNorm(bn) => Self::BatchNorm(bn.clone()),
            Self::Embedding(e) => Self::Embedding(candle_nn::Embedding::new(
                e.embeddings().to_dtype(dtype)?,
                e.hidden_size(),
            )),
            Self::Recurrent(r) => Self::Recurrent(r.cast(dtype)?),
            Self::Positions(p) => Self::Positions(p.to_dtype(dtype)?),
            Self::Transformer(block) => Self::Transformer(Box::new(block.cast(dtype)?)),
            Self::MeanPool => Self::MeanPool,
            Self::LastStep => Self::LastStep,
        })
    }

    /// Runs this layer together with the layers right after it as one fused
    /// kernel, when it has one for these tensors on the CPU: a convolution with
    /// its ReLU and/or max pooling and the convolutions (with theirs) right
    /// after it, a Linear layer with the activations and Linear layers that
    /// follow it (and a Flatten and/or Dropout right before such a stack), an
    /// embedding with the LSTM it feeds.
    /// Returns the output and how many of `following` it absorbed; `rng` as
    /// for `forward`.
    pub(crate) fn forward_fused(
        &self,
        xs: &Tensor,
        kernels: Kernels,
        following: &[Layer],
        rng: Option<&mut Rng>,
    ) -> Option<(Result<Tensor>, usize)> {
        if let Self::Linear(first) = self {
            return linear_stack(first, xs, kernels, following, Input::default());
        }
        if matches!(self, Self::Flatten | Self::Dropout(_)) {
            return input_stack(self, xs, kernels, following, rng);
        }
        if let (Self::Embedding(e), Some(Self::Recurrent(r))) = (self, following.first()) {
            return r
                .forward_from_tokens(xs, e.embeddings(), rng, kernels)
                .map(|out| (out, 1));
        }
        if !matches!(self, Self::Conv2d { .. }) || !fast_cpu(xs, kernels) {
            return None;
        }
        // This convolution and any that follow it, each with the ReLU and max
        // pooling right after it.
        let mut stages = Vec::new();
        let mut next = 0;
        let mut layer = self;
        while let Self::Conv2d {
            weight,
            bias,
            stride,
            padding,
        } = layer
        {
            let relu = matches!(following.get(next), Some(Self::ReLU));
            let pool = match following.get(next + usize::from(relu)) {
                Some(Self::MaxPool2d { kernel, stride }) => Some((*kernel, *stride)),
                _ => None,
            };
            next += usize::from(relu) + usize::from(pool.is_some());
            stages.push(ConvStage {
                weight,
                bias,
                stride: *stride,
                pad: *padding,
                fusion: Fusion { relu, pool },
            });
            match following.get(next) {
                Some(conv @ Self::Conv2d { .. }) => {
                    layer = conv;
                    next += 1;
                }
                _ => break,
            }
        }
        (next > 0).then(|| (conv_stack(xs, &stages), next))
    }
}

/// The activation a layer applies, when the dense stack has it.
fn stack_activation(layer: Option<&Layer>) -> Option<Act> {
    match layer? {
        Layer::ReLU => Some(Act::Relu),
        Layer::Tanh => Some(Act::Tanh),
        Layer::Sigmoid => Some(Act::Sigmoid),
        _ => None,
    }
}

/// A Flatten and/or a Dropout (`first` and what follows it), then a dense
/// stack: the stack absorbs them ([`Input`]), so neither the flattened nor the
/// dropped-out activation becomes a tensor of the graph. The mask is drawn as
/// the Dropout layer draws it, and only once the stack is sure to run.
fn input_stack(
    first: &Layer,
    xs: &Tensor,
    kernels: Kernels,
    following: &[Layer],
    rng: Option<&mut Rng>,
) -> Option<(Result<Tensor>, usize)> {
    let (mut flatten, mut dropout_p) = (false, None);
    let mut prefix = 0;
    for layer in std::iter::once(first).chain(following) {
        match layer {
            Layer::Flatten if !flatten => flatten = true,
            Layer::Dropout(p) if dropout_p.is_none() => dropout_p = Some(*p),
            _ => break,
        }
        prefix += 1;
    }
    let Some(Layer::Linear(linear)) = following.get(prefix - 1) else {
        return None;
    };
    let after = &following[prefix..];
    // The same conditions as the stack itself: decided before any draw.
    if !fast_cpu(xs, kernels) || xs.rank() < 2 || stack_layers(linear, after).is_none() {
        return None;
    }
    let mask = match (dropout_p, rng) {
        (Some(p), Some(rng)) => Mask::draw(p, rng),
        _ => None,
    };
    let input = Input { flatten, mask };
    linear_stack(linear, xs, kernels, after, input).map(|(out, n)| (out, prefix + n))
}

/// `first` and the activations and Linear layers after it as one dense stack,
/// when at least one follows (a lone Linear layer keeps its own op).
fn linear_stack(
    first: &Linear,
    xs: &Tensor,
    kernels: Kernels,
    following: &[Layer],
    input: Input,
) -> Option<(Result<Tensor>, usize)> {
    if !fast_cpu(xs, kernels) || xs.rank() < 2 {
        return None;
    }
    let (layers, absorbed) = stack_layers(first, following)?;
    Some((dense_stack_from(xs, input, &layers), absorbed))
}

/// A dense stack's layers: `(weight, bias, activation)` each.
type StackLayers<'a> = Vec<(&'a Tensor, &'a Tensor, Act)>;

/// The layers of the dense stack that starts at `first` and how many of
/// `following` it takes; None when none follows.
fn stack_layers<'a>(first: &'a Linear, following: &'a [Layer]) -> Option<(StackLayers<'a>, usize)> {
    let mut layers = vec![(first.weight(), first.bias()?, Act::Identity)];
    let mut absorbed = 0;
    loop {
        if let Some(act) = stack_activation(following.get(absorbed)) {
            if let Some(last) = layers.last_mut() {
                last.2 = act;
            }
            absorbed += 1;
        }
        match following.get(absorbed) {
            Some(Layer::Linear(l)) if l.bias().is_some() => {
                layers.push((l.weight(), l.bias()?, Act::Identity));
                absorbed += 1;
            }
            _ => break,
        }
    }
    (absorbed > 0).then_some((layers, absorbed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_tensors::random;

    fn linear(rng: &mut Rng, out: usize, input: usize) -> Result<Layer> {
        let (w, b) = (random(rng, &[out, input])?, random(rng, &[out])?);
        Ok(Layer::Linear(Linear::new(w, Some(b))))
    }

    /// The layers one at a time, each with its own op (the Linear layers still
    /// as one dense stack, as `Model::forward` runs them after a Flatten).
    fn one_by_one(layers: &[Layer], xs: &Tensor, mut rng: Option<&mut Rng>) -> Result<Tensor> {
        let mut xs = xs.clone();
        let mut i = 0;
        while i < layers.len() {
            if let Layer::Linear(first) = &layers[i] {
                let following = &layers[i + 1..];
                if let Some((out, n)) =
                    linear_stack(first, &xs, Kernels::Fast, following, Input::default())
                {
                    xs = out?;
                    i += 1 + n;
                    continue;
                }
            }
            xs = layers[i].forward(&xs, rng.as_deref_mut(), Kernels::Fast, None)?;
            i += 1;
        }
        Ok(xs)
    }

    /// A CNN's head (Dropout, Flatten, Linear, ReLU, Linear) as one fused stack:
    /// every layer absorbed, the same values bit for bit and the same draws from
    /// the run's RNG as the layers one by one, training and evaluating, and in
    /// either order of Flatten and Dropout.
    #[test]
    fn head_with_dropout_and_flatten_fuses_into_one_stack() -> Result<()> {
        let mut init = Rng::new(11);
        let xs = random(&mut init, &[5, 4, 3, 3])?;
        let head = |init: &mut Rng, first: Layer, second: Layer| -> Result<Vec<Layer>> {
            Ok(vec![
                first,
                second,
                linear(init, 7, 36)?,
                Layer::ReLU,
                linear(init, 3, 7)?,
            ])
        };
        let orders = [
            head(&mut init, Layer::Dropout(0.25), Layer::Flatten)?,
            head(&mut init, Layer::Flatten, Layer::Dropout(0.5))?,
        ];
        for layers in &orders {
            for training in [true, false] {
                let (mut r1, mut r2) = (Rng::new(3), Rng::new(3));
                let rng = training.then_some(&mut r1);
                let Some((fused, absorbed)) =
                    layers[0].forward_fused(&xs, Kernels::Fast, &layers[1..], rng)
                else {
                    panic!("the head fuses (training {training})");
                };
                assert_eq!(absorbed, layers.len() - 1, "every layer absorbed");
                let want = one_by_one(layers, &xs, training.then_some(&mut r2))?;
                let (a, b) = (fused?.to_vec2::<f32>()?, want.to_vec2::<f32>()?);
                let bits = |v: &[Vec<f32>]| -> Vec<u32> {
                    v.concat().into_iter().map(f32::to_bits).collect()
                };
                assert_eq!(bits(&a), bits(&b), "values, training {training}");
                assert_eq!(r1.state(), r2.state(), "draws, training {training}");
            }
        }
        Ok(())
    }

    /// A Dropout that no dense stack follows is left to its own op, and nothing
    /// is drawn for it here.
    #[test]
    fn dropout_without_a_stack_after_it_is_not_absorbed() -> Result<()> {
        let mut init = Rng::new(2);
        let xs = random(&mut init, &[4, 6])?;
        let lone = [Layer::Dropout(0.5), linear(&mut init, 3, 6)?];
        let not_dense = [Layer::Dropout(0.5), Layer::ReLU, linear(&mut init, 3, 6)?];
        for layers in [&lone[..], &not_dense[..]] {
            let mut rng = Rng::new(8);
            let before = rng.state();
            let got = layers[0].forward_fused(&xs, Kernels::Fast, &layers[1..], Some(&mut rng));
            assert!(got.is_none(), "{} layers", layers.len());
            assert_eq!(rng.state(), before, "no draw");
        }
        Ok(())
    }
}
