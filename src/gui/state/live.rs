//! A run in progress as the GUI sees it: the worker's handle, read at frame rate.
//!
//! Contract: the GUI drains the worker's event channel once per frame and takes
//! the newest policy snapshot from its latest-value slot; nothing it does (or
//! fails to do, when the window is hidden and draws no frames) makes the worker
//! wait: the worker thins Step/Episodes events when many wait and never queues
//! snapshots. After each drain the worker wakes the window (`request_repaint`)
//! once, with the next event or snapshot, so the window sleeps while nothing
//! happens and is not woken once per event. Dropping a [`LiveRun`] stops the
//! worker (the handle's contract).

use std::path::PathBuf;

use crate::events::{Control, PolicySnapshot, TrainEvent, Wake};
use crate::spec::Experiment;
use crate::train::{RunHandle, StartOptions, start};

/// A started run.
pub struct LiveRun {
    handle: RunHandle,
    /// The run folder it records into.
    pub run_dir: PathBuf,
    /// The experiment as started (for the canvas model and analysis afterwards).
    pub experiment: Experiment,
}

impl LiveRun {
    /// Starts `exp` recording into `run_dir`, in slow motion at `pace` steps
    /// (mazes: episodes) per second or at full speed (None); `repaint` is called
    /// when something new arrives after a drain.
    pub fn start(
        exp: Experiment,
        run_dir: PathBuf,
        pace: Option<f64>,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(exp, run_dir, None, pace, repaint)
    }

    /// Continues the run in `run_dir` from `checkpoint` (one of its checkpoints).
    pub fn resume(
        exp: Experiment,
        run_dir: PathBuf,
        checkpoint: PathBuf,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(exp, run_dir, Some(checkpoint), None, repaint)
    }

    fn spawn(
        exp: Experiment,
        run_dir: PathBuf,
        resume_from: Option<PathBuf>,
        pace: Option<f64>,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let handle = start(
            exp.clone(),
            StartOptions {
                run_dir: Some(run_dir.clone()),
                resume_from,
                pace,
                wake: Some(Wake::new(repaint)),
                ..StartOptions::default()
            },
        );
        Self {
            handle,
            run_dir,
            experiment: exp,
        }
    }

    /// Events received since the last call (never blocks). The second value is true
    /// when the run has ended and every event was delivered.
    pub fn drain(&self) -> (Vec<TrainEvent>, bool) {
        self.handle.drain()
    }

    /// The newest policy snapshot not shown yet (mazes); taking it asks the
    /// worker for the next one.
    pub fn take_policy(&self) -> Option<PolicySnapshot> {
        self.handle.policy().take()
    }

    /// Sends a control message; false when the worker has already ended.
    pub fn send(&self, control: Control) -> bool {
        self.handle.send(control)
    }
}
