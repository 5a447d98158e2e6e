//! The int8 layers of `export onnx --int8` as ONNX's QDQ form: each Linear and
//! Conv2d reads its input through QuantizeLinear → DequantizeLinear with the
//! calibrated per-tensor scale, and its weights as int8 constants through a
//! per-output-channel DequantizeLinear (axis 0); the bias stays f32. A folded
//! BatchNorm is its per-channel Mul and Add; every other layer is the float
//! mapping ([`GraphBuilder::layer`]).
//!
//! Contract: the graph computes what [`crate::quant::Int8Model`] computes, up
//! to ONNX's rounding (half to even, where trainlab rounds half away from
//! zero) and range (−128..127, where trainlab clamps to ±127); zero points are
//! 0 (symmetric quantisation).

use super::ExportError;
use super::onnx_graph::{GraphBuilder, int};
use crate::quant::QuantLayer;
use crate::spec::{Inference, LayerSpec};

impl GraphBuilder {
    /// The nodes of layer `i` in its quantised form `q`, applied to `x` (one
    /// sample has `shape`).
    pub(super) fn quantised(
        &mut self,
        i: usize,
        layer: &LayerSpec,
        q: QuantLayer<'_>,
        x: &str,
        shape: &[usize],
    ) -> Result<String, ExportError> {
        let p = |s: &str| format!("layers.{i}.{s}");
        let n = p(layer.kind());
        match q {
            QuantLayer::Int8 {
                weights,
                scales,
                bias,
                input_scale,
            } => {
                let outputs = scales.len();
                let form = layer.inference();
                let dims = match (form, shape) {
                    (Inference::Conv { kernel, .. }, &[c, _, _]) => {
                        vec![outputs, c, kernel, kernel]
                    }
                    (Inference::Dense, &[inputs]) => vec![outputs, inputs],
                    _ => {
                        return Err(ExportError::QdqInput {
                            index: i,
                            kind: layer.kind(),
                            shape: shape.to_vec(),
                        });
                    }
                };
                if dims.iter().product::<usize>() != weights.len() || bias.len() != outputs {
                    return Err(ExportError::QdqMisfit {
                        index: i,
                        kind: layer.kind(),
                        weights: weights.len(),
                        biases: bias.len(),
                        dims,
                    });
                }
                let xd = self.quantise_input(i, x, input_scale);
                let wq = self.constant_i8(&p("weight_int8"), &dims, weights);
                let ws = self.constant(&p("weight_scale"), &[outputs], scales);
                let wz = self.constant_i8(&p("weight_zero_point"), &[outputs], &vec![0; outputs]);
                let wd = self.node(
                    "DequantizeLinear",
                    &p("weight_dq"),
                    &[&wq, &ws, &wz],
                    vec![int("axis", 0)],
                );
                let b = self.constant(&p("bias"), &[outputs], bias);
                Ok(match form {
                    Inference::Conv {
                        kernel,
                        stride,
                        padding,
                    } => self.conv(&n, &xd, &wd, &b, [kernel, stride, padding]),
                    _ => self.node("Gemm", &n, &[&xd, &wd, &b], vec![int("transB", 1)]),
                })
            }
            QuantLayer::Affine { scale, shift } => {
                // Per channel: [C, 1, 1] against [N, C, H, W], [C] against [N, C].
                let mut dims = vec![scale.len()];
                dims.extend(shape.iter().skip(1).map(|_| 1));
                let s = self.constant(&p("bn_scale"), &dims, scale);
                let b = self.constant(&p("bn_shift"), &dims, shift);
                let scaled = self.node("Mul", &p("bn_scaled"), &[x, &s], vec![]);
                Ok(self.node("Add", &n, &[&scaled, &b], vec![]))
            }
            QuantLayer::Float => self.layer(i, layer, x, shape),
        }
    }

    /// `x` through QuantizeLinear and DequantizeLinear with scale `scale` and
    /// zero point 0 (int8): the values the int8 product reads.
    fn quantise_input(&mut self, i: usize, x: &str, scale: f32) -> String {
        let p = |s: &str| format!("layers.{i}.{s}");
        let s = self.constant(&p("input_scale"), &[], &[scale]);
        let z = self.constant_i8(&p("input_zero_point"), &[], &[0]);
        let q = self.node("QuantizeLinear", &p("input_q"), &[x, &s, &z], vec![]);
        self.node("DequantizeLinear", &p("input_dq"), &[&q, &s, &z], vec![])
    }
}
