//! The worker thread's body: sets up the run record (an image dataset is read on
//! a thread of its own meanwhile, `data::ImageLoad`), picks the training loop for
//! the dataset kind (supervised for images, reinforcement learning for mazes),
//! and turns every outcome (summary, error, panic) into exactly one final event.
//!
//! Contract: a run ends Finished only when everything it trained is on disk (its
//! record, its newest checkpoint, the model, the summary); otherwise it ends
//! Failed with kind Storage and a message naming what was not written, why, the
//! last whole checkpoint and the command that continues (`runs::failure_message`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::emitter::Emitter;
use super::handle::StartOptions;
use super::rl;
use super::steering::Steering;
use super::supervised::{images, language_model, points, text_classifier};
use crate::events::Control;
use crate::events::{FailureKind, RunSummary, StopReason, TrainEvent};
use crate::runs::{RunRecorder, WriteFault, failure_message};
use crate::spec::{DatasetSpec, Experiment, TextTask};

pub(crate) use super::error::RunFailure;

pub(crate) fn run_worker(
    exp: Experiment,
    options: StartOptions,
    emitter: &mut Emitter,
    control: Receiver<Control>,
) {
    let started = Instant::now();
    // Image files are read while the run folder is created (its files are
    // synced, which can take long on a busy disk) and the loop is set up.
    let mut image_data = match &exp.dataset {
        DatasetSpec::Images(spec) => Some(crate::data::ImageLoad::start(spec, exp.seed)),
        _ => None,
    };
    // A resumed run reopens its record only once its checkpoint has been checked
    // (see supervised::Engine::restore), so a bad checkpoint changes nothing.
    emitter.run_dir_hint.clone_from(&options.run_dir);
    if !open_record(&exp, &options, emitter) {
        return;
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
        DatasetSpec::Images(spec) => {
            let data = image_data
                .take()
                .unwrap_or_else(|| crate::data::ImageLoad::start(spec, exp.seed));
            images::run(&exp, &options, emitter, &mut steering, started, data)
        }
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
    report_outcome(outcome, &exp, &options, emitter);
}

/// Creates the run folder (not for a resumed run: it reopens its record once
/// its checkpoint has been checked). False when it could not be created; the
/// run has then already failed with the reason.
fn open_record(exp: &Experiment, options: &StartOptions, emitter: &mut Emitter) -> bool {
    if let Some(dir) = options
        .run_dir
        .as_ref()
        .filter(|_| options.resume_from.is_none())
    {
        match RunRecorder::create(dir, exp) {
            Ok(rec) => emitter.recorder = Some(rec),
            Err(e) => {
                let kind = if crate::util::atomic::is_no_space(&e) {
                    FailureKind::Storage
                } else {
                    FailureKind::BadInput
                };
                emitter.emit(TrainEvent::Failed {
                    step: 0,
                    kind,
                    message: format!(
                        "cannot create the run folder {}: {}",
                        dir.display(),
                        crate::util::atomic::os_words(&e)
                    ),
                });
                return false;
            }
        }
    }
    true
}

/// Turns what the training loop returned (a summary, an error or a panic) into
/// exactly one final event.
fn report_outcome(
    outcome: std::thread::Result<Result<RunSummary, RunFailure>>,
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
) {
    let run_dir = emitter.recorder.as_ref().map(|r| r.dir().to_path_buf());
    match outcome {
        Ok(Ok(summary)) => {
            let mut faults = emitter.take_faults();
            // A summary says the run is complete: only when everything else is.
            if faults.is_empty()
                && let Some(rec) = &emitter.recorder
                && let Err(e) = rec.write_summary(&summary)
            {
                let path = rec.dir().join(crate::runs::files::SUMMARY);
                faults.push(WriteFault::io("the summary", &path, &e));
            }
            match (&run_dir, faults.is_empty()) {
                (Some(dir), false) => emitter.emit(TrainEvent::Failed {
                    step: summary.steps,
                    kind: FailureKind::Storage,
                    message: failure_message(dir, &faults, options.continue_with.as_deref()),
                }),
                _ => {
                    drop_checkpoints_at_end(exp, &summary, emitter);
                    emitter.emit(TrainEvent::Finished(summary));
                }
            }
        }
        Ok(Err(failure)) => {
            let faults = emitter.take_faults();
            let message = match (&run_dir, faults.is_empty()) {
                // The record failing may be what ended the run (a loop that
                // returns an error when asked to stop).
                (Some(dir), false) => format!(
                    "{}; {}",
                    failure,
                    failure_message(dir, &faults, options.continue_with.as_deref())
                ),
                _ => failure.to_string(),
            };
            emitter.emit(TrainEvent::Failed {
                step: failure.step(),
                kind: failure.kind(),
                message,
            });
        }
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

/// `keep_last: 0`: a run that ended on its own (not stopped, so not to be
/// continued) keeps its weights and summary but no checkpoint. A failure to
/// delete costs space, not work: it is a Note.
fn drop_checkpoints_at_end(exp: &Experiment, summary: &RunSummary, emitter: &mut Emitter) {
    if exp.training.checkpoint.keep_last > 0 || summary.reason == StopReason::Stopped {
        return;
    }
    let Some(dir) = emitter.recorder.as_ref().map(|r| r.dir().to_path_buf()) else {
        return;
    };
    if let Err(e) = crate::runs::checkpoints::remove_all(&dir) {
        emitter.emit(TrainEvent::Note {
            step: summary.steps,
            message: format!(
                "keep_last 0: could not delete the checkpoints in {}: {}",
                dir.join(crate::runs::checkpoints::DIR).display(),
                crate::util::atomic::os_words(&e)
            ),
        });
    }
}
