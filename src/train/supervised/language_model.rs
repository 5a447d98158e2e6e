//! The language-model loop: the training documents become one token stream
//! (documents separated by a break token); each step trains on a batch of random
//! windows of `seq_len` tokens, predicting every next token (teacher forcing,
//! backpropagation through the window only: truncated BPTT, state starting at
//! zero). Validation and test use fixed non-overlapping windows. Loss, bits per
//! token and perplexity are in Eval events; live samples every N steps are
//! recorded Sample events; `Probe::Generate` is answered between steps.

use std::time::Instant;

use candle_core::{D, Device, Tensor};

use super::Probe;
use super::clip::clip_scale;
use super::early_stopping::EarlyStopper;
use super::emitter::Emitter;
use super::events::{
    EvalMetrics, ItemUnit, LanguageMetrics, ProbeAnswer, RunSummary, Split, StepItems, StepMetrics,
    StopReason, TextSample, TrainEvent,
};
use super::handle::StartOptions;
use super::loss_watch::LossWatch;
use super::optim::Optimizer;
use super::schedule::lr_at;
use super::steering::Steering;
use super::text_setup::{announce, prepare, weights_path};
use super::worker::RunFailure;
use crate::data::text::{BREAK, Vocab};
use crate::model::{Kernels, Mode, Model, classification_loss};
use crate::spec::{Experiment, LanguageModelSpec, TextDatasetSpec};
use crate::text::{Sampling, generate};
use crate::util::memory::peak_rss_bytes;
use crate::util::rng::Rng;

/// Most windows read for one validation pass (keeps evaluation short).
const MAX_EVAL_WINDOWS: usize = 512;
const EVAL_BATCH: usize = 64;

fn at(step: u64) -> impl Fn(candle_core::Error) -> RunFailure {
    move |e| RunFailure::at(step, format!("training error at step {step}: {e}"))
}

/// One token stream with break tokens between documents.
fn stream(docs: &[usize], corpus: &[String], vocab: &Vocab) -> Vec<u32> {
    let mut out = vec![BREAK];
    for &i in docs {
        out.extend(vocab.encode(&corpus[i]));
        out.push(BREAK);
    }
    out
}

/// Input and target windows `[n, t]` starting at `starts`.
fn windows(
    stream: &[u32],
    starts: &[usize],
    t: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(starts.len() * t);
    let mut y = Vec::with_capacity(starts.len() * t);
    for &s in starts {
        x.extend_from_slice(&stream[s..s + t]);
        y.extend_from_slice(&stream[s + 1..s + t + 1]);
    }
    Ok((
        Tensor::from_vec(x, (starts.len(), t), device)?,
        Tensor::from_vec(y, (starts.len(), t), device)?,
    ))
}

/// Mean cross-entropy over every position, and the number of correct guesses.
fn loss_and_correct(
    logits: &Tensor,
    y: &Tensor,
    kernels: Kernels,
) -> candle_core::Result<(Tensor, Tensor)> {
    let v = logits.dim(D::Minus1)?;
    let flat = logits.reshape(((), v))?;
    let yf = y.flatten_all()?;
    let loss = classification_loss(&flat, &yf, kernels)?;
    let correct = flat
        .argmax(D::Minus1)?
        .eq(&yf)?
        .to_dtype(candle_core::DType::F32)?
        .sum_all()?;
    Ok((loss, correct))
}

/// Mean loss and accuracy over fixed windows of `stream`.
fn evaluate(
    model: &Model,
    stream: &[u32],
    t: usize,
    device: &Device,
) -> candle_core::Result<Option<(f64, f64)>> {
    if stream.len() <= t + 1 {
        return Ok(None);
    }
    let starts: Vec<usize> = (0..(stream.len() - 1) / t)
        .map(|k| k * t)
        .filter(|s| s + t < stream.len())
        .take(MAX_EVAL_WINDOWS)
        .collect();
    let (mut loss, mut correct, mut n) = (0.0f64, 0.0f64, 0usize);
    for chunk in starts.chunks(EVAL_BATCH) {
        let (x, y) = windows(stream, chunk, t, device)?;
        let logits = model.forward(&x, Mode::Eval)?;
        let (l, c) = loss_and_correct(&logits, &y, model.kernels())?;
        loss += l.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        correct += c.to_scalar::<f32>()? as f64;
        n += chunk.len();
    }
    Ok(Some((loss / n as f64, correct / (n * t) as f64)))
}

fn language(loss: f64) -> LanguageMetrics {
    LanguageMetrics {
        bits_per_token: loss / std::f64::consts::LN_2,
        perplexity: loss.exp(),
    }
}

/// Answers text probes with the live model.
fn answer(model: &Model, vocab: &Vocab, device: &Device, probe: &Probe, step: u64) -> ProbeAnswer {
    match probe {
        Probe::Generate {
            id,
            prompt,
            temperature,
            top_k,
            length,
        } => {
            let s = Sampling {
                temperature: *temperature,
                top_k: *top_k,
                length: *length,
            };
            let mut rng = Rng::derive(*id, "probe-generate");
            match generate(model, vocab, device, prompt, &s, &mut rng) {
                Ok(text) => ProbeAnswer::Generated {
                    id: *id,
                    step,
                    text: format!("{prompt}{text}"),
                },
                Err(e) => ProbeAnswer::Unavailable {
                    reason: e.to_string(),
                },
            }
        }
        _ => ProbeAnswer::Unavailable {
            reason: "a language model answers Generate probes only".into(),
        },
    }
}

pub(crate) fn run(
    exp: &Experiment,
    spec: &TextDatasetSpec,
    lm: &LanguageModelSpec,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
) -> Result<RunSummary, RunFailure> {
    let setup = prepare(exp, spec, options, emitter, false, &|_, v| Ok(v.len()))?;
    let (model, vocab, device) = (&setup.model, &setup.vocab, &setup.device);
    let docs = &setup.corpus.docs;
    let train = stream(&setup.splits.train, docs, vocab);
    let val = stream(&setup.splits.val, docs, vocab);
    let test = stream(&setup.splits.test, docs, vocab);
    let t = lm.seq_len;
    let tr = &exp.training;
    if train.len() <= t + 1 {
        return Err(RunFailure::input(format!(
            "the training text has {} tokens, fewer than seq_len + 2 = {}; lower dataset.task.seq_len",
            train.len(),
            t + 2
        )));
    }
    let tokens_per_step = tr.batch_size * t;
    let steps_per_epoch = (train.len() / tokens_per_step).max(1) as u64;
    let total_steps = steps_per_epoch * tr.epochs as u64;
    announce(
        exp,
        &setup,
        emitter,
        (train.len(), val.len(), test.len()),
        steps_per_epoch,
        Vec::new(),
        StepItems {
            count: tokens_per_step,
            unit: ItemUnit::Tokens,
        },
    );
    let mut opt = Optimizer::new(&exp.optimizer, &setup.vars, options.kernels);
    let mut batch_rng = Rng::derive(exp.seed, "shuffle");
    let mut dropout_rng = Rng::derive(exp.seed, "dropout");
    let mut sample_rng = Rng::derive(exp.seed, "sample");
    let mut stopper = tr.early_stopping.as_ref().map(EarlyStopper::new);
    let sampling = Sampling {
        temperature: lm.sample.temperature,
        top_k: lm.sample.top_k,
        length: lm.sample.length,
    };
    let (mut step, mut train_secs, mut interval_secs) = (0u64, 0.0f64, 0.0f64);
    let (mut loss_sum, mut correct_sum, mut covered) = (None::<Tensor>, None::<Tensor>, 0u64);
    let mut last_train = None;
    let mut watch = LossWatch::default();
    let mut last_val: Option<(f64, f64)> = None;
    let mut reason = StopReason::Completed;
    'training: while step < total_steps {
        steering.poll_with(step, emitter, &mut |p, s| {
            answer(model, vocab, device, p, s)
        });
        if steering.stop {
            reason = StopReason::Stopped;
            break;
        }
        let began = Instant::now();
        let lr = lr_at(
            &exp.schedule,
            steering.peak_lr,
            step,
            total_steps,
            steps_per_epoch,
        );
        let starts: Vec<usize> = (0..tr.batch_size)
            .map(|_| batch_rng.below(train.len() - t - 1))
            .collect();
        let (loss, correct) = (|| {
            let (x, y) = windows(&train, &starts, t, device)?;
            let logits = model.forward(&x, Mode::Train(&mut dropout_rng))?;
            let (loss, correct) = loss_and_correct(&logits, &y, model.kernels())?;
            let grads = loss.backward()?;
            let scale = clip_scale(&setup.vars, &grads, tr.grad_clip_norm)?;
            opt.step(&grads, lr, scale)?;
            Ok::<_, candle_core::Error>((loss.detach(), correct))
        })()
        .map_err(at(step))?;
        // Sums stay on the device until a Step event is due.
        loss_sum = Some(match loss_sum {
            Some(s) => (s + loss).map_err(at(step))?,
            None => loss,
        });
        correct_sum = Some(match correct_sum {
            Some(s) => (s + correct).map_err(at(step))?,
            None => correct,
        });
        covered += 1;
        step += 1;
        let dt = began.elapsed().as_secs_f64();
        train_secs += dt;
        interval_secs += dt;
        let end = step == total_steps;
        if step.is_multiple_of(tr.log_every_steps as u64) || end {
            let read = |s: &Option<Tensor>| -> Result<f64, RunFailure> {
                match s {
                    Some(s) => Ok(s.to_scalar::<f32>().map_err(at(step))? as f64),
                    None => Ok(0.0),
                }
            };
            let mean = read(&loss_sum)? / covered as f64;
            let acc = read(&correct_sum)? / (covered as usize * tokens_per_step) as f64;
            if let Some(message) = watch.check(step, mean, lr)? {
                emitter.emit(TrainEvent::Note { step, message });
            }
            last_train = Some((mean, acc));
            emitter.emit(TrainEvent::Step(StepMetrics {
                step,
                epoch: step as f64 / steps_per_epoch as f64,
                loss: mean,
                accuracy: acc,
                lr,
                samples_per_sec: (covered as usize * tokens_per_step) as f64
                    / interval_secs.max(1e-9),
                steps_covered: covered,
            }));
            (loss_sum, correct_sum, covered, interval_secs) = (None, None, 0, 0.0);
        }
        if let Some(k) = lm.sample_every_steps
            && (step.is_multiple_of(k as u64) || end)
        {
            let text = generate(
                model,
                vocab,
                device,
                &lm.sample.prompt,
                &sampling,
                &mut sample_rng,
            )
            .map_err(at(step))?;
            emitter.emit(TrainEvent::Sample(TextSample {
                step,
                prompt: lm.sample.prompt.clone(),
                temperature: lm.sample.temperature,
                text,
            }));
        }
        let eval_due = match tr.eval_every_steps {
            Some(k) => step.is_multiple_of(k as u64),
            None => step.is_multiple_of(steps_per_epoch),
        };
        if eval_due && let Some((l, a)) = evaluate(model, &val, t, device).map_err(at(step))? {
            emit_eval(emitter, step, steps_per_epoch, Split::Val, l, a);
            last_val = Some((l, a));
            if stopper.as_mut().is_some_and(|s| s.should_stop(l)) {
                emitter.emit(TrainEvent::Note {
                    step,
                    message: "early stopping: validation loss has stopped improving".into(),
                });
                reason = StopReason::EarlyStopped;
                break 'training;
            }
        }
    }
    let test_result = evaluate(model, &test, t, device).map_err(at(step))?;
    if let Some((l, a)) = test_result {
        emit_eval(emitter, step, steps_per_epoch, Split::Test, l, a);
    }
    if let Some(path) = weights_path(exp, emitter)
        && let Err(e) = model.save(&path)
    {
        emitter.emit(TrainEvent::Note {
            step,
            message: format!("could not save {}: {e}", path.display()),
        });
    }
    let final_loss = test_result.or(last_val).map(|r| r.0);
    Ok(RunSummary {
        name: exp.name.clone(),
        reason,
        steps: step,
        epochs: step as f64 / steps_per_epoch as f64,
        parameters: model.param_count(),
        train_loss: last_train.map(|r| r.0),
        train_accuracy: last_train.map(|r| r.1),
        val_loss: last_val.map(|r| r.0),
        val_accuracy: last_val.map(|r| r.1),
        test_loss: test_result.map(|r| r.0),
        test_accuracy: test_result.map(|r| r.1),
        wall_seconds: started.elapsed().as_secs_f64(),
        train_seconds: train_secs,
        samples_per_sec: (step as usize * tokens_per_step) as f64 / train_secs.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
        lr_changes: steering.lr_changes.clone(),
        language: final_loss.map(language),
        per_class: Vec::new(),
        baselines: None,
        rl: None,
    })
}

fn emit_eval(emitter: &mut Emitter, step: u64, per_epoch: u64, split: Split, loss: f64, acc: f64) {
    emitter.emit(TrainEvent::Eval(EvalMetrics {
        step,
        epoch: step as f64 / per_epoch as f64,
        split,
        loss,
        accuracy: acc,
        confusion: Vec::new(),
        language: Some(language(loss)),
        per_class: Vec::new(),
    }));
}
