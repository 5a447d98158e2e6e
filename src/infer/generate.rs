//! Sampling text from a language model: the model reads the last `context`
//! tokens (the window it was trained on) and the next token is drawn from its
//! softmax at the given temperature, optionally among the top k only. Padding and
//! `<unk>` are never drawn. Seeded: the same seed and weights give the same text,
//! on either path (`generate_with`; tested below).

use candle_core::{Device, Result, Tensor};

use crate::data::text::{BREAK, PAD, UNK, Vocab};
use crate::model::{Mode, Model};
use crate::util::rng::Rng;

/// How to draw tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Softmax temperature (> 0).
    pub temperature: f64,
    /// Keep only the k most likely tokens.
    pub top_k: Option<usize>,
    /// Tokens to generate.
    pub length: usize,
}

/// Continues `prompt`; returns only the generated part.
///
/// Recurrent char models (an embedding, an LSTM or GRU stack, the head) on the
/// CPU take the windowed path (`model::WindowedLm`): the same logits (within
/// float rounding) and so the same text, without a forward pass per token.
/// Every other model runs `Model::forward` on each window.
pub fn generate(
    model: &Model,
    vocab: &Vocab,
    device: &Device,
    prompt: &str,
    sampling: &Sampling,
    rng: &mut Rng,
) -> Result<String> {
    generate_with(model, vocab, device, prompt, sampling, rng, true)
}

/// `generate`, with the windowed path allowed or not (`windowed`; tests and
/// the benchmark compare the two).
#[doc(hidden)]
pub fn generate_with(
    model: &Model,
    vocab: &Vocab,
    device: &Device,
    prompt: &str,
    sampling: &Sampling,
    rng: &mut Rng,
    windowed: bool,
) -> Result<String> {
    let context = model.input_shape().first().copied().unwrap_or(1).max(1);
    // An empty prompt starts as if after a document break.
    let mut ids = vocab.encode(prompt);
    if ids.is_empty() {
        ids.push(BREAK);
    }
    let start = ids.len();
    let fast = if windowed {
        model.windowed_lm(context, &ids, sampling.length)
    } else {
        None
    };
    if let Some(lm) = fast {
        let mut lm = lm?;
        for _ in 0..sampling.length {
            let id = draw(&lm.logits()?, sampling, rng);
            lm.push(id)?;
            ids.push(id);
        }
        return Ok(vocab.decode(&ids[start..]));
    }
    for _ in 0..sampling.length {
        let window = &ids[ids.len().saturating_sub(context)..];
        let x = Tensor::new(window, device)?.unsqueeze(0)?;
        let logits = model.forward(&x, Mode::Eval)?;
        let last = logits.get(0)?.get(window.len() - 1)?.to_vec1::<f32>()?;
        ids.push(draw(&last, sampling, rng));
    }
    Ok(vocab.decode(&ids[start..]))
}

/// Draws one id from `logits`.
pub(crate) fn draw(logits: &[f32], sampling: &Sampling, rng: &mut Rng) -> u32 {
    let t = sampling.temperature.max(1e-6);
    let mut cands: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != PAD as usize && *i != UNK as usize)
        .map(|(i, &l)| (i, l as f64 / t))
        .collect();
    if let Some(k) = sampling.top_k {
        cands.sort_by(|a, b| b.1.total_cmp(&a.1));
        cands.truncate(k.max(1));
    }
    let max = cands.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = cands.iter().map(|c| (c.1 - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.f64() * total;
    for (c, w) in cands.iter().zip(&weights) {
        if u < *w {
            return c.0 as u32;
        }
        u -= w;
    }
    cands.last().map_or(BREAK, |c| c.0 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_one_is_greedy_and_specials_are_never_drawn() {
        let logits = [9.0f32, 9.0, 0.0, 3.0, 1.0];
        let mut rng = Rng::new(1);
        let s = Sampling {
            temperature: 1.0,
            top_k: Some(1),
            length: 1,
        };
        assert_eq!(draw(&logits, &s, &mut rng), 3);
        let all = Sampling { top_k: None, ..s };
        for _ in 0..200 {
            assert!(draw(&logits, &all, &mut rng) >= 2);
        }
    }

    /// A char vocabulary of 3 specials and 16 letters, and a model over it.
    fn char_model(lstm: bool, layers: usize) -> (Vocab, Model) {
        use crate::spec::{LayerSpec, Tokens};
        let vocab = Vocab::build(["abcdefghijklmnop\n"], Tokens::Chars, false, 1);
        let rnn = if lstm {
            LayerSpec::LSTM {
                hidden: 32,
                layers,
                dropout: 0.0,
            }
        } else {
            LayerSpec::GRU {
                hidden: 32,
                layers,
                dropout: 0.0,
            }
        };
        let specs = [LayerSpec::Embedding { dim: 12 }, rnn];
        let v = vocab.len();
        let model = Model::build_with_head(&specs, &[8, v], Some(v), 3, &Device::Cpu)
            .expect("model builds");
        (vocab, model)
    }

    /// The same seed gives the same text on the windowed path (at every SIMD
    /// level) as through `Model::forward`, for LSTM and GRU, 1 and 2 layers,
    /// prompts shorter and longer than the window.
    #[test]
    fn the_windowed_path_writes_the_same_text() -> Result<()> {
        use crate::model::WindowedLm;
        use crate::util::simd::Level;
        for (lstm, layers) in [(true, 1), (true, 2), (false, 1), (false, 2)] {
            let (vocab, model) = char_model(lstm, layers);
            assert!(model.windowed_lm(8, &[BREAK], 1).is_some());
            for (prompt, seed) in [("", 1), ("abc", 2), ("ponmlkjihgfedcba", 3)] {
                let s = Sampling {
                    temperature: 1.5,
                    top_k: None,
                    length: 40,
                };
                let slow = generate_with(
                    &model,
                    &vocab,
                    &Device::Cpu,
                    prompt,
                    &s,
                    &mut Rng::new(seed),
                    false,
                )?;
                let fast = generate(
                    &model,
                    &vocab,
                    &Device::Cpu,
                    prompt,
                    &s,
                    &mut Rng::new(seed),
                )?;
                let case = format!("lstm {lstm}, {layers} layers, prompt {prompt:?}");
                assert_eq!(fast, slow, "{case}");
                assert_eq!(slow.chars().count(), 40, "{case}");
                for level in [Level::Avx512, Level::Avx2, Level::Portable] {
                    let mut ids = vocab.encode(prompt);
                    if ids.is_empty() {
                        ids.push(BREAK);
                    }
                    let start = ids.len();
                    let mut lm =
                        WindowedLm::build(&model, level, 8, &ids, 40).expect("windowed")?;
                    let mut rng = Rng::new(seed);
                    for _ in 0..40 {
                        let id = draw(&lm.logits()?, &s, &mut rng);
                        lm.push(id)?;
                        ids.push(id);
                    }
                    assert_eq!(vocab.decode(&ids[start..]), slow, "{case}, {level:?}");
                }
            }
        }
        Ok(())
    }
}
