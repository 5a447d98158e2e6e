//! Applying control messages between steps: pause (blocking until resumed),
//! stop, and live learning-rate changes, each echoed as an event.

use crossbeam_channel::{Receiver, TryRecvError};

use super::control::{Control, Probe};
use super::emitter::Emitter;
use super::events::{ProbeAnswer, TrainEvent};

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
}

impl Steering {
    pub(crate) fn new(rx: Receiver<Control>, peak_lr: f64) -> Self {
        Self {
            rx,
            stop: false,
            peak_lr,
            lr_changes: Vec::new(),
            paused_secs: 0.0,
        }
    }

    /// Handles every waiting message; while paused, blocks until Resume or Stop.
    #[allow(dead_code)] // for loops without a model to probe
    pub(crate) fn poll(&mut self, step: u64, emitter: &mut Emitter) {
        self.poll_with(step, emitter, &mut no_model);
    }

    /// Like `poll`, answering probes with `answer`.
    pub(crate) fn poll_with(&mut self, step: u64, emitter: &mut Emitter, answer: Answer<'_>) {
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
            Control::Probe(p) => emitter.emit_transient(TrainEvent::Probed(answer(&p, step))),
            Control::Pause => self.pause(step, emitter, answer),
            Control::Resume => {}
            Control::Stop => self.stop = true,
            Control::SetLearningRate(lr) => self.set_lr(lr, step, emitter),
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
        emitter.emit(TrainEvent::Paused { step });
        let since = std::time::Instant::now();
        loop {
            match self.rx.recv() {
                Ok(Control::Resume) => break,
                Ok(Control::Pause) => {}
                Ok(Control::Stop) | Err(_) => {
                    self.stop = true;
                    break;
                }
                Ok(Control::SetLearningRate(lr)) => self.set_lr(lr, step, emitter),
                Ok(Control::Probe(p)) => {
                    emitter.emit_transient(TrainEvent::Probed(answer(&p, step)));
                }
            }
        }
        self.paused_secs += since.elapsed().as_secs_f64();
        if !self.stop {
            emitter.emit(TrainEvent::Resumed { step });
        }
    }
}
