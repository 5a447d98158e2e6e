//! The gridworld dataset: a maze (written out or generated from a seed), its
//! rewards and dynamics, and how a state is shown to a network. Plain serde data;
//! the maze itself is built and checked by `spec::maze`.

use serde::{Deserialize, Serialize};

/// A maze the agent learns to solve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridworldSpec {
    /// The cells: hand-written rows or a generated maze.
    pub layout: LayoutSpec,
    /// Reward for each kind of move.
    pub rewards: RewardSpec,
    /// On `~` (slippery) cells, the chance that the move goes in a random direction
    /// (each of the four equally likely) instead of the chosen one.
    pub slip: f64,
    /// Moves per episode before it is cut off (None: 4 x rows x cols).
    pub max_steps: Option<usize>,
    /// What a network sees of a state (DQN only; tables index states directly).
    pub encoding: EncodingSpec,
}

impl Default for GridworldSpec {
    fn default() -> Self {
        Self {
            layout: LayoutSpec::default(),
            rewards: RewardSpec::default(),
            slip: 0.2,
            max_steps: None,
            encoding: EncodingSpec::OneHot,
        }
    }
}

impl GridworldSpec {
    /// The episode step limit in effect for a `rows` x `cols` maze.
    pub fn step_limit(&self, rows: usize, cols: usize) -> usize {
        self.max_steps.unwrap_or(4 * rows * cols)
    }
}

/// Where the cells come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LayoutSpec {
    /// One string per row: `#` wall, `.` free, `S` start (exactly one), `G` goal
    /// (one or more), `X` pit (ends the episode with the pit reward), `~` slippery.
    Rows(Vec<String>),
    /// A maze generated from a seed.
    Generated(GeneratedMaze),
}

impl Default for LayoutSpec {
    fn default() -> Self {
        Self::Generated(GeneratedMaze::default())
    }
}

/// A generated maze: corridors one cell wide between walls one cell thick, start
/// in the top-left corner, goal in the bottom-right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratedMaze {
    /// Grid rows, walls included (5 to 512; an even size keeps its last row as wall).
    pub rows: usize,
    /// Grid columns, walls included (5 to 512).
    pub cols: usize,
    /// How corridors are carved.
    pub algorithm: MazeAlgorithm,
    /// Fraction of the remaining inner walls knocked down afterwards, adding loops
    /// (0 keeps a perfect maze: exactly one path between any two cells).
    pub extra_loops: f64,
    /// Seed of the maze (None: the experiment's seed).
    pub seed: Option<u64>,
}

impl Default for GeneratedMaze {
    fn default() -> Self {
        Self {
            rows: 9,
            cols: 9,
            algorithm: MazeAlgorithm::Dfs,
            extra_loops: 0.0,
            seed: None,
        }
    }
}

/// Maze carving algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MazeAlgorithm {
    /// Randomised depth-first search: long winding corridors, few branches.
    #[default]
    Dfs,
    /// Randomised Prim: many short dead ends branching off everywhere.
    Prim,
}

/// Rewards, received on arriving in a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardSpec {
    /// Every move that does not end on a goal or a pit (bumping a wall included).
    pub step: f64,
    /// Reaching a goal (ends the episode).
    pub goal: f64,
    /// Falling into a pit (ends the episode).
    pub pit: f64,
}

impl Default for RewardSpec {
    fn default() -> Self {
        Self {
            step: -0.01,
            goal: 1.0,
            pit: -1.0,
        }
    }
}

/// How a state becomes the input vector of a Q-network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EncodingSpec {
    /// One input per reachable cell, 1 where the agent is (the seed's choice).
    #[default]
    OneHot,
    /// Two inputs: row and column scaled to [0, 1].
    Coordinates,
    /// The (2 radius + 1)^2 cells around the agent, three inputs each (wall or
    /// outside, goal, pit), followed by the two scaled coordinates.
    LocalView {
        /// Cells seen in each direction.
        radius: usize,
    },
}
