//! Errors while reading text corpora. Each names the file (and line, where there
//! is one) and says what to do.

use std::path::PathBuf;

/// Everything that can go wrong reading text data.
#[derive(Debug, thiserror::Error)]
pub enum TextDataError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bytes that are not UTF-8.
    #[error("{path}:{line}: not valid UTF-8 text; save the file as UTF-8 (e.g. `iconv -t UTF-8`)")]
    Encoding {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A malformed table row or header.
    #[error("{path}:{line}: {problem}")]
    Table {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the row.
        problem: String,
    },
    /// A class folder or label with no text.
    #[error(
        "class '{class}' in {path} has no text; add .txt files with non-empty lines or remove it"
    )]
    EmptyClass {
        /// The class name.
        class: String,
        /// Its folder or the table file.
        path: PathBuf,
    },
    /// The source holds no usable text at all.
    #[error("{what} holds no text (every line is empty)")]
    Empty {
        /// Which source.
        what: String,
    },
    /// A classification source with one class only.
    #[error("{what} has only {found} class(es); classification needs at least 2")]
    TooFewClasses {
        /// Which source.
        what: String,
        /// Classes found.
        found: usize,
    },
    /// A system package is not installed.
    #[error("{what} not found in {path}; install it with `sudo apt install {package}`")]
    MissingPackage {
        /// What was looked for.
        what: String,
        /// Where.
        path: PathBuf,
        /// The Debian package(s) to install.
        package: String,
    },
    /// Bundled assets not found.
    #[error(
        "the bundled word lists ({file}) were not found in {searched}; set TRAINLAB_ASSETS to \
         trainlab's assets folder (the one holding words/)"
    )]
    MissingAssets {
        /// The file looked for.
        file: String,
        /// The folders searched.
        searched: String,
    },
    /// A source that has no labels was used for classification, or the reverse.
    #[error("{0}")]
    WrongTask(String),
    /// vocab.json could not be written or read back.
    #[error("vocabulary file {path}: {problem}")]
    Vocab {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}
