//! Why a lesson check's figure could not be measured. A check with such a figure
//! never holds; `lesson verify` prints the reason beside it.

/// Why a run has no value for a figure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unmeasured {
    /// The run named was not run (its step failed to start, or was skipped).
    #[error("not run")]
    NotRun,
    /// The run failed.
    #[error("the run failed at step {step}: {message}")]
    Failed {
        /// Steps done before the failure.
        step: u64,
        /// The run's own failure message.
        message: String,
    },
    /// The run ended without a summary.
    #[error("the run did not finish")]
    Unfinished,
    /// A maze figure of another kind of run.
    #[error("only maze runs have it")]
    NotMaze,
    /// No Episodes event.
    #[error("no episodes were logged (only maze runs have them)")]
    NoEpisodes,
    /// A language-model figure of another kind of run.
    #[error("only language models have it")]
    NotLanguageModel,
    /// No Step event.
    #[error("no step was logged")]
    NoSteps,
    /// The run has no such split or figure.
    #[error("this run has no {0}")]
    Absent(&'static str),
    /// The greedy path never reaches a goal.
    #[error("the greedy path does not reach a goal")]
    NoGoal,
    /// The greedy path never became optimal.
    #[error("the greedy path never became optimal")]
    NeverOptimal,
    /// No LayerStats event.
    #[error("the run recorded no layer statistics (training.layer_stats, image and points runs)")]
    NoLayerStats,
    /// The gradient ratio needs two layers with parameters.
    #[error("it needs two layers with parameters and a nonzero last gradient")]
    GradientRatio,
    /// The figure of the other run a comparison names.
    #[error("{whose}: {source}")]
    OtherRun {
        /// The other run, e.g. `step "mlp"`.
        whose: String,
        /// Why it has no value.
        source: Box<Unmeasured>,
    },
}
