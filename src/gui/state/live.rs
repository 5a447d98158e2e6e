//! A run in progress as the GUI sees it: the worker's handle, read at frame rate.
//!
//! Contract: the GUI drains the worker's event channel once per frame and takes
//! the newest policy snapshot from its latest-value slot; nothing it does (or
//! fails to do, when the window is hidden and draws no frames) makes the worker
//! wait: the worker thins Step/Episodes events when many wait and never queues
//! snapshots. After each drain the worker wakes the window (`request_repaint`)
//! once, with the next event or snapshot, so the window sleeps while nothing
//! happens and is not woken once per event. A wake comes at most
//! [`WATCH_FPS`] times a second: one sooner than 1/[`WATCH_FPS`] s after the
//! last drain asks for the repaint at that time instead of now, so a run that
//! produces something new all the time is drawn 40 times a second, not 60 (a
//! frame's CPU time comes out of the cores training uses; input and animations
//! still repaint at egui's own rate). A wake never asks for a frame "now"
//! (`Duration::ZERO`): egui answers such a request with two frames, the second
//! to let things settle, and for a run whose news comes slower than 40 a second
//! that second frame shows nothing new; a wake asks for one frame at least
//! [`MIN_DELAY`] later instead, so every frame news draws has something new in
//! it (the redraw policy; `tests/watching.rs` checks it). Dropping a
//! [`LiveRun`] stops the worker (the handle's contract).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::events::{Control, PolicySnapshot, TrainEvent, Wake};
use crate::spec::Experiment;
use crate::train::{RunHandle, StartOptions, start};

/// Frames a second the worker's news asks for at most.
pub const WATCH_FPS: f64 = 40.0;

/// The soonest a wake asks for its frame: not zero, which egui answers with two.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// A started run.
pub struct LiveRun {
    handle: RunHandle,
    /// When the GUI last drained (nanoseconds after `base`), for the wake's delay.
    drained: Arc<AtomicU64>,
    base: Instant,
    /// The run folder it records into.
    pub run_dir: PathBuf,
    /// The experiment as started (for the canvas model and analysis afterwards).
    pub experiment: Experiment,
}

impl LiveRun {
    /// Starts `exp` recording into `run_dir`, in slow motion at `pace` steps
    /// (mazes: episodes) per second or at full speed (None); `repaint(after)` is
    /// called when something new arrives after a drain, asking for a frame
    /// `after` from now (egui's `request_repaint_after`).
    pub fn start(
        exp: Experiment,
        run_dir: PathBuf,
        pace: Option<f64>,
        repaint: impl Fn(Duration) + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(exp, run_dir, None, pace, repaint)
    }

    /// Continues the run in `run_dir` from `checkpoint` (one of its checkpoints).
    pub fn resume(
        exp: Experiment,
        run_dir: PathBuf,
        checkpoint: PathBuf,
        repaint: impl Fn(Duration) + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(exp, run_dir, Some(checkpoint), None, repaint)
    }

    fn spawn(
        exp: Experiment,
        run_dir: PathBuf,
        resume_from: Option<PathBuf>,
        pace: Option<f64>,
        repaint: impl Fn(Duration) + Send + Sync + 'static,
    ) -> Self {
        let base = Instant::now();
        let drained = Arc::new(AtomicU64::new(0));
        let last = Arc::clone(&drained);
        let wake = move || {
            let since = Duration::from_nanos(last.load(Ordering::Relaxed));
            repaint(frame_delay(base.elapsed().saturating_sub(since)));
        };
        let handle = start(
            exp.clone(),
            StartOptions {
                run_dir: Some(run_dir.clone()),
                resume_from,
                pace,
                wake: Some(Wake::new(wake)),
                ..StartOptions::default()
            },
        );
        Self {
            handle,
            drained,
            base,
            run_dir,
            experiment: exp,
        }
    }

    /// Events received since the last call (never blocks). The second value is true
    /// when the run has ended and every event was delivered.
    pub fn drain(&self) -> (Vec<TrainEvent>, bool) {
        let now = self.base.elapsed().as_nanos();
        self.drained
            .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
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

/// How long after a wake to draw, `since` the last drain: what is left of
/// 1/[`WATCH_FPS`] s, and at least [`MIN_DELAY`] (one frame, not egui's two).
fn frame_delay(since: Duration) -> Duration {
    Duration::from_secs_f64(1.0 / WATCH_FPS)
        .saturating_sub(since)
        .max(MIN_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_soon_after_a_drain_is_drawn_a_frame_later() {
        let frame = Duration::from_secs_f64(1.0 / WATCH_FPS);
        assert_eq!(frame_delay(Duration::ZERO), frame);
        assert_eq!(frame_delay(frame / 3), frame - frame / 3);
        assert_eq!(
            frame_delay(frame),
            MIN_DELAY,
            "due: as soon as one frame can"
        );
        assert_eq!(frame_delay(Duration::from_secs(5)), MIN_DELAY);
        assert!(
            MIN_DELAY > Duration::ZERO,
            "egui draws two frames for a zero"
        );
    }
}
