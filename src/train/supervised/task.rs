//! What differs between the supervised run kinds (image classification, text
//! classification, language model): how a training batch is drawn and scored, how
//! a split is evaluated, which probes the live model answers, and what the task
//! adds to the summary. Everything else (steps, schedule, clipping, logging, eval
//! cadence, early stopping, checkpoints, the summary) is the engine's.

use std::collections::BTreeMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::events::{ClassScores, LanguageMetrics, ProbeAnswer, Split};
use crate::model::Model;
use crate::train::Probe;
use crate::train::ResumeError;
use crate::train::emitter::Emitter;
use crate::util::rng::Rng;

/// One training batch, scored.
pub(crate) struct Batch {
    /// Mean loss of the batch, attached to the graph (the engine backpropagates it).
    pub loss: Tensor,
    /// Correct predictions, an f32 scalar on the device.
    pub correct: Tensor,
    /// Predictions made (samples, or tokens for a language model): the accuracy's
    /// denominator and the throughput's unit.
    pub items: usize,
}

/// One evaluation of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskEval {
    pub loss: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]` (empty for language models).
    pub confusion: Vec<Vec<u32>>,
    /// Language models: bits per token and perplexity.
    pub language: Option<LanguageMetrics>,
    /// Text classifiers: per-class precision, recall, F1.
    pub per_class: Vec<ClassScores>,
}

/// A task's own position: its random streams by name and its data order, so that a
/// resumed run draws exactly the batches the uninterrupted one would.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskState {
    pub rngs: BTreeMap<String, [u64; 4]>,
    pub order: Vec<u32>,
}

impl TaskState {
    /// Copies the saved data order into `order` (same length: the same training
    /// split); `what` names the items in the error.
    pub(crate) fn restore_order(
        &self,
        order: &mut Vec<u32>,
        what: &'static str,
    ) -> Result<(), ResumeError> {
        if self.order.len() != order.len() {
            return Err(ResumeError::Order {
                then: self.order.len(),
                what,
                now: order.len(),
            });
        }
        order.clone_from(&self.order);
        Ok(())
    }

    /// The stream `name`, or an error naming it.
    pub(crate) fn rng(&self, name: &str) -> Result<Rng, ResumeError> {
        self.rngs
            .get(name)
            .map(|s| Rng::from_state(*s))
            .ok_or_else(|| ResumeError::Stream {
                name: name.to_string(),
            })
    }
}

/// One kind of supervised learning, as the engine sees it.
pub(crate) trait Task {
    /// The model being trained.
    fn model(&self) -> &Model;

    /// Optimizer steps in one epoch.
    fn steps_per_epoch(&self) -> u64;

    /// Called at the start of every epoch (not when a resumed run continues one).
    fn begin_epoch(&mut self);

    /// Draws batch `index` of the current epoch and scores it (training mode).
    fn train_batch(&mut self, index: usize, dropout: &mut Rng) -> candle_core::Result<Batch>;

    /// Evaluates `split` (Val or Test); None when the split is empty.
    fn evaluate(&mut self, split: Split) -> candle_core::Result<Option<TaskEval>>;

    /// Answers a question about the live model.
    fn answer(&self, probe: &Probe, step: u64) -> ProbeAnswer;

    /// After each step (language models write their live samples here).
    fn after_step(
        &mut self,
        _step: u64,
        _last: bool,
        _emitter: &mut Emitter,
    ) -> candle_core::Result<()> {
        Ok(())
    }

    /// The task's position, for a checkpoint.
    fn state(&self) -> TaskState;

    /// Continues from a checkpoint's [`Task::state`].
    fn restore(&mut self, state: &TaskState) -> Result<(), ResumeError>;

    /// Reference accuracies for the summary (text classifiers).
    fn baselines(&self) -> Option<crate::events::TextBaselines> {
        None
    }

    /// The fixed batch per-layer statistics are measured on (the same samples at
    /// every eval point); None: this kind records none.
    fn stats_batch(&self) -> candle_core::Result<Option<super::layer_stats::StatsBatch<'_>>> {
        Ok(None)
    }
}
