//! Small helpers shared by several folders: a seeded RNG, atomic file writes,
//! where an installed trainlab keeps its files, process memory figures, the CPU thread count, allocator tuning, the SIMD level, numbers as text.

pub mod allocator;
pub mod atomic;
pub mod install;
pub mod memory;
pub mod rng;
pub mod simd;
pub mod text;
pub mod threads;
