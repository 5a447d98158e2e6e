//! Post-training int8 quantisation of a trained image model for inference:
//! each Linear and Conv2d layer's weights are quantised per output channel
//! (symmetric: scale = max |w| / 127), its input per tensor with a scale
//! calibrated on training samples (max |x| / 127); the products run on int8
//! kernels ([`kernel`]) with i32 accumulation, rescaled to f32 with the bias
//! added ([`steps`]). Max pooling, batch norm (folded to a per-channel affine
//! map) and activations run in f32; Flatten and Dropout are the identity.
//!
//! Contract: an [`Int8Model`] saves to and loads from one safetensors file
//! (i8 weights, f32 scales, biases and batch-norm maps) and gives the same
//! outputs after the round trip; layers other than those above (text and
//! recurrent layers) are refused with their name.

mod error;
mod fused;
pub mod kernel;
mod steps;

use std::path::Path;

use candle_core::Tensor;
use safetensors::tensor::{Dtype, TensorView};

pub use error::QuantError;
pub use kernel::Int8Kernel;
use steps::{ConvGeom, Int8Weights, Step};

use crate::model::Model;
use crate::spec::{Elementwise, Inference, LayerSpec, infer_shapes};

/// A quantised image model.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Model {
    steps: Vec<Step>,
    /// Input values per sample.
    pub inputs: usize,
    /// One sample's input shape, e.g. `[1, 28, 28]`.
    pub input_shape: Vec<usize>,
    kernel: Int8Kernel,
}

/// One layer of an [`Int8Model`] as an exporter reads it (one per layer of the
/// experiment, in order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuantLayer<'a> {
    /// A Linear or Conv2d layer: `y = (q(x) * s_in) (w * scale)^T + bias` with
    /// `q(x) = round(x / s_in)` clamped to ±127.
    Int8 {
        /// `[outputs][inputs]` row-major; a convolution's inputs in its weight
        /// file's order (channel, kernel row, kernel column).
        weights: &'a [i8],
        /// One per output.
        scales: &'a [f32],
        /// One per output.
        bias: &'a [f32],
        /// The input's calibrated per-tensor scale.
        input_scale: f32,
    },
    /// A BatchNorm folded to `x * scale[c] + shift[c]` per channel.
    Affine {
        /// One per channel.
        scale: &'a [f32],
        /// One per channel.
        shift: &'a [f32],
    },
    /// Runs in f32 exactly as the float layer (pooling, activations, identities).
    Float,
}

/// The steps for `layers` on `input`, with `int8` giving each Linear/Conv2d's
/// weights and `affine` each BatchNorm's (scale, shift) by layer index.
fn build_steps(
    layers: &[LayerSpec],
    input: &[usize],
    mut int8: impl FnMut(usize, usize) -> Result<Int8Weights, QuantError>,
    mut affine: impl FnMut(usize) -> Result<(Vec<f32>, Vec<f32>), QuantError>,
) -> Result<Vec<Step>, QuantError> {
    let shapes = infer_shapes(layers, input)?;
    let mut shape = input.to_vec();
    let mut steps = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let next = shapes.get(i).map(|s| s.output.clone()).unwrap_or_default();
        steps.push(match layer.inference() {
            Inference::Dense => Step::Linear(int8(i, shape.iter().product())?),
            Inference::Conv {
                kernel,
                stride,
                padding,
            } => {
                let (&[c, h, w], &[_, oh, ow]) = (shape.as_slice(), next.as_slice()) else {
                    return Err(QuantError::NotAnImage {
                        index: i,
                        kind: layer.kind(),
                        shape: shape.clone(),
                    });
                };
                let geom = ConvGeom {
                    channels: c,
                    height: h,
                    width: w,
                    kernel,
                    stride,
                    padding,
                    out_h: oh,
                    out_w: ow,
                };
                Step::Conv(int8(i, c * kernel * kernel)?.channels_last(c, kernel), geom)
            }
            Inference::MaxPool { kernel, stride } => {
                let (&[c, h, w], &[_, oh, ow]) = (shape.as_slice(), next.as_slice()) else {
                    return Err(QuantError::NotAnImage {
                        index: i,
                        kind: layer.kind(),
                        shape: shape.clone(),
                    });
                };
                Step::MaxPool {
                    channels: c,
                    height: h,
                    width: w,
                    kernel,
                    stride,
                    out_h: oh,
                    out_w: ow,
                }
            }
            Inference::BatchNorm { .. } => {
                let (scale, shift) = affine(i)?;
                Step::Affine {
                    per: shape.iter().skip(1).product(),
                    scale,
                    shift,
                }
            }
            Inference::Elementwise(Elementwise::Relu) => Step::Relu,
            Inference::Elementwise(Elementwise::Tanh) => Step::Tanh,
            Inference::Elementwise(Elementwise::Sigmoid) => Step::Sigmoid,
            Inference::Elementwise(Elementwise::Gelu) => Step::Gelu,
            Inference::Flatten | Inference::Identity => Step::Identity,
            // Text layers: int8 covers image models.
            Inference::Lookup
            | Inference::Recurrent { .. }
            | Inference::MeanPool
            | Inference::LastStep
            | Inference::Opaque => {
                return Err(QuantError::NoInt8Form {
                    index: i,
                    kind: layer.kind(),
                });
            }
        });
        shape = next;
    }
    Ok(steps)
}

impl Int8Model {
    /// Quantises `model` (built from `layers`), calibrating each int8 layer's
    /// input on `calibration` (rows of `model`'s flattened input).
    pub fn quantise(
        model: &Model,
        layers: &[LayerSpec],
        calibration: &[Vec<f32>],
    ) -> Result<Self, QuantError> {
        let input_shape = model.input_shape().to_vec();
        let state = model.state();
        let host = |name: &str| -> Result<Vec<f32>, QuantError> {
            let t = state.get(name).ok_or_else(|| QuantError::MissingParam {
                name: name.to_string(),
            })?;
            host_values(t)
        };
        let steps = build_steps(
            layers,
            &input_shape,
            |i, inputs| {
                let w = host(&format!("layers.{i}.weight"))?;
                let bias = host(&format!("layers.{i}.bias"))?;
                Ok(Int8Weights::quantise(&w, inputs, bias))
            },
            |i| {
                let eps = match layers.get(i).map(LayerSpec::inference) {
                    Some(Inference::BatchNorm { eps }) => eps as f32,
                    _ => 1e-5,
                };
                let [gamma, beta, mean, var] = ["weight", "bias", "running_mean", "running_var"]
                    .map(|p| host(&format!("layers.{i}.{p}")));
                let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
                let scale: Vec<f32> = gamma
                    .iter()
                    .zip(&var)
                    .map(|(g, v)| g / (v + eps).sqrt())
                    .collect();
                let shift = beta
                    .iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((b, m), s)| b - m * s)
                    .collect();
                Ok((scale, shift))
            },
        )?;
        let mut q = Self {
            steps,
            inputs: input_shape.iter().product(),
            input_shape,
            kernel: Int8Kernel::detect(),
        };
        q.calibrate(calibration);
        Ok(q)
    }

    /// Sets each int8 layer's input scale from the largest magnitude it sees,
    /// with the layers before it already quantised.
    fn calibrate(&mut self, rows: &[Vec<f32>]) {
        let batch = rows.len();
        let mut acts: Vec<f32> = rows.iter().flatten().copied().collect();
        for step in &mut self.steps {
            if let Some(w) = step.int8_mut() {
                let max = acts.iter().fold(0f32, |m, v| m.max(v.abs()));
                w.input_scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            }
            acts = step.run(&acts, batch, self.kernel);
        }
    }

    /// Outputs for a batch of flattened inputs.
    pub fn forward(&self, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let batch = rows.len();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let acts = self.forward_flat(&flat, batch);
        let per = acts.len() / batch.max(1);
        acts.chunks(per.max(1)).map(<[f32]>::to_vec).collect()
    }

    /// Outputs for `batch` samples held back to back in `x` (each [`Self::inputs`]
    /// values, channels-first), back to back: the fused int8 path
    /// (quantisation, rescale, bias and ReLU inside the products).
    pub fn forward_flat(&self, x: &[f32], batch: usize) -> Vec<f32> {
        fused::forward(&self.steps, x, batch, self.kernel)
    }

    /// [`Self::forward_flat`] layer by layer, each int8 layer quantising its f32
    /// input and rescaling its sums to f32 on its own: the reference the fused
    /// path must match bit for bit (tests, benches).
    pub fn forward_unfused(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let mut acts = x.to_vec();
        for step in &self.steps {
            acts = step.run(&acts, batch, self.kernel);
        }
        acts
    }

    /// Bytes of the weights as stored (i8 weights, f32 scales, biases and maps).
    pub fn bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Linear(w) | Step::Conv(w, _) => {
                    w.weights.len() + 4 * (w.scales.len() + w.bias.len() + 1)
                }
                Step::Affine { scale, shift, .. } => 4 * (scale.len() + shift.len()),
                _ => 0,
            })
            .sum()
    }

    /// The layers' stored parts, one per layer of the experiment.
    pub fn layers(&self) -> Vec<QuantLayer<'_>> {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Linear(w) | Step::Conv(w, _) => QuantLayer::Int8 {
                    weights: &w.weights,
                    scales: &w.scales,
                    bias: &w.bias,
                    input_scale: w.input_scale,
                },
                Step::Affine { scale, shift, .. } => QuantLayer::Affine { scale, shift },
                _ => QuantLayer::Float,
            })
            .collect()
    }

    /// Which kernel runs the products.
    pub fn kernel(&self) -> Int8Kernel {
        self.kernel
    }

    /// Runs the products on `kernel` from now on (tests and benches compare them).
    pub fn set_kernel(&mut self, kernel: Int8Kernel) {
        self.kernel = kernel;
    }

    /// Writes the model to a safetensors file (atomically).
    pub fn save(&self, path: &Path) -> Result<(), QuantError> {
        let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for (i, s) in self.steps.iter().enumerate() {
            let p = format!("layers.{i}");
            if let Some(w) = s.int8() {
                blobs.push((
                    format!("{p}.weight_int8"),
                    Dtype::I8,
                    vec![w.outputs, w.inputs],
                    w.weights.iter().map(|&v| v as u8).collect(),
                ));
                let n = vec![w.outputs];
                blobs.push((
                    format!("{p}.weight_scale"),
                    Dtype::F32,
                    n.clone(),
                    f32s(&w.scales),
                ));
                blobs.push((format!("{p}.bias"), Dtype::F32, n, f32s(&w.bias)));
                blobs.push((
                    format!("{p}.input_scale"),
                    Dtype::F32,
                    vec![1],
                    f32s(&[w.input_scale]),
                ));
            }
            if let Step::Affine { scale, shift, .. } = s {
                let n = vec![scale.len()];
                blobs.push((format!("{p}.bn_scale"), Dtype::F32, n.clone(), f32s(scale)));
                blobs.push((format!("{p}.bn_shift"), Dtype::F32, n, f32s(shift)));
            }
        }
        let views: Vec<(String, TensorView<'_>)> = blobs
            .iter()
            .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<Result<_, _>>()?;
        let bytes = safetensors::serialize(views, None)?;
        crate::util::atomic::write_atomic(path, &bytes).map_err(|source| QuantError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a model written by [`Int8Model::save`] for the layer list `layers`
    /// on one-sample input shape `input_shape`.
    pub fn load(
        path: &Path,
        layers: &[LayerSpec],
        input_shape: &[usize],
    ) -> Result<Self, QuantError> {
        let bytes = std::fs::read(path).map_err(|source| QuantError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes)?;
        let f32s = |name: &str| -> Result<Vec<f32>, QuantError> {
            let t = st.tensor(name).map_err(|source| QuantError::Tensor {
                name: name.to_string(),
                source,
            })?;
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let steps = build_steps(
            layers,
            input_shape,
            |i, inputs| {
                let w = st
                    .tensor(&format!("layers.{i}.weight_int8"))
                    .map_err(|source| QuantError::Tensor {
                        name: format!("layers.{i}"),
                        source,
                    })?;
                let weights: Vec<i8> = w.data().iter().map(|&b| b as i8).collect();
                let scales = f32s(&format!("layers.{i}.weight_scale"))?;
                let bias = f32s(&format!("layers.{i}.bias"))?;
                if weights.len() != inputs * scales.len() || bias.len() != scales.len() {
                    return Err(QuantError::Misfit {
                        index: i,
                        weights: weights.len(),
                        scales: scales.len(),
                        biases: bias.len(),
                        inputs,
                    });
                }
                let input_scale = f32s(&format!("layers.{i}.input_scale"))?
                    .first()
                    .copied()
                    .unwrap_or(1.0);
                Ok(Int8Weights::from_parts(
                    inputs,
                    weights,
                    scales,
                    bias,
                    input_scale,
                ))
            },
            |i| {
                Ok((
                    f32s(&format!("layers.{i}.bn_scale"))?,
                    f32s(&format!("layers.{i}.bn_shift"))?,
                ))
            },
        )?;
        Ok(Self {
            steps,
            inputs: input_shape.iter().product(),
            input_shape: input_shape.to_vec(),
            kernel: Int8Kernel::detect(),
        })
    }
}

/// A tensor's values on the host, flattened.
fn host_values(t: &Tensor) -> Result<Vec<f32>, QuantError> {
    Ok(t.flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1::<f32>())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn mlp() -> (Model, Vec<LayerSpec>) {
        let layers = vec![
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 32 },
            LayerSpec::ReLU,
            LayerSpec::Dropout { p: 0.1 },
            LayerSpec::Linear { out: 10 },
        ];
        let m = Model::build(&layers, &[1, 8, 8], 7, &Device::Cpu).expect("model");
        (m, layers)
    }

    fn rows(n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = crate::util::rng::Rng::new(seed);
        (0..n)
            .map(|_| (0..64).map(|_| rng.normal() as f32).collect())
            .collect()
    }

    /// The f32 model's outputs for `x`, rows of 8x8 one-channel images.
    fn f32_outputs(m: &Model, x: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        m.forward(
            &Tensor::from_vec(flat, (x.len(), 1, 8, 8), &Device::Cpu).expect("t"),
            crate::model::Mode::Eval,
        )
        .and_then(|t| t.to_vec2())
        .expect("f32 outputs")
    }

    /// The largest difference between `out` and `reference`, and the largest
    /// magnitude in `reference`.
    fn worst_and_span(out: &[Vec<f32>], reference: &[Vec<f32>]) -> (f32, f32) {
        let span = reference.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        let worst = out
            .iter()
            .flatten()
            .zip(reference.iter().flatten())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        (worst, span)
    }

    #[test]
    fn int8_outputs_match_f32_within_quantisation_error_and_round_trip() {
        let (m, layers) = mlp();
        let q = Int8Model::quantise(&m, &layers, &rows(200, 1)).expect("quantises");
        let x = rows(50, 2);
        let reference = f32_outputs(&m, &x);
        let out = q.forward(&x);
        let (worst, span) = worst_and_span(&out, &reference);
        // Two layers of 8-bit rounding: a few percent of the output range.
        assert!(worst < 0.05 * span, "worst {worst}, span {span}");
        let agree = out
            .iter()
            .zip(&reference)
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        assert!(agree >= 45, "{agree}/50 same class");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("int8.safetensors");
        q.save(&path).expect("saves");
        let back = Int8Model::load(&path, &layers, &[1, 8, 8]).expect("loads");
        assert_eq!(back.forward(&x), out, "the same after the round trip");
        assert!(q.bytes() < m.param_count() * 4 / 3, "int8 is smaller");
        // Every kernel gives the same outputs (integer sums are exact).
        for kernel in Int8Kernel::available() {
            let mut k = q.clone();
            k.set_kernel(kernel);
            assert_eq!(k.forward(&x), out, "{kernel:?}");
        }
    }

    fn argmax(v: &[f32]) -> usize {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    }

    /// A CNN with every layer int8 covers: Conv2d (padded and not, strided),
    /// BatchNorm, MaxPool2d, Dropout, Linear.
    /// The model's state as copies: loading a tensor onto the one it came from
    /// is refused.
    fn copied_state(m: &Model) -> std::collections::HashMap<String, Tensor> {
        m.state()
            .into_iter()
            .map(|(k, v)| (k, v.copy().expect("copy")))
            .collect()
    }

    fn cnn() -> (Model, Vec<LayerSpec>) {
        let layers = vec![
            LayerSpec::Conv2d {
                out: 6,
                kernel: 3,
                stride: 1,
                padding: 1,
            },
            LayerSpec::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            LayerSpec::ReLU,
            LayerSpec::Conv2d {
                out: 5,
                kernel: 2,
                stride: 2,
                padding: 0,
            },
            LayerSpec::Tanh,
            LayerSpec::MaxPool2d {
                kernel: 2,
                stride: None,
            },
            LayerSpec::Dropout { p: 0.2 },
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 10 },
        ];
        let m = Model::build(&layers, &[1, 8, 8], 3, &Device::Cpu).expect("model");
        (m, layers)
    }

    #[test]
    fn a_quantised_cnn_matches_f32_and_round_trips_on_every_kernel() {
        let (m, layers) = cnn();
        // Batch-norm statistics that are not the identity, so the map is tested.
        let mut state = copied_state(&m);
        let dev = Device::Cpu;
        state.insert(
            "layers.1.running_mean".into(),
            Tensor::new(&[0.1f32, -0.2, 0.3, 0.0, 0.5, -0.1], &dev).expect("t"),
        );
        state.insert(
            "layers.1.running_var".into(),
            Tensor::new(&[0.5f32, 2.0, 1.5, 1.0, 0.8, 3.0], &dev).expect("t"),
        );
        m.load_state(&state, Path::new("test"))
            .expect("loads state");
        let q = Int8Model::quantise(&m, &layers, &rows(200, 4)).expect("quantises");
        let x = rows(40, 5);
        let reference = f32_outputs(&m, &x);
        let out = q.forward(&x);
        let (worst, span) = worst_and_span(&out, &reference);
        assert!(worst < 0.06 * span, "worst {worst}, span {span}");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("int8.safetensors");
        q.save(&path).expect("saves");
        let back = Int8Model::load(&path, &layers, &[1, 8, 8]).expect("loads");
        assert_eq!(back.forward(&x), out, "the same after the round trip");
        for kernel in Int8Kernel::available() {
            let mut k = q.clone();
            k.set_kernel(kernel);
            assert_eq!(k.forward(&x), out, "{kernel:?}");
        }
    }

    #[test]
    fn a_text_layer_is_refused_by_name() {
        let layers = vec![LayerSpec::Embedding { dim: 4 }, LayerSpec::MeanPool];
        let m = Model::build_with_head(&layers, &[5, 20], Some(3), 1, &Device::Cpu).expect("model");
        let err = Int8Model::quantise(&m, &layers, &[vec![1.0; 5]])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("Embedding"), "{err}");
    }

    /// Batch norm folds to scale = gamma / sqrt(var + eps) and shift = beta -
    /// mean * scale with the layer's own eps (0.25 here, not the usual 1e-5). By
    /// hand: var + eps = 1 and 4, so scale = [2 / 1, 0.5 / 2] = [2, 0.25] and
    /// shift = [0.1 - 1 * 2, -0.3 + 2 * 0.25] = [-1.9, 0.2].
    #[test]
    fn batch_norm_folds_with_its_own_eps() {
        let layers = vec![
            LayerSpec::BatchNorm {
                momentum: 0.1,
                eps: 0.25,
            },
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 2 },
        ];
        let m = Model::build(&layers, &[2, 2, 2], 3, &Device::Cpu).expect("model");
        let mut state = copied_state(&m);
        let dev = Device::Cpu;
        for (name, v) in [
            ("weight", [2.0f32, 0.5]),
            ("bias", [0.1, -0.3]),
            ("running_mean", [1.0, -2.0]),
            ("running_var", [0.75, 3.75]),
        ] {
            state.insert(
                format!("layers.0.{name}"),
                Tensor::new(&v, &dev).expect("t"),
            );
        }
        m.load_state(&state, Path::new("test"))
            .expect("loads state");
        let q = Int8Model::quantise(&m, &layers, &[vec![1.0; 8]]).expect("quantises");
        let QuantLayer::Affine { scale, shift } = q.layers()[0] else {
            panic!("{:?}", q.layers()[0]);
        };
        for (got, want) in scale.iter().chain(shift).zip([2.0, 0.25, -1.9, 0.2]) {
            assert!(
                (got - want).abs() < 1e-6,
                "scale {scale:?}, shift {shift:?}"
            );
        }
    }

    /// Each int8 layer's input scale is the largest input magnitude seen in
    /// calibration over 127; an input that is all zeros gets scale 1 (not 0).
    #[test]
    fn calibration_sets_the_input_scale_to_max_over_127() {
        let (m, layers) = mlp();
        let mut calibration = rows(3, 8);
        calibration[1][5] = -12.7;
        let q = Int8Model::quantise(&m, &layers, &calibration).expect("quantises");
        let QuantLayer::Int8 { input_scale, .. } = q.layers()[1] else {
            panic!("{:?}", q.layers()[1]);
        };
        assert_eq!(input_scale, 12.7f32 / 127.0);

        let q = Int8Model::quantise(&m, &layers, &[vec![0.0; 64]]).expect("quantises");
        let QuantLayer::Int8 { input_scale, .. } = q.layers()[1] else {
            panic!("{:?}", q.layers()[1]);
        };
        assert_eq!(input_scale, 1.0);
    }

    /// The stored parts per layer, and their size: for the CNN, Conv2d 1 -> 6
    /// (3x3): 54 i8 weights + 4 bytes x (6 scales + 6 biases + 1 input scale) =
    /// 106; BatchNorm: 4 x (6 + 6) = 48; Conv2d 6 -> 5 (2x2): 120 + 4 x 11 = 164;
    /// Linear 20 -> 10: 200 + 4 x 21 = 284. 602 in all.
    #[test]
    fn the_layers_stored_parts_and_their_bytes() {
        let (m, layers) = cnn();
        let q = Int8Model::quantise(&m, &layers, &rows(4, 6)).expect("quantises");
        let kinds: Vec<String> = q
            .layers()
            .iter()
            .map(|l| match l {
                QuantLayer::Int8 {
                    weights,
                    scales,
                    bias,
                    ..
                } => format!("int8 {} {} {}", weights.len(), scales.len(), bias.len()),
                QuantLayer::Affine { scale, shift } => {
                    format!("affine {} {}", scale.len(), shift.len())
                }
                QuantLayer::Float => "float".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "int8 54 6 6",
                "affine 6 6",
                "float",
                "int8 120 5 5",
                "float",
                "float",
                "float",
                "float",
                "int8 200 10 10"
            ]
        );
        assert_eq!(q.bytes(), 602);
    }

    /// `set_kernel` chooses the kernel `kernel` reports.
    #[test]
    fn the_kernel_is_the_one_set() {
        let (m, layers) = mlp();
        let mut q = Int8Model::quantise(&m, &layers, &rows(2, 1)).expect("quantises");
        assert_eq!(q.kernel(), Int8Kernel::detect());
        for kernel in Int8Kernel::available() {
            q.set_kernel(kernel);
            assert_eq!(q.kernel(), kernel);
        }
    }

    /// A file read for another input size is refused (its first layer's weights
    /// do not fit 16 inputs), not loaded with misfitting weights.
    #[test]
    fn a_file_for_another_input_size_is_refused() {
        let (m, layers) = mlp();
        let q = Int8Model::quantise(&m, &layers, &rows(2, 1)).expect("quantises");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("int8.safetensors");
        q.save(&path).expect("saves");
        let err = Int8Model::load(&path, &layers, &[1, 4, 4]).expect_err("misfit");
        assert!(
            matches!(
                err,
                QuantError::Misfit {
                    index: 1,
                    weights: 2048,
                    scales: 32,
                    biases: 32,
                    inputs: 16
                }
            ),
            "{err}"
        );
    }

    /// The layer-by-layer reference (`forward_unfused`) gives the fused path's
    /// outputs bit for bit, on every kernel, for the MLP and the CNN (every kind
    /// of step), and `forward` is the same values cut into rows.
    #[test]
    fn the_unfused_reference_gives_the_fused_outputs_bit_for_bit() {
        for (m, layers) in [mlp(), cnn()] {
            let q = Int8Model::quantise(&m, &layers, &rows(20, 3)).expect("quantises");
            let x = rows(5, 4);
            let flat: Vec<f32> = x.iter().flatten().copied().collect();
            for kernel in Int8Kernel::available() {
                let mut k = q.clone();
                k.set_kernel(kernel);
                let fused = k.forward_flat(&flat, 5);
                assert_eq!(fused.len(), 5 * 10, "{kernel:?}");
                assert_eq!(k.forward_unfused(&flat, 5), fused, "{kernel:?}");
                assert_eq!(k.forward(&x).concat(), fused, "{kernel:?}");
            }
        }
    }
}
