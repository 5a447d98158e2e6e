//! Messages a consumer sends to a running worker. The worker checks for them
//! between steps, so each takes effect within one step.

/// A request to the training worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Hold before the next step until Resume or Stop.
    Pause,
    /// Continue after Pause.
    Resume,
    /// End the run after the current step: test evaluation, summary and weights are
    /// still written.
    Stop,
    /// Replace the peak learning rate from the next step on (the schedule still
    /// applies); recorded in the run as an LrChanged event.
    SetLearningRate(f64),
}
