//! Semantic checks of gridworld experiments: the maze (errors carry the row and
//! column), rewards and dynamics, and the agent's settings. The DQN layer list is
//! checked by `validate` like a supervised model, from the encoding's input size
//! to the four actions.

use super::agent::{AgentMethod, AgentSpec, TargetUpdate};
use super::gridworld::{EncodingSpec, GridworldSpec, LayoutSpec};
use super::maze::{Cell, input_size, maze_for};
use super::validate::ValidationError;

/// Largest local-view radius (a 33x33 window).
const MAX_RADIUS: usize = 16;

/// Input size of the Q-network for this gridworld (0 when the maze is invalid).
pub(crate) fn gridworld_input_size(g: &GridworldSpec, seed: u64) -> usize {
    maze_for(&g.layout, seed).map_or(0, |maze| {
        let states = maze.cells().iter().filter(|c| **c != Cell::Wall).count();
        input_size(g.encoding, states)
    })
}

/// Checks the maze and its settings, then the agent.
pub(crate) fn validate_gridworld(
    g: &GridworldSpec,
    agent: &AgentSpec,
    seed: u64,
) -> Result<(), ValidationError> {
    let err = |field: &str, message: String| Err(ValidationError::new(field, message));
    if let LayoutSpec::Generated(m) = &g.layout
        && !(0.0..=1.0).contains(&m.extra_loops)
    {
        return err(
            "dataset.layout.extra_loops",
            format!("{} must be in [0, 1] (0: a perfect maze)", m.extra_loops),
        );
    }
    maze_for(&g.layout, seed).map_err(|e| ValidationError::new("dataset.layout", e.to_string()))?;
    for (name, r) in [
        ("step", g.rewards.step),
        ("goal", g.rewards.goal),
        ("pit", g.rewards.pit),
    ] {
        if !r.is_finite() {
            return err(
                &format!("dataset.rewards.{name}"),
                format!("{r} must be a finite number"),
            );
        }
    }
    if !(0.0..=1.0).contains(&g.slip) {
        return err(
            "dataset.slip",
            format!("{} must be a probability in [0, 1]", g.slip),
        );
    }
    if g.max_steps == Some(0) {
        return err(
            "dataset.max_steps",
            "must be at least 1, or None for 4 x rows x cols".into(),
        );
    }
    if let EncodingSpec::LocalView { radius } = g.encoding
        && radius > MAX_RADIUS
    {
        return err(
            "dataset.encoding.radius",
            format!("{radius} is more than {MAX_RADIUS}; 1-3 cells is usual"),
        );
    }
    validate_agent(agent)
}

fn validate_agent(a: &AgentSpec) -> Result<(), ValidationError> {
    let err = |field: &str, message: &str| Err(ValidationError::new(field, message));
    let probability = |x: f64| (0.0..=1.0).contains(&x);
    if a.episodes == 0 {
        return err("agent.episodes", "must be at least 1");
    }
    if a.max_env_steps == Some(0) {
        return err(
            "agent.max_env_steps",
            "must be at least 1, or None for no limit",
        );
    }
    if !probability(a.gamma) {
        return err("agent.gamma", "must be in [0, 1] (0.99 is usual)");
    }
    if !probability(a.epsilon.start) {
        return err("agent.epsilon.start", "must be a probability in [0, 1]");
    }
    if !probability(a.epsilon.end) {
        return err("agent.epsilon.end", "must be a probability in [0, 1]");
    }
    if a.success_window == 0 {
        return err("agent.success_window", "must be at least 1");
    }
    if a.log_every_episodes == 0 {
        return err("agent.log_every_episodes", "must be at least 1");
    }
    if !(a.snapshot_every_secs >= 0.0 && a.snapshot_every_secs.is_finite()) {
        return err(
            "agent.snapshot_every_secs",
            "must be a number of seconds >= 0",
        );
    }
    match &a.method {
        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => {
            if !(t.alpha > 0.0 && t.alpha <= 1.0) {
                return err("agent.method.alpha", "must be in (0, 1] (0.1-0.5 is usual)");
            }
            if !t.initial_q.is_finite() {
                return err("agent.method.initial_q", "must be a finite number");
            }
        }
        AgentMethod::Dqn(d) => {
            if d.batch_size == 0 {
                return err(
                    "agent.method.batch_size",
                    "must be at least 1 (32 is usual)",
                );
            }
            if d.replay_capacity < d.batch_size {
                return err(
                    "agent.method.replay_capacity",
                    "must hold at least one batch (10000 is usual)",
                );
            }
            if d.train_every == 0 {
                return err("agent.method.train_every", "must be at least 1");
            }
            match d.target_update {
                TargetUpdate::Hard { every_steps: 0 } => {
                    return err(
                        "agent.method.target_update.every_steps",
                        "must be at least 1",
                    );
                }
                TargetUpdate::Soft { tau } if !(tau > 0.0 && tau <= 1.0) => {
                    return err(
                        "agent.method.target_update.tau",
                        "must be in (0, 1] (0.005 is usual)",
                    );
                }
                _ => {}
            }
            if let Some(c) = d.grad_clip_norm
                && !(c > 0.0 && c.is_finite())
            {
                return err(
                    "agent.method.grad_clip_norm",
                    "must be a positive number, or None to disable clipping",
                );
            }
        }
    }
    Ok(())
}
