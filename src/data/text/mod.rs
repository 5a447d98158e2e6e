//! Text corpora: reading a [`TextSource`](crate::spec::TextSource) into documents
//! (with labels for classification), the vocabulary, and the seeded
//! train/val/test split. Nothing here knows about tensors.

mod baselines;
mod corpus;
mod docs;
mod error;
mod ids;
mod prep;
mod split;
mod vocab;

pub use baselines::{BigramNaiveBayes, majority_class, text_baselines};
pub use corpus::{Corpus, bundled_words, load_corpus, read_utf8};
pub use docs::Docs;
pub use error::TextDataError;
pub use ids::{LmSplit, LmStreams, TokenIds};
pub use prep::{ClassWeightsError, class_weights, limit_docs, stream};
pub use split::{TextSplits, split_docs};
pub use vocab::{BREAK, PAD, UNK, Vocab};
