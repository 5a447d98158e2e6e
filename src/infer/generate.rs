//! Sampling text from a language model: the model reads the last `context`
//! tokens (the window it was trained on) and the next token is drawn from its
//! softmax at the given temperature, optionally among the top k only. Padding and
//! `<unk>` are never drawn. Seeded: the same seed and weights give the same text.

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
pub fn generate(
    model: &Model,
    vocab: &Vocab,
    device: &Device,
    prompt: &str,
    sampling: &Sampling,
    rng: &mut Rng,
) -> Result<String> {
    let context = model.input_shape().first().copied().unwrap_or(1).max(1);
    // An empty prompt starts as if after a document break.
    let mut ids = vocab.encode(prompt);
    if ids.is_empty() {
        ids.push(BREAK);
    }
    let start = ids.len();
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
}
