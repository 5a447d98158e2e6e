//! The one error type of `runs` (reading checkpoints, writing TensorBoard files).
//! Each variant keeps the path and the underlying error; its message is the
//! sentence the user reads at the edge (CLI or GUI).

use std::path::PathBuf;

/// Everything that can go wrong reading or writing run files.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// A file or folder could not be read, created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output folder of a TensorBoard export already holds event files.
    #[error(
        "{} already holds TensorBoard event files; choose another -o (TensorBoard \
         would show their points twice)",
        out.display()
    )]
    EventFilesExist {
        /// The output folder.
        out: PathBuf,
    },
    /// A folder given as a run has no record.
    #[error("{} is not a run folder (no {})", dir.display(), super::files::METRICS)]
    NotARun {
        /// The folder.
        dir: PathBuf,
    },
    /// A checkpoint's state file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    StateUnreadable {
        /// `state.json` of the checkpoint.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A checkpoint's state file is not the JSON this version writes.
    #[error("{} is damaged or from another version of trainlab ({source})", path.display())]
    StateDamaged {
        /// `state.json` of the checkpoint.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A checkpoint's tensor file could not be loaded.
    #[error(
        "{} is damaged or incomplete ({source}); resume from an older checkpoint by deleting this folder",
        path.display()
    )]
    TensorsDamaged {
        /// The safetensors file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
}

impl RunsError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
