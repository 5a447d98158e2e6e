//! Ground truth for judging learners: the shortest path by breadth-first search,
//! and value iteration on the exact transition model (rewards, discount and slip),
//! which gives the optimal return from the start and an optimal policy.

use super::Maze;
use super::env::Env;
use super::policy::{GreedyPath, greedy_path};

/// Largest number of value-iteration sweeps (reached only when gamma is 1 and
/// some cells can never end an episode).
const MAX_SWEEPS: usize = 100_000;

/// The optimal solution of a maze under its rewards and discount.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// Cells of a shortest start-to-goal path (start and goal included), by BFS.
    pub shortest_path: Vec<(usize, usize)>,
    /// Optimal value of each state.
    pub values: Vec<f64>,
    /// Optimal Q-values, per state and action.
    pub q: Vec<[f32; 4]>,
    /// Optimal expected discounted return from the start.
    pub optimal_return: f64,
    /// The path an optimal policy takes when no move slips. In a maze without
    /// slippery cells it is a shortest path.
    pub optimal_path: GreedyPath,
    /// Value-iteration sweeps until no value moved by 1e-10 (`MAX_SWEEPS` when
    /// that never happened).
    pub sweeps: usize,
}

impl Solution {
    /// Moves on a shortest path.
    pub fn shortest_len(&self) -> usize {
        self.shortest_path.len().saturating_sub(1)
    }
}

/// Cells of a shortest path from the start to the nearest goal, through neither
/// walls nor pits; None when no goal is reachable.
pub fn shortest_path(maze: &Maze) -> Option<Vec<(usize, usize)>> {
    let (sr, sc) = maze.start()?;
    let bfs = maze.distances_from(sr, sc);
    let mut at = bfs.goal?;
    let start = sr * maze.cols() + sc;
    let mut path = vec![at];
    while at != start {
        at = bfs.parent[at] as usize;
        path.push(at);
    }
    path.reverse();
    Some(
        path.into_iter()
            .map(|i| (i / maze.cols(), i % maze.cols()))
            .collect(),
    )
}

/// Solves `env` exactly with discount `gamma` (value iteration to 1e-10).
pub fn solve(env: &Env, gamma: f64) -> Solution {
    let n = env.num_states();
    let mut v = vec![0f64; n];
    let mut q = vec![[0f32; 4]; n];
    let mut sweeps = 0;
    for _ in 0..MAX_SWEEPS {
        sweeps += 1;
        let mut delta = 0f64;
        for s in 0..n as u32 {
            if env.is_terminal(s) {
                continue;
            }
            let mut best = f64::NEG_INFINITY;
            for a in 0..4 {
                let value = q_value(env, &v, s, a, gamma);
                best = best.max(value);
            }
            delta = delta.max((best - v[s as usize]).abs());
            v[s as usize] = best;
        }
        if delta < 1e-10 {
            break;
        }
    }
    for s in 0..n as u32 {
        if !env.is_terminal(s) {
            for (a, slot) in q[s as usize].iter_mut().enumerate() {
                *slot = q_value(env, &v, s, a, gamma) as f32;
            }
        }
    }
    let shortest_path = shortest_path(env.maze()).unwrap_or_default();
    Solution {
        shortest_path,
        optimal_return: v.get(env.start() as usize).copied().unwrap_or(0.0),
        optimal_path: greedy_path(env, &q),
        values: v,
        q,
        sweeps,
    }
}

/// Expected reward plus discounted value of the next state.
fn q_value(env: &Env, v: &[f64], s: u32, a: usize, gamma: f64) -> f64 {
    env.outcomes(s, a)
        .map(|(actual, p)| {
            let (to, r) = env.transition(s, actual);
            let future = if env.is_terminal(to) {
                0.0
            } else {
                v[to as usize]
            };
            p * (f64::from(r) + gamma * future)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RewardSpec;

    const MAZE: [&str; 5] = [
        "S.#....", //
        ".##.##.", //
        "...#..G", //
        ".#...#.", //
        "...#...",
    ];

    #[test]
    fn bfs_finds_the_known_shortest_path() {
        let maze = Maze::parse(&MAZE).expect("valid");
        let path = shortest_path(&maze).expect("reachable");
        assert_eq!(path.len() - 1, 10, "{path:?}");
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(2, 6)));
        for w in path.windows(2) {
            let d = w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1);
            assert_eq!(d, 1, "steps are single moves: {path:?}");
        }
    }

    #[test]
    fn value_iteration_matches_the_closed_form() {
        let maze = Maze::parse(&MAZE).expect("valid");
        let rewards = RewardSpec {
            step: -0.1,
            goal: 1.0,
            pit: -1.0,
        };
        let env = Env::new(&maze, &rewards, 0.0, 100);
        let gamma = 0.9f64;
        let sol = solve(&env, gamma);
        // Nine step rewards, then the goal on the tenth move.
        let expected: f64 = (0..9).map(|k| -0.1 * gamma.powi(k)).sum::<f64>() + gamma.powi(9) * 1.0;
        assert!(
            (sol.optimal_return - expected).abs() < 1e-6,
            "{} vs {expected}",
            sol.optimal_return
        );
        assert_eq!(sol.shortest_len(), 10);
        assert!(sol.optimal_path.reached_goal);
        assert_eq!(sol.optimal_path.moves(), 10);
        // Value iteration stops when a sweep moves no value by 1e-10: errors
        // shrink by gamma per sweep, and 0.9^219 < 1e-10, so it takes at most a
        // few hundred sweeps (not the 100,000 cap), and at least two (one that
        // changes the values, one that finds them settled).
        assert!(
            (2..1_000).contains(&sol.sweeps),
            "stops when converged: {} sweeps",
            sol.sweeps
        );
    }

    #[test]
    fn bfs_starts_at_the_start_cell_off_the_first_row_and_column() {
        // Start (1, 1) is cell 1 * 3 + 1 = 4; the only way out is right, then down.
        let maze = Maze::parse(&["###", "#S.", "##G"]).expect("valid");
        assert_eq!(shortest_path(&maze), Some(vec![(1, 1), (1, 2), (2, 2)]));
    }

    #[test]
    fn value_iteration_avoids_slippery_cells_next_to_pits() {
        // The short way crosses ice above pits; the long way round is safe.
        let maze = Maze::parse(&["S~~~G", ".XXX.", "....."]).expect("valid");
        let rewards = RewardSpec::default();
        let dry = solve(&Env::new(&maze, &rewards, 0.0, 100), 0.99);
        assert_eq!(dry.optimal_path.moves(), 4, "no slip: straight across");
        let icy = solve(&Env::new(&maze, &rewards, 0.5, 100), 0.99);
        assert_eq!(icy.optimal_path.moves(), 8, "slip: around the pits");
        assert!(icy.optimal_return < dry.optimal_return);
        assert_eq!(icy.shortest_len(), 4, "BFS ignores the risk");
    }

    #[test]
    fn values_and_q_on_ice_are_the_hand_solved_bellman_equations() {
        // S (state 0), ice (1, slip 0.4), G (2). Step -0.1, goal 1, gamma 0.9.
        // On the ice the chosen move is kept with 0.6 + 0.1 = 0.7 and each other
        // direction taken with 0.1; up and down bump (stay), left goes to S.
        // Best moves are right everywhere:
        //   V1 = 0.7 * 1 + 0.2 * (-0.1 + 0.9 V1) + 0.1 * (-0.1 + 0.9 V0)
        //   V0 = -0.1 + 0.9 V1
        // so V1 = 0.661 + 0.261 V1, V1 = 0.661 / 0.739, V0 = -0.1 + 0.9 V1.
        let maze = Maze::parse(&["S~G"]).expect("valid");
        let rewards = RewardSpec {
            step: -0.1,
            goal: 1.0,
            pit: -1.0,
        };
        let env = Env::new(&maze, &rewards, 0.4, 100);
        let sol = solve(&env, 0.9);
        let v1 = 0.661 / 0.739;
        let v0 = -0.1 + 0.9 * v1;
        let want = [v0, v1, 0.0];
        // Within 1e-7: the slip is stored as an f32 (0.4 + 6e-9).
        for (s, (&got, want)) in sol.values.iter().zip(want).enumerate() {
            assert!((got - want).abs() < 1e-7, "V({s}) = {got}, want {want}");
        }
        assert!((sol.optimal_return - v0).abs() < 1e-7);
        // Q: from S a bump stays (-0.1 + 0.9 V0), right is V0; on the ice each
        // move weighs its own outcome 0.7 and the others 0.1; G is terminal.
        let stay0 = -0.1 + 0.9 * v0;
        let (goal, stay1, back) = (1.0, -0.1 + 0.9 * v1, -0.1 + 0.9 * v0);
        let want_q: [[f64; 4]; 3] = [
            [stay0, v0, stay0, stay0],
            [
                0.8 * stay1 + 0.1 * goal + 0.1 * back,
                0.7 * goal + 0.2 * stay1 + 0.1 * back,
                0.8 * stay1 + 0.1 * goal + 0.1 * back,
                0.7 * back + 0.1 * goal + 0.2 * stay1,
            ],
            [0.0; 4],
        ];
        for (s, (got, want)) in sol.q.iter().zip(want_q).enumerate() {
            for (a, (&g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (f64::from(g) - w).abs() < 1e-6,
                    "Q({s}, {a}) = {g}, want {w}"
                );
            }
        }
        assert_eq!(sol.optimal_path.moves(), 2);
        assert!(sol.optimal_path.reached_goal);
    }
}
