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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DatasetSpec, SpecError, dataset_io, from_ron_str};

    /// A maze experiment: `dataset` settings of the Gridworld, the agent's
    /// `method` and further `agent` settings (each starting with ", "). A DQN
    /// gets a Q-network for the four actions.
    fn maze(dataset: &str, method: &str, agent: &str) -> String {
        let model = if method.starts_with("Dqn") {
            ", model: [Linear(out: 8), ReLU, Linear(out: 4)]"
        } else {
            ""
        };
        format!("(dataset: Gridworld({dataset}), agent: (method: {method}{agent}){model})")
    }

    const Q: &str = "QLearning(alpha: 0.5)";

    /// Every check refuses the value just past its bound and names the field
    /// (`the_values_on_every_bound_are_accepted` takes the ones on it).
    #[test]
    fn a_value_just_past_each_bound_is_refused_with_its_field() {
        let cases = [
            (
                maze("layout: Generated(extra_loops: 1.01)", Q, ""),
                "dataset.layout.extra_loops",
            ),
            (
                maze("layout: Generated(extra_loops: -0.01)", Q, ""),
                "dataset.layout.extra_loops",
            ),
            (
                maze("layout: Rows([\"S.\", \"..\"])", Q, ""),
                "dataset.layout",
            ),
            (maze("rewards: (step: inf)", Q, ""), "dataset.rewards.step"),
            (maze("rewards: (goal: -inf)", Q, ""), "dataset.rewards.goal"),
            (maze("rewards: (pit: inf)", Q, ""), "dataset.rewards.pit"),
            (maze("slip: 1.01", Q, ""), "dataset.slip"),
            (maze("slip: -0.01", Q, ""), "dataset.slip"),
            (maze("max_steps: Some(0)", Q, ""), "dataset.max_steps"),
            (
                maze("encoding: LocalView(radius: 17)", Q, ""),
                "dataset.encoding.radius",
            ),
            (maze("", Q, ", episodes: 0"), "agent.episodes"),
            (
                maze("", Q, ", max_env_steps: Some(0)"),
                "agent.max_env_steps",
            ),
            (maze("", Q, ", gamma: 1.01"), "agent.gamma"),
            (maze("", Q, ", gamma: -0.01"), "agent.gamma"),
            (
                maze("", Q, ", epsilon: (start: 1.01)"),
                "agent.epsilon.start",
            ),
            (
                maze("", Q, ", epsilon: (start: -0.01)"),
                "agent.epsilon.start",
            ),
            (maze("", Q, ", epsilon: (end: 1.01)"), "agent.epsilon.end"),
            (maze("", Q, ", epsilon: (end: -0.01)"), "agent.epsilon.end"),
            (maze("", Q, ", success_window: 0"), "agent.success_window"),
            (
                maze("", Q, ", log_every_episodes: 0"),
                "agent.log_every_episodes",
            ),
            (
                maze("", Q, ", snapshot_every_secs: -0.01"),
                "agent.snapshot_every_secs",
            ),
            (
                maze("", Q, ", snapshot_every_secs: inf"),
                "agent.snapshot_every_secs",
            ),
            (maze("", "QLearning(alpha: 0.0)", ""), "agent.method.alpha"),
            (maze("", "Sarsa(alpha: 1.01)", ""), "agent.method.alpha"),
            (
                maze("", "Sarsa(alpha: 0.5, initial_q: inf)", ""),
                "agent.method.initial_q",
            ),
            (
                maze("", "Dqn(batch_size: 0)", ""),
                "agent.method.batch_size",
            ),
            (
                maze("", "Dqn(batch_size: 32, replay_capacity: 31)", ""),
                "agent.method.replay_capacity",
            ),
            (
                maze("", "Dqn(train_every: 0)", ""),
                "agent.method.train_every",
            ),
            (
                maze("", "Dqn(target_update: Hard(every_steps: 0))", ""),
                "agent.method.target_update.every_steps",
            ),
            (
                maze("", "Dqn(target_update: Soft(tau: 0.0))", ""),
                "agent.method.target_update.tau",
            ),
            (
                maze("", "Dqn(target_update: Soft(tau: 1.01))", ""),
                "agent.method.target_update.tau",
            ),
            (
                maze("", "Dqn(grad_clip_norm: Some(0.0))", ""),
                "agent.method.grad_clip_norm",
            ),
            (
                maze("", "Dqn(grad_clip_norm: Some(inf))", ""),
                "agent.method.grad_clip_norm",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, field)| match from_ron_str(text, "t.ron") {
                Err(SpecError::Invalid { error, .. }) if error.field == *field => None,
                other => Some(format!("{text}: want {field}, got {other:?}")),
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// The values on each bound are accepted, for both kinds of agent.
    #[test]
    fn the_values_on_every_bound_are_accepted() {
        let cases = [
            maze("", Q, ""),
            maze("layout: Generated(extra_loops: 1.0)", Q, ""),
            maze("slip: 0.0, max_steps: Some(1)", Q, ""),
            maze("slip: 1.0, encoding: LocalView(radius: 16)", Q, ""),
            maze(
                "",
                "Sarsa(alpha: 1.0, initial_q: -5.0)",
                ", episodes: 1, max_env_steps: Some(1), gamma: 0.0, \
                 epsilon: (start: 0.0, end: 1.0), success_window: 1, \
                 log_every_episodes: 1, snapshot_every_secs: 0.0",
            ),
            maze(
                "",
                "QLearning(alpha: 1e-9)",
                ", gamma: 1.0, epsilon: (start: 1.0, end: 0.0)",
            ),
            maze("", "Dqn()", ""),
            maze(
                "",
                "Dqn(batch_size: 1, replay_capacity: 1, train_every: 1, \
                 target_update: Hard(every_steps: 1), grad_clip_norm: Some(1e-9))",
                "",
            ),
            maze("", "Dqn(target_update: Soft(tau: 1.0))", ""),
            maze(
                "",
                "Dqn(target_update: Soft(tau: 1e-9), grad_clip_norm: Some(5.0))",
                "",
            ),
        ];
        let refused: Vec<String> = cases
            .iter()
            .filter_map(|text| {
                from_ron_str(text, "t.ron")
                    .err()
                    .map(|e| format!("{text}: {e}"))
            })
            .collect();
        assert!(refused.is_empty(), "{refused:#?}");
    }

    /// The Q-network's input: one value per cell that is not a wall (one-hot),
    /// two coordinates, or 3 per cell of the (2r + 1)^2 view plus two; 0 for a
    /// maze that does not parse.
    #[test]
    fn the_input_size_counts_the_cells_that_are_not_walls() {
        // Five open cells (S, three free, G) and one wall.
        let mut g = GridworldSpec {
            layout: LayoutSpec::Rows(vec!["S.#".into(), "..G".into()]),
            ..GridworldSpec::default()
        };
        for (encoding, size) in [
            (EncodingSpec::OneHot, 5),
            (EncodingSpec::Coordinates, 2),
            (EncodingSpec::LocalView { radius: 1 }, 29),
        ] {
            g.encoding = encoding;
            assert_eq!(gridworld_input_size(&g, 0), size, "{encoding:?}");
        }
        g.encoding = EncodingSpec::OneHot;
        assert_eq!(
            dataset_io(&DatasetSpec::Gridworld(g.clone()), 0),
            (vec![5], 4)
        );
        g.layout = LayoutSpec::Rows(vec!["..#".into(), "..G".into()]);
        assert_eq!(gridworld_input_size(&g, 0), 0, "no start: no maze");
    }
}
