//! Writing one run folder while the run happens.
//!
//! Contract: `metrics.jsonl` only ever holds whole lines. Each event is one
//! `write` of its whole line to the file opened for appending (and closed again:
//! a run holds no file open between events, so its folder can be remounted or
//! unmounted under it); an append that fails (disk full, I/O error) is cut back
//! to the last whole line before the error is returned, so a reader never meets
//! a torn line that this process left.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::files;
use crate::events::{PolicySnapshot, RunSummary, TrainEvent};
use crate::spec::{Experiment, to_ron_string};
use crate::util::atomic::write_atomic;

/// Appends events to `metrics.jsonl` and writes the other files of a run folder.
pub struct RunRecorder {
    dir: PathBuf,
    /// `metrics.jsonl`.
    metrics: PathBuf,
    /// Bytes in `metrics.jsonl` so far (a checkpoint notes it, so that a resumed
    /// run can cut off what was recorded after the checkpoint).
    metrics_bytes: u64,
    /// TensorBoard's copy of the figures (`tb/`), a side channel that never fails a run.
    tensorboard: super::tensorboard::LiveLog,
}

impl RunRecorder {
    /// Creates `dir` (and parents) and writes the resolved experiment into it.
    pub fn create(dir: &Path, exp: &Experiment) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        write_experiment(dir, exp)?;
        File::create(dir.join(files::METRICS))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics: dir.join(files::METRICS),
            metrics_bytes: 0,
            tensorboard: super::tensorboard::LiveLog::start(dir, exp),
        })
    }

    /// Continues the record of an existing run folder: `metrics.jsonl` is cut back
    /// to its first `metrics_bytes` bytes (what was recorded up to the checkpoint
    /// being resumed) and appended to; the experiment file is rewritten (a resume
    /// may extend the epochs).
    pub fn reopen(dir: &Path, exp: &Experiment, metrics_bytes: u64) -> std::io::Result<Self> {
        let path = dir.join(files::METRICS);
        let metrics = std::fs::OpenOptions::new().write(true).open(&path)?;
        let len = metrics.metadata()?.len();
        if len < metrics_bytes {
            return Err(std::io::Error::other(format!(
                "{} has {len} bytes but the checkpoint recorded {metrics_bytes}; \
                 it was changed after the checkpoint",
                path.display()
            )));
        }
        metrics.set_len(metrics_bytes)?;
        drop(metrics);
        write_experiment(dir, exp)?;
        remove_leftovers(dir);
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics: path,
            metrics_bytes,
            tensorboard: super::tensorboard::LiveLog::resume(dir, exp),
        })
    }

    /// Bytes recorded in `metrics.jsonl` so far.
    pub fn metrics_bytes(&self) -> u64 {
        self.metrics_bytes
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one event as a JSON line, handed to the OS whole; on failure the
    /// file is cut back to the last whole line.
    pub fn record(&mut self, event: &TrainEvent) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.metrics)?;
        if let Err(e) = file.write_all(&line) {
            // Part of the line may be on disk; a shorter file needs no new space.
            let _ = file.set_len(self.metrics_bytes);
            return Err(e);
        }
        self.metrics_bytes += line.len() as u64;
        self.tensorboard.record(event);
        Ok(())
    }

    /// Writes `summary.json` atomically.
    pub fn write_summary(&self, summary: &RunSummary) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(summary)?;
        write_atomic(&self.dir.join(files::SUMMARY), &json)
    }

    /// Writes the final Q-values and greedy path (`qtable.json`) atomically.
    pub fn write_policy(&self, snapshot: &PolicySnapshot) -> std::io::Result<()> {
        let json = serde_json::to_vec(snapshot)?;
        write_atomic(&self.dir.join(files::QTABLE), &json)
    }

    /// Where the weights go.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(files::WEIGHTS)
    }
}

/// Removes temporary files that killed processes left in a run folder (they
/// only take space, which may be what ran out).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if crate::util::atomic::is_temp_name(&name.to_string_lossy()) && e.path().is_file() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes the resolved experiment into `dir` atomically.
fn write_experiment(dir: &Path, exp: &Experiment) -> std::io::Result<()> {
    let header = format!(
        "// Resolved experiment of this run (overrides applied). Run it again with:\n\
         //   trainlab run {}\n",
        dir.join(files::EXPERIMENT).display()
    );
    write_atomic(
        &dir.join(files::EXPERIMENT),
        format!("{header}{}\n", to_ron_string(exp)).as_bytes(),
    )
}
