//! The worker thread's body: sets up the run record, picks the training loop for
//! the dataset kind (supervised for images, reinforcement learning for mazes), and turns every outcome (summary, error, panic) into exactly
//! one final event.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::control::Control;
use super::emitter::Emitter;
use super::events::{FailureKind, TrainEvent};
use super::handle::StartOptions;
use super::rl;
use super::steering::Steering;
use super::supervised::{images, language_model, points, text_classifier};
use crate::runs::RunRecorder;
use crate::spec::{DatasetSpec, Experiment, TextTask};

/// Why a run could not finish.
#[derive(Debug)]
pub(crate) struct RunFailure {
    /// Steps done before the failure.
    pub step: u64,
    /// Broad cause.
    pub kind: FailureKind,
    /// Human-readable reason and advice.
    pub message: String,
}

impl RunFailure {
    /// An internal error (candle, shapes) at `step`.
    pub(crate) fn at(step: u64, message: impl Into<String>) -> Self {
        Self {
            step,
            kind: FailureKind::Internal,
            message: message.into(),
        }
    }

    /// A problem with the user's setup, found before training.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self {
            step: 0,
            kind: FailureKind::BadInput,
            message: message.into(),
        }
    }

    /// The loss became NaN or infinite.
    pub(crate) fn diverged(step: u64, message: impl Into<String>) -> Self {
        Self {
            step,
            kind: FailureKind::Diverged,
            message: message.into(),
        }
    }
}

pub(crate) fn run_worker(
    exp: Experiment,
    options: StartOptions,
    emitter: &mut Emitter,
    control: Receiver<Control>,
) {
    let started = Instant::now();
    // A resumed run reopens its record only once its checkpoint has been checked
    // (see supervised::Engine::restore), so a bad checkpoint changes nothing.
    emitter.run_dir_hint.clone_from(&options.run_dir);
    if let Some(dir) = options
        .run_dir
        .as_ref()
        .filter(|_| options.resume_from.is_none())
    {
        match RunRecorder::create(dir, &exp) {
            Ok(rec) => emitter.recorder = Some(rec),
            Err(e) => {
                emitter.emit(TrainEvent::Failed {
                    step: 0,
                    kind: FailureKind::BadInput,
                    message: format!("cannot create the run folder {}: {e}", dir.display()),
                });
                return;
            }
        }
    }
    let lr = match &exp.dataset {
        DatasetSpec::Images(_) | DatasetSpec::Text(_) | DatasetSpec::Points(_) => {
            exp.optimizer.lr()
        }
        DatasetSpec::Gridworld(_) => rl::initial_lr(&exp),
    };
    let mut steering = Steering::new(control, lr);
    steering.pace = options.pace.filter(|p| *p > 0.0 && p.is_finite());
    let outcome = catch_unwind(AssertUnwindSafe(|| match &exp.dataset {
        DatasetSpec::Images(_) => images::run(&exp, &options, emitter, &mut steering, started),
        DatasetSpec::Gridworld(_) => rl::run(&exp, &options, emitter, &mut steering, started),
        DatasetSpec::Points(_) => points::run(&exp, &options, emitter, &mut steering, started),
        DatasetSpec::Text(t) => match &t.task {
            TextTask::LanguageModel(lm) => {
                language_model::run(&exp, t, lm, &options, emitter, &mut steering, started)
            }
            TextTask::Classification(c) => {
                text_classifier::run(&exp, t, c, &options, emitter, &mut steering, started)
            }
        },
    }));
    match outcome {
        Ok(Ok(summary)) => {
            if let Some(rec) = &emitter.recorder
                && let Err(e) = rec.write_summary(&summary)
            {
                emitter.emit(TrainEvent::Note {
                    step: summary.steps,
                    message: format!("could not write summary.json: {e}"),
                });
            }
            if let Some(msg) = emitter.take_record_error() {
                emitter.emit(TrainEvent::Note {
                    step: summary.steps,
                    message: msg,
                });
            }
            emitter.emit(TrainEvent::Finished(summary));
        }
        Ok(Err(failure)) => emitter.emit(TrainEvent::Failed {
            step: failure.step,
            kind: failure.kind,
            message: failure.message,
        }),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            emitter.emit(TrainEvent::Failed {
                step: 0,
                kind: FailureKind::Internal,
                message: format!("internal error in the training worker: {what}"),
            });
        }
    }
}
