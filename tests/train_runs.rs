//! End-to-end training runs on the bundled real MNIST sample: learning, the run
//! record, determinism, control messages, divergence and bad input.

use std::path::Path;
use std::time::Duration;

use trainlab::spec::{
    DataSource, DatasetSpec, Experiment, ImageDatasetSpec, LayerSpec, OptimizerSpec, TrainingSpec,
};
use trainlab::train::{
    Control, FailureKind, RunSummary, StartOptions, StopReason, TrainEvent, start,
};

/// A small but real experiment: the seed MLP on part of the bundled digits.
fn small_mnist(epochs: usize) -> Experiment {
    Experiment {
        name: "test_mlp".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(2_000),
            test_limit: Some(500),
            val_fraction: 0.1,
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs,
            batch_size: 32,
            log_every_steps: 5,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

mod common;
use common::{run_all, step_losses, summary};

#[test]
fn mlp_learns_real_digits_and_records_the_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let events = run_all(
        small_mnist(3),
        StartOptions {
            run_dir: Some(run_dir.clone()),
            ..StartOptions::default()
        },
    );
    let s = summary(&events);
    let losses = step_losses(&events);
    let first = losses.first().copied().expect("step events");
    let last = losses.last().copied().expect("step events");
    assert!(
        first > 1.0,
        "an untrained 10-class model starts near ln 10: {first}"
    );
    assert!(last < first * 0.4, "loss must fall: {first} -> {last}");
    let acc = s.test_accuracy.expect("test accuracy");
    assert!(acc > 0.80, "far above 10 % chance: {acc}");
    assert_eq!(s.reason, StopReason::Completed);
    assert_eq!(s.parameters, 101_770);
    assert!(
        matches!(&events[0], TrainEvent::Started(i) if i.train_samples == 1_800 && i.val_samples == 200)
    );

    // The run folder: resolved experiment, one JSON line per event, summary, weights.
    let exp_back =
        trainlab::spec::load_file(&run_dir.join("experiment.ron")).expect("experiment.ron");
    assert_eq!(exp_back, small_mnist(3));
    let recorded = trainlab::runs::read_events(&run_dir).expect("metrics.jsonl");
    assert_eq!(
        recorded, events,
        "no consumer lag here, so the record equals the stream"
    );
    let on_disk: RunSummary =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
            .expect("summary parses");
    assert_eq!(on_disk.test_accuracy, s.test_accuracy);
    let weights = candle_core::safetensors::load(
        run_dir.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .expect("weights load");
    assert_eq!(weights["layers.1.weight"].dims(), &[128, 784]);
    let listed = trainlab::runs::list_runs(dir.path());
    assert_eq!(listed.len(), 1);
    assert!(listed[0].summary.is_some());
}

#[test]
fn same_seed_gives_the_same_metrics() {
    let a = run_all(small_mnist(1), StartOptions::default());
    let b = run_all(small_mnist(1), StartOptions::default());
    assert_eq!(step_losses(&a), step_losses(&b));
    assert_eq!(summary(&a).test_loss, summary(&b).test_loss);
    let mut other = small_mnist(1);
    other.seed = 7;
    let c = run_all(other, StartOptions::default());
    assert_ne!(
        step_losses(&a),
        step_losses(&c),
        "a different seed changes the run"
    );
}

#[test]
fn pause_set_lr_resume_and_stop() {
    let handle = start(small_mnist(50), StartOptions::default());
    let events = handle.events();
    let wait_for = |pred: &dyn Fn(&TrainEvent) -> bool| -> Vec<TrainEvent> {
        let mut seen = Vec::new();
        loop {
            match events.recv_timeout(Duration::from_secs(60)) {
                Ok(e) => {
                    let hit = pred(&e);
                    seen.push(e);
                    if hit {
                        return seen;
                    }
                }
                Err(e) => panic!("no matching event: {e}; saw {seen:?}"),
            }
        }
    };
    wait_for(&|e| matches!(e, TrainEvent::Step(_)));
    assert!(handle.send(Control::Pause));
    let paused_at = match wait_for(&|e| matches!(e, TrainEvent::Paused { .. })).pop() {
        Some(TrainEvent::Paused { step }) => step,
        other => panic!("{other:?}"),
    };
    // While paused no step happens.
    std::thread::sleep(Duration::from_millis(300));
    assert!(events.try_iter().all(|e| !matches!(e, TrainEvent::Step(_))));
    assert!(handle.send(Control::SetLearningRate(5e-4)));
    assert!(handle.send(Control::Resume));
    let seen = wait_for(&|e| matches!(e, TrainEvent::Resumed { .. }));
    assert!(
        seen.contains(&TrainEvent::LrChanged {
            step: paused_at,
            lr: 5e-4
        }),
        "{seen:?}"
    );
    let after = wait_for(&|e| matches!(e, TrainEvent::Step(_)));
    match after.last() {
        Some(TrainEvent::Step(s)) => {
            assert_eq!(s.lr, 5e-4, "new lr in effect");
            assert!(s.step > paused_at);
        }
        other => panic!("{other:?}"),
    }
    assert!(handle.send(Control::Stop));
    let end = wait_for(&|e| matches!(e, TrainEvent::Finished(_) | TrainEvent::Failed { .. }));
    match end.last() {
        Some(TrainEvent::Finished(s)) => {
            assert_eq!(s.reason, StopReason::Stopped);
            assert_eq!(s.lr_changes, vec![(paused_at, 5e-4)]);
            assert!(s.test_accuracy.is_some(), "a stopped run is still tested");
            assert!(s.epochs < 50.0);
        }
        other => panic!("{other:?}"),
    }
    handle.join();
}

#[test]
fn divergence_fails_with_advice() {
    let mut exp = small_mnist(1);
    exp.optimizer = OptimizerSpec::Sgd {
        lr: 1e12,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    };
    let events = run_all(exp, StartOptions::default());
    match events.last() {
        Some(TrainEvent::Failed {
            kind,
            message,
            step,
        }) => {
            assert_eq!(*kind, FailureKind::Diverged, "{message}");
            assert!(message.contains("learning rate"), "{message}");
            assert!(*step > 0);
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// A learning rate far too high that does not reach NaN (Adam at lr 10) still
/// tells the learner why nothing is learned, and the run finishes normally.
#[test]
fn a_loss_that_climbs_gets_a_learning_rate_note() {
    let mut exp = small_mnist(1);
    exp.optimizer = OptimizerSpec::adam(10.0);
    let events = run_all(exp, StartOptions::default());
    assert!(
        matches!(events.last(), Some(TrainEvent::Finished(_))),
        "{:?}",
        events.last()
    );
    let notes: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Note { message, .. } if message.contains("too high") => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "one note, not one per Step: {notes:?}");
}

#[test]
fn missing_data_is_a_clear_bad_input_failure() {
    let mut exp = small_mnist(1);
    exp.dataset = DatasetSpec::Images(ImageDatasetSpec {
        source: DataSource::Dir("/no/such/mnist".into()),
        ..ImageDatasetSpec::default()
    });
    let events = run_all(exp, StartOptions::default());
    match events.as_slice() {
        [TrainEvent::Failed { kind, message, .. }] => {
            assert_eq!(*kind, FailureKind::BadInput);
            assert!(message.contains("/no/such/mnist"), "{message}");
        }
        other => panic!("expected one Failed event, got {other:?}"),
    }
}

#[test]
fn slow_consumer_gets_merged_steps_and_the_record_keeps_all() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut exp = small_mnist(2);
    exp.training.log_every_steps = 1;
    let handle = start(
        exp,
        StartOptions {
            run_dir: Some(dir.path().to_path_buf()),
            event_capacity: 2,
            ..StartOptions::default()
        },
    );
    // Do not read for a while: training must go on regardless.
    std::thread::sleep(Duration::from_millis(1500));
    let received: Vec<TrainEvent> = handle.events().iter().collect();
    handle.join();
    let s = summary(&received);
    let covered: u64 = received
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(s.steps_covered),
            _ => None,
        })
        .sum();
    assert_eq!(
        covered, s.steps,
        "merged Step events still account for every step"
    );
    let recorded = trainlab::runs::read_events(Path::new(dir.path())).expect("record");
    let recorded_steps = recorded
        .iter()
        .filter(|e| matches!(e, TrainEvent::Step(_)))
        .count();
    let received_steps = received
        .iter()
        .filter(|e| matches!(e, TrainEvent::Step(_)))
        .count();
    assert_eq!(
        recorded_steps as u64, s.steps,
        "the record has one Step per step"
    );
    assert!(
        received_steps < recorded_steps,
        "{received_steps} vs {recorded_steps}"
    );
}

#[test]
fn early_stopping_ends_the_run_on_a_flat_val_loss() {
    let mut exp = small_mnist(20);
    exp.training.eval_every_steps = Some(10);
    // No improvement can beat a min_delta this large, so the second evaluation stops.
    exp.training.early_stopping = Some(trainlab::spec::EarlyStopping {
        patience: 0,
        min_delta: 100.0,
    });
    let events = run_all(exp, StartOptions::default());
    let s = summary(&events);
    assert_eq!(s.reason, StopReason::EarlyStopped);
    assert_eq!(s.steps, 20, "stopped at the second evaluation");
    assert!(events.iter().any(
        |e| matches!(e, TrainEvent::Note { message, .. } if message.contains("early stopping"))
    ));
    assert!(s.test_accuracy.is_some());
}

#[test]
fn gradient_clipping_limits_the_update() {
    let run = |clip: Option<f64>| {
        let mut exp = small_mnist(1);
        exp.training.grad_clip_norm = clip;
        exp.optimizer = OptimizerSpec::Sgd {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        let events = run_all(exp, StartOptions::default());
        summary(&events).train_loss.expect("train loss")
    };
    let free = run(None);
    let clipped = run(Some(1e-4));
    assert!(free < 1.0, "plain SGD learns: {free}");
    assert!(
        clipped > 2.0,
        "tiny steps barely move from ln 10 = 2.30: {clipped}"
    );
}

/// The named tensor of a run's saved weights, as numbers.
fn saved(dir: &Path, name: &str) -> Vec<f32> {
    let w =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
            .expect("weights");
    w[name]
        .flatten_all()
        .expect("flat")
        .to_vec1::<f32>()
        .expect("f32")
}

#[test]
fn an_image_model_is_fine_tuned_with_frozen_and_fresh_layers() {
    let root = tempfile::tempdir().expect("tmp");
    let cnn: Vec<LayerSpec> = trainlab::spec::from_ron_str(
        "(model: [Conv2d(out: 4, kernel: 3, padding: 1), ReLU, MaxPool2d(kernel: 2), Flatten, \
         Linear(out: 10)])",
        "t",
    )
    .expect("model")
    .model;
    let mut pre = small_mnist(1);
    pre.model = cnn.clone();
    let pre_dir = root.path().join("pre");
    let pre_events = run_all(
        pre,
        StartOptions {
            run_dir: Some(pre_dir.clone()),
            ..StartOptions::default()
        },
    );
    summary(&pre_events);

    let mut fine = small_mnist(1);
    fine.seed = 7;
    fine.model = cnn;
    fine.training.init_from = Some(pre_dir.clone());
    fine.training.init_exclude = vec!["4".into()];
    fine.training.freeze = vec!["0".into()];
    let fine_dir = root.path().join("fine");
    let events = run_all(
        fine.clone(),
        StartOptions {
            run_dir: Some(fine_dir.clone()),
            ..StartOptions::default()
        },
    );
    let s = summary(&events);
    assert!(s.test_accuracy.is_some_and(|a| a > 0.5), "{s:?}");
    let notes: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Note { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("loaded 2 tensor(s)")
            && n.contains("layers.0.weight")
            && n.contains("layers.4.weight: excluded by training.init_exclude")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("frozen (not trained): layers.0.weight"))
    );
    assert_eq!(
        saved(&fine_dir, "layers.0.weight"),
        saved(&pre_dir, "layers.0.weight"),
        "the frozen convolution is the pretrained one, unchanged"
    );
    assert_ne!(
        saved(&fine_dir, "layers.4.weight"),
        saved(&pre_dir, "layers.4.weight")
    );

    // A pattern that matches no layer is an error naming it.
    fine.training.freeze = vec!["7".into()];
    let failed = run_all(fine, StartOptions::default());
    assert!(
        matches!(failed.last(), Some(TrainEvent::Failed { kind: FailureKind::BadInput, message, .. })
            if message.contains("\"7\" matches no parameter") && message.contains("layers.4.weight")),
        "{:?}",
        failed.last()
    );
}
