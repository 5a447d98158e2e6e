//! The CPU thread count for candle's kernels.
//!
//! candle asks for its thread count on every matmul; unless `RAYON_NUM_THREADS` is
//! set, each ask re-reads CPU masks and `/proc/cpuinfo` (measured: ~5 % of an MLP
//! training step). Fixing the variable once at startup removes that cost.
//!
//! candle also runs elementwise ops on a "barrier pool" whose helper threads spin
//! while they wait. On a 2-core machine those spinning threads take the cores that
//! the GEMMs (on rayon) and the GUI need; the elementwise ops of our models are
//! small, so they run on the calling thread (`CANDLE_NUM_THREADS=1`) and only the
//! matrix multiplies are split across cores. Measured under load: the MLP 2-3x and
//! the CNN 1.6x faster (see benches/README.md).

/// Sets `RAYON_NUM_THREADS` to the available parallelism and `CANDLE_NUM_THREADS`
/// to 1, each unless the user set it. Call at the very start of `main`, before any
/// thread exists.
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: called first thing in main, while the process is single-threaded,
        // so no other thread can be reading the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}
