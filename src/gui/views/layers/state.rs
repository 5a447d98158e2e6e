//! What the Layers tab keeps between frames: the learner's choices (which run,
//! which layer) and what the last CSV save did; nothing computed from the records.
//!
//! Contract: plain data, no drawing; `mod.rs` draws it and changes it from what
//! the learner picked.

/// The choices the tab keeps.
#[derive(Debug, Default)]
pub struct LayersState {
    /// The run shown: None for the current run, else a History run's label.
    pub(super) source: Option<String>,
    /// The layer whose distributions are drawn (index in the layer list).
    pub(super) layer: Option<usize>,
    /// What the last CSV save did.
    pub(super) saved: Option<String>,
}
