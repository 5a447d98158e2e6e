//! What the GUI knows about one run, built only from [`TrainEvent`]s.
//!
//! Contract: [`RunSeries::apply`] folds one event in (O(1) amortised, called when an
//! event arrives, never per frame); the same struct holds a live run and a past run
//! read back from `metrics.jsonl`, so the curves view draws both the same way.
//! Columns are plain `Vec<f64>` indexed alike (x = optimizer step).

use crate::events::{
    EnvInfo, EvalMetrics, PolicySnapshot, RunInfo, RunSummary, Split, StopReason, TextSample,
    TrainEvent,
};

/// Where a run is in its life.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RunState {
    /// Nothing started yet.
    #[default]
    Idle,
    /// Started; loading data and building the model.
    Starting,
    /// Training steps are running.
    Running,
    /// Held by a Pause request.
    Paused,
    /// Ended normally.
    Finished(StopReason),
    /// Ended with an error (message for people).
    Failed(String),
}

impl RunState {
    /// Whether the worker is still alive (Start must wait).
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Paused)
    }

    /// One or two words for the status bar.
    pub fn label(&self) -> String {
        match self {
            Self::Idle => "idle".into(),
            Self::Starting => "starting (loading data)".into(),
            Self::Running => "training".into(),
            Self::Paused => "paused".into(),
            Self::Finished(StopReason::Completed) => "finished".into(),
            Self::Finished(StopReason::EarlyStopped) => "finished (early stop)".into(),
            Self::Finished(StopReason::Stopped) => "stopped".into(),
            Self::Finished(StopReason::Solved) => "finished (solved)".into(),
            Self::Failed(_) => "failed".into(),
        }
    }
}

/// Per-step columns (one entry per Step event).
#[derive(Debug, Clone, Default)]
pub struct StepColumns {
    /// Optimizer step (x axis).
    pub step: Vec<f64>,
    /// Fractional epoch.
    pub epoch: Vec<f64>,
    /// Mean training loss.
    pub loss: Vec<f64>,
    /// Training accuracy.
    pub accuracy: Vec<f64>,
    /// Learning rate in effect.
    pub lr: Vec<f64>,
    /// Samples per second.
    pub samples_per_sec: Vec<f64>,
}

/// Per-report columns of a reinforcement-learning run (one entry per Episodes
/// event; `NaN` where a value does not apply, e.g. the loss of a Q-table).
#[derive(Debug, Clone, Default)]
pub struct EpisodeColumns {
    /// Episodes finished (x axis).
    pub episode: Vec<f64>,
    /// Mean return of the covered episodes.
    pub mean_return: Vec<f64>,
    /// Mean length (moves) of the covered episodes.
    pub mean_length: Vec<f64>,
    /// Exploration rate.
    pub epsilon: Vec<f64>,
    /// DQN training loss.
    pub loss: Vec<f64>,
    /// Share of recent episodes that reached a goal.
    pub success_rate: Vec<f64>,
    /// Moves of the greedy path (NaN when it does not reach a goal).
    pub greedy_len: Vec<f64>,
    /// Environment moves per second.
    pub steps_per_sec: Vec<f64>,
}

/// One evaluation, without its confusion matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPoint {
    /// Step of the evaluation.
    pub step: f64,
    /// Which split.
    pub split: Split,
    /// Mean loss.
    pub loss: f64,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
}

/// Everything known about one run.
#[derive(Debug, Clone, Default)]
pub struct RunSeries {
    /// Legend name (experiment name or run folder).
    pub label: String,
    /// Life-cycle state.
    pub state: RunState,
    /// Facts from the Started event.
    pub info: Option<RunInfo>,
    /// Step columns.
    pub steps: StepColumns,
    /// Every evaluation.
    pub evals: Vec<EvalPoint>,
    /// The latest evaluation with its confusion matrix (test preferred once it exists).
    pub latest_eval: Option<EvalMetrics>,
    /// Steps at which a new epoch began (x of the vertical markers).
    pub epoch_starts: Vec<f64>,
    /// (step, lr) of learning-rate changes made during the run.
    pub lr_changes: Vec<(u64, f64)>,
    /// Final figures.
    pub summary: Option<RunSummary>,
    /// Human-readable log lines (notes, pauses, failures).
    pub log: Vec<String>,
    /// Reinforcement learning: the maze and its exact solution.
    pub env: Option<EnvInfo>,
    /// Reinforcement learning: progress columns.
    pub episodes: EpisodeColumns,
    /// Reinforcement learning: the newest Q-values and greedy path.
    pub policy: Option<PolicySnapshot>,
    /// Reinforcement learning: total environment moves so far.
    pub env_steps: u64,
    /// Language models: the samples written during training.
    pub samples: Vec<TextSample>,
    /// Per-layer statistics, one record per eval point (the Layers tab).
    pub layer_stats: Vec<crate::events::LayerStats>,
}

impl RunSeries {
    /// An empty series for a run about to start.
    pub fn starting(label: &str) -> Self {
        Self {
            label: label.to_string(),
            state: RunState::Starting,
            ..Self::default()
        }
    }

    /// A series rebuilt from recorded events (a past run).
    pub fn from_events(label: &str, events: &[TrainEvent]) -> Self {
        let mut series = Self::starting(label);
        for e in events {
            series.apply(e);
        }
        if series.state.is_live() {
            // The record ends without Finished: the process was killed.
            series.state = RunState::Failed("the run's record ends early (killed?)".into());
        }
        series
    }

    /// Folds one event into the series.
    pub fn apply(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Started(info) => {
                self.state = RunState::Running;
                self.log.push(format!(
                    "started on {}: {} train / {} val / {} test samples, {} parameters",
                    info.device,
                    info.train_samples,
                    info.val_samples,
                    info.test_samples,
                    info.parameters
                ));
                self.info = Some(info.clone());
            }
            TrainEvent::Step(m) => {
                let previous_epoch = self.steps.epoch.last().copied().unwrap_or(0.0);
                if m.epoch.floor() > previous_epoch.floor() {
                    self.epoch_starts
                        .push(self.epoch_start_step(m.epoch.floor()));
                }
                let c = &mut self.steps;
                c.step.push(m.step as f64);
                c.epoch.push(m.epoch);
                c.loss.push(m.loss);
                c.accuracy.push(m.accuracy);
                c.lr.push(m.lr);
                c.samples_per_sec.push(m.samples_per_sec);
            }
            TrainEvent::Eval(e) => {
                self.evals.push(EvalPoint {
                    step: e.step as f64,
                    split: e.split,
                    loss: e.loss,
                    accuracy: e.accuracy,
                });
                let keep_test = self
                    .latest_eval
                    .as_ref()
                    .is_some_and(|l| l.split == Split::Test && e.split != Split::Test);
                if !keep_test {
                    self.latest_eval = Some(e.clone());
                }
            }
            TrainEvent::LrChanged { step, lr } => {
                self.lr_changes.push((*step, *lr));
                self.log
                    .push(format!("step {step}: learning rate set to {lr:e}"));
            }
            TrainEvent::Paused { step } => {
                self.state = RunState::Paused;
                self.log.push(format!("step {step}: paused"));
            }
            TrainEvent::Resumed { step } => {
                self.state = RunState::Running;
                self.log.push(format!("step {step}: resumed"));
            }
            TrainEvent::Note { step, message } => {
                self.log.push(format!("step {step}: {message}"));
            }
            TrainEvent::Restored { step, checkpoint } => {
                self.log.push(format!(
                    "step {step}: continued from the checkpoint {checkpoint}"
                ));
            }
            // Probe answers are routed to the views that asked (see `live`).
            TrainEvent::Probed(_) => {}
            TrainEvent::Environment(env) => {
                self.log.push(format!(
                    "{} on a {}-state maze: shortest path {} moves, optimal return {:.3}",
                    env.method, env.states, env.shortest_path_len, env.optimal_return
                ));
                self.env = Some(env.clone());
            }
            TrainEvent::Episodes(m) => {
                let c = &mut self.episodes;
                c.episode.push(m.episode as f64);
                c.mean_return.push(m.mean_return);
                c.mean_length.push(m.mean_length);
                c.epsilon.push(m.epsilon);
                c.loss.push(m.loss.unwrap_or(f64::NAN));
                c.success_rate.push(m.success_rate);
                c.greedy_len
                    .push(m.greedy_path_len.map_or(f64::NAN, f64::from));
                c.steps_per_sec.push(m.steps_per_sec);
                self.env_steps = m.env_steps;
            }
            TrainEvent::Policy(p) => self.show_policy(p.clone()),
            TrainEvent::Sample(s) => self.samples.push(s.clone()),
            TrainEvent::LayerStats(l) => self.layer_stats.push(l.clone()),
            TrainEvent::Finished(summary) => {
                self.state = RunState::Finished(summary.reason);
                self.log.push(format!(
                    "finished after {} steps ({:.1} s)",
                    summary.steps, summary.wall_seconds
                ));
                self.summary = Some(summary.clone());
            }
            TrainEvent::Failed {
                step,
                kind,
                message,
            } => {
                let text = format!("step {step}: run failed ({kind:?}): {message}");
                self.log.push(text.clone());
                self.state = RunState::Failed(text);
            }
        }
    }

    /// Shows `p` unless a newer snapshot is shown already (snapshots come from
    /// the live run's slot and, fewer, from its events; both only move forward).
    pub fn show_policy(&mut self, p: PolicySnapshot) {
        let older = self
            .policy
            .as_ref()
            .is_some_and(|q| (q.episode, q.env_steps) > (p.episode, p.env_steps));
        if !older {
            self.policy = Some(p);
        }
    }

    /// Step at which epoch `epoch` (0-based, whole) began, from steps_per_epoch.
    fn epoch_start_step(&self, epoch: f64) -> f64 {
        let per_epoch = self.info.as_ref().map_or(0, |i| i.steps_per_epoch) as f64;
        epoch * per_epoch
    }

    /// Latest step reached.
    pub fn last_step(&self) -> u64 {
        self.steps.step.last().map_or(0, |&s| s as u64)
    }

    /// Whether this is a reinforcement-learning run.
    pub fn is_rl(&self) -> bool {
        self.env.is_some() || !self.episodes.episode.is_empty()
    }

    /// Latest fractional epoch.
    pub fn last_epoch(&self) -> f64 {
        self.steps.epoch.last().copied().unwrap_or(0.0)
    }

    /// Evaluations of one split as plot points (step, accuracy).
    pub fn accuracy_points(&self, split: Split) -> Vec<[f64; 2]> {
        self.evals
            .iter()
            .filter(|e| e.split == split)
            .map(|e| [e.step, e.accuracy])
            .collect()
    }

    /// Seconds left, from the planned steps and the pace the run can keep: the
    /// latest throughput (which counts compute time only) or, in slow motion,
    /// `pace` steps per second when that is slower.
    pub fn eta_seconds(&self, items_per_step: usize, pace: Option<f64>) -> Option<f64> {
        let info = self.info.as_ref()?;
        let sps = *self.steps.samples_per_sec.last()?;
        if sps <= 0.0 || !sps.is_finite() {
            return None;
        }
        let mut steps_per_sec = sps / items_per_step.max(1) as f64;
        if let Some(p) = pace.filter(|p| p.is_finite() && *p > 0.0) {
            steps_per_sec = steps_per_sec.min(p);
        }
        let left = info.total_steps.saturating_sub(self.last_step()) as f64;
        Some(left / steps_per_sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StepMetrics;

    fn step(step: u64, epoch: f64, loss: f64) -> TrainEvent {
        TrainEvent::Step(StepMetrics {
            step,
            epoch,
            loss,
            accuracy: 0.5,
            lr: 1e-3,
            samples_per_sec: 1000.0,
            steps_covered: 10,
        })
    }

    #[test]
    fn steps_pauses_and_epoch_markers() {
        let mut s = RunSeries::starting("t");
        s.apply(&step(10, 0.5, 2.0));
        s.apply(&step(20, 1.0, 1.5));
        s.apply(&step(30, 1.5, 1.0));
        s.apply(&TrainEvent::Paused { step: 30 });
        assert_eq!(s.state, RunState::Paused);
        assert_eq!(s.steps.loss, vec![2.0, 1.5, 1.0]);
        assert_eq!(s.epoch_starts.len(), 1, "one epoch boundary crossed");
        assert_eq!(s.last_step(), 30);
        s.apply(&TrainEvent::Failed {
            step: 31,
            kind: crate::events::FailureKind::Diverged,
            message: "loss is NaN".into(),
        });
        assert!(matches!(s.state, RunState::Failed(ref m) if m.contains("NaN")));
    }

    /// A paced run's compute throughput says nothing of its wall time: 1,130
    /// steps left at 10 steps/s are 113 s, however fast each step computes.
    #[test]
    fn the_time_left_follows_the_pace() {
        let mut s = RunSeries::starting("t");
        s.apply(&TrainEvent::Started(crate::events::RunInfo {
            name: "t".into(),
            run_dir: None,
            device: "cpu".into(),
            parameters: 1,
            train_samples: 1,
            val_samples: 0,
            test_samples: 0,
            steps_per_epoch: 10,
            total_steps: 1_270,
            classes: Vec::new(),
            layers: Vec::new(),
            step_items: crate::events::StepItems {
                count: 10,
                unit: crate::events::ItemUnit::Samples,
            },
        }));
        s.apply(&step(140, 1.4, 1.0)); // 1000 samples/s = 100 steps/s
        assert_eq!(s.eta_seconds(10, None), Some(11.3));
        assert_eq!(s.eta_seconds(10, Some(10.0)), Some(113.0));
        assert_eq!(
            s.eta_seconds(10, Some(1e6)),
            Some(11.3),
            "a pace above the compute speed"
        );
    }
}
