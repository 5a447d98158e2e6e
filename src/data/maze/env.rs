//! The maze compiled for learning: states are the non-wall cells, numbered
//! row-major, and every (state, action) has its next state and reward looked up
//! in flat tables, so a move costs a few array reads. Slippery cells replace the
//! chosen action by a uniformly random one with probability `slip`.

use super::{ACTIONS, Cell, Maze};
use crate::spec::RewardSpec;
use crate::util::rng::Rng;

/// A maze ready to be played: transition and reward tables.
#[derive(Debug, Clone)]
pub struct Env {
    maze: Maze,
    /// Cell index (row * cols + col) of each state.
    cell_of: Vec<u32>,
    /// State of each cell; `u32::MAX` for walls.
    state_of: Vec<u32>,
    /// `next[s * 4 + a]`: the state the intended move leads to.
    next: Vec<u32>,
    /// `reward[s * 4 + a]`: the reward of arriving there.
    reward: Vec<f32>,
    terminal: Vec<bool>,
    goal: Vec<bool>,
    /// Probability that a move from this state goes in a random direction.
    slip: Vec<f32>,
    start: u32,
    max_steps: u32,
}

/// Marks a cell that is not a state (a wall).
pub const NO_STATE: u32 = u32::MAX;

impl Env {
    /// Compiles `maze` (which should have passed [`Maze::validate`]) with these
    /// rewards, slip probability on `~` cells, and episode step limit.
    pub fn new(maze: &Maze, rewards: &RewardSpec, slip: f64, max_steps: usize) -> Self {
        let cols = maze.cols();
        let mut state_of = vec![NO_STATE; maze.cells().len()];
        let mut cell_of = Vec::new();
        for (i, &cell) in maze.cells().iter().enumerate() {
            if cell != Cell::Wall {
                state_of[i] = cell_of.len() as u32;
                cell_of.push(i as u32);
            }
        }
        let n = cell_of.len();
        let mut next = vec![0u32; n * 4];
        let mut reward = vec![0f32; n * 4];
        let mut terminal = vec![false; n];
        let mut goal = vec![false; n];
        let mut slips = vec![0f32; n];
        for (s, &i) in cell_of.iter().enumerate() {
            let (r, c) = (i as usize / cols, i as usize % cols);
            let here = maze.get(r, c);
            terminal[s] = here.is_terminal();
            goal[s] = here == Cell::Goal;
            if here == Cell::Slippery {
                slips[s] = slip as f32;
            }
            for a in 0..ACTIONS.len() {
                let (nr, nc) = maze.neighbour(r, c, a).unwrap_or((r, c));
                let to = state_of[nr * cols + nc];
                next[s * 4 + a] = if terminal[s] { s as u32 } else { to };
                reward[s * 4 + a] = match maze.get(nr, nc) {
                    _ if terminal[s] => 0.0,
                    Cell::Goal => rewards.goal as f32,
                    Cell::Pit => rewards.pit as f32,
                    _ => rewards.step as f32,
                };
            }
        }
        let start = maze.start().map_or(0, |(r, c)| {
            state_of[r * cols + c].min(n.saturating_sub(1) as u32)
        });
        Self {
            maze: maze.clone(),
            cell_of,
            state_of,
            next,
            reward,
            terminal,
            goal,
            slip: slips,
            start,
            max_steps: max_steps.min(u32::MAX as usize) as u32,
        }
    }

    /// One move from state `s` with action `a`: (next state, reward, episode over).
    #[inline(always)]
    pub fn step(&self, s: u32, a: usize, rng: &mut Rng) -> (u32, f32, bool) {
        let s = s as usize;
        let slip = self.slip[s];
        let a = if slip > 0.0 && rng.f32() < slip {
            rng.below(4)
        } else {
            a
        };
        let k = s * 4 + (a & 3);
        let to = self.next[k];
        (to, self.reward[k], self.terminal[to as usize])
    }

    /// The possible outcomes of action `a` in state `s`: (actual action, probability).
    pub fn outcomes(&self, s: u32, a: usize) -> impl Iterator<Item = (usize, f64)> {
        let slip = f64::from(self.slip[s as usize]);
        (0..4).filter_map(move |actual| {
            let p = if actual == a { 1.0 - slip } else { 0.0 } + slip / 4.0;
            (p > 0.0).then_some((actual, p))
        })
    }

    /// Next state and reward of the move in direction `actual` (no slipping).
    pub fn transition(&self, s: u32, actual: usize) -> (u32, f32) {
        let k = s as usize * 4 + (actual & 3);
        (self.next[k], self.reward[k])
    }

    /// The maze this was compiled from.
    pub fn maze(&self) -> &Maze {
        &self.maze
    }

    /// Number of states (non-wall cells).
    pub fn num_states(&self) -> usize {
        self.cell_of.len()
    }

    /// The start state.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// Moves per episode before it is cut off.
    pub fn max_steps(&self) -> u32 {
        self.max_steps
    }

    /// Whether an episode ends on arriving in `s`.
    pub fn is_terminal(&self, s: u32) -> bool {
        self.terminal[s as usize]
    }

    /// Whether `s` is a goal.
    pub fn is_goal(&self, s: u32) -> bool {
        self.goal[s as usize]
    }

    /// (row, col) of state `s`.
    pub fn position(&self, s: u32) -> (usize, usize) {
        let i = self.cell_of[s as usize] as usize;
        (i / self.maze.cols(), i % self.maze.cols())
    }

    /// The state at (row, col), or None for walls and positions outside.
    pub fn state_at(&self, row: usize, col: usize) -> Option<u32> {
        if row >= self.maze.rows() || col >= self.maze.cols() {
            return None;
        }
        let s = self.state_of[row * self.maze.cols() + col];
        (s != NO_STATE).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(rows: &[&str], slip: f64) -> Env {
        let maze = Maze::parse(rows).expect("valid");
        Env::new(&maze, &RewardSpec::default(), slip, 100)
    }

    #[test]
    fn moves_bump_walls_and_end_on_goal_or_pit() {
        let e = env(&["S.G", ".#X"], 0.0);
        let mut rng = Rng::new(1);
        let s = e.start();
        assert_eq!(
            e.step(s, 0, &mut rng),
            (s, -0.01, false),
            "up bumps the edge"
        );
        let (right, r, done) = e.step(s, 1, &mut rng);
        assert_eq!((e.position(right), r, done), ((0, 1), -0.01, false));
        assert_eq!(e.step(right, 2, &mut rng).0, right, "down bumps the wall");
        let (g, r, done) = e.step(right, 1, &mut rng);
        assert_eq!((e.position(g), r, done), ((0, 2), 1.0, true));
        let (p, r, done) = e.step(g, 2, &mut rng);
        assert_eq!((p, r, done), (g, 0.0, true), "terminal states absorb");
        let below = e.state_at(0, 2).expect("state");
        assert!(e.is_goal(below));
        let pit = e.state_at(1, 2).expect("pit");
        assert!(e.is_terminal(pit) && !e.is_goal(pit));
    }

    #[test]
    fn the_start_limit_and_lookups_are_the_mazes() {
        // States row-major over non-wall cells: G (0, 1) = 0, (1, 0) = 1, ~ = 2,
        // (1, 2) = 3, S (2, 1) = 4.
        let e = env(&["#G#", ".~.", "#S#"], 0.4);
        assert_eq!(e.num_states(), 5);
        assert_eq!(e.start(), 4);
        assert_eq!(e.position(e.start()), (2, 1));
        assert_eq!(e.max_steps(), 100);
        assert_eq!(e.state_at(1, 2), Some(3));
        assert_eq!(e.state_at(0, 0), None, "a wall");
        assert_eq!(e.state_at(3, 1), None, "below the last row");
        assert_eq!(e.state_at(1, 3), None, "right of the last column");
        assert_eq!(e.state_at(0, 9), None, "far right on the first row");
        // From (1, 2), up is the wall (0, 2): the move stays put.
        assert_eq!(e.transition(3, 0), (3, -0.01));
        assert_eq!(e.transition(3, 3), (2, -0.01), "left onto the ice");
        assert_eq!(e.transition(2, 0), (0, 1.0), "up from the ice to the goal");
    }

    #[test]
    fn a_move_on_a_dry_cell_draws_no_random_number() {
        // Only a slippery cell asks the generator whether the move slips: a dry
        // move must leave the random stream (exploration, later slips) untouched.
        let e = env(&["#G#", ".~.", "#S#"], 0.4);
        let mut rng = Rng::new(5);
        let mut twin = Rng::new(5);
        assert_eq!(e.step(e.start(), 0, &mut rng), (2, -0.01, false));
        assert_eq!(rng.f32(), twin.f32());
    }

    #[test]
    fn slippery_cells_follow_their_probabilities() {
        // From the slippery centre each direction leads to a different cell.
        let e = env(&["#G#", ".~.", "#S#"], 0.4);
        let centre = e.state_at(1, 1).expect("state");
        let mut rng = Rng::new(9);
        let mut counts = [0usize; 4];
        let n = 200_000;
        for _ in 0..n {
            let (to, _, _) = e.step(centre, 0, &mut rng);
            let (r, c) = e.position(to);
            let dir = match (r, c) {
                (0, 1) => 0,
                (1, 2) => 1,
                (2, 1) => 2,
                _ => 3,
            };
            counts[dir] += 1;
        }
        // Intended: 1 - 0.4 + 0.1 = 0.7; each other direction 0.1.
        let expected = [0.7, 0.1, 0.1, 0.1];
        for (dir, (&c, p)) in counts.iter().zip(expected).enumerate() {
            let got = c as f64 / n as f64;
            assert!((got - p).abs() < 0.005, "direction {dir}: {got} vs {p}");
        }
        let probs: Vec<(usize, f64)> = e.outcomes(centre, 0).collect();
        let total: f64 = probs.iter().map(|(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((probs[0].1 - 0.7).abs() < 1e-6, "{probs:?}");
        assert_eq!(e.outcomes(e.start(), 0).count(), 1, "not slippery");
    }

    #[test]
    fn a_slippery_move_slips_when_its_draw_is_below_slip_then_draws_the_direction() {
        // From the ice (state 2) up, right, down, left lead to states 0, 3, 4, 1.
        // A move there takes one f32 draw u; when u < 0.4 a second draw,
        // below(4), picks the direction taken; else the chosen one is kept.
        let e = env(&["#G#", ".~.", "#S#"], 0.4);
        let to = [0u32, 3, 4, 1];
        let reward = |s: u32| if s == 0 { 1.0 } else { -0.01 };
        let (mut slipped, mut kept) = (0, 0);
        for seed in 0..64 {
            let mut rng = Rng::new(seed);
            let mut twin = Rng::new(seed);
            let chosen = (seed % 4) as usize;
            let taken = if twin.f32() < 0.4 {
                slipped += 1;
                twin.below(4)
            } else {
                kept += 1;
                chosen
            };
            let s = to[taken];
            assert_eq!(
                e.step(2, chosen, &mut rng),
                (s, reward(s), s == 0),
                "seed {seed}"
            );
            assert_eq!(rng.f32(), twin.f32(), "seed {seed}: the same draws used");
        }
        assert!(slipped > 10 && kept > 10, "{slipped} slipped, {kept} kept");
    }
}
