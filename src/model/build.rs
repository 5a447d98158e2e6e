//! Turning a validated layer list into a runnable model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{BatchNorm, Linear};

use super::Kernels;
use super::attention::TransformerBlock;
use super::init::{uniform, uniform_bound};
use super::layer::Layer;
use super::recurrent::{Cell, Recurrent};
use crate::spec::{LayerSpec, infer_shapes};
use crate::util::rng::Rng;

/// Whether a forward pass is for training (dropout on, batch statistics) or not.
pub enum Mode<'a> {
    /// Training: dropout masks are drawn from this RNG.
    Train(&'a mut Rng),
    /// Evaluation or inference.
    Eval,
}

/// A model built from a layer list; owns its parameters.
pub struct Model {
    layers: Vec<Layer>,
    /// Trainable parameters by name, in layer order.
    params: Vec<(String, Var)>,
    /// Everything saved to disk (parameters plus batch-norm running statistics).
    buffers: Vec<(String, Tensor)>,
    input_shape: Vec<usize>,
    kernels: Kernels,
    /// The input is token ids (`u32`, 0 = padding) rather than values.
    tokens: bool,
}

impl Model {
    /// Builds the layers for one-sample input shape `input` (e.g. `[1, 28, 28]`),
    /// with initial weights drawn from `seed`. The list must already be validated.
    pub fn build(specs: &[LayerSpec], input: &[usize], seed: u64, device: &Device) -> Result<Self> {
        Self::build_with_head(specs, input, None, seed, device)
    }

    /// Like `build`, then a Linear output layer named `head` with `head` outputs
    /// (text models: the vocabulary or the classes, known only once data is read).
    /// Token input is written `[steps, vocab]` and fed as ids `[batch, steps]`.
    pub fn build_with_head(
        specs: &[LayerSpec],
        input: &[usize],
        head: Option<usize>,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let shapes = infer_shapes(specs, input).map_err(candle_core::Error::wrap)?;
        let mut rng = Rng::derive(seed, "init");
        let mut layers = Vec::with_capacity(specs.len());
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        let mut shape: Vec<usize> = input.to_vec();
        for (i, spec) in specs.iter().enumerate() {
            let name = |p: &str| format!("layers.{i}.{p}");
            let mut param = |p: &str, t: Tensor| -> Result<Tensor> {
                let var = Var::from_tensor(&t)?;
                let t = var.as_tensor().clone();
                params.push((name(p), var));
                buffers.push((name(p), t.clone()));
                Ok(t)
            };
            let layer = match spec {
                LayerSpec::Linear { out } => {
                    let fan_in = shape[0];
                    let b = uniform_bound(fan_in);
                    let w = param("weight", uniform(&mut rng, &[*out, fan_in], b, device)?)?;
                    let bias = param("bias", uniform(&mut rng, &[*out], b, device)?)?;
                    Layer::Linear(Linear::new(w, Some(bias)))
                }
                LayerSpec::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                } => {
                    let c_in = shape[0];
                    let b = uniform_bound(c_in * kernel * kernel);
                    let w = param(
                        "weight",
                        uniform(&mut rng, &[*out, c_in, *kernel, *kernel], b, device)?,
                    )?;
                    let bias = param("bias", uniform(&mut rng, &[*out], b, device)?)?;
                    Layer::Conv2d {
                        weight: w,
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
                    let n = shape[0];
                    let w = param("weight", Tensor::ones(n, DType::F32, device)?)?;
                    let bias = param("bias", Tensor::zeros(n, DType::F32, device)?)?;
                    let bn = BatchNorm::new_with_momentum(
                        n,
                        Tensor::zeros(n, DType::F32, device)?,
                        Tensor::ones(n, DType::F32, device)?,
                        w,
                        bias,
                        *eps,
                        *momentum,
                    )?;
                    buffers.push((name("running_mean"), bn.running_mean().clone()));
                    buffers.push((name("running_var"), bn.running_var().clone()));
                    Layer::BatchNorm(bn)
                }
                LayerSpec::Embedding { dim } => {
                    // PyTorch's nn.Embedding init: standard normal.
                    let vocab = shape[1];
                    let w = (uniform(&mut rng, &[vocab, *dim], 1.0, device)? * 3f64.sqrt())?;
                    let w = param("weight", w)?;
                    Layer::Embedding(candle_nn::Embedding::new(w, *dim))
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
                        cell, shape[1], *hidden, *n, *dropout, &mut rng, device, &mut param,
                    )?;
                    Layer::Recurrent(r)
                }
                LayerSpec::PositionEmbedding { context } => {
                    let w = uniform(&mut rng, &[*context, shape[1]], 0.02, device)?;
                    Layer::Positions(param("weight", w)?)
                }
                LayerSpec::Transformer { heads, width } => Layer::Transformer(Box::new(
                    TransformerBlock::new(shape[1], *heads, *width, &mut rng, device, &mut param)?,
                )),
                LayerSpec::MeanPool => Layer::MeanPool,
                LayerSpec::LastStep => Layer::LastStep,
            };
            layers.push(layer);
            shape = shapes[i].output.clone();
        }
        if let Some(out) = head {
            let fan_in = shape.last().copied().unwrap_or(1);
            let b = uniform_bound(fan_in);
            let mut param = |p: &str, t: Tensor| -> Result<Tensor> {
                let var = Var::from_tensor(&t)?;
                params.push((format!("head.{p}"), var.clone()));
                buffers.push((format!("head.{p}"), var.as_tensor().clone()));
                Ok(var.as_tensor().clone())
            };
            let w = param("weight", uniform(&mut rng, &[out, fan_in], b, device)?)?;
            let bias = param("bias", uniform(&mut rng, &[out], b, device)?)?;
            layers.push(Layer::Linear(Linear::new(w, Some(bias))));
        }
        let tokens = specs.first().is_some_and(LayerSpec::takes_tokens);
        Ok(Self {
            layers,
            params,
            buffers,
            input_shape: input.to_vec(),
            kernels: Kernels::Fast,
            tokens,
        })
    }

    /// Runs a batch `[batch, ...input_shape]` (token models: ids `[batch, steps]`)
    /// through every layer.
    pub fn forward(&self, xs: &Tensor, mut mode: Mode<'_>) -> Result<Tensor> {
        let mask = if self.tokens {
            Some(xs.ne(0u32)?.to_dtype(DType::F32)?)
        } else {
            None
        };
        let mut xs = xs.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let layer = &self.layers[i];
            // A convolution absorbs the ReLU and pooling after it: the full-size
            // activation then never becomes a tensor of its own.
            if let Some((out, absorbed)) =
                layer.forward_fused(&xs, self.kernels, &self.layers[i + 1..])
            {
                xs = out?;
                i += 1 + absorbed;
                continue;
            }
            let rng = match &mut mode {
                Mode::Train(rng) => Some(&mut **rng),
                Mode::Eval => None,
            };
            xs = layer.forward(&xs, rng, self.kernels, mask.as_ref())?;
            i += 1;
        }
        Ok(xs)
    }

    /// Every layer's output for a batch, in evaluation mode, one layer at a time
    /// (nothing fused): for looking inside a small model.
    pub fn forward_each(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.layers.len());
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, None, self.kernels, None)?;
            out.push(xs.clone());
        }
        Ok(out)
    }

    /// Chooses trainlab's fast CPU kernels or candle's reference ops.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Which kernels the model runs.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Trainable parameters with their names, in layer order.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Shape of one input sample.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Current values of everything that is saved, by name.
    pub fn state(&self) -> HashMap<String, Tensor> {
        self.buffers
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    /// Writes all weights (and batch-norm statistics) as safetensors, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = crate::util::atomic::temp_name(path);
        let state = self.state();
        let result = candle_core::safetensors::save(&state, &tmp)
            .and_then(|()| std::fs::rename(&tmp, path).map_err(candle_core::Error::wrap));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Loads weights saved by `save` from a model with the same layer list
    /// (parameters and batch-norm statistics are overwritten in place).
    pub fn load(&self, path: &Path) -> Result<()> {
        let device = self
            .buffers
            .first()
            .map(|(_, t)| t.device().clone())
            .unwrap_or(Device::Cpu);
        let loaded = candle_core::safetensors::load(path, &device)?;
        self.load_state(&loaded, path)
    }

    /// Overwrites every saved tensor from `loaded` (read from `path`, named in
    /// errors); every name must be there with the same shape.
    pub fn load_state(&self, loaded: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
        for (name, dst) in &self.buffers {
            let src = loaded.get(name).ok_or_else(|| {
                candle_core::Error::Msg(format!("{} has no tensor {name}", path.display()))
            })?;
            if src.dims() != dst.dims() {
                candle_core::bail!(
                    "{name}: file has shape {:?}, model needs {:?}",
                    src.dims(),
                    dst.dims()
                );
            }
            dst.slice_set(&src.to_dtype(dst.dtype())?.contiguous()?, 0, 0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Experiment;

    #[test]
    fn same_seed_same_weights_and_param_count() -> Result<()> {
        let exp = Experiment::default();
        let a = Model::build(&exp.model, &[1, 28, 28], 1, &Device::Cpu)?;
        let b = Model::build(&exp.model, &[1, 28, 28], 1, &Device::Cpu)?;
        let c = Model::build(&exp.model, &[1, 28, 28], 2, &Device::Cpu)?;
        assert_eq!(a.param_count(), 101_770);
        let w = |m: &Model| m.params()[0].1.flatten_all()?.to_vec1::<f32>();
        assert_eq!(w(&a)?, w(&b)?);
        assert_ne!(w(&a)?, w(&c)?);
        let bound = uniform_bound(784);
        assert!(w(&a)?.iter().all(|v| v.abs() <= bound));
        Ok(())
    }

    #[test]
    fn cnn_forward_shape_and_save_load() -> Result<()> {
        let layers = crate::spec::from_ron_str(
            "(model: [Conv2d(out: 4, kernel: 3, padding: 1), BatchNorm(), ReLU, MaxPool2d(kernel: 2), \
             Flatten, Dropout(p: 0.5), Linear(out: 10)])",
            "t",
        )
        .map_err(candle_core::Error::wrap)?
        .model;
        let m = Model::build(&layers, &[1, 28, 28], 3, &Device::Cpu)?;
        let xs = Tensor::ones((2, 1, 28, 28), DType::F32, &Device::Cpu)?;
        let ys = m.forward(&xs, Mode::Train(&mut Rng::new(0)))?;
        assert_eq!(ys.dims(), &[2, 10]);
        let dir = tempfile::tempdir().map_err(candle_core::Error::wrap)?;
        let path = dir.path().join("m.safetensors");
        m.save(&path)?;
        let names: Vec<String> = candle_core::safetensors::load(&path, &Device::Cpu)?
            .into_keys()
            .collect();
        assert!(
            names.contains(&"layers.1.running_var".to_string()),
            "{names:?}"
        );
        let other = Model::build(&layers, &[1, 28, 28], 4, &Device::Cpu)?;
        other.load(&path)?;
        let e1 = m.forward(&xs, Mode::Eval)?.to_vec2::<f32>()?;
        let e2 = other.forward(&xs, Mode::Eval)?.to_vec2::<f32>()?;
        assert_eq!(e1, e2, "loaded weights reproduce the outputs");
        Ok(())
    }
}
