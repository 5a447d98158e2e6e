//! The text dataset settings: where the text comes from, how it is cut into tokens,
//! and which task it feeds (next-token language model or text classification).
//! Plain serde data; the corpus itself is read in `data::text`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A text dataset and the task trained on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextDatasetSpec {
    /// Where the text comes from.
    pub source: TextSource,
    /// Characters (default) or whitespace-separated words.
    pub tokens: Tokens,
    /// Lower-case everything before building the vocabulary.
    pub lowercase: bool,
    /// What is learned from it.
    pub task: TextTask,
    /// Fraction held out for validation (early stopping, val loss).
    pub val_fraction: f64,
    /// Fraction held out for the final test.
    pub test_fraction: f64,
    /// Use at most this many documents (words, lines, files) before splitting.
    pub limit: Option<usize>,
}

impl Default for TextDatasetSpec {
    fn default() -> Self {
        Self {
            source: TextSource::Bundled(BundledText::Words),
            tokens: Tokens::Chars,
            lowercase: false,
            task: TextTask::default(),
            val_fraction: 0.1,
            test_fraction: 0.1,
            limit: None,
        }
    }
}

/// Where text is read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TextSource {
    /// Word lists shipped in `assets/words/` (works offline, on a fresh machine).
    Bundled(BundledText),
    /// Installed Debian packages (`fortunes*`, `w*` word lists).
    System(SystemText),
    /// One plain UTF-8 file; each non-empty line is a document (language models).
    File(PathBuf),
    /// One subfolder per class holding `.txt` files; each non-empty line is a sample.
    Folder(PathBuf),
    /// A CSV (`,`) or TSV (`.tsv`, tab) file with a header row naming the columns.
    Table {
        /// The file.
        path: PathBuf,
        /// Header of the text column.
        text_column: String,
        /// Header of the label column.
        label_column: String,
    },
}

/// The bundled word lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundledText {
    /// Every bundled word, one document per word (language model of word shapes).
    Words,
    /// The words of one language only, by its code (`en`, `de`, `fr`, `es`, `it`, `pt`).
    WordsOf(Language),
    /// Words labelled by language (classification: "which language is this word?").
    WordLanguages,
}

/// A language of the bundled word lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types)]
pub enum Language {
    /// English (wamerican).
    en,
    /// German (wngerman).
    de,
    /// French (wfrench).
    fr,
    /// Spanish (wspanish).
    es,
    /// Italian (witalian).
    it,
    /// Portuguese (wportuguese).
    pt,
}

impl Language {
    /// Every bundled language, in label order.
    pub const ALL: [Language; 6] = [Self::en, Self::de, Self::fr, Self::es, Self::it, Self::pt];

    /// The two-letter code, also the asset file name.
    pub fn code(self) -> &'static str {
        match self {
            Self::en => "en",
            Self::de => "de",
            Self::fr => "fr",
            Self::es => "es",
            Self::it => "it",
            Self::pt => "pt",
        }
    }
}

/// Text from installed Debian packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemText {
    /// English fortunes (package `fortunes`), one document per fortune.
    Fortunes,
    /// English fortunes labelled by their file (topic classification).
    FortuneTopics,
    /// Fortunes labelled by language (`fortunes`, `fortunes-de`, `-es`, `-it`).
    FortuneLanguages,
    /// Full word lists from /usr/share/dict labelled by language.
    WordLanguages,
}

/// How text is cut into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Tokens {
    /// One token per Unicode character.
    #[default]
    Chars,
    /// One token per whitespace-separated word; rare words become `<unk>`.
    Words,
}

/// What a text run learns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TextTask {
    /// Predict the next token at every position (teacher forcing, truncated BPTT).
    LanguageModel(LanguageModelSpec),
    /// One label per document.
    Classification(ClassificationSpec),
}

impl Default for TextTask {
    fn default() -> Self {
        Self::LanguageModel(LanguageModelSpec::default())
    }
}

/// Language-model settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageModelSpec {
    /// Tokens per training window (backpropagation runs this far back in time).
    pub seq_len: usize,
    /// Print a generated sample every N steps (None: never during training).
    pub sample_every_steps: Option<usize>,
    /// How live samples are drawn.
    pub sample: SampleSpec,
}

impl Default for LanguageModelSpec {
    fn default() -> Self {
        Self {
            seq_len: 32,
            sample_every_steps: Some(200),
            sample: SampleSpec::default(),
        }
    }
}

/// How a sample is generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleSpec {
    /// Text the model continues (may be empty: it starts after a document break).
    pub prompt: String,
    /// Softmax temperature: < 1 safer, > 1 wilder.
    pub temperature: f64,
    /// Draw only from the k most likely tokens (None: all).
    pub top_k: Option<usize>,
    /// Tokens to generate.
    pub length: usize,
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            temperature: 0.8,
            top_k: None,
            length: 80,
        }
    }
}

/// Classification settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassificationSpec {
    /// Longer documents are cut to this many tokens (shorter ones are padded).
    pub max_len: usize,
    /// Two classes with one logit and binary cross-entropy (the model ends in 1 output).
    pub binary: bool,
    /// Weight the loss per class.
    pub class_weights: ClassWeights,
}

impl Default for ClassificationSpec {
    fn default() -> Self {
        Self {
            max_len: 24,
            binary: false,
            class_weights: ClassWeights::None,
        }
    }
}

/// Per-class loss weights for imbalanced data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum ClassWeights {
    /// Every class counts the same per sample.
    #[default]
    None,
    /// Inverse class frequency in the training split, normalised to mean 1.
    Balanced,
    /// Given weights, one per class in label order.
    Given(Vec<f64>),
}
