//! The training worker: a thread that owns device, data, model and optimizer and
//! talks to the world only through [`TrainEvent`]s out and [`Control`] messages in.
//! One engine for supervised learning (`supervised/`: images, text classification
//! and language models are tasks it runs), one loop for reinforcement learning on
//! mazes (`rl/`: tabular Q-learning / SARSA, DQN). Runs checkpoint into their folder
//! and can continue from a checkpoint (`StartOptions::resume_from`).
//!
//! `start` returns at once; data loading errors arrive as a `Failed` event so GUI
//! and CLI handle every failure the same way.

mod batches;
mod checkpoint;
mod clip;
mod device;
mod early_stopping;
mod emitter;
mod error;
mod evaluate;
mod finetune;
mod handle;
mod loss_scale;
mod loss_watch;
pub mod lr_find;
mod metrics;
mod optim;
mod precision;
mod probe;
pub mod prune;
mod rl;
mod schedule;
mod steering;
pub(crate) mod supervised;
mod worker;

pub use crate::events::{
    ClassScores, EvalMetrics, FailureKind, FieldLayer, FieldMaps, FieldWeights, ItemUnit,
    LanguageMetrics, LayerRow, PrecisionSummary, ProbeAnswer, RunInfo, RunSummary, Split,
    StepItems, StepMetrics, StopReason, TextSample, TrainEvent,
};
pub use crate::events::{Control, Probe};
pub use crate::events::{EnvInfo, EpisodeMetrics, PolicySnapshot, RlSummary};
pub use clip::GradScale;
pub use device::{available_devices, device_for};
pub use early_stopping::EarlyStopper;
pub use error::DeviceError;
pub(crate) use error::ResumeError;
pub use handle::{RunHandle, StartOptions, start};
pub use optim::Optimizer;
pub use rl::{TabularLearner, TabularRule};
pub use schedule::{Choose, LrAgent, lr_at};
