//! Applying control messages between steps: pause (blocking until resumed),
//! stop, and live learning-rate changes, each echoed as an event.

use crossbeam_channel::{Receiver, TryRecvError};

use super::control::Control;
use super::emitter::Emitter;
use super::events::TrainEvent;

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
    pub(crate) fn poll(&mut self, step: u64, emitter: &mut Emitter) {
        loop {
            match self.rx.try_recv() {
                Ok(msg) => self.apply(msg, step, emitter),
                Err(TryRecvError::Empty) => return,
                // The consumer dropped its handle: nobody is watching, so stop.
                Err(TryRecvError::Disconnected) => {
                    self.stop = true;
                    return;
                }
            }
        }
    }

    fn apply(&mut self, msg: Control, step: u64, emitter: &mut Emitter) {
        match msg {
            Control::Pause => self.pause(step, emitter),
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

    fn pause(&mut self, step: u64, emitter: &mut Emitter) {
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
            }
        }
        self.paused_secs += since.elapsed().as_secs_f64();
        if !self.stop {
            emitter.emit(TrainEvent::Resumed { step });
        }
    }
}
