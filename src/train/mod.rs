//! The training worker: a thread that owns device, data, model and optimizer and
//! talks to the world only through [`TrainEvent`]s out and [`Control`] messages in.
//! One loop per kind of learning: supervised classification, and reinforcement
//! learning on mazes (tabular Q-learning / SARSA, DQN).
//!
//! `start` returns at once; data loading errors arrive as a `Failed` event so GUI
//! and CLI handle every failure the same way.

mod batches;
mod clip;
mod control;
mod device;
mod early_stopping;
mod emitter;
mod evaluate;
mod events;
mod finetune;
mod handle;
mod language_model;
mod loss_watch;
mod metrics;
mod optim;
mod probe;
mod rl;
mod rl_events;
mod schedule;
mod steering;
mod supervised;
mod text_classifier;
mod text_setup;
mod worker;

pub use control::{Control, Probe};
pub use device::{available_devices, device_for};
pub use early_stopping::EarlyStopper;
pub use evaluate::normalisation;
pub use events::{
    ClassScores, EvalMetrics, FailureKind, ItemUnit, LanguageMetrics, LayerRow, ProbeAnswer,
    RunInfo, RunSummary, Split, StepItems, StepMetrics, StopReason, TextSample, TrainEvent,
};
pub use handle::{RunHandle, StartOptions, start};
pub use optim::Optimizer;
pub use rl::{TabularLearner, TabularRule};
pub use rl_events::{EnvInfo, EpisodeMetrics, PolicySnapshot, RlSummary};
pub use schedule::lr_at;
