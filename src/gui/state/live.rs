//! A run in progress as the GUI sees it: the worker's handle plus a relay thread.
//!
//! Contract: the relay thread blocks on the worker's event channel, forwards each
//! event into a bounded channel owned by the GUI and calls `request_repaint`, so the
//! window sleeps while nothing happens (no polling loop). When the GUI falls behind,
//! the bounded channel makes the relay wait, and the worker then merges Step events.
//! Dropping a [`LiveRun`] stops the worker (the handle's contract).

use std::path::PathBuf;

use crossbeam_channel::{Receiver, TryRecvError, bounded};

use crate::spec::Experiment;
use crate::train::{Control, RunHandle, StartOptions, TrainEvent, start};

/// Events the GUI keeps queued before the relay waits.
const GUI_QUEUE: usize = 4096;

/// A started run.
pub struct LiveRun {
    handle: RunHandle,
    events: Receiver<TrainEvent>,
    /// The run folder it records into.
    pub run_dir: PathBuf,
    /// The experiment as started (for the canvas model and analysis afterwards).
    pub experiment: Experiment,
}

impl LiveRun {
    /// Starts `exp` recording into `run_dir`, in slow motion at `pace` steps
    /// (mazes: episodes) per second or at full speed (None); `repaint` is called
    /// after each event.
    pub fn start(
        exp: Experiment,
        run_dir: PathBuf,
        pace: Option<f64>,
        repaint: impl Fn() + Send + 'static,
    ) -> Self {
        Self::spawn(exp, run_dir, None, pace, repaint)
    }

    /// Continues the run in `run_dir` from `checkpoint` (one of its checkpoints).
    pub fn resume(
        exp: Experiment,
        run_dir: PathBuf,
        checkpoint: PathBuf,
        repaint: impl Fn() + Send + 'static,
    ) -> Self {
        Self::spawn(exp, run_dir, Some(checkpoint), None, repaint)
    }

    fn spawn(
        exp: Experiment,
        run_dir: PathBuf,
        resume_from: Option<PathBuf>,
        pace: Option<f64>,
        repaint: impl Fn() + Send + 'static,
    ) -> Self {
        let handle = start(
            exp.clone(),
            StartOptions {
                run_dir: Some(run_dir.clone()),
                resume_from,
                pace,
                ..StartOptions::default()
            },
        );
        let (tx, events) = bounded(GUI_QUEUE);
        let worker_events = handle.events().clone();
        let relay = std::thread::Builder::new()
            .name("trainlab-gui-relay".into())
            .spawn(move || {
                for event in worker_events.iter() {
                    if tx.send(event).is_err() {
                        break; // the GUI dropped this run
                    }
                    repaint();
                }
                repaint();
            });
        if let Err(e) = relay {
            // Without a relay the GUI would never hear back: report that as the outcome.
            let (tx, rx) = bounded(1);
            let _ = tx.send(TrainEvent::Failed {
                step: 0,
                kind: crate::train::FailureKind::Internal,
                message: format!("could not start the event relay thread: {e}"),
            });
            return Self {
                handle,
                events: rx,
                run_dir,
                experiment: exp,
            };
        }
        Self {
            handle,
            events,
            run_dir,
            experiment: exp,
        }
    }

    /// Events received since the last call (never blocks). The second value is true
    /// when the worker has ended and every event was delivered.
    pub fn drain(&self) -> (Vec<TrainEvent>, bool) {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty) => return (out, false),
                Err(TryRecvError::Disconnected) => return (out, true),
            }
        }
    }

    /// Sends a control message; false when the worker has already ended.
    pub fn send(&self, control: Control) -> bool {
        self.handle.send(control)
    }
}
