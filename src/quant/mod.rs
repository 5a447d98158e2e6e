//! Post-training int8 quantisation of a trained MLP for inference: each Linear
//! layer's weights are quantised per output channel (symmetric: scale =
//! max |w| / 127), its input per tensor with a scale calibrated on training
//! samples (max |x| / 127); the products run on int8 kernels ([`kernel`]) with
//! i32 accumulation, rescaled to f32 with the bias added. The other layers
//! (Flatten, activations; Dropout is the identity at inference) run in f32.
//!
//! Contract: an [`Int8Model`] saves to and loads from one safetensors file
//! (i8 weights, f32 scales and biases) and gives the same outputs after the
//! round trip; layers other than Linear, Flatten, ReLU, Tanh, Sigmoid, GELU and
//! Dropout are refused with their name (convolutions are not quantised yet).

pub mod kernel;

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

pub use kernel::Int8Kernel;

use crate::model::Model;
use crate::spec::LayerSpec;

/// One layer of the quantised model.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// int8 weights `[out][inputs]`, their per-row scales, the f32 bias and the
    /// input's scale.
    Linear {
        inputs: usize,
        outputs: usize,
        weights: Vec<i8>,
        scales: Vec<f32>,
        bias: Vec<f32>,
        input_scale: f32,
        /// The weights widened to i16 once, for the kernels.
        wide: Vec<i16>,
    },
    /// Element-wise, in f32.
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
    /// Flatten and Dropout: nothing to do on flat rows.
    Identity,
}

/// A quantised MLP.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Model {
    steps: Vec<Step>,
    /// Input values per sample.
    pub inputs: usize,
    kernel: Int8Kernel,
}

fn quantise_row(row: &[f32]) -> (Vec<i8>, f32) {
    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    (
        row.iter()
            .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
            .collect(),
        scale,
    )
}

impl Int8Model {
    /// Quantises `model` (built from `layers`), calibrating each Linear input on
    /// `calibration` (rows of `model`'s flattened input).
    pub fn quantise(
        model: &Model,
        layers: &[LayerSpec],
        calibration: &[Vec<f32>],
    ) -> Result<Self, String> {
        let inputs: usize = model.input_shape().iter().product();
        let params: HashMap<&str, &candle_core::Var> = model
            .params()
            .iter()
            .map(|(n, v)| (n.as_str(), v))
            .collect();
        let host = |name: &str| -> Result<(Vec<f32>, Vec<usize>), String> {
            let v = params
                .get(name)
                .ok_or_else(|| format!("no parameter {name}"))?;
            let t = v.as_tensor();
            Ok((
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| e.to_string())?,
                t.dims().to_vec(),
            ))
        };
        let mut steps = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            steps.push(match layer {
                LayerSpec::Linear { .. } => {
                    let (w, dims) = host(&format!("layers.{i}.weight"))?;
                    let (bias, _) = host(&format!("layers.{i}.bias"))?;
                    let (outputs, n_in) = (dims[0], dims[1]);
                    let mut weights = Vec::with_capacity(w.len());
                    let mut scales = Vec::with_capacity(outputs);
                    for row in w.chunks(n_in) {
                        let (q, s) = quantise_row(row);
                        weights.extend(q);
                        scales.push(s);
                    }
                    Step::Linear {
                        inputs: n_in,
                        outputs,
                        wide: weights.iter().map(|&w| i16::from(w)).collect(),
                        weights,
                        scales,
                        bias,
                        input_scale: 1.0,
                    }
                }
                LayerSpec::ReLU => Step::Relu,
                LayerSpec::Tanh => Step::Tanh,
                LayerSpec::Sigmoid => Step::Sigmoid,
                LayerSpec::GELU => Step::Gelu,
                LayerSpec::Flatten | LayerSpec::Dropout { .. } => Step::Identity,
                other => {
                    return Err(format!(
                        "model[{i}] ({}) is not quantised yet: int8 covers MLPs (Linear, \
                         Flatten, ReLU, Tanh, Sigmoid, GELU, Dropout)",
                        other.kind()
                    ));
                }
            });
        }
        let mut q = Self {
            steps,
            inputs,
            kernel: Int8Kernel::detect(),
        };
        q.calibrate(calibration);
        Ok(q)
    }

    /// Sets each Linear input's scale from the largest magnitude it sees.
    fn calibrate(&mut self, rows: &[Vec<f32>]) {
        let mut acts: Vec<Vec<f32>> = rows.to_vec();
        for step in &mut self.steps {
            if let Step::Linear { input_scale, .. } = step {
                let max = acts.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
                *input_scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            }
            acts = acts
                .iter()
                .map(|r| apply(step, r, Int8Kernel::Portable))
                .collect();
        }
    }

    /// Outputs for a batch of flattened inputs.
    pub fn forward(&self, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let mut acts: Vec<Vec<f32>> = rows.to_vec();
        for step in &self.steps {
            acts = match step {
                Step::Linear { .. } => linear_batch(step, &acts, self.kernel),
                _ => acts.iter().map(|r| apply(step, r, self.kernel)).collect(),
            };
        }
        acts
    }

    /// Bytes of the weights as stored (i8 weights, f32 scales and biases).
    pub fn bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Linear {
                    weights,
                    scales,
                    bias,
                    ..
                } => weights.len() + 4 * (scales.len() + bias.len() + 1),
                _ => 0,
            })
            .sum()
    }

    /// Which kernel runs the products.
    pub fn kernel(&self) -> Int8Kernel {
        self.kernel
    }

    /// Writes the model to a safetensors file (atomically).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for (i, s) in self.steps.iter().enumerate() {
            if let Step::Linear {
                inputs,
                outputs,
                weights,
                scales,
                bias,
                input_scale,
                ..
            } = s
            {
                let p = format!("layers.{i}");
                blobs.push((
                    format!("{p}.weight_int8"),
                    Dtype::I8,
                    vec![*outputs, *inputs],
                    weights.iter().map(|&w| w as u8).collect(),
                ));
                blobs.push((
                    format!("{p}.weight_scale"),
                    Dtype::F32,
                    vec![*outputs],
                    f32s(scales),
                ));
                blobs.push((format!("{p}.bias"), Dtype::F32, vec![*outputs], f32s(bias)));
                blobs.push((
                    format!("{p}.input_scale"),
                    Dtype::F32,
                    vec![1],
                    f32s(&[*input_scale]),
                ));
            }
        }
        let views: Vec<(String, TensorView<'_>)> = blobs
            .iter()
            .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let bytes = safetensors::serialize(views, None).map_err(|e| e.to_string())?;
        crate::util::atomic::write_atomic(path, &bytes)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a model written by [`Int8Model::save`] for the layer list `layers`.
    pub fn load(path: &Path, layers: &[LayerSpec], inputs: usize) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
        let f32s = |name: &str| -> Result<Vec<f32>, String> {
            let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let mut steps = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            steps.push(match layer {
                LayerSpec::Linear { out } => {
                    let w = st
                        .tensor(&format!("layers.{i}.weight_int8"))
                        .map_err(|e| format!("layers.{i}: {e}"))?;
                    let inputs = w.shape().get(1).copied().unwrap_or(0);
                    let weights: Vec<i8> = w.data().iter().map(|&b| b as i8).collect();
                    if weights.len() != inputs * out {
                        return Err(format!(
                            "layers.{i}: {} weights for {out} x {inputs}",
                            weights.len()
                        ));
                    }
                    Step::Linear {
                        inputs,
                        outputs: *out,
                        wide: weights.iter().map(|&w| i16::from(w)).collect(),
                        weights,
                        scales: f32s(&format!("layers.{i}.weight_scale"))?,
                        bias: f32s(&format!("layers.{i}.bias"))?,
                        input_scale: f32s(&format!("layers.{i}.input_scale"))?
                            .first()
                            .copied()
                            .unwrap_or(1.0),
                    }
                }
                LayerSpec::ReLU => Step::Relu,
                LayerSpec::Tanh => Step::Tanh,
                LayerSpec::Sigmoid => Step::Sigmoid,
                LayerSpec::GELU => Step::Gelu,
                LayerSpec::Flatten | LayerSpec::Dropout { .. } => Step::Identity,
                other => return Err(format!("model[{i}] ({}) has no int8 form", other.kind())),
            });
        }
        Ok(Self {
            steps,
            inputs,
            kernel: Int8Kernel::detect(),
        })
    }
}

/// One layer on one row.
fn apply(step: &Step, x: &[f32], kernel: Int8Kernel) -> Vec<f32> {
    match step {
        Step::Linear { .. } => linear_batch(step, &[x.to_vec()], kernel)
            .pop()
            .unwrap_or_default(),
        Step::Relu => x.iter().map(|v| v.max(0.0)).collect(),
        Step::Tanh => x.iter().map(|v| v.tanh()).collect(),
        Step::Sigmoid => x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
        Step::Gelu => x
            .iter()
            .map(|&v| 0.5 * v * (1.0 + erf(v / std::f32::consts::SQRT_2)))
            .collect(),
        Step::Identity => x.to_vec(),
    }
}

/// A Linear layer over a batch: inputs quantised and widened once, then four
/// rows at a time against each weight row (each weight row is read once per
/// four inputs).
fn linear_batch(step: &Step, rows: &[Vec<f32>], kernel: Int8Kernel) -> Vec<Vec<f32>> {
    let Step::Linear {
        inputs,
        outputs,
        scales,
        bias,
        input_scale,
        wide,
        ..
    } = step
    else {
        return rows.to_vec();
    };
    let inv = 1.0 / input_scale;
    let xq: Vec<Vec<i16>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| (v * inv).round().clamp(-127.0, 127.0) as i16)
                .collect()
        })
        .collect();
    let mut out = vec![vec![0f32; *outputs]; rows.len()];
    let rescale = |o: usize, acc: i32| acc as f32 * input_scale * scales[o] + bias[o];
    let mut b = 0;
    while b + 4 <= rows.len() {
        let x = [&xq[b][..], &xq[b + 1][..], &xq[b + 2][..], &xq[b + 3][..]];
        for o in 0..*outputs {
            let sums = kernel::dot16x4(kernel, &wide[o * inputs..(o + 1) * inputs], x);
            for (k, s) in sums.iter().enumerate() {
                out[b + k][o] = rescale(o, *s);
            }
        }
        b += 4;
    }
    for r in b..rows.len() {
        for o in 0..*outputs {
            out[r][o] = rescale(
                o,
                kernel::dot16(kernel, &wide[o * inputs..(o + 1) * inputs], &xq[r]),
            );
        }
    }
    out
}

/// erf through a Chebyshev fit of erfc (fractional error below 1.2e-7).
fn erf(x: f32) -> f32 {
    let x = f64::from(x);
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = 1.0
        - t * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    (if x >= 0.0 { y } else { -y }) as f32
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

    #[test]
    fn int8_outputs_match_f32_within_quantisation_error_and_round_trip() {
        let (m, layers) = mlp();
        let q = Int8Model::quantise(&m, &layers, &rows(200, 1)).expect("quantises");
        let x = rows(50, 2);
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        let reference: Vec<Vec<f32>> = m
            .forward(
                &Tensor::from_vec(flat, (50, 1, 8, 8), &Device::Cpu).expect("t"),
                crate::model::Mode::Eval,
            )
            .and_then(|t| t.to_vec2())
            .expect("f32 outputs");
        let out = q.forward(&x);
        let span = reference.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        let worst = out
            .iter()
            .flatten()
            .zip(reference.iter().flatten())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
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
        let back = Int8Model::load(&path, &layers, 64).expect("loads");
        assert_eq!(back.forward(&x), out, "the same after the round trip");
        assert!(q.bytes() < m.param_count() * 4 / 3, "int8 is smaller");
        // The portable kernel gives the same outputs (integer sums are exact).
        let portable = Int8Model {
            kernel: Int8Kernel::Portable,
            ..q.clone()
        };
        assert_eq!(portable.forward(&x), out);
    }

    fn argmax(v: &[f32]) -> usize {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    }

    #[test]
    fn a_convolution_is_refused_by_name() {
        let layers = vec![
            LayerSpec::Conv2d {
                out: 4,
                kernel: 3,
                stride: 1,
                padding: 1,
            },
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 10 },
        ];
        let m = Model::build(&layers, &[1, 8, 8], 1, &Device::Cpu).expect("model");
        let err = Int8Model::quantise(&m, &layers, &rows(4, 1)).expect_err("refused");
        assert!(err.contains("Conv2d"), "{err}");
    }
}
