//! Writing one run folder while the run happens.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use super::files;
use crate::spec::{Experiment, to_ron_string};
use crate::train::{PolicySnapshot, RunSummary, TrainEvent};
use crate::util::atomic::write_atomic;

/// Appends events to `metrics.jsonl` and writes the other files of a run folder.
pub struct RunRecorder {
    dir: PathBuf,
    metrics: BufWriter<File>,
    /// Bytes in `metrics.jsonl` so far (a checkpoint notes it, so that a resumed
    /// run can cut off what was recorded after the checkpoint).
    metrics_bytes: u64,
}

impl RunRecorder {
    /// Creates `dir` (and parents) and writes the resolved experiment into it.
    pub fn create(dir: &Path, exp: &Experiment) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        write_experiment(dir, exp)?;
        let metrics = File::create(dir.join(files::METRICS))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics: BufWriter::new(metrics),
            metrics_bytes: 0,
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
        let mut metrics = BufWriter::new(metrics);
        metrics.seek(std::io::SeekFrom::End(0))?;
        write_experiment(dir, exp)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics,
            metrics_bytes,
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

    /// Appends one event as a JSON line and flushes it to the OS.
    pub fn record(&mut self, event: &TrainEvent) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.metrics.write_all(&line)?;
        self.metrics.flush()?;
        self.metrics_bytes += line.len() as u64;
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
