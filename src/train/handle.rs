//! Starting a run: spawns the worker thread and hands back the two channel ends.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::control::Control;
use super::emitter::Emitter;
use super::events::{FailureKind, TrainEvent};
use crate::model::Kernels;
use crate::spec::Experiment;

/// How to start a run (everything that is not part of the experiment itself).
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Record the run into this folder (created); None runs without a record.
    pub run_dir: Option<PathBuf>,
    /// Fast CPU kernels or candle's reference ops (for tests and checks).
    pub kernels: Kernels,
    /// Capacity of the event channel; Step events beyond it are merged.
    pub event_capacity: usize,
    /// Continue from this checkpoint folder (`runs::checkpoints`) into `run_dir`
    /// instead of starting afresh; the run folder's record is continued.
    pub resume_from: Option<PathBuf>,
    /// End the run as a Stop would once this many steps (gridworld: episodes) are
    /// done, with a checkpoint there; for tests and for schedulers that train in stages.
    pub halt_after_step: Option<u64>,
    /// The same, counted in epochs (supervised runs; studies stop ASHA rungs so).
    pub halt_after_epochs: Option<usize>,
    /// Cores for this run's kernels (None: all of them); runs side by side
    /// (study trials) each take their share.
    pub threads: Option<usize>,
    /// Slow motion from the start: steps (gridworld: episodes) per second; the
    /// consumer may change it with `Control::SetPace`.
    pub pace: Option<f64>,
    /// F16 runs: the first loss scale (None: `loss_scale::INITIAL_SCALE`, 2^16);
    /// tests start far higher to force gradient overflows.
    pub initial_loss_scale: Option<f64>,
    /// The command a failure message offers to continue a run that could not
    /// save what it trained (None: `trainlab resume RUN_DIR`; study trials name
    /// `trainlab study resume`).
    pub continue_with: Option<String>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            run_dir: None,
            kernels: Kernels::Fast,
            event_capacity: 1024,
            resume_from: None,
            halt_after_step: None,
            halt_after_epochs: None,
            threads: None,
            pace: None,
            initial_loss_scale: None,
            continue_with: None,
        }
    }
}

/// The consumer's side of a running worker. Dropping it stops the run.
pub struct RunHandle {
    events: Receiver<TrainEvent>,
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl RunHandle {
    /// Events from the worker; the channel closes after Finished or Failed.
    pub fn events(&self) -> &Receiver<TrainEvent> {
        &self.events
    }

    /// Sends a control message; false if the worker has already ended.
    pub fn send(&self, control: Control) -> bool {
        self.control.send(control).is_ok()
    }

    /// Whether the worker thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the worker thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            // The worker turns its own panics into Failed events; nothing to report here.
            let _ = t.join();
        }
    }
}

/// Starts training `exp` on a new thread. Returns at once; every outcome,
/// including bad data or a panic, arrives as an event.
pub fn start(exp: Experiment, options: StartOptions) -> RunHandle {
    let (event_tx, events) = bounded(options.event_capacity.max(1));
    let (control, control_rx) = unbounded();
    let threads = options.threads;
    let thread = std::thread::Builder::new()
        .name(format!("trainlab-worker-{}", exp.name))
        .spawn(move || {
            let name = exp.name.clone();
            let work = move || {
                let mut emitter = Emitter::new(event_tx);
                super::worker::run_worker(exp, options, &mut emitter, control_rx);
            };
            // The loop runs on a thread of the run's own rayon pool, so the kernels'
            // parallel parts start on the loop's thread, which does its share,
            // instead of handing all of it to the pool and sleeping until woken
            // (measured: the MLP step ~1.6x faster, see benches/README.md).
            // Its size is `threads`, else rayon's default: RAYON_NUM_THREADS (set
            // at startup, see util::threads), else every core.
            let mut pool = rayon::ThreadPoolBuilder::new()
                .thread_name(move |i| format!("trainlab-{name}-{i}"));
            if let Some(n) = threads {
                pool = pool.num_threads(n.max(1));
            }
            match pool.build() {
                Ok(pool) => pool.install(work),
                Err(_) => work(),
            }
        });
    match thread {
        Ok(t) => RunHandle {
            events,
            control,
            thread: Some(t),
        },
        Err(e) => {
            // No thread: report through a channel that already holds the failure.
            let (tx, events) = bounded(1);
            let _ = tx.send(TrainEvent::Failed {
                step: 0,
                kind: FailureKind::Internal,
                message: format!("could not start the training thread: {e}"),
            });
            RunHandle {
                events,
                control,
                thread: None,
            }
        }
    }
}
