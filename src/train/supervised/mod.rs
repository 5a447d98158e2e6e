//! The one supervised training engine. A [`task::Task`] says how batches are drawn
//! and scored and how splits are evaluated (images, text classification, language
//! models); the engine owns everything else, the same way for all of them: the
//! step loop, learning-rate schedule, clipping, optimizer, Step events read back
//! only when due, the loss watch, eval cadence and early stopping, probes, pauses,
//! checkpoints and resuming, the test pass, the saved weights and the summary.
//!
//! Contract: a run stopped after any step and continued from its checkpoint
//! (`StartOptions::resume_from`) trains on the same batches with the same dropout
//! masks and the same optimizer state as one that never stopped, so its per-step
//! losses and final figures are identical (same kernels and thread count).

pub(crate) mod images;
pub(crate) mod language_model;
pub(crate) mod layer_stats;
pub(crate) mod points;
pub(crate) mod task;
pub(crate) mod text_classifier;
pub(crate) mod text_setup;

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::Var;

use self::task::{Task, TaskEval};
use super::checkpoint::{self, EngineState, STATE_VERSION};
use super::clip::clip_scale;
use super::early_stopping::EarlyStopper;
use super::emitter::Emitter;
use super::handle::StartOptions;
use super::loss_scale::{INITIAL_SCALE, LossScaler};
use super::loss_watch::LossWatch;
use super::metrics::StepAccumulator;
use super::optim::Optimizer;
use super::precision::{grads_finite, unscaled};
use super::schedule::{decay_steps, lr_at};
use super::steering::Steering;
use super::worker::RunFailure;
use crate::events::{EvalMetrics, RunSummary, Split, StepMetrics, StopReason, TrainEvent};
use crate::runs::checkpoints;
use crate::spec::{Experiment, Precision};
use crate::train::ResumeError;
use crate::util::memory::peak_rss_bytes;
use crate::util::rng::Rng;

/// `training.regularization`'s term: over the weight matrices (rank >= 2), not
/// biases or norms.
fn penalty(
    r: &crate::spec::Regularization,
    vars: &[Var],
    device: &candle_core::Device,
) -> candle_core::Result<candle_core::Tensor> {
    use crate::spec::RegularizationKind;
    let mut total: Option<candle_core::Tensor> = None;
    for v in vars.iter().filter(|v| v.rank() >= 2) {
        let term = match r.kind {
            RegularizationKind::L1 => v.as_tensor().abs()?.sum_all()?,
            RegularizationKind::L2 => (v.as_tensor().sqr()?.sum_all()? * 0.5)?,
        };
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    match total {
        Some(t) => t * r.rate,
        None => candle_core::Tensor::new(0f32, device),
    }
}

/// A pause longer than this writes a checkpoint (a short one does not).
const PAUSE_BEFORE_CHECKPOINT: Duration = Duration::from_secs(2);

/// Turns a candle error into a failure at `step`.
pub(crate) fn at(step: u64) -> impl Fn(candle_core::Error) -> RunFailure {
    move |source| RunFailure::Candle {
        step,
        context: format!("training error at step {step}"),
        source,
    }
}

/// What the engine needs to know about the run besides its task.
pub(crate) struct RunContext<'a> {
    pub exp: &'a Experiment,
    pub options: &'a StartOptions,
    /// Names the kind of run in checkpoints ("images", ...).
    pub kind: &'static str,
    pub started: Instant,
}

/// Trains `task`'s model (only `vars` are updated) and returns the summary.
/// What every kind's `run` does: build its task with `setup`, then train it.
pub(crate) fn run_task<T: Task>(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
    kind: &'static str,
    setup: impl FnOnce(&mut Emitter) -> Result<(T, Vec<Var>), RunFailure>,
) -> Result<RunSummary, RunFailure> {
    let (mut task, vars) = setup(emitter)?;
    let ctx = RunContext {
        exp,
        options,
        kind,
        started,
    };
    train(&ctx, &mut task, &vars, emitter, steering)
}

pub(crate) fn train<T: Task>(
    ctx: &RunContext<'_>,
    task: &mut T,
    vars: &[Var],
    emitter: &mut Emitter,
    steering: &mut Steering,
) -> Result<RunSummary, RunFailure> {
    let exp = ctx.exp;
    let mut opt = Optimizer::new(&exp.optimizer, vars, ctx.options.kernels);
    let steps_per_epoch = task.steps_per_epoch().max(1);
    let t = &exp.training;
    if let Some((_, v)) = task.model().params().first() {
        crate::model::seed_device(v.device(), exp.seed).map_err(at(0))?;
    }
    let changes = crate::spec::scheduled_optimizers(exp)
        .map_err(|e| RunFailure::input(e.to_string()))?
        .into_iter()
        .map(|(at, spec)| match at {
            crate::spec::ChangeAt::Epoch(epoch) => (epoch as u64 * steps_per_epoch, spec),
            crate::spec::ChangeAt::Step(step) => (step, spec),
        })
        .collect();
    let control = super::schedule::LrSteerer::for_run(exp, ctx.options.lr_agent.clone())
        .map_err(RunFailure::input)?;
    let mut engine = Engine {
        ctx,
        changes,
        control,
        masks: None,
        steps_per_epoch,
        total_steps: match &ctx.options.lr_sweep {
            Some(lrs) => lrs.len() as u64,
            None => steps_per_epoch * t.epochs as u64,
        },
        decay_steps: decay_steps(&exp.schedule, t.epochs, steps_per_epoch),
        step: 0,
        items: 0,
        acc: StepAccumulator::default(),
        interval_secs: 0.0,
        train_secs: 0.0,
        wall_before: 0.0,
        epoch_loss: (0.0, 0),
        epoch_acc: (0.0, 0),
        last_train: None,
        last_val: None,
        last_val_step: None,
        stopper: t.early_stopping.as_ref().map(EarlyStopper::new),
        watch: LossWatch::default(),
        dropout: Rng::derive(exp.seed, "dropout"),
        checkpoints: checkpoint::CheckpointWriter::default(),
        scaler: (t.precision == Precision::F16)
            .then(|| LossScaler::new(ctx.options.initial_loss_scale.unwrap_or(INITIAL_SCALE))),
    };
    if let Some(dir) = &ctx.options.resume_from {
        engine.restore(task, &mut opt, steering, emitter, dir)?;
    }
    if let Some(p) = &t.prune {
        let resuming = ctx.options.resume_from.is_some();
        let (masks, message) = super::prune::Masks::apply(task.model(), &exp.model, p, resuming)
            .map_err(at(engine.step))?;
        emitter.emit(TrainEvent::Note {
            step: engine.step,
            message,
        });
        engine.masks = Some(masks);
    }
    let outcome = engine
        .run_steps(task, &mut opt, vars, emitter, steering)
        .and_then(|reason| engine.finish(task, &opt, emitter, steering, reason));
    // However the run ended, a checkpoint still being written is waited for and
    // its failure becomes the run's fault before the worker reports the end.
    engine.checkpoints.settle(emitter);
    outcome
}

/// The engine's state while a run trains.
struct Engine<'a> {
    ctx: &'a RunContext<'a>,
    /// `schedule.changes`: (first step, optimizer settings from then on).
    changes: Vec<(u64, crate::spec::OptimizerSpec)>,
    /// A learned controller steering the lr (a study episode's agent, or
    /// `schedule.decay: Controlled`).
    control: Option<super::schedule::LrSteerer>,
    /// `training.prune`: weights held at zero after every step.
    masks: Option<super::prune::Masks>,
    steps_per_epoch: u64,
    total_steps: u64,
    /// Steps the lr decay is planned over (less than `total_steps` in an
    /// extended run: the lr then stays where the plan ended).
    decay_steps: u64,
    step: u64,
    /// Samples (or tokens) trained on.
    items: u64,
    acc: StepAccumulator,
    /// Training seconds since the last Step event.
    interval_secs: f64,
    /// Training seconds in total (no eval, no pauses), across resumes.
    train_secs: f64,
    /// Wall seconds of the sessions before a resume.
    wall_before: f64,
    /// Sums of this epoch's logged losses and accuracies, weighted by steps.
    epoch_loss: (f64, u64),
    epoch_acc: (f64, u64),
    last_train: Option<(f64, f64)>,
    last_val: Option<TaskEval>,
    /// The step of `last_val`, when this session measured it.
    last_val_step: Option<u64>,
    stopper: Option<EarlyStopper>,
    watch: LossWatch,
    dropout: Rng,
    /// Writes checkpoints on a second thread; knows the newest one written.
    checkpoints: checkpoint::CheckpointWriter,
    /// F16 runs: the dynamic loss scale (Bf16 and F32 need none).
    scaler: Option<LossScaler>,
}

impl Engine<'_> {
    fn run_steps<T: Task>(
        &mut self,
        task: &mut T,
        opt: &mut Optimizer,
        vars: &[Var],
        emitter: &mut Emitter,
        steering: &mut Steering,
    ) -> Result<StopReason, RunFailure> {
        let exp = self.ctx.exp;
        let t = &exp.training;
        let warmer = crate::util::threads::PoolWarmer::new();
        while self.step < self.total_steps {
            let shared: &T = task;
            let answer = &mut |p: &super::Probe, s| shared.answer(p, s);
            if steering.poll_pausable(self.step, emitter, answer)
                && steering.wait_paused(self.step, emitter, answer, Some(PAUSE_BEFORE_CHECKPOINT))
            {
                self.checkpoint(shared, opt, emitter, steering);
                // On disk before the pause goes on (the run may be quit there).
                self.checkpoints.settle(emitter);
                steering.wait_paused(self.step, emitter, answer, None);
            }
            let options = self.ctx.options;
            let halt = options.halt_after_step.is_some_and(|h| self.step >= h)
                || options
                    .halt_after_epochs
                    .is_some_and(|e| self.step >= e as u64 * self.steps_per_epoch);
            if steering.stop || halt {
                self.flush_step(emitter, steering.peak_lr)?;
                return Ok(StopReason::Stopped);
            }
            if !steering.paced_ready() {
                continue;
            }
            let index = (self.step % self.steps_per_epoch) as usize;
            self.apply_scheduled_change(opt, steering, emitter);
            if index == 0 {
                task.begin_epoch();
                self.epoch_loss = (0.0, 0);
                self.epoch_acc = (0.0, 0);
            }
            let began = Instant::now();
            warmer.warm();
            let lr = self.lr(steering.peak_lr, self.step);
            let step = self.step;
            let batch = task
                .train_batch(index, &mut self.dropout)
                .map_err(at(step))?;
            (|| {
                let loss = match &t.regularization {
                    Some(r) => (&batch.loss + penalty(r, vars, batch.loss.device())?)?,
                    None => batch.loss.clone(),
                };
                // F16: backward runs on the loss times the scale; the clip limit is
                // scaled alike and the factor the update applies divides it out again.
                let loss_scale = self.scaler.map_or(1.0, |s| s.scale);
                let grads = if self.scaler.is_some() {
                    crate::model::backward(&(loss * loss_scale)?)?
                } else {
                    crate::model::backward(&loss)?
                };
                let clip = t.grad_clip_norm.map(|c| c * loss_scale);
                let scale = clip_scale(vars, &grads, clip)?;
                let apply = match &mut self.scaler {
                    Some(s) => s.update(grads_finite(vars, &grads)?),
                    None => true,
                };
                if apply {
                    opt.step(&grads, lr, &unscaled(scale, loss_scale)?)?;
                    if let Some(m) = &self.masks {
                        m.hold()?;
                    }
                }
                self.acc.add(&batch.loss, &batch.correct, batch.items)
            })()
            .map_err(at(step))?;
            self.step += 1;
            self.items += batch.items as u64;
            let end_of_epoch = self.step.is_multiple_of(self.steps_per_epoch);
            self.add_time(began);
            let sweep = self.ctx.options.lr_sweep.is_some();
            if sweep || self.step.is_multiple_of(t.log_every_steps as u64) || end_of_epoch {
                self.flush_step_with_lr(emitter, lr)?;
            }
            task.after_step(self.step, self.step == self.total_steps, emitter)
                .map_err(at(self.step))?;
            let eval_due = !sweep
                && match t.eval_every_steps {
                    Some(k) => self.step.is_multiple_of(k as u64),
                    None => end_of_epoch,
                };
            if eval_due && self.validate(task, emitter)? {
                self.flush_step(emitter, steering.peak_lr)?;
                emitter.emit(TrainEvent::Note {
                    step: self.step,
                    message: format!(
                        "early stopping in epoch {}: validation loss has not improved for {} evaluations",
                        self.step.div_ceil(self.steps_per_epoch),
                        t.early_stopping.as_ref().map_or(0, |e| e.patience) + 1
                    ),
                });
                return Ok(StopReason::EarlyStopped);
            }
            if (self.control.as_ref()).is_some_and(|c| c.due(self.step, self.total_steps)) {
                self.decide(task, emitter, steering, lr)?;
            }
            if !sweep && checkpoint::due(&t.checkpoint, self.step, self.steps_per_epoch) {
                // The steps since the last Step event are not in a checkpoint:
                // logged first, so a run resumed from it records the same.
                self.flush_step_with_lr(emitter, lr)?;
                self.checkpoint(task, opt, emitter, steering);
            }
        }
        Ok(StopReason::Completed)
    }

    /// The test pass, the last checkpoint, the saved weights and the summary.
    fn finish<T: Task>(
        &mut self,
        task: &mut T,
        opt: &Optimizer,
        emitter: &mut Emitter,
        steering: &Steering,
        reason: StopReason,
    ) -> Result<RunSummary, RunFailure> {
        let exp = self.ctx.exp;
        // A completed run ends with a validation pass, so the summary's val and
        // test figures describe the same weights (with eval_every_steps, or in an
        // extended run, the last one could be many steps old).
        // The lr range test only measures the training loss.
        let sweep = self.ctx.options.lr_sweep.is_some();
        if reason == StopReason::Completed && self.last_val_step != Some(self.step) && !sweep {
            self.validate(task, emitter)?;
        }
        // The final position, so that `trainlab resume` can extend a finished run
        // (with keep_last 0 only a stopped run keeps one: see `worker`).
        let kept = exp.training.checkpoint.keep_last > 0 || reason == StopReason::Stopped;
        // One of this position still being written is left to the test pass and
        // the weights to overlap; it is tried once more below if it failed.
        let final_in_flight = self.checkpoints.in_flight() == Some(self.step);
        if kept && !sweep && !final_in_flight {
            self.checkpoints.settle(emitter);
            if self.checkpoints.newest() != Some(self.step) {
                self.checkpoint(task, opt, emitter, steering);
            }
        }
        let test = if sweep {
            None
        } else {
            task.evaluate(Split::Test).map_err(at(self.step))?
        };
        if let Some(e) = &test {
            self.emit_eval(Split::Test, e, emitter);
        }
        // The playground's last map shows the final model, not the last one asked.
        if let Some(p) = &steering.last_field {
            emitter.emit_transient(TrainEvent::Probed(task.answer(p, self.step)));
        }
        if exp.training.save_weights
            && let Some(rec) = &emitter.recorder
        {
            let path = rec.weights_path();
            if let Err(e) = task.model().save(&path) {
                let fault = crate::runs::WriteFault::text("the model", &path, &e);
                emitter.write_failed(self.step, fault);
            }
        }
        self.checkpoints.settle(emitter);
        if kept && !sweep && final_in_flight && self.checkpoints.newest() != Some(self.step) {
            self.checkpoints.retry(emitter);
            self.checkpoints.settle(emitter);
        }
        let last = test.as_ref().or(self.last_val.as_ref());
        let precision = super::precision::summary(exp.training.precision, self.scaler.as_ref());
        if let Some(p) = precision.as_ref().filter(|p| p.loss_scale.is_some()) {
            emitter.emit(TrainEvent::Note {
                step: self.step,
                message: format!(
                    "{} mixed precision: {} of {} steps skipped because a gradient \
                     overflowed; loss scale at the end {}",
                    p.precision,
                    p.skipped_steps,
                    self.step,
                    p.loss_scale.unwrap_or(1.0)
                ),
            });
        }
        Ok(RunSummary {
            name: exp.name.clone(),
            reason,
            steps: self.step,
            epochs: self.step as f64 / self.steps_per_epoch as f64,
            parameters: task.model().param_count(),
            train_loss: self.last_train.map(|(l, _)| l),
            train_accuracy: self.last_train.map(|(_, a)| a),
            val_loss: self.last_val.as_ref().map(|e| e.loss),
            val_accuracy: self.last_val.as_ref().map(|e| e.accuracy),
            test_loss: test.as_ref().map(|e| e.loss),
            test_accuracy: test.as_ref().map(|e| e.accuracy),
            wall_seconds: self.wall_before + self.ctx.started.elapsed().as_secs_f64(),
            train_seconds: self.train_secs,
            samples_per_sec: self.items as f64 / self.train_secs.max(1e-9),
            peak_rss_bytes: peak_rss_bytes(),
            lr_changes: steering.lr_changes.clone(),
            rl: None,
            language: last.and_then(|e| e.language),
            per_class: last.map(|e| e.per_class.clone()).unwrap_or_default(),
            baselines: task.baselines(),
            precision,
        })
    }

    /// At the start of an epoch listed in `schedule.changes`: its optimizer
    /// settings from now on (a new lr replaces the peak, as a live change would).
    fn apply_scheduled_change(
        &self,
        opt: &mut Optimizer,
        steering: &mut Steering,
        emitter: &mut Emitter,
    ) {
        let Some((_, spec)) = self.changes.iter().find(|(s, _)| *s == self.step) else {
            return;
        };
        let by_step = self
            .ctx
            .exp
            .schedule
            .changes
            .iter()
            .any(|c| c.step.is_some());
        if spec.lr() != opt.spec().lr() {
            steering.peak_lr = spec.lr();
            if by_step {
                // A controller's recorded decision: shown as it was made.
                steering.lr_changes.push((self.step, spec.lr()));
                emitter.emit(TrainEvent::LrChanged {
                    step: self.step,
                    lr: spec.lr(),
                });
            }
        }
        opt.set_spec(spec.clone());
        let when = if by_step {
            format!("step {}", self.step)
        } else {
            format!("epoch {}", self.step / self.steps_per_epoch)
        };
        emitter.emit(TrainEvent::Note {
            step: self.step,
            message: format!(
                "{when}: optimizer settings now {}",
                ron::to_string(spec).unwrap_or_else(|_| format!("{spec:?}"))
            ),
        });
    }

    /// A controller's decision after this step: the window's losses logged, a
    /// validation pass at this step, then the lr the agent chose from the next
    /// step on (echoed as LrChanged when it changed, and as a Note).
    fn decide<T: Task>(
        &mut self,
        task: &mut T,
        emitter: &mut Emitter,
        steering: &mut Steering,
        lr: f64,
    ) -> Result<(), RunFailure> {
        self.flush_step_with_lr(emitter, lr)?;
        if self.last_val_step != Some(self.step) {
            // Early stopping counts this evaluation too; a stop it calls for
            // takes effect at the run's next own evaluation.
            self.validate(task, emitter)?;
        }
        let val = self.last_val.as_ref().map(|e| (e.loss, e.accuracy));
        let Some(c) = &mut self.control else {
            return Ok(());
        };
        let peak = steering.peak_lr;
        let d = c.decide(self.step, self.total_steps, peak, val);
        if d.lr != peak {
            steering.peak_lr = d.lr;
            steering.lr_changes.push((self.step, d.lr));
            emitter.emit(TrainEvent::LrChanged {
                step: self.step,
                lr: d.lr,
            });
        }
        emitter.emit(TrainEvent::Note {
            step: self.step,
            message: format!(
                "controller at step {}: state {} ({}), lr x{} = {:e}",
                self.step,
                d.state,
                c.state_label(d.state),
                d.lr / peak,
                d.lr
            ),
        });
        Ok(())
    }

    fn lr(&self, peak: f64, step: u64) -> f64 {
        if let Some(lrs) = &self.ctx.options.lr_sweep {
            return lrs
                .get(step as usize)
                .or(lrs.last())
                .copied()
                .unwrap_or(peak);
        }
        lr_at(
            &self.ctx.exp.schedule,
            peak,
            step,
            self.decay_steps,
            self.steps_per_epoch,
        )
    }

    fn add_time(&mut self, began: Instant) {
        let dt = began.elapsed().as_secs_f64();
        self.interval_secs += dt;
        self.train_secs += dt;
    }

    /// Emits what has accumulated since the last Step event (at a stop).
    fn flush_step(&mut self, emitter: &mut Emitter, peak: f64) -> Result<(), RunFailure> {
        let lr = self.lr(peak, self.step.saturating_sub(1));
        self.flush_step_with_lr(emitter, lr)
    }

    /// Reads the accumulated metrics back and emits a Step event; fails on NaN/inf.
    fn flush_step_with_lr(&mut self, emitter: &mut Emitter, lr: f64) -> Result<(), RunFailure> {
        let began = Instant::now();
        let Some(totals) = self.acc.take().map_err(at(self.step))? else {
            return Ok(());
        };
        self.add_time(began);
        if let Some(message) = self.watch.check(self.step, totals.mean_loss, lr)? {
            emitter.emit(TrainEvent::Note {
                step: self.step,
                message,
            });
        }
        let n = totals.steps;
        if let Some(c) = &mut self.control {
            c.observe_loss(totals.mean_loss, n);
        }
        self.epoch_loss.0 += totals.mean_loss * n as f64;
        self.epoch_loss.1 += n;
        self.epoch_acc.0 += totals.accuracy * n as f64;
        self.epoch_acc.1 += n;
        self.last_train = Some((
            self.epoch_loss.0 / self.epoch_loss.1.max(1) as f64,
            self.epoch_acc.0 / self.epoch_acc.1.max(1) as f64,
        ));
        emitter.emit(TrainEvent::Step(StepMetrics {
            step: self.step,
            epoch: self.step as f64 / self.steps_per_epoch as f64,
            loss: totals.mean_loss,
            accuracy: totals.accuracy,
            lr,
            samples_per_sec: totals.samples as f64 / self.interval_secs.max(1e-9),
            steps_covered: n,
        }));
        self.interval_secs = 0.0;
        Ok(())
    }

    /// Evaluates on the validation split; true when early stopping says stop.
    fn validate<T: Task>(
        &mut self,
        task: &mut T,
        emitter: &mut Emitter,
    ) -> Result<bool, RunFailure> {
        let Some(e) = task.evaluate(Split::Val).map_err(at(self.step))? else {
            return Ok(false);
        };
        if !e.loss.is_finite() {
            return Err(RunFailure::diverged(
                self.step,
                format!(
                    "training diverged: the validation loss became {} at step {}. \
                     Try a learning rate about 10x smaller.",
                    e.loss, self.step
                ),
            ));
        }
        self.emit_eval(Split::Val, &e, emitter);
        self.layer_stats(task, emitter)?;
        let stop = self.stopper.as_mut().is_some_and(|s| s.should_stop(e.loss));
        self.last_val = Some(e);
        self.last_val_step = Some(self.step);
        Ok(stop)
    }

    /// Records the per-layer statistics of this eval point (`training.layer_stats`).
    fn layer_stats<T: Task>(&self, task: &T, emitter: &mut Emitter) -> Result<(), RunFailure> {
        if !self.ctx.exp.training.layer_stats {
            return Ok(());
        }
        let Some(batch) = task.stats_batch().map_err(at(self.step))? else {
            return Ok(());
        };
        let kinds: Vec<String> = (self.ctx.exp.model.iter())
            .map(|l| l.kind().to_string())
            .collect();
        let stats =
            layer_stats::measure(task.model(), &kinds, &batch, self.step).map_err(at(self.step))?;
        emitter.emit(TrainEvent::LayerStats(stats));
        Ok(())
    }

    fn emit_eval(&self, split: Split, e: &TaskEval, emitter: &mut Emitter) {
        emitter.emit(TrainEvent::Eval(EvalMetrics {
            step: self.step,
            epoch: self.step as f64 / self.steps_per_epoch as f64,
            split,
            loss: e.loss,
            accuracy: e.accuracy,
            confusion: e.confusion.clone(),
            language: e.language,
            per_class: e.per_class.clone(),
        }));
    }

    /// Writes a checkpoint of this position on the writer thread (runs without a
    /// folder have none); a failure is reported once in a Note, by the next
    /// checkpoint or the run's end, and training goes on.
    fn checkpoint<T: Task>(
        &mut self,
        task: &T,
        opt: &Optimizer,
        emitter: &mut Emitter,
        steering: &Steering,
    ) {
        let spec = &self.ctx.exp.training.checkpoint;
        let step = self.step;
        let gather = |emitter: &Emitter| -> Result<_, checkpoint::CheckpointError> {
            let state = EngineState {
                version: STATE_VERSION,
                kind: self.ctx.kind.to_string(),
                step: self.step,
                steps_per_epoch: self.steps_per_epoch,
                items: self.items,
                train_secs: self.train_secs,
                wall_secs: self.wall_before + self.ctx.started.elapsed().as_secs_f64(),
                dropout_rng: self.dropout.state(),
                optimizer_steps: opt.steps(),
                peak_lr: steering.peak_lr,
                file_lr: Some(opt.spec().lr()),
                lr_changes: steering.lr_changes.clone(),
                stopper: self.stopper.as_ref().map(|s| s.snapshot()),
                watch: self.watch.snapshot(),
                epoch_loss: self.epoch_loss,
                epoch_acc: self.epoch_acc,
                last_train: self.last_train,
                last_val: self.last_val.clone(),
                metrics_bytes: checkpoint::record_length(emitter),
                task: task.state(),
                loss_scaler: self.scaler,
            };
            let training = opt.export().map_err(|e| e.to_string())?;
            Ok((task.model().state(), training, state))
        };
        self.checkpoints.save(emitter, spec, step, step, gather);
    }

    /// Continues from the checkpoint in `dir`: weights, optimizer, every random
    /// stream and counter; then reopens the run record where the checkpoint left
    /// it. Nothing on disk changes unless all of it matches this run.
    fn restore<T: Task>(
        &mut self,
        task: &mut T,
        opt: &mut Optimizer,
        steering: &mut Steering,
        emitter: &mut Emitter,
        dir: &Path,
    ) -> Result<(), RunFailure> {
        let bad = |source: ResumeError| RunFailure::Resume {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        };
        let device = task
            .model()
            .params()
            .first()
            .map(|(_, v)| v.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        let (loaded, state): (_, EngineState) =
            checkpoints::read(dir, &device).map_err(|e| bad(e.into()))?;
        if state.version != STATE_VERSION || state.kind != self.ctx.kind {
            return Err(bad(ResumeError::Kind {
                version: state.version,
                kind: state.kind,
                this_kind: self.ctx.kind.to_string(),
                this_version: STATE_VERSION,
            }));
        }
        if state.steps_per_epoch != self.steps_per_epoch {
            return Err(bad(ResumeError::StepsPerEpoch {
                then: state.steps_per_epoch,
                now: self.steps_per_epoch,
            }));
        }
        // At the end exactly, a run without a summary (killed, or out of disk
        // space, after its last checkpoint) completes here: test pass, weights,
        // summary. One that finished has nothing left to train.
        let finished = (self.ctx.options.run_dir.as_ref())
            .is_some_and(|d| d.join(crate::runs::files::SUMMARY).is_file());
        if state.step > self.total_steps || (state.step == self.total_steps && finished) {
            return Err(bad(ResumeError::AlreadyTrained {
                epochs: self.ctx.exp.training.epochs,
                steps: state.step,
            }));
        }
        task.model()
            .load_state(&loaded.model, &loaded.dir.join(checkpoints::MODEL))
            .map_err(|e| bad(ResumeError::Model(e)))?;
        opt.import(&loaded.training, state.optimizer_steps)
            .map_err(|e| bad(ResumeError::Optimizer(e)))?;
        task.restore(&state.task).map_err(bad)?;
        if let (Some(s), Some((best, bad_evals))) = (&mut self.stopper, state.stopper) {
            s.restore(best, bad_evals);
        }
        self.watch = LossWatch::restored(state.watch);
        self.step = state.step;
        self.items = state.items;
        self.train_secs = state.train_secs;
        self.wall_before = state.wall_secs;
        self.dropout = Rng::from_state(state.dropout_rng);
        self.epoch_loss = state.epoch_loss;
        self.epoch_acc = state.epoch_acc;
        self.last_train = state.last_train;
        self.last_val = state.last_val;
        self.checkpoints.restored(state.step);
        // A checkpoint from before a switch to F16 has no scaler: it starts afresh.
        if let (Some(s), Some(saved)) = (&mut self.scaler, state.loss_scaler) {
            *s = saved;
        }
        steering.peak_lr = state.peak_lr;
        steering.lr_changes = state.lr_changes;
        // Settings scheduled before the checkpoint hold (one due at this very
        // step is applied by the loop, as in a run that never stopped).
        if let Some((_, spec)) = self.changes.iter().rev().find(|(s, _)| *s < self.step) {
            opt.set_spec(spec.clone());
        }
        // The file's learning rate changed since the checkpoint (`resume --set
        // optimizer.lr=...`): the new one holds from here.
        let file_lr = opt.spec().lr();
        let lr_note = state.file_lr.filter(|old| *old != file_lr).map(|old| {
            steering.peak_lr = file_lr;
            format!(
                "learning rate {file_lr} from the experiment file from here on (it was {old} \
                 when the checkpoint was written)"
            )
        });
        let (exp, options) = (self.ctx.exp, self.ctx.options);
        checkpoint::continue_record(
            exp,
            options,
            emitter,
            state.metrics_bytes,
            self.step,
            &loaded.dir,
        )
        .map_err(bad)?;
        if let Some(message) = lr_note {
            emitter.emit(TrainEvent::Note {
                step: self.step,
                message,
            });
        }
        Ok(())
    }
}
