//! What runs and studies leave on disk: a study trial that will not train again
//! keeps its final weights, record and summary but no checkpoint, and
//! `training.checkpoint.keep_last: 0` leaves a run with none once it has ended;
//! `study resume` and a killed run's resume still work (tests/study_runs.rs,
//! tests/resume_runs.rs).

use std::path::Path;
use std::process::Command;

use trainlab::runs::checkpoints;
use trainlab::study::{Journal, TrialState, replay, trial_dir};

fn trainlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainlab"))
}

/// `trainlab COMMAND... FILE --out OUT`.
fn run_to(command: &[&str], file: &Path, out: &Path) -> std::process::Output {
    trainlab()
        .args(command)
        .arg(file)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs")
}

/// The MLP on part of the bundled digits.
const BASE: &str = r#"(
        name: "mlp",
        dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), test_limit: Some(100)),
        model: [Flatten, Linear(out: 32), ReLU, Linear(out: 10)],
        training: (epochs: 2, batch_size: 50),
    )"#;

#[test]
fn finished_and_stopped_trials_keep_weights_and_summary_but_no_checkpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("study.ron");
    let text = format!(
        r#"(
    name: "t",
    base: Inline{BASE},
    space: {{ "optimizer.lr": LogUniform(1e-4, 1e-1) }},
    search: Asha(trials: 6, min_epochs: 1, max_epochs: 3, eta: 3),
    objectives: [Maximize(ValAccuracy)],
    seed: 4,
)"#
    );
    std::fs::write(&file, text).expect("write");
    let out = dir.path().join("s");
    let o = run_to(&["study", "run"], &file, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trials = replay(&Journal::new(&out).read().expect("journal"));
    let stopped = trials
        .iter()
        .filter(|t| t.state == TrialState::Stopped)
        .count();
    assert!(stopped >= 3, "{trials:?}");
    for t in &trials {
        assert!(
            matches!(t.state, TrialState::Finished | TrialState::Stopped),
            "{t:?}"
        );
        let run = trial_dir(&out, t.id);
        for name in ["model.safetensors", "summary.json", "metrics.jsonl"] {
            assert!(run.join(name).is_file(), "trial {}: {name}", t.id);
        }
        assert!(
            checkpoints::list(&run).is_empty() && !run.join(checkpoints::DIR).exists(),
            "trial {} ({}) keeps no checkpoint",
            t.id,
            t.state.name()
        );
    }
}

fn run_keep_none(out: &Path) -> std::process::Output {
    let file = out.with_extension("ron");
    let exp = BASE.replace(
        "batch_size: 50",
        "batch_size: 50, checkpoint: (every_epochs: Some(1), keep_last: 0)",
    );
    std::fs::write(&file, exp).expect("write");
    run_to(&["run"], &file, out)
}

#[test]
fn keep_last_zero_leaves_the_model_and_summary_and_no_checkpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("run");
    let o = run_keep_none(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("model.safetensors").is_file());
    assert!(out.join("summary.json").is_file());
    assert!(checkpoints::list(&out).is_empty());
    assert!(!out.join(checkpoints::DIR).exists());
    let o = trainlab()
        .arg("resume")
        .arg(&out)
        .args(["--set", "training.epochs=3"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no checkpoint") && err.contains("keep_last: 0"),
        "{err}"
    );
}

/// Every tensor of a safetensors file, widened to f32 (the names sorted).
fn tensors(path: &Path) -> Vec<(String, candle_core::DType, Vec<f32>)> {
    let map = candle_core::safetensors::load(path, &candle_core::Device::Cpu).expect("loads");
    let mut out: Vec<_> = map
        .into_iter()
        .map(|(name, t)| {
            let dtype = t.dtype();
            let values = t
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values");
            (name, dtype, values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_trial_keeps_half_precision_weights_by_default_and_its_experiment_trains_them_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let study = |name: &str, extra: &str| {
        let file = dir.path().join(format!("{name}.ron"));
        let text = format!(
            r#"(
    name: "{name}",
    base: Inline{BASE},
    space: {{ "optimizer.lr": LogUniform(1e-4, 1e-1) }},
    search: Random(trials: 1),
    objectives: [Maximize(ValAccuracy)],
    seed: 4,
    {extra}
)"#
        );
        std::fs::write(&file, text).expect("write");
        let out = dir.path().join(name);
        let o = run_to(&["study", "run"], &file, &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        trial_dir(&out, 0)
    };
    let halved = study("h", "");
    let exact = study("f", "trial_weights: F32,");
    // The trial's own experiment, run on its own, trains the same weights again.
    let again = dir.path().join("again");
    let o = run_to(&["run"], &halved.join("experiment.ron"), &again);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trained = tensors(&again.join("model.safetensors"));
    assert!(
        trained
            .iter()
            .all(|(_, d, _)| *d == candle_core::DType::F32),
        "as trained"
    );
    assert_eq!(
        trained,
        tensors(&exact.join("model.safetensors")),
        "bit for bit"
    );
    let kept = tensors(&halved.join("model.safetensors"));
    assert_eq!(kept.len(), trained.len());
    for ((name, dtype, half), (_, _, full)) in kept.iter().zip(&trained) {
        assert_eq!(*dtype, candle_core::DType::F16, "{name}");
        let rounded = candle_core::Tensor::new(full.as_slice(), &candle_core::Device::Cpu)
            .and_then(|t| t.to_dtype(candle_core::DType::F16))
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .expect("rounded");
        assert_eq!(
            half, &rounded,
            "{name}: the trained weights, rounded to f16"
        );
    }
}
