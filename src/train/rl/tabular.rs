//! Tabular Q-learning and SARSA: one `[f32; 4]` row of Q-values per state and a
//! tight episode loop (table lookups, one random draw per move, no allocation),
//! so a CPU core makes tens of millions of moves per second.
//!
//! Q-learning moves Q(s, a) towards r + gamma * max Q(s', .); SARSA towards
//! r + gamma * Q(s', a') for the action a' it will actually take next. Arriving
//! on a goal or pit ends the episode (no future value); running out of moves does
//! not (the state still has a future, the episode was merely cut off).

use crate::data::maze::{Env, argmax};
use crate::util::rng::Rng;

/// Which tabular update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabularRule {
    /// Off-policy: bootstrap from the best next action.
    QLearning,
    /// On-policy: bootstrap from the next action actually chosen.
    Sarsa,
}

/// How one episode went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeOutcome {
    /// Sum of rewards (undiscounted).
    pub ret: f32,
    /// Moves made.
    pub length: u32,
    /// Whether it ended on a goal.
    pub reached_goal: bool,
}

/// A Q-table learner on one maze.
#[derive(Debug, Clone)]
pub struct TabularLearner {
    env: Env,
    q: Vec<[f32; 4]>,
    rule: TabularRule,
    alpha: f32,
    gamma: f32,
    rng: Rng,
}

impl TabularLearner {
    /// A learner whose table starts at `initial_q` everywhere except goals and pits
    /// (0: nothing follows them). `seed` fixes its exploration and slips.
    pub fn new(
        env: Env,
        rule: TabularRule,
        alpha: f64,
        gamma: f64,
        initial_q: f64,
        seed: u64,
    ) -> Self {
        let q = (0..env.num_states() as u32)
            .map(|s| {
                if env.is_terminal(s) {
                    [0.0; 4]
                } else {
                    [initial_q as f32; 4]
                }
            })
            .collect();
        Self {
            env,
            q,
            rule,
            alpha: alpha as f32,
            gamma: gamma as f32,
            rng: Rng::derive(seed, "agent"),
        }
    }

    /// The Q-table, one row per state of [`Self::env`].
    pub fn q(&self) -> &[[f32; 4]] {
        &self.q
    }

    /// The maze being learned.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The exploration stream's position (checkpoints).
    pub(crate) fn rng_state(&self) -> [u64; 4] {
        self.rng.state()
    }

    /// Continues from a checkpoint's table and stream position.
    pub(crate) fn restore(
        &mut self,
        q: Vec<[f32; 4]>,
        rng: [u64; 4],
    ) -> Result<(), crate::train::ResumeError> {
        if q.len() != self.q.len() {
            return Err(crate::train::ResumeError::QTableStates {
                then: q.len(),
                now: self.q.len(),
            });
        }
        self.q = q;
        self.rng = Rng::from_state(rng);
        Ok(())
    }

    /// Changes the learning rate (a live SetLearningRate).
    pub fn set_alpha(&mut self, alpha: f64) {
        self.alpha = alpha as f32;
    }

    /// Plays and learns one episode with exploration rate `epsilon`.
    pub fn run_episode(&mut self, epsilon: f64) -> EpisodeOutcome {
        // Explore when the top 24 bits of a draw fall below this; the low 2 bits
        // pick the random action, so one draw serves both decisions.
        let threshold = (epsilon.clamp(0.0, 1.0) * f64::from(1u32 << 24)) as u32;
        match self.rule {
            TabularRule::QLearning => self.episode::<false>(threshold),
            TabularRule::Sarsa => self.episode::<true>(threshold),
        }
    }

    #[inline(always)]
    fn episode<const SARSA: bool>(&mut self, threshold: u32) -> EpisodeOutcome {
        let Self {
            env,
            q,
            alpha,
            gamma,
            rng,
            ..
        } = self;
        let (alpha, gamma) = (*alpha, *gamma);
        let mut s = env.start();
        let mut a = choose(&q[s as usize], threshold, rng);
        let mut ret = 0f32;
        let mut length = 0u32;
        let mut done = false;
        while length < env.max_steps() {
            let (next, r, end) = env.step(s, a, rng);
            length += 1;
            ret += r;
            let row = &q[next as usize];
            let (next_a, future) = if SARSA {
                let na = choose(row, threshold, rng);
                (na, row[na])
            } else {
                (0, row[argmax(row)])
            };
            let target = if end { r } else { r + gamma * future };
            let qa = &mut q[s as usize][a];
            *qa += alpha * (target - *qa);
            if end {
                done = true;
                s = next;
                break;
            }
            s = next;
            a = if SARSA {
                next_a
            } else {
                choose(&q[s as usize], threshold, rng)
            };
        }
        EpisodeOutcome {
            ret,
            length,
            reached_goal: done && env.is_goal(s),
        }
    }
}

/// Epsilon-greedy choice from one draw.
#[inline(always)]
fn choose(row: &[f32; 4], threshold: u32, rng: &mut Rng) -> usize {
    let u = rng.next_u64();
    if ((u >> 40) as u32) < threshold {
        (u & 3) as usize
    } else {
        argmax(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::maze::{Maze, greedy_path, solve};
    use crate::spec::{MazeAlgorithm, RewardSpec};

    fn learns_optimal_path(rule: TabularRule) {
        let maze = Maze::generate(9, 9, MazeAlgorithm::Dfs, 0.2, 3).expect("maze");
        let env = Env::new(&maze, &RewardSpec::default(), 0.0, 400);
        let optimal = solve(&env, 0.99).optimal_path.moves();
        let mut learner = TabularLearner::new(env, rule, 0.5, 0.99, 0.0, 11);
        let mut solved_at = None;
        for episode in 0..2_000u64 {
            let eps = (1.0 - episode as f64 / 300.0).max(0.05);
            learner.run_episode(eps);
            let path = greedy_path(learner.env(), learner.q());
            if path.reached_goal && path.moves() == optimal {
                solved_at = Some(episode);
                break;
            }
        }
        assert!(
            solved_at.is_some(),
            "{rule:?} never found the {optimal}-move path"
        );
    }

    #[test]
    fn q_learning_finds_the_optimal_path() {
        learns_optimal_path(TabularRule::QLearning);
    }

    #[test]
    fn sarsa_finds_the_optimal_path() {
        learns_optimal_path(TabularRule::Sarsa);
    }

    #[test]
    fn one_move_update_is_the_textbook_formula() {
        let maze = Maze::parse(&["SG"]).expect("valid");
        let env = Env::new(&maze, &RewardSpec::default(), 0.0, 10);
        let mut learner = TabularLearner::new(env, TabularRule::QLearning, 0.5, 0.9, 0.0, 1);
        // Greedy with all zeros picks "up" (bump, -0.01) until right is tried.
        let out = learner.run_episode(0.0);
        assert!(out.reached_goal);
        assert!(
            (learner.q()[0][1] - 0.5).abs() < 1e-6,
            "{:?}",
            learner.q()[0]
        );
        assert!(
            learner.q()[0][0] < 0.0,
            "bumping costs: {:?}",
            learner.q()[0]
        );
    }

    /// A learner on a one-row maze (slip 0: a move draws no random number) whose
    /// table and stream are set by hand.
    fn on(row: &str, max_steps: usize, alpha: f64, q: Vec<[f32; 4]>, seed: u64) -> TabularLearner {
        let maze = Maze::parse(&[row]).expect("valid");
        let env = Env::new(&maze, &RewardSpec::default(), 0.0, max_steps);
        let mut learner = TabularLearner::new(env, TabularRule::QLearning, alpha, 0.9, 0.0, 1);
        learner
            .restore(q, Rng::new(seed).state())
            .expect("same maze");
        learner
    }

    #[test]
    fn updates_are_the_textbook_values_with_a_future() {
        // "S.G": states 0, 1, 2 (the goal). Greedy: right, then right.
        let q = vec![[0.0, 0.4, 0.0, 0.0], [0.0, 0.6, 0.0, 0.3], [0.0; 4]];
        let mut learner = on("S.G", 10, 0.5, q, 7);
        let out = learner.run_episode(0.0);
        assert_eq!(out.length, 2);
        assert!(out.reached_goal);
        assert!((out.ret - 0.99).abs() < 1e-6, "-0.01 + 1: {}", out.ret);
        // S, right: target -0.01 + 0.9 * max(Q(., .)) = 0.53; 0.4 + 0.5 * (0.53 - 0.4).
        assert!(
            (learner.q()[0][1] - 0.465).abs() < 1e-6,
            "{:?}",
            learner.q()[0]
        );
        // ., right onto the goal: target 1 (nothing follows); 0.6 + 0.5 * (1 - 0.6).
        assert!(
            (learner.q()[1][1] - 0.8).abs() < 1e-6,
            "{:?}",
            learner.q()[1]
        );
        assert_eq!(learner.q()[1][3], 0.3, "an action not taken is untouched");
        assert_eq!(learner.q()[2], [0.0; 4]);
    }

    #[test]
    fn an_episode_is_cut_off_after_exactly_max_steps() {
        // Greedy "up" bumps the top wall forever (-0.01 a move): cut off after 3.
        let mut learner = on("S.G", 3, 0.5, vec![[1.0, 0.0, 0.0, 0.0]; 3], 7);
        let out = learner.run_episode(0.0);
        assert_eq!(out.length, 3);
        assert!((out.ret + 0.03).abs() < 1e-6, "three bumps: {}", out.ret);
        assert!(!out.reached_goal);
    }

    #[test]
    fn an_episode_ending_in_a_pit_did_not_reach_the_goal() {
        // "XSG": greedy "left" from the start falls into the pit (state 0).
        let mut learner = on(
            "XSG",
            10,
            0.5,
            vec![[0.0; 4], [0.0, 0.0, 0.0, 1.0], [0.0; 4]],
            7,
        );
        let out = learner.run_episode(0.0);
        assert_eq!(
            out,
            EpisodeOutcome {
                ret: -1.0,
                length: 1,
                reached_goal: false
            }
        );
        assert!(
            matches!(
                learner.restore(vec![[0.0; 4]; 2], [1; 4]),
                Err(crate::train::ResumeError::QTableStates { then: 2, now: 3 })
            ),
            "a table of another maze is refused"
        );
    }

    #[test]
    fn a_draw_explores_below_the_threshold_with_its_low_two_bits() {
        let row = [0.0, 0.0, 1.0, 0.0]; // the best action: down
        let mut rng = Rng::new(5);
        let mut explored = [0usize; 4];
        for _ in 0..64 {
            let u = rng.clone().next_u64();
            let top = (u >> 40) as u32;
            let mut at = rng.clone();
            assert_eq!(
                choose(&row, top, &mut at),
                2,
                "a draw at the threshold exploits"
            );
            let mut above = rng.clone();
            let a = choose(&row, top + 1, &mut above);
            assert_eq!(a, (u & 3) as usize, "a draw below it explores");
            explored[a] += 1;
            rng.next_u64();
            assert_eq!(at.state(), rng.state(), "one draw a choice");
            assert_eq!(above.state(), rng.state(), "one draw a choice");
        }
        assert!(explored.iter().all(|&n| n > 0), "{explored:?}");
    }

    #[test]
    fn epsilon_is_the_share_of_the_24_bit_draws_that_explore() {
        // Alpha 0 (set live): the table stays, greedy is "left" everywhere.
        let q = vec![[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [0.0; 4]];
        for (epsilon, threshold) in [(0.0, 0u64), (0.5, 1 << 23), (1.0, 1 << 24)] {
            let mut learner = on("S.G", 40, 0.5, q.clone(), 3);
            learner.set_alpha(0.0);
            let out = learner.run_episode(epsilon);
            // The same moves, drawn by hand: a draw for the first action and one
            // after every move that does not end the episode (also the last).
            let mut rng = Rng::new(3);
            let env = learner.env().clone();
            let (mut draws, mut explored) = (0u32, 0u32);
            let mut pick = |rng: &mut Rng| {
                let u = rng.next_u64();
                draws += 1;
                if u >> 40 < threshold {
                    explored += 1;
                    (u & 3) as usize
                } else {
                    3
                }
            };
            let (mut s, mut want) = (env.start(), (0f32, 0u32, false));
            let mut a = pick(&mut rng);
            while want.1 < 40 {
                let (next, r, end) = env.step(s, a, &mut rng);
                want = (want.0 + r, want.1 + 1, end && env.is_goal(next));
                s = next;
                if end {
                    break;
                }
                a = pick(&mut rng);
            }
            assert_eq!(
                (out.ret, out.length, out.reached_goal),
                want,
                "epsilon {epsilon}"
            );
            assert_eq!(learner.rng_state(), rng.state(), "epsilon {epsilon}");
            assert_eq!(learner.q(), q.as_slice(), "alpha 0 learns nothing");
            match epsilon {
                0.0 => assert_eq!(explored, 0),
                1.0 => assert_eq!(explored, draws),
                _ => assert!(explored > 0 && explored < draws, "{explored} of {draws}"),
            }
        }
    }
}
