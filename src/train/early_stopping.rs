//! Early stopping on validation loss: stop after `patience` evaluations without
//! an improvement of at least `min_delta`.

use crate::spec::EarlyStopping;

/// Tracks the best validation loss seen so far.
#[derive(Debug, Clone)]
pub struct EarlyStopper {
    patience: usize,
    min_delta: f64,
    best: f64,
    bad_evals: usize,
}

impl EarlyStopper {
    /// A stopper with the file's settings.
    pub fn new(cfg: &EarlyStopping) -> Self {
        Self {
            patience: cfg.patience,
            min_delta: cfg.min_delta,
            best: f64::INFINITY,
            bad_evals: 0,
        }
    }

    /// Records one validation loss; true when training should stop.
    pub fn should_stop(&mut self, val_loss: f64) -> bool {
        if val_loss < self.best - self.min_delta {
            self.best = val_loss;
            self.bad_evals = 0;
        } else {
            self.bad_evals += 1;
        }
        self.bad_evals > self.patience
    }

    /// (best loss, None while there is none; evaluations without improvement), for a checkpoint.
    pub(crate) fn snapshot(&self) -> (Option<f64>, usize) {
        (self.best.is_finite().then_some(self.best), self.bad_evals)
    }

    /// Continues from a [`EarlyStopper::snapshot`].
    pub(crate) fn restore(&mut self, best: Option<f64>, bad_evals: usize) {
        self.best = best.unwrap_or(f64::INFINITY);
        self.bad_evals = bad_evals;
    }

    /// Best validation loss so far.
    pub fn best(&self) -> f64 {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_runs_out() {
        let mut s = EarlyStopper::new(&EarlyStopping {
            patience: 2,
            min_delta: 0.01,
        });
        assert!(!s.should_stop(1.0));
        assert!(!s.should_stop(0.9));
        assert!(!s.should_stop(0.895), "below min_delta: first bad eval");
        assert!(!s.should_stop(0.95), "second bad eval");
        assert!(s.should_stop(0.91), "third bad eval exceeds patience 2");
        assert_eq!(s.best(), 0.9);
    }

    #[test]
    fn improvement_resets_the_count() {
        let mut s = EarlyStopper::new(&EarlyStopping {
            patience: 1,
            min_delta: 0.0,
        });
        assert!(!s.should_stop(1.0));
        assert!(!s.should_stop(1.1));
        assert!(!s.should_stop(0.5));
        assert!(!s.should_stop(0.6));
        assert!(s.should_stop(0.7));
    }

    #[test]
    fn an_equal_loss_is_no_improvement() {
        let mut s = EarlyStopper::new(&EarlyStopping {
            patience: 0,
            min_delta: 0.25,
        });
        assert!(!s.should_stop(1.0));
        // Exactly min_delta below the best does not count: improving means going below it.
        assert!(s.should_stop(0.75), "0.75 is not below 1.0 - 0.25");
        assert_eq!(s.best(), 1.0);
    }

    #[test]
    fn a_snapshot_restores_the_best_loss_and_the_count() {
        let cfg = EarlyStopping {
            patience: 2,
            min_delta: 0.0,
        };
        let mut s = EarlyStopper::new(&cfg);
        assert_eq!(s.snapshot(), (None, 0), "nothing seen yet");
        assert!(!s.should_stop(0.5));
        assert!(!s.should_stop(0.7));
        assert_eq!(s.snapshot(), (Some(0.5), 1));
        let mut resumed = EarlyStopper::new(&cfg);
        resumed.restore(Some(0.5), 2);
        assert_eq!(resumed.best(), 0.5);
        assert!(
            resumed.should_stop(0.6),
            "the third bad evaluation, counted on from 2"
        );
        let mut fresh = EarlyStopper::new(&cfg);
        fresh.restore(None, 0);
        assert_eq!(fresh.best(), f64::INFINITY);
    }
}
