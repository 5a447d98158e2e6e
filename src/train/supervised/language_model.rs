//! The language-model task: the training documents become one token stream
//! (documents separated by a break token); each step trains on a batch of random
//! windows of `seq_len` tokens, predicting every next token (teacher forcing,
//! backpropagation through the window only: truncated BPTT, state starting at
//! zero). Validation and test use fixed non-overlapping windows. Loss, bits per
//! token and perplexity are in Eval events; live samples every N steps are
//! recorded Sample events; `Probe::Generate` is answered between steps.

use std::time::Instant;

use candle_core::{D, Device, Tensor};

use super::task::{Batch, Task, TaskEval, TaskState};
use super::text_setup::{TextSetup, announce, prepare};
use super::{RunContext, train as train_task};
use crate::data::text::{BREAK, Vocab};
use crate::model::{Kernels, Mode, Model, classification_loss};
use crate::spec::{Experiment, LanguageModelSpec, TextDatasetSpec};
use crate::text::{Sampling, generate};
use crate::train::Probe;
use crate::train::emitter::Emitter;
use crate::train::events::{
    ItemUnit, LanguageMetrics, ProbeAnswer, RunSummary, Split, StepItems, TextSample, TrainEvent,
};
use crate::train::handle::StartOptions;
use crate::train::steering::Steering;
use crate::train::worker::RunFailure;
use crate::util::rng::Rng;

/// Most windows read for one validation pass (keeps evaluation short).
const MAX_EVAL_WINDOWS: usize = 512;
const EVAL_BATCH: usize = 64;

/// One token stream with break tokens between documents.
pub(crate) fn stream(docs: &[usize], corpus: &[String], vocab: &Vocab) -> Vec<u32> {
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

/// A language-model run.
struct LanguageModel<'a> {
    lm: &'a LanguageModelSpec,
    device: Device,
    model: Model,
    vocab: Vocab,
    train: Vec<u32>,
    val: Vec<u32>,
    test: Vec<u32>,
    batch_size: usize,
    steps_per_epoch: u64,
    sampling: Sampling,
    batch_rng: Rng,
    sample_rng: Rng,
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
    let docs = &setup.corpus.docs;
    let train = stream(&setup.splits.train, docs, &setup.vocab);
    let val = stream(&setup.splits.val, docs, &setup.vocab);
    let test = stream(&setup.splits.test, docs, &setup.vocab);
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
    let TextSetup {
        device,
        vocab,
        model,
        vars,
        ..
    } = setup;
    let mut task = LanguageModel {
        lm,
        device,
        model,
        vocab,
        train,
        val,
        test,
        batch_size: tr.batch_size,
        steps_per_epoch,
        sampling: Sampling {
            temperature: lm.sample.temperature,
            top_k: lm.sample.top_k,
            length: lm.sample.length,
        },
        batch_rng: Rng::derive(exp.seed, "shuffle"),
        sample_rng: Rng::derive(exp.seed, "sample"),
    };
    let ctx = RunContext {
        exp,
        options,
        kind: "language model",
        started,
    };
    train_task(&ctx, &mut task, &vars, emitter, steering)
}

impl Task for LanguageModel<'_> {
    fn model(&self) -> &Model {
        &self.model
    }

    fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    // Windows are drawn at random positions; an epoch is a count of steps.
    fn begin_epoch(&mut self) {}

    fn train_batch(&mut self, _index: usize, dropout: &mut Rng) -> candle_core::Result<Batch> {
        let t = self.lm.seq_len;
        let starts: Vec<usize> = (0..self.batch_size)
            .map(|_| self.batch_rng.below(self.train.len() - t - 1))
            .collect();
        let (x, y) = windows(&self.train, &starts, t, &self.device)?;
        let logits = self.model.forward(&x, Mode::Train(dropout))?;
        let (loss, correct) = loss_and_correct(&logits, &y, self.model.kernels())?;
        Ok(Batch {
            loss,
            correct,
            items: starts.len() * t,
        })
    }

    fn evaluate(&mut self, split: Split) -> candle_core::Result<Option<TaskEval>> {
        let stream = match split {
            Split::Test => &self.test,
            _ => &self.val,
        };
        let result = evaluate(&self.model, stream, self.lm.seq_len, &self.device)?;
        Ok(result.map(|(loss, accuracy)| TaskEval {
            loss,
            accuracy,
            confusion: Vec::new(),
            language: Some(language(loss)),
            per_class: Vec::new(),
        }))
    }

    fn answer(&self, probe: &Probe, step: u64) -> ProbeAnswer {
        answer(&self.model, &self.vocab, &self.device, probe, step)
    }

    fn after_step(
        &mut self,
        step: u64,
        last: bool,
        emitter: &mut Emitter,
    ) -> candle_core::Result<()> {
        let Some(k) = self.lm.sample_every_steps else {
            return Ok(());
        };
        if !(step.is_multiple_of(k as u64) || last) {
            return Ok(());
        }
        let s = &self.lm.sample;
        let text = generate(
            &self.model,
            &self.vocab,
            &self.device,
            &s.prompt,
            &self.sampling,
            &mut self.sample_rng,
        )?;
        emitter.emit(TrainEvent::Sample(TextSample {
            step,
            prompt: s.prompt.clone(),
            temperature: s.temperature,
            text,
        }));
        Ok(())
    }

    fn state(&self) -> TaskState {
        TaskState {
            rngs: [
                ("shuffle".to_string(), self.batch_rng.state()),
                ("sample".to_string(), self.sample_rng.state()),
            ]
            .into(),
            order: Vec::new(),
        }
    }

    fn restore(&mut self, state: &TaskState) -> Result<(), String> {
        self.batch_rng = state.rng("shuffle")?;
        self.sample_rng = state.rng("sample")?;
        Ok(())
    }
}
