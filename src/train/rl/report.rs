//! Bookkeeping between the episode loop and the event stream: success over a
//! sliding window of episodes, means over the episodes since the last event,
//! the first time the greedy path was optimal, and when a snapshot is due. Costs
//! a few additions per episode and nothing per move.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::tabular::EpisodeOutcome;
use crate::data::maze::GreedyPath;
use crate::events::EpisodeMetrics;

/// Running statistics of an RL run (saved whole in checkpoints, but for the
/// snapshot clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EpisodeLog {
    /// Goal reached, for the last `window.len()` episodes (a ring).
    window: Vec<bool>,
    window_pos: usize,
    window_filled: usize,
    successes: usize,
    pub(crate) episodes: u64,
    pub(crate) env_steps: u64,
    interval_return: f64,
    interval_length: u64,
    interval_episodes: u64,
    interval_steps: u64,
    interval_secs_at: f64,
    /// Moves of the solver's optimal path.
    pub(crate) optimal_len: usize,
    /// (episode, training seconds) when the greedy path was first optimal.
    pub(crate) first_optimal: Option<(u64, f64)>,
    #[serde(skip)]
    last_snapshot: Option<Instant>,
}

impl EpisodeLog {
    pub(crate) fn new(success_window: usize, optimal_len: usize) -> Self {
        Self {
            window: vec![false; success_window.max(1)],
            window_pos: 0,
            window_filled: 0,
            successes: 0,
            episodes: 0,
            env_steps: 0,
            interval_return: 0.0,
            interval_length: 0,
            interval_episodes: 0,
            interval_steps: 0,
            interval_secs_at: 0.0,
            optimal_len,
            first_optimal: None,
            last_snapshot: None,
        }
    }

    /// Counts one finished episode.
    pub(crate) fn record(&mut self, out: &EpisodeOutcome) {
        self.episodes += 1;
        self.env_steps += u64::from(out.length);
        self.interval_return += f64::from(out.ret);
        self.interval_length += u64::from(out.length);
        self.interval_episodes += 1;
        self.interval_steps += u64::from(out.length);
        let old = std::mem::replace(&mut self.window[self.window_pos], out.reached_goal);
        if self.window_filled == self.window.len() {
            self.successes -= usize::from(old);
        } else {
            self.window_filled += 1;
        }
        self.successes += usize::from(out.reached_goal);
        self.window_pos = (self.window_pos + 1) % self.window.len();
    }

    /// Fraction of the episodes in the window that reached a goal.
    pub(crate) fn success_rate(&self) -> f64 {
        self.successes as f64 / self.window_filled.max(1) as f64
    }

    /// Whether `path` is as short as the optimal one (and reaches a goal).
    pub(crate) fn is_optimal(&self, path: &GreedyPath) -> bool {
        path.reached_goal && path.moves() <= self.optimal_len
    }

    /// The metrics since the previous call; notes the first optimal greedy path.
    /// `train_secs` is the training time so far (pauses excluded).
    pub(crate) fn metrics(
        &mut self,
        epsilon: f64,
        loss: Option<f64>,
        path: &GreedyPath,
        train_secs: f64,
    ) -> EpisodeMetrics {
        let optimal = self.is_optimal(path);
        if optimal && self.first_optimal.is_none() {
            self.first_optimal = Some((self.episodes, train_secs));
        }
        let n = self.interval_episodes.max(1) as f64;
        let secs = (train_secs - self.interval_secs_at).max(1e-9);
        let m = EpisodeMetrics {
            episode: self.episodes,
            env_steps: self.env_steps,
            mean_return: self.interval_return / n,
            mean_length: self.interval_length as f64 / n,
            epsilon,
            loss,
            success_rate: self.success_rate(),
            greedy_path_len: path.reached_goal.then(|| path.moves() as u32),
            optimal_path_len: self.optimal_len as u32,
            greedy_optimal: optimal,
            steps_per_sec: self.interval_steps as f64 / secs,
            episodes_covered: self.interval_episodes,
        };
        self.interval_return = 0.0;
        self.interval_length = 0;
        self.interval_episodes = 0;
        self.interval_steps = 0;
        self.interval_secs_at = train_secs;
        m
    }

    /// True (and restarts the clock) when `every_secs` have passed since the
    /// last snapshot, or none was sent yet.
    pub(crate) fn snapshot_due(&mut self, every_secs: f64) -> bool {
        let due = self
            .last_snapshot
            .is_none_or(|t| t.elapsed().as_secs_f64() >= every_secs);
        if due {
            self.last_snapshot = Some(Instant::now());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(goal: bool) -> EpisodeOutcome {
        EpisodeOutcome {
            ret: if goal { 1.0 } else { -1.0 },
            length: 10,
            reached_goal: goal,
        }
    }

    #[test]
    fn success_rate_slides_and_means_reset() {
        let mut log = EpisodeLog::new(4, 3);
        for goal in [false, false, true, true, true, true] {
            log.record(&ep(goal));
        }
        assert_eq!(log.success_rate(), 1.0, "only the last four count");
        let path = GreedyPath {
            cells: vec![(0, 0), (0, 1), (0, 2), (0, 3)],
            reached_goal: true,
        };
        let m = log.metrics(0.1, None, &path, 2.0);
        assert_eq!(m.episodes_covered, 6);
        assert!((m.mean_return - 2.0 / 6.0).abs() < 1e-12);
        assert!(m.greedy_optimal);
        assert_eq!(log.first_optimal, Some((6, 2.0)));
        log.record(&ep(false));
        let m = log.metrics(0.1, None, &path, 3.0);
        assert_eq!((m.episodes_covered, m.mean_return), (1, -1.0));
        assert_eq!(m.success_rate, 0.75);
        assert_eq!(log.first_optimal, Some((6, 2.0)), "the first stays");
    }
}
