//! When a run checkpoints, and what a supervised run's `state.json` holds.
//!
//! The policy is a pure function of the settings and the position (tested with
//! plain values); the files are written by `runs::checkpoints`. The state is every
//! value the training step reads besides weights and optimizer moments, so that a
//! run continued from it is indistinguishable from one that never stopped.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::emitter::Emitter;
use super::handle::StartOptions;
use super::supervised::task::{TaskEval, TaskState};
use crate::events::TrainEvent;
use crate::runs::checkpoints::{self, CheckpointFiles};
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

/// Writes a checkpoint of the run recorded by `emitter` (none without a run
/// folder, nor once its record could not be appended) and then deletes all but
/// the newest `keep_last`. Returns whether one was written; the error says what
/// could not be written, where and why.
pub(crate) fn save(
    emitter: &Emitter,
    spec: &CheckpointSpec,
    step: u64,
    model: &HashMap<String, Tensor>,
    training: &HashMap<String, Tensor>,
    state: &impl Serialize,
) -> Result<bool, CheckpointError> {
    let Some(rec) = emitter
        .recorder
        .as_ref()
        .filter(|_| !emitter.record_failed())
    else {
        return Ok(false);
    };
    let json = serde_json::to_vec(state).map_err(|e| CheckpointError::Other(e.to_string()))?;
    let files = CheckpointFiles {
        model,
        training,
        state_json: &json,
    };
    let dir = rec.dir();
    let root = dir.join(checkpoints::DIR);
    checkpoints::write(dir, step, &files).map_err(|e| {
        CheckpointError::Write(WriteFault::io(
            format!("the checkpoint at step {step}"),
            &root.join(checkpoints::name_for(step)),
            &e,
        ))
    })?;
    // Only now that the new one is whole may older ones go; a failure to delete
    // them costs space, not work.
    if let Err(e) = checkpoints::prune(dir, spec.keep_last) {
        return Err(CheckpointError::Prune(format!(
            "could not delete older checkpoints in {}: {}",
            root.display(),
            os_words(&e)
        )));
    }
    Ok(true)
}

/// Why [`save`] did not write a checkpoint (or did, but could not tidy up).
#[derive(Debug)]
pub(crate) enum CheckpointError {
    /// The checkpoint is not on disk; older ones are as they were.
    Write(WriteFault),
    /// It was written, but older ones could not be deleted.
    Prune(String),
    /// Gathering what goes into it failed (a tensor could not be read).
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
}
