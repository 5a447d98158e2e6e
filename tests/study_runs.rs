//! Studies as a user runs them: `trainlab study run | resume | show` on small real
//! studies (grid with a trial that cannot run, ASHA continuing trials from their
//! checkpoints, a study killed and resumed), and bad study files.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::study::{finished_ids, kill_when, resume, run as run_study};
use common::trainlab;
use trainlab::study::{Entry, Journal, TrialState, replay};

/// A study of the MLP on part of the bundled digits.
fn study_file(dir: &Path, space: &str, search: &str) -> PathBuf {
    let text = format!(
        r#"(
    name: "t",
    base: Inline(
        name: "mlp",
        dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), test_limit: Some(100)),
        model: [Flatten, Linear(out: 32), ReLU, Linear(out: 10)],
        training: (epochs: 2, batch_size: 50),
    ),
    space: {{ {space} }},
    search: {search},
    objectives: [Maximize(ValAccuracy), Minimize(Parameters)],
    seed: 4,
)"#
    );
    let path = dir.join("study.ron");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn a_grid_study_runs_every_trial_and_records_one_that_cannot_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(
        dir.path(),
        r#""optimizer.lr": Choice([1e-3, 1e-2]), "model.1.Linear.out": Choice([0, 16, 32])"#,
        "Grid",
    );
    let out = dir.path().join("s");
    let o = run_study(&file, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("6 trials: 4 finished, 0 stopped early, 2 failed"),
        "{err}"
    );
    let trials = replay(&Journal::new(&out).read().expect("journal"));
    assert_eq!(trials.len(), 6);
    for t in &trials {
        let width = &t.params["model.1.Linear.out"];
        if width == "0" {
            assert!(
                matches!(&t.state, TrialState::Failed(r) if r.contains("out must be at least 1")),
                "{:?}",
                t.state
            );
        } else {
            assert_eq!(t.state, TrialState::Finished);
            assert!(t.values[0].is_some_and(|a| a > 0.5), "{t:?}");
            assert!(
                out.join("trials")
                    .join(format!("{:04}", t.id))
                    .join("summary.json")
                    .is_file()
            );
        }
    }
    // The leaderboard on disk and `study show --csv` agree; the front is marked.
    let csv = std::fs::read_to_string(out.join("leaderboard.csv")).expect("leaderboard");
    let shown = trainlab()
        .args(["study", "show", "--csv"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(String::from_utf8_lossy(&shown.stdout), csv);
    let header = csv.lines().next().expect("header");
    assert!(
        header.contains("optimizer.lr") && header.contains("max ValAccuracy"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 7);
    assert!(csv.lines().any(|l| l.contains(",true,")), "{csv}");
}

#[test]
fn asha_continues_the_best_trials_from_their_checkpoints() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(
        dir.path(),
        r#""optimizer.lr": LogUniform(1e-4, 1e-1)"#,
        "Asha(trials: 6, min_epochs: 1, max_epochs: 3, eta: 3)",
    );
    let out = dir.path().join("s");
    let o = run_study(&file, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trials = replay(&Journal::new(&out).read().expect("journal"));
    let finished: Vec<_> = trials
        .iter()
        .filter(|t| t.state == TrialState::Finished)
        .collect();
    let stopped = trials
        .iter()
        .filter(|t| t.state == TrialState::Stopped)
        .count();
    assert!(!finished.is_empty() && stopped >= 3, "{trials:?}");
    assert_eq!(finished.len() + stopped, 6);
    for t in &finished {
        assert_eq!(t.epochs, 3.0);
        // Its one run folder says where it continued from its rung-1 checkpoint.
        let events = trainlab::runs::read_events(&out.join("trials").join(format!("{:04}", t.id)))
            .expect("record");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, trainlab::events::TrainEvent::Restored { .. })),
            "trial {} was continued, not restarted",
            t.id
        );
    }
    // Stopped trials trained one epoch only.
    assert!(
        trials
            .iter()
            .filter(|t| t.state == TrialState::Stopped)
            .all(|t| t.epochs < 3.0)
    );
}

#[test]
fn a_killed_study_resumes_without_rerunning_what_finished() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(
        dir.path(),
        r#""optimizer.lr": LogUniform(1e-4, 1e-2), "training.epochs": Choice([30])"#,
        "Random(trials: 10)",
    );
    let out = dir.path().join("s");
    let journal = Journal::new(&out);
    let poll = Duration::from_millis(20);
    let finished_before = kill_when(&file, &out, "no trial finished", poll, || {
        let done = finished_ids(&journal.read().unwrap_or_default());
        (done.len() >= 2).then_some(done)
    });
    let before = journal.read().expect("journal").len();

    let o = resume(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let entries = journal.read().expect("journal");
    let trials = replay(&entries);
    assert!(
        trials.iter().all(|t| t.state == TrialState::Finished),
        "{trials:?}"
    );
    for id in finished_before {
        assert!(
            !entries[before..]
                .iter()
                .any(|e| matches!(e, Entry::Started { id: s, .. } if *s == id)),
            "trial {id} had finished and must not run again"
        );
    }
}

#[test]
fn a_bad_study_file_is_exit_2_with_its_place() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(
        dir.path(),
        r#""optimizer.lrate": Uniform(0.1, 0.2)"#,
        "Random(trials: 2)",
    );
    let o = run_study(&file, &dir.path().join("s"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("study.ron:9:") && err.contains("no field `lrate`") && err.contains("lr"),
        "{err}"
    );
    assert!(
        !dir.path().join("s").exists(),
        "nothing is created for a bad file"
    );
}

#[test]
fn pbt_copies_the_best_members_and_a_members_schedule_replays_as_one_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(
        dir.path(),
        r#""optimizer.lr": LogUniform(1e-4, 3e-1), "optimizer.weight_decay": Choice([0.0, 1e-4, 1e-3])"#,
        "Pbt(population: 4, interval_epochs: 1, max_epochs: 3)",
    );
    let out = dir.path().join("s");
    let o = trainlab()
        .args(["study", "run", "--parallel", "2"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("PBT step at epoch 1; trial"), "{err}");
    let entries = Journal::new(&out).read().expect("journal");
    let generations: Vec<(usize, usize)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Generation { epochs, moves } => Some((*epochs, moves.len())),
            _ => None,
        })
        .collect();
    assert_eq!(
        generations,
        [(1, 1), (2, 1)],
        "a quarter of 4 moves at 1 and 2"
    );
    let trials = replay(&entries);
    assert!(
        trials
            .iter()
            .all(|t| t.state == TrialState::Finished && t.epochs == 3.0),
        "{trials:?}"
    );
    // The member that copied last: the worst at epoch 2 took a better one's
    // weights and settings, now in its experiment file.
    let moved = trials
        .iter()
        .find(|t| t.lineage.iter().any(|&(e, _)| e == 2))
        .expect("a member moved at 2");
    let from = moved.lineage.last().expect("lineage").1;
    let at2 = |id: usize| trials[id].rungs[&2][0].expect("val accuracy");
    assert!(at2(from) >= at2(moved.id), "copied from a better member");
    let run_dir = out.join("trials").join(format!("{:04}", moved.id));
    let exp = trainlab::spec::load_file(&run_dir.join("experiment.ron")).expect("experiment");
    let change = exp.schedule.changes.last().expect("its schedule");
    assert_eq!(change.epoch, 2);
    assert_eq!(change.set, moved.params);
    let events = trainlab::runs::read_events(&run_dir).expect("record");
    assert!(events.iter().any(|e| matches!(e,
        trainlab::events::TrainEvent::Note { message, .. } if message.contains("epoch 2: optimizer settings now"))));

    // Its experiment, run from the start in one go (same threads per trial),
    // trains exactly as the population did.
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1);
    let replay_dir = dir.path().join("replay");
    let handle = trainlab::train::start(
        exp,
        trainlab::train::StartOptions {
            run_dir: Some(replay_dir),
            threads: Some(threads),
            ..Default::default()
        },
    );
    let mut replayed = None;
    for e in handle.events().iter() {
        if let trainlab::events::TrainEvent::Finished(s) = e {
            replayed = Some(s);
        }
    }
    handle.join();
    let replayed = replayed.expect("the replay finishes");
    let recorded: trainlab::events::RunSummary = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary"),
    )
    .expect("summary json");
    assert_eq!(replayed.val_accuracy, recorded.val_accuracy);
    assert_eq!(replayed.train_loss, recorded.train_loss);
}
