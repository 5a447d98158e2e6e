//! Creating a study folder and working on it: workers (threads here; other
//! processes may join on the same folder) take jobs from the journal, train each
//! trial as a normal run in `trials/<id>/`, and report what it reached.
//!
//! Contract: a trial is claimed (Started) under the journal's lock, so no two
//! workers train it; a trial whose worker died is taken up again and continues
//! from its newest checkpoint; an ASHA promotion continues the trial's own run
//! (its schedule was laid out for `max_epochs` from the start).
//!
//! Faults: a trial that could not save what it trained (disk full, read-only
//! folder) is not marked failed: its worker stops with a message naming the
//! study, the trial and the file, the other workers take no new trial, and the
//! trial waits at its last whole checkpoint for `study resume`. A journal append
//! is whole or absent, and a trial's outcome is appended before the leaderboard
//! is rewritten, so nothing finished is ever run again. Such a stop is an
//! [`StudyError`] with `io` set (exit 1); bad input is not (exit 2).
//!
//! Footprint: once the journal holds a trial's outcome, a trial that will not
//! train again (finished, stopped by ASHA, failed) keeps its final weights,
//! record and summary but no checkpoint; one that may (at an ASHA or PBT rung,
//! released) keeps only its newest, the one it continues from.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::RecvTimeoutError;
use std::time::Duration;

use super::error::WriteError;
use super::journal::{Entry, Journal, Owner};
use super::leaderboard;
use super::lease::{self, Heartbeat};
use super::pbt;
use super::sample::{grid, random};
use super::state::{Job, Trial, replay};
use crate::events::{Control, FailureKind, RunSummary, StopReason, TrainEvent};
use crate::runs::checkpoints;
use crate::spec::{
    BaseSpec, DatasetSpec, Experiment, Figure, LoadedStudy, Parallel, Search, SpecError, StudySpec,
    TrialWeights, apply_override, load_file, load_study, study_to_ron,
};
use crate::train::{StartOptions, start};
use crate::util::atomic::{os_words, probe_writable, write_atomic};

/// The study file inside a study folder (the base experiment written inline).
pub const STUDY_FILE: &str = "study.ron";

/// Something a worker did, for a progress line.
pub type Progress<'a> = &'a (dyn Fn(String) + Sync);

/// Makes the study folder `dir` for `study`: the study with its base written in,
/// and one Sampled entry per trial.
pub fn create(study: &LoadedStudy, dir: &Path) -> Result<(), StudyError> {
    if dir.join(STUDY_FILE).exists() {
        return Err(StudyError::input(format!(
            "{} already holds a study; continue it with `trainlab study resume {}`",
            dir.display(),
            dir.display()
        )));
    }
    let spec = &study.spec;
    let points = match &spec.search {
        Search::Grid => grid(&spec.space),
        Search::Random { trials } | Search::Asha { trials, .. } => {
            random(&spec.space, *trials, spec.seed)
        }
        Search::Pbt { population, .. } => random(&spec.space, *population, spec.seed),
        Search::Controller(c) => Ok(vec![Default::default(); c.episodes]),
    }
    .map_err(|e| StudyError::input(e.to_string()))?;
    if matches!(spec.search, Search::Asha { .. } | Search::Pbt { .. })
        && matches!(study.base.dataset, DatasetSpec::Gridworld(_))
    {
        return Err(StudyError::input(
            "search: Asha and Pbt count epochs; gridworld runs have episodes: use Random or Grid",
        ));
    }
    // A folder that cannot be written is refused before anything is written.
    probe_writable(dir).map_err(|e| StudyError {
        message: format!("study \"{}\": {e}", study.spec.name),
        io: e.no_space,
    })?;
    let io = |what: &Path, e: std::io::Error| StudyError {
        message: format!(
            "study \"{}\": cannot write {}: {}",
            spec.name,
            what.display(),
            os_words(&e)
        ),
        io: true,
    };
    let trials = dir.join("trials");
    std::fs::create_dir_all(&trials).map_err(|e| io(&trials, e))?;
    let inline = StudySpec {
        base: BaseSpec::Inline(Box::new(study.base.clone())),
        ..spec.clone()
    };
    let text = study_to_ron(&inline);
    let file = dir.join(STUDY_FILE);
    write_atomic(&file, text.as_bytes()).map_err(|e| io(&file, e))?;
    let entries: Vec<Entry> = points
        .into_iter()
        .enumerate()
        .map(|(id, params)| Entry::Sampled { id, params })
        .collect();
    let journal = Journal::new(dir);
    journal.append(&entries).map_err(|e| {
        // Without its trials the folder is no study: `study run` starts it again.
        let _ = std::fs::remove_file(&file);
        let mut err = io(journal.path(), e);
        err.message
            .push_str("; nothing was started: once there is space, run `trainlab study run` again");
        err
    })
}

/// Why working on a study stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyError {
    /// What happened, where, and how to go on.
    pub message: String,
    /// A file could not be written or read (disk full, read-only folder, I/O
    /// error), as opposed to bad input.
    pub io: bool,
}

impl StudyError {
    fn input(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            io: false,
        }
    }
}

impl std::fmt::Display for StudyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StudyError {}

impl From<StudyError> for String {
    fn from(e: StudyError) -> Self {
        e.message
    }
}

/// A worker's stop for an I/O error in `study`'s folder `dir` (at trial `trial`).
fn io_stop(study: &LoadedStudy, dir: &Path, trial: Option<usize>, what: &str) -> StudyError {
    let trial = trial.map(|id| format!(", trial {id}")).unwrap_or_default();
    StudyError {
        message: format!(
            "study \"{}\"{trial}: {what}. The journal ({}) is whole; once the folder can be \
             written again (free some space), continue with `trainlab study resume {}`: \
             nothing finished is run again",
            study.spec.name,
            Journal::new(dir).path().display(),
            dir.display()
        ),
        io: true,
    }
}

/// Works on the study in `dir` with `parallel` trials at once until nothing is
/// left; returns the trials as they ended.
pub fn work(
    dir: &Path,
    parallel: Option<usize>,
    progress: Progress<'_>,
) -> Result<Vec<Trial>, StudyError> {
    work_until(dir, parallel, progress, &AtomicBool::new(false))
}

/// Like [`work`], until `interrupt` is set (SIGTERM, SLURM's warning signal):
/// then each running trial is stopped at a checkpoint and released for another
/// worker, and no new one is taken.
pub fn work_until(
    dir: &Path,
    parallel: Option<usize>,
    progress: Progress<'_>,
    interrupt: &AtomicBool,
) -> Result<Vec<Trial>, StudyError> {
    let study = load(dir).map_err(|e| StudyError::input(e.to_string()))?;
    // Before any trial loads data: a folder that cannot be written is refused.
    probe_writable(dir).map_err(|e| StudyError {
        message: format!("study \"{}\": {e}", study.spec.name),
        io: e.no_space,
    })?;
    let journal = Journal::new(dir);
    let _lease = Heartbeat::start(dir).map_err(|e| {
        io_stop(
            &study,
            dir,
            None,
            &format!("cannot write its lease: {}", os_words(&e)),
        )
    })?;
    let (entries, torn) = journal.read_noting().map_err(|e| {
        io_stop(
            &study,
            dir,
            None,
            &format!("cannot read {}: {}", journal.path().display(), os_words(&e)),
        )
    })?;
    if let Some(note) = torn {
        progress(note);
    }
    if let Search::Controller(c) = &study.spec.search {
        super::controller::work(dir, &study, c, progress, interrupt)?;
        return final_trials(dir, &study, &journal);
    }
    let total = replay(&entries).len();
    // A SLURM task owns the CPUs it asked for, not the whole node.
    let cores = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let workers = match (parallel, study.spec.parallel) {
        (Some(n), _) | (None, Parallel::Trials(n)) => n,
        (None, Parallel::Auto) => cores,
    }
    .clamp(1, total.max(1));
    let threads = (cores / workers).max(1);
    let errors = Mutex::new(Vec::new());
    // Set when a worker stops for an I/O error: the others take no new trial.
    let halted = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let ctx = WorkerCtx {
                    dir,
                    study: &study,
                    journal: &journal,
                    threads,
                    progress,
                    interrupt,
                    halted: &halted,
                };
                if let Err(e) = worker(&ctx) {
                    halted.store(true, Ordering::Relaxed);
                    if let Ok(mut errs) = errors.lock() {
                        errs.push(e);
                    }
                }
            });
        }
    });
    if let Some(e) = errors.into_inner().ok().and_then(|v| v.into_iter().next()) {
        return Err(e);
    }
    final_trials(dir, &study, &journal)
}

/// The trials as the journal tells them, with the leaderboard rewritten.
fn final_trials(
    dir: &Path,
    study: &LoadedStudy,
    journal: &Journal,
) -> Result<Vec<Trial>, StudyError> {
    journal
        .transact(|entries| {
            let trials = replay(entries);
            write_leaderboard(dir, study, &trials).map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>((Vec::new(), trials))
        })
        .map_err(|e| {
            io_stop(
                study,
                dir,
                None,
                &format!("cannot update the leaderboard: {e}"),
            )
        })
}

/// What every worker of one `work_until` shares.
struct WorkerCtx<'a> {
    dir: &'a Path,
    study: &'a LoadedStudy,
    journal: &'a Journal,
    threads: usize,
    progress: Progress<'a>,
    interrupt: &'a AtomicBool,
    halted: &'a AtomicBool,
}

/// Appends a trial's `outcome` to the journal and rewrites the leaderboard from
/// every entry, both under the journal's lock, so two workers (or processes)
/// never write the board at once. The outcome is appended even when the board
/// cannot be written: the inner result says whether it was.
pub(super) fn journal_outcome(
    journal: &Journal,
    dir: &Path,
    study: &LoadedStudy,
    outcome: &Entry,
) -> std::io::Result<Result<(), WriteError>> {
    journal.transact(|entries| {
        let mut all = entries.to_vec();
        all.push(outcome.clone());
        let board = write_leaderboard(dir, study, &replay(&all));
        Ok::<_, std::io::Error>((vec![outcome.clone()], board))
    })
}

pub(super) fn write_leaderboard(
    dir: &Path,
    study: &LoadedStudy,
    trials: &[Trial],
) -> Result<(), WriteError> {
    let paths: Vec<String> = study.spec.space.keys().cloned().collect();
    leaderboard::write(dir, trials, &paths, &study.spec.objectives).map_err(|source| WriteError {
        path: dir.join("leaderboard.csv"),
        source,
    })
}

/// One worker's loop: take a job, do it, report, until the study is done.
fn worker(ctx: &WorkerCtx<'_>) -> Result<(), StudyError> {
    let WorkerCtx {
        dir,
        study,
        journal,
        threads,
        progress,
        interrupt,
        halted,
    } = *ctx;
    let me = Owner::me();
    let objective = study.spec.objectives[0];
    let journal_error = |trial: Option<usize>, e: std::io::Error| {
        io_stop(
            study,
            dir,
            trial,
            &format!(
                "cannot update {}: {}",
                journal.path().display(),
                os_words(&e)
            ),
        )
    };
    loop {
        if interrupt.load(Ordering::Relaxed) || halted.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The claimed trial's settings come from the same replay that chose it.
        let (job, params, note) = journal
            .transact(|entries| {
                let mut note = String::new();
                let trials = replay(entries);
                let alive = |o: &Owner| lease::alive(dir, o);
                let job = super::state::next_job(&trials, &study.spec.search, objective, alive);
                let new = match &job {
                    Job::Run { id, epochs } => vec![Entry::Started {
                        id: *id,
                        epochs: *epochs,
                        owner: me.clone(),
                    }],
                    Job::Done { stop } => stop.iter().map(|&id| Entry::Stopped { id }).collect(),
                    Job::Exploit { epochs } => {
                        // Under the lock: nobody trains while members are copied.
                        let moves = pbt::moves(&trials, *epochs, &study.spec);
                        for m in &moves {
                            pbt::copy_member(dir, &study.spec.name, *epochs, m)
                                .map_err(std::io::Error::other)?;
                            let settings: Vec<String> =
                                m.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                            note.push_str(&format!(
                                "; trial {} copies {} ({})",
                                m.id,
                                m.from,
                                settings.join(", ")
                            ));
                        }
                        vec![Entry::Generation {
                            epochs: *epochs,
                            moves,
                        }]
                    }
                    Job::Wait => Vec::new(),
                };
                let params = match &job {
                    Job::Run { id, .. } => trials.get(*id).map(|t| t.params.clone()),
                    _ => None,
                };
                Ok::<_, std::io::Error>((new, (job, params.unwrap_or_default(), note)))
            })
            .map_err(|e| journal_error(None, e))?;
        match job {
            Job::Wait => std::thread::sleep(Duration::from_millis(200)),
            Job::Exploit { epochs } => progress(format!("PBT step at epoch {epochs}{note}")),
            Job::Done { stop } => {
                // Journalled as stopped above: none of them trains again.
                stop.into_iter()
                    .for_each(|id| tidy_noting(dir, study, &Entry::Stopped { id }, progress));
                return Ok(());
            }
            Job::Run { id, epochs } => {
                let outcome = run_trial(dir, study, id, &params, epochs, threads, interrupt)?;
                let line = match &outcome {
                    Entry::Reported { epochs, values, .. } => {
                        format!(
                            "trial {id}: {} after {epochs} epoch(s)",
                            show(study, values)
                        )
                    }
                    Entry::Finished { values, .. } => {
                        format!("trial {id} finished: {}", show(study, values))
                    }
                    Entry::Failed { reason, .. } => format!("trial {id} failed: {reason}"),
                    Entry::Released { .. } => {
                        format!("trial {id} released at its checkpoint (interrupted)")
                    }
                    _ => String::new(),
                };
                let board = journal_outcome(journal, dir, study, &outcome)
                    .map_err(|e| journal_error(Some(id), e))?;
                board.map_err(|e| io_stop(study, dir, Some(id), &e.to_string()))?;
                tidy_noting(dir, study, &outcome, progress);
                let settings: Vec<String> =
                    params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                progress(format!("{line} ({})", settings.join(", ")));
            }
        }
    }
}

fn show(study: &LoadedStudy, values: &[Option<f64>]) -> String {
    study
        .spec
        .objectives
        .iter()
        .zip(values)
        .map(|(o, v)| match v {
            Some(v) => format!("{:?} {}", o.figure(), o.figure().value_text(*v)),
            None => format!("{:?} -", o.figure()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Trains trial `id` (fresh, or from its newest checkpoint) until `epochs`.
fn run_trial(
    dir: &Path,
    study: &LoadedStudy,
    id: usize,
    params: &std::collections::BTreeMap<String, String>,
    epochs: Option<usize>,
    threads: usize,
    interrupt: &AtomicBool,
) -> Result<Entry, StudyError> {
    let run_dir = trial_dir(dir, id);
    let failed = |reason: String| Entry::Failed { id, reason };
    let checkpoint = checkpoints::latest(&run_dir).map(|(_, p)| p);
    let exp = match &checkpoint {
        Some(_) => match load_file(&run_dir.join(crate::runs::files::EXPERIMENT)) {
            Ok(exp) => exp,
            Err(e) => return Ok(failed(e.to_string())),
        },
        None => match trial_experiment(study, id, params) {
            Ok(exp) => exp,
            Err(e) => return Ok(failed(e.to_string())),
        },
    };
    let max_epochs = exp.training.epochs;
    let halt = epochs.filter(|&e| e < max_epochs);
    // Finished, but its worker died before the journal said so: its summary is
    // the outcome (nothing is trained again).
    if halt.is_none()
        && let Some(s) = finished_summary(&run_dir, checkpoint.as_deref())
    {
        return Ok(Entry::Finished {
            id,
            values: objective_values(study, &s),
            wall_seconds: s.wall_seconds,
            epochs: s.epochs,
        });
    }
    let handle = start(
        exp,
        StartOptions {
            run_dir: Some(run_dir),
            resume_from: checkpoint,
            halt_after_epochs: halt,
            threads: Some(threads),
            continue_with: Some(format!("trainlab study resume {}", dir.display())),
            ..StartOptions::default()
        },
    );
    let mut outcome = failed("the run ended without a summary".into());
    let mut storage = None;
    let mut stopping = false;
    loop {
        if !stopping && interrupt.load(Ordering::Relaxed) {
            // Stop writes a checkpoint at the step it ends on.
            stopping = handle.send(Control::Stop);
        }
        let event = match handle.events().recv_timeout(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match event {
            TrainEvent::Finished(s) if stopping && s.reason == StopReason::Stopped => {
                outcome = Entry::Released { id, epochs };
            }
            TrainEvent::Finished(s) => {
                let values = objective_values(study, &s);
                // Halted at a rung, not ended early by its own early stopping.
                outcome = match halt {
                    Some(e) if s.reason == StopReason::Stopped => Entry::Reported {
                        id,
                        epochs: e,
                        values,
                        wall_seconds: s.wall_seconds,
                    },
                    _ => Entry::Finished {
                        id,
                        values,
                        wall_seconds: s.wall_seconds,
                        epochs: s.epochs,
                    },
                };
            }
            // Not the trial's fault: it waits at its last whole checkpoint.
            TrainEvent::Failed {
                kind: FailureKind::Storage,
                message,
                ..
            } => storage = Some(message),
            TrainEvent::Failed { message, .. } => outcome = failed(message),
            _ => {}
        }
    }
    handle.join();
    match storage {
        Some(message) => Err(StudyError {
            message: format!("study \"{}\", trial {id}: {message}", study.spec.name),
            io: true,
        }),
        None => Ok(outcome),
    }
}

/// [`tidy_trial`] and [`keep_weights`], a failure a progress line.
fn tidy_noting(dir: &Path, study: &LoadedStudy, outcome: &Entry, progress: Progress<'_>) {
    if let Some(note) = tidy_trial(dir, outcome) {
        progress(note);
    }
    if let Some(note) = keep_weights(dir, outcome, study.spec.trial_weights) {
        progress(note);
    }
}

/// Rewrites the final weights of a trial that will not train again in the
/// study's `trial_weights` format (nothing to do for `F32`, or without weights).
/// A failure costs space, not work: it is returned as a note, not an error.
fn keep_weights(dir: &Path, outcome: &Entry, format: TrialWeights) -> Option<String> {
    let id = match outcome {
        Entry::Finished { id, .. } | Entry::Failed { id, .. } | Entry::Stopped { id } => *id,
        _ => return None,
    };
    if format == TrialWeights::F32 {
        return None;
    }
    let path = trial_dir(dir, id).join(crate::runs::files::WEIGHTS);
    if !path.is_file() {
        return None;
    }
    halve_weights(&path).err().map(|e| {
        format!(
            "trial {id}: could not rewrite {} in half precision: {e}",
            path.display()
        )
    })
}

/// Rewrites the f32 tensors of a safetensors file as f16 (others as they are).
fn halve_weights(path: &Path) -> candle_core::Result<()> {
    use candle_core::DType;
    let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)?;
    let halved = tensors
        .into_iter()
        .map(|(name, t)| {
            let t = if t.dtype() == DType::F32 {
                t.to_dtype(DType::F16)?
            } else {
                t
            };
            Ok((name, t))
        })
        .collect::<candle_core::Result<std::collections::HashMap<_, _>>>()?;
    crate::util::atomic::write_safetensors(path, &halved).map_err(candle_core::Error::wrap)
}

/// Deletes the checkpoints trial's journalled `outcome` no longer needs: all of
/// them once it will not train again, all but the newest while it may. A
/// failure costs space, not work: it is returned as a note, not an error.
fn tidy_trial(dir: &Path, outcome: &Entry) -> Option<String> {
    let (id, result) = match outcome {
        Entry::Finished { id, .. } | Entry::Failed { id, .. } | Entry::Stopped { id } => {
            (*id, checkpoints::remove_all(&trial_dir(dir, *id)))
        }
        Entry::Reported { id, .. } | Entry::Released { id, .. } => {
            (*id, checkpoints::prune(&trial_dir(dir, *id), 1))
        }
        _ => return None,
    };
    result.err().map(|e| {
        format!(
            "trial {id}: could not delete checkpoints it no longer needs in {}: {}",
            trial_dir(dir, id).join(checkpoints::DIR).display(),
            os_words(&e)
        )
    })
}

/// One value per objective of `study` from a run's summary.
pub(super) fn objective_values(study: &LoadedStudy, s: &RunSummary) -> Vec<Option<f64>> {
    study
        .spec
        .objectives
        .iter()
        .map(|o| figure(s, o.figure()))
        .collect()
}

/// The summary of a trial run that ended at its newest checkpoint (`checkpoint`)
/// on its own (not halted at a rung, not stopped by a signal).
fn finished_summary(run_dir: &Path, checkpoint: Option<&Path>) -> Option<RunSummary> {
    let checkpoint = checkpoint?;
    let text = std::fs::read(run_dir.join(crate::runs::files::SUMMARY)).ok()?;
    let s: RunSummary = serde_json::from_slice(&text).ok()?;
    let at_end = checkpoints::latest(run_dir).is_some_and(|(step, dir)| {
        dir == checkpoint && (step == s.steps || s.rl.as_ref().is_some_and(|r| step == r.episodes))
    });
    (at_end && s.reason != StopReason::Stopped).then_some(s)
}

/// The folder of trial `id`.
pub fn trial_dir(dir: &Path, id: usize) -> PathBuf {
    dir.join("trials").join(format!("{id:04}"))
}

/// The base experiment with trial `id`'s settings (ASHA: the full epoch budget).
pub fn trial_experiment(
    study: &LoadedStudy,
    id: usize,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<Experiment, SpecError> {
    let mut exp = study.base.clone();
    exp.name = format!("{}-{id:04}", study.spec.name);
    if let Search::Asha { max_epochs, .. } | Search::Pbt { max_epochs, .. } = study.spec.search {
        exp.training.epochs = max_epochs;
    }
    for (path, value) in params {
        exp = apply_override(&exp, &format!("{path}={value}"))?;
    }
    Ok(exp)
}

/// A summary figure, if the run measured it.
pub fn figure(s: &RunSummary, f: Figure) -> Option<f64> {
    let rl = s.rl.as_ref();
    match f {
        Figure::ValAccuracy => s.val_accuracy,
        Figure::ValLoss => s.val_loss,
        Figure::TestAccuracy => s.test_accuracy,
        Figure::TestLoss => s.test_loss,
        Figure::TrainLoss => s.train_loss,
        Figure::BitsPerToken => s.language.map(|l| l.bits_per_token),
        Figure::Parameters => Some(s.parameters as f64),
        Figure::TrainSeconds => Some(s.train_seconds),
        Figure::SamplesPerSec => Some(s.samples_per_sec),
        Figure::SuccessRate => rl.map(|r| r.success_rate),
        Figure::PathRatio => rl.and_then(|r| {
            r.greedy_path_len
                .map(|g| g as f64 / r.optimal_path_len.max(1) as f64)
        }),
    }
    .filter(|v| v.is_finite())
}

/// A study folder's study file. A folder made before `trial_weights` was always
/// written (and before `F16` became the default) keeps its trials' weights as
/// trained, as it was started: its remaining trials are not halved.
pub fn load(dir: &Path) -> Result<LoadedStudy, SpecError> {
    let file = dir.join(STUDY_FILE);
    let mut study = load_study(&file)?;
    let text = std::fs::read_to_string(&file).map_err(|source| SpecError::Io {
        path: file.clone(),
        source,
    })?;
    // The study's own field starts a line at the top level; a string that
    // mentions it (a name, the base's notes) cannot: ron escapes its newlines.
    if !text.lines().any(|l| l.starts_with("    trial_weights:")) {
        study.spec.trial_weights = TrialWeights::F32;
    }
    Ok(study)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::runs::checkpoints::CheckpointFiles;
    use crate::study::TrialState;

    fn checkpoint_at(run: &Path, step: u64) {
        let t = Tensor::new(&[1.0f32], &Device::Cpu).expect("tensor");
        let model = HashMap::from([("w".to_string(), t)]);
        let files = CheckpointFiles {
            model: &model,
            training: &HashMap::new(),
            state_json: b"{}",
        };
        checkpoints::write(run, step, &files).expect("write");
    }

    #[test]
    fn a_trial_that_may_continue_keeps_its_newest_checkpoint_one_that_ends_none() {
        let dir = tempfile::tempdir().expect("tmp");
        let steps = |id| -> Vec<u64> {
            checkpoints::list(&trial_dir(dir.path(), id))
                .iter()
                .map(|(s, _)| *s)
                .collect()
        };
        let ended = [
            Entry::Finished {
                id: 0,
                values: Vec::new(),
                wall_seconds: 1.0,
                epochs: 1.0,
            },
            Entry::Failed {
                id: 1,
                reason: "diverged".into(),
            },
            Entry::Stopped { id: 2 },
        ];
        let waiting = [
            Entry::Reported {
                id: 3,
                epochs: 1,
                values: Vec::new(),
                wall_seconds: 1.0,
            },
            Entry::Released {
                id: 4,
                epochs: Some(3),
            },
        ];
        for id in 0..5 {
            checkpoint_at(&trial_dir(dir.path(), id), 10);
            checkpoint_at(&trial_dir(dir.path(), id), 20);
        }
        for e in ended.iter().chain(&waiting) {
            assert_eq!(tidy_trial(dir.path(), e), None, "{e:?}");
        }
        for id in 0..3 {
            assert!(steps(id).is_empty(), "trial {id}: {:?}", steps(id));
        }
        for id in 3..5 {
            assert_eq!(steps(id), vec![20], "trial {id}");
        }
        // A trial started with nothing on disk is no error.
        assert_eq!(tidy_trial(dir.path(), &Entry::Stopped { id: 9 }), None);
    }

    #[test]
    fn f16_trial_weights_halve_an_ended_trials_model_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tmp");
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 1.37e-3).collect();
        let w = Tensor::from_vec(values.clone(), (10, 100), &Device::Cpu).expect("tensor");
        let steps = Tensor::new(&[3u32], &Device::Cpu).expect("tensor");
        let model = HashMap::from([("w".to_string(), w), ("n".to_string(), steps)]);
        let weights = |id| trial_dir(dir.path(), id).join(crate::runs::files::WEIGHTS);
        for id in 0..3 {
            std::fs::create_dir_all(trial_dir(dir.path(), id)).expect("dir");
            crate::util::atomic::write_safetensors(&weights(id), &model).expect("write");
        }
        let size = |id| std::fs::metadata(weights(id)).expect("weights").len();
        let f32_size = size(0);
        let finished = Entry::Finished {
            id: 0,
            values: Vec::new(),
            wall_seconds: 1.0,
            epochs: 1.0,
        };
        let waiting = Entry::Reported {
            id: 1,
            epochs: 1,
            values: Vec::new(),
            wall_seconds: 1.0,
        };
        assert_eq!(keep_weights(dir.path(), &finished, TrialWeights::F16), None);
        assert_eq!(keep_weights(dir.path(), &waiting, TrialWeights::F16), None);
        let stopped = Entry::Stopped { id: 2 };
        assert_eq!(keep_weights(dir.path(), &stopped, TrialWeights::F32), None);
        // No weights (save_weights off, or a trial that never started): nothing to do.
        assert_eq!(
            keep_weights(dir.path(), &Entry::Stopped { id: 7 }, TrialWeights::F16),
            None
        );
        assert!(size(0) < f32_size / 2 + 200, "{} -> {}", f32_size, size(0));
        assert_eq!((size(1), size(2)), (f32_size, f32_size), "kept as trained");
        let loaded = candle_core::safetensors::load(weights(0), &Device::Cpu).expect("load");
        assert_eq!(loaded["w"].dtype(), candle_core::DType::F16);
        assert_eq!(
            loaded["n"].to_vec1::<u32>().expect("u32"),
            vec![3],
            "not a float: as is"
        );
        let back = loaded["w"]
            .to_dtype(candle_core::DType::F32)
            .expect("widen");
        let back = back
            .flatten_all()
            .expect("flat")
            .to_vec1::<f32>()
            .expect("values");
        for (a, b) in values.iter().zip(&back) {
            assert!((a - b).abs() <= a.abs() / 1024.0, "{a} -> {b}");
        }
    }

    #[test]
    fn a_study_folder_records_its_trial_weights_and_an_older_one_keeps_f32() {
        use crate::spec::Objective::Maximize;
        let dir = tempfile::tempdir().expect("tmp");
        let objectives = vec![Maximize(Figure::ValAccuracy)];
        let fresh = study(Search::Random { trials: 1 }, objectives.clone());
        assert_eq!(fresh.spec.trial_weights, TrialWeights::F16, "the default");
        for (name, format) in [("h", TrialWeights::F16), ("f", TrialWeights::F32)] {
            let mut st = study(Search::Random { trials: 1 }, objectives.clone());
            let seeds = crate::spec::Param::Choice(vec![ron::from_str("1").expect("value")]);
            st.spec.space.insert("seed".to_string(), seeds);
            st.spec.trial_weights = format;
            // A name that mentions the field is not the field.
            st.spec.name = "s\n    trial_weights: F16, in the name".into();
            create(&st, &dir.path().join(name)).expect("create");
            let text =
                std::fs::read_to_string(dir.path().join(name).join(STUDY_FILE)).expect("study.ron");
            assert!(
                text.contains(&format!("trial_weights: {format:?}")),
                "written out: {text}"
            );
            let loaded = load(&dir.path().join(name)).expect("loads");
            assert_eq!(loaded.spec.trial_weights, format);
        }
        // A folder whose study.ron predates the field was started keeping f32
        // weights: its remaining trials are not halved.
        let old = dir.path().join("h").join(STUDY_FILE);
        let text = std::fs::read_to_string(&old).expect("study.ron");
        let field = |l: &&str| l.starts_with("    trial_weights:");
        assert_eq!(text.lines().filter(field).count(), 1, "{text}");
        let without: Vec<&str> = text.lines().filter(|l| !field(l)).collect();
        std::fs::write(&old, without.join("\n")).expect("write");
        assert_eq!(
            load(&dir.path().join("h"))
                .expect("loads")
                .spec
                .trial_weights,
            TrialWeights::F32
        );
        // The same text as a study file a user writes takes the default.
        let file = dir.path().join("mine.ron");
        std::fs::copy(&old, &file).expect("copy");
        assert_eq!(
            load_study(&file).expect("loads").spec.trial_weights,
            TrialWeights::F16
        );
    }

    /// A summary with only the figures every run has.
    fn summary(steps: u64, reason: StopReason) -> RunSummary {
        serde_json::from_value(serde_json::json!({
            "name": "t",
            "reason": reason,
            "steps": steps,
            "epochs": 2.0,
            "parameters": 1234,
            "wall_seconds": 3.0,
            "train_seconds": 1.5,
            "samples_per_sec": 100.0,
            "lr_changes": [],
        }))
        .expect("summary")
    }

    fn rl(episodes: u64, greedy: Option<usize>, optimal: usize) -> crate::events::RlSummary {
        crate::events::RlSummary {
            method: "q".into(),
            episodes,
            env_steps: 1000,
            gradient_steps: 0,
            success_rate: 0.25,
            greedy_path_len: greedy,
            optimal_path_len: optimal,
            shortest_path_len: optimal,
            optimal_return: 0.5,
            greedy_optimal: false,
            first_optimal_episode: None,
            first_optimal_seconds: None,
            env_steps_per_sec: 10.0,
        }
    }

    fn study(search: Search, objectives: Vec<crate::spec::Objective>) -> LoadedStudy {
        LoadedStudy {
            spec: StudySpec {
                name: "s".into(),
                base: BaseSpec::Inline(Box::default()),
                space: std::collections::BTreeMap::new(),
                search,
                objectives,
                parallel: Parallel::Auto,
                seed: 1,
                trial_weights: Default::default(),
            },
            base: Default::default(),
        }
    }

    #[test]
    fn each_figure_is_its_summary_field_and_only_when_finite() {
        let mut s = summary(5, StopReason::Completed);
        s.val_accuracy = Some(0.75);
        s.val_loss = Some(f64::INFINITY);
        s.test_accuracy = Some(0.5);
        s.test_loss = Some(0.125);
        s.train_loss = Some(f64::NAN);
        let want = [
            (Figure::ValAccuracy, Some(0.75)),
            (Figure::ValLoss, None),
            (Figure::TestAccuracy, Some(0.5)),
            (Figure::TestLoss, Some(0.125)),
            (Figure::TrainLoss, None),
            (Figure::BitsPerToken, None),
            (Figure::Parameters, Some(1234.0)),
            (Figure::TrainSeconds, Some(1.5)),
            (Figure::SamplesPerSec, Some(100.0)),
            (Figure::SuccessRate, None),
            (Figure::PathRatio, None),
        ];
        for (f, v) in want {
            assert_eq!(figure(&s, f), v, "{f:?}");
        }
        // The path ratio is the greedy path over the optimal one: 12 / 8.
        s.rl = Some(rl(40, Some(12), 8));
        assert_eq!(figure(&s, Figure::SuccessRate), Some(0.25));
        assert_eq!(figure(&s, Figure::PathRatio), Some(1.5));
        s.rl = Some(rl(40, None, 8));
        assert_eq!(figure(&s, Figure::PathRatio), None, "no path to the goal");
        s.rl = Some(rl(40, Some(3), 0));
        assert_eq!(figure(&s, Figure::PathRatio), Some(3.0), "over at least 1");
        // One value per objective, in order; shown with each figure's unit.
        use crate::spec::Objective::{Maximize, Minimize};
        let st = study(
            Search::Random { trials: 1 },
            vec![Maximize(Figure::SuccessRate), Minimize(Figure::ValLoss)],
        );
        assert_eq!(objective_values(&st, &s), [Some(0.25), None]);
        assert_eq!(
            show(&st, &[Some(0.25), None]),
            "SuccessRate 25.00 %, ValLoss -"
        );
    }

    #[test]
    fn a_trial_is_finished_only_at_its_newest_checkpoint_and_not_when_stopped() {
        let dir = tempfile::tempdir().expect("tmp");
        let run = dir.path().join("run");
        checkpoint_at(&run, 10);
        checkpoint_at(&run, 20);
        let all = checkpoints::list(&run);
        let (at10, at20) = (all[0].1.clone(), all[1].1.clone());
        let write = |s: &RunSummary| {
            let json = serde_json::to_vec(s).expect("json");
            std::fs::write(run.join(crate::runs::files::SUMMARY), json).expect("write");
        };
        for reason in [StopReason::Completed, StopReason::EarlyStopped] {
            let done = summary(20, reason);
            write(&done);
            assert_eq!(
                finished_summary(&run, Some(&at20)),
                Some(done),
                "{reason:?}"
            );
            assert_eq!(finished_summary(&run, None), None, "no checkpoint given");
            assert_eq!(finished_summary(&run, Some(&at10)), None, "not the newest");
        }
        // The run went on past its newest checkpoint (its worker died later).
        write(&summary(30, StopReason::Completed));
        assert_eq!(
            finished_summary(&run, Some(&at20)),
            None,
            "past the checkpoint"
        );
        // Halted at a rung or by a signal: it trains again.
        write(&summary(20, StopReason::Stopped));
        assert_eq!(finished_summary(&run, Some(&at20)), None, "stopped");
        // A gridworld run's checkpoints are numbered by episode, not step.
        let mut episodes = summary(999, StopReason::Completed);
        episodes.rl = Some(rl(20, Some(5), 5));
        write(&episodes);
        assert_eq!(finished_summary(&run, Some(&at20)), Some(episodes.clone()));
        episodes.rl = Some(rl(21, Some(5), 5));
        write(&episodes);
        assert_eq!(finished_summary(&run, Some(&at20)), None, "episode 21");
    }

    #[test]
    fn a_trial_is_the_base_named_by_its_id_with_its_settings_and_budget() {
        assert_eq!(
            trial_dir(Path::new("/s"), 7),
            Path::new("/s/trials/0007"),
            "four digits"
        );
        assert_eq!(
            trial_dir(Path::new("/s"), 12345),
            Path::new("/s/trials/12345")
        );
        let params = std::collections::BTreeMap::from([(
            "training.batch_size".to_string(),
            "17".to_string(),
        )]);
        let asha = Search::Asha {
            trials: 4,
            min_epochs: 1,
            max_epochs: 9,
            eta: 3,
        };
        let exp = trial_experiment(&study(asha, Vec::new()), 3, &params).expect("trial");
        assert_eq!(exp.name, "s-0003");
        assert_eq!(exp.training.epochs, 9, "ASHA: the full budget");
        assert_eq!(exp.training.batch_size, 17);
        let random = study(Search::Random { trials: 4 }, Vec::new());
        let exp = trial_experiment(&random, 12, &params).expect("trial");
        assert_eq!(exp.name, "s-0012");
        assert_eq!(exp.training.epochs, random.base.training.epochs);
    }

    #[test]
    fn create_refuses_epoch_searches_on_mazes_and_writes_the_base_inline() {
        use crate::spec::Objective::Maximize;
        let dir = tempfile::tempdir().expect("tmp");
        let asha = Search::Asha {
            trials: 2,
            min_epochs: 1,
            max_epochs: 3,
            eta: 3,
        };
        let maze_base = || Experiment {
            name: "maze-base".into(),
            dataset: DatasetSpec::Gridworld(Default::default()),
            ..Default::default()
        };
        let objectives = vec![Maximize(Figure::SuccessRate)];
        let seeds = crate::spec::Param::Choice(vec![
            ron::from_str("1").expect("value"),
            ron::from_str("2").expect("value"),
        ]);
        let with_space = |mut st: LoadedStudy| {
            st.spec.space.insert("seed".to_string(), seeds.clone());
            st
        };
        // Random over a maze and ASHA over images are fine.
        let mut random_maze = with_space(study(Search::Random { trials: 2 }, objectives.clone()));
        random_maze.base = maze_base();
        create(&random_maze, &dir.path().join("a")).expect("random over a maze");
        let loaded = load(&dir.path().join("a")).expect("study file");
        assert_eq!(loaded.base.name, "maze-base", "the base is written in");
        let mut asha_images = with_space(study(asha.clone(), objectives.clone()));
        asha_images.base.name = "images-base".into();
        create(&asha_images, &dir.path().join("b")).expect("ASHA over images");
        // ASHA over a maze is not.
        let mut asha_maze = with_space(study(asha, objectives));
        asha_maze.base = maze_base();
        let err = create(&asha_maze, &dir.path().join("c")).expect_err("refused");
        assert!(!err.io, "bad input");
        assert!(err.message.contains("Asha and Pbt count epochs"), "{err}");
        assert!(!dir.path().join("c").join(STUDY_FILE).exists());
        // A folder that already holds a study.
        let again = create(&random_maze, &dir.path().join("a")).expect_err("refused");
        assert!(again.message.contains("already holds a study"), "{again}");
        assert_eq!(again.to_string(), again.message);
        assert_eq!(String::from(again.clone()), again.message);
    }

    // ------------------------------------------------ trials that train
    //
    // The studies below train a two-layer net on 40 points of the playground's
    // spiral: a trial takes tens of milliseconds. Their objective is the
    // parameter count (4 * out + 1 for `model.0.Linear.out` = out), a figure
    // that is exact, so every value and progress line can be pinned.

    /// A study named `q` of `search` over `model.0.Linear.out`, the base
    /// training `epochs` epochs.
    fn points_study(search: Search, outs: &[usize], epochs: usize) -> LoadedStudy {
        let mut st = study(
            search,
            vec![crate::spec::Objective::Minimize(Figure::Parameters)],
        );
        st.spec.name = "q".into();
        st.base = crate::spec::from_ron_str(
            &format!(
                r#"(
    name: "points", seed: 1,
    dataset: Points(kind: Spiral, samples: 40, noise: 0.0, test_fraction: 0.5, features: [X1, X2]),
    model: [Linear(out: 8), Tanh, Linear(out: 1)],
    optimizer: Adam(lr: 0.03),
    training: (epochs: {epochs}, batch_size: 10, log_every_steps: 5, tensorboard: false),
)"#
            ),
            "points.ron",
        )
        .expect("a valid experiment");
        let outs = outs
            .iter()
            .map(|o| ron::from_str(&o.to_string()).expect("value"))
            .collect();
        st.spec.space.insert(
            "model.0.Linear.out".into(),
            crate::spec::Param::Choice(outs),
        );
        st
    }

    fn out_is(out: usize) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([("model.0.Linear.out".to_string(), out.to_string())])
    }

    fn run_summary(run: &Path) -> RunSummary {
        let text = std::fs::read(run.join(crate::runs::files::SUMMARY)).expect("summary");
        serde_json::from_slice(&text).expect("summary json")
    }

    /// Progress lines collected from every worker, at most `cap` of them: a
    /// worker that says more (a trial run again and again) fails its test
    /// instead of hanging it.
    struct Lines {
        lines: Mutex<Vec<String>>,
        cap: usize,
    }

    impl Lines {
        fn at_most(cap: usize) -> Self {
            Self {
                lines: Mutex::new(Vec::new()),
                cap,
            }
        }

        fn push(&self, line: String) {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            lines.push(line);
            assert!(
                lines.len() <= self.cap,
                "more lines than expected: {lines:?}"
            );
        }

        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.lines.lock().expect("lines"))
        }
    }

    /// Sets its flag when dropped: a helper thread waiting on it ends even when
    /// the work it waits for panics.
    struct SetOnDrop<'a>(&'a AtomicBool);

    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    /// Trial 0 (out `out`) asked again toward `epochs`, its outcome already in
    /// its folder: `want` again, and nothing trains (its record is as it was).
    fn outcome_again_untrained(
        dir: &Path,
        st: &LoadedStudy,
        out: usize,
        epochs: Option<usize>,
        want: &Entry,
    ) {
        let record_path = trial_dir(dir, 0).join(crate::runs::files::METRICS);
        let record = std::fs::read(&record_path).expect("record");
        let no = AtomicBool::new(false);
        let again = run_trial(dir, st, 0, &out_is(out), epochs, 1, &no).expect("done");
        assert_eq!(&again, want);
        assert_eq!(std::fs::read(&record_path).expect("record"), record);
    }

    #[test]
    fn a_trial_trains_fresh_to_its_summary_and_a_finished_one_is_not_trained_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = points_study(Search::Random { trials: 1 }, &[2], 2);
        let no = AtomicBool::new(false);
        let run = trial_dir(dir.path(), 0);
        let first = run_trial(dir.path(), &st, 0, &out_is(2), None, 1, &no).expect("trains");
        let s = run_summary(&run);
        assert_eq!(s.reason, StopReason::Completed);
        assert_eq!(
            first,
            Entry::Finished {
                id: 0,
                values: vec![Some(9.0)],
                wall_seconds: s.wall_seconds,
                epochs: 2.0,
            },
            "the trial's own settings (out 2, not the base's 8), recorded in its folder"
        );
        // Its worker died before journalling it: the summary at its newest
        // checkpoint is the outcome, and nothing trains (the record is as it was).
        outcome_again_untrained(dir.path(), &st, 2, None, &first);
    }

    #[test]
    fn an_asha_trial_reports_its_rung_then_continues_from_its_checkpoint_to_the_end() {
        let dir = tempfile::tempdir().expect("tmp");
        let asha = Search::Asha {
            trials: 1,
            min_epochs: 1,
            max_epochs: 3,
            eta: 3,
        };
        let st = points_study(asha, &[4], 1);
        let no = AtomicBool::new(false);
        let run = trial_dir(dir.path(), 0);
        let rung = run_trial(dir.path(), &st, 0, &out_is(4), Some(1), 1, &no).expect("rung");
        let s = run_summary(&run);
        assert_eq!((s.reason, s.epochs), (StopReason::Stopped, 1.0));
        assert_eq!(
            rung,
            Entry::Reported {
                id: 0,
                epochs: 1,
                values: vec![Some(17.0)],
                wall_seconds: s.wall_seconds,
            }
        );
        let steps_at_rung = s.steps;
        let end = run_trial(dir.path(), &st, 0, &out_is(4), Some(3), 1, &no).expect("end");
        let s = run_summary(&run);
        assert_eq!(
            end,
            Entry::Finished {
                id: 0,
                values: vec![Some(17.0)],
                wall_seconds: s.wall_seconds,
                epochs: 3.0,
            },
            "the full budget (max_epochs), not the base's 1 epoch"
        );
        assert_eq!(s.reason, StopReason::Completed);
        let restored: Vec<u64> = crate::runs::read_events(&run)
            .expect("record")
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Restored { step, .. } => Some(*step),
                _ => None,
            })
            .collect();
        assert_eq!(
            restored,
            [steps_at_rung],
            "continued from the rung's checkpoint"
        );
        // Asked again for the last rung (its worker died before journalling it):
        // the summary is the outcome, nothing trains.
        outcome_again_untrained(dir.path(), &st, 4, Some(3), &end);
    }

    #[test]
    fn a_rung_trial_that_stops_early_on_its_own_is_finished_at_its_epochs() {
        let dir = tempfile::tempdir().expect("tmp");
        let asha = Search::Asha {
            trials: 1,
            min_epochs: 1,
            max_epochs: 9,
            eta: 3,
        };
        let mut st = points_study(asha, &[4], 1);
        // No improvement of a whole unit: early stopping at epoch 3, before the
        // rung at epoch 5.
        st.base.training.early_stopping = Some(crate::spec::EarlyStopping {
            patience: 1,
            min_delta: 1.0,
        });
        let no = AtomicBool::new(false);
        let out = run_trial(dir.path(), &st, 0, &out_is(4), Some(5), 1, &no).expect("trains");
        let s = run_summary(&trial_dir(dir.path(), 0));
        assert_eq!(s.reason, StopReason::EarlyStopped);
        assert_eq!(
            out,
            Entry::Finished {
                id: 0,
                values: vec![Some(17.0)],
                wall_seconds: s.wall_seconds,
                epochs: 3.0,
            }
        );
    }

    #[test]
    fn an_interrupted_trial_is_released_at_a_checkpoint_with_its_rung() {
        let dir = tempfile::tempdir().expect("tmp");
        let asha = Search::Asha {
            trials: 1,
            min_epochs: 100,
            max_epochs: 300,
            eta: 3,
        };
        let st = points_study(asha, &[2], 1);
        let run = trial_dir(dir.path(), 0);
        let out = run_trial(
            dir.path(),
            &st,
            0,
            &out_is(2),
            Some(100),
            1,
            &AtomicBool::new(true),
        )
        .expect("stops");
        assert_eq!(
            out,
            Entry::Released {
                id: 0,
                epochs: Some(100)
            }
        );
        let s = run_summary(&run);
        assert_eq!(s.reason, StopReason::Stopped);
        assert!(s.epochs < 100.0, "stopped, not halted at the rung: {s:?}");
        assert_eq!(
            checkpoints::latest(&run).map(|(step, _)| step),
            Some(s.steps)
        );
    }

    #[test]
    fn a_run_that_fails_is_a_failed_trial_with_the_runs_message() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut st = points_study(Search::Random { trials: 1 }, &[2], 1);
        let missing = dir.path().join("no-such-run");
        st.base.training.init_from = Some(missing.clone());
        let no = AtomicBool::new(false);
        let out = run_trial(dir.path(), &st, 0, &out_is(2), None, 1, &no).expect("a failure");
        let reason = format!(
            "training.init_from: {} does not exist: train the run it names first \
             (`trainlab run EXPERIMENT --out {}`; a lesson's notes name the command), \
             or point init_from at a run folder that holds {}",
            missing.display(),
            missing.display(),
            crate::runs::files::WEIGHTS
        );
        assert_eq!(out, Entry::Failed { id: 0, reason });
    }

    #[test]
    fn a_trial_that_cannot_save_stops_the_worker_naming_the_study_and_how_to_resume() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = points_study(Search::Random { trials: 1 }, &[2], 1);
        let run = trial_dir(dir.path(), 0);
        std::fs::create_dir_all(&run).expect("dir");
        // This crate's tests fail every checkpoint of a run folder holding `full`
        // (train::checkpoint::tests::marked_write), as a full disk does.
        std::fs::write(run.join("full"), b"").expect("mark full");
        let no = AtomicBool::new(false);
        let err = run_trial(dir.path(), &st, 0, &out_is(2), None, 1, &no).expect_err("stops");
        assert!(err.io, "{err}");
        let prefix = "study \"q\", trial 0: ";
        assert!(err.message.starts_with(prefix), "{err}");
        let resume = format!("trainlab study resume {}", dir.path().display());
        assert!(err.message.contains(&resume), "{err}");
    }

    #[test]
    fn an_outcome_is_journalled_and_the_leaderboard_rewritten_from_every_entry() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = points_study(Search::Grid, &[2, 4], 1);
        create(&st, dir.path()).expect("study folder");
        let journal = Journal::new(dir.path());
        let done = Entry::Finished {
            id: 1,
            values: vec![Some(17.0)],
            wall_seconds: 2.5,
            epochs: 1.0,
        };
        let board = journal_outcome(&journal, dir.path(), &st, &done).expect("journalled");
        assert!(board.is_ok(), "{board:?}");
        let entries = journal.read().expect("journal");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2], done);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("leaderboard.csv")).expect("board"),
            "id,state,epochs,model.0.Linear.out,min Parameters,wall_seconds,pareto,reason\n\
             1,finished,1,4,17,2.5,true,\n\
             0,pending,0,2,,0.0,false,\n"
        );
    }

    #[test]
    fn a_grid_study_trains_each_trial_with_its_settings_and_says_how_each_ended() {
        let dir = tempfile::tempdir().expect("tmp");
        // Out 0 is refused by its settings: a failed trial.
        let st = points_study(Search::Grid, &[0, 2, 4], 2);
        create(&st, dir.path()).expect("study folder");
        let lines = Lines::at_most(3);
        let trials = work(dir.path(), Some(1), &|l| lines.push(l)).expect("works");
        let states: Vec<(usize, TrialState, Vec<Option<f64>>)> = trials
            .iter()
            .map(|t| (t.id, t.state.clone(), t.values.clone()))
            .collect();
        let TrialState::Failed(reason) = &trials[0].state else {
            panic!("{:?}", trials[0]);
        };
        assert!(reason.contains("out must be at least 1"), "{reason}");
        assert_eq!(
            states,
            [
                (0, TrialState::Failed(reason.clone()), vec![]),
                (1, TrialState::Finished, vec![Some(9.0)]),
                (2, TrialState::Finished, vec![Some(17.0)]),
            ]
        );
        assert_eq!(
            lines.take(),
            [
                format!("trial 0 failed: {reason} (model.0.Linear.out=0)"),
                "trial 1 finished: Parameters 9 (model.0.Linear.out=2)".to_string(),
                "trial 2 finished: Parameters 17 (model.0.Linear.out=4)".to_string(),
            ]
        );
        for id in 1..3 {
            let run = trial_dir(dir.path(), id);
            assert_eq!(run_summary(&run).epochs, 2.0, "trial {id}");
            assert_eq!(checkpoints::list(&run), [], "trial {id}: ended, none kept");
        }
        let board = std::fs::read_to_string(dir.path().join("leaderboard.csv")).expect("board");
        let paths = ["model.0.Linear.out".to_string()];
        assert_eq!(
            board,
            leaderboard::csv(&trials, &paths, &st.spec.objectives)
        );
    }

    #[test]
    fn asha_reports_each_rung_continues_the_best_and_stops_the_rest() {
        let dir = tempfile::tempdir().expect("tmp");
        let asha = Search::Asha {
            trials: 3,
            min_epochs: 1,
            max_epochs: 3,
            eta: 3,
        };
        let st = points_study(asha, &[2, 4, 8], 1);
        create(&st, dir.path()).expect("study folder");
        let lines = Lines::at_most(4);
        let trials = work(dir.path(), Some(1), &|l| lines.push(l)).expect("works");
        let outs: Vec<&String> = trials
            .iter()
            .map(|t| &t.params["model.0.Linear.out"])
            .collect();
        let fewest = trials
            .iter()
            .position(|t| t.params["model.0.Linear.out"] == "2")
            .expect("out 2 sampled");
        let mut want: Vec<String> = trials
            .iter()
            .map(|t| {
                let out: usize = t.params["model.0.Linear.out"].parse().expect("out");
                format!(
                    "trial {}: Parameters {} after 1 epoch(s) (model.0.Linear.out={out})",
                    t.id,
                    4 * out + 1
                )
            })
            .collect();
        want.push(format!(
            "trial {fewest} finished: Parameters 9 (model.0.Linear.out=2)"
        ));
        assert_eq!(lines.take(), want, "{outs:?}");
        for t in &trials {
            let (state, epochs) = if t.id == fewest {
                (TrialState::Finished, 3.0)
            } else {
                (TrialState::Stopped, 1.0)
            };
            assert_eq!((&t.state, t.epochs), (&state, epochs), "{t:?}");
            assert_eq!(checkpoints::list(&trial_dir(dir.path(), t.id)), [], "{t:?}");
        }
    }

    #[test]
    fn a_study_interrupted_before_it_starts_takes_no_trial() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = points_study(Search::Grid, &[2, 4], 1);
        create(&st, dir.path()).expect("study folder");
        let trials = work_until(
            dir.path(),
            Some(2),
            &|l| panic!("nothing is done, yet: {l}"),
            &AtomicBool::new(true),
        )
        .expect("works");
        assert!(
            trials.iter().all(|t| t.state == TrialState::Pending),
            "{trials:?}"
        );
        assert_eq!(trials.len(), 2);
        let entries = Journal::new(dir.path()).read().expect("journal");
        assert!(
            entries.iter().all(|e| matches!(e, Entry::Sampled { .. })),
            "{entries:?}"
        );
    }

    #[test]
    fn a_study_interrupted_mid_trial_releases_it_at_its_checkpoint() {
        let dir = tempfile::tempdir().expect("tmp");
        // Long enough to be running when the interrupt comes.
        let st = points_study(Search::Grid, &[2], 500);
        create(&st, dir.path()).expect("study folder");
        let interrupt = AtomicBool::new(false);
        let returned = AtomicBool::new(false);
        let lines = Lines::at_most(1);
        let run = trial_dir(dir.path(), 0);
        let trials = std::thread::scope(|s| {
            // Interrupts once the trial has written its first checkpoint.
            s.spawn(|| {
                while checkpoints::list(&run).is_empty() {
                    if returned.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                interrupt.store(true, Ordering::Relaxed);
            });
            let _returned = SetOnDrop(&returned);
            work_until(dir.path(), Some(1), &|l| lines.push(l), &interrupt)
        })
        .expect("works");
        assert_eq!(trials[0].state, TrialState::Released { epochs: None });
        assert_eq!(
            lines.take(),
            ["trial 0 released at its checkpoint (interrupted) (model.0.Linear.out=2)"]
        );
        assert!(run_summary(&run).epochs < 500.0);
    }

    #[test]
    fn a_board_that_cannot_be_written_stops_the_study_after_journalling_the_trial() {
        let dir = tempfile::tempdir().expect("tmp");
        let st = points_study(Search::Grid, &[2, 4], 1);
        create(&st, dir.path()).expect("study folder");
        // A folder in the leaderboard's place: no file can be renamed onto it.
        let board = dir.path().join("leaderboard.csv");
        std::fs::create_dir(&board).expect("in the way");
        let lines = Lines::at_most(0);
        let err = work(dir.path(), Some(1), &|l| lines.push(l)).expect_err("stops");
        let entries = Journal::new(dir.path()).read().expect("journal");
        assert!(
            matches!(entries.last(), Some(Entry::Finished { id: 0, .. })),
            "{entries:?}"
        );
        assert_eq!(
            entries.len(),
            4,
            "sampled twice, started, finished: {entries:?}"
        );
        assert_eq!(lines.take(), Vec::<String>::new());
        let journal = Journal::new(dir.path());
        let prefix = format!("study \"q\", trial 0: cannot write {}: ", board.display());
        let suffix = format!(
            ". The journal ({}) is whole; once the folder can be written again (free some \
             space), continue with `trainlab study resume {}`: nothing finished is run again",
            journal.path().display(),
            dir.path().display()
        );
        assert!(err.io, "{err}");
        assert!(
            err.message.starts_with(&prefix) && err.message.ends_with(&suffix),
            "{err}"
        );
    }

    /// The child of `each_trial_takes_its_share_of_the_cores_slurm_gives`: works
    /// on a Points study of `TRAINLAB_TEST_TRIALS` trials with
    /// `TRAINLAB_TEST_PARALLEL` workers (empty: the study's Auto) and prints the
    /// size of each trial's thread pool (its threads are named after the trial).
    #[test]
    #[ignore = "run by each_trial_takes_its_share_of_the_cores_slurm_gives"]
    #[cfg(target_os = "linux")]
    fn trial_pools_of_a_study_child() {
        let var = |k: &str| std::env::var(k).expect(k);
        let trials: usize = var("TRAINLAB_TEST_TRIALS").parse().expect("trials");
        let parallel = var("TRAINLAB_TEST_PARALLEL").parse::<usize>().ok();
        let outs: Vec<usize> = (1..=trials).collect();
        let st = points_study(Search::Grid, &outs, 10);
        let dir = tempfile::tempdir().expect("tmp");
        create(&st, dir.path()).expect("study folder");
        let done = AtomicBool::new(false);
        let pools = std::thread::scope(|s| {
            let sampler = s.spawn(|| {
                // How often each thread was seen with a trial's name
                // ("trainlab-q-0000-N", cut to 15 bytes by the kernel).
                let mut seen = std::collections::BTreeMap::<String, (String, usize)>::new();
                while !done.load(Ordering::Relaxed) {
                    for task in std::fs::read_dir("/proc/self/task")
                        .expect("tasks")
                        .flatten()
                    {
                        let comm =
                            std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                        if let Some(trial) = comm.trim_end().strip_prefix("trainlab-q-") {
                            let tid = task.file_name().to_string_lossy().into_owned();
                            seen.entry(tid).or_insert((trial.to_string(), 0)).1 += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                // A pool's threads live as long as its trial; a thread the run
                // starts has its parent's name only until it names itself, a
                // moment: those seen less than half as often are not the pool's.
                let mut most = std::collections::BTreeMap::<String, usize>::new();
                for (trial, n) in seen.values() {
                    let m = most.entry(trial.clone()).or_default();
                    *m = (*m).max(*n);
                }
                let mut pools = std::collections::BTreeMap::<String, usize>::new();
                for (trial, n) in seen.values() {
                    if 2 * n >= most[trial] {
                        *pools.entry(trial.clone()).or_default() += 1;
                    }
                }
                pools
            });
            let lines = Lines::at_most(trials);
            let trials = {
                let _done = SetOnDrop(&done);
                work(dir.path(), parallel, &|l| lines.push(l)).expect("works")
            };
            assert!(trials.iter().all(|t| t.state == TrialState::Finished));
            sampler.join().expect("sampler")
        });
        println!("POOLS {pools:?}");
    }

    /// A SLURM task owns `SLURM_CPUS_PER_TASK` cores (0 or none: this machine's),
    /// split evenly between the trials that run at once.
    #[test]
    #[cfg(target_os = "linux")]
    fn each_trial_takes_its_share_of_the_cores_slurm_gives() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pools = |slurm: usize, trials: usize, parallel: &str| {
            let out = std::process::Command::new(std::env::current_exe().expect("this binary"))
                .args([
                    "--exact",
                    "study::run::tests::trial_pools_of_a_study_child",
                    "--ignored",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("SLURM_CPUS_PER_TASK", slurm.to_string())
                .env("TRAINLAB_TEST_TRIALS", trials.to_string())
                .env("TRAINLAB_TEST_PARALLEL", parallel)
                .env_remove("RAYON_NUM_THREADS")
                .output()
                .expect("runs the test binary");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
                .lines()
                .find_map(|l| l.split_once("POOLS ").map(|(_, pools)| pools))
                .expect("pools")
                .to_string()
        };
        // 2 * cores + 2 over two workers: a number no other rule gives.
        let share = cores + 1;
        assert_eq!(
            pools(2 * cores + 2, 2, "2"),
            format!("{{\"0000\": {share}, \"0001\": {share}}}")
        );
        // 0 is no count: this machine's cores, all to the one trial.
        assert_eq!(pools(0, 1, ""), format!("{{\"0000\": {cores}}}"));
    }
}
