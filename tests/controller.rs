//! The learned lr controller as a user runs it: a tiny controller study learns a
//! table and writes its policy; an episode replays exactly from its
//! experiment.ron; `Controlled(policy)` changes the lr only at decision steps,
//! the same way every time; a policy that does not fit is refused (exit 2, the
//! file named); a killed controller study resumes with no episode lost and
//! learns the same table as one never killed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use trainlab::events::{RunSummary, TrainEvent};
use trainlab::spec::{Policy, load_policy, policy_to_ron};
use trainlab::study::{Journal, TrialState, replay};

use common::study::{finished_ids, kill_when, resume};
use common::{succeeded, trainlab};

const BASE: &str = r#"Inline(
        name: "mlp",
        dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), test_limit: Some(100)),
        model: [Flatten, Linear(out: 32), ReLU, Linear(out: 10)],
        optimizer: Sgd(lr: 0.05),
        training: (epochs: 2, batch_size: 50),
    )"#;

/// A controller study of `episodes` episodes on part of the bundled digits
/// (22 steps an episode, a decision every 4).
fn study_file(dir: &Path, episodes: usize) -> PathBuf {
    let text = format!(
        r#"(
    name: "ctl",
    base: {BASE},
    space: {{}},
    search: Controller(
        episodes: {episodes},
        decide_every_steps: 4,
        actions: [0.5, 1.0, 2.0],
        state: [LossTrend, ValGap, LrLevel, Progress],
        reward: ValLossDrop,
        method: QLearning(alpha: 0.5, gamma: 0.9, epsilon: (start: 1.0, end: 0.0, decay_episodes: 3)),
    ),
    objectives: [Maximize(ValAccuracy)],
    seed: 4,
)"#
    );
    let path = dir.join(format!("study{episodes}.ron"));
    std::fs::write(&path, text).expect("write");
    path
}

fn run_study(file: &Path, out: &Path) {
    succeeded(&common::study::run(file, out));
}

fn summary(run_dir: &Path) -> RunSummary {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).expect("summary"))
        .expect("summary json")
}

fn policy_of(study: &Path) -> Policy {
    load_policy(&study.join("controller").join("policy.ron")).expect("policy")
}

#[test]
fn a_tiny_controller_study_learns_a_table_and_an_episode_replays_exactly() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("s");
    run_study(&study_file(dir.path(), 4), &out);
    let trials = replay(&Journal::new(&out).read().expect("journal"));
    assert_eq!(trials.len(), 4);
    assert!(
        trials.iter().all(|t| t.state == TrialState::Finished),
        "{trials:?}"
    );
    let policy = policy_of(&out);
    let ids: Vec<usize> = policy.history.iter().map(|h| h.trial).collect();
    assert_eq!(ids, [0, 1, 2, 3], "one history entry per episode, in order");
    assert!(
        policy.table.iter().flatten().any(|&q| q != 0.0),
        "the table moved from its all-zero start"
    );
    let visits: u32 = policy.visits.iter().flatten().sum();
    assert_eq!(visits, 4 * 5, "five decisions (steps 4..20) per episode");

    // An episode whose agent changed the lr, run alone from its experiment.ron.
    let (id, exp) = (0..4)
        .map(|id| {
            let path = out
                .join("trials")
                .join(format!("{id:04}"))
                .join("experiment.ron");
            (id, trainlab::spec::load_file(&path).expect("experiment"))
        })
        .find(|(_, exp)| !exp.schedule.changes.is_empty())
        .expect("an episode that changed its lr");
    assert!(
        exp.schedule
            .changes
            .iter()
            .all(|c| c.step.is_some_and(|s| s % 4 == 0))
    );
    let episode = out.join("trials").join(format!("{id:04}"));
    let replayed = dir.path().join("replay");
    let o = trainlab()
        .arg("run")
        .arg(episode.join("experiment.ron"))
        .arg("--out")
        .arg(&replayed)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (summary(&episode), summary(&replayed));
    assert_eq!(a.train_loss, b.train_loss);
    assert_eq!(a.val_loss, b.val_loss);
    assert_eq!(a.test_accuracy, b.test_accuracy);
    assert_eq!(
        a.lr_changes, b.lr_changes,
        "the same lr changes at the same steps"
    );
    let logged: Vec<(u64, f64)> = policy.history[id].lrs[1..]
        .iter()
        .copied()
        .filter(|&(s, lr)| a.lr_changes.contains(&(s, lr)))
        .collect();
    assert_eq!(
        logged, a.lr_changes,
        "the policy's history holds the episode's lrs"
    );
}

/// A policy over Progress alone for actions [0.5, 1, 2]: halve in the first
/// quarter, keep in the second, double in the third, halve in the last.
fn progress_policy(rows: usize) -> String {
    let table: Vec<String> = [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 0.0, 0.0],
    ]
    .iter()
    .take(rows)
    .map(|r| format!("[{}, {}, {}]", r[0], r[1], r[2]))
    .collect();
    format!(
        "(kind: QValues, decide_every_steps: 3, actions: [0.5, 1.0, 2.0], state: [Progress], \
         buckets: [4], table: [{}], visits: [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], \
         baseline: 0.0, history: [])",
        table.join(", ")
    )
}

fn controlled_experiment(dir: &Path, policy: &Path) -> PathBuf {
    let text = format!(
        r#"(
    name: "controlled",
    dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), test_limit: Some(100)),
    model: [Flatten, Linear(out: 32), ReLU, Linear(out: 10)],
    optimizer: Sgd(lr: 0.04),
    schedule: (decay: Controlled(policy: "{}")),
    training: (epochs: 2, batch_size: 50),
)"#,
        policy.display()
    );
    let path = dir.join("controlled.ron");
    std::fs::write(&path, text).expect("write");
    path
}

/// (step, lr) of every Step event, of every lr change, and the final val loss.
type Lrs = (Vec<(u64, f64)>, Vec<(u64, f64)>, Option<f64>);

fn lrs_of(exp: trainlab::spec::Experiment) -> Lrs {
    let handle = trainlab::train::start(exp, trainlab::train::StartOptions::default());
    let (mut steps, mut changes, mut loss) = (Vec::new(), Vec::new(), None);
    for e in handle.events().iter() {
        match e {
            TrainEvent::Step(m) => steps.push((m.step, m.lr)),
            TrainEvent::LrChanged { step, lr } => changes.push((step, lr)),
            TrainEvent::Finished(s) => loss = s.val_loss,
            TrainEvent::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    handle.join();
    (steps, changes, loss)
}

#[test]
fn a_controlled_run_changes_the_lr_only_at_decision_steps_and_the_same_way_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = dir.path().join("policy.ron");
    std::fs::write(&policy, progress_policy(4)).expect("write");
    let exp = trainlab::spec::load_file(&controlled_experiment(dir.path(), &policy)).expect("exp");
    let first = lrs_of(exp.clone());
    let (steps, changes, _) = &first;
    assert!(!changes.is_empty(), "the policy changed the lr");
    assert!(changes.iter().all(|(s, _)| s % 3 == 0), "{changes:?}");
    // 22 steps: decisions at 3, 6, ..., 21; progress 3/22 -> halve, 6/22 ->
    // keep (second quarter), 12/22 -> double, 18/22 -> halve.
    assert_eq!(changes[0], (3, 0.02));
    assert!(changes.contains(&(12, 0.04)), "{changes:?}");
    // Between decisions the lr a Step reports is the one set at the last change.
    for &(step, lr) in steps {
        let set = changes
            .iter()
            .rfind(|(s, _)| *s < step)
            .map_or(0.04, |c| c.1);
        assert_eq!(lr, set, "step {step}");
    }
    assert_eq!(lrs_of(exp), first, "deterministic");
}

/// Runs the experiment file `exp` unrecorded, fails unless it exits with 2; its
/// standard error.
fn refused(exp: &Path) -> String {
    let o = trainlab()
        .arg("run")
        .arg(exp)
        .arg("--no-record")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    err
}

#[test]
fn a_policy_that_does_not_fit_is_refused_with_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = dir.path().join("short_policy.ron");
    std::fs::write(&policy, progress_policy(3)).expect("write");
    let exp = controlled_experiment(dir.path(), &policy);
    let err = refused(&exp);
    assert!(
        err.contains("short_policy.ron") && err.contains("4 rows"),
        "{err}"
    );
    // A policy for other features: the bucket counts it gives do not match.
    let other = progress_policy(4).replace("buckets: [4]", "buckets: [5]");
    std::fs::write(&policy, other).expect("write");
    let err = refused(&exp);
    assert!(
        err.contains("short_policy.ron") && err.contains("buckets"),
        "{err}"
    );
    // A policy as the library writes it reads back the same.
    std::fs::write(&policy, progress_policy(4)).expect("write");
    let p = load_policy(&policy).expect("fits");
    std::fs::write(&policy, policy_to_ron(&p)).expect("write");
    assert_eq!(load_policy(&policy).expect("fits"), p);
}

#[test]
fn a_bad_controller_study_is_refused_with_exit_2_saying_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(dir.path(), 2);
    let text = std::fs::read_to_string(&file).expect("read");
    for (bad, what) in [
        (
            text.replace("space: {}", r#"space: {"optimizer.lr": Choice([0.1])}"#),
            "leave it empty",
        ),
        (
            text.replace("actions: [0.5, 1.0, 2.0]", "actions: [0.0]"),
            "actions",
        ),
        (
            text.replace("state: [LossTrend,", "state: [Progress, LossTrend,"),
            "at most once",
        ),
    ] {
        std::fs::write(&file, bad).expect("write");
        let o = common::study::run(&file, &dir.path().join("s"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(what), "{what}: {err}");
    }
}

#[test]
fn a_killed_controller_study_resumes_losing_no_episode_and_learns_the_same_table() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(dir.path(), 6);
    let whole = dir.path().join("whole");
    run_study(&file, &whole);

    let out = dir.path().join("killed");
    let policy = out.join("controller").join("policy.ron");
    let poll = Duration::from_millis(5);
    kill_when(&file, &out, "no episode learned", poll, || {
        load_policy(&policy)
            .is_ok_and(|p| p.history.len() >= 2)
            .then_some(())
    });
    let done_before = replay(&Journal::new(&out).read().expect("journal"))
        .iter()
        .filter(|t| t.state == TrialState::Finished)
        .count();
    assert!(done_before < 6, "killed before the study ended");
    let o = resume(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let finished = finished_ids(&Journal::new(&out).read().expect("journal"));
    assert_eq!(finished, [0, 1, 2, 3, 4, 5], "each episode finished once");
    let (resumed, never_killed) = (policy_of(&out), policy_of(&whole));
    let ids: Vec<usize> = resumed.history.iter().map(|h| h.trial).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5], "learned from each episode once");
    assert_eq!(resumed.table, never_killed.table, "the same table");
    assert_eq!(resumed.history, never_killed.history);
}

mod window {
    //! The controller as the workbench shows it, read off the window.

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use trainlab::gui::{Tab, TrainlabApp};

    use super::*;
    use crate::common::workbench::train_cleanly;

    fn harness(app: TrainlabApp) -> Harness<'static, TrainlabApp> {
        crate::common::workbench::harness(app, 1000.0)
    }

    /// Steps until `done` holds, then lets the layout settle.
    fn step_until(
        h: &mut Harness<'_, TrainlabApp>,
        what: &str,
        done: impl Fn(&TrainlabApp) -> bool,
    ) {
        crate::common::workbench::step_until(h, what, done);
        h.run();
    }

    #[test]
    fn the_study_tab_shows_the_policy_its_episodes_and_their_returns() {
        let dir = tempfile::tempdir().expect("tmp");
        let study = trainlab::spec::load_study(&study_file(dir.path(), 4)).expect("study");
        let out = dir.path().join("s");
        trainlab::study::create(&study, &out).expect("create");
        trainlab::study::work(&out, None, &|_| {}).expect("work");
        let policy = policy_of(&out);

        let mut app = TrainlabApp::with_runs_root(dir.path());
        app.open_path(&out.join("study.ron"));
        let mut h = harness(app);
        step_until(&mut h, "the policy to be read", |a| {
            a.views
                .study
                .data
                .as_ref()
                .is_some_and(|d| d.policy.is_some() && d.trials.len() == 4)
        });
        h.get_by_label("Controller").click();
        h.run();
        let visited: Vec<usize> = (0..policy.table.len())
            .filter(|&s| policy.visits[s].iter().any(|&v| v > 0))
            .collect();
        assert!(
            h.query_by_label_contains(&format!(
                "Policy after 4 episode(s): {} of 180 states visited",
                visited.len()
            ))
            .is_some()
        );
        // The heatmap: every visited state's row, with its values.
        for &s in &visited {
            assert!(
                h.query_by_label(&policy.state_label(s)).is_some(),
                "row {s}"
            );
            for v in &policy.table[s] {
                let text = format!("{v:.3}");
                assert!(h.query_all_by_label(&text).next().is_some(), "cell {text}");
            }
        }
        // The episodes and their returns.
        let returns: Vec<String> = policy
            .history
            .iter()
            .map(|e| format!("{:.4}", e.ret))
            .collect();
        for r in &returns {
            let times = returns.iter().filter(|x| *x == r).count();
            assert_eq!(h.query_all_by_label(r).count(), times, "return {r}");
        }
        assert!(h.state().errors.is_empty(), "{:?}", h.state().errors);
    }

    #[test]
    fn the_curves_of_a_controlled_run_mark_its_decisions_on_the_lr_curve() {
        let dir = tempfile::tempdir().expect("tmp");
        let policy = dir.path().join("policy.ron");
        std::fs::write(&policy, progress_policy(4)).expect("write");
        let exp =
            trainlab::spec::load_file(&controlled_experiment(dir.path(), &policy)).expect("exp");
        let (_, changes, _) = lrs_of(exp.clone());

        let mut app = TrainlabApp::with_runs_root(dir.path());
        app.doc.exp = exp;
        let mut h = harness(app);
        h.run();
        train_cleanly(&mut h);
        h.state_mut().tab = Tab::Curves;
        h.run();
        let fig = h
            .state()
            .curve_figure("lr_plot")
            .expect("the lr plot")
            .clone();
        let marks = fig
            .series
            .iter()
            .find(|s| s.name == "lr changed")
            .expect("the decisions on the lr plot");
        let xs: Vec<u64> = marks.points.iter().map(|p| p[0] as u64).collect();
        let steps: Vec<u64> = changes.iter().map(|c| c.0).collect();
        assert_eq!(xs, steps, "one mark per lr change the agent made");
        assert!(
            xs.iter().all(|s| s % 3 == 0),
            "only at decision steps: {xs:?}"
        );
    }
}
