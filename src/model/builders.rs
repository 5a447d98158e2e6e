//! The candle side of each layer kind: `build_layer` turns one entry of the
//! layer list into its [`Layer`], with its parameters initialised from the
//! run's seed and named `layers.{i}.<name>` (PyTorch's names, so weight files
//! and exports line up). Everything else about a kind (shape rule, editor
//! fields, export text, what it computes at inference) is in its file under
//! `spec/layers/kinds/`; this match is the one place a new kind adds candle
//! code, besides a new [`Layer`] variant when it computes something new.
//!
//! Contract: called only on layers the shape rule (`spec::infer_shapes`) has
//! accepted for the given input shape, so the shape indexing here holds.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{BatchNorm, Linear};

use super::attention::TransformerBlock;
use super::init::{uniform, uniform_bound};
use super::layer::Layer;
use super::recurrent::{Cell, Recurrent};
use crate::spec::LayerSpec;
use crate::util::rng::Rng;

/// Where a model's tensors go while it is built: trainable parameters, and
/// everything saved (parameters plus batch-norm running statistics), by name.
#[derive(Default)]
pub(super) struct Store {
    pub(super) params: Vec<(String, Var)>,
    pub(super) buffers: Vec<(String, Tensor)>,
}

impl Store {
    /// Adds `t` as the trainable parameter `name`; returns the tensor the layer
    /// computes with (the variable's own).
    fn param(&mut self, name: String, t: Tensor) -> Result<Tensor> {
        let var = Var::from_tensor(&t)?;
        let t = var.as_tensor().clone();
        self.params.push((name.clone(), var));
        self.buffers.push((name, t.clone()));
        Ok(t)
    }
}

/// The candle layer for one entry of the list, for one-sample input `shape`;
/// its tensors are named `<prefix>.<name>`. The shape rule (`spec::infer_shapes`)
/// has already accepted it.
pub(super) fn build_layer(
    spec: &LayerSpec,
    shape: &[usize],
    prefix: &str,
    store: &mut Store,
    rng: &mut Rng,
    device: &Device,
) -> Result<Layer> {
    let mut param = |p: &str, t: Tensor| store.param(format!("{prefix}.{p}"), t);
    Ok(match spec {
        LayerSpec::Linear { out } => return linear(shape[0], *out, prefix, store, rng, device),
        LayerSpec::Conv2d {
            out,
            kernel,
            stride,
            padding,
        } => {
            let c_in = shape[0];
            let b = uniform_bound(c_in * kernel * kernel);
            let w = uniform(rng, &[*out, c_in, *kernel, *kernel], b, device)?;
            let weight = param("weight", w)?;
            let bias = param("bias", uniform(rng, &[*out], b, device)?)?;
            Layer::Conv2d {
                weight,
                bias,
                stride: *stride,
                padding: *padding,
            }
        }
        LayerSpec::MaxPool2d { kernel, stride } => Layer::MaxPool2d {
            kernel: *kernel,
            stride: stride.unwrap_or(*kernel),
        },
        LayerSpec::Flatten => Layer::Flatten,
        LayerSpec::ReLU => Layer::ReLU,
        LayerSpec::Tanh => Layer::Tanh,
        LayerSpec::Sigmoid => Layer::Sigmoid,
        LayerSpec::GELU => Layer::Gelu,
        LayerSpec::Dropout { p } => Layer::Dropout(*p),
        LayerSpec::BatchNorm { momentum, eps } => {
            return batch_norm(shape[0], *momentum, *eps, prefix, store, device);
        }
        LayerSpec::Embedding { dim } => {
            // PyTorch's nn.Embedding init: standard normal.
            let vocab = shape[1];
            let w = (uniform(rng, &[vocab, *dim], 1.0, device)? * 3f64.sqrt())?;
            Layer::Embedding(candle_nn::Embedding::new(param("weight", w)?, *dim))
        }
        LayerSpec::LSTM {
            hidden,
            layers: n,
            dropout,
        }
        | LayerSpec::GRU {
            hidden,
            layers: n,
            dropout,
        } => {
            let cell = if matches!(spec, LayerSpec::LSTM { .. }) {
                Cell::Lstm
            } else {
                Cell::Gru
            };
            let r = Recurrent::new(
                cell, shape[1], *hidden, *n, *dropout, rng, device, &mut param,
            )?;
            Layer::Recurrent(r)
        }
        LayerSpec::PositionEmbedding { context } => {
            let w = uniform(rng, &[*context, shape[1]], 0.02, device)?;
            Layer::Positions(param("weight", w)?)
        }
        LayerSpec::Transformer { heads, width } => Layer::Transformer(Box::new(
            TransformerBlock::new(shape[1], *heads, *width, rng, device, &mut param)?,
        )),
        LayerSpec::MeanPool => Layer::MeanPool,
        LayerSpec::LastStep => Layer::LastStep,
    })
}

/// A fully connected layer `fan_in -> out` (PyTorch's default init), named
/// `<prefix>.weight` and `<prefix>.bias`.
pub(super) fn linear(
    fan_in: usize,
    out: usize,
    prefix: &str,
    store: &mut Store,
    rng: &mut Rng,
    device: &Device,
) -> Result<Layer> {
    let b = uniform_bound(fan_in);
    let w = store.param(
        format!("{prefix}.weight"),
        uniform(rng, &[out, fan_in], b, device)?,
    )?;
    let bias = store.param(format!("{prefix}.bias"), uniform(rng, &[out], b, device)?)?;
    Ok(Layer::Linear(Linear::new(w, Some(bias))))
}

/// Batch norm over `n` features or channels; its running statistics are saved
/// with the parameters.
fn batch_norm(
    n: usize,
    momentum: f64,
    eps: f64,
    prefix: &str,
    store: &mut Store,
    device: &Device,
) -> Result<Layer> {
    let w = store.param(
        format!("{prefix}.weight"),
        Tensor::ones(n, DType::F32, device)?,
    )?;
    let bias = store.param(
        format!("{prefix}.bias"),
        Tensor::zeros(n, DType::F32, device)?,
    )?;
    let bn = BatchNorm::new_with_momentum(
        n,
        Tensor::zeros(n, DType::F32, device)?,
        Tensor::ones(n, DType::F32, device)?,
        w,
        bias,
        eps,
        momentum,
    )?;
    let stats = [
        ("running_mean", bn.running_mean()),
        ("running_var", bn.running_var()),
    ];
    for (name, t) in stats {
        store.buffers.push((format!("{prefix}.{name}"), t.clone()));
    }
    Ok(Layer::BatchNorm(bn))
}
