//! Starting a run: spawns the worker thread and hands back the two channel ends,
//! plus the latest-value slot a viewer takes the maze's policy from.
//!
//! Contract: nothing the consumer does or fails to do makes the worker wait. The
//! event channel is unbounded; the worker thins frequent events once
//! `event_capacity` wait (`emitter`). A viewer drains with [`RunHandle::drain`]
//! and takes snapshots from [`RunHandle::policy`] at its own frame rate; the
//! worker calls [`StartOptions::wake`] at most once per drain or take.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

use super::emitter::Emitter;
use crate::events::{Control, Latest, PolicySnapshot, Wake};
use crate::events::{FailureKind, TrainEvent};
use crate::model::Kernels;
use crate::spec::Experiment;

/// How to start a run (everything that is not part of the experiment itself).
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Record the run into this folder (created); None runs without a record.
    pub run_dir: Option<PathBuf>,
    /// Fast CPU kernels or candle's reference ops (for tests and checks).
    pub kernels: Kernels,
    /// Events that may wait unread before Step (and Episodes) events are merged
    /// and probe answers dropped; rare events are kept beyond it (no send waits).
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
    /// The learning-rate range test (`train::lr_find`): the lr of every step in
    /// place of the schedule; a supervised run then trains exactly these steps,
    /// logs every one, and evaluates, checkpoints and saves nothing.
    pub lr_sweep: Option<Vec<f64>>,
    /// A learned controller steering the lr (a controller study's episode);
    /// None: the experiment's own schedule (which may be `Controlled`).
    pub lr_agent: Option<super::schedule::LrAgent>,
    /// Called by the worker when an event or a snapshot arrives after the
    /// consumer drained everything (the GUI's `request_repaint`); None: nobody
    /// sleeps on the channel (it blocks in `recv` instead).
    pub wake: Option<Wake>,
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
            lr_sweep: None,
            lr_agent: None,
            wake: None,
        }
    }
}

/// The consumer's side of a running worker. Dropping it stops the run.
pub struct RunHandle {
    events: Receiver<TrainEvent>,
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
    policy: Latest<PolicySnapshot>,
    /// Set by `drain`: the consumer has read everything and wants a wake.
    asleep: Arc<AtomicBool>,
}

impl RunHandle {
    /// Events from the worker; the channel closes after Finished or Failed.
    pub fn events(&self) -> &Receiver<TrainEvent> {
        &self.events
    }

    /// Events waiting now, never blocking, for a consumer that sleeps between
    /// frames: asks for a wake (`StartOptions::wake`) at the next event. The
    /// second value is true once the run's last event (Finished or Failed) was
    /// taken or the worker is gone.
    pub fn drain(&self) -> (Vec<TrainEvent>, bool) {
        self.asleep.store(true, Ordering::Release);
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(e) => {
                    let last = matches!(e, TrainEvent::Finished(_) | TrainEvent::Failed { .. });
                    out.push(e);
                    if last {
                        return (out, true);
                    }
                }
                Err(TryRecvError::Empty) => return (out, false),
                Err(TryRecvError::Disconnected) => return (out, true),
            }
        }
    }

    /// The maze's newest policy snapshot for a viewer: taking it asks the worker
    /// for the next (one per take at most), and the final one is put there
    /// before the run's last event whether asked or not.
    pub fn policy(&self) -> &Latest<PolicySnapshot> {
        &self.policy
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
    let (event_tx, events) = unbounded();
    let (control, control_rx) = unbounded();
    let threads = options.threads;
    let policy = Latest::new();
    let asleep = Arc::new(AtomicBool::new(false));
    let emitter = Emitter::new(event_tx, options.event_capacity).with_viewer(
        policy.clone(),
        options.wake.clone(),
        Arc::clone(&asleep),
    );
    let thread = std::thread::Builder::new()
        .name(format!("trainlab-worker-{}", exp.name))
        .spawn(move || {
            let name = exp.name.clone();
            let work = move || {
                let mut emitter = emitter;
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
            policy,
            asleep,
        },
        Err(e) => {
            // No thread: report through a channel that already holds the failure.
            let (tx, events) = unbounded();
            let _ = tx.send(TrainEvent::Failed {
                step: 0,
                kind: FailureKind::Internal,
                message: format!("could not start the training thread: {e}"),
            });
            RunHandle {
                events,
                control,
                thread: None,
                policy,
                asleep,
            }
        }
    }
}
