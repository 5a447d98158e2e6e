//! The reinforcement-learning loop for gridworld runs: builds the maze and its
//! exact solution, then plays episodes with a tabular or DQN agent. Between
//! episodes it obeys control messages (SetLearningRate changes alpha for tables,
//! the optimizer's rate for DQN); every `agent.log_every_episodes` it checks the
//! greedy path against the optimal one and emits an Episodes event, and at most
//! every `agent.snapshot_every_secs` a Policy snapshot. At the end it writes the
//! final snapshot to `qtable.json` (and DQN weights to `model.safetensors`).
//!
//! Like the supervised engine, a run is three parts of one [`engine::Engine`]:
//! setup (maze, solution, agent, Started and Environment; a resume restores its
//! checkpoint), the episode loop, and the finish (last checkpoint, Q-values and
//! weights on disk, the summary). Checkpoints are written by one method, in the
//! loop and at the end alike.

mod checkpoint;
mod dqn;
mod engine;
mod replay;
mod report;
mod tabular;

pub use tabular::{EpisodeOutcome, TabularLearner, TabularRule};

use std::borrow::Cow;
use std::time::Instant;

use dqn::DqnLearner;
use engine::Engine;

use super::emitter::Emitter;
use super::handle::StartOptions;
use super::steering::Steering;
use super::worker::RunFailure;
use crate::events::RunSummary;
use crate::spec::{AgentMethod, Experiment};

/// The learning rate a run starts with: alpha for tables, the optimizer's for DQN.
pub(crate) fn initial_lr(exp: &Experiment) -> f64 {
    match &exp.agent.method {
        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => t.alpha,
        AgentMethod::Dqn(_) => exp.optimizer.lr(),
    }
}

/// Trains a gridworld agent: setup (and restore, when resuming), the episodes,
/// the finish.
pub(crate) fn run(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
) -> Result<RunSummary, RunFailure> {
    let mut engine = Engine::setup(exp, options, emitter, started)?;
    if let Some(dir) = &options.resume_from {
        engine.restore(dir, steering, emitter)?;
    }
    let outcome = engine
        .run_episodes(steering, emitter)
        .and_then(|reason| engine.finish(steering, emitter, reason));
    // A checkpoint still being written faults the run if it fails, however the
    // run ended.
    engine.settle_checkpoints(emitter);
    outcome
}

/// Either kind of agent, behind the few calls the loop needs.
enum Agent {
    Table(Box<TabularLearner>),
    Net(Box<DqnLearner>),
}

impl Agent {
    fn run_episode(&mut self, epsilon: f64, step: u64) -> Result<EpisodeOutcome, RunFailure> {
        match self {
            Self::Table(t) => Ok(t.run_episode(epsilon)),
            Self::Net(d) => d
                .run_episode(epsilon)
                .map_err(|e| RunFailure::at(step, format!("DQN error at move {step}: {e}"))),
        }
    }

    /// Q-values per state (borrowed for tables, computed for networks).
    fn q(&self, step: u64) -> Result<Cow<'_, [[f32; 4]]>, RunFailure> {
        match self {
            Self::Table(t) => Ok(Cow::Borrowed(t.q())),
            Self::Net(d) => d
                .q_all()
                .map(Cow::Owned)
                .map_err(|e| RunFailure::at(step, format!("DQN error at move {step}: {e}"))),
        }
    }

    fn set_lr(&mut self, lr: f64) {
        match self {
            Self::Table(t) => t.set_alpha(lr),
            Self::Net(d) => d.lr = lr,
        }
    }

    fn take_loss(&mut self) -> Option<f64> {
        match self {
            Self::Table(_) => None,
            Self::Net(d) => d.take_loss(),
        }
    }

    /// Gradient steps taken (0 for tables).
    fn gradient_steps(&self) -> u64 {
        match self {
            Self::Table(_) => 0,
            Self::Net(d) => d.gradient_steps,
        }
    }
}
