//! Image classification as an engine task: the splits stay 8-bit pixels on the
//! host and each batch is standardised as it is assembled (`evaluate::ImageSplit`),
//! each epoch reshuffles the training order with the run's seed, batches may be
//! augmented by random shifts, and evaluations report a confusion matrix.

use std::time::Instant;

use candle_core::{Device, Var};

use super::layer_stats::{STATS_SAMPLES, StatsBatch};
use super::task::{Batch, Task, TaskEval, TaskState};
use super::{at, run_task};
use crate::data::{ImageLoad, split_train_val};
use crate::events::{
    ItemUnit, LayerRow, ProbeAnswer, RunInfo, RunSummary, Split, StepItems, TrainEvent,
};
use crate::model::{Mode, Model, classification_loss};
use crate::spec::{DatasetSpec, Experiment};
use crate::spec::{LayerSpec, infer_shapes};
use crate::train::Probe;
use crate::train::ResumeError;
use crate::train::batches::BatchSource;
use crate::train::device::{describe, device_for};
use crate::train::emitter::Emitter;
use crate::train::evaluate::{ImageSplit, PixelScale, evaluate};
use crate::train::finetune::init_and_freeze;
use crate::train::handle::StartOptions;
use crate::train::metrics::count_correct;
use crate::train::probe::{PROJECTED_SAMPLES, ProbeTarget, ProjectorSamples};
use crate::train::steering::Steering;
use crate::train::worker::RunFailure;
use crate::util::rng::Rng;

const EVAL_BATCH: usize = 1000;

/// An image classification run.
struct Images {
    device: Device,
    model: Model,
    train: ImageSplit,
    val: ImageSplit,
    test: ImageSplit,
    classes: usize,
    batches: BatchSource,
    batch_size: usize,
    order: Vec<u32>,
    shuffle: Rng,
    norm: Vec<(f32, f32)>,
    input: [usize; 3],
    /// The first test images, for the live projector.
    samples: ProjectorSamples,
}

/// An image classification run of the data `data` is reading (started by the
/// worker before it created the run folder).
pub(crate) fn run(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
    data: ImageLoad,
) -> Result<RunSummary, RunFailure> {
    run_task(exp, options, emitter, steering, started, "images", |e| {
        setup(exp, options, e, data)
    })
}

fn setup(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    data: ImageLoad,
) -> Result<(Images, Vec<Var>), RunFailure> {
    let DatasetSpec::Images(data_spec) = &exp.dataset else {
        return Err(RunFailure::input(
            "the image loop needs an image dataset (dataset: Images(...))",
        ));
    };
    let device = device_for(exp.device)?;
    let data = data.wait()?;
    let input = [data.test.channels, data.test.rows, data.test.cols];
    check_output_width(&exp.model, &input, &data.classes)?;
    let (train_set, val_set) = split_train_val(data.train, data_spec.val_fraction, exp.seed);
    let norm = data.stats.clone();
    let pixels = PixelScale::new(&norm);
    let kept = data.test.len().min(PROJECTED_SAMPLES);
    let samples = ProjectorSamples {
        pixels: data.test.images[..kept * data.test.pixels_per_image()].to_vec(),
        labels: data.test.labels[..kept].to_vec(),
        classes: data.classes.clone(),
        layers: exp.model.clone(),
    };
    let max_shift = data_spec.augment.as_ref().map_or(0, |a| a.max_shift);
    let batches = BatchSource::new(max_shift, exp.seed);
    let train = ImageSplit::new(train_set, pixels.clone());
    let val = ImageSplit::new(val_set, pixels.clone());
    let test = ImageSplit::new(data.test, pixels);

    let mut model = Model::build(&exp.model, &input, exp.seed, &device).map_err(at(0))?;
    model.set_kernels(options.kernels);
    model.set_compute(crate::train::precision::compute_dtype(
        exp.training.precision,
    ));
    let t = &exp.training;
    let steps_per_epoch = train.len().div_ceil(t.batch_size) as u64;
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
        total_steps: steps_per_epoch * t.epochs as u64,
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
    if !data.skipped.is_empty() {
        emitter.emit(TrainEvent::Note {
            step: 0,
            message: format!(
                "skipped {} image file(s) that could not be decoded (skip_unreadable: true):\n{}",
                data.skipped.len(),
                data.skipped.join("\n")
            ),
        });
    }
    let vars = init_and_freeze(&model, t, &device, options.resume_from.is_some(), emitter)?;
    let order = (0..train.len() as u32).collect();
    let task = Images {
        device,
        model,
        classes: data.classes.len(),
        train,
        val,
        test,
        batches,
        batch_size: t.batch_size,
        order,
        shuffle: Rng::derive(exp.seed, "shuffle"),
        norm,
        input,
        samples,
    };
    Ok((task, vars))
}

/// The model must end with one score per class the data has (an image folder's
/// classes are known only once it is read, so `validate` could not check this).
fn check_output_width(
    layers: &[LayerSpec],
    input: &[usize; 3],
    classes: &[String],
) -> Result<(), RunFailure> {
    let shapes = infer_shapes(layers, input)?;
    let last = shapes.last().map(|s| s.output.clone()).unwrap_or_default();
    let n = classes.len();
    if last == [n] {
        return Ok(());
    }
    let mut shown = classes
        .iter()
        .take(12)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if n > 12 {
        shown.push_str(", ...");
    }
    Err(RunFailure::input(format!(
        "model[{}]: the model ends with shape {last:?} but the dataset has {n} classes \
         ({shown}); end with Linear(out: {n})",
        layers.len().saturating_sub(1)
    )))
}

impl Task for Images {
    fn model(&self) -> &Model {
        &self.model
    }

    fn steps_per_epoch(&self) -> u64 {
        self.train.len().div_ceil(self.batch_size) as u64
    }

    fn begin_epoch(&mut self) {
        self.shuffle.shuffle(&mut self.order);
    }

    fn train_batch(&mut self, index: usize, dropout: &mut Rng) -> candle_core::Result<Batch> {
        let start = index * self.batch_size;
        let chunk = &self.order[start..(start + self.batch_size).min(self.order.len())];
        let (x, y) = self.batches.batch(&self.train, chunk, &self.device)?;
        let logits = self.model.forward(&x, Mode::Train(dropout))?;
        let loss = classification_loss(&logits, &y, self.model.kernels())?;
        Ok(Batch {
            correct: count_correct(&logits, &y)?,
            loss,
            items: chunk.len(),
        })
    }

    fn evaluate(&mut self, split: Split) -> candle_core::Result<Option<TaskEval>> {
        let data = match split {
            Split::Test => &self.test,
            _ => &self.val,
        };
        if data.len() == 0 {
            return Ok(None);
        }
        let r = evaluate(&self.model, data, &self.device, self.classes, EVAL_BATCH)?;
        Ok(Some(TaskEval {
            loss: r.loss,
            accuracy: r.accuracy,
            confusion: r.confusion,
            language: None,
            per_class: Vec::new(),
        }))
    }

    fn answer(&self, probe: &Probe, step: u64) -> ProbeAnswer {
        ProbeTarget {
            model: &self.model,
            device: &self.device,
            norm: &self.norm,
            input: self.input,
            samples: Some(&self.samples),
        }
        .answer(probe, step)
    }

    fn stats_batch(&self) -> candle_core::Result<Option<StatsBatch<'_>>> {
        // The first training samples in file order (not augmented).
        let n = STATS_SAMPLES.min(self.train.len());
        let y = self.train.targets(0..n, &self.device)?;
        let kernels = self.model.kernels();
        Ok(Some(StatsBatch {
            inputs: self.train.inputs(0..n, &self.device)?,
            loss: Box::new(move |logits| classification_loss(logits, &y, kernels)),
        }))
    }

    fn state(&self) -> TaskState {
        TaskState {
            rngs: [
                ("shuffle".to_string(), self.shuffle.state()),
                ("augment".to_string(), self.batches.rng_state()),
            ]
            .into(),
            order: self.order.clone(),
        }
    }

    fn restore(&mut self, state: &TaskState) -> Result<(), ResumeError> {
        state.restore_order(&mut self.order, "images")?;
        self.shuffle = state.rng("shuffle")?;
        self.batches.set_rng(state.rng("augment")?);
        Ok(())
    }
}
