//! The greedy path of a Q-table: from the start, always take the action with the
//! highest Q-value (the first on ties), never slipping, until a goal or pit, a
//! cell seen before (the policy loops), or the episode step limit.

use serde::{Deserialize, Serialize};

use super::env::Env;

/// Where the greedy policy goes from the start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GreedyPath {
    /// Cells visited, (row, col), start first.
    pub cells: Vec<(u16, u16)>,
    /// Whether the path ends on a goal.
    pub reached_goal: bool,
}

impl GreedyPath {
    /// Moves made (cells - 1).
    pub fn moves(&self) -> usize {
        self.cells.len().saturating_sub(1)
    }
}

/// The action with the highest value (the first of equal ones).
#[inline(always)]
pub fn argmax(q: &[f32; 4]) -> usize {
    let mut best = 0;
    for a in 1..4 {
        if q[a] > q[best] {
            best = a;
        }
    }
    best
}

/// Follows the greedy action of `q` (one entry per state of `env`) from the start.
pub fn greedy_path(env: &Env, q: &[[f32; 4]]) -> GreedyPath {
    let mut seen = vec![false; env.num_states()];
    let mut s = env.start();
    let pos = |s: u32| {
        let (r, c) = env.position(s);
        (r as u16, c as u16)
    };
    let mut cells = vec![pos(s)];
    seen[s as usize] = true;
    for _ in 0..env.max_steps() {
        if env.is_terminal(s) {
            break;
        }
        let Some(values) = q.get(s as usize) else {
            break;
        };
        let (to, _) = env.transition(s, argmax(values));
        if seen[to as usize] {
            break;
        }
        seen[to as usize] = true;
        cells.push(pos(to));
        s = to;
    }
    GreedyPath {
        reached_goal: env.is_goal(s),
        cells,
    }
}

/// A per-state Q-table spread over the whole grid, row-major, walls as zeros:
/// the form snapshots and `qtable.json` use, indexed like [`crate::data::maze::Maze::cells`].
pub fn q_per_cell(env: &Env, q: &[[f32; 4]]) -> Vec<[f32; 4]> {
    let maze = env.maze();
    let mut out = vec![[0f32; 4]; maze.rows() * maze.cols()];
    for (s, values) in q.iter().enumerate().take(env.num_states()) {
        let (r, c) = env.position(s as u32);
        out[r * maze.cols() + c] = *values;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::maze::Maze;
    use crate::spec::RewardSpec;

    #[test]
    fn follows_argmax_and_stops_on_loops() {
        let maze = Maze::parse(&["S..G"]).expect("valid");
        let env = Env::new(&maze, &RewardSpec::default(), 0.0, 50);
        let mut q = vec![[0f32; 4]; env.num_states()];
        for row in q.iter_mut() {
            row[1] = 1.0;
        }
        let path = greedy_path(&env, &q);
        assert!(path.reached_goal);
        assert_eq!(path.cells, vec![(0, 0), (0, 1), (0, 2), (0, 3)]);
        // Cell 1 points back left: the path loops and stops without the goal.
        q[1] = [0.0, 0.0, 0.0, 1.0];
        let path = greedy_path(&env, &q);
        assert!(!path.reached_goal);
        assert_eq!(path.moves(), 1);
        let grid = q_per_cell(&env, &q);
        assert_eq!(grid.len(), 4);
        assert_eq!(grid[1], [0.0, 0.0, 0.0, 1.0]);
    }
}
