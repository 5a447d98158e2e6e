//! Text data preparation shared by training and by the exported PyTorch script
//! (`export/pytorch_text.rs`), so the two cannot drift: a language model's token
//! stream, a classifier's class weights, and the seeded document limit.

use super::{BREAK, Corpus, Docs, Vocab};
use crate::spec::ClassWeights;

/// Keeps a seeded random `limit` documents (labels follow them).
pub fn limit_docs(corpus: &mut Corpus, limit: usize, seed: u64) {
    if corpus.docs.len() <= limit {
        return;
    }
    let mut idx: Vec<usize> = (0..corpus.docs.len()).collect();
    crate::util::rng::Rng::derive(seed, "text-limit").shuffle(&mut idx);
    idx.truncate(limit);
    idx.sort_unstable();
    corpus.docs = corpus.docs.subset(&idx);
    if corpus.is_labelled() {
        corpus.labels = idx.iter().map(|&i| corpus.labels[i]).collect();
    }
}

/// One token stream with break tokens between documents.
pub fn stream(docs: &[usize], corpus: &Docs, vocab: &Vocab) -> Vec<u32> {
    let mut out = vec![BREAK];
    for &i in docs {
        out.extend(vocab.encode(&corpus[i]));
        out.push(BREAK);
    }
    out
}

/// Given class weights that do not fit the labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "dataset.task.class_weights: give {classes} positive weights (one per class), got {given:?}"
)]
pub struct ClassWeightsError {
    /// How many classes the labels have.
    pub classes: usize,
    /// The weights the file gave.
    pub given: Vec<f64>,
}

/// Loss weight per class: none, balanced from the training labels, or given.
pub fn class_weights(
    spec: &ClassWeights,
    labels: &[u32],
    k: usize,
) -> Result<Option<Vec<f32>>, ClassWeightsError> {
    match spec {
        ClassWeights::None => Ok(None),
        ClassWeights::Given(w) => {
            if w.len() != k || w.iter().any(|x| !(*x > 0.0 && x.is_finite())) {
                return Err(ClassWeightsError {
                    classes: k,
                    given: w.clone(),
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_are_inverse_counts_with_mean_one() -> Result<(), ClassWeightsError> {
        // Counts 3 and 1: raw 1/3 and 1, mean 2/3, so 0.5 and 1.5.
        let w = class_weights(&ClassWeights::Balanced, &[0, 0, 0, 1], 2)?.unwrap_or_default();
        assert_eq!(w, vec![0.5, 1.5]);
        Ok(())
    }

    #[test]
    fn given_weights_must_be_one_positive_per_class() {
        let ok = class_weights(&ClassWeights::Given(vec![1.0, 2.0]), &[], 2);
        assert_eq!(ok, Ok(Some(vec![1.0, 2.0])));
        for bad in [vec![1.0], vec![1.0, 0.0], vec![1.0, f64::NAN]] {
            let err = class_weights(&ClassWeights::Given(bad), &[], 2)
                .unwrap_err()
                .to_string();
            assert!(err.contains("give 2 positive weights"), "{err}");
        }
        assert_eq!(class_weights(&ClassWeights::None, &[0, 1], 2), Ok(None));
    }

    #[test]
    fn the_stream_puts_a_break_before_after_and_between_documents() {
        let corpus: Docs = ["ab", "b"].into_iter().collect();
        let vocab = Vocab::build(corpus.iter(), crate::spec::Tokens::Chars, false, 1);
        let s = stream(&[1, 0], &corpus, &vocab);
        let mut want = vec![BREAK];
        want.extend(vocab.encode("b"));
        want.push(BREAK);
        want.extend(vocab.encode("ab"));
        want.push(BREAK);
        assert_eq!(s, want);
    }
}
