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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Keeps a run's rayon pool awake during training: each call (once per step)
/// makes sure every other worker of the calling thread's pool runs a job that
/// looks for work in a tight loop, and returns to rayon once it has found none
/// for `IDLE`. A sleeping rayon worker takes tens of microseconds to wake (more
/// in a VM), which is most of the gain of splitting a small model's step across
/// cores; OpenMP (PyTorch's threads) spins in the same way for the same reason.
pub struct PoolWarmer {
    /// Workers currently looking for work.
    looking: Arc<AtomicUsize>,
}

/// How long a worker keeps looking after its last job: longer than the gap
/// between two parallel regions of one small-model step, short enough that a
/// paused or finished run lets the core go at once.
const IDLE: std::time::Duration = std::time::Duration::from_micros(1500);

impl PoolWarmer {
    /// A warmer for the pool the caller runs on.
    pub fn new() -> Self {
        Self {
            looking: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts looking workers until every other worker of the pool is one.
    /// Does nothing outside a rayon pool or in a pool of one thread.
    pub fn warm(&self) {
        let Some(caller) = rayon::current_thread_index() else {
            return;
        };
        let others = rayon::current_num_threads().saturating_sub(1);
        while self.looking.load(Ordering::Acquire) < others {
            self.looking.fetch_add(1, Ordering::AcqRel);
            let looking = Arc::clone(&self.looking);
            rayon::spawn(move || {
                // The caller itself may take the job from its own queue: it
                // must not spin, it has a step to run.
                if rayon::current_thread_index() != Some(caller) {
                    look_for_work();
                }
                looking.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}

impl Default for PoolWarmer {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the pool's pending jobs until none has come for `IDLE`.
fn look_for_work() {
    let mut last = std::time::Instant::now();
    let mut idle_rounds = 0u32;
    loop {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => {
                last = std::time::Instant::now();
                idle_rounds = 0;
            }
            Some(rayon::Yield::Idle) => {
                idle_rounds += 1;
                // Read the clock and let the OS run another thread now and then.
                if idle_rounds.is_multiple_of(64) {
                    if last.elapsed() > IDLE {
                        return;
                    }
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// In a pool of three, a warm call starts two looking workers (never the
    /// caller), they run the pool's jobs, and they go back to rayon once the
    /// jobs stop: a paused run must not keep a core busy.
    #[test]
    fn looking_workers_run_jobs_and_stop_when_idle() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        pool.install(|| {
            let warmer = PoolWarmer::new();
            warmer.warm();
            warmer.warm();
            assert!(
                warmer.looking.load(Ordering::Acquire) <= 2,
                "one per other worker"
            );
            let total: u64 = (0..10_000u64).into_par_iter().map(|i| i * i).sum();
            assert_eq!(total, (0..10_000u64).map(|i| i * i).sum::<u64>());
            let began = std::time::Instant::now();
            while warmer.looking.load(Ordering::Acquire) > 0 {
                assert!(
                    began.elapsed() < std::time::Duration::from_secs(10),
                    "looking workers never stopped"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
    }

    /// Outside a rayon pool there is nothing to warm.
    #[test]
    fn outside_a_pool_nothing_starts() {
        let warmer = PoolWarmer::new();
        std::thread::spawn(move || {
            warmer.warm();
            assert_eq!(warmer.looking.load(Ordering::Acquire), 0);
        })
        .join()
        .expect("thread");
    }
}
