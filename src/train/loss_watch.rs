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
        assert!(failure.message.contains("diverged") && failure.message.contains("step 5"));
    }
}
