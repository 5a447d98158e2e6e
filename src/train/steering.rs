//! Applying control messages between steps: pause (blocking until resumed),
//! stop, and live learning-rate changes, each echoed as an event. Loops that
//! checkpoint use `poll_pausable` + `wait_paused` to save before a long pause.
//!
//! A playground field (`Probe::Field`, a forward pass over a whole grid of the
//! plane) is answered at most [`FIELD_PER_SEC`] times a second and never more
//! often than keeps answering under 1/[`FIELD_COST_SHARE`] of the worker's time;
//! one asked sooner waits (the newest replaces an older one) and is answered
//! between the steps where it is due, or at once while paused. Training never
//! waits for it.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::emitter::Emitter;
use crate::events::{Control, Probe, SnapshotClock};
use crate::events::{ProbeAnswer, TrainEvent};

/// Playground fields answered per second at most (the view asks for one per
/// frame it draws, a new one only after the last came back).
pub(crate) const FIELD_PER_SEC: f64 = 25.0;
/// Answering fields may take at most one part in this many of the worker's time.
pub(crate) const FIELD_COST_SHARE: u32 = 10;

/// Answers probes with the loop's model; loops without a model say so.
pub(crate) type Answer<'a> = &'a mut dyn FnMut(&Probe, u64) -> ProbeAnswer;

fn no_model(_: &Probe, _: u64) -> ProbeAnswer {
    ProbeAnswer::Unavailable {
        reason: "this kind of run cannot answer questions about its model".into(),
    }
}

/// The worker's view of its control channel.
pub(crate) struct Steering {
    rx: Receiver<Control>,
    /// A Stop was requested (or the consumer went away).
    pub(crate) stop: bool,
    /// Peak lr set by the consumer, replacing the file's.
    pub(crate) peak_lr: f64,
    /// (step, lr) of every change, for the summary.
    pub(crate) lr_changes: Vec<(u64, f64)>,
    /// Seconds spent paused (excluded from throughput).
    pub(crate) paused_secs: f64,
    /// When the current pause began.
    paused_at: Option<Instant>,
    /// Slow motion: steps (episodes) per second, None at full speed.
    pub(crate) pace: Option<f64>,
    /// When the last paced step began.
    last_tick: Option<Instant>,
    /// The newest playground field request, answered once more with the final
    /// model when the run ends (so the last map shown is the final model's).
    pub(crate) last_field: Option<Probe>,
    /// A field asked before it was due, answered when it is.
    deferred_field: Option<Probe>,
    /// When the next field may be answered.
    field_clock: SnapshotClock,
}

impl Steering {
    pub(crate) fn new(rx: Receiver<Control>, peak_lr: f64) -> Self {
        Self {
            rx,
            stop: false,
            peak_lr,
            lr_changes: Vec::new(),
            paused_secs: 0.0,
            paused_at: None,
            pace: None,
            last_tick: None,
            last_field: None,
            deferred_field: None,
            field_clock: SnapshotClock::new(FIELD_PER_SEC, FIELD_COST_SHARE),
        }
    }

    /// Answers `probe` now, a field timed for the next one's spacing.
    fn answer_now(&mut self, probe: &Probe, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
        let answered = if matches!(probe, Probe::Field { .. }) {
            let mut clock = std::mem::take(&mut self.field_clock);
            let a = clock.build(|| answer(probe, step));
            self.field_clock = clock;
            a
        } else {
            answer(probe, step)
        };
        emitter.emit_transient(TrainEvent::Probed(answered));
    }

    /// A probe from the consumer: a field waits until due, the rest are answered.
    fn on_probe(&mut self, probe: Probe, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
        if matches!(probe, Probe::Field { .. }) {
            self.last_field = Some(probe.clone());
            if !self.field_clock.due() {
                self.deferred_field = Some(probe);
                return;
            }
        }
        self.answer_now(&probe, step, emitter, answer);
    }

    /// Answers the waiting field once it is due (or `now`, while paused).
    fn answer_deferred(&mut self, now: bool, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
        if self.deferred_field.is_some()
            && (now || self.field_clock.due())
            && let Some(p) = self.deferred_field.take()
        {
            self.answer_now(&p, step, emitter, answer);
        }
    }

    /// Slow motion: waits until the next step is due at the current pace; false
    /// when a control message arrived first (handle it, then ask again). The
    /// wait counts as paused time, so throughput figures stay those of training.
    pub(crate) fn paced_ready(&mut self) -> bool {
        let Some(pace) = self.pace else {
            self.last_tick = None;
            return true;
        };
        if let Some(last) = self.last_tick {
            let due = last + Duration::from_secs_f64(1.0 / pace);
            let began = Instant::now();
            while self.rx.is_empty() {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(20)));
            }
            self.paused_secs += began.elapsed().as_secs_f64();
            if !self.rx.is_empty() {
                return false;
            }
        }
        self.last_tick = Some(Instant::now());
        true
    }

    fn set_pace(&mut self, pace: Option<f64>) {
        // Anything not a positive number means full speed.
        self.pace = pace.filter(|p| *p > 0.0 && p.is_finite());
    }

    /// Handles every waiting message; while paused, blocks until Resume or Stop.
    #[allow(dead_code)] // for loops without a model to probe
    pub(crate) fn poll(&mut self, step: u64, emitter: &mut Emitter) {
        self.poll_with(step, emitter, &mut no_model);
    }

    /// Like `poll`, answering probes with `answer`.
    pub(crate) fn poll_with(&mut self, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
        // A run whose record cannot be written stops: nothing it trains from here
        // could be continued from a checkpoint.
        self.stop |= emitter.record_failed();
        self.answer_deferred(false, step, emitter, answer);
        loop {
            match self.rx.try_recv() {
                Ok(msg) => self.apply(msg, step, emitter, answer),
                Err(TryRecvError::Empty) => return,
                // The consumer dropped its handle: nobody is watching, so stop.
                Err(TryRecvError::Disconnected) => {
                    self.stop = true;
                    return;
                }
            }
        }
    }

    fn apply(&mut self, msg: Control, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
        match msg {
            Control::Probe(p) => self.on_probe(p, step, emitter, answer),
            Control::Pause => self.pause(step, emitter, answer),
            Control::Resume => {}
            Control::Stop => self.stop = true,
            Control::SetLearningRate(lr) => self.set_lr(lr, step, emitter),
            Control::SetPace(p) => self.set_pace(p),
        }
    }

    fn set_lr(&mut self, lr: f64, step: u64, emitter: &mut Emitter) {
        if lr > 0.0 && lr.is_finite() {
            self.peak_lr = lr;
            self.lr_changes.push((step, lr));
            emitter.emit(TrainEvent::LrChanged { step, lr });
        } else {
            emitter.emit(TrainEvent::Note {
                step,
                message: format!("ignored learning rate {lr}: it must be a positive number"),
            });
        }
    }

    fn pause(&mut self, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
        self.begin_pause(step, emitter);
        self.wait_paused(step, emitter, answer, None);
    }

    fn begin_pause(&mut self, step: u64, emitter: &mut Emitter) {
        emitter.emit(TrainEvent::Paused { step });
        self.paused_at = Some(Instant::now());
    }

    /// Like `poll_with`, but a Pause is not waited out here: it returns true at
    /// once (after the Paused event) so the loop can write a checkpoint first and
    /// then call [`Steering::wait_paused`].
    pub(crate) fn poll_pausable(
        &mut self,
        step: u64,
        emitter: &mut Emitter,
        answer: Answer<'_>,
    ) -> bool {
        self.stop |= emitter.record_failed();
        self.answer_deferred(false, step, emitter, answer);
        loop {
            match self.rx.try_recv() {
                Ok(Control::Pause) => {
                    self.begin_pause(step, emitter);
                    return true;
                }
                Ok(msg) => self.apply(msg, step, emitter, answer),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => {
                    self.stop = true;
                    return false;
                }
            }
        }
    }

    /// Waits while paused, answering probes and lr changes, until Resume or Stop
    /// or until `limit` has passed; true when still paused (the limit ran out).
    pub(crate) fn wait_paused(
        &mut self,
        step: u64,
        emitter: &mut Emitter,
        answer: Answer<'_>,
        limit: Option<Duration>,
    ) -> bool {
        let deadline = limit.map(|d| Instant::now() + d);
        loop {
            // Paused, nothing trains: a waiting field is answered at once.
            self.answer_deferred(true, step, emitter, answer);
            let msg = match deadline {
                Some(d) => match self.rx.recv_deadline(d) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => return true,
                    Err(RecvTimeoutError::Disconnected) => None,
                },
                None => self.rx.recv().ok(),
            };
            match msg {
                Some(Control::Resume) => break,
                Some(Control::Pause) => {}
                Some(Control::Stop) | None => {
                    self.stop = true;
                    break;
                }
                Some(Control::SetLearningRate(lr)) => self.set_lr(lr, step, emitter),
                Some(Control::SetPace(p)) => self.set_pace(p),
                Some(Control::Probe(p)) => {
                    if matches!(p, Probe::Field { .. }) {
                        self.last_field = Some(p.clone());
                    }
                    self.answer_now(&p, step, emitter, answer);
                }
            }
        }
        if let Some(since) = self.paused_at.take() {
            self.paused_secs += since.elapsed().as_secs_f64();
        }
        if !self.stop {
            emitter.emit(TrainEvent::Resumed { step });
        }
        false
    }
}
