//! Mazes for reinforcement learning, free of any GUI or tensor code so that an
//! editor, the worker and the tests share them:
//!
//! - [`Maze`]: a grid of [`Cell`]s to draw, edit ([`Maze::set`]), parse from layout
//!   rows ([`Maze::parse`], errors name row and column), generate from a seed
//!   ([`Maze::generate`]) and check ([`Maze::validate`]); the layout is plain data
//!   of the spec (`spec::maze`, so validation needs no data layer), re-exported here;
//! - [`Env`]: the maze compiled into transition and reward tables for fast play;
//! - [`solve`] / [`shortest_path`]: the exact answer every learner is judged by;
//! - [`greedy_path`]: where a Q-table's greedy policy goes;
//! - [`encode_all`]: state vectors for Q-networks.

mod encode;
mod env;
mod policy;
mod solve;

pub use crate::spec::maze::{
    ACTION_NAMES, ACTIONS, Cell, MAX_SIDE, MIN_SIDE, Maze, MazeError, input_size, maze_for,
};
pub use encode::encode_all;
pub use env::{Env, NO_STATE};
pub use policy::{GreedyPath, argmax, greedy_path, q_per_cell};
pub use solve::{Solution, shortest_path, solve};

use crate::spec::GridworldSpec;

/// The playable environment of a gridworld spec.
pub fn env_for(spec: &GridworldSpec, experiment_seed: u64) -> Result<Env, MazeError> {
    let maze = maze_for(&spec.layout, experiment_seed)?;
    let limit = spec.step_limit(maze.rows(), maze.cols());
    Ok(Env::new(&maze, &spec.rewards, spec.slip, limit))
}
