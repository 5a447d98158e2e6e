//! The maze a gridworld experiment describes, as plain data: a grid of [`Cell`]s
//! to draw, edit ([`Maze::set`]), parse from layout rows ([`Maze::parse`], errors
//! name row and column), generate from a seed ([`Maze::generate`]) and check
//! ([`Maze::validate`]); and how wide a Q-network's input is for it
//! ([`input_size`]). The layout lives here, beside the spec it comes from, so
//! validation can check it and size the DQN without the data layer; playing it
//! (`data::maze`: environment, solver, encodings) builds on this.

mod error;
mod generate;
mod grid;
mod parse;

pub use error::MazeError;
pub use generate::{MAX_SIDE, MIN_SIDE};
pub use grid::{ACTION_NAMES, ACTIONS, Cell, Maze};

use super::gridworld::{EncodingSpec, LayoutSpec};

/// The maze a layout describes; a generated maze without its own seed uses
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

/// Number of inputs per state for `encoding` in a maze of `num_states` states
/// (its cells that are not walls).
pub fn input_size(encoding: EncodingSpec, num_states: usize) -> usize {
    match encoding {
        EncodingSpec::OneHot => num_states,
        EncodingSpec::Coordinates => 2,
        EncodingSpec::LocalView { radius } => 3 * (2 * radius + 1).pow(2) + 2,
    }
}
