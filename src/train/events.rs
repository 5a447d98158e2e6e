//! The contract between the training worker and its consumers (GUI, CLI).
//!
//! Events flow out of the worker; control messages flow in. Both are plain data
//! so consumers never need to know how training works. Step events are coalesced:
//! a consumer that falls behind receives fewer, averaged Step events while the run
//! record on disk keeps every one.

use serde::{Deserialize, Serialize};

use super::rl_events::{EnvInfo, EpisodeMetrics, PolicySnapshot, RlSummary};

/// Which part of the data a metric was computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data (metrics averaged over recent steps).
    Train,
    /// Held-out part of the training file, used for early stopping.
    Val,
    /// The test file, evaluated once at the end.
    Test,
}

impl Split {
    /// Lower-case name used in tables and files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

/// What the worker reports. Serialised one per line into `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum TrainEvent {
    /// Data and model are ready; training begins.
    Started(RunInfo),
    /// Progress since the previous Step event.
    Step(StepMetrics),
    /// Loss and accuracy on a split.
    Eval(EvalMetrics),
    /// The learning rate was changed by a control message.
    LrChanged {
        /// Step at which the new rate takes effect.
        step: u64,
        /// New peak learning rate (the schedule still scales it).
        lr: f64,
    },
    /// Training is paused at this step.
    Paused {
        /// Steps done.
        step: u64,
    },
    /// Training resumed.
    Resumed {
        /// Steps done.
        step: u64,
    },
    /// A line for the log (e.g. early stopping triggered).
    Note {
        /// Steps done.
        step: u64,
        /// Human-readable text.
        message: String,
    },
    /// The answer to a [`crate::train::Probe`]; sent only to the consumer, never
    /// recorded (it is a view of the model, not part of the run's history).
    Probed(ProbeAnswer),
    /// Reinforcement learning: the maze and its exact solution (once, after Started).
    Environment(EnvInfo),
    /// Reinforcement learning: progress over recent episodes.
    Episodes(EpisodeMetrics),
    /// Reinforcement learning: the current Q-values and greedy path. Not recorded
    /// in `metrics.jsonl` (the last one goes to `qtable.json`); a slow consumer
    /// only gets the newest.
    Policy(PolicySnapshot),
    /// The run ended normally (all epochs, early stop, or a Stop request).
    Finished(RunSummary),
    /// The run ended with an error; nothing more follows.
    Failed {
        /// Steps done before the failure.
        step: u64,
        /// Whose problem it is: the user's setup, the training dynamics, or a bug.
        kind: FailureKind,
        /// What went wrong and what to try.
        message: String,
    },
}

/// What the live model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProbeAnswer {
    /// Softmax probabilities per class for a `Probe::Classify`.
    Classified {
        /// The request's tag.
        id: u64,
        /// Steps done when the model was asked.
        step: u64,
        /// One probability per class, summing to 1.
        probabilities: Vec<f32>,
    },
    /// The first trainable tensor, e.g. `[out, in]` for Linear, `[out, c, k, k]`
    /// for Conv2d.
    FirstLayer {
        /// Steps done when the snapshot was taken.
        step: u64,
        /// Parameter name, e.g. `layer1.weight`.
        name: String,
        /// Tensor shape.
        shape: Vec<usize>,
        /// Row-major values.
        values: Vec<f32>,
    },
    /// The probe could not be answered (e.g. wrong image size).
    Unavailable {
        /// Why, for people.
        reason: String,
    },
}

/// Broad cause of a failed run, so consumers can react (the CLI's exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Missing or corrupt data, unavailable device, unwritable run folder.
    BadInput,
    /// The loss became NaN or infinite.
    Diverged,
    /// Anything else (a candle error, a panic in the worker).
    Internal,
}

/// Facts known once data and model are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Experiment name.
    pub name: String,
    /// Run folder, when recording to disk.
    pub run_dir: Option<String>,
    /// Device description, e.g. "cpu" or "cuda:0".
    pub device: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Samples per split.
    pub train_samples: usize,
    /// Validation samples (0 when disabled).
    pub val_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Planned optimizer steps for the whole run.
    pub total_steps: u64,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// One line per layer: kind, output shape, parameters.
    pub layers: Vec<LayerRow>,
}

/// One row of the model table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Layer kind.
    pub kind: String,
    /// Output shape of one sample.
    pub output: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
}

impl LayerRow {
    /// The rows of a layer list applied to one-sample input shape `input`.
    pub(crate) fn table(
        layers: &[crate::spec::LayerSpec],
        input: &[usize],
    ) -> Result<Vec<Self>, crate::spec::ValidationError> {
        Ok(crate::spec::infer_shapes(layers, input)?
            .into_iter()
            .map(|l| Self {
                kind: l.kind.to_string(),
                output: l.output,
                params: l.params,
            })
            .collect())
    }
}

/// Training progress over the steps since the previous Step event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Optimizer steps done so far.
    pub step: u64,
    /// Fractional epoch, e.g. 1.5 = halfway through the second epoch.
    pub epoch: f64,
    /// Mean training loss over the covered steps.
    pub loss: f64,
    /// Training accuracy over the covered steps.
    pub accuracy: f64,
    /// Learning rate in effect at the last covered step.
    pub lr: f64,
    /// Training throughput over the covered steps.
    pub samples_per_sec: f64,
    /// Number of optimizer steps this event covers (more than the logging interval
    /// when events were merged for a slow consumer).
    pub steps_covered: u64,
}

/// Metrics of one evaluation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Optimizer steps done when evaluated.
    pub step: u64,
    /// Fractional epoch.
    pub epoch: f64,
    /// Which split.
    pub split: Split,
    /// Mean cross-entropy loss.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All epochs (or episodes) done.
    Completed,
    /// Validation loss stopped improving.
    EarlyStopped,
    /// A Stop control message.
    Stopped,
    /// The greedy path became optimal and `agent.stop_when_optimal` is set.
    Solved,
}

/// Final figures of a run, also written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Experiment name.
    pub name: String,
    /// Why it ended.
    pub reason: StopReason,
    /// Optimizer steps done.
    pub steps: u64,
    /// Fractional epochs done.
    pub epochs: f64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Mean training loss over the last epoch's logged steps.
    pub train_loss: Option<f64>,
    /// Training accuracy over the last epoch's logged steps.
    pub train_accuracy: Option<f64>,
    /// Last validation loss.
    pub val_loss: Option<f64>,
    /// Last validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Test loss at the end.
    pub test_loss: Option<f64>,
    /// Test accuracy at the end.
    pub test_accuracy: Option<f64>,
    /// Wall-clock seconds from start to finish (data loading included).
    pub wall_seconds: f64,
    /// Seconds spent in training steps only.
    pub train_seconds: f64,
    /// Training samples per second over the whole run.
    pub samples_per_sec: f64,
    /// Peak resident memory of the process in bytes, when the OS reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Learning-rate changes made during the run: (step, new lr).
    pub lr_changes: Vec<(u64, f64)>,
    /// Reinforcement-learning figures (gridworld runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<RlSummary>,
}
