//! A language model's token stream held compactly: one id per token in the
//! narrowest unsigned width the vocabulary allows (u8 up to 256 ids, u16 up to
//! 65,536, else u32), and the train/val/test splits as ranges of that one
//! stream rather than three copies.
//!
//! Contract: the split streams read through [`LmStreams::split`] are, id for
//! id, what [`stream`](super::stream) gives for each split's documents (a break
//! token, then every document followed by a break), so a run reads the same
//! windows as before; neighbouring splits share the break between them.

use std::ops::Range;

use super::{BREAK, Docs, TextSplits, Vocab};

/// Token ids in the narrowest width that holds the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenIds {
    /// Vocabularies of at most 256 ids (characters, mostly).
    U8(Vec<u8>),
    /// At most 65,536 ids.
    U16(Vec<u16>),
    /// Anything larger.
    U32(Vec<u32>),
}

impl TokenIds {
    /// An empty stream for a vocabulary of `vocab_len` ids, with room for `capacity`.
    pub fn for_vocab(vocab_len: usize, capacity: usize) -> Self {
        if vocab_len <= 1 << 8 {
            Self::U8(Vec::with_capacity(capacity))
        } else if vocab_len <= 1 << 16 {
            Self::U16(Vec::with_capacity(capacity))
        } else {
            Self::U32(Vec::with_capacity(capacity))
        }
    }

    /// Appends `id` (it fits: the width was chosen from the vocabulary).
    fn push(&mut self, id: u32) {
        match self {
            Self::U8(v) => v.push(id as u8),
            Self::U16(v) => v.push(id as u16),
            Self::U32(v) => v.push(id),
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes one id takes.
    pub fn width(&self) -> usize {
        match self {
            Self::U8(_) => 1,
            Self::U16(_) => 2,
            Self::U32(_) => 4,
        }
    }

    /// Appends the ids at `range` to `out`, widened to u32 (what tensors hold).
    pub fn extend_u32(&self, range: Range<usize>, out: &mut Vec<u32>) {
        match self {
            Self::U8(v) => out.extend(v[range].iter().map(|&x| u32::from(x))),
            Self::U16(v) => out.extend(v[range].iter().map(|&x| u32::from(x))),
            Self::U32(v) => out.extend_from_slice(&v[range]),
        }
    }

    /// The ids at `range`, widened to u32.
    pub fn to_u32(&self, range: Range<usize>) -> Vec<u32> {
        let mut out = Vec::with_capacity(range.len());
        self.extend_u32(range, &mut out);
        out
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Self::U8(v) => v.shrink_to_fit(),
            Self::U16(v) => v.shrink_to_fit(),
            Self::U32(v) => v.shrink_to_fit(),
        }
    }
}

/// Which of the three split streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmSplit {
    /// Training.
    Train,
    /// Validation.
    Val,
    /// Test.
    Test,
}

/// The token streams of a language model's three splits, as ranges of one
/// compact stream.
#[derive(Debug, Clone, PartialEq)]
pub struct LmStreams {
    /// Every split's ids, train then val then test.
    pub ids: TokenIds,
    train: Range<usize>,
    val: Range<usize>,
    test: Range<usize>,
}

impl LmStreams {
    /// Encodes the documents of `splits` (from `docs`) with `vocab`, in one pass.
    pub fn build(splits: &TextSplits, docs: &Docs, vocab: &Vocab) -> Self {
        let parts = [&splits.train, &splits.val, &splits.test];
        // A character is at least one byte: bytes bound the ids from above, so
        // the stream is never reallocated (words: grown, then trimmed).
        let capacity = match vocab.mode {
            crate::spec::Tokens::Chars => parts
                .iter()
                .flat_map(|p| p.iter())
                .map(|&i| docs[i].len() + 1)
                .sum::<usize>()
                .saturating_add(1),
            crate::spec::Tokens::Words => 0,
        };
        let mut ids = TokenIds::for_vocab(vocab.len(), capacity);
        ids.push(BREAK);
        let mut ends = [0usize; 3];
        for (part, end) in parts.iter().zip(ends.iter_mut()) {
            for &i in part.iter() {
                vocab.encode_each(&docs[i], |id| ids.push(id));
                ids.push(BREAK);
            }
            *end = ids.len();
        }
        ids.shrink_to_fit();
        // Each split begins at the break that ends the one before it.
        Self {
            ids,
            train: 0..ends[0],
            val: ends[0] - 1..ends[1],
            test: ends[1] - 1..ends[2],
        }
    }

    /// Where `split`'s stream lies in [`Self::ids`].
    pub fn split(&self, split: LmSplit) -> Range<usize> {
        match split {
            LmSplit::Train => self.train.clone(),
            LmSplit::Val => self.val.clone(),
            LmSplit::Test => self.test.clone(),
        }
    }

    /// The length of `split`'s stream.
    pub fn len(&self, split: LmSplit) -> usize {
        self.split(split).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::text::{Corpus, split_docs, stream};
    use crate::spec::Tokens;

    fn corpus(docs: &[&str]) -> Corpus {
        Corpus {
            docs: docs.iter().collect(),
            labels: Vec::new(),
            classes: Vec::new(),
        }
    }

    #[test]
    fn split_views_read_what_separate_streams_held() {
        let c = corpus(&["hello", "world", "ça va", "über", "x", "yz", "abc", "q"]);
        for (tokens, val, test) in [
            (Tokens::Chars, 0.25, 0.25),
            (Tokens::Words, 0.25, 0.0),
            (Tokens::Chars, 0.0, 0.0),
        ] {
            let splits = split_docs(&c, val, test, 3);
            let vocab = Vocab::build(splits.train.iter().map(|&i| &c.docs[i]), tokens, false, 1);
            let s = LmStreams::build(&splits, &c.docs, &vocab);
            assert_eq!(s.ids.width(), 1);
            for (which, docs) in [
                (LmSplit::Train, &splits.train),
                (LmSplit::Val, &splits.val),
                (LmSplit::Test, &splits.test),
            ] {
                let want = stream(docs, &c.docs, &vocab);
                assert_eq!(s.ids.to_u32(s.split(which)), want, "{tokens:?} {which:?}");
                assert_eq!(s.len(which), want.len());
            }
        }
    }

    #[test]
    fn the_width_follows_the_vocabulary() {
        let cases = [(3, 1), (256, 1), (257, 2), (65_536, 2), (65_537, 4)];
        for (n, width) in cases {
            let mut ids = TokenIds::for_vocab(n, 2);
            ids.push(n as u32 - 1);
            ids.push(2);
            assert_eq!(ids.width(), width, "{n} ids");
            assert_eq!(ids.to_u32(0..2), vec![n as u32 - 1, 2], "{n} ids");
        }
        assert!(TokenIds::for_vocab(3, 0).is_empty());
    }
}
