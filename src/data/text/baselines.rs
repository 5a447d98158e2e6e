//! Reference classifiers that a trained text classifier is judged against: the
//! majority class, and a character-bigram naive Bayes.
//!
//! Contract: fitted on the training split only, scored on the split given; pure
//! functions over strings and labels, no candle. The naive Bayes reads each
//! document as the character bigrams of `^text$` (so first and last letters count)
//! with add-one smoothing over the bigrams seen in training plus one for unseen.

use std::collections::HashMap;

use crate::events::TextBaselines;

/// The most common label (the lowest on ties); 0 for no labels.
pub fn majority_class(labels: &[usize]) -> usize {
    let mut counts: Vec<usize> = Vec::new();
    for &l in labels {
        if counts.len() <= l {
            counts.resize(l + 1, 0);
        }
        counts[l] += 1;
    }
    let mut best = 0;
    for (class, &n) in counts.iter().enumerate() {
        if n > counts[best] {
            best = class;
        }
    }
    best
}

/// A multinomial naive Bayes over character bigrams.
pub struct BigramNaiveBayes {
    log_prior: Vec<f64>,
    /// log P(bigram | class), per bigram seen in training.
    log_like: HashMap<(char, char), Vec<f64>>,
    /// log P(unseen bigram | class).
    log_unseen: Vec<f64>,
}

fn bigrams(text: &str) -> impl Iterator<Item = (char, char)> + '_ {
    let chars = std::iter::once('^')
        .chain(text.chars())
        .chain(std::iter::once('$'));
    chars.clone().zip(chars.skip(1))
}

impl BigramNaiveBayes {
    /// Fits on `docs` with `labels` (one per doc) over `classes` classes.
    pub fn fit(docs: &[&str], labels: &[usize], classes: usize) -> Self {
        let mut doc_counts = vec![0usize; classes];
        let mut counts: HashMap<(char, char), Vec<f64>> = HashMap::new();
        let mut totals = vec![0f64; classes];
        for (doc, &label) in docs.iter().zip(labels) {
            doc_counts[label] += 1;
            for bg in bigrams(doc) {
                counts.entry(bg).or_insert_with(|| vec![0.0; classes])[label] += 1.0;
                totals[label] += 1.0;
            }
        }
        // Add-one smoothing over the seen bigrams plus one slot for unseen ones.
        let vocabulary = counts.len() as f64 + 1.0;
        let denominators: Vec<f64> = totals.iter().map(|t| (t + vocabulary).ln()).collect();
        let log_like = counts
            .into_iter()
            .map(|(bg, c)| {
                let l = c
                    .iter()
                    .zip(&denominators)
                    .map(|(n, d)| (n + 1.0).ln() - d)
                    .collect();
                (bg, l)
            })
            .collect();
        let n = docs.len().max(1) as f64;
        Self {
            // Add-one on the priors too, so a class absent from training is not -inf.
            log_prior: doc_counts
                .iter()
                .map(|&c| ((c as f64 + 1.0) / (n + classes as f64)).ln())
                .collect(),
            log_like,
            log_unseen: denominators.iter().map(|d| -d).collect(),
        }
    }

    /// The most probable class of `text`.
    pub fn predict(&self, text: &str) -> usize {
        let mut score = self.log_prior.clone();
        for bg in bigrams(text) {
            let add = self.log_like.get(&bg).unwrap_or(&self.log_unseen);
            score.iter_mut().zip(add).for_each(|(s, a)| *s += a);
        }
        let mut best = 0;
        for (class, &s) in score.iter().enumerate() {
            if s > score[best] {
                best = class;
            }
        }
        best
    }
}

/// Both references fitted on the training documents and scored on `eval`.
pub fn text_baselines(
    train: (&[&str], &[usize]),
    eval: (&[&str], &[usize]),
    classes: usize,
) -> Option<TextBaselines> {
    let (eval_docs, eval_labels) = eval;
    if eval_labels.is_empty() || classes == 0 {
        return None;
    }
    let accuracy = |predict: &dyn Fn(&str) -> usize| {
        let right = eval_docs
            .iter()
            .zip(eval_labels)
            .filter(|(d, l)| predict(d) == **l)
            .count();
        right as f64 / eval_labels.len() as f64
    };
    let majority = majority_class(train.1);
    let nb = BigramNaiveBayes::fit(train.0, train.1, classes);
    Some(TextBaselines {
        majority_accuracy: accuracy(&|_| majority),
        naive_bayes_accuracy: accuracy(&|d| nb.predict(d)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_picks_the_most_common_and_the_lowest_on_ties() {
        assert_eq!(majority_class(&[2, 1, 2, 0]), 2);
        assert_eq!(majority_class(&[1, 0]), 0);
        assert_eq!(majority_class(&[]), 0);
    }

    #[test]
    fn naive_bayes_learns_letter_pairs() {
        // Class 0 words are made of "ab", class 1 of "xy".
        let docs = ["abab", "ba", "aab", "xyx", "yy", "xxy"];
        let labels = [0, 0, 0, 1, 1, 1];
        let nb = BigramNaiveBayes::fit(&docs, &labels, 2);
        assert_eq!(nb.predict("abba"), 0);
        assert_eq!(nb.predict("yxxy"), 1);
        // Nothing seen: still a class, never a panic.
        assert!(nb.predict("qq") < 2);
        assert!(nb.predict("") < 2);
        let b = text_baselines((&docs, &labels), (&["bab", "yxy", "ab"], &[0, 1, 1]), 2)
            .expect("baselines");
        assert!((b.naive_bayes_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert!((b.majority_accuracy - 1.0 / 3.0).abs() < 1e-9);
    }

    /// On the bundled word lists (6 languages) the references are far apart: the
    /// bigrams carry most of what identifies a language.
    #[test]
    fn bundled_language_id_baselines() {
        use crate::data::text::load_corpus;
        use crate::spec::{BundledText, TextSource};
        let corpus =
            load_corpus(&TextSource::Bundled(BundledText::WordLanguages)).expect("bundled words");
        let docs: Vec<&str> = corpus.docs.iter().collect();
        // Every fifth word is held out.
        let (mut train, mut test) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for (i, (d, &l)) in docs.iter().zip(&corpus.labels).enumerate() {
            let side = if i % 5 == 0 { &mut test } else { &mut train };
            side.0.push(*d);
            side.1.push(l);
        }
        let b = text_baselines(
            (&train.0, &train.1),
            (&test.0, &test.1),
            corpus.classes.len(),
        )
        .expect("baselines");
        assert!(b.majority_accuracy < 0.2, "{b:?}");
        assert!(b.naive_bayes_accuracy > 0.6, "{b:?}");
    }
}
