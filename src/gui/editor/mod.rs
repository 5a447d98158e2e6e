//! The panels that edit the experiment and start it: the top bar and its file
//! menu, the document under edit, the layer list, the dataset picker with its
//! per-kind rows (images, text, maze, agent, 2-D points), the hyperparameters,
//! the run controls and the experiment's notes.
//!
//! Contract: each panel edits the [`Experiment`](crate::spec::Experiment) it is
//! given and reports what changed or what the user asked for; the app performs
//! the effects (files, runs).

mod agent_params;
pub(super) mod controls;
pub(super) mod dataset;
pub(super) mod document;
pub(super) mod hyperparams;
pub(super) mod lr_finder;
mod maze_params;
pub(super) mod menu;
pub(super) mod model_editor;
pub(super) mod notes;
pub(super) mod numeric;
mod points_params;
pub(super) mod prompts;
mod text_params;
