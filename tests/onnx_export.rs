//! `trainlab export onnx` against ONNX Runtime: the exported MNIST MLP, CNN with
//! batch norm (2-D and 1-D, with GELU, Tanh and Sigmoid in a variant), a
//! playground model (features computed in the graph from raw points) and a DQN
//! Q-network give trainlab's own outputs within 1e-4 on 256 inputs, the same test
//! accuracy (the same greedy actions for DQN), pass `onnx.checker` (full check)
//! and carry their names, shapes, class names, experiment and version in the
//! metadata; so do LSTM and GRU language models and text classifiers (LastStep,
//! MeanPool over left-padded token ids). A Transformer language model and a
//! Q-table are refused, naming the layer, with exit 2 and no file. `--int8`
//! writes an MLP and a CNN with batch norm as QDQ (int8 weight constants,
//! QuantizeLinear/DequantizeLinear around each Linear and Conv) that passes the
//! checker, scores within 0.5 points of the float run on the 1,000 test
//! images and gives trainlab's own int8 outputs; a text model is refused.
//!
//! ONNX Runtime comes from $TRAINLAB_PYTHON, /opt/trainlab-torch/bin/python or
//! python3 (pip install onnxruntime onnx numpy); without it the comparisons say
//! so and pass, except under CI=true, where that is a failure.

mod common;

use std::path::{Path, PathBuf};

use common::trainlab;

use candle_core::{Device, Tensor};
use trainlab::infer::load_saved_model;
use trainlab::model::Mode;
use trainlab::spec::{DatasetSpec, Experiment, load_file};

/// Outputs of ONNX Runtime and trainlab may differ by this much.
const TOLERANCE: f32 = 1e-4;

/// A Python that can import onnxruntime, onnx and numpy.
fn python() -> Option<PathBuf> {
    common::python_with("import onnxruntime, onnx, numpy", "onnxruntime onnx numpy")
}

/// Checks the model with onnx's full checker, runs it in ONNX Runtime on the
/// float32 input in argv[2] (shape argv[4]), writes the first output to argv[3]
/// and prints the graph's names, output shape and metadata as JSON.
const RUN_ORT: &str = r#"
import json, sys
import numpy as np, onnx, onnxruntime as ort
model_path, x_path, out_path, shape, dtype = sys.argv[1:6]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
x = np.fromfile(x_path, dtype=dtype).reshape([int(d) for d in shape.split(",")])
y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
y.astype("<f4").tofile(out_path)
print(json.dumps({
    "input": sess.get_inputs()[0].name,
    "output": sess.get_outputs()[0].name,
    "input_shape": [str(d) for d in sess.get_inputs()[0].shape],
    "out_shape": list(y.shape),
    "meta": {p.key: p.value for p in model.metadata_props},
    "ops": {op: sum(n.op_type == op for n in model.graph.node)
            for op in {n.op_type for n in model.graph.node}},
    "int8_initializers": sum(t.data_type == onnx.TensorProto.INT8
                             for t in model.graph.initializer),
}))
"#;

/// What ONNX Runtime made of a model and an input.
struct Ort {
    outputs: Vec<f32>,
    report: serde_json::Value,
}

fn run_ort(python: &Path, model: &Path, x: &[f32], shape: &[usize]) -> Ort {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    run_ort_bytes(python, model, &bytes, "<f4", shape)
}

/// Token ids as int64, the input of text models.
fn run_ort_ids(python: &Path, model: &Path, ids: &[u32], shape: &[usize]) -> Ort {
    let bytes: Vec<u8> = ids
        .iter()
        .flat_map(|&v| i64::from(v).to_le_bytes())
        .collect();
    run_ort_bytes(python, model, &bytes, "<i8", shape)
}

fn run_ort_bytes(python: &Path, model: &Path, bytes: &[u8], dtype: &str, shape: &[usize]) -> Ort {
    let dir = model.parent().expect("a folder");
    let script = dir.join("run_ort.py");
    std::fs::write(&script, RUN_ORT).expect("write script");
    let x_path = dir.join("x.f32");
    let out_path = dir.join("y.f32");
    std::fs::write(&x_path, bytes).expect("write input");
    let shape_arg = shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let stdout = common::run_python(
        python,
        [
            script.as_os_str(),
            model.as_os_str(),
            x_path.as_os_str(),
            out_path.as_os_str(),
            shape_arg.as_ref(),
            dtype.as_ref(),
        ],
    );
    let outputs = std::fs::read(&out_path)
        .expect("outputs")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let report = serde_json::from_str(stdout.trim()).expect("json report");
    Ort { outputs, report }
}

/// Writes an experiment file and trains it into `dir/name` with `args`.
fn train(dir: &Path, name: &str, ron: &str, args: &[&str]) -> PathBuf {
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(&file, ron).expect("write experiment");
    train_file(&file, &dir.join(name), args)
}

fn train_file(file: &Path, run: &Path, args: &[&str]) -> PathBuf {
    let o = trainlab()
        .arg("run")
        .arg(file)
        .args(args)
        .arg("--out")
        .arg(run)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run.to_path_buf()
}

/// `trainlab export onnx RUN -o RUN/model.onnx`, which must succeed.
fn export(run: &Path) -> PathBuf {
    export_with(run, "model.onnx", &[])
}

/// `trainlab export onnx RUN -o RUN/exported/NAME ARGS...`, which must succeed.
fn export_with(run: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = run.join("exported").join(name);
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let o = trainlab()
        .args(["export", "onnx"])
        .arg(run)
        .arg("-o")
        .arg(&out)
        .args(args)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// trainlab's own outputs for model input `x` (already preprocessed as training does).
fn trainlab_outputs(run: &Path, x: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    let saved = load_saved_model(run).expect("the run loads");
    let x = Tensor::from_vec(x, shape, &Device::Cpu).expect("tensor");
    saved
        .model
        .forward(&x, Mode::Eval)
        .and_then(|y| y.flatten_all())
        .and_then(|y| y.to_vec1::<f32>())
        .expect("forward")
}

/// trainlab's own outputs for token ids `[n, steps]`.
fn trainlab_outputs_ids(run: &Path, ids: Vec<u32>, shape: &[usize]) -> Vec<f32> {
    let saved = load_saved_model(run).expect("the run loads");
    let x = Tensor::from_vec(ids, shape, &Device::Cpu).expect("tensor");
    saved
        .model
        .forward(&x, Mode::Eval)
        .and_then(|y| y.flatten_all())
        .and_then(|y| y.to_vec1::<f32>())
        .expect("forward")
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: output sizes differ");
    let (worst, at) = ours
        .iter()
        .zip(theirs)
        .enumerate()
        .map(|(i, (a, b))| ((a - b).abs(), i))
        .fold((0.0f32, 0), |m, (d, i)| if d > m.0 { (d, i) } else { m });
    assert!(
        worst <= TOLERANCE,
        "{what}: output {at} differs by {worst} (trainlab {}, ONNX Runtime {})",
        ours[at],
        theirs[at]
    );
}

/// Index of the largest value in each row of `classes` values.
fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
    values
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |m, (i, &v)| if v > m.1 { (i, v) } else { m },
                )
                .0
        })
        .collect()
}

fn summary_accuracy(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("summary.json")).expect("summary");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["test_accuracy"].as_f64().expect("test accuracy")
}

fn experiment(run: &Path) -> Experiment {
    load_file(&run.join("experiment.ron")).expect("the run's experiment")
}

#[test]
fn image_models_match_trainlab_in_onnx_runtime() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let models = [
        (
            "mnist_mlp",
            "[Flatten, Linear(out: 64), ReLU, Dropout(p: 0.2), Linear(out: 10)]",
        ),
        (
            "mnist_cnn_bn",
            "[Conv2d(out: 8, kernel: 3, padding: 1), BatchNorm(), ReLU, MaxPool2d(kernel: 2), \
             Flatten, Dropout(p: 0.2), Linear(out: 10)]",
        ),
        (
            "mnist_cnn_variant",
            "[Conv2d(out: 6, kernel: 5, stride: 2), GELU, MaxPool2d(kernel: 3, stride: 2), \
             Flatten, Linear(out: 32), BatchNorm(eps: 0.001), Tanh, Linear(out: 16), Sigmoid, \
             Linear(out: 10)]",
        ),
    ];
    for (name, model) in models {
        let ron = format!(
            "(name: \"{name}\", dataset: Images(name: Mnist, source: Bundled, \
             train_limit: Some(2000), test_limit: Some(256)), model: {model}, \
             training: (epochs: 1, batch_size: 32))"
        );
        let run = train(dir.path(), name, &ron, &[]);
        let onnx = export(&run);
        let exp = experiment(&run);
        let DatasetSpec::Images(spec) = &exp.dataset else {
            unreachable!("an image experiment")
        };
        let test = trainlab::data::load_images(spec, exp.seed)
            .expect("test images")
            .test;
        let n = test.len();
        assert_eq!(n, 256, "{name}: the test set");
        let shape = [n, 1, 28, 28];
        // What a user has: pixel / 255. trainlab's model sees it standardised.
        let pixels: Vec<f32> = test.images.iter().map(|&p| f32::from(p) / 255.0).collect();
        let (mean, std) = trainlab::data::normalisation(spec.name);
        let standard = trainlab::data::standardise(&test.images, &[(mean, std)], 28 * 28);
        let ours = trainlab_outputs(&run, standard, &shape);
        let ort = run_ort(&python, &onnx, &pixels, &shape);
        assert_close(&ours, &ort.outputs, name);

        let labels: Vec<usize> = test.labels.iter().map(|&l| usize::from(l)).collect();
        let correct = |pred: Vec<usize>| pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
        let ort_correct = correct(argmax_rows(&ort.outputs, 10));
        assert_eq!(ort_correct, correct(argmax_rows(&ours, 10)), "{name}");
        let accuracy = ort_correct as f64 / n as f64;
        assert!(
            (accuracy - summary_accuracy(&run)).abs() < 1e-9,
            "{name}: ONNX Runtime's test accuracy {accuracy} vs the run's {}",
            summary_accuracy(&run)
        );

        let r = &ort.report;
        assert_eq!(r["input"], "image", "{r}");
        assert_eq!(r["output"], "logits", "{r}");
        assert_eq!(r["input_shape"], serde_json::json!(["N", "1", "28", "28"]));
        assert_eq!(r["out_shape"], serde_json::json!([256, 10]));
        let meta = &r["meta"];
        assert_eq!(meta["experiment"], name);
        assert_eq!(meta["trainlab_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(meta["input"], "image [N, 1, 28, 28]");
        assert_eq!(meta["output"], "logits [N, 10]");
        let classes: Vec<String> =
            serde_json::from_str(meta["classes"].as_str().expect("classes")).expect("json");
        assert_eq!(classes, trainlab::data::class_names(spec.name));
    }
}

#[test]
fn a_playground_model_takes_raw_points_and_matches_trainlab() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let ron = "(name: \"points\", seed: 4, dataset: Points(kind: Spiral, samples: 512, \
               test_fraction: 0.5, features: [X1, X2, X1Squared, X2Squared, X1X2, SinX1, SinX2]), \
               model: [Linear(out: 8), BatchNorm(), Tanh, Linear(out: 8), GELU, Linear(out: 1)], \
               optimizer: Adam(lr: 0.03), training: (epochs: 20, batch_size: 16))";
    let run = train(dir.path(), "points", ron, &[]);
    let onnx = export(&run);
    let exp = experiment(&run);
    let DatasetSpec::Points(spec) = &exp.dataset else {
        unreachable!("a points experiment")
    };
    let test = trainlab::data::points::generate(spec, exp.seed).test;
    assert_eq!(test.len(), 256);
    let raw: Vec<f32> = test.iter().flat_map(|p| [p.x1, p.x2]).collect();
    let features: Vec<f32> = test
        .iter()
        .flat_map(|p| p.features(&spec.features))
        .collect();
    let ours = trainlab_outputs(&run, features, &[256, spec.features.len()]);
    let ort = run_ort(&python, &onnx, &raw, &[256, 2]);
    assert_close(&ours, &ort.outputs, "points");
    // Class 1 where the logit is positive: the same calls on the test points.
    let calls = |v: &[f32]| v.iter().map(|&l| l > 0.0).collect::<Vec<_>>();
    assert_eq!(calls(&ours), calls(&ort.outputs));
    let r = &ort.report;
    assert_eq!(r["input"], "point", "{r}");
    assert_eq!(r["meta"]["input"], "point [N, 2]");
    assert_eq!(r["meta"]["output"], "logits [N, 1]");
    assert_eq!(r["out_shape"], serde_json::json!([256, 1]));
}

#[test]
fn a_dqn_q_network_matches_trainlab_and_picks_the_same_actions() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let exp_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join("gridworld_dqn.ron");
    let run = train_file(
        &exp_file,
        &dir.path().join("dqn"),
        &["--set", "agent.episodes=40"],
    );
    let onnx = export(&run);
    let saved = load_saved_model(&run).expect("loads");
    let inputs = saved.model.input_shape()[0];
    // 256 one-hot states (each open cell several times).
    let states: Vec<f32> = (0..256)
        .flat_map(|i| (0..inputs).map(move |k| if k == i % inputs { 1.0 } else { 0.0 }))
        .collect();
    let ours = trainlab_outputs(&run, states.clone(), &[256, inputs]);
    let ort = run_ort(&python, &onnx, &states, &[256, inputs]);
    assert_close(&ours, &ort.outputs, "dqn");
    assert_eq!(argmax_rows(&ours, 4), argmax_rows(&ort.outputs, 4));
    let r = &ort.report;
    assert_eq!(r["input"], "state", "{r}");
    assert_eq!(r["output"], "q_values", "{r}");
    assert_eq!(r["meta"]["actions"], "up,right,down,left");
    assert_eq!(r["meta"]["output"], "q_values [N, 4]");
}

#[test]
fn a_layer_without_a_mapping_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let ron = "(name: \"words\", dataset: Text(source: Bundled(Words), tokens: Chars, \
               limit: Some(2000), task: LanguageModel(seq_len: 8, sample_every_steps: None)), \
               model: [Embedding(dim: 8), PositionEmbedding(context: 8), \
               Transformer(heads: 2, width: 16)], training: (epochs: 1, batch_size: 32))";
    let run = train(dir.path(), "words", ron, &[]);
    let out = dir.path().join("words.onnx");
    let o = trainlab()
        .args(["export", "onnx"])
        .arg(&run)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("model[1] (PositionEmbedding)"), "{err}");
    assert!(!out.exists(), "a refused export wrote {}", out.display());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("onnx"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A Q-table has no network to export.
    let exp_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join("gridworld_qlearning.ron");
    let table = train_file(
        &exp_file,
        &dir.path().join("table"),
        &["--set", "agent.episodes=20"],
    );
    let o = trainlab()
        .args(["export", "onnx"])
        .arg(&table)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("Q-table"), "{err}");
    assert!(!out.exists());
    // Not a run folder at all: also exit 2, naming the missing file.
    let o = trainlab()
        .args(["export", "onnx"])
        .arg(dir.path().join("nowhere"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn text_models_take_token_ids_and_match_trainlab() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let lm = |model: &str| {
        format!(
            "(name: \"lm\", dataset: Text(source: Bundled(Words), tokens: Chars, limit: Some(3000), \
             task: LanguageModel(seq_len: 16, sample_every_steps: None)), model: {model}, \
             training: (epochs: 1, batch_size: 16))"
        )
    };
    let classifier = |model: &str| {
        format!(
            "(name: \"langs\", dataset: Text(source: Bundled(WordLanguages), tokens: Chars, \
             task: Classification(max_len: 10)), model: {model}, \
             training: (epochs: 1, batch_size: 64))"
        )
    };
    let runs = [
        (
            "lstm_lm",
            lm("[Embedding(dim: 8), LSTM(hidden: 16, layers: 2), Linear(out: 12), Tanh]"),
        ),
        ("gru_lm", lm("[Embedding(dim: 8), GRU(hidden: 16)]")),
        (
            "gru_last",
            classifier("[Embedding(dim: 8), GRU(hidden: 16), LastStep]"),
        ),
        (
            "bag_mean",
            classifier("[Embedding(dim: 8), MeanPool, ReLU]"),
        ),
    ];
    for (name, ron) in runs {
        let run = train(dir.path(), name, &ron, &[]);
        let onnx = export(&run);
        let saved = load_saved_model(&run).expect("loads");
        let steps = saved.model.input_shape()[0];
        let vocab = saved.vocab.as_ref().expect("a vocabulary").len() as u32;
        // 256 sequences; classifiers' are left-padded with id 0 to random lengths.
        let mut rng = 0x2545_f491_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let lm_run = name.ends_with("_lm");
        let ids: Vec<u32> = (0..256)
            .flat_map(|_| {
                let real = if lm_run {
                    steps
                } else {
                    1 + (next() as usize) % steps
                };
                (0..steps)
                    .map(|k| {
                        if k < steps - real {
                            0
                        } else {
                            1 + (next() % u64::from(vocab - 1)) as u32
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let ours = trainlab_outputs_ids(&run, ids.clone(), &[256, steps]);
        let ort = run_ort_ids(&python, &onnx, &ids, &[256, steps]);
        assert_close(&ours, &ort.outputs, name);
        let r = &ort.report;
        assert_eq!(r["input"], "tokens", "{r}");
        assert_eq!(
            r["input_shape"],
            serde_json::json!(["N", steps.to_string()])
        );
        let tokens: Vec<String> =
            serde_json::from_str(r["meta"]["vocab"].as_str().expect("vocab")).expect("json");
        assert_eq!(tokens.len(), vocab as usize, "{name}");
        if lm_run {
            assert_eq!(r["out_shape"], serde_json::json!([256, steps, vocab]));
        } else {
            let classes = saved.classes.len();
            assert_eq!(r["out_shape"], serde_json::json!([256, classes]));
            assert_eq!(
                argmax_rows(&ours, classes),
                argmax_rows(&ort.outputs, classes)
            );
        }
    }
}

#[test]
fn int8_exports_as_qdq_and_keeps_the_accuracy() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let models = [
        (
            "int8_mlp",
            "[Flatten, Linear(out: 64), ReLU, Dropout(p: 0.1), Linear(out: 10)]",
            2,
        ),
        (
            "int8_cnn_bn",
            "[Conv2d(out: 8, kernel: 3, padding: 1), BatchNorm(), ReLU, MaxPool2d(kernel: 2), \
             Conv2d(out: 8, kernel: 3, stride: 2), GELU, Flatten, Linear(out: 32), BatchNorm(), \
             Tanh, Linear(out: 10)]",
            4,
        ),
    ];
    for (name, model, int8_layers) in models {
        // All 1,000 test images: 0.5 points is 5 of them.
        let ron = format!(
            "(name: \"{name}\", dataset: Images(name: Mnist, source: Bundled, \
             train_limit: Some(3000)), model: {model}, training: (epochs: 1, batch_size: 32))"
        );
        let run = train(dir.path(), name, &ron, &[]);
        let float = export(&run);
        let int8 = export_with(&run, "model_int8.onnx", &["--int8"]);
        let exp = experiment(&run);
        let DatasetSpec::Images(spec) = &exp.dataset else {
            unreachable!("an image experiment")
        };
        let data = trainlab::data::load_images(spec, exp.seed).expect("images");
        let test = &data.test;
        let n = test.len();
        assert_eq!(n, 1000, "{name}: the test set");
        let pixels: Vec<f32> = test.images.iter().map(|&p| f32::from(p) / 255.0).collect();
        let ort = run_ort(&python, &int8, &pixels, &[n, 1, 28, 28]);
        let labels: Vec<usize> = test.labels.iter().map(|&l| usize::from(l)).collect();
        let predictions = argmax_rows(&ort.outputs, 10);
        let right = predictions
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
        let accuracy = right as f64 / n as f64;
        let float_accuracy = summary_accuracy(&run);
        assert!(
            (accuracy - float_accuracy).abs() <= 0.005,
            "{name}: int8 in ONNX Runtime {accuracy} vs the float run's {float_accuracy}"
        );
        // The graph is QDQ: one QuantizeLinear per int8 layer's input, a
        // DequantizeLinear for it and for its int8 weights; batch norm folded.
        let r = &ort.report;
        assert_eq!(r["ops"]["QuantizeLinear"], int8_layers, "{name}: {r}");
        assert_eq!(r["ops"]["DequantizeLinear"], 2 * int8_layers, "{name}: {r}");
        assert!(r["ops"].get("BatchNormalization").is_none(), "{name}: {r}");
        // Per layer: the weights and the two zero points.
        assert_eq!(r["int8_initializers"], 3 * int8_layers, "{name}: {r}");
        assert!(
            r["meta"]["quantisation"]
                .as_str()
                .is_some_and(|q| q.contains("int8"))
        );
        assert_eq!(r["meta"]["input"], "image [N, 1, 28, 28]");
        assert_eq!(r["meta"]["output"], "logits [N, 10]");
        // What trainlab's own int8 model computes (compress --int8's).
        let saved = load_saved_model(&run).expect("loads");
        let (q, _) = trainlab::compress::quantise_saved(&saved).expect("quantises");
        let rows: Vec<Vec<f32>> = (0..n)
            .map(|i| trainlab::data::standardise(test.image(i), &data.stats, 28 * 28))
            .collect();
        let ours: Vec<f32> = q.forward(&rows).into_iter().flatten().collect();
        let same = argmax_rows(&ours, 10)
            .iter()
            .zip(&predictions)
            .filter(|(a, b)| a == b)
            .count();
        let worst = ours
            .iter()
            .zip(&ort.outputs)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let span = ours.iter().fold(0f32, |m, v| m.max(v.abs()));
        eprintln!(
            "{name}: int8 {accuracy} float {float_accuracy}, {same}/{n} same calls as \
             trainlab's int8, worst logit gap {worst} (largest logit {span})"
        );
        assert!(
            same >= n - 2,
            "{name}: {same}/{n} same calls as trainlab's int8"
        );
        // ONNX rounds ties to even where trainlab rounds them away from zero: a
        // few inputs land one step apart, nothing more.
        assert!(
            worst <= 0.01 * span,
            "{name}: logits differ by {worst} (span {span})"
        );
        // Smaller than the float file: int8 weights (small models carry the
        // scales, names and metadata too).
        let size = |p: &Path| std::fs::metadata(p).expect("file").len();
        assert!(
            size(&int8) * 2 < size(&float),
            "{name}: int8 {} bytes vs float {}",
            size(&int8),
            size(&float)
        );
    }
    // A text model has no int8 form: refused, exit 2, nothing written.
    let text = train(
        dir.path(),
        "text",
        "(name: \"text\", dataset: Text(source: Bundled(Words), tokens: Chars, limit: Some(500), \
         task: LanguageModel(seq_len: 8, sample_every_steps: None)), \
         model: [Embedding(dim: 4), GRU(hidden: 8)], training: (epochs: 1, batch_size: 32))",
        &[],
    );
    let out = dir.path().join("text_int8.onnx");
    let o = trainlab()
        .args(["export", "onnx"])
        .arg(&text)
        .arg("-o")
        .arg(&out)
        .arg("--int8")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--int8 covers image models"), "{err}");
    assert!(!out.exists());
}
