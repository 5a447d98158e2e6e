//! The text classification loop: each document becomes `max_len` token ids
//! (padded on the left), batches are shuffled with the run's seed, the loss is
//! softmax cross-entropy (or binary cross-entropy on one logit), optionally
//! weighted per class. Evaluations report accuracy, the confusion matrix and
//! per-class precision/recall/F1; early stopping watches the validation loss.

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor};

use super::Probe;
use super::clip::clip_scale;
use super::early_stopping::EarlyStopper;
use super::emitter::Emitter;
use super::events::{
    ClassScores, EvalMetrics, ItemUnit, ProbeAnswer, RunSummary, Split, StepItems, StepMetrics,
    StopReason, TrainEvent,
};
use super::handle::StartOptions;
use super::loss_watch::LossWatch;
use super::optim::Optimizer;
use super::schedule::lr_at;
use super::steering::Steering;
use super::text_setup::{announce, prepare, weights_path};
use super::worker::RunFailure;
use crate::data::text::Vocab;
use crate::model::{Mode, Model};
use crate::spec::{ClassWeights, ClassificationSpec, Experiment, TextDatasetSpec};
use crate::text::classify_text;
use crate::text::{TextBaselines, text_baselines};
use crate::util::memory::peak_rss_bytes;
use crate::util::rng::Rng;

const EVAL_BATCH: usize = 256;

fn at(step: u64) -> impl Fn(candle_core::Error) -> RunFailure {
    move |e| RunFailure::at(step, format!("training error at step {step}: {e}"))
}

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
fn sample_losses(logits: &Tensor, y: &Tensor, binary: bool) -> candle_core::Result<Tensor> {
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
            let w = w.index_select(y, 0)?;
            (l * &w)?.sum_all()? / w.sum_all()?.to_scalar::<f32>()? as f64
        }
        None => l.mean_all(),
    }
}

/// Loss, accuracy, confusion and per-class scores over a split.
struct Evaluation {
    loss: f64,
    accuracy: f64,
    confusion: Vec<Vec<u32>>,
    per_class: Vec<ClassScores>,
}

fn evaluate(
    model: &Model,
    data: &Encoded,
    classes: &[String],
    binary: bool,
    weights: Option<&Tensor>,
    device: &Device,
) -> candle_core::Result<Option<Evaluation>> {
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
    Ok(Some(Evaluation {
        loss: loss / n as f64,
        accuracy: correct as f64 / n as f64,
        per_class: class_scores(&confusion, classes),
        confusion,
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
        _ => ProbeAnswer::Unavailable {
            reason: "a text classifier answers ClassifyText probes only".into(),
        },
    }
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
    let outputs = |corpus: &crate::data::text::Corpus, _: &Vocab| -> Result<usize, String> {
        let k = corpus.classes.len();
        match (c.binary, k) {
            (true, 2) => Ok(1),
            (true, k) => Err(format!(
                "binary: true needs exactly 2 classes, the data has {k}"
            )),
            (false, k) => Ok(k),
        }
    };
    let setup = prepare(exp, spec, options, emitter, true, &outputs)?;
    let (model, vocab, device) = (&setup.model, &setup.vocab, &setup.device);
    let classes = setup.corpus.classes.clone();
    let encode = |rows: &[usize]| Encoded {
        ids: rows
            .iter()
            .flat_map(|&i| vocab.encode_padded(&setup.corpus.docs[i], c.max_len))
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
        .map(|w| Tensor::new(w.as_slice(), device))
        .transpose()
        .map_err(at(0))?;
    let baselines = reference_accuracies(&setup.corpus, &setup.splits, classes.len());
    let tr = &exp.training;
    let steps_per_epoch = train.labels.len().div_ceil(tr.batch_size) as u64;
    let total_steps = steps_per_epoch * tr.epochs as u64;
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
    let mut opt = Optimizer::new(&exp.optimizer, &setup.vars, options.kernels);
    let mut shuffle = Rng::derive(exp.seed, "shuffle");
    let mut dropout_rng = Rng::derive(exp.seed, "dropout");
    let mut stopper = tr.early_stopping.as_ref().map(EarlyStopper::new);
    let mut order: Vec<usize> = (0..train.labels.len()).collect();
    let (mut step, mut train_secs, mut interval_secs) = (0u64, 0.0f64, 0.0f64);
    let (mut loss_acc, mut correct_acc, mut seen, mut covered) =
        (None::<Tensor>, 0usize, 0usize, 0u64);
    let mut last_train = None;
    let mut watch = LossWatch::default();
    let mut last_val: Option<Evaluation> = None;
    let mut reason = StopReason::Completed;
    'epochs: for _ in 0..tr.epochs {
        shuffle.shuffle(&mut order);
        for chunk in order.chunks(tr.batch_size) {
            steering.poll_with(step, emitter, &mut |p, s| {
                answer(model, vocab, device, c, p, s)
            });
            if steering.stop {
                reason = StopReason::Stopped;
                break 'epochs;
            }
            let began = Instant::now();
            let lr = lr_at(
                &exp.schedule,
                steering.peak_lr,
                step,
                total_steps,
                steps_per_epoch,
            );
            let (loss, logits, y) = (|| {
                let (x, y) = train.batch(chunk, device)?;
                let logits = model.forward(&x, Mode::Train(&mut dropout_rng))?;
                let loss = batch_loss(&logits, &y, c.binary, weights.as_ref())?;
                let grads = loss.backward()?;
                let scale = clip_scale(&setup.vars, &grads, tr.grad_clip_norm)?;
                opt.step(&grads, lr, scale)?;
                Ok::<_, candle_core::Error>((loss.detach(), logits.detach(), y))
            })()
            .map_err(at(step))?;
            loss_acc = Some(match loss_acc {
                Some(s) => (s + loss).map_err(at(step))?,
                None => loss,
            });
            step += 1;
            covered += 1;
            let due = step.is_multiple_of(tr.log_every_steps as u64)
                || step.is_multiple_of(steps_per_epoch);
            if due {
                let preds = predictions(&logits, c.binary).map_err(at(step))?;
                let ys = y.to_vec1::<u32>().map_err(at(step))?;
                correct_acc += preds.iter().zip(&ys).filter(|(p, y)| p == y).count();
                seen += ys.len();
            }
            let dt = began.elapsed().as_secs_f64();
            train_secs += dt;
            interval_secs += dt;
            if due {
                let mean = loss_acc
                    .take()
                    .map(|s| s.to_scalar::<f32>())
                    .transpose()
                    .map_err(at(step))?
                    .unwrap_or(0.0) as f64
                    / covered as f64;
                if let Some(message) = watch.check(step, mean, lr)? {
                    emitter.emit(TrainEvent::Note { step, message });
                }
                // Accuracy of the last batch of the interval (read back only now).
                let acc = correct_acc as f64 / seen.max(1) as f64;
                last_train = Some((mean, acc));
                emitter.emit(TrainEvent::Step(StepMetrics {
                    step,
                    epoch: step as f64 / steps_per_epoch as f64,
                    loss: mean,
                    accuracy: acc,
                    lr,
                    samples_per_sec: (covered as usize * tr.batch_size) as f64
                        / interval_secs.max(1e-9),
                    steps_covered: covered,
                }));
                (covered, correct_acc, seen, interval_secs) = (0, 0, 0, 0.0);
            }
            let eval_due = match tr.eval_every_steps {
                Some(k) => step.is_multiple_of(k as u64),
                None => step.is_multiple_of(steps_per_epoch),
            };
            if eval_due
                && let Some(e) = evaluate(model, &val, &classes, c.binary, weights.as_ref(), device)
                    .map_err(at(step))?
            {
                emit_eval(emitter, step, steps_per_epoch, Split::Val, &e);
                let stop = stopper.as_mut().is_some_and(|s| s.should_stop(e.loss));
                last_val = Some(e);
                if stop {
                    emitter.emit(TrainEvent::Note {
                        step,
                        message: "early stopping: validation loss has stopped improving".into(),
                    });
                    reason = StopReason::EarlyStopped;
                    break 'epochs;
                }
            }
        }
    }
    let test_eval =
        evaluate(model, &test, &classes, c.binary, weights.as_ref(), device).map_err(at(step))?;
    if let Some(e) = &test_eval {
        emit_eval(emitter, step, steps_per_epoch, Split::Test, e);
    }
    if let Some(path) = weights_path(exp, emitter)
        && let Err(e) = model.save(&path)
    {
        emitter.emit(TrainEvent::Note {
            step,
            message: format!("could not save {}: {e}", path.display()),
        });
    }
    let per_class = test_eval
        .as_ref()
        .or(last_val.as_ref())
        .map(|e| e.per_class.clone())
        .unwrap_or_default();
    Ok(RunSummary {
        name: exp.name.clone(),
        reason,
        steps: step,
        epochs: step as f64 / steps_per_epoch as f64,
        parameters: model.param_count(),
        train_loss: last_train.map(|r| r.0),
        train_accuracy: last_train.map(|r| r.1),
        val_loss: last_val.as_ref().map(|e| e.loss),
        val_accuracy: last_val.as_ref().map(|e| e.accuracy),
        test_loss: test_eval.as_ref().map(|e| e.loss),
        test_accuracy: test_eval.as_ref().map(|e| e.accuracy),
        wall_seconds: started.elapsed().as_secs_f64(),
        train_seconds: train_secs,
        samples_per_sec: (step as usize * tr.batch_size) as f64 / train_secs.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
        lr_changes: steering.lr_changes.clone(),
        language: None,
        per_class,
        baselines,
        rl: None,
    })
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
            .map(|&i| (corpus.docs[i].as_str(), corpus.labels[i]))
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

/// Loss weight per class: none, balanced from the training labels, or given.
fn class_weights(
    spec: &ClassWeights,
    labels: &[u32],
    k: usize,
) -> Result<Option<Vec<f32>>, String> {
    match spec {
        ClassWeights::None => Ok(None),
        ClassWeights::Given(w) => {
            if w.len() != k || w.iter().any(|x| !(*x > 0.0 && x.is_finite())) {
                return Err(format!(
                    "dataset.task.class_weights: give {k} positive weights (one per class), got {w:?}"
                ));
            }
            Ok(Some(w.iter().map(|&x| x as f32).collect()))
        }
        ClassWeights::Balanced => {
            let mut counts = vec![0usize; k];
            for &l in labels {
                counts[l as usize] += 1;
            }
            let raw: Vec<f64> = counts.iter().map(|&n| 1.0 / n.max(1) as f64).collect();
            let mean = raw.iter().sum::<f64>() / k as f64;
            Ok(Some(raw.iter().map(|w| (w / mean) as f32).collect()))
        }
    }
}

fn emit_eval(emitter: &mut Emitter, step: u64, per_epoch: u64, split: Split, e: &Evaluation) {
    emitter.emit(TrainEvent::Eval(EvalMetrics {
        step,
        epoch: step as f64 / per_epoch as f64,
        split,
        loss: e.loss,
        accuracy: e.accuracy,
        confusion: e.confusion.clone(),
        language: None,
        per_class: e.per_class.clone(),
    }));
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

    #[test]
    fn balanced_weights_favour_rare_classes() -> Result<(), String> {
        let w = class_weights(&ClassWeights::Balanced, &[0, 0, 0, 1], 2)?.unwrap_or_default();
        assert!(w[1] > w[0] && ((w[0] + w[1]) / 2.0 - 1.0).abs() < 1e-6);
        Ok(())
    }
}
