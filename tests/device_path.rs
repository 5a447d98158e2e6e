//! The path a GPU run takes, checked without a GPU: every example experiment
//! trains a few steps with candle's own ops (`Kernels::Reference`, what CUDA and
//! Metal runs execute), and no code a training step runs may create an f64 tensor
//! (candle's Metal backend has none) or read a scalar back as f64. And the CPU's
//! fused sequence kernels follow that path's loss curve step for step.

use std::path::{Path, PathBuf};

use trainlab::model::Kernels;
use trainlab::spec::{AgentMethod, DatasetSpec, Experiment, load_file};
use trainlab::train::{FailureKind, StartOptions, TrainEvent};

mod common;
use common::{run_all, step_losses};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("experiments/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .filter(|p| !p.ends_with("broken.ron"))
        .collect();
    files.sort();
    files
}

/// The example, shrunk to a few steps (and without the pretrained run that a
/// fine-tune example reads, which a test cannot assume).
fn few_steps(path: &Path) -> Experiment {
    let mut exp = load_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    exp.training.init_from = None;
    exp.training.init_exclude.clear();
    exp.training.epochs = 1;
    match &mut exp.dataset {
        DatasetSpec::Images(d) => {
            d.train_limit = Some(200);
            d.test_limit = Some(50);
        }
        DatasetSpec::Text(t) => t.limit = Some(300),
        DatasetSpec::Gridworld(_) => {
            exp.agent.episodes = 4;
            exp.agent.log_every_episodes = 2;
        }
        DatasetSpec::Points(p) => p.samples = 100,
    }
    exp
}

#[test]
fn every_example_trains_with_candles_own_ops() {
    for path in examples() {
        let exp = few_steps(&path);
        let needs_model = !matches!(&exp.dataset, DatasetSpec::Gridworld(_))
            || matches!(exp.agent.method, AgentMethod::Dqn(_));
        let events = run_all(
            exp,
            StartOptions {
                kernels: Kernels::Reference,
                halt_after_step: Some(3),
                ..StartOptions::default()
            },
        );
        let name = path.display();
        match events.last() {
            Some(TrainEvent::Finished(s)) => {
                assert!(s.steps > 0, "{name}: trained no step");
                if needs_model {
                    assert!(s.parameters > 0, "{name}");
                }
            }
            // Data that only a package provides: fine to miss on a developer's
            // machine (CI installs it), never a crash.
            Some(TrainEvent::Failed {
                kind: FailureKind::BadInput,
                message,
                ..
            }) if message.contains("apt-get install") || message.contains("/usr/share") => {
                eprintln!("{name}: skipped, {message}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// The fused CPU kernels (LSTM, GRU and Transformer layers as single ops with
/// their own backward passes) train the sequence examples along the same loss
/// curve as candle's own ops, step for step.
#[test]
fn fused_sequence_kernels_train_like_candles_ops() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for name in [
        "text_charlm_lstm.ron",
        "text_charlm_gru.ron",
        "text_charlm_transformer.ron",
    ] {
        let curve = |kernels: Kernels| {
            let mut exp = few_steps(&dir.join(name));
            exp.training.log_every_steps = 1;
            if let DatasetSpec::Text(t) = &mut exp.dataset {
                t.limit = Some(5_000);
            }
            let events = run_all(
                exp,
                StartOptions {
                    kernels,
                    halt_after_step: Some(20),
                    ..StartOptions::default()
                },
            );
            step_losses(&events)
        };
        let (fast, reference) = (curve(Kernels::Fast), curve(Kernels::Reference));
        assert!(fast.len() >= 18, "{name}: {fast:?}");
        assert_eq!(fast.len(), reference.len(), "{name}");
        let worst = fast
            .iter()
            .zip(&reference)
            .map(|(f, r)| (f - r).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{name}: worst loss difference {worst:e} over {} steps",
            fast.len()
        );
        for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
            assert!(
                // Float rounding gives ~1e-5; half of one gradient gives 2e-4.
                (f - r).abs() < 5e-5,
                "{name} step {i}: fused {f}, candle {r}"
            );
        }
        assert!(fast[fast.len() - 1] < fast[0], "{name} learns: {fast:?}");
    }
}

/// The code of `dir` outside its `#[cfg(test)]` modules, as (file, line, text).
fn non_test_lines(dir: &Path) -> Vec<(PathBuf, usize, String)> {
    let mut out = Vec::new();
    for path in common::files_under(dir) {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            out.push((path.clone(), i + 1, line.to_string()));
        }
    }
    out
}

#[test]
fn no_training_code_makes_or_reads_f64_tensors() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "DType::F64",
        "to_scalar::<f64>",
        "to_vec0::<f64>",
        "to_vec1::<f64>",
        "to_vec2::<f64>",
    ];
    let mut found = Vec::new();
    for folder in ["train", "model", "infer", "compress"] {
        for (file, line, text) in non_test_lines(&src.join(folder)) {
            if text.trim_start().starts_with("//") {
                continue;
            }
            if let Some(f) = forbidden.iter().find(|f| text.contains(**f)) {
                found.push(format!("{}:{line}: {f}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "GPU backends (Metal) have no f64: read f32 back and widen on the host:\n{}",
        found.join("\n")
    );
}
