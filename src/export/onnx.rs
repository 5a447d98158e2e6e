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
//!
//! `--int8` ([`Precision::Int8`], image models): the model quantised as
//! `compress --int8` quantises it, written in QDQ form ([`super::onnx_qdq`]):
//! int8 weight constants with per-channel scales and the calibrated input
//! scales, around the same float ops; the metadata says `quantisation`.

use std::path::{Path, PathBuf};

use prost::Message;

use super::ExportError;
use super::onnx_graph::{GraphBuilder, int};
use super::onnx_proto::{
    Dimension, DimensionValue, FLOAT, GraphProto, INT64, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use crate::infer::{SavedModel, load_saved_model_with};
use crate::quant::{Int8Model, QuantLayer};
use crate::runs::files;
use crate::spec::{
    DatasetSpec, Experiment, Feature, Inference, infer_shapes, kind_names, load_file,
};

/// The operator set version the graph uses.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
const IR_VERSION: i64 = 8;

/// The weights' form in the exported graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// The run's float32 weights.
    #[default]
    Float,
    /// Quantised to int8 as `compress --int8` does, written as QDQ.
    Int8,
}

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
pub fn export(run_dir: &Path, out: &Path, precision: Precision) -> Result<Exported, ExportError> {
    let model = build(run_dir, precision)?;
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
    crate::util::atomic::write_atomic(out, &model.encode_to_vec()).map_err(ExportError::io(out))?;
    Ok(Exported {
        path: out.to_path_buf(),
        input,
        output,
        nodes,
    })
}

/// The ONNX model of the run in `run_dir`, not yet written.
pub fn build(run_dir: &Path, precision: Precision) -> Result<ModelProto, ExportError> {
    let exp = load_file(&run_dir.join(files::EXPERIMENT))?;
    // Refused before the weights are read: the answer does not depend on them.
    if !crate::spec::uses_model(&exp) {
        return Err(ExportError::QTable {
            dir: run_dir.to_path_buf(),
        });
    }
    refuse_unmapped(&exp)?;
    if precision == Precision::Int8 && !matches!(exp.dataset, DatasetSpec::Images(_)) {
        return Err(ExportError::Int8NotImages {
            dir: run_dir.to_path_buf(),
        });
    }
    let saved = load_saved_model_with(run_dir, exp)?;
    let int8 = match precision {
        Precision::Int8 => Some(crate::compress::quantise_saved(&saved)?.0),
        Precision::Float => None,
    };
    let mut g = GraphBuilder::new(saved.model.state());
    let mut meta: Vec<(&str, String)> = Vec::new();
    let input = graph_input(&mut g, &saved, &mut meta)?;
    let (x, out_shape) = graph_body(&mut g, &saved, &input, int8.as_ref())?;
    if int8.is_some() {
        meta.push((
            "quantisation",
            "int8 QDQ: per-output-channel symmetric weights, per-tensor calibrated \
             inputs of each Linear and Conv; zero points 0"
                .into(),
        ));
    }
    model_proto(g, &saved, run_dir, &input, &x, &out_shape, meta)
}

/// The graph's input and what the first layer reads.
struct GraphInput {
    /// `image`, `point`, `state` or `tokens`.
    name: &'static str,
    /// Per-sample shape of the graph input.
    dims: Vec<usize>,
    /// The value the first layer reads.
    x: String,
    /// Per-sample shape of that value.
    shape: Vec<usize>,
}

/// The input (with preprocessing nodes: normalisation, point features, the
/// token mask) for the run's dataset, recording what it means in `meta`.
fn graph_input(
    g: &mut GraphBuilder,
    saved: &SavedModel,
    meta: &mut Vec<(&'static str, String)>,
) -> Result<GraphInput, ExportError> {
    let exp = &saved.experiment;
    let input = |name, dims: Vec<usize>, x: String, shape| GraphInput {
        name,
        dims,
        x,
        shape,
    };
    Ok(match &exp.dataset {
        DatasetSpec::Images(spec) => {
            let [c, h, w] = spec.input_shape();
            let stats = if spec.is_folder() {
                crate::data::load_images(spec, exp.seed)?.stats
            } else {
                vec![crate::data::normalisation(spec.name)]
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
            input("image", vec![c, h, w], x, vec![c, h, w])
        }
        DatasetSpec::Points(spec) => {
            let x = points_features(g, &spec.features);
            let names: Vec<String> = spec.features.iter().map(|f| format!("{f:?}")).collect();
            meta.push(("features", names.join(",")));
            input("point", vec![2], x, vec![spec.features.len()])
        }
        DatasetSpec::Gridworld(world) => {
            let n = saved.model.input_shape().first().copied().unwrap_or(0);
            meta.push(("state_encoding", format!("{:?}", world.encoding)));
            meta.push(("actions", crate::data::maze::ACTION_NAMES.join(",")));
            // The input feeds the first layer directly: no preprocessing node.
            input("state", vec![n], "state".to_string(), vec![n])
        }
        DatasetSpec::Text(_) => {
            let steps = saved.model.input_shape().first().copied().unwrap_or(0);
            let vocab = saved.vocab.as_ref().map_or(0, |v| v.len());
            if let Some(v) = &saved.vocab {
                let tokens: Vec<String> = (0..v.len() as u32).map(|i| v.decode(&[i])).collect();
                meta.push(("vocab", serde_json::to_string(&tokens)?));
            }
            meta.push((
                "padding",
                "token id 0; sequences are padded on the left".into(),
            ));
            g.token_mask("tokens");
            input("tokens", vec![steps], "tokens".into(), vec![steps, vocab])
        }
    })
}

/// The layers (quantised where `int8` has an int8 form for them) and, for text
/// models, the output layer `head`: the output value and its per-sample shape.
fn graph_body(
    g: &mut GraphBuilder,
    saved: &SavedModel,
    input: &GraphInput,
    int8: Option<&Int8Model>,
) -> Result<(String, Vec<usize>), ExportError> {
    let exp = &saved.experiment;
    let shapes = infer_shapes(&exp.model, &input.shape)?;
    let quantised = int8.map(Int8Model::layers).unwrap_or_default();
    let mut x = input.x.clone();
    for (i, layer) in exp.model.iter().enumerate() {
        let in_shape = if i == 0 {
            input.shape.clone()
        } else {
            shapes[i - 1].output.clone()
        };
        let q = quantised.get(i).copied().unwrap_or(QuantLayer::Float);
        x = g.quantised(i, layer, q, &x, &in_shape)?;
    }
    let mut out_shape = shapes
        .last()
        .map_or(input.shape.clone(), |s| s.output.clone());
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
    Ok((x, out_shape))
}

/// The model around the finished graph: the output named, input and output
/// documented, metadata (names, shapes, experiment, version, classes) added.
fn model_proto(
    mut g: GraphBuilder,
    saved: &SavedModel,
    run_dir: &Path,
    input: &GraphInput,
    x: &str,
    out_shape: &[usize],
    mut meta: Vec<(&str, String)>,
) -> Result<ModelProto, ExportError> {
    let exp = &saved.experiment;
    let output_name = match &exp.dataset {
        DatasetSpec::Gridworld(_) => "q_values",
        DatasetSpec::Points(p) if p.kind.is_regression() => "prediction",
        _ => "logits",
    };
    g.finish_as(x, output_name);
    let dims = |d: &[usize]| {
        let mut all = vec!["N".to_string()];
        all.extend(d.iter().map(usize::to_string));
        all.join(", ")
    };
    let input_doc = match &exp.dataset {
        DatasetSpec::Images(_) => "pixel / 255, channels first; normalisation is in the graph",
        DatasetSpec::Points(_) => "raw point coordinates (x1, x2), each in -6..6",
        DatasetSpec::Text(_) => "token ids (int64), 0 = padding on the left",
        _ => "the state in the experiment's encoding",
    };
    meta.push(("input", format!("{} [{}]", input.name, dims(&input.dims))));
    meta.push(("output", format!("{output_name} [{}]", dims(out_shape))));
    meta.push(("experiment", exp.name.clone()));
    meta.push(("trainlab_version", env!("CARGO_PKG_VERSION").to_string()));
    if !saved.classes.is_empty() {
        meta.push(("classes", serde_json::to_string(&saved.classes)?));
    }
    let elem_type = if input.name == "tokens" { INT64 } else { FLOAT };
    let graph = GraphProto {
        name: exp.name.clone(),
        doc_string: format!("{} trained by trainlab", exp.name),
        input: vec![ValueInfoProto {
            doc_string: input_doc.into(),
            ..value_info(input.name, &input.dims, elem_type)
        }],
        output: vec![value_info(output_name, out_shape, FLOAT)],
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
fn refuse_unmapped(exp: &Experiment) -> Result<(), ExportError> {
    for (i, layer) in exp.model.iter().enumerate() {
        if layer.inference() == Inference::Opaque {
            return Err(ExportError::Layer {
                index: i,
                kind: layer.kind(),
                problem: format!(
                    " has no ONNX mapping in trainlab's exporter, so nothing was written; \
                     export onnx covers {} (try export pytorch for this model)",
                    kind_names(|k| (k.inference)(&(k.template)()) != Inference::Opaque)
                ),
            });
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
    use super::super::onnx_graph::ints;
    use super::*;
    use std::collections::HashMap;

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
