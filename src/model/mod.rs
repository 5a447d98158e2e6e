//! Models built from the experiment's layer list with candle-nn.
//!
//! Parameters live in a `VarMap` under readable names (`layers.{i}.weight`), so a
//! weight file can be read by any safetensors reader and partially loaded by name.
//! Initial values come from the run's seed, never from candle's unseeded RNG.
//!
//! The layers (`build.rs`, the builder of each kind in `builders.rs`, `layer.rs`,
//! `recurrent.rs`, `attention.rs`) are here;
//! the hand-written CPU kernels they run on are in `kernels/`.

mod attention;
mod build;
mod builders;
mod dropout;
mod init;
mod kernels;
mod layer;
mod recurrent;
mod windowed;
pub(crate) use kernels::activation::{leveled_kernel, simd_kernel};
#[cfg(test)]
mod test_tensors;

pub use build::{Mode, Model};
pub use dropout::seed_device;
pub(crate) use kernels::dense_fused::backward;
pub use kernels::fused::classification_loss;
pub use windowed::WindowedLm;

/// Which implementation of the hot operations to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// trainlab's CPU kernels (im2col convolution, fused optimizer updates) where
    /// they apply; candle's ops elsewhere (GPUs, other dtypes).
    #[default]
    Fast,
    /// candle's own ops only: the readable reference the fast kernels are tested against.
    Reference,
}
pub use init::uniform_bound;
