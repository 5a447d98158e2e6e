//! Turning a validated layer list into a runnable model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};

use super::Kernels;
use super::builders::{Store, build_layer, linear};
use super::layer::Layer;
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
    /// The dtype forward passes compute in (mixed precision when not f32); the
    /// parameters themselves are always f32.
    compute: DType,
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
        let mut store = Store::default();
        let mut shape: Vec<usize> = input.to_vec();
        for (i, spec) in specs.iter().enumerate() {
            let prefix = format!("layers.{i}");
            layers.push(build_layer(
                spec, &shape, &prefix, &mut store, &mut rng, device,
            )?);
            shape = shapes[i].output.clone();
        }
        if let Some(out) = head {
            let fan_in = shape.last().copied().unwrap_or(1);
            layers.push(linear(fan_in, out, "head", &mut store, &mut rng, device)?);
        }
        let tokens = specs.first().is_some_and(LayerSpec::takes_tokens);
        Ok(Self {
            layers,
            params: store.params,
            buffers: store.buffers,
            input_shape: input.to_vec(),
            kernels: Kernels::Fast,
            tokens,
            compute: DType::F32,
        })
    }

    /// Runs a batch `[batch, ...input_shape]` (token models: ids `[batch, steps]`)
    /// through every layer.
    ///
    /// Under mixed precision (`set_compute`) the weights and a value input are cast
    /// to the compute dtype for this pass (trainlab's f32 kernels then step aside
    /// for candle's generic ops) and the output is cast back: the result is f32
    /// logits, so losses, softmax and log-sum-exp always run in f32.
    pub fn forward(&self, xs: &Tensor, mut mode: Mode<'_>) -> Result<Tensor> {
        let mask = if self.tokens {
            Some(xs.ne(0u32)?.to_dtype(self.compute)?)
        } else {
            None
        };
        let cast;
        let (layers, mut xs) = if self.compute == DType::F32 {
            (&self.layers, xs.clone())
        } else {
            cast = self
                .layers
                .iter()
                .map(|l| l.cast(self.compute))
                .collect::<Result<Vec<_>>>()?;
            let xs = if self.tokens {
                xs.clone()
            } else {
                xs.to_dtype(self.compute)?
            };
            (&cast, xs)
        };
        let mut i = 0;
        while i < layers.len() {
            let layer = &layers[i];
            let mut rng = match &mut mode {
                Mode::Train(rng) => Some(&mut **rng),
                Mode::Eval => None,
            };
            // A convolution absorbs the ReLU and pooling after it: the full-size
            // activation then never becomes a tensor of its own.
            if let Some((out, absorbed)) =
                layer.forward_fused(&xs, self.kernels, &layers[i + 1..], rng.as_deref_mut())
            {
                xs = out?;
                i += 1 + absorbed;
                continue;
            }
            xs = layer.forward(&xs, rng, self.kernels, mask.as_ref())?;
            i += 1;
        }
        xs.to_dtype(DType::F32)
    }

    /// Every layer's output for a batch, in evaluation mode, one layer at a time
    /// (nothing fused, always f32): for looking inside a small model.
    pub fn forward_each(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.layers.len());
        // Token models: the padding mask, as `forward` computes it.
        let mask = if self.tokens {
            Some(xs.ne(0u32)?.to_dtype(DType::F32)?)
        } else {
            None
        };
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, None, self.kernels, mask.as_ref())?;
            out.push(xs.clone());
        }
        Ok(out)
    }

    /// Chooses trainlab's fast CPU kernels or candle's reference ops.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Computes forward (and so backward) passes in `dtype` from now on: F32, or
    /// F16/BF16 for mixed precision. The parameters stay f32.
    pub fn set_compute(&mut self, dtype: DType) {
        self.compute = dtype;
    }

    /// The dtype forward passes compute in.
    pub fn compute(&self) -> DType {
        self.compute
    }

    /// Which kernels the model runs.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The built layers, in order (the generation path walks them: `windowed.rs`).
    pub(crate) fn layers(&self) -> &[Layer] {
        &self.layers
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

    /// Writes all weights (and batch-norm statistics) as safetensors, atomically,
    /// with the mode the user's umask gives new files.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::atomic::write_safetensors(path, &self.state())
            .map_err(candle_core::Error::wrap)
    }

    /// Loads weights saved by `save` from a model with the same layer list
    /// (parameters and batch-norm statistics are overwritten in place, widened
    /// or narrowed to the model's dtype). Returns the tensors as the file held
    /// them, so a caller can tell how they were stored.
    pub fn load(&self, path: &Path) -> Result<HashMap<String, Tensor>> {
        let device = self
            .buffers
            .first()
            .map(|(_, t)| t.device().clone())
            .unwrap_or(Device::Cpu);
        let loaded = candle_core::safetensors::load(path, &device)?;
        self.load_state(&loaded, path)?;
        Ok(loaded)
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
    use crate::model::init::{uniform, uniform_bound};
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

    /// Builds `model` (RON layer list) for `input` with a `head`, and trains one
    /// step's forward and backward in `dtype` on `xs`: the outputs must be f32
    /// and near the f32 ones, every gradient f32, finite and near the f32 one.
    fn low_precision_step(model: &str, input: &[usize], head: Option<usize>, xs: &Tensor) {
        let layers: Vec<LayerSpec> = ron::from_str(&format!("[{model}]")).expect("valid layers");
        let mut m = Model::build_with_head(&layers, input, head, 5, &Device::Cpu).expect("built");
        let run = |m: &Model| -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
            let out = m.forward(xs, Mode::Train(&mut Rng::new(1)))?;
            assert_eq!(out.dtype(), DType::F32, "{model}: logits come back in f32");
            let grads = out.sqr()?.mean_all()?.backward()?;
            let mut g = Vec::new();
            for (name, v) in m.params() {
                let grad = grads
                    .get(v.as_tensor())
                    .unwrap_or_else(|| panic!("{model}: no gradient for {name}"));
                assert_eq!(grad.dtype(), DType::F32, "{model}: {name}'s gradient");
                g.push(grad.flatten_all()?.to_vec1::<f32>()?);
            }
            Ok((out.flatten_all()?.to_vec1::<f32>()?, g))
        };
        let (want, want_g) = run(&m).expect("f32 step");
        // Differences are measured against the largest value of their kind: a
        // gradient that is zero in theory (a bias before batch norm) is only noise.
        let largest = |vs: &[f32]| vs.iter().fold(1e-3f32, |s, v| s.max(v.abs()));
        let grad_scale = want_g.iter().map(|g| largest(g)).fold(0f32, f32::max);
        let worst = |a: &[f32], b: &[f32], scale: f32| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() / scale)
                .fold(
                    0f32,
                    |w, d| if d.is_nan() { f32::INFINITY } else { w.max(d) },
                )
        };
        // bf16 keeps 8 bits of mantissa to f16's 11: through batch norm, whose
        // gradient is a difference of nearly equal sums, its error grows to ~10 %.
        for (dtype, tolerance) in [(DType::F16, 0.05), (DType::BF16, 0.15)] {
            m.set_compute(dtype);
            let (got, got_g) = run(&m).unwrap_or_else(|e| panic!("{model} in {dtype:?}: {e}"));
            let w = worst(&got, &want, largest(&want));
            assert!(w < tolerance, "{model} in {dtype:?}: outputs off by {w}");
            for (i, (a, b)) in got_g.iter().zip(&want_g).enumerate() {
                let w = worst(a, b, largest(b).max(0.1 * grad_scale));
                assert!(
                    w < tolerance,
                    "{model} in {dtype:?}: gradient of {} off by {w}",
                    m.params()[i].0
                );
            }
        }
    }

    #[test]
    fn every_layer_trains_in_low_precision_with_f32_gradients() -> Result<()> {
        let images = uniform(&mut Rng::new(2), &[3, 1, 12, 12], 1.0, &Device::Cpu)?;
        low_precision_step(
            "Flatten, Linear(out: 16), ReLU, Dropout(p: 0.2), Linear(out: 4), Tanh, Sigmoid, GELU",
            &[1, 12, 12],
            None,
            &images,
        );
        low_precision_step(
            "Conv2d(out: 4, kernel: 3, padding: 1), ReLU, MaxPool2d(kernel: 2), Flatten, \
             Linear(out: 5)",
            &[1, 12, 12],
            None,
            &images,
        );
        low_precision_step(
            "Conv2d(out: 4, kernel: 3, padding: 1), BatchNorm(), ReLU, MaxPool2d(kernel: 2), \
             Flatten, Linear(out: 5)",
            &[1, 12, 12],
            None,
            &images,
        );
        let ids: Vec<u32> = (0..2 * 6).map(|i| (i * 5 % 9) as u32 + 1).collect();
        let tokens = Tensor::from_vec(ids, (2, 6), &Device::Cpu)?;
        // No dropout between the LSTM layers: the fused f32 kernel draws its masks
        // batch-major, candle's path time-major, so they would differ anyway.
        for body in [
            "Embedding(dim: 8), LSTM(hidden: 8, layers: 2, dropout: 0.0)",
            "Embedding(dim: 8), GRU(hidden: 8, layers: 1, dropout: 0.0), LastStep",
            "Embedding(dim: 8), PositionEmbedding(context: 6), Transformer(heads: 2, width: 16), MeanPool",
        ] {
            low_precision_step(body, &[6, 10], Some(10), &tokens);
        }
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
