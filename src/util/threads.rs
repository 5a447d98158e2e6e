//! The CPU thread count for candle's kernels.
//!
//! candle asks for its thread count on every matmul; unless `RAYON_NUM_THREADS` is
//! set, each ask re-reads CPU masks and `/proc/cpuinfo` (measured: ~5 % of an MLP
//! training step). Fixing the variable once at startup removes that cost.

/// Sets `RAYON_NUM_THREADS` to the available parallelism unless the user set it.
/// Call at the very start of `main`, before any thread exists.
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: called first thing in main, while the process is single-threaded,
    // so no other thread can be reading the environment.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
}
