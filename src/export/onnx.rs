//! `trainlab export onnx RUN_DIR`: a trained run as one ONNX model file (opset
//! 17) that ONNX Runtime and other ONNX tools load.
//!
//! Contract: the graph takes what a user has, not trainlab's internals, and
//! returns the model's raw outputs:
//! - image classifiers: `image`, float32 `[N, C, H, W]` of pixel / 255; the run's
//!   per-channel normalisation is the first two nodes; out `logits` `[N, classes]`;
//! - playground (Points) models: `point`, float32 `[N, 2]` of raw (x1, x2); the
//!   experiment's input features are computed inside the graph; out `logits`
//!   `[N, outputs]` (one output: the class-1 logit) or `prediction` `[N, 1]` for
//!   regression;
//! - DQN Q-networks: `state`, float32 `[N, inputs]` in the experiment's state
//!   encoding; out `q_values` `[N, 4]` (up, right, down, left);
//! - text models: `tokens`, int64 `[N, T]` of the run's token ids (0 = padding,
//!   on the left); out `logits` `[N, T, vocab]` for language models, `[N,
//!   classes]` for classifiers (the output layer `head` included).
//!
//! Layers map one to one (Linear as Gemm, or MatMul + Add on sequences, Conv2d,
//! MaxPool2d, Flatten, ReLU, Tanh, Sigmoid, BatchNormalization with the running
//! statistics, GELU as its erf formula, Embedding as Gather, LSTM and GRU with
//! their gates reordered to ONNX's, MeanPool over the real tokens, LastStep as a
//! Gather); Dropout is left out. A layer with no mapping here
//! (PositionEmbedding, Transformer) is an error naming it, and nothing is
//! written. The model's `metadata_props` record the input and output names and
//! shapes, class names, experiment name and trainlab version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use prost::Message;

use super::onnx_proto::{
    AttributeProto, Dimension, DimensionValue, FLOAT, GraphProto, INT64, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto, attribute_type,
};
use crate::runs::{files, load_saved_model_with};
use crate::spec::{DatasetSpec, Experiment, Feature, LayerSpec, infer_shapes, load_file};

/// The operator set version the graph uses.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
const IR_VERSION: i64 = 8;

/// What was written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The model file.
    pub path: PathBuf,
    /// Graph input name and shape, e.g. `image [N, 1, 28, 28]`.
    pub input: String,
    /// Graph output name and shape.
    pub output: String,
    /// Number of nodes in the graph.
    pub nodes: usize,
}

/// Builds the ONNX model of the run in `run_dir` and writes it to `out` (temp
/// file + rename: on any error nothing is written).
pub fn export(run_dir: &Path, out: &Path) -> Result<Exported, String> {
    let model = build(run_dir)?;
    let graph = model.graph.as_ref();
    let nodes = graph.map_or(0, |g| g.node.len());
    let meta = |key: &str| {
        model
            .metadata_props
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
            .unwrap_or_default()
    };
    let (input, output) = (meta("input"), meta("output"));
    crate::util::atomic::write_atomic(out, &model.encode_to_vec())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(Exported {
        path: out.to_path_buf(),
        input,
        output,
        nodes,
    })
}

/// The ONNX model of the run in `run_dir`, not yet written.
pub fn build(run_dir: &Path) -> Result<ModelProto, String> {
    let exp = load_file(&run_dir.join(files::EXPERIMENT)).map_err(|e| e.to_string())?;
    // Refused before the weights are read: the answer does not depend on them.
    if !crate::spec::uses_model(&exp) {
        return Err(format!(
            "{} trained a Q-table, not a network: there is no model to export",
            run_dir.display()
        ));
    }
    refuse_unmapped(&exp)?;
    let saved = load_saved_model_with(run_dir, exp)?;
    let exp = &saved.experiment;
    let state = saved.model.state();
    let mut g = GraphBuilder::new(state);
    let mut meta: Vec<(&str, String)> = Vec::new();
    // The graph's input and the first model input it becomes; per-sample shape.
    let (input_name, input_dims, mut x, shape): (&str, Vec<usize>, String, Vec<usize>) =
        match &exp.dataset {
            DatasetSpec::Images(spec) => {
                let [c, h, w] = spec.input_shape();
                let stats = if spec.is_folder() {
                    crate::data::load_images(spec, exp.seed)
                        .map_err(|e| e.to_string())?
                        .stats
                } else {
                    vec![crate::train::normalisation(spec.name)]
                };
                let per_channel = |f: fn(&(f32, f32)) -> f32| -> Vec<f32> {
                    (0..c)
                        .map(|k| stats.get(k % stats.len().max(1)).map_or(0.0, f))
                        .collect()
                };
                let (mean, std) = (per_channel(|s| s.0), per_channel(|s| s.1));
                meta.push(("normalisation_mean", join(&mean)));
                meta.push(("normalisation_std", join(&std)));
                let m = g.constant("normalise.mean", &[1, c, 1, 1], &mean);
                let s = g.constant("normalise.std", &[1, c, 1, 1], &std);
                let centred = g.node("Sub", "normalise.sub", &["image", &m], vec![]);
                let x = g.node("Div", "normalise.div", &[&centred, &s], vec![]);
                ("image", vec![c, h, w], x, vec![c, h, w])
            }
            DatasetSpec::Points(spec) => {
                let x = points_features(&mut g, &spec.features);
                meta.push((
                    "features",
                    spec.features
                        .iter()
                        .map(|f| format!("{f:?}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ));
                ("point", vec![2], x, vec![spec.features.len()])
            }
            DatasetSpec::Gridworld(world) => {
                let n = saved.model.input_shape().first().copied().unwrap_or(0);
                meta.push(("state_encoding", format!("{:?}", world.encoding)));
                meta.push(("actions", crate::data::maze::ACTION_NAMES.join(",")));
                // The input feeds the first layer directly: no preprocessing node.
                ("state", vec![n], "state".to_string(), vec![n])
            }
            DatasetSpec::Text(_) => {
                let steps = saved.model.input_shape().first().copied().unwrap_or(0);
                let vocab = saved.vocab.as_ref().map_or(0, |v| v.len());
                if let Some(v) = &saved.vocab {
                    let tokens: Vec<String> = (0..v.len() as u32).map(|i| v.decode(&[i])).collect();
                    meta.push((
                        "vocab",
                        serde_json::to_string(&tokens).map_err(|e| e.to_string())?,
                    ));
                }
                meta.push((
                    "padding",
                    "token id 0; sequences are padded on the left".into(),
                ));
                g.token_mask("tokens");
                (
                    "tokens",
                    vec![steps],
                    "tokens".to_string(),
                    vec![steps, vocab],
                )
            }
        };
    let shapes = infer_shapes(&exp.model, &shape).map_err(|e| e.to_string())?;
    for (i, layer) in exp.model.iter().enumerate() {
        let in_shape = if i == 0 {
            shape.clone()
        } else {
            shapes[i - 1].output.clone()
        };
        x = g.layer(i, layer, &x, &in_shape)?;
    }
    let mut out_shape = shapes.last().map_or(shape.clone(), |s| s.output.clone());
    if matches!(exp.dataset, DatasetSpec::Text(_)) {
        // Text models end in the output layer `head`, sized by the data.
        let head = if out_shape.len() == 1 {
            g.weight("head.weight")?
        } else {
            "head.weight".to_string()
        };
        let outputs = g.state.get("head.weight").map_or(0, |t| t.dims()[0]);
        x = g.linear(&x, &out_shape, &head, "head.bias", "head")?;
        if let Some(last) = out_shape.last_mut() {
            *last = outputs;
        }
    }
    let output_name = match &exp.dataset {
        DatasetSpec::Gridworld(_) => "q_values",
        DatasetSpec::Points(p) if p.kind.is_regression() => "prediction",
        _ => "logits",
    };
    g.finish_as(&x, output_name);

    let mut in_dims = vec!["N".to_string()];
    in_dims.extend(input_dims.iter().map(usize::to_string));
    let mut out_dims = vec!["N".to_string()];
    out_dims.extend(out_shape.iter().map(usize::to_string));
    let input_doc = match &exp.dataset {
        DatasetSpec::Images(_) => "pixel / 255, channels first; normalisation is in the graph",
        DatasetSpec::Points(_) => "raw point coordinates (x1, x2), each in -6..6",
        DatasetSpec::Text(_) => "token ids (int64), 0 = padding on the left",
        _ => "the state in the experiment's encoding",
    };
    meta.push(("input", format!("{input_name} [{}]", in_dims.join(", "))));
    meta.push(("output", format!("{output_name} [{}]", out_dims.join(", "))));
    meta.push(("experiment", exp.name.clone()));
    meta.push(("trainlab_version", env!("CARGO_PKG_VERSION").to_string()));
    if !saved.classes.is_empty() {
        meta.push((
            "classes",
            serde_json::to_string(&saved.classes).map_err(|e| e.to_string())?,
        ));
    }
    let graph = GraphProto {
        name: exp.name.clone(),
        doc_string: format!("{} trained by trainlab", exp.name),
        input: vec![ValueInfoProto {
            doc_string: input_doc.into(),
            ..value_info(
                input_name,
                &input_dims,
                if input_name == "tokens" { INT64 } else { FLOAT },
            )
        }],
        output: vec![value_info(output_name, &out_shape, FLOAT)],
        node: g.nodes,
        initializer: g.init,
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "trainlab".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("trainlab run {}", run_dir.display()),
        graph: Some(graph),
        metadata_props: meta
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.into(),
                value: v,
            })
            .collect(),
    })
}

/// The first layer with no ONNX mapping, as an error naming it.
fn refuse_unmapped(exp: &Experiment) -> Result<(), String> {
    for (i, layer) in exp.model.iter().enumerate() {
        let mapped = matches!(
            layer,
            LayerSpec::Linear { .. }
                | LayerSpec::Conv2d { .. }
                | LayerSpec::MaxPool2d { .. }
                | LayerSpec::Flatten
                | LayerSpec::ReLU
                | LayerSpec::Tanh
                | LayerSpec::Sigmoid
                | LayerSpec::GELU
                | LayerSpec::Dropout { .. }
                | LayerSpec::BatchNorm { .. }
                | LayerSpec::Embedding { .. }
                | LayerSpec::LSTM { .. }
                | LayerSpec::GRU { .. }
                | LayerSpec::MeanPool
                | LayerSpec::LastStep
        );
        if !mapped {
            return Err(format!(
                "model[{i}] ({}) has no ONNX mapping in trainlab's exporter, so nothing was \
                 written; export onnx covers Linear, Conv2d, MaxPool2d, Flatten, BatchNorm, \
                 ReLU, Tanh, Sigmoid, GELU, Dropout, Embedding, LSTM, GRU, MeanPool and \
                 LastStep (try export pytorch for this model)",
                layer.kind()
            ));
        }
    }
    Ok(())
}

/// The playground's input features of raw points `[N, 2]`, as `[N, features]`,
/// computed exactly as `Feature::of` does.
fn points_features(g: &mut GraphBuilder, features: &[Feature]) -> String {
    let starts0 = g.constant_i64("point.start0", &[1], &[0]);
    let starts1 = g.constant_i64("point.start1", &[1], &[1]);
    let ends2 = g.constant_i64("point.end2", &[1], &[2]);
    let axes = g.constant_i64("point.axes", &[1], &[1]);
    let x1 = g.node(
        "Slice",
        "point.x1",
        &["point", &starts0, &starts1, &axes],
        vec![],
    );
    let x2 = g.node(
        "Slice",
        "point.x2",
        &["point", &starts1, &ends2, &axes],
        vec![],
    );
    let six = g.constant("point.six", &[1], &[6.0]);
    let u = g.node("Div", "point.u", &[&x1, &six], vec![]);
    let v = g.node("Div", "point.v", &[&x2, &six], vec![]);
    let columns: Vec<String> = features
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let name = format!("point.feature{k}");
            match f {
                Feature::X1 => u.clone(),
                Feature::X2 => v.clone(),
                Feature::X1Squared => g.node("Mul", &name, &[&u, &u], vec![]),
                Feature::X2Squared => g.node("Mul", &name, &[&v, &v], vec![]),
                Feature::X1X2 => g.node("Mul", &name, &[&u, &v], vec![]),
                Feature::SinX1 => g.node("Sin", &name, &[&x1], vec![]),
                Feature::SinX2 => g.node("Sin", &name, &[&x2], vec![]),
            }
        })
        .collect();
    let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    g.node("Concat", "point.features", &refs, vec![int("axis", 1)])
}

/// Collects nodes and constants; names values after the node that makes them.
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    init: Vec<TensorProto>,
    /// The run's saved tensors by name (`layers.{i}.weight`, ...).
    state: HashMap<String, Tensor>,
    /// Text models: 1.0 for real tokens, 0.0 for padding, `[N, T, 1]`.
    mask: Option<String>,
}

impl GraphBuilder {
    fn new(state: HashMap<String, Tensor>) -> Self {
        Self {
            nodes: Vec::new(),
            init: Vec::new(),
            state,
            mask: None,
        }
    }

    /// The padding mask of token ids `tokens` (`[N, T]`), as `[N, T, 1]` floats.
    fn token_mask(&mut self, tokens: &str) {
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
    fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
        let t = self
            .state
            .get(name)
            .ok_or_else(|| format!("the weights have no tensor {name}"))?;
        let values = t
            .flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| format!("{name}: {e}"))?;
        Ok((t.dims().to_vec(), values))
    }

    /// `x W^T + b` for the weight constant `w` (`[out, in]`, named after the
    /// saved tensor) and the saved bias `bias`: Gemm on `[in]` samples, MatMul
    /// with the transposed weight on `[t, in]` sequences.
    fn linear(
        &mut self,
        x: &str,
        shape: &[usize],
        w: &str,
        bias: &str,
        name: &str,
    ) -> Result<String, String> {
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
            _ => Err(format!(
                "{name} reads a {shape:?} input per sample; export onnx maps Linear only \
                 on flat inputs and sequences"
            )),
        }
    }

    /// A stack of LSTM or GRU layers on `[N, T, d]`, in ONNX's gate order.
    fn recurrent(
        &mut self,
        i: usize,
        lstm: bool,
        layers: usize,
        hidden: usize,
        x: &str,
    ) -> Result<String, String> {
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
    fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, FLOAT, raw)
    }

    /// An int64 constant named `name`.
    fn constant_i64(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_init(name, dims, INT64, raw)
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
    fn weight(&mut self, name: &str) -> Result<String, String> {
        let (dims, values) = self.values(name)?;
        Ok(self.constant(name, &dims, &values))
    }

    /// Appends a node `name` running `op` on `inputs`; returns its output's name.
    fn node(
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
    fn layer(
        &mut self,
        i: usize,
        layer: &LayerSpec,
        x: &str,
        shape: &[usize],
    ) -> Result<String, String> {
        let p = |s: &str| format!("layers.{i}.{s}");
        let n = p(layer.kind());
        Ok(match layer {
            LayerSpec::Linear { .. } => {
                let w = if shape.len() == 1 {
                    self.weight(&p("weight"))?
                } else {
                    p("weight")
                };
                self.linear(x, shape, &w, &p("bias"), &n)
                    .map_err(|e| format!("model[{i}] (Linear): {e}"))?
            }
            LayerSpec::Embedding { .. } => {
                let w = self.weight(&p("weight"))?;
                self.node("Gather", &n, &[&w, x], vec![int("axis", 0)])
            }
            LayerSpec::LSTM { hidden, layers, .. } => {
                self.recurrent(i, true, *layers, *hidden, x)?
            }
            LayerSpec::GRU { hidden, layers, .. } => {
                self.recurrent(i, false, *layers, *hidden, x)?
            }
            LayerSpec::MeanPool => {
                // Padding does not count: sum of real steps / max(1, real steps).
                let mask = self
                    .mask
                    .clone()
                    .ok_or_else(|| format!("model[{i}] (MeanPool) needs token input"))?;
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
                self.node("Div", &n, &[&sum, &count], vec![])
            }
            LayerSpec::LastStep => {
                let last = self.constant_i64(&p("last"), &[], &[shape[0] as i64 - 1]);
                self.node("Gather", &n, &[x, &last], vec![int("axis", 1)])
            }
            LayerSpec::Conv2d {
                kernel,
                stride,
                padding,
                ..
            } => {
                let w = self.weight(&p("weight"))?;
                let b = self.weight(&p("bias"))?;
                let (k, s, pad) = (*kernel as i64, *stride as i64, *padding as i64);
                self.node(
                    "Conv",
                    &n,
                    &[x, &w, &b],
                    vec![
                        ints("kernel_shape", &[k, k]),
                        ints("strides", &[s, s]),
                        ints("pads", &[pad, pad, pad, pad]),
                    ],
                )
            }
            LayerSpec::MaxPool2d { kernel, stride } => {
                let (k, s) = (*kernel as i64, stride.unwrap_or(*kernel) as i64);
                self.node(
                    "MaxPool",
                    &n,
                    &[x],
                    vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s])],
                )
            }
            LayerSpec::Flatten => self.node("Flatten", &n, &[x], vec![int("axis", 1)]),
            LayerSpec::ReLU => self.node("Relu", &n, &[x], vec![]),
            LayerSpec::Tanh => self.node("Tanh", &n, &[x], vec![]),
            LayerSpec::Sigmoid => self.node("Sigmoid", &n, &[x], vec![]),
            LayerSpec::GELU => {
                // The exact (erf) GELU trainlab computes: x/2 (1 + erf(x / sqrt 2)).
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
                self.node("Mul", &n, &[&times, &half], vec![])
            }
            // Identity at inference.
            LayerSpec::Dropout { .. } => x.to_string(),
            LayerSpec::BatchNorm { eps, .. } => {
                let w = self.weight(&p("weight"))?;
                let b = self.weight(&p("bias"))?;
                let mean = self.weight(&p("running_mean"))?;
                let var = self.weight(&p("running_var"))?;
                self.node(
                    "BatchNormalization",
                    &n,
                    &[x, &w, &b, &mean, &var],
                    vec![float("epsilon", *eps as f32)],
                )
            }
            other => {
                return Err(format!(
                    "model[{i}] ({}) has no ONNX mapping in trainlab's exporter",
                    other.kind()
                ));
            }
        })
    }

    /// Makes value `x` the graph output `name`: renames the node that produces it
    /// (or adds an Identity when `x` is the graph input itself).
    fn finish_as(&mut self, x: &str, name: &str) {
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

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..Default::default()
    }
}

/// A tensor value `[N, dims...]` of `elem_type` with a symbolic batch size.
fn value_info(name: &str, dims: &[usize], elem_type: i32) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        value: Some(DimensionValue::DimParam("N".into())),
    }];
    dim.extend(dims.iter().map(|&d| Dimension {
        value: Some(DimensionValue::DimValue(d as i64)),
    }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: String::new(),
    }
}

fn join(v: &[f32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_rename_keeps_values_that_are_read() {
        let mut g = GraphBuilder::new(HashMap::new());
        let a = g.node("Relu", "a", &["x"], vec![]);
        g.finish_as(&a, "logits");
        assert_eq!(g.nodes[0].output, vec!["logits".to_string()]);
        // The graph input itself: an Identity, since no node produces it.
        let mut g = GraphBuilder::new(HashMap::new());
        g.finish_as("state", "q_values");
        assert_eq!(g.nodes[0].op_type, "Identity");
        assert_eq!(g.nodes[0].input, vec!["state".to_string()]);
    }

    #[test]
    fn model_bytes_decode_to_the_same_model() {
        let mut g = GraphBuilder::new(HashMap::new());
        let c = g.constant("c", &[1, 2], &[0.5, -1.0]);
        g.node("Add", "y", &["x", &c], vec![ints("axes", &[1, 2])]);
        let model = ModelProto {
            ir_version: IR_VERSION,
            graph: Some(GraphProto {
                node: g.nodes,
                initializer: g.init,
                input: vec![value_info("x", &[2], FLOAT)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let back = ModelProto::decode(model.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(back, model);
    }
}
