//! Next-token logits of a recurrent language model for a growing token
//! sequence, the way text generation asks for them: the logits at position p are
//! those of `Model::forward` on the window `ids[p - context..p]` (all of `ids`
//! while shorter), read from a zero state.
//!
//! Contract: `Model::windowed_lm(context, prompt, length)` is Some for an
//! f32 model on the CPU with trainlab's kernels whose layers are an embedding,
//! an LSTM or GRU stack, then any of Linear, ReLU, Tanh and Sigmoid (dropout
//! anywhere, a no-op here); None otherwise (the caller runs `Model::forward`).
//! `logits()` gives the next position's logits, `push(id)` appends a token. The
//! values equal `Model::forward`'s on the same window within 1e-5 (tested below
//! at every SIMD level, 1 and 2 layers, both cells). `length` (the tokens the
//! caller means to add) only bounds the work done ahead; asking past it still
//! gives the right logits.
//!
//! How: the window for position q starts at `s = max(0, q - context)`. A window
//! is opened as soon as its first token is known and from then on reads each
//! new token as it arrives, so every token is read by all the windows it belongs
//! to (up to `context` of them) in one batched step (`kernels/recurrent_step.rs`):
//! the weights are read once per generated token instead of once per window
//! position, and the work per token is the same as re-reading the window. A
//! window is dropped once its position is served; all windows starting at 0 are
//! one (they are prefixes of each other).

use candle_core::{DType, Result, Tensor};

use super::Kernels;
use super::build::Model;
use super::kernels::recurrent_step::{LayerValues, StepCell, StepStack};
use super::kernels::skinny::{PackedRhs, Start};
use super::layer::Layer;
use crate::util::simd::{Level, level};

/// What runs on the last position's hidden state after the stack.
enum Post {
    Linear {
        weight: PackedRhs,
        bias: Option<Vec<f32>>,
        out: usize,
    },
    Relu,
    Tanh,
    Sigmoid,
}

/// A recurrent language model's logits over a growing sequence (see the module
/// comment).
pub struct WindowedLm {
    stack: StepStack,
    post: Vec<Post>,
    context: usize,
    /// Positions at or past this are not prepared ahead of being asked for.
    end: usize,
    ids: Vec<u32>,
    /// The live windows' first positions, ascending; one record each in `records`.
    starts: Vec<usize>,
    /// The next position each live window reads.
    read: Vec<usize>,
    records: Vec<f32>,
    /// The highest start a window was opened at.
    newest: Option<usize>,
    step_ids: Vec<u32>,
}

impl Model {
    /// The windowed generation path for this model, or None where it does not
    /// apply (see the module comment); `prompt` must not be empty and its ids
    /// must be in the vocabulary.
    pub fn windowed_lm(
        &self,
        context: usize,
        prompt: &[u32],
        length: usize,
    ) -> Option<Result<WindowedLm>> {
        WindowedLm::build(self, level(), context, prompt, length)
    }
}

/// A tensor's values as a vector.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl WindowedLm {
    /// As `Model::windowed_lm`, with the kernels of `level`.
    pub(crate) fn build(
        model: &Model,
        level: Level,
        context: usize,
        prompt: &[u32],
        length: usize,
    ) -> Option<Result<Self>> {
        if model.compute() != DType::F32 || model.kernels() != Kernels::Fast {
            return None;
        }
        let mut layers = model
            .layers()
            .iter()
            .filter(|l| !matches!(l, Layer::Dropout(_)));
        let Some(Layer::Embedding(embedding)) = layers.next() else {
            return None;
        };
        let Some(Layer::Recurrent(recurrent)) = layers.next() else {
            return None;
        };
        let rest: Vec<&Layer> = layers.collect();
        let supported = |l: &&Layer| {
            matches!(
                l,
                Layer::Linear(_) | Layer::ReLU | Layer::Tanh | Layer::Sigmoid
            )
        };
        let emb = embedding.embeddings();
        if !rest.iter().all(supported) || !emb.device().is_cpu() || emb.dtype() != DType::F32 {
            return None;
        }
        Some(Self::assemble(
            emb,
            recurrent,
            &rest,
            level,
            (context, prompt, length),
        ))
    }

    /// Copies and packs the weights; starts with `prompt`.
    fn assemble(
        emb: &Tensor,
        recurrent: &super::recurrent::Recurrent,
        rest: &[&Layer],
        level: Level,
        (context, prompt, length): (usize, &[u32], usize),
    ) -> Result<Self> {
        let (vocab, dim) = emb.dims2()?;
        let layers = recurrent
            .weights()
            .map(|(w_ih, w_hh, b_ih, b_hh)| {
                Ok(LayerValues {
                    w_ih: values(w_ih)?,
                    w_hh: values(w_hh)?,
                    b_ih: values(b_ih)?,
                    b_hh: b_hh.map(values).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let hidden = recurrent
            .weights()
            .next()
            .map_or(Ok(0), |(_, w_hh, _, _)| w_hh.dim(1))?;
        let cell = if recurrent.is_lstm() {
            StepCell::Lstm
        } else {
            StepCell::Gru
        };
        let stack = StepStack::new(cell, level, &values(emb)?, (vocab, dim, hidden), &layers)
            .ok_or_else(|| {
                candle_core::Error::Msg("generation: the stack's shapes do not fit".into())
            })?;
        let mut width = hidden;
        let mut post = Vec::with_capacity(rest.len());
        for layer in rest {
            post.push(match layer {
                Layer::Linear(l) => {
                    let (out, k) = l.weight().dims2()?;
                    if k != width {
                        candle_core::bail!(
                            "generation: a Linear layer reads {k} values, not {width}"
                        );
                    }
                    width = out;
                    let w = values(l.weight())?;
                    Post::Linear {
                        weight: PackedRhs::for_level(level, (k, out), |r, c| w[c * k + r]),
                        bias: l.bias().map(values).transpose()?,
                        out,
                    }
                }
                Layer::ReLU => Post::Relu,
                Layer::Tanh => Post::Tanh,
                _ => Post::Sigmoid,
            });
        }
        let mut lm = Self {
            stack,
            post,
            context: context.max(1),
            end: prompt.len() + length,
            ids: Vec::with_capacity(prompt.len() + length),
            starts: Vec::new(),
            read: Vec::new(),
            records: Vec::new(),
            newest: None,
            step_ids: Vec::new(),
        };
        for &id in prompt {
            lm.push(id)?;
        }
        Ok(lm)
    }

    /// Appends a token; an id outside the vocabulary is an error.
    pub fn push(&mut self, id: u32) -> Result<()> {
        if id as usize >= self.stack.vocab() {
            candle_core::bail!(
                "generation: token id {id} is outside the vocabulary of {}",
                self.stack.vocab()
            );
        }
        self.ids.push(id);
        Ok(())
    }

    /// The logits of the token after the ones pushed so far.
    pub fn logits(&mut self) -> Result<Vec<f32>> {
        let p = self.ids.len();
        if p == 0 {
            candle_core::bail!("generation: there is no token to continue from");
        }
        let (c, w) = (self.context, self.stack.width());
        // Windows whose last position (start + context) is behind us.
        let gone = self.starts.iter().take_while(|&&s| s + c < p).count();
        self.starts.drain(..gone);
        self.read.drain(..gone);
        self.records.drain(..gone * w);
        // Open the windows of positions p.. that can start (their first token is
        // known), up to `end`.
        let last = (p + c - 1).min(self.end.max(p + 1) - 1);
        for q in p..=last {
            let s = q.saturating_sub(c);
            if self.newest.is_none_or(|n| s > n) {
                self.stack.new_record(&mut self.records);
                self.starts.push(s);
                self.read.push(s);
                self.newest = Some(s);
            }
        }
        // Every window reads up to p; those behind are a leading run (opened
        // earlier or starting earlier), stepped together.
        loop {
            let m = self.read.iter().take_while(|&&r| r < p).count();
            if m == 0 {
                break;
            }
            self.step_ids.clear();
            for r in &mut self.read[..m] {
                self.step_ids.push(self.ids[*r]);
                *r += 1;
            }
            self.stack.step(&mut self.records, &self.step_ids);
        }
        if self.read.iter().any(|&r| r != p) || self.starts.first() != Some(&p.saturating_sub(c)) {
            candle_core::bail!("generation: the windows fell out of step at position {p}");
        }
        let mut x = self.stack.top(&self.records[..w]).to_vec();
        for post in &self.post {
            match post {
                Post::Linear { weight, bias, out } => {
                    let mut y = vec![0f32; *out];
                    let start = bias.as_deref().map_or(Start::Zero, Start::Bias);
                    weight.matmul(1, &mut y, start, &x, x.len());
                    x = y;
                }
                Post::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
                Post::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
                Post::Sigmoid => x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            }
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mode;
    use crate::spec::LayerSpec;
    use candle_core::Device;

    /// Char models of every supported shape: LSTM and GRU, 1 and 2 layers, a
    /// dropout and an activation before the head in the 2-layer ones.
    fn models() -> Vec<(String, Model)> {
        let mut out = Vec::new();
        for lstm in [true, false] {
            for layers in [1, 2] {
                let rnn = if lstm {
                    LayerSpec::LSTM {
                        hidden: 24,
                        layers,
                        dropout: 0.1,
                    }
                } else {
                    LayerSpec::GRU {
                        hidden: 24,
                        layers,
                        dropout: 0.1,
                    }
                };
                let mut specs = vec![LayerSpec::Embedding { dim: 8 }, rnn];
                if layers == 2 {
                    specs.push(LayerSpec::Dropout { p: 0.2 });
                    specs.push(LayerSpec::Tanh);
                }
                let name = format!("{} x{layers}", if lstm { "lstm" } else { "gru" });
                let model = Model::build_with_head(&specs, &[6, 19], Some(19), 5, &Device::Cpu)
                    .expect("model builds");
                out.push((name, model));
            }
        }
        out
    }

    /// The candle path's logits for the window before position `p`.
    fn reference(model: &Model, ids: &[u32], context: usize) -> Vec<f32> {
        let window = &ids[ids.len().saturating_sub(context)..];
        let x = Tensor::new(window, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("ids");
        let logits = model.forward(&x, Mode::Eval).expect("forward");
        logits
            .get(0)
            .and_then(|l| l.get(window.len() - 1))
            .and_then(|l| l.to_vec1::<f32>())
            .expect("logits")
    }

    #[test]
    fn logits_match_the_forward_pass_at_every_level() -> Result<()> {
        let stream: Vec<u32> = (0..40).map(|i| ((i * 7 + i / 3) % 19) as u32).collect();
        for (name, model) in models() {
            for lvl in [Level::Avx512, Level::Avx2, Level::Portable] {
                // Prompts shorter than, as long as and longer than the window;
                // asked past `length` in the last.
                for (prompt, length) in [(1, 20), (6, 9), (11, 30), (3, 2)] {
                    let Some(lm) = WindowedLm::build(&model, lvl, 6, &stream[..prompt], length)
                    else {
                        panic!("{name}: the windowed path was not taken");
                    };
                    let mut lm = lm?;
                    for p in prompt..prompt + 12 {
                        let got = lm.logits()?;
                        let want = reference(&model, &stream[..p], 6);
                        let worst = got
                            .iter()
                            .zip(&want)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert_eq!(got.len(), want.len());
                        assert!(
                            worst < 1e-5,
                            "{name} {lvl:?} prompt {prompt}, position {p}: off by {worst}"
                        );
                        lm.push(stream[p])?;
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn other_models_and_bad_ids_are_refused() -> Result<()> {
        let dev = Device::Cpu;
        let transformer = [
            LayerSpec::Embedding { dim: 8 },
            LayerSpec::PositionEmbedding { context: 4 },
            LayerSpec::Transformer {
                heads: 2,
                width: 16,
            },
        ];
        let m = Model::build_with_head(&transformer, &[4, 10], Some(10), 1, &dev)?;
        assert!(m.windowed_lm(4, &[2], 5).is_none());
        let lstm = [
            LayerSpec::Embedding { dim: 4 },
            LayerSpec::LSTM {
                hidden: 8,
                layers: 1,
                dropout: 0.0,
            },
        ];
        let mut m = Model::build_with_head(&lstm, &[4, 10], Some(10), 1, &dev)?;
        let Some(Err(e)) = m.windowed_lm(4, &[2, 10], 5) else {
            panic!("token 10 of a 10-entry vocabulary was accepted");
        };
        assert!(e.to_string().contains("token id 10"), "{e}");
        m.set_kernels(Kernels::Reference);
        assert!(m.windowed_lm(4, &[2], 5).is_none());
        m.set_kernels(Kernels::Fast);
        m.set_compute(DType::BF16);
        assert!(m.windowed_lm(4, &[2], 5).is_none());
        Ok(())
    }
}
