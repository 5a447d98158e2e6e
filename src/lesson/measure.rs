//! The figures of one finished (or failed) run that checks can read.

use crate::spec::LessonFigure;
use crate::train::{EpisodeMetrics, EvalMetrics, FailureKind, RunSummary, Split, StepMetrics};

/// What one run of a lesson left to measure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// The final figures, when the run finished.
    pub summary: Option<RunSummary>,
    /// The highest training loss of a Step event.
    pub peak_train_loss: Option<f64>,
    /// The lowest validation loss of an Eval event.
    pub lowest_val_loss: Option<f64>,
    /// The learning rate of the last Step event.
    pub final_lr: Option<f64>,
    /// Mazes: the last Episodes event.
    pub episodes: Option<EpisodeMetrics>,
    /// How the run failed: kind, step, message.
    pub failure: Option<(FailureKind, u64, String)>,
}

impl Measured {
    /// Takes in one Step event.
    pub(crate) fn step(&mut self, s: &StepMetrics) {
        // A NaN loss is not a peak: the run diverged, which `Diverged` says.
        if s.loss.is_finite() {
            self.peak_train_loss = Some(self.peak_train_loss.map_or(s.loss, |p| p.max(s.loss)));
        }
        self.final_lr = Some(s.lr);
    }

    /// Takes in one Eval event.
    pub(crate) fn eval(&mut self, e: &EvalMetrics) {
        if e.split == Split::Val && e.loss.is_finite() {
            self.lowest_val_loss = Some(self.lowest_val_loss.map_or(e.loss, |l| l.min(e.loss)));
        }
    }

    /// The figure's value (yes/no figures as 1 or 0), or why the run has none.
    pub fn figure(&self, f: LessonFigure) -> Result<f64, String> {
        use LessonFigure as F;
        let summary = || {
            self.summary.as_ref().ok_or_else(|| match &self.failure {
                Some((_, step, message)) => format!("the run failed at step {step}: {message}"),
                None => "the run did not finish".to_string(),
            })
        };
        let rl = || {
            summary()?
                .rl
                .as_ref()
                .ok_or_else(|| "only maze runs have it".to_string())
        };
        let episodes = || {
            self.episodes
                .as_ref()
                .ok_or_else(|| "no episodes were logged (only maze runs have them)".to_string())
        };
        let absent = |what: &str| format!("this run has no {what}");
        let language = || {
            summary()?
                .language
                .ok_or_else(|| "only language models have it".to_string())
        };
        match f {
            F::Diverged => Ok(f64::from(u8::from(matches!(
                self.failure,
                Some((FailureKind::Diverged, ..))
            )))),
            F::PeakTrainLoss => self
                .peak_train_loss
                .ok_or_else(|| "no step was logged".into()),
            F::FinalLr => self.final_lr.ok_or_else(|| "no step was logged".into()),
            F::MeanReturn => Ok(episodes()?.mean_return),
            F::MeanEpisodeLength => Ok(episodes()?.mean_length),
            F::TestAccuracy => summary()?.test_accuracy.ok_or_else(|| absent("test split")),
            F::TestLoss => summary()?.test_loss.ok_or_else(|| absent("test split")),
            F::ValAccuracy => summary()?
                .val_accuracy
                .ok_or_else(|| absent("validation split")),
            F::ValLoss => summary()?
                .val_loss
                .ok_or_else(|| absent("validation split")),
            F::ValLossRise => {
                let last = summary()?
                    .val_loss
                    .ok_or_else(|| absent("validation split"))?;
                let lowest = self.lowest_val_loss.unwrap_or(last);
                Ok((last - lowest).max(0.0))
            }
            F::TrainAccuracy => summary()?
                .train_accuracy
                .ok_or_else(|| absent("train accuracy")),
            F::TrainLoss => summary()?.train_loss.ok_or_else(|| absent("train loss")),
            F::Parameters => Ok(summary()?.parameters as f64),
            F::Steps => Ok(summary()?.steps as f64),
            F::BitsPerToken => Ok(language()?.bits_per_token),
            F::Perplexity => Ok(language()?.perplexity),
            F::SuccessRate => Ok(rl()?.success_rate),
            F::GreedyPathLength => rl()?
                .greedy_path_len
                .map(|n| n as f64)
                .ok_or_else(|| "the greedy path does not reach a goal".into()),
            F::OptimalPathLength => Ok(rl()?.optimal_path_len as f64),
            F::GreedyOptimal => Ok(f64::from(u8::from(rl()?.greedy_optimal))),
            F::FirstOptimalEpisode => rl()?
                .first_optimal_episode
                .map(|n| n as f64)
                .ok_or_else(|| "the greedy path never became optimal".into()),
        }
    }
}
