//! TensorBoard event files read by TensorBoard's own reader (EventAccumulator):
//! a run writes `tb/` as it trains with one `train/loss` point per Step record
//! of `metrics.jsonl` (same steps, same values), validation figures and text
//! samples, per-layer statistics as histograms; `training.tensorboard: false` writes none; `export tensorboard`
//! writes the same points for a run recorded without them, and for a study the
//! HParams plugin's records (every trial with its settings, and the study's
//! list of settings and objectives).
//!
//! TensorBoard comes from $TRAINLAB_PYTHON, /opt/trainlab-torch/bin/python or
//! python3 (pip install tensorboard); without it these tests say so and pass,
//! except under CI=true, where that is a failure.

mod common;

use std::path::{Path, PathBuf};

use common::trainlab;

/// A Python that can import TensorBoard's event reader.
fn python() -> Option<PathBuf> {
    common::python_with(
        "from tensorboard.backend.event_processing import event_accumulator",
        "tensorboard",
    )
}

/// Every run under argv[1] (a folder of event files, or folders of them) as JSON:
/// run -> {scalars: tag -> [[step, value]], texts: tag -> [text], hparams: tag -> record}.
const READ: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_multiplexer
from tensorboard.plugins.hparams import plugin_data_pb2
from google.protobuf import json_format
mux = event_multiplexer.EventMultiplexer(size_guidance={"scalars": 0, "tensors": 0})
mux.AddRunsFromDirectory(sys.argv[1])
mux.Reload()
out = {}
for run in mux.Runs():
    acc = mux.GetAccumulator(run)
    tags = acc.Tags()
    scalars = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}
    texts = {}
    for t in tags["tensors"]:
        if t.startswith("_hparams_"):
            continue
        texts[t] = [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(t)]
    hparams = {}
    for tag, content in mux.PluginRunToTagToContent("hparams").get(run, {}).items():
        hparams[tag] = json_format.MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(content))
    out[run] = {"scalars": scalars, "texts": texts, "hparams": hparams}
print(json.dumps(out))
"#;

fn read_tb(python: &Path, dir: &Path) -> serde_json::Value {
    let stdout = common::run_python(python, ["-c".as_ref(), READ.as_ref(), dir.as_os_str()]);
    serde_json::from_str(stdout.trim()).expect("json")
}

fn train(dir: &Path, name: &str, ron: &str) -> PathBuf {
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(&file, ron).expect("write");
    let run = dir.join(name);
    let o = trainlab()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run
}

fn mlp(extra_training: &str) -> String {
    format!(
        "(name: \"mlp\", dataset: Images(name: Mnist, source: Bundled, train_limit: Some(1000), \
         test_limit: Some(200)), model: [Flatten, Linear(out: 16), ReLU, Linear(out: 10)], \
         training: (epochs: 2, batch_size: 50, log_every_steps: 3, eval_every_steps: Some(10){extra_training}))"
    )
}

/// Every record of the run's metrics.jsonl.
fn records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// (step, loss) of every Step record in the run's metrics.jsonl, losses as f32.
fn step_losses(run: &Path) -> Vec<(u64, f32)> {
    records(run)
        .into_iter()
        .filter(|e| e["event"] == "Step")
        .map(|e| {
            (
                e["step"].as_u64().expect("step"),
                e["loss"].as_f64().expect("loss") as f32,
            )
        })
        .collect()
}

/// The (step, value) points of `tag` in the one run of `tb`.
fn points(tb: &serde_json::Value, run: &str, tag: &str) -> Vec<(u64, f32)> {
    tb[run]["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no {tag} in run {run:?}: {tb}"))
        .iter()
        .map(|p| {
            (
                p[0].as_u64().expect("step"),
                p[1].as_f64().expect("value") as f32,
            )
        })
        .collect()
}

#[test]
fn a_run_writes_its_figures_for_tensorboard_as_it_trains() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let run = train(dir.path(), "mlp", &mlp(""));
    let tb = read_tb(&python, &run.join("tb"));
    let steps = step_losses(&run);
    assert!(steps.len() > 10, "{steps:?}");
    assert_eq!(points(&tb, ".", "train/loss"), steps);
    for tag in ["train/lr", "train/throughput", "val/loss", "val/accuracy"] {
        assert!(!points(&tb, ".", tag).is_empty(), "{tag}");
    }
    // Validation every 10 steps and at the end: each Eval record is one point.
    let val: Vec<(u64, f32)> = records(&run)
        .iter()
        .filter(|e| e["event"] == "Eval" && e["split"] == "val")
        .map(|e| {
            (
                e["step"].as_u64().expect("step"),
                e["accuracy"].as_f64().expect("accuracy") as f32,
            )
        })
        .collect();
    assert!(val.len() >= 3, "{val:?}");
    assert_eq!(points(&tb, ".", "val/accuracy"), val);

    // Turned off: no tb folder at all.
    let quiet = train(dir.path(), "quiet", &mlp(", tensorboard: false"));
    assert!(!quiet.join("tb").exists());
    // ... and export writes the same points afterwards.
    let o = trainlab()
        .args(["export", "tensorboard"])
        .arg(&quiet)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tb = read_tb(&python, &quiet.join("tb"));
    assert_eq!(points(&tb, ".", "train/loss"), step_losses(&quiet));
    // A second export into the same folder would double every point: refused.
    let o = trainlab()
        .args(["export", "tensorboard"])
        .arg(&quiet)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds"));
}

#[test]
fn a_resumed_run_keeps_one_point_per_recorded_step() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("mlp.ron");
    std::fs::write(&file, mlp("")).expect("write");
    let run = dir.path().join("run");
    // 18 steps an epoch, a checkpoint after each. Killed in the second epoch,
    // after steps past the checkpoint were recorded (in metrics.jsonl and tb/);
    // the resume cuts those off both and trains them again.
    let mut child = trainlab()
        .arg("run")
        .arg(&file)
        .args(["--pace", "40", "--out"])
        .arg(&run)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(run.join("metrics.jsonl"))
        .map_or(true, |t| !t.contains("\"step\":24,"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no step 24 in a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");
    let killed = step_losses(&run);
    let o = trainlab().arg("resume").arg(&run).output().expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let steps = step_losses(&run);
    assert!(steps.len() > killed.len(), "{killed:?} then {steps:?}");
    let tb = read_tb(&python, &run.join("tb"));
    assert_eq!(points(&tb, ".", "train/loss"), steps);
}

#[test]
fn a_language_models_samples_are_text_summaries() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let ron = "(name: \"lm\", dataset: Text(source: Bundled(Words), tokens: Chars, limit: Some(4000), \
               task: LanguageModel(seq_len: 16, sample_every_steps: Some(10), \
               sample: (prompt: \"th\", temperature: 0.8, length: 12))), \
               model: [Embedding(dim: 8), GRU(hidden: 16)], \
               training: (epochs: 1, batch_size: 16, log_every_steps: 5))";
    let run = train(dir.path(), "lm", ron);
    let tb = read_tb(&python, &run.join("tb"));
    let samples: Vec<String> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "Sample")
        .map(|e| e["text"].as_str().expect("text").to_string())
        .collect();
    assert!(!samples.is_empty(), "the run made no samples");
    let texts = tb["."]["texts"]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no samples: {tb}"));
    assert_eq!(texts.len(), samples.len());
    for (t, s) in texts.iter().zip(&samples) {
        let t = t.as_str().expect("text");
        assert!(
            t.starts_with("**th**") && t.contains(s.as_str()),
            "{t:?} vs {s:?}"
        );
    }
    assert_eq!(points(&tb, ".", "train/loss"), step_losses(&run));
}

#[test]
fn a_study_exports_every_trial_for_the_hparams_table() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("study.ron");
    std::fs::write(
        &file,
        r#"(
    name: "tbstudy",
    base: Inline(
        name: "mlp",
        dataset: Images(name: Mnist, source: Bundled, train_limit: Some(400), test_limit: Some(100)),
        model: [Flatten, Linear(out: 16), ReLU, Linear(out: 10)],
        training: (epochs: 1, batch_size: 50),
    ),
    space: { "optimizer.lr": Choice([1e-3, 1e-2]), "model.1.Linear.out": Choice([8, 16]) },
    search: Grid,
    objectives: [Maximize(ValAccuracy), Minimize(Parameters)],
)"#,
    )
    .expect("write");
    let study = dir.path().join("s");
    let o = trainlab()
        .args(["study", "run"])
        .arg(&file)
        .arg("--out")
        .arg(&study)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("tb");
    let o = trainlab()
        .args(["export", "tensorboard"])
        .arg(&study)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tb = read_tb(&python, &out);

    let experiment = &tb["."]["hparams"]["_hparams_/experiment"]["experiment"];
    let names: Vec<&str> = experiment["hparamInfos"]
        .as_array()
        .unwrap_or_else(|| panic!("no hparam infos: {tb}"))
        .iter()
        .map(|h| h["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["model.1.Linear.out", "optimizer.lr"]);
    let metrics: Vec<&str> = experiment["metricInfos"]
        .as_array()
        .expect("metric infos")
        .iter()
        .map(|m| m["name"]["tag"].as_str().expect("tag"))
        .collect();
    assert_eq!(
        metrics,
        vec!["objective/ValAccuracy", "objective/Parameters"]
    );
    let mut seen = Vec::new();
    for id in 0..4 {
        let run = format!("{id:04}");
        let start = &tb[&run]["hparams"]["_hparams_/session_start_info"]["sessionStartInfo"];
        let width = start["hparams"]["model.1.Linear.out"]
            .as_f64()
            .unwrap_or_else(|| panic!("trial {run}: {tb}"));
        let lr = start["hparams"]["optimizer.lr"].as_f64().expect("lr");
        seen.push((width as u32, lr));
        let end = &tb[&run]["hparams"]["_hparams_/session_end_info"]["sessionEndInfo"];
        assert_eq!(end["status"], "STATUS_SUCCESS", "{run}");
        // The objective the table shows, and the trial's own training curve.
        let params = points(&tb, &run, "objective/Parameters");
        let expected = if width == 8.0 {
            28 * 28 * 8 + 8 + 8 * 10 + 10
        } else {
            28 * 28 * 16 + 16 + 16 * 10 + 10
        };
        assert_eq!(params, vec![(0, expected as f32)], "{run}");
        let trial_dir = study.join("trials").join(&run);
        assert_eq!(points(&tb, &run, "train/loss"), step_losses(&trial_dir));
    }
    seen.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    assert_eq!(seen, vec![(8, 1e-3), (8, 1e-2), (16, 1e-3), (16, 1e-2)]);
}

/// Every histogram of the one run under argv[1]: tag -> [[step, min, max, num,
/// [bucket limits], [bucket counts]]], read by TensorBoard's EventAccumulator.
const READ_HISTOGRAMS: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator
acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={"histograms": 0})
acc.Reload()
out = {}
for t in acc.Tags()["histograms"]:
    out[t] = [[e.step, e.histogram_value.min, e.histogram_value.max, e.histogram_value.num,
               list(e.histogram_value.bucket_limit), list(e.histogram_value.bucket)]
              for e in acc.Histograms(t)]
print(json.dumps(out))
"#;

/// The per-layer statistics reach TensorBoard as histograms whose buckets are
/// the recorded quantile intervals (5 %, 20 %, 25 %, 25 %, 20 %, 5 % of the
/// values), one per LayerStats record, and the gradient norms as scalars.
#[test]
fn layer_statistics_are_tensorboard_histograms() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let run = train(dir.path(), "mlp", &mlp(""));
    let stdout = common::run_python(
        &python,
        [
            "-c".as_ref(),
            READ_HISTOGRAMS.as_ref(),
            run.join("tb").as_os_str(),
        ],
    );
    let tb: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    let stats: Vec<serde_json::Value> = records(&run)
        .into_iter()
        .filter(|e| e["event"] == "LayerStats")
        .collect();
    assert!(stats.len() >= 3, "one per validation pass");
    let hist = tb["layers/1_Linear/activation"]
        .as_array()
        .unwrap_or_else(|| panic!("no activation histogram: {tb}"));
    assert_eq!(hist.len(), stats.len());
    for (h, s) in hist.iter().zip(&stats) {
        let d = &s["layers"][1]["activation"];
        let q: Vec<f64> = (0..7)
            .map(|k| d["quantiles"][k].as_f64().expect("q"))
            .collect();
        let n = d["count"].as_f64().expect("count");
        assert_eq!(h[0], s["step"]);
        assert_eq!((h[1].as_f64(), h[2].as_f64()), (Some(q[0]), Some(q[6])));
        assert_eq!(h[3].as_f64(), Some(n));
        let limits: Vec<f64> = serde_json::from_value(h[4].clone()).expect("limits");
        let counts: Vec<f64> = serde_json::from_value(h[5].clone()).expect("counts");
        assert_eq!(limits, q[1..].to_vec());
        let shares = [0.05, 0.2, 0.25, 0.25, 0.2, 0.05];
        for (c, share) in counts.iter().zip(shares) {
            assert!((c - share * n).abs() < 1e-6 * n, "{counts:?}");
        }
    }
    assert!(tb["layers/1_Linear/gradient"].is_array(), "{tb}");
    assert!(
        tb["layers/0_Flatten/gradient"].is_null(),
        "no parameters, no gradient"
    );
    let tbs = read_tb(&python, &run.join("tb"));
    let norms = points(&tbs, ".", "layers/3_Linear/grad_norm");
    let recorded: Vec<(u64, f32)> = stats
        .iter()
        .map(|s| {
            (
                s["step"].as_u64().expect("step"),
                s["layers"][3]["grad_norm"].as_f64().expect("norm") as f32,
            )
        })
        .collect();
    assert_eq!(norms, recorded);
    assert_eq!(
        points(&tbs, ".", "layers/2_ReLU/dead_fraction").len(),
        stats.len()
    );
}
