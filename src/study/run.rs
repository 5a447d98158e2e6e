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
    let study = load_study(&dir.join(STUDY_FILE)).map_err(|e| StudyError::input(e.to_string()))?;
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

/// A study folder's study file, for `study show`.
pub fn load(dir: &Path) -> Result<LoadedStudy, SpecError> {
    load_study(&dir.join(STUDY_FILE))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::runs::checkpoints::CheckpointFiles;

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
}
