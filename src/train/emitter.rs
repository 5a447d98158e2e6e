//! Sending events without letting a slow consumer slow training.
//!
//! Every event except Policy snapshots is first written to the run record (when
//! there is one). The channel is unbounded, so no send ever waits for the
//! consumer; `capacity` is how many events may wait in it before the frequent
//! ones are thinned. Step and Episodes events are offered while fewer than
//! `capacity` wait; otherwise they are merged into one pending event (means
//! weighted by what each covers) that goes out with the next send. A Policy
//! snapshot that does not fit replaces the pending one: only the newest matters.
//! Rare events (Eval, Finished, ...) always go in, after the pending ones so
//! that order is kept and none is lost: what waits is at most `capacity` events
//! plus the rare ones, however long the consumer does not read.
//!
//! Viewers that draw at their own rate take snapshots from latest-value slots
//! ([`crate::events::Latest`], the maze's policy) instead; the emitter publishes
//! there and calls the consumer's [`Wake`] at most once per drain (the consumer
//! marks itself asleep when it drains, the first event or snapshot after that
//! wakes it).
//!
//! Files the run could not write are collected here ([`WriteFault`]): a record
//! that could not be appended stops recording for good (the file is cut back to
//! its last whole line, and later checkpoints would describe a record with a
//! gap), asks the loop to stop, and the worker turns the faults into a Failed event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;

use crate::events::{EpisodeMetrics, Latest, PolicySnapshot, Wake};
use crate::events::{StepMetrics, TrainEvent};
use crate::runs::{RunRecorder, WriteFault};

/// The worker's outgoing side.
pub(crate) struct Emitter {
    tx: Sender<TrainEvent>,
    /// Events that may wait in the channel before Step/Episodes are merged.
    capacity: usize,
    /// The maze's newest policy for a viewer (taking it asks for the next).
    policy: Latest<PolicySnapshot>,
    /// The consumer's wake-up call, and whether it drained and waits for one.
    wake: Option<Wake>,
    asleep: Arc<AtomicBool>,
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
    /// An emitter into `tx` (an unbounded channel) that thins frequent events
    /// once `capacity` wait.
    pub(crate) fn new(tx: Sender<TrainEvent>, capacity: usize) -> Self {
        Self {
            tx,
            capacity: capacity.max(1),
            policy: Latest::new(),
            wake: None,
            asleep: Arc::new(AtomicBool::new(false)),
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

    /// Publishes snapshots into `policy` and wakes the consumer with `wake` when
    /// it marked itself `asleep` (see the module comment).
    pub(crate) fn with_viewer(
        mut self,
        policy: Latest<PolicySnapshot>,
        wake: Option<Wake>,
        asleep: Arc<AtomicBool>,
    ) -> Self {
        self.policy = policy;
        self.wake = wake;
        self.asleep = asleep;
        self
    }

    /// Whether a viewer took the previous policy snapshot and waits for one.
    pub(crate) fn policy_wanted(&self) -> bool {
        self.policy.wanted()
    }

    /// Puts `snapshot` in the viewer's slot (not the channel, not the record).
    pub(crate) fn publish_policy(&mut self, snapshot: PolicySnapshot) {
        self.policy.publish(snapshot);
        self.notify();
    }

    /// Wakes the consumer if it drained everything and sleeps.
    fn notify(&self) {
        if let Some(wake) = &self.wake
            && self.asleep.swap(false, Ordering::AcqRel)
        {
            wake.wake();
        }
    }

    /// Puts `event` in the channel if fewer than `capacity` wait, else hands it back.
    fn offer(&mut self, event: TrainEvent) -> Option<TrainEvent> {
        if self.tx.len() >= self.capacity {
            return Some(event);
        }
        self.deliver(event);
        None
    }

    /// Puts `event` in the channel (never waits; nothing happens once the
    /// consumer is gone).
    fn deliver(&mut self, event: TrainEvent) {
        if self.tx.send(event).is_ok() {
            self.notify();
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
            self.deliver(TrainEvent::Step(p));
        }
        let _ = self.offer(event);
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
                if let Some(TrainEvent::Step(s)) = self.offer(TrainEvent::Step(merged)) {
                    self.pending = Some(s);
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
                if let Some(TrainEvent::Episodes(e)) = self.offer(TrainEvent::Episodes(merged)) {
                    self.pending_episodes = Some(e);
                }
            }
            TrainEvent::Policy(snapshot) => {
                self.pending_policy = None;
                if let Some(TrainEvent::Policy(p)) = self.offer(TrainEvent::Policy(snapshot)) {
                    self.pending_policy = Some(p);
                }
            }
            other => {
                if let Some(p) = self.pending.take() {
                    self.deliver(TrainEvent::Step(p));
                }
                if let Some(p) = self.pending_episodes.take() {
                    self.deliver(TrainEvent::Episodes(p));
                }
                if let Some(p) = self.pending_policy.take() {
                    self.deliver(TrainEvent::Policy(p));
                }
                self.deliver(other);
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
    use crossbeam_channel::unbounded;

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
        let (tx, rx) = unbounded();
        let mut em = Emitter::new(tx, 2);
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

    /// A consumer that never reads: nothing waits, the frequent events are
    /// thinned to `capacity`, every rare one is kept in order.
    #[test]
    fn a_consumer_that_never_reads_holds_nothing_up() {
        let (tx, rx) = unbounded();
        let mut em = Emitter::new(tx, 4);
        for i in 1..=10_000u64 {
            em.emit(step(i, 1.0));
            if i % 1_000 == 0 {
                em.emit(TrainEvent::Note {
                    step: i * 10,
                    message: format!("note {i}"),
                });
            }
        }
        // Reached without a consumer: no send waited.
        let got: Vec<TrainEvent> = rx.try_iter().collect();
        let notes = got
            .iter()
            .filter(|e| matches!(e, TrainEvent::Note { .. }))
            .count();
        assert_eq!(notes, 10, "every rare event is kept");
        assert!(got.len() <= 4 + 2 * 10, "{} events waited", got.len());
        let covered: u64 = got
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Step(s) => Some(s.steps_covered),
                _ => None,
            })
            .sum::<u64>()
            + em.pending.as_ref().map_or(0, |p| p.steps_covered);
        assert_eq!(covered, 10_000 * 10, "merged steps cover every step");
    }

    /// The consumer is woken once after it drains, not once per event; a
    /// policy snapshot goes to the slot and wakes it too.
    #[test]
    fn the_consumer_is_woken_once_per_drain() {
        use std::sync::atomic::AtomicUsize;
        let (tx, rx) = unbounded();
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let asleep = Arc::new(AtomicBool::new(false));
        let slot = Latest::new();
        let mut em = Emitter::new(tx, 1024).with_viewer(
            slot.clone(),
            Some(Wake::new(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
            Arc::clone(&asleep),
        );
        em.emit(step(1, 1.0));
        assert_eq!(wakes.load(Ordering::Relaxed), 0, "it never drained yet");
        asleep.store(true, Ordering::Release);
        let _ = rx.try_iter().count();
        for i in 2..100 {
            em.emit(step(i, 1.0));
        }
        assert_eq!(wakes.load(Ordering::Relaxed), 1, "one wake for 98 events");
        asleep.store(true, Ordering::Release);
        let snapshot = PolicySnapshot {
            episode: 7,
            env_steps: 70,
            rows: 1,
            cols: 1,
            q: vec![[0.0; 4]],
            greedy_path: Vec::new(),
            reached_goal: false,
        };
        assert!(!em.policy_wanted());
        let _ = slot.take();
        assert!(em.policy_wanted(), "taking asks for the next");
        em.publish_policy(snapshot.clone());
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
        assert_eq!(slot.take(), Some(snapshot));
    }
}
