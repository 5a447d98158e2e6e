//! When a run checkpoints, and what a supervised run's `state.json` holds.
//!
//! The policy is a pure function of the settings and the position (tested with
//! plain values); the files are written by `runs::checkpoints`. The state is every
//! value the training step reads besides weights and optimizer moments, so that a
//! run continued from it is indistinguishable from one that never stopped.

use serde::{Deserialize, Serialize};

use super::supervised::task::{TaskEval, TaskState};
use crate::spec::CheckpointSpec;

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
}
