//! `trainlab export pytorch` against real PyTorch: the exported script evaluates
//! a trained run's weights to trainlab's own test accuracy (within 0.1 points;
//! an MLP, a CNN with batch norm and dropout, the GRU word classifier) or loss
//! (within 0.01; character language models with an LSTM and a Transformer) and
//! to the same greedy maze path (DQN); it trains the Fashion MLP for an epoch and
//! text_classify_gru for its epochs to trainlab's accuracy within 1 and 2 points, and
//! the DQN maze until its greedy path reaches the goal. PyTorch comes from
//! $TRAINLAB_PYTHON, /opt/trainlab-torch/bin/python or python3; without it these
//! tests say so and pass, except under CI=true, where that is a failure.

mod common;

use std::path::{Path, PathBuf};

use common::trainlab;

/// A Python that can import torch, numpy and safetensors.
fn python() -> Option<PathBuf> {
    common::python_with(
        "import torch, numpy, safetensors",
        "torch numpy safetensors",
    )
}

/// `test loss L accuracy A %` from the script's or trainlab's output.
fn test_accuracy(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("test loss"))
        .unwrap_or_else(|| panic!("no test line in:\n{text}"));
    line.split_whitespace()
        .nth(4)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

fn run_script(python: &Path, script: &Path, args: &[&str]) -> String {
    let mut all = vec![script.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    common::run_python(python, all)
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).expect("summary"))
        .expect("json")
}

fn summary_accuracy(run: &Path) -> f64 {
    100.0
        * summary(run)["test_accuracy"]
            .as_f64()
            .expect("test accuracy")
}

/// `trainlab run FILE --out RUN [args]`.
fn train(exp: &Path, run: &Path, args: &[&str]) {
    let o = trainlab()
        .arg("run")
        .arg(exp)
        .args(args)
        .arg("--out")
        .arg(run)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `trainlab export pytorch [args] FROM`, which must succeed.
fn export(args: &[&str], from: &Path) {
    let o = trainlab()
        .args(["export", "pytorch"])
        .args(args)
        .arg(from)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn experiment(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(name)
}

#[test]
fn eval_only_gives_trainlabs_test_accuracy() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let models = [
        (
            "mlp",
            r#"[Flatten, Linear(out: 64), ReLU, Dropout(p: 0.2), Linear(out: 10)]"#,
        ),
        (
            "cnn",
            r#"[Conv2d(out: 8, kernel: 3, padding: 1), BatchNorm(), ReLU, MaxPool2d(kernel: 2), Flatten, Dropout(p: 0.2), Linear(out: 10)]"#,
        ),
    ];
    for (name, model) in models {
        let file = dir.path().join(format!("{name}.ron"));
        std::fs::write(
            &file,
            format!(
                "(name: \"{name}\", dataset: Images(name: Mnist, source: Bundled, train_limit: Some(3000), test_limit: Some(1000)),\n\
                 model: {model}, training: (epochs: 1, batch_size: 32))"
            ),
        )
        .expect("write");
        let run = dir.path().join(name);
        let o = trainlab()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&run)
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = trainlab()
            .args(["export", "pytorch", "--eval-only"])
            .arg(&run)
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = run_script(&python, &run.join("train.py"), &[]);
        let (theirs, ours) = (test_accuracy(&out), summary_accuracy(&run));
        assert!(
            (theirs - ours).abs() <= 0.1,
            "{name}: PyTorch {theirs} %, trainlab {ours} %"
        );
    }
}

#[test]
fn the_exported_fashion_mlp_trains_to_trainlabs_accuracy() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let exp = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fashion_mlp.ron");
    let run = dir.path().join("run");
    let o = trainlab()
        .arg("run")
        .arg(&exp)
        .args(["--set", "training.epochs=1", "--out"])
        .arg(&run)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = dir.path().join("fashion.py");
    let o = trainlab()
        .args(["export", "pytorch"])
        .arg(&exp)
        .arg("-o")
        .arg(&script)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&script).expect("script");
    assert!(
        text.contains("nn.Linear(784, 128),  # layers.1") && text.contains("torch.optim.Adam("),
        "{text}"
    );
    let out = run_script(&python, &script, &["--epochs", "1"]);
    let (theirs, ours) = (test_accuracy(&out), summary_accuracy(&run));
    assert!(
        (theirs - ours).abs() <= 1.0,
        "PyTorch {theirs} %, trainlab {ours} %"
    );
}

/// The seed MLP on the bundled digits, the whole file (10 epochs, shifted
/// images) on both sides: the same test accuracy within 1 point.
#[test]
fn the_exported_mnist_mlp_trains_to_trainlabs_accuracy() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let exp = experiment("mnist_mlp.ron");
    let run = dir.path().join("run");
    train(&exp, &run, &[]);
    let script = dir.path().join("mnist.py");
    export(&["-o", script.to_str().expect("utf-8 path")], &exp);
    let out = run_script(&python, &script, &[]);
    let (theirs, ours) = (test_accuracy(&out), summary_accuracy(&run));
    assert!(
        (theirs - ours).abs() <= 1.0,
        "PyTorch {theirs} %, trainlab {ours} %"
    );
}

#[test]
fn the_gru_classifier_evaluates_and_trains_like_trainlab() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let exp = experiment("text_classify_gru.ron");
    // The whole file (5 epochs), on both sides.
    let run = dir.path().join("run");
    train(&exp, &run, &[]);
    export(&["--eval-only"], &run);
    assert!(run.join("train.data.json").is_file(), "the encoded splits");
    let out = run_script(&python, &run.join("train.py"), &[]);
    let (theirs, ours) = (test_accuracy(&out), summary_accuracy(&run));
    assert!(
        (theirs - ours).abs() <= 0.1,
        "eval-only: PyTorch {theirs} %, trainlab {ours} %"
    );
    let script = dir.path().join("gru.py");
    export(&["-o", script.to_str().expect("utf-8")], &exp);
    let text = std::fs::read_to_string(&script).expect("script");
    assert!(
        text.contains("GRU(32, 128, num_layers=1, dropout=0),  # layers.1")
            && text.contains("self.head = nn.Linear(128, 6)"),
        "{text}"
    );
    let out = run_script(&python, &script, &[]);
    let theirs = test_accuracy(&out);
    // PyTorch starts from its own random weights and order, so the two runs differ
    // by a seed: the script with seeds 1-4 and 42 gave 80.61-81.78 % here against
    // trainlab's 81.56 %. 2 points holds that spread; a wrong layer, loss or
    // learning rate misses by far more.
    assert!(
        (theirs - ours).abs() <= 2.0,
        "training: PyTorch {theirs} %, trainlab {ours} %"
    );
}

#[test]
fn char_language_models_evaluate_to_trainlabs_loss() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    // The hand-written LSTM (one bias per layer) and the Transformer block.
    for name in ["text_charlm_lstm", "text_charlm_transformer"] {
        let run = dir.path().join(name);
        train(
            &experiment(&format!("{name}.ron")),
            &run,
            &["--set", "training.epochs=1"],
        );
        export(&["--eval-only"], &run);
        let out = run_script(&python, &run.join("train.py"), &[]);
        let line = out
            .lines()
            .find(|l| l.starts_with("test loss"))
            .unwrap_or_else(|| panic!("no test line in:\n{out}"));
        assert!(
            line.contains("bits/token") && line.contains("perplexity"),
            "{line}"
        );
        let theirs: f64 = line
            .split_whitespace()
            .nth(2)
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        let ours = summary(&run)["test_loss"].as_f64().expect("test loss");
        assert!(
            (theirs - ours).abs() <= 0.01,
            "{name}: PyTorch loss {theirs}, trainlab {ours}"
        );
    }
}

/// The moves of `greedy path: N moves; ...`, None when it does not reach a goal.
fn greedy_moves(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with("greedy path:"))
        .unwrap_or_else(|| panic!("no greedy path in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words.get(3) == Some(&"moves;")).then(|| words[2].parse().expect("a count"))
}

#[test]
fn the_dqn_maze_gives_trainlabs_greedy_path_and_trains_to_the_goal() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let exp = experiment("gridworld_dqn.ron");
    let run = dir.path().join("run");
    train(&exp, &run, &[]);
    export(&["--eval-only"], &run);
    let out = run_script(&python, &run.join("train.py"), &[]);
    let ours = summary(&run)["rl"]["greedy_path_len"].as_u64();
    assert_eq!(greedy_moves(&out), ours, "{out}");
    // Training: PyTorch's random numbers are not trainlab's; only the outcome counts.
    let script = dir.path().join("dqn.py");
    export(&["-o", script.to_str().expect("utf-8")], &exp);
    let out = run_script(&python, &script, &[]);
    assert!(
        greedy_moves(&out).is_some(),
        "the greedy path misses the goal:\n{out}"
    );
}

#[test]
fn what_has_no_equivalent_is_an_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    // A playground, a Q-table, and a fine-tuning run (init_from, freeze).
    for exp in [
        "playground_spiral.ron",
        "gridworld_qlearning.ron",
        "text_finetune.ron",
    ] {
        let script = dir.path().join("out.py");
        let o = trainlab()
            .args(["export", "pytorch"])
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("experiments")
                    .join(exp),
            )
            .arg("-o")
            .arg(&script)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{exp}");
        // A Q-table has no network at all; the others are networks not mapped yet.
        let why = if exp.starts_with("gridworld") {
            "nothing to export"
        } else {
            "not exported yet"
        };
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(why), "{exp}: {stderr}");
        assert!(
            !script.exists()
                && !dir.path().join("out.split.json").exists()
                && !dir.path().join("out.data.json").exists(),
            "{exp}: something was written"
        );
    }
}
