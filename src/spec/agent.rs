//! The reinforcement-learning agent of a gridworld run: which method, how long,
//! how it explores, and each method's own settings. Ignored by image datasets.
//!
//! DQN takes its Q-network from the experiment's `model` layer list and its
//! optimizer from `optimizer`, like a supervised run.

use serde::{Deserialize, Serialize};

/// How an agent learns and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSpec {
    /// The learning method and its settings.
    pub method: AgentMethod,
    /// Episodes to run.
    pub episodes: usize,
    /// Also stop after this many moves in total (None: no limit).
    pub max_env_steps: Option<u64>,
    /// Discount: how much a reward one move later is worth (0.99: nearly as much).
    pub gamma: f64,
    /// Chance of a random move instead of the best-looking one, per episode.
    pub epsilon: EpsilonSpec,
    /// Episodes over which the success rate is measured.
    pub success_window: usize,
    /// Emit an Episodes event (and check the greedy path) every N episodes.
    pub log_every_episodes: usize,
    /// Seconds between Q-table / greedy-path snapshots sent to the viewer.
    pub snapshot_every_secs: f64,
    /// End the run as soon as the greedy path is optimal.
    pub stop_when_optimal: bool,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            method: AgentMethod::default(),
            episodes: 2_000,
            max_env_steps: None,
            gamma: 0.99,
            epsilon: EpsilonSpec::default(),
            success_window: 100,
            log_every_episodes: 20,
            snapshot_every_secs: 0.25,
            stop_when_optimal: false,
        }
    }
}

/// Exploration: epsilon falls linearly from `start` to `end` over `decay_episodes`
/// episodes, then stays at `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpsilonSpec {
    /// Epsilon in the first episode.
    pub start: f64,
    /// Epsilon from `decay_episodes` on.
    pub end: f64,
    /// Length of the linear decay in episodes (0: `end` from the start).
    pub decay_episodes: usize,
}

impl Default for EpsilonSpec {
    fn default() -> Self {
        Self {
            start: 1.0,
            end: 0.05,
            decay_episodes: 500,
        }
    }
}

impl EpsilonSpec {
    /// Epsilon in effect for episode `episode` (0-based).
    pub fn at(&self, episode: u64) -> f64 {
        if episode >= self.decay_episodes as u64 {
            return self.end;
        }
        let t = episode as f64 / self.decay_episodes as f64;
        self.start + (self.end - self.start) * t
    }
}

/// The learning methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AgentMethod {
    /// Tabular Q-learning (off-policy: learns the greedy policy while exploring).
    QLearning(TabularSpec),
    /// Tabular SARSA (on-policy: learns the value of the exploring policy itself).
    Sarsa(TabularSpec),
    /// Deep Q-network: the Q-table is replaced by the `model` network.
    Dqn(DqnSpec),
}

impl Default for AgentMethod {
    fn default() -> Self {
        Self::QLearning(TabularSpec::default())
    }
}

impl AgentMethod {
    /// Short name for tables and file names.
    pub fn name(&self) -> &'static str {
        match self {
            Self::QLearning(_) => "Q-learning",
            Self::Sarsa(_) => "SARSA",
            Self::Dqn(_) => "DQN",
        }
    }
}

/// Settings of the tabular methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TabularSpec {
    /// Learning rate: how far each update moves a Q-value towards its target.
    pub alpha: f64,
    /// Starting Q-value of every (cell, action); above the true values
    /// ("optimistic") it makes the agent try everything.
    pub initial_q: f64,
}

impl Default for TabularSpec {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            initial_q: 0.0,
        }
    }
}

/// Settings of DQN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DqnSpec {
    /// Transitions kept for replay (oldest dropped first).
    pub replay_capacity: usize,
    /// Transitions per gradient step.
    pub batch_size: usize,
    /// Moves made before the first gradient step (filling the buffer).
    pub learning_starts: usize,
    /// One gradient step every N moves.
    pub train_every: usize,
    /// How the target network follows the online one.
    pub target_update: TargetUpdate,
    /// Loss between predicted and target Q-values.
    pub loss: DqnLoss,
    /// Double DQN: the online network picks the next action, the target network
    /// values it (less over-estimation).
    pub double: bool,
    /// Rescale gradients so their global L2 norm is at most this.
    pub grad_clip_norm: Option<f64>,
}

impl Default for DqnSpec {
    fn default() -> Self {
        Self {
            replay_capacity: 10_000,
            batch_size: 32,
            learning_starts: 200,
            train_every: 1,
            target_update: TargetUpdate::Hard { every_steps: 200 },
            loss: DqnLoss::Mse,
            double: false,
            grad_clip_norm: None,
        }
    }
}

/// Target network updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TargetUpdate {
    /// Copy the online weights every N gradient steps.
    Hard {
        /// Gradient steps between copies.
        every_steps: usize,
    },
    /// After every gradient step move the target weights a fraction `tau` of the
    /// way towards the online ones.
    Soft {
        /// Fraction in (0, 1]; 0.005 is common.
        tau: f64,
    },
}

/// DQN loss functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DqnLoss {
    /// Mean squared error (the seed's choice).
    #[default]
    Mse,
    /// Huber (smooth L1 with delta 1): squared near 0, linear beyond, so a few
    /// large errors cannot blow up the gradient.
    Huber,
}
