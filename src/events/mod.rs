//! The contract between the training worker and everything that watches or steers
//! it: [`TrainEvent`]s out (supervised and reinforcement-learning runs alike) and
//! [`Control`] messages in. Plain serde data, no candle: the GUI, the CLI, the run
//! recorder and studies import this module, never the worker's internals, so the
//! two halves can change apart. A new event is added here and recorded by
//! `runs::RunRecorder` as one JSON line of `metrics.jsonl`.

mod control;
mod latest;
mod layers;
mod look;
mod rl;
mod run;

pub use control::{Control, Probe};
pub use latest::{Latest, SlotCounts, SnapshotClock, Wake};
pub use layers::{Distribution, LayerStat, LayerStats, QUANTILE_LEVELS};
pub use look::{Attribution, Projection, SaliencyMethod};
pub use rl::{EnvInfo, EpisodeMetrics, PolicySnapshot, RlSummary};
pub use run::{
    ClassScores, EvalMetrics, FailureKind, FieldLayer, FieldMaps, FieldWeights, ItemUnit,
    LanguageMetrics, LayerRow, PrecisionSummary, ProbeAnswer, RunInfo, RunSummary, Split,
    StepItems, StepMetrics, StopReason, TextBaselines, TextSample, TrainEvent,
};
