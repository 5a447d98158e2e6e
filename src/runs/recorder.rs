//! Writing one run folder while the run happens.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::files;
use crate::spec::{Experiment, to_ron_string};
use crate::train::{PolicySnapshot, RunSummary, TrainEvent};
use crate::util::atomic::write_atomic;

/// Appends events to `metrics.jsonl` and writes the other files of a run folder.
pub struct RunRecorder {
    dir: PathBuf,
    metrics: BufWriter<File>,
}

impl RunRecorder {
    /// Creates `dir` (and parents) and writes the resolved experiment into it.
    pub fn create(dir: &Path, exp: &Experiment) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let header = format!(
            "// Resolved experiment of this run (overrides applied). Run it again with:\n\
             //   trainlab run {}\n",
            dir.join(files::EXPERIMENT).display()
        );
        write_atomic(
            &dir.join(files::EXPERIMENT),
            format!("{header}{}\n", to_ron_string(exp)).as_bytes(),
        )?;
        let metrics = File::create(dir.join(files::METRICS))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics: BufWriter::new(metrics),
        })
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one event as a JSON line and flushes it to the OS.
    pub fn record(&mut self, event: &TrainEvent) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.metrics, event)?;
        self.metrics.write_all(b"\n")?;
        self.metrics.flush()
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
