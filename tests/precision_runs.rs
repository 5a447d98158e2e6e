//! Mixed-precision training (`training.precision`): Bf16 and F16 runs of a small
//! MLP on the bundled digits learn about as well as F32 on the same seed; an F16
//! run keeps every file f32 and resumes exactly; a forced gradient overflow is
//! skipped and counted in the record; a char-LSTM trains in Bf16; combinations
//! that cannot run are refused with a message that names the field.

use std::path::Path;

use candle_core::{DType, Device};
use trainlab::runs::{checkpoints, read_events};
use trainlab::spec::{
    BundledText, DataSource, DatasetSpec, Experiment, ImageDatasetSpec, OptimizerSpec, Precision,
    TrainingSpec, apply_override, load_file, validate,
};
use trainlab::train::{RunSummary, StartOptions, StopReason, TrainEvent};

mod common;
use common::experiments::{char_lm_data, embedding_lstm};
use common::{run_all, step_losses, summary};

/// The seed MLP on part of the bundled digits, in `precision`.
fn small_mnist(precision: Precision, epochs: usize) -> Experiment {
    Experiment {
        name: format!("mlp_{}", precision.name()),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            source: DataSource::Bundled,
            train_limit: Some(1_000),
            test_limit: Some(300),
            val_fraction: 0.1,
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs,
            batch_size: 32,
            log_every_steps: 5,
            precision,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

fn recorded_to(dir: &Path, precision: Precision, epochs: usize) -> Vec<TrainEvent> {
    run_all(
        small_mnist(precision, epochs),
        StartOptions {
            run_dir: Some(dir.to_path_buf()),
            ..StartOptions::default()
        },
    )
}

/// The dtype of every tensor in a safetensors file.
fn dtypes(path: &Path) -> Vec<DType> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .values()
        .map(|t| t.dtype())
        .collect()
}

#[test]
fn bf16_and_f16_learn_digits_about_as_well_as_f32() {
    let f32_events = run_all(small_mnist(Precision::F32, 2), StartOptions::default());
    let base = summary(&f32_events);
    let base_acc = base.test_accuracy.expect("test accuracy");
    assert!(base_acc > 0.75, "the f32 reference learns: {base_acc}");
    assert_eq!(base.precision, None, "F32 reports no mixed precision");
    for precision in [Precision::Bf16, Precision::F16] {
        let events = run_all(small_mnist(precision, 2), StartOptions::default());
        let s = summary(&events);
        let acc = s.test_accuracy.expect("test accuracy");
        eprintln!(
            "{precision:?}: test accuracy {acc} (f32 {base_acc}), {:?}",
            s.precision
        );
        assert!(
            (acc - base_acc).abs() < 0.04,
            "{precision:?}: {acc} against f32's {base_acc}"
        );
        let losses = step_losses(&events);
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        let p = s.precision.as_ref().expect("a mixed-precision summary");
        assert_eq!(p.precision, precision.name());
        match precision {
            Precision::F16 => {
                assert!(p.loss_scale.is_some(), "F16 scales the loss");
                assert!(
                    p.skipped_steps < s.steps / 4,
                    "a few overflows at most at the start: {p:?}"
                );
            }
            _ => assert_eq!(
                (p.loss_scale, p.skipped_steps),
                (None, 0),
                "Bf16 needs none"
            ),
        }
    }
}

#[test]
fn an_f16_run_keeps_f32_files_and_resumes_exactly() {
    let root = tempfile::tempdir().expect("tmp");
    let straight = recorded_to(&root.path().join("straight"), Precision::F16, 2);
    let want = summary(&straight).clone();

    let dir = root.path().join("halted");
    let halted = run_all(
        small_mnist(Precision::F16, 2),
        StartOptions {
            run_dir: Some(dir.clone()),
            halt_after_step: Some(20),
            ..StartOptions::default()
        },
    );
    assert_eq!(summary(&halted).reason, StopReason::Stopped);
    let (step, checkpoint) = checkpoints::latest(&dir).expect("a checkpoint at the halt");
    assert_eq!(step, 20);
    for file in [checkpoints::MODEL, checkpoints::TRAINING] {
        let kinds = dtypes(&checkpoint.join(file));
        assert!(
            !kinds.is_empty() && kinds.iter().all(|d| *d == DType::F32),
            "{file}: {kinds:?}"
        );
    }
    let resumed = run_all(
        small_mnist(Precision::F16, 2),
        StartOptions {
            run_dir: Some(dir.clone()),
            resume_from: Some(checkpoint),
            ..StartOptions::default()
        },
    );
    let got = summary(&resumed);
    let figures = |s: &RunSummary| (s.steps, s.test_loss, s.test_accuracy, s.precision.clone());
    assert_eq!(figures(got), figures(&want), "resumed == straight through");
    let kinds = dtypes(&dir.join("model.safetensors"));
    assert!(kinds.iter().all(|d| *d == DType::F32), "{kinds:?}");
    // The saved model loads into a plain f32 model (fine-tuning, export, compress).
    let model = trainlab::model::Model::build(
        &small_mnist(Precision::F32, 1).model,
        &[1, 28, 28],
        1,
        &Device::Cpu,
    )
    .expect("model");
    model
        .load(&dir.join("model.safetensors"))
        .expect("f32 weights load");
}

#[test]
fn a_forced_overflow_is_skipped_and_counted_in_the_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    // 2^40 times a gradient of order 1e-3 is far beyond f16's largest value
    // (65504): the first steps overflow until the scale has halved enough.
    let events = run_all(
        small_mnist(Precision::F16, 2),
        StartOptions {
            run_dir: Some(run_dir.clone()),
            initial_loss_scale: Some(2f64.powi(40)),
            ..StartOptions::default()
        },
    );
    let s = summary(&events);
    let p = s.precision.as_ref().expect("a mixed-precision summary");
    eprintln!(
        "forced overflow: {p:?} of {} steps, test accuracy {:?}",
        s.steps, s.test_accuracy
    );
    assert!(p.skipped_steps >= 5, "{p:?}");
    assert!(p.skipped_steps < s.steps, "later steps apply: {p:?}");
    let scale = p.loss_scale.expect("F16 has a scale");
    assert_eq!(
        scale,
        2f64.powi(40 - p.skipped_steps as i32),
        "halved once per skipped step"
    );
    assert!(s.test_accuracy.expect("accuracy") > 0.5, "it still learns");
    let on_disk: RunSummary =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
            .expect("summary parses");
    assert_eq!(on_disk.precision, s.precision);
    let note = read_events(&run_dir)
        .expect("metrics.jsonl")
        .into_iter()
        .find_map(|e| match e {
            TrainEvent::Note { message, .. } if message.contains("overflowed") => Some(message),
            _ => None,
        })
        .expect("a note in the record");
    assert!(
        note.contains(&format!("{} of {} steps skipped", p.skipped_steps, s.steps)),
        "{note}"
    );
}

#[test]
fn a_char_lstm_trains_in_bf16() {
    let exp = Experiment {
        name: "lm_bf16".into(),
        seed: 1,
        dataset: char_lm_data(BundledText::Words, 1500, 16, None),
        model: embedding_lstm(16, 32),
        optimizer: OptimizerSpec::adam(1e-2),
        training: TrainingSpec {
            epochs: 1,
            batch_size: 16,
            log_every_steps: 5,
            grad_clip_norm: Some(1.0),
            precision: Precision::Bf16,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    let events = run_all(exp, StartOptions::default());
    let s = summary(&events);
    assert_eq!(s.reason, StopReason::Completed);
    let losses = step_losses(&events);
    assert!(losses.len() >= 3, "{losses:?}");
    assert!(
        losses[losses.len() - 1] < losses[0] * 0.85,
        "the loss falls: {losses:?}"
    );
}

#[test]
fn precision_is_set_from_the_command_line_and_refused_where_it_cannot_run() {
    let exp = apply_override(&Experiment::default(), "training.precision=F16").expect("settable");
    assert_eq!(exp.training.precision, Precision::F16);
    let e = apply_override(&Experiment::default(), "training.precision=F8").expect_err("no F8");
    assert!(e.to_string().contains("training.precision"), "{e}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for (file, what) in [
        ("playground_spiral.ron", "2-D playground"),
        ("gridworld_qlearning.ron", "gridworld"),
        ("gridworld_dqn.ron", "gridworld"),
    ] {
        let mut exp = load_file(&root.join(file)).expect("example loads");
        exp.training.precision = Precision::Bf16;
        let e = validate(&exp).expect_err("refused").to_string();
        assert!(
            e.contains("training.precision") && e.contains(what) && e.contains("F32"),
            "{file}: {e}"
        );
    }
    // The examples in F32, as they are, stay valid and unchanged.
    let exp = load_file(&root.join("mnist_mlp.ron")).expect("loads");
    assert_eq!(exp.training.precision, Precision::F32);
}
