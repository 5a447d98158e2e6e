//! The seeded train/val/test split of a corpus's documents. Labelled corpora are
//! split per class, so every split keeps the class balance.

use super::corpus::Corpus;
use crate::util::rng::Rng;

/// Document indices per split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextSplits {
    /// Training documents.
    pub train: Vec<usize>,
    /// Validation documents.
    pub val: Vec<usize>,
    /// Test documents.
    pub test: Vec<usize>,
}

/// Splits `corpus` with `seed`: `val` and `test` are fractions of each class (or
/// of everything when unlabelled); each split is in shuffled order.
pub fn split_docs(corpus: &Corpus, val: f64, test: f64, seed: u64) -> TextSplits {
    let mut rng = Rng::derive(seed, "text-split");
    let groups: Vec<Vec<usize>> = if corpus.is_labelled() {
        (0..corpus.classes.len())
            .map(|c| {
                (0..corpus.docs.len())
                    .filter(|&i| corpus.labels[i] == c)
                    .collect()
            })
            .collect()
    } else {
        vec![(0..corpus.docs.len()).collect()]
    };
    let mut out = TextSplits::default();
    for mut g in groups {
        rng.shuffle(&mut g);
        let n = g.len();
        let n_test = (n as f64 * test).round() as usize;
        let n_val = (n as f64 * val).round() as usize;
        out.test.extend_from_slice(&g[..n_test]);
        out.val.extend_from_slice(&g[n_test..n_test + n_val]);
        out.train.extend_from_slice(&g[n_test + n_val..]);
    }
    rng.shuffle(&mut out.train);
    out
}
