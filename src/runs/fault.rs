//! What a run could not write, and the one message that says so.
//!
//! Contract: a run that trained but could not save something it trained (its
//! record, a checkpoint, the model, the summary) ends as a failure whose message
//! names each file not written, why (the system's words: "no space left on
//! device"), the last whole checkpoint, and the command that continues from it.
//! The CLI prints this message as its last line and the GUI shows it, so both
//! say the same thing.

use std::path::{Path, PathBuf};

use super::checkpoints;
use crate::util::atomic::{is_no_space, os_words};

/// One file (or folder) a run could not write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteFault {
    /// What it is, as a message names it ("the model", "a checkpoint at step 40").
    pub what: String,
    /// Where it should have gone.
    pub path: PathBuf,
    /// Why, in the system's words.
    pub reason: String,
    /// The disk (or quota) is full.
    pub no_space: bool,
}

impl WriteFault {
    /// A fault from an I/O error.
    pub fn io(what: impl Into<String>, path: &Path, error: &std::io::Error) -> Self {
        Self {
            what: what.into(),
            path: path.to_path_buf(),
            reason: os_words(error),
            no_space: is_no_space(error),
        }
    }

    /// A fault from an error that carries an I/O error only as text (candle's).
    pub fn text(what: impl Into<String>, path: &Path, error: &dyn std::fmt::Display) -> Self {
        let reason = os_words(error);
        let no_space = reason.to_lowercase().contains("no space left")
            || reason.to_lowercase().contains("quota exceeded");
        Self {
            what: what.into(),
            path: path.to_path_buf(),
            reason,
            no_space,
        }
    }
}

impl std::fmt::Display for WriteFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.what,
            self.path.display(),
            self.reason
        )
    }
}

/// The message of a run in `run_dir` that could not write `faults`: what, where,
/// why, the last whole checkpoint, and how to continue (`continue_with`, else
/// `trainlab resume RUN_DIR`).
pub fn failure_message(
    run_dir: &Path,
    faults: &[WriteFault],
    continue_with: Option<&str>,
) -> String {
    let what: Vec<String> = faults.iter().map(ToString::to_string).collect();
    let fix = if faults.iter().any(|f| f.no_space) {
        "free some space on that disk".to_string()
    } else {
        format!("make {} writable", run_dir.display())
    };
    let next = match checkpoints::latest(run_dir) {
        Some((_, dir)) => format!(
            "The last whole checkpoint is {}; {fix}, then continue with `{}`",
            dir.display(),
            continue_with.map_or_else(
                || format!("trainlab resume {}", run_dir.display()),
                str::to_string
            )
        ),
        None => match continue_with {
            Some(command) => {
                format!("There is no whole checkpoint yet; {fix}, then continue with `{command}`")
            }
            None => format!(
                "There is no whole checkpoint to continue from; {fix}, then run it again with \
                 `trainlab run {} --out NEW_FOLDER`",
                run_dir.join(super::files::EXPERIMENT).display()
            ),
        },
    };
    format!(
        "could not save what it trained: {}. {next}",
        what.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_file_reason_checkpoint_and_command() {
        let run = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(run.path().join("checkpoints/step-0000000020")).expect("mkdir");
        let model = run.path().join("model.safetensors");
        let full = std::io::Error::from_raw_os_error(28);
        let msg = failure_message(
            run.path(),
            &[WriteFault::io("the model", &model, &full)],
            None,
        );
        for part in [
            "the model",
            &model.display().to_string(),
            "no space left on device",
            "step-0000000020",
            "free some space",
            &format!("trainlab resume {}", run.path().display()),
        ] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
        let ro = std::io::Error::from_raw_os_error(30);
        let empty = tempfile::tempdir().expect("tmp");
        let msg = failure_message(
            empty.path(),
            &[WriteFault::io("the record", &model, &ro)],
            None,
        );
        assert!(msg.contains("read-only file system"), "{msg}");
        assert!(msg.contains("no whole checkpoint"), "{msg}");
        assert!(msg.contains("writable"), "{msg}");
    }
}
