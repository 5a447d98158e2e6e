//! Latest-value slots: how the worker hands snapshots (a maze's Q-values and
//! greedy path) to a viewer at the rate the viewer draws, not at the rate it trains.
//!
//! Contract: the worker [`Latest::publish`]es and never waits for the viewer (the
//! lock is held only to swap one value in or out); a value not yet taken is
//! replaced, never queued. The viewer [`Latest::take`]s at most once per frame,
//! and taking is how it asks for the next one: the worker builds a snapshot only
//! when [`Latest::wanted`] says the previous one was taken (and, where building
//! costs, when [`SnapshotClock`] says enough time passed), so a viewer that never
//! takes costs the worker one atomic load per check. The final state is published
//! whether wanted or not, before the run's last event, so a viewer that takes
//! after the run ended shows it. [`Wake`] is how the worker tells a sleeping
//! viewer that something new is there: called at most once per take or drain.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One value shared by a producer (the worker) and a consumer (a view).
pub struct Latest<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    value: Mutex<Option<T>>,
    /// The consumer took the last value and wants another.
    wanted: AtomicBool,
    published: AtomicU64,
    taken: AtomicU64,
}

/// How a slot was used, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotCounts {
    /// Values put in.
    pub published: u64,
    /// Values taken out (the rest were replaced before anyone took them).
    pub taken: u64,
}

impl<T> Clone for Latest<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                value: Mutex::new(None),
                wanted: AtomicBool::new(false),
                published: AtomicU64::new(0),
                taken: AtomicU64::new(0),
            }),
        }
    }
}

impl<T> std::fmt::Debug for Latest<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latest")
            .field("counts", &self.counts())
            .field("wanted", &self.wanted())
            .finish()
    }
}

impl<T> Latest<T> {
    /// An empty slot nobody has asked anything of yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a consumer took the previous value (or asked before the first) and
    /// waits for a new one.
    pub fn wanted(&self) -> bool {
        self.shared.wanted.load(Ordering::Relaxed)
    }

    /// Puts `value` in, replacing one not taken yet.
    pub fn publish(&self, value: T) {
        let old = {
            let mut slot = self
                .shared
                .value
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            slot.replace(value)
        };
        // Dropped outside the lock: freeing a big snapshot is the worker's time.
        drop(old);
        self.shared.wanted.store(false, Ordering::Relaxed);
        self.shared.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the newest value if there is one, and asks for the next.
    pub fn take(&self) -> Option<T> {
        let value = self
            .shared
            .value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if value.is_some() {
            self.shared.taken.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.wanted.store(true, Ordering::Relaxed);
        value
    }

    /// How many values went in and came out so far.
    pub fn counts(&self) -> SlotCounts {
        SlotCounts {
            published: self.shared.published.load(Ordering::Relaxed),
            taken: self.shared.taken.load(Ordering::Relaxed),
        }
    }
}

/// A consumer's wake-up call (the GUI's `request_repaint`), shared with the worker.
#[derive(Clone)]
pub struct Wake(Arc<dyn Fn() + Send + Sync>);

impl Wake {
    /// Wraps `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Calls it.
    pub fn wake(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wake")
    }
}

/// When a wanted snapshot that costs time to build may be built: at most
/// [`SnapshotClock::MAX_PER_SEC`] a second, and never more often than keeps
/// building under 1/[`SnapshotClock::COST_SHARE`] of the worker's time (the last
/// build's duration is measured).
#[derive(Debug, Clone)]
pub struct SnapshotClock {
    last: Option<Instant>,
    cost: Duration,
    /// Builds per second at most.
    max_per_sec: f64,
    /// Building may take at most one part in this many of the worker's time.
    cost_share: u32,
}

impl Default for SnapshotClock {
    /// A viewer's frame rate: [`Self::MAX_PER_SEC`], [`Self::COST_SHARE`].
    fn default() -> Self {
        Self::new(Self::MAX_PER_SEC, Self::COST_SHARE)
    }
}

impl SnapshotClock {
    /// Frames a viewer draws per second at most.
    pub const MAX_PER_SEC: f64 = 60.0;
    /// A snapshot may cost at most one part in this many of the worker's time.
    pub const COST_SHARE: u32 = 100;

    /// A clock allowing at most `max_per_sec` builds a second, each followed
    /// by a gap of at least `cost_share` times its own duration.
    pub fn new(max_per_sec: f64, cost_share: u32) -> Self {
        Self {
            last: None,
            cost: Duration::ZERO,
            max_per_sec: max_per_sec.max(1e-3),
            cost_share: cost_share.max(1),
        }
    }

    /// How long after the last build the next may begin.
    pub fn gap(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.max_per_sec).max(self.cost * self.cost_share)
    }

    /// Whether a snapshot may be built now.
    pub fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= self.gap())
    }

    /// Builds a snapshot with `build`, timing it for the next [`Self::due`].
    pub fn build<T>(&mut self, build: impl FnOnce() -> T) -> T {
        let began = Instant::now();
        let value = build();
        self.cost = began.elapsed();
        self.last = Some(Instant::now());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_only_the_newest_and_taking_asks_for_more() {
        let slot = Latest::new();
        assert!(!slot.wanted(), "nobody asked yet");
        slot.publish(1);
        slot.publish(2);
        assert_eq!(slot.take(), Some(2), "the newest replaces the older");
        assert!(slot.wanted(), "taking asks for the next");
        assert_eq!(slot.take(), None);
        slot.publish(3);
        assert!(!slot.wanted());
        assert_eq!(
            slot.counts(),
            SlotCounts {
                published: 3,
                taken: 1
            }
        );
    }

    #[test]
    fn the_clock_spaces_costly_builds() {
        let mut clock = SnapshotClock::default();
        assert!(clock.due(), "the first is due at once");
        clock.build(|| std::thread::sleep(Duration::from_millis(2)));
        // 2 ms of work may be repeated only after 100 x 2 ms.
        assert!(!clock.due());
        assert!(clock.cost >= Duration::from_millis(2));
        assert!(clock.gap() >= Duration::from_millis(200));
    }

    #[test]
    fn a_clock_of_its_own_rate_spaces_cheap_builds_by_the_rate() {
        let mut clock = SnapshotClock::new(20.0, 10);
        clock.build(|| ());
        assert_eq!(
            clock.gap(),
            Duration::from_millis(50),
            "1/20 s: cheap builds"
        );
        assert!(!clock.due());
        std::thread::sleep(Duration::from_millis(60));
        assert!(clock.due());
        clock.build(|| std::thread::sleep(Duration::from_millis(10)));
        assert!(clock.gap() >= Duration::from_millis(100), "10 x 10 ms");
    }
}
