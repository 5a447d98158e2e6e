//! Mazes for reinforcement learning, free of any GUI or tensor code so that an
//! editor, the worker and the tests share them:
//!
//! - [`Maze`]: a grid of [`Cell`]s to draw, edit ([`Maze::set`]), parse from layout
//!   rows ([`Maze::parse`], errors name row and column), generate from a seed
//!   ([`Maze::generate`]) and check ([`Maze::validate`]);
//! - [`Env`]: the maze compiled into transition and reward tables for fast play;
//! - [`solve`] / [`shortest_path`]: the exact answer every learner is judged by;
//! - [`greedy_path`]: where a Q-table's greedy policy goes;
//! - [`encode_all`]: state vectors for Q-networks.

mod encode;
mod env;
mod error;
mod generate;
mod grid;
mod parse;
mod policy;
mod solve;

pub use encode::{encode_all, input_size};
pub use env::{Env, NO_STATE};
pub use error::MazeError;
pub use generate::{MAX_SIDE, MIN_SIDE};
pub use grid::{ACTION_NAMES, ACTIONS, Cell, Maze};
pub use policy::{GreedyPath, argmax, greedy_path, q_per_cell};
pub use solve::{Solution, shortest_path, solve};

use crate::spec::{GridworldSpec, LayoutSpec};

/// The maze an experiment describes; a generated maze without its own seed uses
/// `experiment_seed`.
pub fn maze_for(layout: &LayoutSpec, experiment_seed: u64) -> Result<Maze, MazeError> {
    match layout {
        LayoutSpec::Rows(rows) => Maze::parse(rows),
        LayoutSpec::Generated(g) => Maze::generate(
            g.rows,
            g.cols,
            g.algorithm,
            g.extra_loops,
            g.seed.unwrap_or(experiment_seed),
        ),
    }
}

/// The playable environment of a gridworld spec.
pub fn env_for(spec: &GridworldSpec, experiment_seed: u64) -> Result<Env, MazeError> {
    let maze = maze_for(&spec.layout, experiment_seed)?;
    let limit = spec.step_limit(maze.rows(), maze.cols());
    Ok(Env::new(&maze, &spec.rewards, spec.slip, limit))
}
