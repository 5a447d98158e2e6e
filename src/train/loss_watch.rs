//! Watching the training loss each time a Step is logged, the same way in every
//! supervised loop (images, language model, text classifier).
//!
//! Contract: a NaN or infinite loss ends the run with a `Diverged` failure that
//! names the step and suggests a smaller learning rate. A finite loss that climbs
//! far above where it started (more than 10x the first logged value, or above 50
//! nats, where no cross-entropy of a working model ends up) yields one Note with
//! the same advice; the run goes on, since the learner may be exploring on purpose.

use super::worker::RunFailure;

/// Losses above this are never those of a cross-entropy model that learns.
const HOPELESS_LOSS: f64 = 50.0;

/// The loss history a loop needs for its checks.
#[derive(Debug, Default)]
pub(crate) struct LossWatch {
    first: Option<f64>,
    warned: bool,
}

impl LossWatch {
    /// (first logged loss, warned yet), for a checkpoint.
    pub(crate) fn snapshot(&self) -> (Option<f64>, bool) {
        (self.first, self.warned)
    }

    /// Continues from a [`LossWatch::snapshot`].
    pub(crate) fn restored((first, warned): (Option<f64>, bool)) -> Self {
        Self { first, warned }
    }

    /// Checks the mean training loss logged at `step`; returns a Note to emit, if
    /// any, or the failure that ends a diverged run.
    pub(crate) fn check(
        &mut self,
        step: u64,
        loss: f64,
        lr: f64,
    ) -> Result<Option<String>, RunFailure> {
        if !loss.is_finite() {
            return Err(RunFailure::diverged(
                step,
                format!(
                    "training diverged: the loss became {loss} by step {step} (lr {lr:.3e}). \
                     Try a learning rate about 10x smaller, or set training.grad_clip_norm (e.g. 1.0)."
                ),
            ));
        }
        let at_first_log = self.first.is_none();
        let first = *self.first.get_or_insert(loss);
        if self.warned || !(loss > HOPELESS_LOSS || loss > 10.0 * first) {
            return Ok(None);
        }
        self.warned = true;
        let since = if at_first_log {
            String::new()
        } else {
            format!(" (it was {first:.4} at the first log)")
        };
        Ok(Some(format!(
            "the training loss is {loss:.4} at step {step}{since}: the learning rate \
             ({lr:.3e}) is probably too high. Try one about 10x smaller."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_fails_a_climbing_loss_warns_once_a_falling_one_is_quiet() {
        let mut quiet = LossWatch::default();
        for (step, loss) in [(10, 2.3), (20, 1.1), (30, 0.4)] {
            assert_eq!(quiet.check(step, loss, 1e-3).expect("finite"), None);
        }
        let mut climbing = LossWatch::default();
        assert_eq!(climbing.check(10, 2.3, 10.0).expect("finite"), None);
        let note = climbing
            .check(20, 40.0, 10.0)
            .expect("finite")
            .expect("a note");
        assert!(
            note.contains("too high") && note.contains("step 20"),
            "{note}"
        );
        assert_eq!(
            climbing.check(30, 80.0, 10.0).expect("finite"),
            None,
            "once only"
        );
        // Already hopeless at the first log.
        let mut hopeless = LossWatch::default();
        assert!(
            hopeless
                .check(10, 24_000.0, 10.0)
                .expect("finite")
                .is_some()
        );
        let failure = LossWatch::default()
            .check(5, f64::NAN, 1.0)
            .expect_err("NaN fails");
        let message = failure.to_string();
        assert!(message.contains("diverged") && message.contains("step 5"));
    }

    #[test]
    fn the_thresholds_are_strict_more_than_ten_times_the_first_or_above_fifty() {
        // First 10.0, then exactly 50.0: not above 50, and 50 <= 10 * 10 = 100.
        let mut at_fifty = LossWatch::default();
        assert_eq!(at_fifty.check(10, 10.0, 1e-2).expect("finite"), None);
        assert_eq!(
            at_fifty.check(20, 50.0, 1e-2).expect("finite"),
            None,
            "exactly 50 is not above 50"
        );
        assert_eq!(at_fifty.snapshot(), (Some(10.0), false));
        // First 2.0: the line is 10 * 2.0 = 20.0 (not 10 + 2 = 12, nor 10 / 2 = 5).
        let mut tenfold = LossWatch::default();
        assert_eq!(tenfold.check(10, 2.0, 1e-2).expect("finite"), None);
        assert_eq!(
            tenfold.check(20, 15.0, 1e-2).expect("finite"),
            None,
            "15 is 7.5x the first"
        );
        assert_eq!(
            tenfold.check(30, 20.0, 1e-2).expect("finite"),
            None,
            "exactly 10x is not more than 10x"
        );
        assert_eq!(tenfold.snapshot(), (Some(2.0), false));
        assert_eq!(
            tenfold.check(40, 20.5, 1e-2).expect("finite").as_deref(),
            Some(
                "the training loss is 20.5000 at step 40 (it was 2.0000 at the first log): \
                 the learning rate (1.000e-2) is probably too high. Try one about 10x smaller."
            )
        );
        assert_eq!(tenfold.snapshot(), (Some(2.0), true));
    }

    #[test]
    fn a_restored_watch_compares_with_the_first_loss_and_warns_at_most_once() {
        assert_eq!(LossWatch::default().snapshot(), (None, false));
        // 25.0 is more than 10 * 2.0 = 20.0 but not above 50: it warns only
        // because the first loss 2.0 came back from the snapshot.
        let mut unwarned = LossWatch::restored((Some(2.0), false));
        assert_eq!(unwarned.snapshot(), (Some(2.0), false));
        let note = unwarned
            .check(50, 25.0, 1e-2)
            .expect("finite")
            .expect("a note");
        assert!(note.contains("(it was 2.0000 at the first log)"), "{note}");
        let mut warned = LossWatch::restored((Some(2.0), true));
        assert_eq!(warned.snapshot(), (Some(2.0), true));
        assert_eq!(
            warned.check(50, 25.0, 1e-2).expect("finite"),
            None,
            "it warned before the checkpoint"
        );
    }
}
