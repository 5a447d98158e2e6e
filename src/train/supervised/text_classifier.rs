//! The text classification task: each document becomes `max_len` token ids
//! (padded on the left), batches are shuffled with the run's seed, the loss is
//! softmax cross-entropy (or binary cross-entropy on one logit), optionally
//! weighted per class. Evaluations report accuracy, the confusion matrix and
//! per-class precision/recall/F1; early stopping watches the validation loss.

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor};

use super::layer_stats::{STATS_SAMPLES, StatsBatch};
use super::task::{Batch, Task, TaskEval, TaskState};
use super::text_setup::{TextSetup, announce, prepare};
use super::{RunContext, at, train as train_task};
use crate::data::text::Vocab;
use crate::data::text::class_weights;
use crate::data::text::text_baselines;
use crate::events::TextBaselines;
use crate::events::{ClassScores, ItemUnit, ProbeAnswer, RunSummary, Split, StepItems, TrainEvent};
use crate::infer::classify_text;
use crate::model::{Mode, Model};
use crate::spec::{ClassificationSpec, Experiment, TextDatasetSpec};
use crate::train::Probe;
use crate::train::ResumeError;
use crate::train::emitter::Emitter;
use crate::train::handle::StartOptions;
use crate::train::steering::Steering;
use crate::train::worker::RunFailure;
use crate::util::rng::Rng;

const EVAL_BATCH: usize = 256;

/// Encoded documents of one split.
struct Encoded {
    ids: Vec<u32>,
    labels: Vec<u32>,
    len: usize,
}

impl Encoded {
    fn batch(&self, rows: &[usize], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let mut x = Vec::with_capacity(rows.len() * self.len);
        for &r in rows {
            x.extend_from_slice(&self.ids[r * self.len..(r + 1) * self.len]);
        }
        let y: Vec<u32> = rows.iter().map(|&r| self.labels[r]).collect();
        Ok((
            Tensor::from_vec(x, (rows.len(), self.len), device)?,
            Tensor::new(y.as_slice(), device)?,
        ))
    }
}

/// Per-sample losses `[n]` for multi-class or binary heads.
pub(crate) fn sample_losses(
    logits: &Tensor,
    y: &Tensor,
    binary: bool,
) -> candle_core::Result<Tensor> {
    if binary {
        // Stable BCE with logits: max(z, 0) - z * y + log(1 + exp(-|z|)).
        let z = logits.flatten_all()?;
        let yf = y.to_dtype(DType::F32)?;
        let soft = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
        (z.relu()? - (&z * yf)?)? + soft
    } else {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        logp.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?.neg()
    }
}

/// Correct predictions of a batch as an f32 scalar on the device.
pub(crate) fn correct_count(
    logits: &Tensor,
    y: &Tensor,
    binary: bool,
) -> candle_core::Result<Tensor> {
    let predicted = if binary {
        logits.flatten_all()?.gt(0.0)?.to_dtype(DType::U32)?
    } else {
        logits.argmax(D::Minus1)?
    };
    predicted.eq(y)?.to_dtype(DType::F32)?.sum_all()
}

fn predictions(logits: &Tensor, binary: bool) -> candle_core::Result<Vec<u32>> {
    if binary {
        Ok(logits
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|z| u32::from(z > 0.0))
            .collect())
    } else {
        logits.argmax(D::Minus1)?.to_vec1::<u32>()
    }
}

/// Weighted mean loss of a batch.
fn batch_loss(
    logits: &Tensor,
    y: &Tensor,
    binary: bool,
    weights: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let l = sample_losses(logits, y, binary)?;
    match weights {
        Some(w) => {
            // Divided on the device: no read-back inside a training step.
            let w = w.index_select(y, 0)?;
            (l * &w)?.sum_all()?.broadcast_div(&w.sum_all()?)
        }
        None => l.mean_all(),
    }
}

fn evaluate(
    model: &Model,
    data: &Encoded,
    classes: &[String],
    binary: bool,
    weights: Option<&Tensor>,
    device: &Device,
) -> candle_core::Result<Option<TaskEval>> {
    let n = data.labels.len();
    if n == 0 {
        return Ok(None);
    }
    let k = classes.len();
    let mut confusion = vec![vec![0u32; k]; k];
    let mut loss = 0.0;
    let rows: Vec<usize> = (0..n).collect();
    for chunk in rows.chunks(EVAL_BATCH) {
        let (x, y) = data.batch(chunk, device)?;
        let logits = model.forward(&x, Mode::Eval)?;
        loss += batch_loss(&logits, &y, binary, weights)?.to_scalar::<f32>()? as f64
            * chunk.len() as f64;
        for (&r, p) in chunk.iter().zip(predictions(&logits, binary)?) {
            confusion[data.labels[r] as usize][p as usize] += 1;
        }
    }
    let correct: u32 = (0..k).map(|i| confusion[i][i]).sum();
    Ok(Some(TaskEval {
        loss: loss / n as f64,
        accuracy: correct as f64 / n as f64,
        per_class: class_scores(&confusion, classes),
        confusion,
        language: None,
    }))
}

/// Precision, recall and F1 per class from `confusion[true][predicted]`.
pub(crate) fn class_scores(confusion: &[Vec<u32>], classes: &[String]) -> Vec<ClassScores> {
    (0..classes.len())
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: u32 = confusion.iter().map(|row| row[c]).sum();
            let support: u32 = confusion[c].iter().sum();
            let precision = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassScores {
                class: classes[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect()
}

fn answer(
    model: &Model,
    vocab: &Vocab,
    device: &Device,
    c: &ClassificationSpec,
    probe: &Probe,
    step: u64,
) -> ProbeAnswer {
    match probe {
        Probe::ClassifyText { id, text } => {
            match classify_text(model, vocab, device, text, c.max_len, c.binary) {
                Ok(probabilities) => ProbeAnswer::Classified {
                    id: *id,
                    step,
                    probabilities,
                },
                Err(e) => ProbeAnswer::Unavailable {
                    reason: e.to_string(),
                },
            }
        }
        Probe::Project { id, .. } => {
            crate::train::probe::project_tokens(model, &vocab.tokens, *id, step)
        }
        _ => ProbeAnswer::Unavailable {
            reason: "a text classifier answers ClassifyText and Project probes only".into(),
        },
    }
}

/// A text classification run.
struct TextClassifier<'a> {
    c: &'a ClassificationSpec,
    device: Device,
    model: Model,
    vocab: Vocab,
    classes: Vec<String>,
    train: Encoded,
    val: Encoded,
    test: Encoded,
    weights: Option<Tensor>,
    baselines: Option<TextBaselines>,
    batch_size: usize,
    order: Vec<u32>,
    shuffle: Rng,
}

pub(crate) fn run(
    exp: &Experiment,
    spec: &TextDatasetSpec,
    c: &ClassificationSpec,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
) -> Result<RunSummary, RunFailure> {
    let outputs = |corpus: &crate::data::text::Corpus, _: &Vocab| -> Result<usize, RunFailure> {
        let k = corpus.classes.len();
        match (c.binary, k) {
            (true, 2) => Ok(1),
            (true, k) => Err(RunFailure::input(format!(
                "binary: true needs exactly 2 classes, the data has {k}"
            ))),
            (false, k) => Ok(k),
        }
    };
    let setup = prepare(exp, spec, options, emitter, true, &outputs)?;
    let classes = setup.corpus.classes.clone();
    let encode = |rows: &[usize]| Encoded {
        ids: rows
            .iter()
            .flat_map(|&i| setup.vocab.encode_padded(&setup.corpus.docs[i], c.max_len))
            .collect(),
        labels: rows
            .iter()
            .map(|&i| setup.corpus.labels[i] as u32)
            .collect(),
        len: c.max_len,
    };
    let (train, val, test) = (
        encode(&setup.splits.train),
        encode(&setup.splits.val),
        encode(&setup.splits.test),
    );
    let weights = class_weights(&c.class_weights, &train.labels, classes.len())
        .map_err(RunFailure::input)?
        .map(|w| Tensor::new(w.as_slice(), &setup.device))
        .transpose()
        .map_err(at(0))?;
    let baselines = reference_accuracies(&setup.corpus, &setup.splits, classes.len());
    let tr = &exp.training;
    let steps_per_epoch = train.labels.len().div_ceil(tr.batch_size) as u64;
    announce(
        exp,
        &setup,
        emitter,
        (train.labels.len(), val.labels.len(), test.labels.len()),
        steps_per_epoch,
        classes.clone(),
        StepItems {
            count: tr.batch_size,
            unit: ItemUnit::Samples,
        },
    );
    if let Some(b) = &baselines {
        emitter.emit(TrainEvent::Note {
            step: 0,
            message: format!(
                "references on the {} split: majority class {:.1} %, character-bigram \
                 naive Bayes {:.1} %",
                if setup.splits.test.is_empty() {
                    "validation"
                } else {
                    "test"
                },
                100.0 * b.majority_accuracy,
                100.0 * b.naive_bayes_accuracy
            ),
        });
    }
    let TextSetup {
        device,
        vocab,
        model,
        vars,
        ..
    } = setup;
    let mut task = TextClassifier {
        c,
        device,
        model,
        vocab,
        classes,
        order: (0..train.labels.len() as u32).collect(),
        train,
        val,
        test,
        weights,
        baselines,
        batch_size: tr.batch_size,
        shuffle: Rng::derive(exp.seed, "shuffle"),
    };
    let ctx = RunContext {
        exp,
        options,
        kind: "text classification",
        started,
    };
    train_task(&ctx, &mut task, &vars, emitter, steering)
}

impl Task for TextClassifier<'_> {
    fn model(&self) -> &Model {
        &self.model
    }

    fn steps_per_epoch(&self) -> u64 {
        self.train.labels.len().div_ceil(self.batch_size) as u64
    }

    fn begin_epoch(&mut self) {
        self.shuffle.shuffle(&mut self.order);
    }

    fn train_batch(&mut self, index: usize, dropout: &mut Rng) -> candle_core::Result<Batch> {
        let start = index * self.batch_size;
        let rows: Vec<usize> = self.order[start..(start + self.batch_size).min(self.order.len())]
            .iter()
            .map(|&r| r as usize)
            .collect();
        let (x, y) = self.train.batch(&rows, &self.device)?;
        let logits = self.model.forward(&x, Mode::Train(dropout))?;
        let loss = batch_loss(&logits, &y, self.c.binary, self.weights.as_ref())?;
        Ok(Batch {
            correct: correct_count(&logits.detach(), &y, self.c.binary)?,
            loss,
            items: rows.len(),
        })
    }

    fn evaluate(&mut self, split: Split) -> candle_core::Result<Option<TaskEval>> {
        let data = match split {
            Split::Test => &self.test,
            _ => &self.val,
        };
        evaluate(
            &self.model,
            data,
            &self.classes,
            self.c.binary,
            self.weights.as_ref(),
            &self.device,
        )
    }

    fn answer(&self, probe: &Probe, step: u64) -> ProbeAnswer {
        answer(&self.model, &self.vocab, &self.device, self.c, probe, step)
    }

    fn stats_batch(&self) -> candle_core::Result<Option<StatsBatch<'_>>> {
        // The first training documents in split order (the same at every eval point).
        let rows: Vec<usize> = (0..STATS_SAMPLES.min(self.train.labels.len())).collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let (x, y) = self.train.batch(&rows, &self.device)?;
        let (binary, weights) = (self.c.binary, self.weights.as_ref());
        Ok(Some(StatsBatch {
            inputs: x,
            loss: Box::new(move |logits| batch_loss(logits, &y, binary, weights)),
        }))
    }

    fn state(&self) -> TaskState {
        TaskState {
            rngs: [("shuffle".to_string(), self.shuffle.state())].into(),
            order: self.order.clone(),
        }
    }

    fn restore(&mut self, state: &TaskState) -> Result<(), ResumeError> {
        state.restore_order(&mut self.order, "texts")?;
        self.shuffle = state.rng("shuffle")?;
        Ok(())
    }

    fn baselines(&self) -> Option<TextBaselines> {
        self.baselines
    }
}

/// The majority-class and naive Bayes accuracies on the test split (else the
/// validation split), both fitted on the training split.
fn reference_accuracies(
    corpus: &crate::data::text::Corpus,
    splits: &crate::data::text::TextSplits,
    classes: usize,
) -> Option<TextBaselines> {
    let pick = |rows: &[usize]| -> (Vec<&str>, Vec<usize>) {
        rows.iter()
            .map(|&i| (&corpus.docs[i], corpus.labels[i]))
            .unzip()
    };
    let train = pick(&splits.train);
    let eval = pick(if splits.test.is_empty() {
        &splits.val
    } else {
        &splits.test
    });
    text_baselines((&train.0, &train.1), (&eval.0, &eval.1), classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_from_confusion() {
        let conf = vec![vec![8, 2], vec![4, 6]];
        let s = class_scores(&conf, &["a".into(), "b".into()]);
        assert!((s[0].precision - 8.0 / 12.0).abs() < 1e-12);
        assert!((s[0].recall - 0.8).abs() < 1e-12);
        assert_eq!(s[1].support, 10);
    }
}
