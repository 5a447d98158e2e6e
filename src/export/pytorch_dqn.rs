//! The maze half of `export pytorch`: a DQN gridworld experiment as one readable
//! PyTorch script with the maze written out in Python (its rows, rewards, slip
//! chance, step limit and the state encoding trainlab feeds the network), the
//! same Q-network (`layers.{i}` names, so a run's `model.safetensors` loads),
//! replay, epsilon schedule, target updates, loss and double DQN. No sidecar:
//! everything fits in the script (a generated maze is written as its rows).
//!
//! Contract: `--eval-only` prints the greedy path as trainlab's summary does
//! (`greedy path: N moves; optimal M (shortest K)[, optimal]`); tabular methods
//! are refused by name, and nothing is written.

use std::path::Path;

use super::ExportError;
use super::pytorch::{Rendered, filled, model_code, optimizer_code, py_bool, py_path, unsupported};
use crate::data::maze::{env_for, input_size, solve};
use crate::spec::{AgentMethod, DqnLoss, EncodingSpec, Experiment, GridworldSpec, TargetUpdate};

const TEMPLATE: &str = include_str!("pytorch_dqn_template.py");

/// The script for a DQN gridworld experiment (`weights`: a run's Q-network).
pub(super) fn render(
    exp: &Experiment,
    world: &GridworldSpec,
    weights: Option<&Path>,
    eval_only: bool,
    _out: &Path,
) -> Result<Rendered, ExportError> {
    let AgentMethod::Dqn(dqn) = &exp.agent.method else {
        return Err(ExportError::Tabular {
            method: exp.agent.method.name().to_string(),
        });
    };
    if !eval_only {
        unsupported(exp)?;
    }
    let env = env_for(world, exp.seed).map_err(ExportError::Layout)?;
    let width = input_size(world.encoding, env.num_states());
    let model = model_code(exp, &[width])?;
    // trainlab judges "optimal" against its solver (value iteration, slip
    // included); without slippery cells that is the BFS length the script computes.
    let solution = solve(&env, exp.agent.gamma);
    let optimal = if solution.optimal_path.reached_goal {
        solution.optimal_path.moves()
    } else {
        solution.shortest_len()
    };
    let rows: Vec<String> = env
        .maze()
        .to_rows()
        .iter()
        .map(|r| format!("    {r:?},"))
        .collect();
    let encoding = match world.encoding {
        EncodingSpec::OneHot => "\"OneHot\"".to_string(),
        EncodingSpec::Coordinates => "\"Coordinates\"".to_string(),
        EncodingSpec::LocalView { radius } => format!("(\"LocalView\", {radius})"),
    };
    let (target_kind, target_value) = match dqn.target_update {
        TargetUpdate::Hard { every_steps } => ("\"hard\"", every_steps.to_string()),
        TargetUpdate::Soft { tau } => ("\"soft\"", format!("{tau}")),
    };
    let a = &exp.agent;
    let r = &world.rewards;
    let script = TEMPLATE
        .replace("{{NAME}}", &exp.name)
        .replace("{{LAYOUT}}", &rows.join("\n"))
        .replace("{{STEP_REWARD}}", &format!("{}", r.step))
        .replace("{{GOAL_REWARD}}", &format!("{}", r.goal))
        .replace("{{PIT_REWARD}}", &format!("{}", r.pit))
        .replace("{{SLIP}}", &format!("{}", world.slip))
        .replace("{{MAX_STEPS}}", &env.max_steps().to_string())
        .replace("{{ENCODING}}", &encoding)
        .replace("{{OPTIMAL}}", &optimal.to_string())
        .replace("{{SEED}}", &exp.seed.to_string())
        .replace("{{MODEL}}", &model)
        .replace("{{OPTIMIZER}}", &optimizer_code(&exp.optimizer))
        .replace("{{EPISODES}}", &a.episodes.to_string())
        .replace(
            "{{MAX_ENV_STEPS}}",
            &a.max_env_steps.map_or("None".into(), |m| m.to_string()),
        )
        .replace("{{GAMMA}}", &format!("{}", a.gamma))
        .replace("{{EPS_START}}", &format!("{}", a.epsilon.start))
        .replace("{{EPS_END}}", &format!("{}", a.epsilon.end))
        .replace("{{EPS_DECAY}}", &a.epsilon.decay_episodes.to_string())
        .replace("{{SUCCESS_WINDOW}}", &a.success_window.to_string())
        .replace("{{LOG_EVERY}}", &a.log_every_episodes.to_string())
        .replace("{{STOP_WHEN_OPTIMAL}}", py_bool(a.stop_when_optimal))
        .replace("{{REPLAY}}", &dqn.replay_capacity.to_string())
        .replace("{{BATCH}}", &dqn.batch_size.to_string())
        .replace("{{LEARNING_STARTS}}", &dqn.learning_starts.to_string())
        .replace("{{TRAIN_EVERY}}", &dqn.train_every.to_string())
        .replace("{{TARGET_KIND}}", target_kind)
        .replace("{{TARGET_VALUE}}", &target_value)
        .replace(
            "{{LOSS}}",
            match dqn.loss {
                DqnLoss::Mse => "\"mse\"",
                DqnLoss::Huber => "\"huber\"",
            },
        )
        .replace("{{DOUBLE}}", py_bool(dqn.double))
        .replace(
            "{{CLIP}}",
            &dqn.grad_clip_norm.map_or("None".into(), |c| format!("{c}")),
        )
        .replace("{{WEIGHTS}}", &weights.map_or("None".into(), py_path))
        .replace("{{EVAL_ONLY}}", py_bool(eval_only));
    let script = filled(script)?;
    Ok(Rendered {
        script,
        sidecars: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_maze_is_written_out_and_tables_are_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/gridworld_dqn.ron");
        let exp = crate::spec::load_file(&path).expect("loads");
        let crate::spec::DatasetSpec::Gridworld(world) = &exp.dataset else {
            panic!("a maze")
        };
        let out = Path::new("dqn.py");
        let r = render(&exp, world, None, false, out).expect("renders");
        assert!(r.sidecars.is_empty());
        assert!(r.script.contains("    \"S..#....\","), "the layout");
        assert!(
            r.script.contains("nn.Linear(128, 4),  # layers.2"),
            "the network"
        );
        assert!(r.script.contains("OPTIMAL = 14"), "the solver's length");
        let mut table = exp.clone();
        table.agent.method = AgentMethod::default();
        let err = render(&table, world, None, false, out)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("Q-learning is tabular"), "{err}");
    }
}
