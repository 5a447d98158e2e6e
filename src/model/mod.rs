//! Models built from the experiment's layer list with candle-nn.
//!
//! Parameters live in a `VarMap` under readable names (`layers.{i}.weight`), so a
//! weight file can be read by any safetensors reader and partially loaded by name.
//! Initial values come from the run's seed, never from candle's unseeded RNG.

mod build;
mod dropout;
mod init;
mod layer;

pub use build::{Mode, Model};
pub use init::uniform_bound;
