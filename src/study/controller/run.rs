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
