//! Stop and continue: a run halted after some step and resumed from its checkpoint
//! must record exactly what the same run records when it never stops (per-step
//! losses, evaluations, samples, final figures), for every supervised run kind.

use std::path::Path;

use trainlab::runs::{checkpoints, read_events};
use trainlab::spec::{
    AgentMethod, Augment, BundledText, ClassificationSpec, DatasetSpec, DqnSpec, EarlyStopping,
    Experiment, GridworldSpec, ImageDatasetSpec, LayerSpec, LayoutSpec, OptimizerSpec,
    ScheduleSpec, TabularSpec, TargetUpdate, TextDatasetSpec, TextSource, TextTask, TrainingSpec,
};
use trainlab::train::{RunSummary, StartOptions, StopReason, TrainEvent};

mod common;
use common::experiments::{char_lm_data, embedding_gru, maze_agent};
use common::{run_all, summary};

/// What must be the same in both records: every Step, Eval and Sample, in order,
/// without the timing fields.
fn trajectory(events: &[TrainEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(format!(
                "step {} loss {:?} acc {:?} lr {:?} covers {}",
                s.step, s.loss, s.accuracy, s.lr, s.steps_covered
            )),
            TrainEvent::Eval(e) => Some(format!(
                "eval {} {:?} loss {:?} acc {:?} {:?}",
                e.step, e.split, e.loss, e.accuracy, e.confusion
            )),
            TrainEvent::Sample(s) => Some(format!("sample {} {:?}", s.step, s.text)),
            TrainEvent::Episodes(m) => Some(common::untimed_episodes(m)),
            _ => None,
        })
        .collect()
}

fn figures(s: &RunSummary) -> String {
    let rl = s.rl.as_ref().map(|r| {
        let mut r = r.clone();
        (r.first_optimal_seconds, r.env_steps_per_sec) = (None, 0.0);
        r
    });
    format!(
        "{:?} steps {} train {:?}/{:?} val {:?}/{:?} test {:?}/{:?} {:?} {rl:?}",
        s.reason,
        s.steps,
        s.train_loss,
        s.train_accuracy,
        s.val_loss,
        s.val_accuracy,
        s.test_loss,
        s.test_accuracy,
        s.language
    )
}

fn recorded(dir: &Path) -> Vec<TrainEvent> {
    read_events(dir).expect("metrics.jsonl")
}

/// Runs `exp` straight through, and again halted after `halt` steps and resumed;
/// asserts that both records and summaries agree.
fn assert_resume_is_exact(exp: &Experiment, halt: u64) {
    let root = tempfile::tempdir().expect("tmp");
    let straight_dir = root.path().join("straight");
    let straight = run_all(
        exp.clone(),
        StartOptions {
            run_dir: Some(straight_dir.clone()),
            ..StartOptions::default()
        },
    );
    let straight_summary = summary(&straight).clone();

    let dir = root.path().join("stopped");
    let halted = run_all(
        exp.clone(),
        StartOptions {
            run_dir: Some(dir.clone()),
            halt_after_step: Some(halt),
            ..StartOptions::default()
        },
    );
    let halted_summary = summary(&halted);
    assert_eq!(halted_summary.reason, StopReason::Stopped);
    if halted_summary.rl.is_none() {
        assert_eq!(halted_summary.steps, halt);
    }
    let (step, checkpoint) = checkpoints::latest(&dir).expect("a checkpoint at the halt");
    assert_eq!(
        step, halt,
        "checkpoints are named by step (episodes for mazes)"
    );

    let resumed = run_all(
        exp.clone(),
        StartOptions {
            run_dir: Some(dir.clone()),
            resume_from: Some(checkpoint),
            ..StartOptions::default()
        },
    );
    let resumed_summary = summary(&resumed);
    assert_eq!(
        figures(resumed_summary),
        figures(&straight_summary),
        "final figures of {}",
        exp.name
    );
    let record = recorded(&dir);
    let restored: Vec<u64> = record
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Restored { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(restored, vec![halt], "the record says where it resumed");
    assert_eq!(
        trajectory(&record),
        trajectory(&recorded(&straight_dir)),
        "per-step record of {}",
        exp.name
    );
    let on_disk: RunSummary =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary"))
            .expect("parses");
    assert_eq!(figures(&on_disk), figures(&straight_summary));
    assert!(
        checkpoints::list(&dir).len() <= exp.training.checkpoint.keep_last,
        "old checkpoints are pruned"
    );
}

#[test]
fn images_resume_exactly_with_dropout_augmentation_and_early_stopping() {
    let exp = Experiment {
        name: "resume_images".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(600),
            test_limit: Some(200),
            val_fraction: 0.2,
            augment: Some(Augment { max_shift: 2 }),
            ..ImageDatasetSpec::default()
        }),
        model: vec![
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 32 },
            LayerSpec::ReLU,
            LayerSpec::Dropout { p: 0.2 },
            LayerSpec::Linear { out: 10 },
        ],
        schedule: ScheduleSpec {
            warmup_steps: 5,
            ..ScheduleSpec::default()
        },
        training: TrainingSpec {
            epochs: 3,
            batch_size: 32,
            log_every_steps: 4,
            eval_every_steps: Some(8),
            grad_clip_norm: Some(1.0),
            early_stopping: Some(EarlyStopping {
                patience: 5,
                min_delta: 0.0,
            }),
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    // 15 steps an epoch: halt mid-epoch 2, on a log boundary.
    assert_resume_is_exact(&exp, 20);
}

#[test]
fn sgd_momentum_resumes_exactly_at_an_epoch_boundary() {
    let exp = Experiment {
        name: "resume_sgd".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(400),
            test_limit: Some(100),
            ..ImageDatasetSpec::default()
        }),
        optimizer: OptimizerSpec::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        },
        training: TrainingSpec {
            epochs: 2,
            batch_size: 40,
            log_every_steps: 3,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    // 9 steps an epoch (360 training images): halt at the end of epoch 1.
    assert_resume_is_exact(&exp, 9);
}

#[test]
fn language_model_resumes_exactly_with_its_samples() {
    let exp = Experiment {
        name: "resume_lm".into(),
        dataset: char_lm_data(BundledText::Words, 600, 12, Some((6, 12))),
        model: [embedding_gru(8, 24), vec![LayerSpec::Dropout { p: 0.1 }]].concat(),
        optimizer: OptimizerSpec::adam(1e-2),
        training: TrainingSpec {
            epochs: 2,
            batch_size: 8,
            log_every_steps: 3,
            eval_every_steps: Some(9),
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    assert_resume_is_exact(&exp, 12);
}

#[test]
fn text_classifier_resumes_exactly() {
    let exp = Experiment {
        name: "resume_classifier".into(),
        dataset: DatasetSpec::Text(TextDatasetSpec {
            source: TextSource::Bundled(BundledText::WordLanguages),
            limit: Some(900),
            task: TextTask::Classification(ClassificationSpec {
                max_len: 12,
                ..ClassificationSpec::default()
            }),
            ..TextDatasetSpec::default()
        }),
        model: vec![LayerSpec::Embedding { dim: 16 }, LayerSpec::MeanPool],
        optimizer: OptimizerSpec::adam(1e-2),
        training: TrainingSpec {
            epochs: 2,
            batch_size: 32,
            log_every_steps: 5,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    assert_resume_is_exact(&exp, 25);
}

#[test]
fn a_finished_run_is_extended_and_a_mismatched_model_is_refused() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("run");
    let mut exp = Experiment {
        name: "extend".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(300),
            test_limit: Some(100),
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs: 1,
            batch_size: 50,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    let options = StartOptions {
        run_dir: Some(dir.clone()),
        ..StartOptions::default()
    };
    let first = run_all(exp.clone(), options.clone());
    let steps = summary(&first).steps;
    let (at, checkpoint) = checkpoints::latest(&dir).expect("final checkpoint");
    assert_eq!(at, steps);
    let before = std::fs::read(dir.join("metrics.jsonl")).expect("record");

    // Nothing left to train: refused, and the folder is untouched.
    let resume = StartOptions {
        resume_from: Some(checkpoint.clone()),
        ..options.clone()
    };
    let again = run_all(exp.clone(), resume.clone());
    assert!(
        matches!(again.last(), Some(TrainEvent::Failed { message, .. }) if message.contains("training.epochs")),
        "{:?}",
        again.last()
    );
    // Another model: refused, untouched.
    let mut other = exp.clone();
    other.model[1] = LayerSpec::Linear { out: 64 };
    other.training.epochs = 2;
    let mismatch = run_all(other, resume.clone());
    assert!(
        matches!(mismatch.last(), Some(TrainEvent::Failed { message, .. }) if message.contains("does not match")),
        "{:?}",
        mismatch.last()
    );
    assert_eq!(
        std::fs::read(dir.join("metrics.jsonl")).expect("record"),
        before
    );

    // Two more epochs at a new learning rate (`resume --set optimizer.lr=...`):
    // the run goes on from where it ended, at the file's new rate.
    exp.training.epochs = 3;
    exp.optimizer.set_lr(3e-4);
    let extended = run_all(exp, resume);
    let s = summary(&extended);
    assert_eq!(s.steps, 3 * steps);
    assert_eq!(s.reason, StopReason::Completed);
    assert!(
        extended.iter().any(|e| matches!(e, TrainEvent::Note { message, .. } if message.contains("learning rate 0.0003"))),
        "the new rate is noted"
    );
    let lrs: Vec<f64> = extended
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(m) => Some(m.lr),
            _ => None,
        })
        .collect();
    assert!(
        !lrs.is_empty() && lrs.iter().all(|&lr| lr == 3e-4),
        "{lrs:?}"
    );
}

/// A maze with ice (slips draw from the agent's stream) whose shortest path is 10 moves.
fn maze(method: AgentMethod, episodes: usize) -> Experiment {
    let rows = ["S.#...", ".##.#.", "...#..", ".#...#", ".#.#..", "...#.G"];
    Experiment {
        name: "resume_maze".into(),
        seed: 3,
        dataset: DatasetSpec::Gridworld(GridworldSpec {
            layout: LayoutSpec::Rows(rows.iter().map(|r| r.to_string()).collect()),
            max_steps: Some(60),
            slip: 0.1,
            ..GridworldSpec::default()
        }),
        model: vec![
            LayerSpec::Linear { out: 32 },
            LayerSpec::ReLU,
            LayerSpec::Linear { out: 4 },
        ],
        agent: maze_agent(method, episodes),
        ..Experiment::default()
    }
}

#[test]
fn tabular_q_learning_resumes_exactly() {
    let exp = maze(AgentMethod::QLearning(TabularSpec::default()), 200);
    // Halt between two log points: the interval sums are part of the checkpoint.
    assert_resume_is_exact(&exp, 63);
}

#[test]
fn dqn_resumes_exactly_with_its_replay_buffer_and_target_network() {
    let exp = maze(
        AgentMethod::Dqn(DqnSpec {
            replay_capacity: 500,
            batch_size: 16,
            learning_starts: 50,
            target_update: TargetUpdate::Hard { every_steps: 20 },
            ..DqnSpec::default()
        }),
        40,
    );
    assert_resume_is_exact(&exp, 25);
}

#[test]
fn a_pause_that_lasts_writes_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let mut exp = Experiment {
        name: "pause".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(1000),
            test_limit: Some(100),
            ..ImageDatasetSpec::default()
        }),
        ..Experiment::default()
    };
    exp.training.epochs = 500;
    exp.training.checkpoint.every_epochs = None;
    let handle = trainlab::train::start(
        exp,
        StartOptions {
            run_dir: Some(run_dir.clone()),
            ..StartOptions::default()
        },
    );
    let mut paused_at = None;
    for e in handle.events().iter() {
        match e {
            TrainEvent::Step(_) if paused_at.is_none() => {
                handle.send(trainlab::events::Control::Pause);
                paused_at = Some(u64::MAX);
            }
            TrainEvent::Paused { step } => {
                paused_at = Some(step);
                break;
            }
            _ => {}
        }
    }
    let step = paused_at.expect("paused");
    assert!(checkpoints::latest(&run_dir).is_none(), "no checkpoint yet");
    std::thread::sleep(std::time::Duration::from_millis(3000));
    assert_eq!(
        checkpoints::latest(&run_dir).map(|(s, _)| s),
        Some(step),
        "a pause longer than 2 s is saved"
    );
    handle.send(trainlab::events::Control::Stop);
    let rest: Vec<TrainEvent> = handle.events().iter().collect();
    assert!(
        matches!(rest.last(), Some(TrainEvent::Finished(s)) if s.reason == StopReason::Stopped)
    );
    handle.join();
}

#[test]
fn a_maze_resumed_with_a_new_alpha_uses_it() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("run");
    let exp = maze(AgentMethod::QLearning(TabularSpec::default()), 60);
    let options = StartOptions {
        run_dir: Some(dir.clone()),
        halt_after_step: Some(20),
        ..StartOptions::default()
    };
    run_all(exp.clone(), options);
    let (_, checkpoint) = checkpoints::latest(&dir).expect("checkpoint");
    let mut faster = exp.clone();
    faster.agent.method = AgentMethod::QLearning(TabularSpec {
        alpha: 0.9,
        ..TabularSpec::default()
    });
    let resumed = run_all(
        faster,
        StartOptions {
            run_dir: Some(dir.clone()),
            resume_from: Some(checkpoint),
            ..StartOptions::default()
        },
    );
    assert!(
        resumed.iter().any(|e| matches!(e, TrainEvent::Note { message, .. } if message.contains("learning rate 0.9"))),
        "the new alpha is noted"
    );
    assert_eq!(summary(&resumed).reason, StopReason::Completed);
}
