//! When a run checkpoints, who writes it, and what a supervised run's
//! `state.json` holds.
//!
//! The policy is a pure function of the settings and the position (tested with
//! plain values). [`CheckpointWriter`] copies a checkpoint on the worker thread
//! and has a second thread serialise and write it (`runs::checkpoints`: temp name,
//! sync, rename), one write in flight at most; a write that fails is reported by the
//! next checkpoint or the run's end at the latest, with the same Notes and the
//! same fault as one written on the worker, and the engines wait for it before
//! their summary. The state is every value the training step reads besides
//! weights and optimizer moments, so that a run continued from it is
//! indistinguishable from one that never stopped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::emitter::Emitter;
use super::handle::StartOptions;
use super::supervised::task::{TaskEval, TaskState};
use crate::events::TrainEvent;
use crate::runs::checkpoints::{self, CheckpointFiles, NamedTensors};
use crate::runs::{RunRecorder, WriteFault};
use crate::spec::{CheckpointSpec, Experiment};
use crate::train::ResumeError;
use crate::util::atomic::os_words;

/// Version of `state.json`; a checkpoint of another version is refused.
pub(crate) const STATE_VERSION: u32 = 1;

/// Whether a checkpoint is due after `step` steps (`steps_per_epoch` > 0).
pub(crate) fn due(spec: &CheckpointSpec, step: u64, steps_per_epoch: u64) -> bool {
    let by_steps = spec
        .every_steps
        .is_some_and(|k| step.is_multiple_of(k as u64));
    let by_epochs = spec.every_epochs.is_some_and(|k| {
        step.is_multiple_of(steps_per_epoch) && (step / steps_per_epoch).is_multiple_of(k as u64)
    });
    step > 0 && (by_steps || by_epochs)
}

/// Whether a gridworld run checkpoints after `episodes` episodes: `every_steps`
/// counts episodes, `every_epochs` counts logging intervals of `log_every` episodes.
pub(crate) fn due_episodes(spec: &CheckpointSpec, episodes: u64, log_every: u64) -> bool {
    due(spec, episodes, log_every.max(1))
}

/// Writes checkpoints on a second thread while the steps go on.
///
/// [`CheckpointWriter::save`] gathers a checkpoint on the worker thread (the
/// tensors copied to the host once, the state serialised) and hands it to the
/// writer thread, which turns the tensors into safetensors bytes (the same bytes
/// on any thread) and writes, syncs and renames the files (`runs::checkpoints`:
/// nothing half-written under a real name) and then deletes all but the newest
/// `keep_last`. At most one write is in flight: the next checkpoint, a pause and
/// the run's end first wait for it ([`CheckpointWriter::settle`]), and only then
/// is its outcome reported, through [`FailureNote`], with the Notes and the fault
/// a checkpoint written on the worker thread gave. So a failed write is noticed by
/// the next checkpoint or the end of the run at the latest, and the newest
/// checkpoint on disk is always a complete one.
#[derive(Default)]
pub(crate) struct CheckpointWriter {
    failure: FailureNote,
    /// The write the thread is doing now.
    in_flight: Option<InFlight>,
    /// The newest checkpoint that could not be written, for one more try.
    unwritten: Option<Job>,
    /// Step of the newest checkpoint written (or restored) by this session.
    newest: Option<u64>,
    /// The writer thread, started by the first checkpoint.
    thread: Option<WriterThread>,
    /// A job written on this thread (no writer thread could be started), its
    /// answer waiting for `settle`.
    answered: Option<(Job, Result<bool, CheckpointError>)>,
}

/// What the writer thread does with a job.
#[cfg(not(test))]
const WRITE: fn(&Job) -> Result<bool, CheckpointError> = write_job;
/// In this crate's tests: [`write_job`], slowed or failing for run folders
/// named so (`tests::marked_write`).
#[cfg(test)]
const WRITE: fn(&Job) -> Result<bool, CheckpointError> = tests::marked_write;

/// One checkpoint and where it goes: the tensors are host copies that the steps
/// after it leave alone, the state is serialised.
struct Job {
    run_dir: PathBuf,
    step: u64,
    /// The step its Notes carry (a gridworld's are at an env step).
    note_step: u64,
    keep_last: usize,
    model: NamedTensors,
    training: NamedTensors,
    state_json: Vec<u8>,
}

impl Job {
    /// Its folder under the real name.
    fn dir(&self) -> PathBuf {
        self.run_dir
            .join(checkpoints::DIR)
            .join(checkpoints::name_for(self.step))
    }
}

/// A job handed to the thread, not yet answered.
struct InFlight {
    step: u64,
    note_step: u64,
    dir: PathBuf,
}

struct WriterThread {
    jobs: crossbeam_channel::Sender<Job>,
    done: crossbeam_channel::Receiver<(Job, Result<bool, CheckpointError>)>,
    handle: std::thread::JoinHandle<()>,
}

impl CheckpointWriter {
    /// Waits for the previous write, then writes a checkpoint at `step` of the run
    /// recorded by `emitter` (none without a run folder, nor once its record could
    /// not be appended) from what `gather` returns: model tensors, other training
    /// tensors, the loop state. Returns once the bytes are handed to the thread;
    /// what became of them is reported by the next `save` or `settle`.
    pub(crate) fn save<S: Serialize>(
        &mut self,
        emitter: &mut Emitter,
        spec: &CheckpointSpec,
        step: u64,
        note_step: u64,
        gather: impl FnOnce(&Emitter) -> Result<(NamedTensors, NamedTensors, S), CheckpointError>,
    ) {
        // Its Notes go into the record before this checkpoint measures it.
        self.settle(emitter);
        self.unwritten = None;
        let job = gather(emitter).and_then(|(model, training, state)| {
            prepare(emitter, spec, step, note_step, &model, &training, &state)
        });
        match job {
            Ok(Some(job)) => self.start(job),
            Ok(None) => self.report(Ok(false), step, note_step, emitter),
            Err(e) => self.report(Err(e), step, note_step, emitter),
        }
    }

    /// Waits for the write in flight, if any, and reports what became of it.
    pub(crate) fn settle(&mut self, emitter: &mut Emitter) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        let answer = match self.answered.take() {
            Some(answer) => Some(answer),
            None => self.thread.as_ref().and_then(|t| t.done.recv().ok()),
        };
        let result = match answer {
            Some((job, result)) => {
                if result.is_err() {
                    self.unwritten = Some(job);
                }
                result
            }
            // The thread is gone (it panicked): the checkpoint is not on disk.
            _ => {
                self.thread = None;
                Err(CheckpointError::Write(WriteFault {
                    what: format!("the checkpoint at step {}", flight.step),
                    path: flight.dir,
                    reason: "the thread writing it stopped unexpectedly".into(),
                    no_space: false,
                }))
            }
        };
        self.report(result, flight.step, flight.note_step, emitter);
    }

    /// The step of the write in flight.
    pub(crate) fn in_flight(&self) -> Option<u64> {
        self.in_flight.as_ref().map(|f| f.step)
    }

    /// The step of the newest checkpoint known to be written (settle first).
    pub(crate) fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// A resumed run: the checkpoint it continued from is the newest.
    pub(crate) fn restored(&mut self, step: u64) {
        self.newest = Some(step);
    }

    /// Writes the newest checkpoint that could not be written once more (after
    /// `settle`; none waiting is nothing to do). Its tensors and state are those
    /// of its first try, so it is the position it was taken at.
    pub(crate) fn retry(&mut self, emitter: &mut Emitter) {
        self.settle(emitter);
        if let Some(job) = self.unwritten.take() {
            self.start(job);
        }
    }

    /// Hands `job` to the thread (started now if need be); where no thread can
    /// run, writes it here.
    fn start(&mut self, job: Job) {
        let flight = InFlight {
            step: job.step,
            note_step: job.note_step,
            dir: job.dir(),
        };
        if self.thread.is_none() {
            self.thread = spawn_writer(WRITE);
        }
        let job = match &self.thread {
            Some(t) => match t.jobs.send(job) {
                Ok(()) => {
                    self.in_flight = Some(flight);
                    return;
                }
                Err(crossbeam_channel::SendError(job)) => job,
            },
            None => job,
        };
        self.thread = None;
        let result = WRITE(&job);
        self.answered = Some((job, result));
        self.in_flight = Some(flight);
    }

    fn report(
        &mut self,
        result: Result<bool, CheckpointError>,
        step: u64,
        note_step: u64,
        emitter: &mut Emitter,
    ) {
        if self.failure.written(result, note_step, emitter) {
            self.newest = Some(step);
        }
    }
}

impl Drop for CheckpointWriter {
    /// A run that ends by a panic still leaves the write in flight finished.
    fn drop(&mut self) {
        if let Some(WriterThread { jobs, done, handle }) = self.thread.take() {
            // The thread ends once its channel is closed and its job done.
            drop(jobs);
            let _ = handle.join();
            drop(done);
        }
    }
}
/// Starts the writer thread; None when the system has no thread to give.
fn spawn_writer(write: fn(&Job) -> Result<bool, CheckpointError>) -> Option<WriterThread> {
    let (jobs, job_rx) = crossbeam_channel::bounded::<Job>(1);
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let handle = std::thread::Builder::new()
        .name("checkpoint writer".into())
        .spawn(move || {
            for job in job_rx {
                let result = write(&job);
                if done_tx.send((job, result)).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some(WriterThread { jobs, done, handle })
}

/// A checkpoint of the run recorded by `emitter` at `step`, serialised; None
/// without a run folder or once its record could not be appended.
fn prepare(
    emitter: &Emitter,
    spec: &CheckpointSpec,
    step: u64,
    note_step: u64,
    model: &NamedTensors,
    training: &NamedTensors,
    state: &impl Serialize,
) -> Result<Option<Job>, CheckpointError> {
    let Some(rec) = emitter
        .recorder
        .as_ref()
        .filter(|_| !emitter.record_failed())
    else {
        return Ok(None);
    };
    let json = serde_json::to_vec(state).map_err(|e| CheckpointError::Other(e.to_string()))?;
    Ok(Some(Job {
        run_dir: rec.dir().to_path_buf(),
        step,
        note_step,
        keep_last: spec.keep_last,
        model: host_copies(model)?,
        training: host_copies(training)?,
        state_json: json,
    }))
}

/// Copies of `tensors` in host memory of their own: the optimizer updates the
/// live ones in place while the writer thread reads these.
fn host_copies(tensors: &NamedTensors) -> Result<NamedTensors, CheckpointError> {
    let copy = |t: &candle_core::Tensor| {
        if t.device().is_cpu() {
            t.copy()
        } else {
            t.to_device(&candle_core::Device::Cpu)
        }
    };
    tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), copy(t)?)))
        .collect::<candle_core::Result<_>>()
        .map_err(|e| CheckpointError::Other(e.to_string()))
}

/// What the writer thread does with a job: the checkpoint written whole, then
/// all but the newest `keep_last` deleted. Returns whether it was written; the
/// error says what could not be written, where and why.
fn write_job(job: &Job) -> Result<bool, CheckpointError> {
    let step = job.step;
    let files = CheckpointFiles {
        model: &job.model,
        training: &job.training,
        state_json: &job.state_json,
    };
    // Serialised here (failing the way writing does: the checkpoint is not on disk).
    checkpoints::write(&job.run_dir, step, &files).map_err(|e| {
        CheckpointError::Write(WriteFault::io(
            format!("the checkpoint at step {step}"),
            &job.dir(),
            &e,
        ))
    })?;
    // Only now that the new one is whole may older ones go; a failure to delete
    // them costs space, not work.
    if let Err(e) = checkpoints::prune(&job.run_dir, job.keep_last) {
        return Err(CheckpointError::Prune(format!(
            "could not delete older checkpoints in {}: {}",
            job.run_dir.join(checkpoints::DIR).display(),
            os_words(&e)
        )));
    }
    Ok(true)
}

/// Why a checkpoint was not written (or was, but could not tidy up).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    /// The checkpoint is not on disk; older ones are as they were.
    #[error("could not write {0}")]
    Write(WriteFault),
    /// It was written, but older ones could not be deleted.
    #[error("{0}")]
    Prune(String),
    /// Gathering what goes into it failed (a tensor could not be read).
    #[error("could not make a checkpoint: {0}")]
    Other(String),
}

impl From<String> for CheckpointError {
    fn from(message: String) -> Self {
        Self::Other(message)
    }
}

/// Reports checkpoints that could not be written: each failure in a Note (the
/// next checkpoint tries again), and the newest one, if still unwritten when the
/// run ends, as a fault that fails the run.
#[derive(Debug, Default)]
pub(crate) struct FailureNote {
    /// A checkpoint failed since the last one written.
    failing: bool,
}

impl FailureNote {
    /// Whether `result` (of [`save`]) wrote a checkpoint; reports a failure.
    pub(crate) fn written(
        &mut self,
        result: Result<bool, CheckpointError>,
        step: u64,
        emitter: &mut Emitter,
    ) -> bool {
        let message = match result {
            Ok(written) => {
                if written && std::mem::replace(&mut self.failing, false) {
                    emitter.checkpoint_fault = None;
                    emitter.emit(TrainEvent::Note {
                        step,
                        message: format!("checkpoint at step {step} written"),
                    });
                }
                return written;
            }
            Err(CheckpointError::Prune(message)) => {
                emitter.emit(TrainEvent::Note { step, message });
                return true;
            }
            Err(CheckpointError::Write(fault)) => {
                let kept = match emitter
                    .recorder
                    .as_ref()
                    .and_then(|r| checkpoints::latest(r.dir()))
                {
                    Some((s, _)) => format!("the one of step {s} is kept"),
                    None => "there is none older".into(),
                };
                let message =
                    format!("could not write {fault}; {kept}, and the next checkpoint tries again");
                emitter.checkpoint_fault = Some(fault);
                message
            }
            Err(CheckpointError::Other(e)) => {
                format!("could not make a checkpoint at step {step}: {e}")
            }
        };
        self.failing = true;
        emitter.emit(TrainEvent::Note { step, message });
        false
    }
}

/// The length of the run's record right now (what a checkpoint notes).
pub(crate) fn record_length(emitter: &Emitter) -> u64 {
    emitter.recorder.as_ref().map_or(0, |r| r.metrics_bytes())
}

/// After a checkpoint in `checkpoint` was restored: reopens the run's record where
/// the checkpoint left it and marks the place with a Restored event.
pub(crate) fn continue_record(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    metrics_bytes: u64,
    step: u64,
    checkpoint: &Path,
) -> Result<(), ResumeError> {
    if let Some(run_dir) = &options.run_dir {
        let rec = RunRecorder::reopen(run_dir, exp, metrics_bytes).map_err(ResumeError::Record)?;
        emitter.recorder = Some(rec);
    }
    emitter.emit(TrainEvent::Restored {
        step,
        checkpoint: checkpoint.display().to_string(),
    });
    Ok(())
}

/// Everything a supervised run needs, besides tensors, to continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EngineState {
    pub version: u32,
    /// What kind of run wrote it ("images", "text classification", "language model").
    pub kind: String,
    pub step: u64,
    /// Steps per epoch when written (a resume with another batch size is refused).
    pub steps_per_epoch: u64,
    /// Samples (or tokens) trained on so far.
    pub items: u64,
    pub train_secs: f64,
    pub wall_secs: f64,
    pub dropout_rng: [u64; 4],
    pub optimizer_steps: u64,
    pub peak_lr: f64,
    pub lr_changes: Vec<(u64, f64)>,
    /// The learning rate the experiment file set (scheduled changes included)
    /// when written: a resume whose file says otherwise (`--set optimizer.lr`)
    /// takes the file's. None in checkpoints written before it was kept.
    #[serde(default)]
    pub file_lr: Option<f64>,
    /// Early stopping: best validation loss (None: none yet) and evaluations since.
    pub stopper: Option<(Option<f64>, usize)>,
    /// Loss watch: the first logged loss and whether it has warned.
    pub watch: (Option<f64>, bool),
    /// Sums of this epoch's logged losses and accuracies, weighted by steps.
    pub epoch_loss: (f64, u64),
    pub epoch_acc: (f64, u64),
    pub last_train: Option<(f64, f64)>,
    pub last_val: Option<TaskEval>,
    /// Length of `metrics.jsonl` when written.
    pub metrics_bytes: u64,
    pub task: TaskState,
    /// F16 runs: the loss scaler (None for other precisions and in checkpoints
    /// written before mixed precision existed).
    #[serde(default)]
    pub loss_scaler: Option<super::loss_scale::LossScaler>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(every_epochs: Option<usize>, every_steps: Option<usize>) -> CheckpointSpec {
        CheckpointSpec {
            every_epochs,
            every_steps,
            keep_last: 2,
        }
    }

    #[test]
    fn due_by_epochs_steps_or_both() {
        let cases: &[(CheckpointSpec, u64, bool, &str)] = &[
            (spec(Some(1), None), 10, true, "end of epoch 1"),
            (spec(Some(1), None), 15, false, "mid-epoch"),
            (spec(Some(2), None), 10, false, "epoch 1 of every 2"),
            (spec(Some(2), None), 20, true, "epoch 2 of every 2"),
            (spec(None, Some(3)), 9, true, "every 3 steps"),
            (spec(None, Some(3)), 10, false, "not a multiple of 3"),
            (spec(Some(1), Some(7)), 7, true, "steps rule in mid-epoch"),
            (spec(None, None), 10, false, "off"),
            (spec(Some(1), Some(1)), 0, false, "nothing trained yet"),
        ];
        for (s, step, want, what) in cases {
            assert_eq!(due(s, *step, 10), *want, "{what}: step {step}, {s:?}");
        }
    }

    #[test]
    fn gridworld_checkpoints_count_episodes_and_logging_intervals() {
        let cases: &[(CheckpointSpec, u64, u64, bool, &str)] = &[
            (
                spec(None, Some(50)),
                100,
                20,
                true,
                "every 50 episodes, at 100",
            ),
            (
                spec(None, Some(50)),
                120,
                20,
                false,
                "every 50 episodes, at 120",
            ),
            (
                spec(Some(2), None),
                40,
                20,
                true,
                "every 2 logging intervals of 20",
            ),
            (
                spec(Some(2), None),
                20,
                20,
                false,
                "one logging interval of the 2",
            ),
            (
                spec(Some(1), None),
                7,
                0,
                true,
                "logging every 0 episodes counts as every 1",
            ),
            (spec(None, None), 100, 20, false, "off"),
            (spec(Some(1), Some(1)), 0, 20, false, "no episode yet"),
        ];
        for (s, episodes, log_every, want, what) in cases {
            assert_eq!(
                due_episodes(s, *episodes, *log_every),
                *want,
                "{what}: {episodes} episodes, log every {log_every}, {s:?}"
            );
        }
    }

    /// The Notes an emitter sent since the last call, as (step, message).
    fn notes(rx: &crossbeam_channel::Receiver<TrainEvent>) -> Vec<(u64, String)> {
        rx.try_iter()
            .filter_map(|e| match e {
                TrainEvent::Note { step, message } => Some((step, message)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_failed_checkpoint_is_noted_and_faults_the_run_until_one_is_written() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut em = Emitter::new(tx, 64);
        let mut note = FailureNote::default();
        // Written while nothing failed: written, and nothing to say.
        assert!(note.written(Ok(true), 10, &mut em));
        assert_eq!(notes(&rx), []);
        // None to write (no run folder): not written, not a failure.
        assert!(!note.written(Ok(false), 20, &mut em));
        assert_eq!(notes(&rx), []);
        assert_eq!(em.checkpoint_fault, None);
        // The disk is full: not written, said in a Note, kept as the run's fault.
        let fault = WriteFault {
            what: "the checkpoint at step 30".into(),
            path: "/r/checkpoints/step-0000000030".into(),
            reason: "no space left on device".into(),
            no_space: true,
        };
        assert!(!note.written(Err(CheckpointError::Write(fault.clone())), 30, &mut em));
        assert_eq!(
            notes(&rx),
            [(
                30,
                "could not write the checkpoint at step 30 (/r/checkpoints/step-0000000030): \
                 no space left on device; there is none older, and the next checkpoint tries again"
                    .to_string()
            )]
        );
        assert_eq!(em.checkpoint_fault.as_ref(), Some(&fault));
        // Nothing written at the next one either (the record stopped): still failing.
        assert!(!note.written(Ok(false), 35, &mut em));
        assert_eq!(notes(&rx), []);
        assert_eq!(em.checkpoint_fault.as_ref(), Some(&fault));
        // The next one is written: the fault is gone, and a Note says so, once.
        assert!(note.written(Ok(true), 40, &mut em));
        assert_eq!(
            notes(&rx),
            [(40, "checkpoint at step 40 written".to_string())]
        );
        assert!(note.written(Ok(true), 50, &mut em));
        assert_eq!(notes(&rx), []);
        assert_eq!(em.take_faults(), []);
        // Written, but older ones stay: written, with the reason in a Note.
        let prune = "could not delete older checkpoints in /r/checkpoints: permission denied";
        assert!(note.written(Err(CheckpointError::Prune(prune.into())), 60, &mut em));
        assert_eq!(notes(&rx), [(60, prune.to_string())]);
        // Nothing to write (a tensor unreadable): not written, noted, no file fault;
        // the next one written says so.
        assert!(!note.written(Err(CheckpointError::Other("no tensor".into())), 70, &mut em));
        assert_eq!(
            notes(&rx),
            [(
                70,
                "could not make a checkpoint at step 70: no tensor".to_string()
            )]
        );
        assert_eq!(em.checkpoint_fault, None);
        assert!(note.written(Ok(true), 80, &mut em));
        assert_eq!(
            notes(&rx),
            [(80, "checkpoint at step 80 written".to_string())]
        );
    }
    // ------------------------------------------------ the writer thread

    /// The writer thread's job in these tests: [`write_job`], except for run
    /// folders whose name asks otherwise: `slow-checkpoints` waits 200 ms first
    /// (the steps go on meanwhile), `checkpoints-fail-from-<N>` fails from step
    /// N on as a full disk does, and a run folder holding a file `full` fails
    /// while it is there.
    pub(super) fn marked_write(job: &Job) -> Result<bool, CheckpointError> {
        let name = job
            .run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.contains("slow-checkpoints") {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let from = name
            .split("checkpoints-fail-from-")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok());
        if from.is_some_and(|n| job.step >= n) || job.run_dir.join("full").exists() {
            return Err(CheckpointError::Write(WriteFault::io(
                format!("the checkpoint at step {}", job.step),
                &job.dir(),
                &std::io::Error::from_raw_os_error(28),
            )));
        }
        write_job(job)
    }

    fn experiment(text: &str) -> Experiment {
        crate::spec::from_ron_str(text, "test.ron").expect("a valid experiment")
    }

    /// Four epochs of ten steps on a spiral, a checkpoint after each.
    const POINTS: &str = r#"(
    name: "points", seed: 1,
    dataset: Points(kind: Spiral, samples: 200, noise: 0.0, test_fraction: 0.5, features: [X1, X2]),
    model: [Linear(out: 8), Tanh, Linear(out: 1)],
    optimizer: Adam(lr: 0.03),
    training: (epochs: 4, batch_size: 10, log_every_steps: 5, tensorboard: false),
)"#;

    /// An emitter recording into a new run folder `dir`.
    fn recording(dir: &Path) -> (Emitter, crossbeam_channel::Receiver<TrainEvent>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut em = Emitter::new(tx, 1024);
        let rec = RunRecorder::create(dir, &experiment(POINTS)).expect("run folder");
        em.recorder = Some(rec);
        (em, rx)
    }

    /// What a checkpoint of `step` holds in these tests.
    fn gather_at(
        step: u64,
    ) -> impl FnOnce(&Emitter) -> Result<(NamedTensors, NamedTensors, serde_json::Value), CheckpointError>
    {
        move |em| {
            let t = candle_core::Tensor::new(&[step as f32, 2.0], &candle_core::Device::Cpu)
                .map_err(|e| e.to_string())?;
            let model = NamedTensors::from([("w".to_string(), t)]);
            let state = serde_json::json!({ "step": step, "metrics_bytes": record_length(em) });
            Ok((model, NamedTensors::new(), state))
        }
    }

    fn keeping(keep_last: usize) -> CheckpointSpec {
        CheckpointSpec {
            every_epochs: Some(1),
            every_steps: None,
            keep_last,
        }
    }

    /// The steps of the checkpoints on disk, each read back whole.
    fn on_disk(run: &Path) -> Vec<u64> {
        checkpoints::list(run)
            .into_iter()
            .map(|(step, dir)| {
                let (back, state): (_, serde_json::Value) =
                    checkpoints::read(&dir, &candle_core::Device::Cpu).expect("whole");
                assert_eq!(state["step"], step, "{}", dir.display());
                let w = back.model["w"].to_vec1::<f32>().expect("w");
                assert_eq!(w, vec![step as f32, 2.0], "{}", dir.display());
                step
            })
            .collect()
    }

    /// A write on the thread is not waited for by `save`; `settle` waits for it,
    /// and only then is it on disk and counted as the newest.
    #[test]
    fn save_hands_the_write_over_and_settle_waits_for_it() {
        let root = tempfile::tempdir().expect("tmp");
        let run = root.path().join("slow-checkpoints");
        let (mut em, rx) = recording(&run);
        let mut w = CheckpointWriter::default();
        w.save(&mut em, &keeping(2), 10, 10, gather_at(10));
        assert_eq!(w.in_flight(), Some(10), "handed to the thread");
        assert_eq!(w.newest(), None, "not known to be written yet");
        w.settle(&mut em);
        assert_eq!(w.in_flight(), None);
        assert_eq!(w.newest(), Some(10));
        assert_eq!(on_disk(&run), [10], "whole once settled");
        // The next one waits for the one before; keep_last prunes behind it.
        for step in [20, 30] {
            w.save(&mut em, &keeping(2), step, step, gather_at(step));
        }
        w.settle(&mut em);
        assert_eq!(on_disk(&run), [20, 30]);
        assert_eq!(notes(&rx), [], "nothing failed, nothing to say");
        assert_eq!(em.take_faults(), []);
    }

    /// The writer thread serialises the copies `save` made: weights the next
    /// steps change in place while the write waits are written as they were.
    #[test]
    fn a_checkpoint_holds_the_tensors_as_they_were_when_saved() {
        let root = tempfile::tempdir().expect("tmp");
        let run = root.path().join("slow-checkpoints");
        let (mut em, rx) = recording(&run);
        let cpu = candle_core::Device::Cpu;
        let var = candle_core::Var::new(&[10f32, 2.0], &cpu).expect("var");
        let live = var.as_tensor().clone();
        let mut w = CheckpointWriter::default();
        w.save(&mut em, &keeping(2), 10, 10, move |em| {
            let state = serde_json::json!({ "step": 10, "metrics_bytes": record_length(em) });
            Ok((
                NamedTensors::from([("w".to_string(), live)]),
                NamedTensors::new(),
                state,
            ))
        });
        assert_eq!(w.in_flight(), Some(10), "handed to the (slow) thread");
        // The next step's update, in place, while the write sleeps.
        let next = candle_core::Tensor::new(&[99f32, 99.0], &cpu).expect("tensor");
        var.set(&next).expect("set");
        w.settle(&mut em);
        assert_eq!(on_disk(&run), [10], "written with the values saved");
        assert_eq!(notes(&rx), []);
    }

    /// A write that fails on the thread is reported by the next checkpoint (or
    /// `settle`) with the Note and the fault of one written on the worker; the
    /// next one written clears it.
    #[test]
    fn a_write_failing_on_the_writer_thread_faults_the_run_until_one_is_written() {
        let root = tempfile::tempdir().expect("tmp");
        let run = root.path().join("r");
        let (mut em, rx) = recording(&run);
        let mut w = CheckpointWriter::default();
        w.save(&mut em, &keeping(2), 10, 10, gather_at(10));
        w.settle(&mut em);
        assert_eq!(w.newest(), Some(10));
        std::fs::write(run.join("full"), b"").expect("mark full");
        w.save(&mut em, &keeping(2), 20, 20, gather_at(20));
        assert_eq!(notes(&rx), [], "20 is not answered yet");
        assert_eq!(em.checkpoint_fault, None);
        // 20 failed on the thread: said by the next checkpoint, before its own.
        w.save(&mut em, &keeping(2), 30, 30, gather_at(30));
        let want20 = format!(
            "could not write the checkpoint at step 20 ({}): no space left on device; \
             the one of step 10 is kept, and the next checkpoint tries again",
            run.join("checkpoints")
                .join(checkpoints::name_for(20))
                .display()
        );
        assert_eq!(notes(&rx), [(20, want20)]);
        let fault = em.checkpoint_fault.clone().expect("the run's fault");
        assert!(
            fault.no_space && fault.what.ends_with("step 20"),
            "{fault:?}"
        );
        // 30 fails too: said when settled (the run's end), the fault is 30's.
        w.settle(&mut em);
        assert_eq!(notes(&rx).len(), 1);
        let fault = em.checkpoint_fault.clone().expect("the run's fault");
        assert!(fault.what.ends_with("step 30"), "{fault:?}");
        assert_eq!(on_disk(&run), [10]);
        // Room again: the next one is written, the fault is gone, a Note says so.
        std::fs::remove_file(run.join("full")).expect("unmark");
        w.save(&mut em, &keeping(2), 40, 40, gather_at(40));
        w.settle(&mut em);
        assert_eq!(
            notes(&rx),
            [(40, "checkpoint at step 40 written".to_string())]
        );
        assert_eq!(em.take_faults(), []);
        assert_eq!(on_disk(&run), [10, 40]);
    }

    /// `retry` writes the bytes of the failed try: the position it was taken at.
    #[test]
    fn retry_writes_the_failed_checkpoint_as_it_was_taken() {
        let root = tempfile::tempdir().expect("tmp");
        let run = root.path().join("r");
        let (mut em, rx) = recording(&run);
        let mut w = CheckpointWriter::default();
        std::fs::write(run.join("full"), b"").expect("mark full");
        w.save(&mut em, &keeping(2), 10, 10, gather_at(10));
        w.settle(&mut em);
        assert_eq!(notes(&rx).len(), 1, "the failure");
        let taken_at = record_length(&em);
        std::fs::remove_file(run.join("full")).expect("unmark");
        w.retry(&mut em);
        w.settle(&mut em);
        assert_eq!(w.newest(), Some(10));
        assert_eq!(on_disk(&run), [10]);
        let dir = checkpoints::list(&run).pop().expect("one").1;
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(checkpoints::STATE)).expect("state"))
                .expect("json");
        assert!(
            state["metrics_bytes"].as_u64() < Some(taken_at),
            "the record length of the first try, not of now: {state}"
        );
        assert_eq!(em.take_faults(), []);
    }

    /// Runs `text` into `run` and returns its events, checking at the moment
    /// the final event arrives what is on disk.
    fn run_and_look(text: &str, run: &Path) -> (Vec<TrainEvent>, Vec<u64>, Vec<String>) {
        let handle = crate::train::start(
            experiment(text),
            crate::train::StartOptions {
                run_dir: Some(run.to_path_buf()),
                ..Default::default()
            },
        );
        let mut events = Vec::new();
        let mut seen = None;
        for e in handle.events().iter() {
            let last = matches!(e, TrainEvent::Finished(_) | TrainEvent::Failed { .. });
            events.push(e);
            if last {
                let hidden: Vec<String> = std::fs::read_dir(run.join(checkpoints::DIR))
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| n.starts_with('.'))
                            .collect()
                    })
                    .unwrap_or_default();
                let steps: Vec<u64> = checkpoints::list(run).iter().map(|(s, _)| *s).collect();
                seen = Some((steps, hidden));
                break;
            }
        }
        handle.join();
        let (steps, hidden) = seen.expect("a final event");
        (events, steps, hidden)
    }

    /// The run's end waits for the write in flight: when Finished arrives the
    /// final checkpoint is on disk, whole, and nothing is being written.
    #[test]
    fn a_run_ends_only_once_its_last_checkpoint_is_written() {
        let root = tempfile::tempdir().expect("tmp");
        let run = root.path().join("slow-checkpoints");
        let (events, steps, hidden) = run_and_look(POINTS, &run);
        assert!(
            matches!(events.last(), Some(TrainEvent::Finished(s)) if s.steps == 40),
            "{:?}",
            events.last()
        );
        assert_eq!(steps, [30, 40], "keep_last 2, the final one written");
        assert_eq!(hidden, Vec::<String>::new(), "no write in progress");
        for (_, dir) in checkpoints::list(&run) {
            checkpoints::read::<EngineState>(&dir, &candle_core::Device::Cpu)
                .expect("a whole checkpoint");
        }
    }

    /// The last checkpoint failing on the writer thread (still in flight when
    /// the steps end, and failing again when tried once more) fails the run
    /// with the message a failure on the worker gave.
    #[test]
    fn a_last_checkpoint_failing_on_the_writer_thread_fails_the_run() {
        let root = tempfile::tempdir().expect("tmp");
        let run = root.path().join("slow-checkpoints-fail-from-40");
        let (events, steps, _) = run_and_look(POINTS, &run);
        let Some(TrainEvent::Failed { kind, message, .. }) = events.last() else {
            panic!("the run must fail: {:?}", events.last());
        };
        assert_eq!(*kind, crate::events::FailureKind::Storage);
        for part in [
            "could not save what it trained: the checkpoint at step 40",
            "no space left on device",
            &checkpoints::name_for(30),
            "trainlab resume",
        ] {
            assert!(message.contains(part), "{part:?} missing from: {message}");
        }
        assert_eq!(steps, [20, 30]);
        assert!(!run.join(crate::runs::files::SUMMARY).exists());
        let failures = events
            .iter()
            .filter(|e| {
                matches!(e, TrainEvent::Note { step: 40, message }
                    if message.starts_with("could not write the checkpoint at step 40"))
            })
            .count();
        assert_eq!(failures, 2, "the try in the loop and the one at the end");
    }
}
