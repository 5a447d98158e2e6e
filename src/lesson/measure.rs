//! The figures of one finished (or failed) run that checks can read.

use super::Unmeasured;
use crate::events::{
    EpisodeMetrics, EvalMetrics, FailureKind, LayerStats, RunSummary, Split, StepMetrics,
};
use crate::spec::LessonFigure;

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
    /// The first layer statistics of the run.
    pub first_layer_stats: Option<LayerStats>,
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

    /// Takes in one LayerStats event (only the first is kept).
    pub(crate) fn layer_stats(&mut self, l: LayerStats) {
        self.first_layer_stats.get_or_insert(l);
    }

    /// First over last gradient norm of the layers with parameters.
    fn gradient_ratio(&self) -> Result<f64, Unmeasured> {
        let stats = self
            .first_layer_stats
            .as_ref()
            .ok_or(Unmeasured::NoLayerStats)?;
        let norms: Vec<f64> = stats.layers.iter().filter_map(|l| l.grad_norm).collect();
        match (norms.first(), norms.last()) {
            (Some(first), Some(last)) if norms.len() >= 2 && *last > 0.0 => Ok(first / last),
            _ => Err(Unmeasured::GradientRatio),
        }
    }

    /// The figure's value (yes/no figures as 1 or 0), or why the run has none.
    pub fn figure(&self, f: LessonFigure) -> Result<f64, Unmeasured> {
        use LessonFigure as F;
        let summary = || {
            self.summary.as_ref().ok_or_else(|| match &self.failure {
                Some((_, step, message)) => Unmeasured::Failed {
                    step: *step,
                    message: message.clone(),
                },
                None => Unmeasured::Unfinished,
            })
        };
        let rl = || summary()?.rl.as_ref().ok_or(Unmeasured::NotMaze);
        let episodes = || self.episodes.as_ref().ok_or(Unmeasured::NoEpisodes);
        let absent = Unmeasured::Absent;
        let language = || summary()?.language.ok_or(Unmeasured::NotLanguageModel);
        match f {
            F::Diverged => Ok(f64::from(u8::from(matches!(
                self.failure,
                Some((FailureKind::Diverged, ..))
            )))),
            F::PeakTrainLoss => self.peak_train_loss.ok_or(Unmeasured::NoSteps),
            F::FinalLr => self.final_lr.ok_or(Unmeasured::NoSteps),
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
                .ok_or(Unmeasured::NoGoal),
            F::OptimalPathLength => Ok(rl()?.optimal_path_len as f64),
            F::GreedyOptimal => Ok(f64::from(u8::from(rl()?.greedy_optimal))),
            F::GradientRatio => self.gradient_ratio(),
            F::FirstOptimalEpisode => rl()?
                .first_optimal_episode
                .map(|n| n as f64)
                .ok_or(Unmeasured::NeverOptimal),
        }
    }
}
