//! Text corpora: reading a [`TextSource`](crate::spec::TextSource) into documents
//! (with labels for classification), the vocabulary, and the seeded
//! train/val/test split. Nothing here knows about tensors.

mod corpus;
mod error;
mod split;
mod vocab;

pub use corpus::{Corpus, bundled_words, load_corpus, read_utf8};
pub use error::TextDataError;
pub use split::{TextSplits, split_docs};
pub use vocab::{BREAK, PAD, UNK, Vocab};
