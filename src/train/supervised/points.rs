//! The 2-D playground as an engine task: points in the plane, their chosen
//! features as the input, two classes (one logit with binary cross-entropy, or
//! two scores with softmax cross-entropy) or a surface to fit (squared error).
//! The test points double as the validation split, as in TensorFlow Playground.
//! The live model answers `Probe::Field`: its output and every hidden unit over
//! a grid of the plane, with the Linear weights, for drawing.
//!
//! Accuracy of a surface fit is the share of points within 0.1 of the target.

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};

use super::layer_stats::{STATS_SAMPLES, StatsBatch};
use super::task::{Batch, Task, TaskEval, TaskState};
use super::text_classifier::{correct_count, sample_losses};
use super::{at, run_task};
use crate::data::points::{Point, generate, grid};
use crate::events::{
    FieldLayer, FieldMaps, FieldWeights, ItemUnit, LayerRow, ProbeAnswer, RunInfo, RunSummary,
    Split, StepItems, TrainEvent,
};
use crate::model::{Mode, Model};
use crate::spec::{DatasetSpec, Experiment, Feature};
use crate::train::Probe;
use crate::train::ResumeError;
use crate::train::device::{describe, device_for};
use crate::train::emitter::Emitter;
use crate::train::finetune::init_and_freeze;
use crate::train::handle::StartOptions;
use crate::train::probe::ProbeError;
use crate::train::steering::Steering;
use crate::train::worker::RunFailure;
use crate::util::rng::Rng;

/// A regression point counts as right within this distance of its target.
const FIT_TOLERANCE: f64 = 0.1;
/// The largest field grid a probe may ask for.
const MAX_RESOLUTION: usize = 200;

/// What the model's output means.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Head {
    /// One logit for class 1.
    Binary,
    /// A score per class.
    TwoScores,
    /// The fitted value.
    Surface,
}

/// One split on the device.
struct Split2 {
    x: Tensor,
    classes: Tensor,
    values: Tensor,
    len: usize,
}

impl Split2 {
    fn new(points: &[Point], features: &[Feature], device: &Device) -> candle_core::Result<Self> {
        let f = features.len();
        let x: Vec<f32> = points.iter().flat_map(|p| p.features(features)).collect();
        let classes: Vec<u32> = points.iter().map(|p| p.label.max(0.0) as u32).collect();
        let values: Vec<f32> = points.iter().map(|p| p.label).collect();
        Ok(Self {
            x: Tensor::from_vec(x, (points.len(), f), device)?,
            classes: Tensor::from_vec(classes, points.len(), device)?,
            values: Tensor::from_vec(values, points.len(), device)?,
            len: points.len(),
        })
    }
}

/// A playground run.
struct PointsTask {
    device: Device,
    model: Model,
    head: Head,
    train: Split2,
    test: Split2,
    features: Vec<Feature>,
    layer_kinds: Vec<String>,
    batch_size: usize,
    order: Vec<u32>,
    shuffle: Rng,
}

pub(crate) fn run(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
) -> Result<RunSummary, RunFailure> {
    run_task(exp, options, emitter, steering, started, "points", |e| {
        setup(exp, options, e)
    })
}

fn setup(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
) -> Result<(PointsTask, Vec<Var>), RunFailure> {
    let DatasetSpec::Points(spec) = &exp.dataset else {
        return Err(RunFailure::input(
            "the playground needs dataset: Points(...)",
        ));
    };
    let device = device_for(exp.device)?;
    let points = generate(spec, exp.seed);
    let train_split = Split2::new(&points.train, &spec.features, &device).map_err(at(0))?;
    let test = Split2::new(&points.test, &spec.features, &device).map_err(at(0))?;
    let input = [spec.features.len()];
    let mut model = Model::build(&exp.model, &input, exp.seed, &device).map_err(at(0))?;
    model.set_kernels(options.kernels);
    let outputs = crate::spec::infer_shapes(&exp.model, &input)
        .ok()
        .and_then(|s| s.last().map(|l| l.output.clone()))
        .unwrap_or_default();
    let head = match (spec.kind.is_regression(), outputs.as_slice()) {
        (true, _) => Head::Surface,
        (false, [2]) => Head::TwoScores,
        _ => Head::Binary,
    };
    let t = &exp.training;
    let steps_per_epoch = train_split.len.div_ceil(t.batch_size) as u64;
    let layers =
        LayerRow::table(&exp.model, &input).map_err(|e| RunFailure::at(0, e.to_string()))?;
    emitter.emit(TrainEvent::Started(RunInfo {
        name: exp.name.clone(),
        run_dir: emitter.run_dir(),
        device: describe(exp.device),
        parameters: model.param_count(),
        train_samples: train_split.len,
        val_samples: test.len,
        test_samples: test.len,
        steps_per_epoch,
        total_steps: steps_per_epoch * t.epochs as u64,
        classes: if head == Head::Surface {
            Vec::new()
        } else {
            vec!["class 0".into(), "class 1".into()]
        },
        layers,
        step_items: StepItems {
            count: t.batch_size,
            unit: ItemUnit::Samples,
        },
    }));
    let vars = init_and_freeze(&model, t, &device, options.resume_from.is_some(), emitter)?;
    let task = PointsTask {
        device,
        model,
        head,
        order: (0..train_split.len as u32).collect(),
        train: train_split,
        test,
        features: spec.features.clone(),
        layer_kinds: exp.model.iter().map(|l| l.kind().to_string()).collect(),
        batch_size: t.batch_size,
        shuffle: Rng::derive(exp.seed, "shuffle"),
    };
    Ok((task, vars))
}

impl PointsTask {
    /// Per-point losses and the number right, for outputs `out` of split rows.
    fn score(
        &self,
        out: &Tensor,
        classes: &Tensor,
        values: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        match self.head {
            Head::Surface => {
                let diff = (out.flatten_all()? - values)?;
                let right = diff
                    .abs()?
                    .le(FIT_TOLERANCE)?
                    .to_dtype(DType::F32)?
                    .sum_all()?;
                Ok((diff.sqr()?, right))
            }
            // The text classifier's losses and counts: one logit (binary
            // cross-entropy) or a score per class (softmax cross-entropy).
            Head::Binary | Head::TwoScores => {
                let binary = self.head == Head::Binary;
                Ok((
                    sample_losses(out, classes, binary)?,
                    correct_count(out, classes, binary)?,
                ))
            }
        }
    }

    /// p(class 1), or the fitted value, from the model's outputs.
    fn answer_values(&self, out: &Tensor) -> candle_core::Result<Vec<f32>> {
        match self.head {
            Head::Surface => out.flatten_all()?.to_vec1(),
            Head::Binary => candle_nn::ops::sigmoid(&out.flatten_all()?)?.to_vec1(),
            Head::TwoScores => candle_nn::ops::softmax(out, D::Minus1)?
                .narrow(1, 1, 1)?
                .flatten_all()?
                .to_vec1(),
        }
    }

    fn field(&self, id: u64, resolution: usize, step: u64) -> Result<ProbeAnswer, ProbeError> {
        if !(2..=MAX_RESOLUTION).contains(&resolution) {
            return Err(ProbeError::Resolution {
                max: MAX_RESOLUTION,
            });
        }
        let at = grid(resolution);
        let x: Vec<f32> = at
            .iter()
            .flat_map(|&(x1, x2)| Point { x1, x2, label: 0.0 }.features(&self.features))
            .collect();
        let run = || -> candle_core::Result<FieldMaps> {
            let x = Tensor::from_vec(x, (at.len(), self.features.len()), &self.device)?;
            let outs = self.model.forward_each(&x)?;
            let last = outs.len().saturating_sub(1);
            let mut layers = Vec::new();
            for (i, o) in outs.iter().enumerate().take(last) {
                if o.rank() == 2 {
                    let units: Vec<Vec<f32>> = o.t()?.contiguous()?.to_vec2()?;
                    layers.push(FieldLayer {
                        layer: i,
                        kind: self.layer_kinds.get(i).cloned().unwrap_or_default(),
                        units,
                    });
                }
            }
            let output = match outs.last() {
                Some(o) => self.answer_values(o)?,
                None => Vec::new(),
            };
            let mut weights = Vec::new();
            for (name, var) in self.model.params() {
                let t = var.as_tensor();
                let layer = name
                    .strip_prefix("layers.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|i| i.parse::<usize>().ok());
                if let (Some(layer), true, &[outputs, inputs]) =
                    (layer, name.ends_with(".weight"), t.dims())
                {
                    weights.push(FieldWeights {
                        layer,
                        inputs,
                        outputs,
                        values: t.flatten_all()?.to_vec1()?,
                    });
                }
            }
            Ok(FieldMaps {
                id,
                step,
                resolution,
                output,
                layers,
                weights,
            })
        };
        Ok(ProbeAnswer::Field(Box::new(run()?)))
    }
}

impl Task for PointsTask {
    fn model(&self) -> &Model {
        &self.model
    }

    fn steps_per_epoch(&self) -> u64 {
        self.train.len.div_ceil(self.batch_size) as u64
    }

    fn begin_epoch(&mut self) {
        self.shuffle.shuffle(&mut self.order);
    }

    fn train_batch(&mut self, index: usize, dropout: &mut Rng) -> candle_core::Result<Batch> {
        let start = index * self.batch_size;
        let chunk = &self.order[start..(start + self.batch_size).min(self.order.len())];
        let rows = Tensor::new(chunk, &self.device)?;
        let x = self.train.x.index_select(&rows, 0)?;
        let classes = self.train.classes.index_select(&rows, 0)?;
        let values = self.train.values.index_select(&rows, 0)?;
        let out = self.model.forward(&x, Mode::Train(dropout))?;
        let (losses, correct) = self.score(&out, &classes, &values)?;
        Ok(Batch {
            loss: losses.mean_all()?,
            correct,
            items: chunk.len(),
        })
    }

    fn evaluate(&mut self, split: Split) -> candle_core::Result<Option<TaskEval>> {
        let data = match split {
            Split::Train => &self.train,
            _ => &self.test,
        };
        if data.len == 0 {
            return Ok(None);
        }
        let out = self.model.forward(&data.x, Mode::Eval)?;
        let (losses, right) = self.score(&out, &data.classes, &data.values)?;
        let loss = losses.mean_all()?.to_scalar::<f32>()? as f64;
        let right = right.to_scalar::<f32>()? as f64;
        let mut confusion = Vec::new();
        if self.head != Head::Surface {
            let predicted: Vec<f32> = self.answer_values(&out)?;
            let truth: Vec<u32> = data.classes.to_vec1()?;
            confusion = vec![vec![0u32; 2]; 2];
            for (p, t) in predicted.iter().zip(truth) {
                confusion[t.min(1) as usize][usize::from(*p > 0.5)] += 1;
            }
        }
        Ok(Some(TaskEval {
            loss,
            accuracy: right / data.len as f64,
            confusion,
            language: None,
            per_class: Vec::new(),
        }))
    }

    fn answer(&self, probe: &Probe, step: u64) -> ProbeAnswer {
        let result = match probe {
            Probe::Field { id, resolution } => self.field(*id, *resolution, step),
            _ => Err(ProbeError::FieldOnly),
        };
        // The event contract carries the reason as text.
        result.unwrap_or_else(|e| ProbeAnswer::Unavailable {
            reason: e.to_string(),
        })
    }

    fn stats_batch(&self) -> candle_core::Result<Option<StatsBatch<'_>>> {
        // The first training points as generated.
        let n = STATS_SAMPLES.min(self.train.len);
        if n == 0 {
            return Ok(None);
        }
        let classes = self.train.classes.narrow(0, 0, n)?;
        let values = self.train.values.narrow(0, 0, n)?;
        Ok(Some(StatsBatch {
            inputs: self.train.x.narrow(0, 0, n)?,
            loss: Box::new(move |out| self.score(out, &classes, &values)?.0.mean_all()),
        }))
    }

    fn state(&self) -> TaskState {
        TaskState {
            rngs: [("shuffle".to_string(), self.shuffle.state())].into(),
            order: self.order.clone(),
        }
    }

    fn restore(&mut self, state: &TaskState) -> Result<(), ResumeError> {
        state.restore_order(&mut self.order, "points")?;
        self.shuffle = state.rng("shuffle")?;
        Ok(())
    }
}
