//! The supervised training loop for classification: one loop for every model
//! built from a layer list. Shuffles with the run's seed, reads metrics back only
//! when a Step event is due, evaluates on schedule, stops early, on request, or
//! on divergence, then tests, saves and summarises.

use std::time::Instant;

use candle_core::Device;

use super::batches::BatchSource;
use super::clip::clip_scale;
use super::device::{describe, device_for};
use super::early_stopping::EarlyStopper;
use super::emitter::Emitter;
use super::evaluate::{DeviceSplit, EvalResult, evaluate, normalisation, normalised, to_device};
use super::events::{
    EvalMetrics, ItemUnit, LayerRow, RunInfo, RunSummary, Split, StepItems, StepMetrics,
    StopReason, TrainEvent,
};
use super::handle::StartOptions;
use super::loss_watch::LossWatch;
use super::metrics::{StepAccumulator, count_correct};
use super::optim::Optimizer;
use super::probe::ProbeTarget;
use super::schedule::lr_at;
use super::steering::Steering;
use super::worker::RunFailure;
use crate::data::{load_images, split_train_val};
use crate::model::{Mode, Model, classification_loss};
use crate::spec::{DatasetSpec, Experiment};
use crate::util::memory::peak_rss_bytes;
use crate::util::rng::Rng;

const EVAL_BATCH: usize = 1000;

/// Turns a candle error into a failure at `step`.
fn at(step: u64) -> impl Fn(candle_core::Error) -> RunFailure {
    move |e| RunFailure::at(step, format!("training error at step {step}: {e}"))
}

pub(crate) fn run(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
) -> Result<RunSummary, RunFailure> {
    let DatasetSpec::Images(data_spec) = &exp.dataset else {
        return Err(RunFailure::input(
            "the supervised loop needs an image dataset (dataset: Images(...))",
        ));
    };
    let device = device_for(exp.device).map_err(RunFailure::input)?;
    let data = load_images(data_spec).map_err(|e| RunFailure::input(e.to_string()))?;
    let (train_set, val_set) = split_train_val(data.train, data_spec.val_fraction, exp.seed);
    let norm = normalisation(data_spec.name);
    let train = to_device(&train_set, norm, &device).map_err(at(0))?;
    let val = to_device(&val_set, norm, &device).map_err(at(0))?;
    let test = to_device(&data.test, norm, &device).map_err(at(0))?;
    let classes = data.classes.len();
    let max_shift = data_spec.augment.as_ref().map_or(0, |a| a.max_shift);
    let mut batches = BatchSource::new(
        (max_shift > 0).then(|| normalised(&train_set, norm)),
        -norm.0 / norm.1,
        max_shift,
        (data.test.rows, data.test.cols),
        exp.seed,
    );
    drop((train_set, val_set));

    let input = [1, data.test.rows, data.test.cols];
    let mut model = Model::build(&exp.model, &input, exp.seed, &device).map_err(at(0))?;
    model.set_kernels(options.kernels);
    let vars: Vec<_> = model.params().iter().map(|(_, v)| v.clone()).collect();
    let mut opt = Optimizer::new(&exp.optimizer, &vars, options.kernels);

    let t = &exp.training;
    let steps_per_epoch = train.len().div_ceil(t.batch_size) as u64;
    let total_steps = steps_per_epoch * t.epochs as u64;
    let layers =
        LayerRow::table(&exp.model, &input).map_err(|e| RunFailure::at(0, e.to_string()))?;
    emitter.emit(TrainEvent::Started(RunInfo {
        name: exp.name.clone(),
        run_dir: emitter.run_dir(),
        device: describe(exp.device),
        parameters: model.param_count(),
        train_samples: train.len(),
        val_samples: val.len(),
        test_samples: test.len(),
        steps_per_epoch,
        total_steps,
        classes: data.classes.clone(),
        layers,
        step_items: StepItems {
            count: t.batch_size,
            unit: ItemUnit::Samples,
        },
    }));
    if train.len() == 0 {
        return Err(RunFailure::input(
            "the training split is empty; lower dataset.val_fraction or raise dataset.train_limit",
        ));
    }

    let probe = ProbeTarget {
        model: &model,
        device: &device,
        norm,
        input,
    };
    let mut lp = Loop {
        probe,
        exp,
        device: &device,
        model: &model,
        classes,
        steps_per_epoch,
        total_steps,
        step: 0,
        acc: StepAccumulator::default(),
        interval_secs: 0.0,
        train_secs: 0.0,
        epoch_loss: (0.0, 0),
        epoch_acc: (0.0, 0),
        last_train: None,
        last_val: None,
        stopper: t.early_stopping.as_ref().map(EarlyStopper::new),
        watch: LossWatch::default(),
    };
    let reason = lp.train(&train, &val, &mut batches, &mut opt, emitter, steering)?;

    let step = lp.step;
    let test_result = if test.len() > 0 {
        let r = evaluate(&model, &test, classes, EVAL_BATCH).map_err(at(step))?;
        lp.emit_eval(Split::Test, &r, emitter);
        Some(r)
    } else {
        None
    };
    if t.save_weights
        && let Some(rec) = &emitter.recorder
    {
        let path = rec.weights_path();
        if let Err(e) = model.save(&path) {
            emitter.emit(TrainEvent::Note {
                step,
                message: format!("could not save {}: {e}", path.display()),
            });
        }
    }
    let samples = lp.epoch_samples_total(train.len());
    Ok(RunSummary {
        name: exp.name.clone(),
        reason,
        steps: step,
        epochs: step as f64 / steps_per_epoch.max(1) as f64,
        parameters: model.param_count(),
        train_loss: lp.last_train.map(|(l, _)| l),
        train_accuracy: lp.last_train.map(|(_, a)| a),
        val_loss: lp.last_val.as_ref().map(|r| r.0),
        val_accuracy: lp.last_val.as_ref().map(|r| r.1),
        test_loss: test_result.as_ref().map(|r| r.loss),
        test_accuracy: test_result.as_ref().map(|r| r.accuracy),
        wall_seconds: started.elapsed().as_secs_f64(),
        train_seconds: lp.train_secs,
        samples_per_sec: samples as f64 / lp.train_secs.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
        lr_changes: steering.lr_changes.clone(),
        rl: None,
        language: None,
        per_class: Vec::new(),
        baselines: None,
    })
}

/// State of one supervised run while it trains.
struct Loop<'a> {
    probe: ProbeTarget<'a>,
    exp: &'a Experiment,
    device: &'a Device,
    model: &'a Model,
    classes: usize,
    steps_per_epoch: u64,
    total_steps: u64,
    step: u64,
    acc: StepAccumulator,
    /// Training seconds since the last Step event.
    interval_secs: f64,
    /// Training seconds in total (no eval, no pauses).
    train_secs: f64,
    /// Loss and accuracy sums over this epoch's Step events, weighted by steps.
    epoch_loss: (f64, u64),
    epoch_acc: (f64, u64),
    last_train: Option<(f64, f64)>,
    last_val: Option<(f64, f64)>,
    stopper: Option<EarlyStopper>,
    watch: LossWatch,
}

impl Loop<'_> {
    fn train(
        &mut self,
        train: &DeviceSplit,
        val: &DeviceSplit,
        batches: &mut BatchSource,
        opt: &mut Optimizer,
        emitter: &mut Emitter,
        steering: &mut Steering,
    ) -> Result<StopReason, RunFailure> {
        let t = &self.exp.training;
        let mut order: Vec<u32> = (0..train.len() as u32).collect();
        let mut shuffle_rng = Rng::derive(self.exp.seed, "shuffle");
        let mut dropout_rng = Rng::derive(self.exp.seed, "dropout");
        for epoch in 0..t.epochs {
            shuffle_rng.shuffle(&mut order);
            self.epoch_loss = (0.0, 0);
            self.epoch_acc = (0.0, 0);
            for chunk in order.chunks(t.batch_size) {
                let probe = &self.probe;
                steering.poll_with(self.step, emitter, &mut |p, step| probe.answer(p, step));
                if steering.stop {
                    self.flush_step(emitter, steering.peak_lr)?;
                    return Ok(StopReason::Stopped);
                }
                let began = Instant::now();
                let lr = lr_at(
                    &self.exp.schedule,
                    steering.peak_lr,
                    self.step,
                    self.total_steps,
                    self.steps_per_epoch,
                );
                self.train_step(train, batches, chunk, lr, opt, &mut dropout_rng)
                    .map_err(at(self.step))?;
                self.step += 1;
                let end_of_epoch = self.step.is_multiple_of(self.steps_per_epoch);
                if self.step.is_multiple_of(t.log_every_steps as u64) || end_of_epoch {
                    self.add_time(began);
                    self.flush_step_with_lr(emitter, lr)?;
                } else {
                    self.add_time(began);
                }
                let eval_due = match t.eval_every_steps {
                    Some(k) => self.step.is_multiple_of(k as u64),
                    None => end_of_epoch,
                };
                if eval_due && self.validate(val, emitter)? {
                    self.flush_step(emitter, steering.peak_lr)?;
                    emitter.emit(TrainEvent::Note {
                        step: self.step,
                        message: format!(
                            "early stopping in epoch {}: validation loss has not improved for {} evaluations",
                            epoch + 1,
                            t.early_stopping.as_ref().map_or(0, |e| e.patience) + 1
                        ),
                    });
                    return Ok(StopReason::EarlyStopped);
                }
            }
        }
        Ok(StopReason::Completed)
    }

    fn add_time(&mut self, began: Instant) {
        let dt = began.elapsed().as_secs_f64();
        self.interval_secs += dt;
        self.train_secs += dt;
    }

    fn train_step(
        &mut self,
        train: &DeviceSplit,
        batches: &mut BatchSource,
        chunk: &[u32],
        lr: f64,
        opt: &mut Optimizer,
        rng: &mut Rng,
    ) -> candle_core::Result<()> {
        let (x, y) = batches.batch(train, chunk, self.device)?;
        let logits = self.model.forward(&x, Mode::Train(rng))?;
        let loss = classification_loss(&logits, &y, self.model.kernels())?;
        let grads = loss.backward()?;
        let scale = clip_scale(
            self.model.params().iter().map(|(_, v)| v),
            &grads,
            self.exp.training.grad_clip_norm,
        )?;
        opt.step(&grads, lr, scale)?;
        self.acc
            .add(&loss, &count_correct(&logits, &y)?, chunk.len())
    }

    fn flush_step(&mut self, emitter: &mut Emitter, peak: f64) -> Result<(), RunFailure> {
        let lr = lr_at(
            &self.exp.schedule,
            peak,
            self.step.saturating_sub(1),
            self.total_steps,
            self.steps_per_epoch,
        );
        self.flush_step_with_lr(emitter, lr)
    }

    /// Reads the accumulated metrics back and emits a Step event; fails on NaN/inf.
    fn flush_step_with_lr(&mut self, emitter: &mut Emitter, lr: f64) -> Result<(), RunFailure> {
        if self.acc.steps() == 0 {
            return Ok(());
        }
        let began = Instant::now();
        let Some(totals) = self.acc.take().map_err(at(self.step))? else {
            return Ok(());
        };
        let read = began.elapsed().as_secs_f64();
        self.interval_secs += read;
        self.train_secs += read;
        if let Some(message) = self.watch.check(self.step, totals.mean_loss, lr)? {
            emitter.emit(TrainEvent::Note {
                step: self.step,
                message,
            });
        }
        let n = totals.steps;
        self.epoch_loss = (
            self.epoch_loss.0 + totals.mean_loss * n as f64,
            self.epoch_loss.1 + n,
        );
        self.epoch_acc = (
            self.epoch_acc.0 + totals.accuracy * n as f64,
            self.epoch_acc.1 + n,
        );
        self.last_train = Some((
            self.epoch_loss.0 / self.epoch_loss.1.max(1) as f64,
            self.epoch_acc.0 / self.epoch_acc.1.max(1) as f64,
        ));
        emitter.emit(TrainEvent::Step(StepMetrics {
            step: self.step,
            epoch: self.step as f64 / self.steps_per_epoch.max(1) as f64,
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
    fn validate(&mut self, val: &DeviceSplit, emitter: &mut Emitter) -> Result<bool, RunFailure> {
        if val.len() == 0 {
            return Ok(false);
        }
        let r = evaluate(self.model, val, self.classes, EVAL_BATCH).map_err(at(self.step))?;
        if !r.loss.is_finite() {
            return Err(RunFailure::diverged(
                self.step,
                format!(
                    "training diverged: the validation loss became {} at step {}. \
                     Try a learning rate about 10x smaller.",
                    r.loss, self.step
                ),
            ));
        }
        self.emit_eval(Split::Val, &r, emitter);
        self.last_val = Some((r.loss, r.accuracy));
        Ok(self.stopper.as_mut().is_some_and(|s| s.should_stop(r.loss)))
    }

    fn emit_eval(&self, split: Split, r: &EvalResult, emitter: &mut Emitter) {
        emitter.emit(TrainEvent::Eval(EvalMetrics {
            step: self.step,
            epoch: self.step as f64 / self.steps_per_epoch.max(1) as f64,
            split,
            loss: r.loss,
            accuracy: r.accuracy,
            confusion: r.confusion.clone(),
            language: None,
            per_class: Vec::new(),
        }));
    }

    /// Training samples processed, from steps done (the last batch of an epoch may be short).
    fn epoch_samples_total(&self, train_len: usize) -> usize {
        let full_epochs = (self.step / self.steps_per_epoch) as usize;
        let rest = (self.step % self.steps_per_epoch) as usize;
        full_epochs * train_len + (rest * self.exp.training.batch_size).min(train_len)
    }
}
