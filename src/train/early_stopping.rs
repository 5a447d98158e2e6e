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
}
