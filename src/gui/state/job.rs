//! Background work for the GUI (loading images, running a model over the test set):
//! a thread that computes one value and wakes the window when it is done.
//!
//! Contract: `poll` never blocks; it yields the outcome once. A thread that could
//! not start or that panicked yields `Err` with a readable message instead of
//! leaving the GUI waiting forever.
//!
//! Errors: the work returns any error (`anyhow`, so `?` takes every module's
//! typed error); `poll` is where it becomes the text a view shows.

use crossbeam_channel::{Receiver, TryRecvError, bounded};

/// A value being computed on another thread.
pub struct Job<T> {
    rx: Option<Receiver<anyhow::Result<T>>>,
    early: Option<String>,
}

impl<T: Send + 'static> Job<T> {
    /// Runs `work` on a named thread; `repaint` is called when it is done.
    pub fn spawn(
        name: &str,
        repaint: impl Fn() + Send + 'static,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Self {
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new()
            .name(format!("trainlab-gui-{name}"))
            .spawn(move || {
                let _ = tx.send(work());
                repaint();
            });
        match spawned {
            Ok(_) => Self {
                rx: Some(rx),
                early: None,
            },
            Err(e) => Self {
                rx: None,
                early: Some(format!(
                    "could not start a background thread for {name}: {e}"
                )),
            },
        }
    }

    /// The outcome once it is ready (then never again). Boundary: the error is
    /// the message the view shows, so it is text from here on.
    pub fn poll(&mut self) -> Option<Result<T, String>> {
        if let Some(msg) = self.early.take() {
            return Some(Err(msg));
        }
        let rx = self.rx.as_ref()?;
        match rx.try_recv() {
            Ok(v) => {
                self.rx = None;
                Some(v.map_err(|e| e.to_string()))
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.rx = None;
                Some(Err(
                    "the background task crashed; see the terminal for details".into(),
                ))
            }
        }
    }

    /// Whether the outcome is still to come.
    pub fn is_pending(&self) -> bool {
        self.rx.is_some() || self.early.is_some()
    }
}

/// Takes the finished jobs out of `jobs` (each keyed by what it loads) with their
/// outcomes, in no particular order; the pending ones stay.
pub fn take_finished<K, T: Send + 'static>(
    jobs: &mut Vec<(K, Job<T>)>,
) -> Vec<(K, Result<T, String>)> {
    let mut done = Vec::new();
    let mut i = 0;
    while i < jobs.len() {
        match jobs[i].1.poll() {
            None => i += 1,
            Some(outcome) => {
                let (key, _) = jobs.swap_remove(i);
                done.push((key, outcome));
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_once_and_reports_panics() {
        let mut ok = Job::spawn("t", || {}, || Ok(5));
        let start = std::time::Instant::now();
        let value = loop {
            if let Some(v) = ok.poll() {
                break v;
            }
            assert!(start.elapsed().as_secs() < 10);
            std::thread::yield_now();
        };
        assert_eq!(value, Ok(5));
        assert!(ok.poll().is_none());
        let mut bad: Job<u8> = Job::spawn("p", || {}, || panic!("boom"));
        let err = loop {
            if let Some(v) = bad.poll() {
                break v;
            }
            std::thread::yield_now();
        };
        assert!(err.is_err());
    }
}
