//! Models built from the experiment's layer list with candle-nn.
//!
//! Parameters live in a `VarMap` under readable names (`layers.{i}.weight`), so a
//! weight file can be read by any safetensors reader and partially loaded by name.
//! Initial values come from the run's seed, never from candle's unseeded RNG.

mod activation;
pub(crate) use activation::simd_kernel;
mod attention;
mod attention_fused;
mod block_fused;
mod build;
mod conv;
mod cpu_data;
mod dense_fused;
mod dropout;
pub(crate) mod fused;
mod gemm;
mod gru_fused;
mod im2col;
mod init;
mod layer;
mod lstm_fused;
mod pool;
mod recurrent;
mod scratch;
mod seq_layout;
mod skinny;
#[cfg(test)]
mod test_tensors;

pub use build::{Mode, Model};
pub use dropout::seed_device;
pub use fused::classification_loss;

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
