//! The language-model task: the training documents become one token stream
//! (documents separated by a break token); each step trains on a batch of random
//! windows of `seq_len` tokens, predicting every next token (teacher forcing,
//! backpropagation through the window only: truncated BPTT, state starting at
//! zero). Validation and test use fixed non-overlapping windows. Loss, bits per
//! token and perplexity are in Eval events; live samples every N steps are
//! recorded Sample events; `Probe::Generate` is answered between steps.

use std::time::Instant;

use candle_core::{D, Device, Tensor};

use super::layer_stats::{STATS_SAMPLES, StatsBatch};
use super::task::{Batch, Task, TaskEval, TaskState};
use super::text_setup::{TextSetup, announce, prepare};
use super::{RunContext, train as train_task};
use crate::data::text::{LmSplit, LmStreams, TokenIds, Vocab};
use crate::events::{
    ItemUnit, LanguageMetrics, ProbeAnswer, RunSummary, Split, StepItems, TextSample, TrainEvent,
};
use crate::infer::{Sampling, generate};
use crate::model::{Kernels, Mode, Model, classification_loss};
use crate::spec::{Experiment, LanguageModelSpec, TextDatasetSpec};
use crate::train::Probe;
use crate::train::ResumeError;
use crate::train::emitter::Emitter;
use crate::train::handle::StartOptions;
use crate::train::steering::Steering;
use crate::train::worker::RunFailure;
use crate::util::rng::Rng;

/// Most windows read for one validation pass (keeps evaluation short).
const MAX_EVAL_WINDOWS: usize = 512;
const EVAL_BATCH: usize = 64;

/// Input and target windows `[n, t]` starting at `starts` (positions in the
/// split stream that begins at `base` of `ids`).
fn windows(
    ids: &TokenIds,
    base: usize,
    starts: &[usize],
    t: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(starts.len() * t);
    let mut y = Vec::with_capacity(starts.len() * t);
    for &s in starts {
        let s = base + s;
        ids.extend_u32(s..s + t, &mut x);
        ids.extend_u32(s + 1..s + t + 1, &mut y);
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

/// Mean loss and accuracy over fixed windows of the split stream at `range`.
fn evaluate(
    model: &Model,
    ids: &TokenIds,
    range: std::ops::Range<usize>,
    t: usize,
    device: &Device,
) -> candle_core::Result<Option<(f64, f64)>> {
    let len = range.len();
    if len <= t + 1 {
        return Ok(None);
    }
    let starts: Vec<usize> = (0..(len - 1) / t)
        .map(|k| k * t)
        .filter(|s| s + t < len)
        .take(MAX_EVAL_WINDOWS)
        .collect();
    let (mut loss, mut correct, mut n) = (0.0f64, 0.0f64, 0usize);
    for chunk in starts.chunks(EVAL_BATCH) {
        let (x, y) = windows(ids, range.start, chunk, t, device)?;
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
        Probe::Project { id, .. } => {
            crate::train::probe::project_tokens(model, &vocab.tokens, *id, step)
        }
        _ => ProbeAnswer::Unavailable {
            reason: "a language model answers Generate and Project probes only".into(),
        },
    }
}

/// A language-model run.
struct LanguageModel<'a> {
    lm: &'a LanguageModelSpec,
    device: Device,
    model: Model,
    vocab: Vocab,
    /// Every split's tokens, compact, with the splits as ranges.
    streams: LmStreams,
    /// Length of the training stream.
    train_len: usize,
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
    let streams = LmStreams::build(&setup.splits, &setup.corpus.docs, &setup.vocab);
    let [train, val, test] = [LmSplit::Train, LmSplit::Val, LmSplit::Test].map(|s| streams.len(s));
    let t = lm.seq_len;
    let tr = &exp.training;
    if train <= t + 1 {
        return Err(RunFailure::input(format!(
            "the training text has {} tokens, fewer than seq_len + 2 = {}; lower dataset.task.seq_len",
            train,
            t + 2
        )));
    }
    let tokens_per_step = tr.batch_size * t;
    let steps_per_epoch = (train / tokens_per_step).max(1) as u64;
    announce(
        exp,
        &setup,
        emitter,
        (train, val, test),
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
        streams,
        train_len: train,
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
            .map(|_| self.batch_rng.below(self.train_len - t - 1))
            .collect();
        let train = self.streams.split(LmSplit::Train);
        let (x, y) = windows(&self.streams.ids, train.start, &starts, t, &self.device)?;
        let logits = self.model.forward(&x, Mode::Train(dropout))?;
        let (loss, correct) = loss_and_correct(&logits, &y, self.model.kernels())?;
        Ok(Batch {
            loss,
            correct,
            items: starts.len() * t,
        })
    }

    fn evaluate(&mut self, split: Split) -> candle_core::Result<Option<TaskEval>> {
        let range = self.streams.split(match split {
            Split::Test => LmSplit::Test,
            _ => LmSplit::Val,
        });
        let result = evaluate(
            &self.model,
            &self.streams.ids,
            range,
            self.lm.seq_len,
            &self.device,
        )?;
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

    fn stats_batch(&self) -> candle_core::Result<Option<StatsBatch<'_>>> {
        // The first non-overlapping windows of the training stream (the same at
        // every eval point), fewer when the stream is short.
        let t = self.lm.seq_len;
        let starts: Vec<usize> = (0..STATS_SAMPLES)
            .map(|k| k * t)
            .take_while(|s| s + t < self.train_len)
            .collect();
        if starts.is_empty() {
            return Ok(None);
        }
        let train = self.streams.split(LmSplit::Train);
        let (x, y) = windows(&self.streams.ids, train.start, &starts, t, &self.device)?;
        let kernels = self.model.kernels();
        Ok(Some(StatsBatch {
            inputs: x,
            loss: Box::new(move |logits| Ok(loss_and_correct(logits, &y, kernels)?.0)),
        }))
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

    fn restore(&mut self, state: &TaskState) -> Result<(), ResumeError> {
        self.batch_rng = state.rng("shuffle")?;
        self.sample_rng = state.rng("sample")?;
        Ok(())
    }
}
