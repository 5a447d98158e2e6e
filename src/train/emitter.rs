//! Sending events without letting a slow consumer slow training.
//!
//! Every event except Policy snapshots is first written to the run record (when
//! there is one). Step and Episodes events are then offered to the channel without
//! blocking; if it is full they are merged into one pending event (means weighted
//! by what each covers) that goes out with the next send. A Policy snapshot that
//! does not fit replaces the pending one: only the newest matters. Rare events
//! (Eval, Finished, ...) wait for room so that none is lost, after the pending
//! ones so that order is kept.
//!
//! Files the run could not write are collected here ([`WriteFault`]): a record
//! that could not be appended stops recording for good (the file is cut back to
//! its last whole line, and later checkpoints would describe a record with a
//! gap), asks the loop to stop, and the worker turns the faults into a Failed event.

use crossbeam_channel::{Sender, TrySendError};

use super::events::{StepMetrics, TrainEvent};
use super::rl_events::{EpisodeMetrics, PolicySnapshot};
use crate::runs::{RunRecorder, WriteFault};

/// The worker's outgoing side.
pub(crate) struct Emitter {
    tx: Sender<TrainEvent>,
    pending: Option<StepMetrics>,
    pending_episodes: Option<EpisodeMetrics>,
    pending_policy: Option<PolicySnapshot>,
    pub(crate) recorder: Option<RunRecorder>,
    /// The run folder, also while a resumed run has not reopened its record yet.
    pub(crate) run_dir_hint: Option<std::path::PathBuf>,
    /// Files not written, in the order it happened (the record, the model, ...).
    faults: Vec<WriteFault>,
    /// The newest checkpoint could not be written (cleared when a later one is).
    pub(crate) checkpoint_fault: Option<WriteFault>,
    /// Appending to the record failed: nothing more is recorded or checkpointed.
    record_failed: bool,
    /// Step events merged because the consumer was behind (for tests and stats).
    pub(crate) merged: u64,
}

impl Emitter {
    pub(crate) fn new(tx: Sender<TrainEvent>) -> Self {
        Self {
            tx,
            pending: None,
            pending_episodes: None,
            pending_policy: None,
            recorder: None,
            run_dir_hint: None,
            faults: Vec::new(),
            checkpoint_fault: None,
            record_failed: false,
            merged: 0,
        }
    }

    /// The run folder being recorded into, for the Started event.
    pub(crate) fn run_dir(&self) -> Option<String> {
        self.recorder
            .as_ref()
            .map(|r| r.dir())
            .or(self.run_dir_hint.as_deref())
            .map(|d| d.display().to_string())
    }

    /// Whether appending to the run's record failed (the run should stop: what it
    /// trains from now on could not be continued from a checkpoint).
    pub(crate) fn record_failed(&self) -> bool {
        self.record_failed
    }

    /// Notes a file the run could not write; the run will end as failed.
    pub(crate) fn write_failed(&mut self, step: u64, fault: WriteFault) {
        self.emit(TrainEvent::Note {
            step,
            message: format!("could not write {fault}"),
        });
        self.faults.push(fault);
    }

    /// Everything the run could not write (an unwritten newest checkpoint last).
    pub(crate) fn take_faults(&mut self) -> Vec<WriteFault> {
        let mut faults = std::mem::take(&mut self.faults);
        faults.extend(self.checkpoint_fault.take());
        faults
    }

    /// Sends an event that is not part of the run's record (probe answers); dropped
    /// when the consumer is behind, since it will ask again.
    pub(crate) fn emit_transient(&mut self, event: TrainEvent) {
        if let Some(p) = self.pending.take() {
            let _ = self.tx.send(TrainEvent::Step(p));
        }
        let _ = self.tx.try_send(event);
    }

    pub(crate) fn emit(&mut self, event: TrainEvent) {
        // Snapshots can be megabytes; the run keeps only the last (qtable.json).
        let recorded = !matches!(event, TrainEvent::Policy(_));
        if recorded
            && !self.record_failed
            && let Some(rec) = &mut self.recorder
            && let Err(e) = rec.record(&event)
        {
            let path = rec.dir().join(crate::runs::files::METRICS);
            self.record_failed = true;
            let fault = WriteFault::io("the record", &path, &e);
            let step = event_step(&event);
            // Said now (the run stops at its next step), recorded nowhere.
            self.send(TrainEvent::Note {
                step,
                message: format!(
                    "could not write {fault}; the run stops, its record is whole up to here"
                ),
            });
            self.faults.push(fault);
        }
        self.send(event);
    }

    /// Offers `event` to the consumer (see the module comment), not recording it.
    fn send(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Step(step) => {
                let merged = match self.pending.take() {
                    Some(prev) => {
                        self.merged += 1;
                        merge(prev, step)
                    }
                    None => step,
                };
                match self.tx.try_send(TrainEvent::Step(merged)) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(TrainEvent::Step(s))) => self.pending = Some(s),
                    Err(TrySendError::Full(_)) => {}
                }
            }
            TrainEvent::Episodes(ep) => {
                let merged = match self.pending_episodes.take() {
                    Some(prev) => {
                        self.merged += 1;
                        merge_episodes(prev, ep)
                    }
                    None => ep,
                };
                match self.tx.try_send(TrainEvent::Episodes(merged)) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(TrainEvent::Episodes(e))) => {
                        self.pending_episodes = Some(e);
                    }
                    Err(TrySendError::Full(_)) => {}
                }
            }
            TrainEvent::Policy(snapshot) => {
                self.pending_policy = None;
                if let Err(TrySendError::Full(TrainEvent::Policy(p))) =
                    self.tx.try_send(TrainEvent::Policy(snapshot))
                {
                    self.pending_policy = Some(p);
                }
            }
            other => {
                if let Some(p) = self.pending.take() {
                    let _ = self.tx.send(TrainEvent::Step(p));
                }
                if let Some(p) = self.pending_episodes.take() {
                    let _ = self.tx.send(TrainEvent::Episodes(p));
                }
                if let Some(p) = self.pending_policy.take() {
                    let _ = self.tx.send(TrainEvent::Policy(p));
                }
                let _ = self.tx.send(other);
            }
        }
    }
}

/// The step (gridworld: episode) an event belongs to, for a Note beside it.
fn event_step(event: &TrainEvent) -> u64 {
    match event {
        TrainEvent::Step(m) => m.step,
        TrainEvent::Eval(m) => m.step,
        TrainEvent::Episodes(m) => m.episode,
        TrainEvent::Note { step, .. } => *step,
        _ => 0,
    }
}

/// One Episodes event covering the episodes of both.
fn merge_episodes(a: EpisodeMetrics, b: EpisodeMetrics) -> EpisodeMetrics {
    let (na, nb) = (a.episodes_covered as f64, b.episodes_covered as f64);
    let avg = |x: f64, y: f64| (x * na + y * nb) / (na + nb).max(1.0);
    EpisodeMetrics {
        mean_return: avg(a.mean_return, b.mean_return),
        mean_length: avg(a.mean_length, b.mean_length),
        loss: match (a.loss, b.loss) {
            (Some(x), Some(y)) => Some(avg(x, y)),
            (x, y) => y.or(x),
        },
        steps_per_sec: avg(a.steps_per_sec, b.steps_per_sec),
        episodes_covered: a.episodes_covered + b.episodes_covered,
        ..b
    }
}

/// One Step event covering the steps of both.
fn merge(a: StepMetrics, b: StepMetrics) -> StepMetrics {
    let (na, nb) = (a.steps_covered as f64, b.steps_covered as f64);
    let avg = |x: f64, y: f64| (x * na + y * nb) / (na + nb).max(1.0);
    StepMetrics {
        step: b.step,
        epoch: b.epoch,
        loss: avg(a.loss, b.loss),
        accuracy: avg(a.accuracy, b.accuracy),
        lr: b.lr,
        samples_per_sec: avg(a.samples_per_sec, b.samples_per_sec),
        steps_covered: a.steps_covered + b.steps_covered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    fn step(i: u64, loss: f64) -> TrainEvent {
        TrainEvent::Step(StepMetrics {
            step: i * 10,
            epoch: 0.0,
            loss,
            accuracy: 0.5,
            lr: 0.1,
            samples_per_sec: 100.0,
            steps_covered: 10,
        })
    }

    #[test]
    fn full_channel_merges_steps_and_keeps_order() {
        let (tx, rx) = bounded(2);
        let mut em = Emitter::new(tx);
        for i in 1..=5 {
            em.emit(step(i, i as f64));
        }
        // Two fit; steps 3, 4 and 5 are merged into one pending event.
        let got: Vec<TrainEvent> = rx.try_iter().take(2).collect();
        assert_eq!(got, vec![step(1, 1.0), step(2, 2.0)]);
        assert_eq!(em.merged, 2);
        em.emit(TrainEvent::Note {
            step: 50,
            message: "x".into(),
        });
        match rx.recv() {
            Ok(TrainEvent::Step(s)) => {
                assert_eq!(s.step, 50);
                assert_eq!(s.steps_covered, 30);
                assert!((s.loss - 4.0).abs() < 1e-12, "mean of 3, 4, 5: {}", s.loss);
            }
            other => panic!("expected the merged step, got {other:?}"),
        }
        assert!(matches!(rx.recv(), Ok(TrainEvent::Note { .. })));
    }
}
