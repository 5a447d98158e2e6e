//! Event payloads of reinforcement-learning runs (part of the [`super::TrainEvent`]
//! contract). Positions are (row, column), 0-based; Q-values are per grid cell,
//! row-major, in the action order up, right, down, left, with zeros for walls.
//!
//! A viewer draws the maze from [`EnvInfo::layout`], plots [`EpisodeMetrics`], and
//! paints the latest [`PolicySnapshot`] (Q heatmap and greedy path).

use serde::{Deserialize, Serialize};

/// The maze of a run and its exact solution; sent once, right after Started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvInfo {
    /// The maze as layout rows (`#` wall, `.` free, `S`, `G`, `X` pit, `~` slippery).
    pub layout: Vec<String>,
    /// Non-wall cells (the states of a Q-table).
    pub states: usize,
    /// Moves on a shortest path (BFS).
    pub shortest_path_len: usize,
    /// The path an optimal policy takes when no move slips.
    pub optimal_path: Vec<(u16, u16)>,
    /// Optimal expected discounted return from the start (value iteration).
    pub optimal_return: f64,
    /// Moves per episode before it is cut off.
    pub max_steps: u32,
    /// Learning method, e.g. "Q-learning".
    pub method: String,
    /// Episodes planned.
    pub episodes: u64,
}

/// Learning progress over the episodes since the previous Episodes event.
/// Coalesced like Step events when the consumer falls behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeMetrics {
    /// Episodes finished so far.
    pub episode: u64,
    /// Moves made so far, all episodes together.
    pub env_steps: u64,
    /// Mean undiscounted return of the covered episodes.
    pub mean_return: f64,
    /// Mean length (moves) of the covered episodes.
    pub mean_length: f64,
    /// Exploration rate of the last covered episode.
    pub epsilon: f64,
    /// Mean training loss over the covered episodes (DQN only).
    pub loss: Option<f64>,
    /// Fraction of the last `agent.success_window` episodes that reached a goal.
    pub success_rate: f64,
    /// Moves of the current greedy path when it reaches a goal.
    pub greedy_path_len: Option<u32>,
    /// Moves of the optimal path (the solver's), for comparison.
    pub optimal_path_len: u32,
    /// Whether the greedy path reaches a goal in no more moves than the optimal one.
    pub greedy_optimal: bool,
    /// Moves per second over the covered episodes.
    pub steps_per_sec: f64,
    /// Episodes this event covers.
    pub episodes_covered: u64,
}

/// What the agent currently believes: Q-values of every cell and its greedy path.
/// Sent at most every `agent.snapshot_every_secs` and once at the end; only the
/// final one is kept on disk (`qtable.json`), never in `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    /// Episodes finished.
    pub episode: u64,
    /// Moves made so far.
    pub env_steps: u64,
    /// Grid rows.
    pub rows: usize,
    /// Grid columns.
    pub cols: usize,
    /// `q[row * cols + col][action]`; zeros for walls.
    pub q: Vec<[f32; 4]>,
    /// Greedy path from the start.
    pub greedy_path: Vec<(u16, u16)>,
    /// Whether the greedy path ends on a goal.
    pub reached_goal: bool,
}

/// Final figures of a reinforcement-learning run (part of `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlSummary {
    /// Learning method.
    pub method: String,
    /// Episodes finished.
    pub episodes: u64,
    /// Moves made.
    pub env_steps: u64,
    /// Gradient steps (DQN; 0 for tables).
    pub gradient_steps: u64,
    /// Success rate over the last `agent.success_window` episodes.
    pub success_rate: f64,
    /// Moves of the final greedy path, when it reaches a goal.
    pub greedy_path_len: Option<usize>,
    /// Moves of the solver's optimal path.
    pub optimal_path_len: usize,
    /// Moves of a shortest path (BFS).
    pub shortest_path_len: usize,
    /// Optimal expected discounted return from the start.
    pub optimal_return: f64,
    /// Whether the final greedy path is optimal.
    pub greedy_optimal: bool,
    /// Episode at whose end the greedy path was first optimal (checked every
    /// `agent.log_every_episodes`).
    pub first_optimal_episode: Option<u64>,
    /// Training seconds until then.
    pub first_optimal_seconds: Option<f64>,
    /// Moves per second over the whole run (events included).
    pub env_steps_per_sec: f64,
}
