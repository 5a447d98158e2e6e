//! Gridworld runs through the public worker API: DQN and the tables learn the
//! optimal path, runs are reproducible, Stop/Pause/SetLearningRate are obeyed,
//! and the run folder holds the final Q-table without every snapshot.

use std::time::Duration;

use trainlab::spec::{
    AgentMethod, DatasetSpec, DqnSpec, Experiment, GridworldSpec, LayerSpec, LayoutSpec,
    TabularSpec, TargetUpdate,
};
use trainlab::train::{Control, RunSummary, StartOptions, StopReason, TrainEvent, start};

/// A 6x6 maze whose shortest path takes 10 moves.
fn small_maze() -> GridworldSpec {
    let rows = ["S.#...", ".##.#.", "...#..", ".#...#", ".#.#..", "...#.G"];
    GridworldSpec {
        layout: LayoutSpec::Rows(rows.iter().map(|r| r.to_string()).collect()),
        max_steps: Some(60),
        ..GridworldSpec::default()
    }
}

fn maze_experiment(method: AgentMethod, episodes: usize) -> Experiment {
    Experiment {
        name: "test_maze".into(),
        seed: 5,
        dataset: DatasetSpec::Gridworld(small_maze()),
        model: vec![
            LayerSpec::Linear { out: 128 },
            LayerSpec::ReLU,
            LayerSpec::Linear { out: 4 },
        ],
        agent: maze_agent(method, episodes),
        ..Experiment::default()
    }
}

mod common;
use common::experiments::maze_agent;
use common::{run_all, summary};

/// Episodes events without their timing, which differs between runs.
fn progress(events: &[TrainEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Episodes(m) => Some(common::untimed_episodes(m)),
            _ => None,
        })
        .collect()
}

#[test]
fn dqn_finds_the_optimal_path_on_a_small_maze() {
    let mut exp = maze_experiment(AgentMethod::Dqn(DqnSpec::default()), 300);
    exp.agent.stop_when_optimal = true;
    exp.agent.epsilon.decay_episodes = 100;
    let began = std::time::Instant::now();
    let events = run_all(exp, StartOptions::default());
    let s = summary(&events);
    let rl = s.rl.as_ref().expect("rl summary");
    assert_eq!(s.reason, StopReason::Solved, "{rl:?}");
    assert!(rl.greedy_optimal);
    assert_eq!(rl.greedy_path_len, Some(10));
    assert_eq!(rl.optimal_path_len, 10);
    assert!(rl.gradient_steps > 0);
    eprintln!(
        "DQN 6x6: optimal after {} episodes, {:.2} s ({:.2} s wall)",
        rl.episodes,
        rl.first_optimal_seconds.unwrap_or(f64::NAN),
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn tables_learn_and_the_run_folder_holds_the_last_snapshot() {
    for method in [
        AgentMethod::QLearning(TabularSpec::default()),
        AgentMethod::Sarsa(TabularSpec::default()),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let run_dir = dir.path().join("run");
        let mut exp = maze_experiment(method.clone(), 400);
        exp.agent.snapshot_every_secs = 0.0;
        let events = run_all(
            exp,
            StartOptions {
                run_dir: Some(run_dir.clone()),
                ..StartOptions::default()
            },
        );
        let rl = summary(&events).rl.clone().expect("rl summary");
        assert!(rl.greedy_optimal, "{}: {rl:?}", method.name());
        assert!(rl.first_optimal_episode.is_some());
        assert!(rl.success_rate > 0.5, "{rl:?}");
        assert!(matches!(&events[1], TrainEvent::Environment(e) if e.shortest_path_len == 10));
        let snapshots = events
            .iter()
            .filter(|e| matches!(e, TrainEvent::Policy(_)))
            .count();
        assert!(snapshots > 1, "snapshots every log point were asked for");

        let recorded = trainlab::runs::read_events(&run_dir).expect("metrics.jsonl");
        assert!(
            !recorded.iter().any(|e| matches!(e, TrainEvent::Policy(_))),
            "snapshots stay out of metrics.jsonl"
        );
        assert_eq!(progress(&recorded), progress(&events));
        let table: trainlab::events::PolicySnapshot =
            serde_json::from_slice(&std::fs::read(run_dir.join("qtable.json")).expect("qtable"))
                .expect("parses");
        assert_eq!((table.rows, table.cols, table.q.len()), (6, 6, 36));
        assert_eq!(table.greedy_path.len(), 11);
        let on_disk: RunSummary =
            serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
                .expect("parses");
        assert_eq!(on_disk.rl, Some(rl));
        let back = trainlab::spec::load_file(&run_dir.join("experiment.ron")).expect("resolved");
        assert_eq!(back.agent.method, method);
    }
}

#[test]
fn same_seed_gives_the_same_metrics() {
    for method in [
        AgentMethod::QLearning(TabularSpec::default()),
        AgentMethod::Dqn(DqnSpec {
            target_update: TargetUpdate::Soft { tau: 0.01 },
            double: true,
            ..DqnSpec::default()
        }),
    ] {
        let a = run_all(maze_experiment(method.clone(), 30), StartOptions::default());
        let b = run_all(maze_experiment(method.clone(), 30), StartOptions::default());
        assert!(!progress(&a).is_empty());
        assert_eq!(progress(&a), progress(&b), "{}", method.name());
        let mut other = maze_experiment(method.clone(), 30);
        other.seed = 6;
        let c = run_all(other, StartOptions::default());
        assert_ne!(progress(&a), progress(&c), "{}", method.name());
    }
}

#[test]
fn stop_pause_and_learning_rate_are_obeyed() {
    let exp = maze_experiment(AgentMethod::QLearning(TabularSpec::default()), 100_000_000);
    let handle = start(exp, StartOptions::default());
    let mut seen_progress = false;
    let mut sent_stop = false;
    let mut events = Vec::new();
    loop {
        let event = match handle.events().recv_timeout(Duration::from_secs(30)) {
            Ok(e) => e,
            Err(e) => panic!("worker went quiet: {e}; events so far: {}", events.len()),
        };
        if matches!(event, TrainEvent::Episodes(_)) && !seen_progress {
            seen_progress = true;
            assert!(handle.send(Control::Pause));
            assert!(handle.send(Control::SetLearningRate(0.25)));
            assert!(handle.send(Control::Resume));
        }
        if matches!(event, TrainEvent::Resumed { .. }) && !sent_stop {
            sent_stop = true;
            assert!(handle.send(Control::Stop));
        }
        let end = matches!(event, TrainEvent::Finished(_) | TrainEvent::Failed { .. });
        events.push(event);
        if end {
            break;
        }
    }
    handle.join();
    let s = summary(&events);
    assert_eq!(s.reason, StopReason::Stopped);
    assert!(s.rl.as_ref().is_some_and(|r| r.episodes < 100_000_000));
    assert_eq!(s.lr_changes.len(), 1);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrainEvent::Paused { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrainEvent::LrChanged { lr, .. } if *lr == 0.25))
    );
}

#[test]
fn supervised_loop_refuses_a_maze_and_bad_mazes_fail_cleanly() {
    let mut exp = maze_experiment(AgentMethod::QLearning(TabularSpec::default()), 10);
    exp.dataset = DatasetSpec::Gridworld(GridworldSpec {
        layout: LayoutSpec::Rows(vec!["S#G".into()]),
        ..GridworldSpec::default()
    });
    let err = trainlab::spec::validate(&exp).expect_err("unreachable goal");
    assert_eq!(err.field, "dataset.layout");
    assert!(err.message.contains("row 1, column 1"), "{err}");
    // Started anyway (a GUI might): the worker reports it instead of panicking.
    let handle = start(exp, StartOptions::default());
    let events: Vec<TrainEvent> = handle.events().iter().collect();
    handle.join();
    assert!(
        matches!(events.last(), Some(TrainEvent::Failed { message, .. }) if message.contains("reached")),
        "{events:?}"
    );
}

#[test]
fn a_dqn_starts_from_a_network_trained_on_another_maze() {
    let root = tempfile::tempdir().expect("tmp");
    let first_dir = root.path().join("first");
    let first = maze_experiment(AgentMethod::Dqn(DqnSpec::default()), 30);
    summary(&run_all(
        first.clone(),
        StartOptions {
            run_dir: Some(first_dir.clone()),
            ..StartOptions::default()
        },
    ));
    // Another maze of the same size (same input width), first layer frozen.
    let mut second = first;
    let rows = ["S...#.", ".##...", "...##.", ".#....", ".#.##.", "...#.G"];
    let DatasetSpec::Gridworld(g) = &mut second.dataset else {
        unreachable!("a maze experiment")
    };
    g.layout = LayoutSpec::Rows(rows.iter().map(|r| r.to_string()).collect());
    second.training.init_from = Some(first_dir.clone());
    second.training.freeze = vec!["0".into()];
    let second_dir = root.path().join("second");
    let events = run_all(
        second,
        StartOptions {
            run_dir: Some(second_dir.clone()),
            ..StartOptions::default()
        },
    );
    summary(&events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrainEvent::Note { message, .. }
            if message.starts_with("init_from") && message.contains("loaded 4 tensor(s)"))),
        "{events:?}"
    );
    let weight = |dir: &std::path::Path| {
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
            .expect("weights")["layers.0.weight"]
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("f32")
    };
    assert_eq!(weight(&second_dir), weight(&first_dir), "frozen and loaded");
}
