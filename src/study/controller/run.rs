//! Running a controller study's episodes, one after the other: claim the next
//! episode in the journal, train it with the agent steering the lr, record its
//! decisions in the trial's experiment.ron (as `schedule.changes` by step, so
//! `trainlab run` replays it exactly), learn from it, write the policy, then
//! journal the outcome.
//!
//! Contract: an episode whose worker died is trained again from its start
//! (its folder is replaced); one the policy already learned from is only
//! journalled. So a killed study resumed loses no episode and learns from each
//! exactly once.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use super::super::error::{StudySetupError, WriteError};
use super::super::journal::{Entry, Journal, Owner};
use super::super::lease;
use super::super::run::{
    Progress, StudyError, journal_outcome, objective_values, trial_dir, trial_experiment,
};
use super::super::state::{TrialState, replay};
use super::{End, behaviour, learn, load_or_fresh, rewards, save};
use crate::events::{Control, FailureKind, RunSummary, TrainEvent};
use crate::spec::{
    ControllerSpec, Decision, Experiment, LoadedStudy, Policy, ScheduledChange, SpecError,
    load_file, to_ron_string,
};
use crate::train::{LrAgent, StartOptions, start};
use crate::util::atomic::{os_words, write_atomic};

/// What the journal says to do next.
enum Claim {
    Run(usize),
    Busy(usize, Owner),
    Done,
}

/// Trains the study's remaining episodes in order until all are done or
/// `interrupt` is set.
pub fn work(
    dir: &Path,
    study: &LoadedStudy,
    spec: &ControllerSpec,
    progress: Progress<'_>,
    interrupt: &AtomicBool,
) -> Result<(), StudyError> {
    let journal = Journal::new(dir);
    let me = Owner::me();
    let input = |message: String| StudyError { message, io: false };
    let io = |what: &Path, e: &std::io::Error| StudyError {
        message: format!(
            "study \"{}\": cannot write {}: {}; continue with `trainlab study resume {}`",
            study.spec.name,
            what.display(),
            os_words(e),
            dir.display()
        ),
        io: true,
    };
    let mut policy = load_or_fresh(dir, spec).map_err(|e| input(e.to_string()))?;
    while !interrupt.load(Ordering::Relaxed) {
        let claim = journal
            .transact(|entries| {
                let trials = replay(entries);
                let next = trials.iter().find(|t| {
                    !matches!(
                        t.state,
                        TrialState::Finished | TrialState::Failed(_) | TrialState::Stopped
                    )
                });
                Ok::<_, std::io::Error>(match next {
                    None => (Vec::new(), Claim::Done),
                    Some(t) => match &t.state {
                        TrialState::Running { owner, .. }
                            if *owner != me && lease::alive(dir, owner) =>
                        {
                            (Vec::new(), Claim::Busy(t.id, owner.clone()))
                        }
                        _ => (
                            vec![Entry::Started {
                                id: t.id,
                                epochs: None,
                                owner: me.clone(),
                            }],
                            Claim::Run(t.id),
                        ),
                    },
                })
            })
            .map_err(|e| io(journal.path(), &e))?;
        let id = match claim {
            Claim::Done => return Ok(()),
            Claim::Busy(id, owner) => {
                return Err(input(format!(
                    "study \"{}\": episode {id} is being trained by {}:{}; a controller's \
                     episodes run one after the other, in one process",
                    study.spec.name, owner.host, owner.pid
                )));
            }
            Claim::Run(id) => id,
        };
        let outcome = if policy.history.iter().any(|h| h.trial == id) {
            // Learned from before its worker died: only the journal is behind.
            learned_outcome(study, dir, id)
        } else {
            let Some(outcome) = episode(dir, study, spec, &mut policy, id, interrupt)? else {
                journal
                    .append(&[Entry::Released { id, epochs: None }])
                    .map_err(|e| io(journal.path(), &e))?;
                progress(format!(
                    "episode {id} stopped (interrupted); it runs again on resume"
                ));
                return Ok(());
            };
            save(dir, &policy).map_err(|e| io(&super::policy_path(dir), &e))?;
            outcome
        };
        let board =
            journal_outcome(&journal, dir, study, &outcome).map_err(|e| io(journal.path(), &e))?;
        board.map_err(|e| StudyError {
            message: e.to_string(),
            io: true,
        })?;
        let ret = policy.history.last().map_or(0.0, |h| h.ret);
        progress(match &outcome {
            Entry::Failed { reason, .. } => format!("episode {id} failed: {reason}"),
            _ => format!("episode {id} finished: return {ret:.4}"),
        });
    }
    Ok(())
}

/// The journal entry of episode `id`, which the policy has already learned from.
fn learned_outcome(study: &LoadedStudy, dir: &Path, id: usize) -> Entry {
    let path = trial_dir(dir, id).join(crate::runs::files::SUMMARY);
    match std::fs::read(&path)
        .ok()
        .and_then(|t| serde_json::from_slice::<RunSummary>(&t).ok())
    {
        Some(s) => Entry::Finished {
            id,
            values: objective_values(study, &s),
            wall_seconds: s.wall_seconds,
            epochs: s.epochs,
        },
        None => Entry::Failed {
            id,
            reason: format!("learned from, but its summary {} is gone", path.display()),
        },
    }
}

/// The base experiment as episode `id` trains it: validated at every decision
/// and logged at least as often, so the replay records the same.
pub fn episode_experiment(
    study: &LoadedStudy,
    spec: &ControllerSpec,
    id: usize,
) -> Result<Experiment, SpecError> {
    let mut exp = trial_experiment(study, id, &Default::default())?;
    let every = spec.decide_every_steps;
    exp.training.eval_every_steps = Some(every as usize);
    let log = exp.training.log_every_steps.max(1) as u64;
    if !every.is_multiple_of(log) {
        exp.training.log_every_steps = gcd(log, every) as usize;
    }
    Ok(exp)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Trains episode `id` from its start with the agent, records its decisions,
/// and learns from it; None when interrupted.
fn episode(
    dir: &Path,
    study: &LoadedStudy,
    spec: &ControllerSpec,
    policy: &mut Policy,
    id: usize,
    interrupt: &AtomicBool,
) -> Result<Option<Entry>, StudyError> {
    let run_dir = trial_dir(dir, id);
    let failed = |reason: String| Entry::Failed { id, reason };
    if run_dir.exists() {
        // A killed episode starts again: the same table and seed make the same run.
        std::fs::remove_dir_all(&run_dir).map_err(|e| StudyError {
            message: format!("cannot clear {}: {}", run_dir.display(), os_words(&e)),
            io: true,
        })?;
    }
    let exp = match episode_experiment(study, spec, id) {
        Ok(exp) => exp,
        Err(e) => return Ok(Some(failed(e.to_string()))),
    };
    let agent = LrAgent {
        policy: Arc::new(policy.clone()),
        choose: behaviour(policy, spec, study.spec.seed, id),
        decisions: Arc::default(),
    };
    let handle = start(
        exp.clone(),
        StartOptions {
            run_dir: Some(run_dir.clone()),
            lr_agent: Some(agent.clone()),
            continue_with: Some(format!("trainlab study resume {}", dir.display())),
            ..StartOptions::default()
        },
    );
    let (mut summary, mut failure, mut stopping) = (None, None, false);
    loop {
        if !stopping && interrupt.load(Ordering::Relaxed) {
            stopping = handle.send(Control::Stop);
        }
        match handle.events().recv_timeout(Duration::from_millis(100)) {
            Ok(TrainEvent::Finished(s)) => summary = Some(s),
            Ok(TrainEvent::Failed { kind, message, .. }) => failure = Some((kind, message)),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    handle.join();
    if stopping {
        return Ok(None);
    }
    let decisions: Vec<Decision> = agent
        .decisions
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    let objective = study.spec.objectives[0];
    let (outcome, end, terminal) = match (summary, failure) {
        (_, Some((FailureKind::Storage, message))) => {
            return Err(StudyError {
                message: format!("study \"{}\", episode {id}: {message}", study.spec.name),
                io: true,
            });
        }
        (Some(s), None) => {
            record_decisions(&run_dir, &decisions).map_err(|e| StudyError {
                message: e.to_string(),
                io: true,
            })?;
            let values = objective_values(study, &s);
            let terminal = values[0].map_or(0.0, |v| objective.score(v));
            let end = End {
                val_loss: s.val_loss,
                val_accuracy: s.val_accuracy,
                train_loss: s.train_loss,
            };
            let entry = Entry::Finished {
                id,
                values,
                wall_seconds: s.wall_seconds,
                epochs: s.epochs,
            };
            (entry, end, terminal)
        }
        // Diverged (or failed): the decisions that led there are penalised.
        (_, failure) => {
            let reason = failure.map_or("the run ended without a summary".into(), |f| f.1);
            (failed(reason), End::default(), -1.0)
        }
    };
    let r = rewards(spec.reward, &decisions, &end, terminal);
    learn(policy, spec, &decisions, &r, id, exp.optimizer.lr());
    Ok(Some(outcome))
}

/// Writes the lr changes the agent made into the trial's experiment.ron.
fn record_decisions(run_dir: &Path, decisions: &[Decision]) -> Result<(), StudySetupError> {
    let path = run_dir.join(crate::runs::files::EXPERIMENT);
    let mut exp = load_file(&path)?;
    let mut lr = exp.optimizer.lr();
    exp.schedule.changes.clear();
    for d in decisions {
        if d.lr == lr {
            continue;
        }
        lr = d.lr;
        exp.schedule.changes.push(ScheduledChange {
            epoch: 0,
            step: Some(d.step),
            set: [("optimizer.lr".to_string(), format!("{}", d.lr))].into(),
        });
    }
    write_atomic(&path, to_ron_string(&exp).as_bytes())
        .map_err(|source| WriteError { path, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::spec::{Search, load_study};
    use crate::study::run::create;

    /// A controller study of `episodes` episodes on 40 points of the spiral (two
    /// steps an epoch, a decision every two), the base's optimizer `optimizer`.
    fn study(dir: &Path, episodes: usize, epochs: usize, optimizer: &str) -> LoadedStudy {
        study_of(dir, episodes, epochs, optimizer, "Tanh")
    }

    /// [`study`] with `activation` between the two layers.
    fn study_of(
        dir: &Path,
        episodes: usize,
        epochs: usize,
        optimizer: &str,
        activation: &str,
    ) -> LoadedStudy {
        let text = format!(
            r#"(
    name: "ctl",
    base: Inline(
        name: "points", seed: 1,
        dataset: Points(kind: Spiral, samples: 40, noise: 0.0, test_fraction: 0.5, features: [X1, X2]),
        model: [Linear(out: 8), {activation}, Linear(out: 1)],
        optimizer: {optimizer},
        training: (epochs: {epochs}, batch_size: 10, log_every_steps: 4, tensorboard: false),
    ),
    space: {{}},
    search: Controller(
        episodes: {episodes},
        decide_every_steps: 2,
        actions: [0.5, 1.0, 2.0],
        state: [Progress],
        reward: TrainLossDrop,
        method: QLearning(alpha: 0.5, gamma: 0.9, epsilon: (start: 1.0, end: 0.0, decay_episodes: 2)),
    ),
    objectives: [Minimize(Parameters)],
    seed: 4,
)"#
        );
        let path = dir.join("ctl.ron");
        std::fs::write(&path, text).expect("write");
        load_study(&path).expect("a valid study")
    }

    fn controller(study: &LoadedStudy) -> ControllerSpec {
        match &study.spec.search {
            Search::Controller(c) => c.clone(),
            other => panic!("not a controller study: {other:?}"),
        }
    }

    /// Runs `work` on `folder` until done (or `interrupt`), returning its
    /// result and progress lines.
    fn work_on(
        folder: &Path,
        study: &LoadedStudy,
        interrupt: &AtomicBool,
    ) -> (Result<(), StudyError>, Vec<String>) {
        let lines = Mutex::new(Vec::new());
        let progress = |line: String| lines.lock().expect("lines").push(line);
        let result = work(folder, study, &controller(study), &progress, interrupt);
        (result, lines.into_inner().expect("lines"))
    }

    /// A study folder `name` in `dir` for `study`, as `study new` makes it.
    fn created(dir: &Path, study: &LoadedStudy, name: &str) -> PathBuf {
        let folder = dir.join(name);
        create(study, &folder).expect("create");
        folder
    }

    /// [`work_on`] in a thread; `then` runs once `path` exists (or the work
    /// has ended).
    fn work_once(
        folder: &Path,
        study: &LoadedStudy,
        interrupt: &AtomicBool,
        path: &Path,
        then: impl FnOnce(),
    ) -> (Result<(), StudyError>, Vec<String>) {
        std::thread::scope(|s| {
            let working = s.spawn(|| work_on(folder, study, interrupt));
            while !path.exists() && !working.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            then();
            working.join().expect("no panic")
        })
    }

    fn entries(folder: &Path) -> Vec<Entry> {
        Journal::new(folder).read().expect("journal")
    }

    fn policy(folder: &Path, study: &LoadedStudy) -> Policy {
        load_or_fresh(folder, &controller(study)).expect("policy")
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
            }
        }
    }

    #[test]
    fn episodes_train_in_order_each_learned_from_once_its_lr_changes_in_its_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = study(dir.path(), 3, 4, "Adam(lr: 0.03)");
        let folder = created(dir.path(), &st, "s");
        let (result, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        result.expect("the study runs");
        let p = policy(&folder, &st);
        let trials: Vec<usize> = p.history.iter().map(|h| h.trial).collect();
        assert_eq!(trials, vec![0, 1, 2]);
        let eps: Vec<f64> = p.history.iter().map(|h| h.epsilon).collect();
        assert_eq!(eps, vec![1.0, 0.5, 0.0]);
        let want: Vec<String> = (p.history.iter())
            .map(|h| format!("episode {} finished: return {:.4}", h.trial, h.ret))
            .collect();
        assert_eq!(lines, want);
        let finished: Vec<(usize, Vec<Option<f64>>, f64)> = (entries(&folder).into_iter())
            .filter_map(|e| match e {
                Entry::Finished {
                    id, values, epochs, ..
                } => Some((id, values, epochs)),
                _ => None,
            })
            .collect();
        // 2 * 8 + 8 + 8 + 1 parameters.
        let each = |id| (id, vec![Some(33.0)], 4.0);
        assert_eq!(finished, vec![each(0), each(1), each(2)]);
        let mut changed = 0;
        for h in &p.history {
            // Decisions at steps 2, 4 and 6 of 8 (the file's lr first).
            let steps: Vec<u64> = h.lrs.iter().map(|l| l.0).collect();
            assert_eq!(steps, vec![0, 2, 4, 6], "{h:?}");
            let exp = load_file(&trial_dir(&folder, h.trial).join(crate::runs::files::EXPERIMENT))
                .expect("the episode's experiment");
            // Only the decisions that changed the lr, each at its step.
            let want: Vec<ScheduledChange> = (h.lrs.windows(2))
                .filter(|w| w[1].1 != w[0].1)
                .map(|w| ScheduledChange {
                    epoch: 0,
                    step: Some(w[1].0),
                    set: [("optimizer.lr".to_string(), format!("{}", w[1].1))].into(),
                })
                .collect();
            assert_eq!(exp.schedule.changes, want, "episode {}", h.trial);
            changed += want.len();
            // Validated at each decision; logged at a step count that divides it.
            assert_eq!(exp.training.eval_every_steps, Some(2));
            assert_eq!(exp.training.log_every_steps, 2);
        }
        assert!(changed > 0, "the first episode explores: {:?}", p.history);
        let visits: u32 = p.visits.iter().flatten().sum();
        assert_eq!(visits, 9, "three decisions an episode");
        // Nothing left to do: a second worker finds the study done.
        let (again, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        again.expect("done");
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(policy(&folder, &st), p);
    }

    #[test]
    fn an_episode_learned_from_before_its_worker_died_is_only_journalled() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = study(dir.path(), 2, 2, "Adam(lr: 0.03)");
        let done = created(dir.path(), &st, "done");
        work_on(&done, &st, &AtomicBool::new(false))
            .0
            .expect("runs");
        let learned = policy(&done, &st);
        // The same study, killed after writing the policy of episode 1 and
        // before journalling it.
        let behind = |name: &str| {
            let folder = created(dir.path(), &st, name);
            copy_dir(&done.join("trials"), &folder.join("trials"));
            copy_dir(&done.join("controller"), &folder.join("controller"));
            let before: Vec<Entry> = (entries(&done).into_iter())
                .filter(|e| match e {
                    Entry::Sampled { .. } => false,
                    Entry::Started { id, .. } | Entry::Finished { id, .. } => *id != 1,
                    _ => true,
                })
                .collect();
            Journal::new(&folder).append(&before).expect("journal");
            folder
        };
        let folder = behind("behind");
        let record = trial_dir(&folder, 1).join(crate::runs::files::METRICS);
        let trained = std::fs::read(&record).expect("record");
        let (result, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        result.expect("runs");
        let ret = learned.history[1].ret;
        assert_eq!(lines, vec![format!("episode 1 finished: return {ret:.4}")]);
        assert_eq!(policy(&folder, &st), learned, "not learned from twice");
        assert_eq!(
            std::fs::read(&record).expect("record"),
            trained,
            "not trained again"
        );
        let last = |folder: &Path| entries(folder).last().cloned();
        assert_eq!(
            last(&folder),
            last(&done),
            "its outcome read off its summary"
        );
        // Its summary lost as well: the episode is failed, saying so.
        let folder = behind("gone");
        let summary = trial_dir(&folder, 1).join(crate::runs::files::SUMMARY);
        std::fs::remove_file(&summary).expect("rm");
        let (result, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        result.expect("runs");
        let reason = format!(
            "learned from, but its summary {} is gone",
            summary.display()
        );
        assert_eq!(lines, vec![format!("episode 1 failed: {reason}")]);
        assert_eq!(last(&folder), Some(Entry::Failed { id: 1, reason }));
        assert_eq!(policy(&folder, &st), learned);
    }

    #[test]
    fn an_interrupted_episode_is_released_unlearned_and_nothing_more_is_claimed() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = study(dir.path(), 2, 3000, "Adam(lr: 0.03)");
        let folder = created(dir.path(), &st, "s");
        let interrupt = AtomicBool::new(false);
        let record = trial_dir(&folder, 0).join(crate::runs::files::METRICS);
        let (result, lines) = work_once(&folder, &st, &interrupt, &record, || {
            interrupt.store(true, Ordering::Relaxed);
        });
        result.expect("stops cleanly");
        assert_eq!(
            lines,
            vec!["episode 0 stopped (interrupted); it runs again on resume".to_string()]
        );
        assert_eq!(
            entries(&folder).last(),
            Some(&Entry::Released {
                id: 0,
                epochs: None
            })
        );
        assert!(
            !super::super::policy_path(&folder).exists(),
            "nothing learned"
        );
        // Already interrupted: nothing is claimed.
        let (result, lines) = work_on(&folder, &st, &interrupt);
        result.expect("nothing to do");
        assert!(lines.is_empty(), "{lines:?}");
        assert!(matches!(
            entries(&folder).last(),
            Some(Entry::Released { .. })
        ));
    }

    #[test]
    fn an_episode_that_cannot_save_stops_the_study_naming_it_and_how_to_resume() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = study(dir.path(), 2, 300, "Adam(lr: 0.03)");
        let folder = created(dir.path(), &st, "s");
        let run = trial_dir(&folder, 0);
        let no = AtomicBool::new(false);
        // This crate's tests fail every checkpoint of a run folder holding
        // `full` (train::checkpoint::tests::marked_write), as a full disk does.
        let (result, lines) = work_once(&folder, &st, &no, &run, || {
            std::fs::write(run.join("full"), b"").expect("mark full");
        });
        let err = result.expect_err("stops");
        assert!(err.io, "{}", err.message);
        assert!(
            err.message.starts_with("study \"ctl\", episode 0: "),
            "{}",
            err.message
        );
        let resume = format!("trainlab study resume {}", folder.display());
        assert!(err.message.contains(&resume), "{}", err.message);
        assert!(lines.is_empty(), "{lines:?}");
        assert!(
            !super::super::policy_path(&folder).exists(),
            "nothing learned"
        );
    }

    #[test]
    fn an_episode_a_live_process_trains_is_refused_a_dead_ones_is_taken_over() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = study(dir.path(), 1, 1, "Adam(lr: 0.03)");
        let folder = created(dir.path(), &st, "s");
        let me = Owner::me();
        let other = |pid| Entry::Started {
            id: 0,
            epochs: None,
            owner: Owner {
                host: me.host.clone(),
                pid,
            },
        };
        // pid 1 lives as long as the machine does.
        Journal::new(&folder).append(&[other(1)]).expect("journal");
        let (result, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        let err = result.expect_err("busy");
        assert_eq!(
            err.message,
            format!(
                "study \"ctl\": episode 0 is being trained by {}:1; a controller's episodes \
                 run one after the other, in one process",
                me.host
            )
        );
        assert!(!err.io && lines.is_empty());
        // No process has the largest pid: its episode is trained here.
        Journal::new(&folder)
            .append(&[other(u32::MAX)])
            .expect("journal");
        let (result, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        result.expect("taken over");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("episode 0 finished"), "{lines:?}");
    }

    #[test]
    fn a_diverging_episode_fails_and_its_decisions_are_penalised() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = study_of(
            dir.path(),
            1,
            4,
            "Sgd(lr: 1e38, momentum: 0.0, nesterov: false, weight_decay: 0.0)",
            "ReLU",
        );
        let folder = created(dir.path(), &st, "s");
        let (result, lines) = work_on(&folder, &st, &AtomicBool::new(false));
        result.expect("a failed episode is an outcome, not an error");
        let reason = match entries(&folder).last() {
            Some(Entry::Failed { id: 0, reason }) => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert!(reason.contains("diverged"), "{reason}");
        assert_eq!(lines, vec![format!("episode 0 failed: {reason}")]);
        let p = policy(&folder, &st);
        assert_eq!(p.history.len(), 1, "{:?}", p.history);
        let steps: Vec<u64> = p.history[0].lrs.iter().map(|l| l.0).collect();
        assert_eq!(
            steps,
            vec![0, 2, 4],
            "the run fails at its decision at step 4"
        );
        // The last decision (in the later quarter: Progress is the only
        // feature) is learned from first: alpha * (no figure at the end, so no
        // change, plus the -1 penalty).
        let visited: Vec<(usize, usize)> = (0..p.table.len())
            .flat_map(|s| (0..3).map(move |a| (s, a)))
            .filter(|&(s, a)| p.visits[s][a] > 0)
            .collect();
        assert_eq!(visited.len(), 2, "{:?}", p.visits);
        let (s, a) = visited[1];
        assert_eq!(p.table[s][a], -0.5, "{:?}", p.table);
    }

    #[test]
    fn an_episode_is_validated_at_each_decision_and_logged_at_a_step_count_dividing_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut st = study(dir.path(), 1, 1, "Adam(lr: 0.03)");
        let mut spec = controller(&st);
        for (log, every, want) in [(4, 6, 2), (3, 6, 3), (9, 6, 3), (6, 6, 6), (1, 7, 1)] {
            st.base.training.log_every_steps = log;
            spec.decide_every_steps = every;
            let exp = episode_experiment(&st, &spec, 0).expect("valid");
            assert_eq!(exp.training.eval_every_steps, Some(every as usize));
            assert_eq!(
                exp.training.log_every_steps, want,
                "log {log}, decide {every}"
            );
        }
    }
}
