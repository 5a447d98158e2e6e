//! Slow motion (`StartOptions::pace`, `Control::SetPace`, `trainlab run --pace`):
//! a paced run takes its time but computes and records exactly what a full-speed
//! run does; a paced maze run shows every episode's policy (not recorded); the
//! pace can be lifted mid-run.

use std::time::{Duration, Instant};

use trainlab::spec::{
    AgentMethod, AgentSpec, DatasetSpec, EpsilonSpec, Experiment, GridworldSpec, ImageDatasetSpec,
    LayoutSpec, TabularSpec, TrainingSpec,
};
use trainlab::train::{Control, StartOptions, TrainEvent, start};

mod common;
use common::{run_all, step_losses, summary};

fn digits() -> Experiment {
    Experiment {
        name: "paced".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(640),
            test_limit: Some(100),
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs: 1,
            batch_size: 32,
            log_every_steps: 2,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

fn maze(episodes: usize) -> Experiment {
    let rows = ["S.#...", ".##.#.", "...#..", ".#...#", ".#.#..", "...#.G"];
    Experiment {
        name: "paced_maze".into(),
        seed: 5,
        dataset: DatasetSpec::Gridworld(GridworldSpec {
            layout: LayoutSpec::Rows(rows.iter().map(|r| r.to_string()).collect()),
            max_steps: Some(60),
            ..GridworldSpec::default()
        }),
        agent: AgentSpec {
            method: AgentMethod::QLearning(TabularSpec::default()),
            episodes,
            epsilon: EpsilonSpec {
                start: 1.0,
                end: 0.05,
                decay_episodes: episodes / 2,
            },
            log_every_episodes: 10,
            ..AgentSpec::default()
        },
        ..Experiment::default()
    }
}

fn paced(pace: f64) -> StartOptions {
    StartOptions {
        pace: Some(pace),
        ..StartOptions::default()
    }
}

#[test]
fn a_paced_run_takes_its_time_and_learns_exactly_the_same() {
    let fast = run_all(digits(), StartOptions::default());
    let began = Instant::now();
    let slow = run_all(digits(), paced(100.0));
    let took = began.elapsed();
    // 18 training steps (576 samples) at 100 a second: at least 0.17 s.
    assert!(took >= Duration::from_millis(170), "{took:?}");
    assert_eq!(step_losses(&fast), step_losses(&slow));
    let (a, b) = (summary(&fast), summary(&slow));
    assert_eq!(
        (a.val_accuracy, a.test_accuracy),
        (b.val_accuracy, b.test_accuracy)
    );
    assert_eq!(a.steps, b.steps);
}

#[test]
fn a_paced_maze_shows_every_episode_and_records_the_same() {
    let dir = tempfile::tempdir().expect("tmp");
    let record = |name: &str, options: StartOptions| {
        let run_dir = dir.path().join(name);
        let events = run_all(
            maze(40),
            StartOptions {
                run_dir: Some(run_dir.clone()),
                ..options
            },
        );
        let recorded: Vec<String> = trainlab::runs::read_events(&run_dir)
            .expect("record")
            .into_iter()
            .filter_map(|e| match e {
                TrainEvent::Episodes(mut m) => {
                    m.steps_per_sec = 0.0;
                    Some(format!("{m:?}"))
                }
                _ => None,
            })
            .collect();
        let shown: std::collections::BTreeSet<u64> = events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Policy(p) => Some(p.episode),
                _ => None,
            })
            .collect();
        (recorded, shown)
    };
    let (full, shown_full) = record("full", StartOptions::default());
    let (slow, shown_slow) = record("slow", paced(50.0));
    assert_eq!(full, slow, "the same record");
    assert!(
        shown_slow.len() >= 38,
        "every episode shown: {shown_slow:?}"
    );
    assert!(
        shown_full.len() < 10,
        "full speed shows a few: {shown_full:?}"
    );
}

#[test]
fn the_pace_can_be_lifted_mid_run() {
    // 18 steps at one a second would take 18 s.
    let handle = start(digits(), paced(1.0));
    let began = Instant::now();
    let mut lifted = false;
    let mut finished = false;
    for e in handle.events().iter() {
        if !lifted && matches!(e, TrainEvent::Started(_)) {
            lifted = handle.send(Control::SetPace(None));
        }
        if matches!(e, TrainEvent::Finished(_)) {
            finished = true;
        }
    }
    handle.join();
    assert!(lifted && finished);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn the_cli_takes_a_pace_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_trainlab"))
        .args([
            "run",
            "experiments/mnist_mlp.ron",
            "--pace",
            "0",
            "--no-record",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("steps per second above 0"));
    let file = dir.path().join("m.ron");
    std::fs::write(&file, trainlab::spec::to_ron_string(&maze(20))).expect("write");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_trainlab"))
        .args(["run", "--pace", "200", "--no-record"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
