//! The graph under construction for `export onnx` ([`super::onnx`]): nodes and
//! constants named after the layer that makes them (`layers.{i}.…`), from
//! what each layer computes at inference ([`Inference`], which its kind's
//! descriptor gives): a new kind that computes one of those needs nothing here.
//!
//! Contract: every value is the output of exactly one node or one constant; a
//! layer kind with no mapping is an error naming `model[i]`; nothing here
//! touches the disk.

use std::collections::HashMap;

use candle_core::Tensor;

use super::ExportError;
use super::onnx_proto::{
    AttributeProto, FLOAT, INT8, INT64, NodeProto, TensorProto, attribute_type,
};
use crate::spec::{Elementwise, Inference, LayerSpec};

/// Collects nodes and constants; names values after the node that makes them.
pub(super) struct GraphBuilder {
    pub(super) nodes: Vec<NodeProto>,
    pub(super) init: Vec<TensorProto>,
    /// The run's saved tensors by name (`layers.{i}.weight`, ...).
    pub(super) state: HashMap<String, Tensor>,
    /// Text models: 1.0 for real tokens, 0.0 for padding, `[N, T, 1]`.
    mask: Option<String>,
}

impl GraphBuilder {
    pub(super) fn new(state: HashMap<String, Tensor>) -> Self {
        Self {
            nodes: Vec::new(),
            init: Vec::new(),
            state,
            mask: None,
        }
    }

    /// The padding mask of token ids `tokens` (`[N, T]`), as `[N, T, 1]` floats.
    pub(super) fn token_mask(&mut self, tokens: &str) {
        let zero = self.constant_i64("mask.pad_id", &[], &[0]);
        let axis = self.constant_i64("mask.axis", &[1], &[2]);
        let pad = self.node("Equal", "mask.is_pad", &[tokens, &zero], vec![]);
        let real = self.node("Not", "mask.is_real", &[&pad], vec![]);
        let m = self.node(
            "Cast",
            "mask.float",
            &[&real],
            vec![int("to", i64::from(FLOAT))],
        );
        self.mask = Some(self.node("Unsqueeze", "mask", &[&m, &axis], vec![]));
    }

    /// The saved tensor `name`'s shape and values.
    pub(super) fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ExportError> {
        let t = self
            .state
            .get(name)
            .ok_or_else(|| ExportError::MissingTensor {
                name: name.to_string(),
            })?;
        let values = t
            .flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|source| ExportError::Tensor {
                name: name.to_string(),
                source,
            })?;
        Ok((t.dims().to_vec(), values))
    }

    /// `x W^T + b` for the weight constant `w` (`[out, in]`, named after the
    /// saved tensor) and the saved bias `bias`: Gemm on `[in]` samples, MatMul
    /// with the transposed weight on `[t, in]` sequences.
    pub(super) fn linear(
        &mut self,
        x: &str,
        shape: &[usize],
        w: &str,
        bias: &str,
        name: &str,
    ) -> Result<String, ExportError> {
        let b = self.weight(bias)?;
        match shape.len() {
            1 => Ok(self.node("Gemm", name, &[x, w, &b], vec![int("transB", 1)])),
            2 => {
                let (dims, values) = self.values(w)?;
                let (out, inp) = (dims[0], dims[1]);
                let t: Vec<f32> = (0..inp)
                    .flat_map(|i| (0..out).map(move |o| (i, o)))
                    .map(|(i, o)| values[o * inp + i])
                    .collect();
                let wt = self.constant(&format!("{w}_t"), &[inp, out], &t);
                let y = self.node("MatMul", &format!("{name}.matmul"), &[x, &wt], vec![]);
                Ok(self.node("Add", name, &[&y, &b], vec![]))
            }
            _ => Err(ExportError::LinearInput {
                name: name.to_string(),
                shape: shape.to_vec(),
            }),
        }
    }

    /// A stack of LSTM or GRU layers on `[N, T, d]`, in ONNX's gate order.
    pub(super) fn recurrent(
        &mut self,
        i: usize,
        lstm: bool,
        layers: usize,
        hidden: usize,
        x: &str,
    ) -> Result<String, ExportError> {
        let p = |s: &str| format!("layers.{i}.{s}");
        // trainlab's rows are PyTorch's gates (LSTM i f g o, GRU r z n); ONNX
        // wants LSTM i o f c and GRU z r h.
        let order: &[usize] = if lstm { &[0, 3, 1, 2] } else { &[1, 0, 2] };
        let reorder = |values: &[f32], cols: usize| -> Vec<f32> {
            order
                .iter()
                .flat_map(|&k| {
                    values[k * hidden * cols..(k + 1) * hidden * cols]
                        .iter()
                        .copied()
                })
                .collect()
        };
        let perm = ints("perm", &[1, 0, 2]);
        let squeeze_axis = self.constant_i64(&p("squeeze_axis"), &[1], &[1]);
        let mut seq = self.node("Transpose", &p("time_major"), &[x], vec![perm.clone()]);
        let gates = order.len();
        for l in 0..layers {
            let (wd, w) = self.values(&p(&format!("weight_ih_l{l}")))?;
            let (_, r) = self.values(&p(&format!("weight_hh_l{l}")))?;
            let d = wd[1];
            let wn = self.constant(
                &p(&format!("onnx_w_l{l}")),
                &[1, gates * hidden, d],
                &reorder(&w, d),
            );
            let rn = self.constant(
                &p(&format!("onnx_r_l{l}")),
                &[1, gates * hidden, hidden],
                &reorder(&r, hidden),
            );
            let (b_in, b_rec) = if lstm {
                // One bias per layer: all of it on the input side.
                let (_, b) = self.values(&p(&format!("bias_l{l}")))?;
                (reorder(&b, 1), vec![0.0; gates * hidden])
            } else {
                let (_, bi) = self.values(&p(&format!("bias_ih_l{l}")))?;
                let (_, bh) = self.values(&p(&format!("bias_hh_l{l}")))?;
                (reorder(&bi, 1), reorder(&bh, 1))
            };
            let bias: Vec<f32> = b_in.into_iter().chain(b_rec).collect();
            let bn = self.constant(&p(&format!("onnx_b_l{l}")), &[1, 2 * gates * hidden], &bias);
            let mut attrs = vec![int("hidden_size", hidden as i64)];
            if !lstm {
                // PyTorch's GRU applies the reset gate after the recurrent matmul.
                attrs.push(int("linear_before_reset", 1));
            }
            let op = if lstm { "LSTM" } else { "GRU" };
            let y = self.node(
                op,
                &p(&format!("{}_l{l}", op.to_lowercase())),
                &[&seq, &wn, &rn, &bn],
                attrs,
            );
            seq = self.node(
                "Squeeze",
                &p(&format!("out_l{l}")),
                &[&y, &squeeze_axis],
                vec![],
            );
        }
        Ok(self.node("Transpose", &p("batch_major"), &[&seq], vec![perm]))
    }

    /// A float32 constant named `name`.
    pub(super) fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, FLOAT, raw)
    }

    /// An int64 constant named `name`.
    pub(super) fn constant_i64(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, INT64, raw)
    }

    /// An int8 constant named `name`.
    pub(super) fn constant_i8(&mut self, name: &str, dims: &[usize], values: &[i8]) -> String {
        let raw = values.iter().map(|&v| v as u8).collect();
        self.push_init(name, dims, INT8, raw)
    }

    fn push_init(&mut self, name: &str, dims: &[usize], data_type: i32, raw: Vec<u8>) -> String {
        self.init.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.to_string(),
            raw_data: raw,
        });
        name.to_string()
    }

    /// The saved tensor `name` as a constant of the same name and shape.
    pub(super) fn weight(&mut self, name: &str) -> Result<String, ExportError> {
        let (dims, values) = self.values(name)?;
        Ok(self.constant(name, &dims, &values))
    }

    /// Appends a node `name` running `op` on `inputs`; returns its output's name.
    pub(super) fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute,
        });
        name.to_string()
    }

    /// The nodes of layer `i` applied to value `x` (one sample has `shape`).
    pub(super) fn layer(
        &mut self,
        i: usize,
        layer: &LayerSpec,
        x: &str,
        shape: &[usize],
    ) -> Result<String, ExportError> {
        let p = |s: &str| format!("layers.{i}.{s}");
        let n = p(layer.kind());
        Ok(match layer.inference() {
            Inference::Dense => {
                let w = if shape.len() == 1 {
                    self.weight(&p("weight"))?
                } else {
                    p("weight")
                };
                self.linear(x, shape, &w, &p("bias"), &n)
                    .map_err(|e| ExportError::InLayer {
                        index: i,
                        kind: layer.kind(),
                        source: Box::new(e),
                    })?
            }
            Inference::Lookup => {
                let w = self.weight(&p("weight"))?;
                self.node("Gather", &n, &[&w, x], vec![int("axis", 0)])
            }
            Inference::Recurrent {
                lstm,
                layers,
                hidden,
            } => self.recurrent(i, lstm, layers, hidden, x)?,
            Inference::MeanPool => self.mean_pool(i, x)?,
            Inference::LastStep => {
                let last = self.constant_i64(&p("last"), &[], &[shape[0] as i64 - 1]);
                self.node("Gather", &n, &[x, &last], vec![int("axis", 1)])
            }
            Inference::Conv {
                kernel,
                stride,
                padding,
            } => {
                let w = self.weight(&p("weight"))?;
                let b = self.weight(&p("bias"))?;
                self.conv(&n, x, &w, &b, [kernel, stride, padding])
            }
            Inference::MaxPool { kernel, stride } => {
                let (k, s) = (kernel as i64, stride as i64);
                self.node(
                    "MaxPool",
                    &n,
                    &[x],
                    vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s])],
                )
            }
            Inference::Flatten => self.node("Flatten", &n, &[x], vec![int("axis", 1)]),
            Inference::Elementwise(Elementwise::Relu) => self.node("Relu", &n, &[x], vec![]),
            Inference::Elementwise(Elementwise::Tanh) => self.node("Tanh", &n, &[x], vec![]),
            Inference::Elementwise(Elementwise::Sigmoid) => self.node("Sigmoid", &n, &[x], vec![]),
            Inference::Elementwise(Elementwise::Gelu) => self.gelu(i, x, &n),
            Inference::Identity => x.to_string(),
            Inference::BatchNorm { eps } => self.batch_norm(i, x, &n, eps)?,
            Inference::Opaque => {
                return Err(ExportError::Layer {
                    index: i,
                    kind: layer.kind(),
                    problem: " has no ONNX mapping in trainlab's exporter".into(),
                });
            }
        })
    }

    /// Mean over the real (unpadded) steps of `[N, T, d]`: sum of real steps /
    /// max(1, real steps).
    fn mean_pool(&mut self, i: usize, x: &str) -> Result<String, ExportError> {
        let p = |s: &str| format!("layers.{i}.{s}");
        let mask = self
            .mask
            .clone()
            .ok_or(ExportError::NeedsTokens { index: i })?;
        let axis = self.constant_i64(&p("axis"), &[1], &[1]);
        let one = self.constant(&p("one"), &[1], &[1.0]);
        let masked = self.node("Mul", &p("masked"), &[x, &mask], vec![]);
        let sum = self.node(
            "ReduceSum",
            &p("sum"),
            &[&masked, &axis],
            vec![int("keepdims", 0)],
        );
        let count = self.node(
            "ReduceSum",
            &p("count"),
            &[&mask, &axis],
            vec![int("keepdims", 0)],
        );
        let count = self.node("Max", &p("at_least_one"), &[&count, &one], vec![]);
        Ok(self.node("Div", &p("MeanPool"), &[&sum, &count], vec![]))
    }

    /// A square convolution node `name` of `x` with weight `w` and bias `b`
    /// (`[kernel, stride, padding]`).
    pub(super) fn conv(
        &mut self,
        name: &str,
        x: &str,
        w: &str,
        b: &str,
        geom: [usize; 3],
    ) -> String {
        let [k, s, pad] = geom.map(|v| v as i64);
        self.node(
            "Conv",
            name,
            &[x, w, b],
            vec![
                ints("kernel_shape", &[k, k]),
                ints("strides", &[s, s]),
                ints("pads", &[pad, pad, pad, pad]),
            ],
        )
    }

    /// The exact (erf) GELU trainlab computes: x/2 (1 + erf(x / sqrt 2)).
    fn gelu(&mut self, i: usize, x: &str, name: &str) -> String {
        let p = |s: &str| format!("layers.{i}.{s}");
        let r = self.constant(
            &p("gelu.inv_sqrt2"),
            &[1],
            &[std::f32::consts::FRAC_1_SQRT_2],
        );
        let one = self.constant(&p("gelu.one"), &[1], &[1.0]);
        let half = self.constant(&p("gelu.half"), &[1], &[0.5]);
        let scaled = self.node("Mul", &p("gelu.scaled"), &[x, &r], vec![]);
        let erf = self.node("Erf", &p("gelu.erf"), &[&scaled], vec![]);
        let plus = self.node("Add", &p("gelu.plus1"), &[&erf, &one], vec![]);
        let times = self.node("Mul", &p("gelu.times_x"), &[x, &plus], vec![]);
        self.node("Mul", name, &[&times, &half], vec![])
    }

    /// BatchNormalization with the running statistics.
    fn batch_norm(
        &mut self,
        i: usize,
        x: &str,
        name: &str,
        eps: f64,
    ) -> Result<String, ExportError> {
        let p = |s: &str| format!("layers.{i}.{s}");
        let w = self.weight(&p("weight"))?;
        let b = self.weight(&p("bias"))?;
        let mean = self.weight(&p("running_mean"))?;
        let var = self.weight(&p("running_var"))?;
        Ok(self.node(
            "BatchNormalization",
            name,
            &[x, &w, &b, &mean, &var],
            vec![float("epsilon", eps as f32)],
        ))
    }

    /// Makes value `x` the graph output `name`: renames the node that produces it
    /// (or adds an Identity when `x` is the graph input itself).
    pub(super) fn finish_as(&mut self, x: &str, name: &str) {
        let read = self.nodes_read(x);
        let producer = self
            .nodes
            .iter_mut()
            .rev()
            .find(|n| n.output.iter().any(|o| o == x));
        match producer {
            Some(node) if !read => node.output = vec![name.to_string()],
            _ => {
                self.node("Identity", name, &[x], vec![]);
            }
        }
    }

    /// Whether any node reads value `x`.
    fn nodes_read(&self, x: &str) -> bool {
        self.nodes.iter().any(|n| n.input.iter().any(|i| i == x))
    }
}

pub(super) fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

pub(super) fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(super) fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..Default::default()
    }
}
