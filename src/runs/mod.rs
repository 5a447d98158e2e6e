//! Run folders on disk: the resolved experiment, every event as it happens
//! (`metrics.jsonl`, flushed per line so a killed run keeps what it had), the
//! final `summary.json` and `model.safetensors` (gridworld runs: `qtable.json`),
//! and `checkpoints/` to continue from (see [`checkpoints`]). Whole files are written to a
//! temporary name and renamed, so none is ever half-written.

pub mod checkpoints;
mod error;
mod export;
mod fault;
mod folder;
mod history;
mod recorder;
pub mod tensorboard;
pub mod tensorboard_proto;

pub use error::RunsError;
pub use export::metrics_csv;
pub use fault::{WriteFault, failure_message};
pub use folder::{default_run_dir, timestamp_utc};
pub use history::{RunListing, list_runs, read_events, read_events_before, read_record};
pub use recorder::RunRecorder;

/// File names inside a run folder.
pub mod files {
    /// The experiment as run, after `--set` overrides.
    pub const EXPERIMENT: &str = "experiment.ron";
    /// One JSON event per line.
    pub const METRICS: &str = "metrics.jsonl";
    /// Final figures.
    pub const SUMMARY: &str = "summary.json";
    /// Trained weights.
    pub const WEIGHTS: &str = "model.safetensors";
    /// Reinforcement learning: the final Q-values per cell and greedy path.
    pub const QTABLE: &str = "qtable.json";
    /// The vocabulary of a text run (JSON).
    pub const VOCAB: &str = "vocab.json";
}
