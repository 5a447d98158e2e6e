//! A learned learning-rate controller (`search: Controller(..)`): the agent's
//! behaviour in an episode, the rewards of its decisions, and how its table
//! learns from them. The episodes themselves are run by [`run::work`].
//!
//! ```text
//! DIR/controller/policy.ron   the table and the episodes learned from,
//!                             rewritten (atomically) after every episode
//! DIR/trials/<id>/            episode <id>: a normal run folder whose
//!                             experiment.ron lists the lr changes it made
//! ```
//!
//! Contract: episode `e` behaves as a pure function of the table learned from
//! episodes 0..e, the study's seed and `e` (exploration is drawn per decision
//! from `Rng::derive(seed, "controller-e-k")`), so an episode killed mid-way is
//! run again from its start with the same decisions. The table learns from an
//! episode's transitions after it ends, last first (a reward reaches the
//! decisions before it in one episode). An episode is learned from once: the
//! policy names the trials it learned from and is written before the journal
//! says the trial finished.

mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use run::work;

use crate::spec::{
    ControllerError, ControllerMethod, ControllerSpec, Decision, EpisodeLog, Policy, Reward,
    load_policy, policy_to_ron,
};
use crate::train::Choose;
use crate::util::atomic::write_atomic;
use crate::util::rng::Rng;

/// The policy file inside a study folder.
pub fn policy_path(dir: &Path) -> PathBuf {
    dir.join("controller").join("policy.ron")
}

/// The study's policy as learned so far (a fresh one before the first episode).
pub fn load_or_fresh(dir: &Path, spec: &ControllerSpec) -> Result<Policy, ControllerError> {
    let path = policy_path(dir);
    if !path.exists() {
        return Ok(Policy::fresh(spec));
    }
    let policy = load_policy(&path)?;
    if let Some(why) = policy.differs_from(spec) {
        return Err(ControllerError::OtherLayout { path, why });
    }
    Ok(policy)
}

/// Writes the policy (atomically), creating `DIR/controller/`.
pub fn save(dir: &Path, policy: &Policy) -> std::io::Result<()> {
    let path = policy_path(dir);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write_atomic(&path, policy_to_ron(policy).as_bytes())
}

/// Exploration in episode `episode` (Q-learning; REINFORCE samples instead).
pub fn epsilon(spec: &ControllerSpec, episode: usize) -> f64 {
    match &spec.method {
        ControllerMethod::QLearning { epsilon, .. } => epsilon.at(episode as u64),
        ControllerMethod::Reinforce { .. } => 0.0,
    }
}

/// How the agent chooses in episode `episode`: epsilon-greedy over the table
/// (Q-learning) or a draw from the softmax (REINFORCE), seeded per decision.
pub fn behaviour(policy: &Policy, spec: &ControllerSpec, seed: u64, episode: usize) -> Choose {
    let table = Arc::new(policy.clone());
    let eps = epsilon(spec, episode);
    let sample = matches!(spec.method, ControllerMethod::Reinforce { .. });
    Arc::new(move |state, k| {
        let mut rng = Rng::derive(seed, &format!("controller-{episode}-{k}"));
        if sample {
            let probs = table.probabilities(state);
            let mut u = rng.f64();
            for (a, p) in probs.iter().enumerate() {
                if u < *p {
                    return a;
                }
                u -= p;
            }
            return probs.len() - 1;
        }
        if rng.f64() < eps {
            rng.below(table.actions.len())
        } else {
            table.greedy(state)
        }
    })
}

/// Figures at the end of an episode (from its summary).
#[derive(Debug, Clone, Copy, Default)]
pub struct End {
    /// Final validation loss.
    pub val_loss: Option<f64>,
    /// Final validation accuracy.
    pub val_accuracy: Option<f64>,
    /// The last epoch's mean training loss.
    pub train_loss: Option<f64>,
}

/// The reward of each decision: the change of the reward's figure from it to
/// the next decision (the end for the last), plus `terminal` on the last.
pub fn rewards(reward: Reward, decisions: &[Decision], end: &End, terminal: f64) -> Vec<f64> {
    let at = |d: &Decision| match reward {
        Reward::ValLossDrop => d.val_loss,
        Reward::ValAccuracyGain => d.val_accuracy,
        Reward::TrainLossDrop => Some(d.train_loss),
    };
    let last = match reward {
        Reward::ValLossDrop => end.val_loss,
        Reward::ValAccuracyGain => end.val_accuracy,
        Reward::TrainLossDrop => end.train_loss,
    };
    let n = decisions.len();
    (0..n)
        .map(|i| {
            let next = if i + 1 < n {
                at(&decisions[i + 1])
            } else {
                last
            };
            let change = match (at(&decisions[i]), next) {
                (Some(a), Some(b)) => match reward {
                    Reward::ValAccuracyGain => b - a,
                    Reward::ValLossDrop | Reward::TrainLossDrop => a - b,
                },
                _ => 0.0,
            };
            let change = if change.is_finite() { change } else { 0.0 };
            if i + 1 == n {
                change + terminal
            } else {
                change
            }
        })
        .collect()
}

/// Learns from one episode (trial `trial`, its file lr `file_lr`): updates the
/// table and visits, the baseline and the history.
pub fn learn(
    policy: &mut Policy,
    spec: &ControllerSpec,
    decisions: &[Decision],
    rewards: &[f64],
    trial: usize,
    file_lr: f64,
) {
    let n = decisions.len().min(rewards.len());
    match spec.method {
        ControllerMethod::QLearning { alpha, gamma, .. } => {
            for i in (0..n).rev() {
                let (s, a) = (decisions[i].state, decisions[i].action);
                let next = if i + 1 < n {
                    let row = &policy.table[decisions[i + 1].state];
                    gamma * row.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                } else {
                    0.0
                };
                let q = &mut policy.table[s][a];
                *q += alpha * (rewards[i] + next - *q);
            }
        }
        ControllerMethod::Reinforce { lr, baseline } => {
            let b = if baseline { policy.baseline } else { 0.0 };
            let mut ret = 0.0;
            for i in (0..n).rev() {
                ret += rewards[i];
                let (s, a) = (decisions[i].state, decisions[i].action);
                let probs = policy.probabilities(s);
                for (j, p) in probs.iter().enumerate() {
                    let grad = if j == a { 1.0 - p } else { -p };
                    policy.table[s][j] += lr * (ret - b) * grad;
                }
            }
        }
    }
    for d in &decisions[..n] {
        policy.visits[d.state][d.action] += 1;
    }
    let ret: f64 = rewards[..n].iter().sum();
    let k = policy.history.len() as f64;
    policy.baseline = (policy.baseline * k + ret) / (k + 1.0);
    let mut lrs = vec![(0, file_lr)];
    lrs.extend(decisions[..n].iter().map(|d| (d.step, d.lr)));
    policy.history.push(EpisodeLog {
        trial,
        ret,
        epsilon: epsilon(spec, trial),
        lrs,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{EpsilonSpec, StateFeature};

    fn spec() -> ControllerSpec {
        ControllerSpec {
            episodes: 4,
            decide_every_steps: 5,
            actions: vec![0.5, 1.0, 2.0],
            state: vec![StateFeature::Progress],
            reward: Reward::ValLossDrop,
            method: ControllerMethod::QLearning {
                alpha: 0.5,
                gamma: 0.9,
                epsilon: EpsilonSpec {
                    start: 1.0,
                    end: 0.0,
                    decay_episodes: 2,
                },
            },
        }
    }

    /// [`spec`] learning by REINFORCE (step 0.5).
    fn reinforce(baseline: bool) -> ControllerSpec {
        let mut s = spec();
        s.method = ControllerMethod::Reinforce { lr: 0.5, baseline };
        s
    }

    fn decision(step: u64, state: usize, action: usize, val_loss: f64) -> Decision {
        Decision {
            step,
            state,
            action,
            lr: 0.1,
            train_loss: val_loss,
            val_loss: Some(val_loss),
            val_accuracy: None,
        }
    }

    #[test]
    fn rewards_are_the_drops_between_decisions_and_the_end_gets_the_bonus() {
        let ds = [decision(5, 0, 2, 1.0), decision(10, 1, 0, 0.7)];
        let end = End {
            val_loss: Some(0.6),
            ..End::default()
        };
        let r = rewards(Reward::ValLossDrop, &ds, &end, 0.5);
        assert!(
            (r[0] - 0.3).abs() < 1e-12 && (r[1] - 0.6).abs() < 1e-12,
            "{r:?}"
        );
    }

    #[test]
    fn q_learning_moves_the_taken_actions_towards_their_targets() {
        let s = spec();
        let mut p = Policy::fresh(&s);
        let ds = [decision(5, 0, 2, 1.0), decision(10, 1, 0, 0.7)];
        learn(&mut p, &s, &ds, &[0.3, 0.6], 0, 0.1);
        // Last first: Q[1][0] = 0.5 * 0.6; then Q[0][2] = 0.5 * (0.3 + 0.9 * 0.3).
        assert!((p.table[1][0] - 0.3).abs() < 1e-12);
        assert!((p.table[0][2] - 0.285).abs() < 1e-12);
        assert_eq!(p.greedy(0), 2);
        assert_eq!(p.visits[0][2], 1);
        assert_eq!(p.history[0].lrs, vec![(0, 0.1), (5, 0.1), (10, 0.1)]);
    }

    #[test]
    fn reinforce_makes_the_actions_of_a_good_episode_likelier() {
        let s = reinforce(true);
        let mut p = Policy::fresh(&s);
        let ds = [decision(5, 0, 2, 1.0), decision(10, 1, 0, 0.7)];
        learn(&mut p, &s, &ds, &[0.3, 0.6], 0, 0.1);
        // First episode: baseline 0, returns 0.9 and 0.6 from each decision on.
        let third = 1.0 / 3.0;
        assert!((p.table[0][2] - 0.5 * 0.9 * (1.0 - third)).abs() < 1e-12);
        assert!((p.table[1][0] - 0.5 * 0.6 * (1.0 - third)).abs() < 1e-12);
        assert!(p.probabilities(0)[2] > third && p.probabilities(1)[0] > third);
        assert!((p.baseline - 0.9).abs() < 1e-12, "the mean return so far");
        // The same episode again, now measured against the baseline 0.9: the
        // first decision's return is just average (no change), the second's
        // below it (its action becomes less likely).
        let (first, second) = (p.table[0][2], p.table[1][0]);
        learn(&mut p, &s, &ds, &[0.3, 0.6], 1, 0.1);
        assert!((p.table[0][2] - first).abs() < 1e-12);
        assert!(p.table[1][0] < second);
    }

    fn decisions3(figures: [(f64, Option<f64>, Option<f64>); 3]) -> Vec<Decision> {
        (figures.iter().enumerate())
            .map(|(i, &(train_loss, val_loss, val_accuracy))| Decision {
                step: 5 * (i as u64 + 1),
                state: i,
                action: i,
                lr: 0.1,
                train_loss,
                val_loss,
                val_accuracy,
            })
            .collect()
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn each_reward_is_its_figures_signed_change_and_only_the_last_gets_the_terminal() {
        let ds = decisions3([
            (2.0, Some(1.0), Some(0.5)),
            (1.5, Some(0.75), Some(0.625)),
            (1.75, Some(0.875), Some(0.5625)),
        ]);
        let end = End {
            val_loss: Some(0.5),
            val_accuracy: Some(0.75),
            train_loss: Some(1.0),
        };
        // A drop of a loss is good, a gain of accuracy is good; each change is
        // from one decision to the next, the last's to the end.
        assert_close(
            &rewards(Reward::ValLossDrop, &ds, &end, 2.0),
            &[0.25, -0.125, 0.375 + 2.0],
        );
        assert_close(
            &rewards(Reward::ValAccuracyGain, &ds, &end, -1.0),
            &[0.125, -0.0625, 0.1875 - 1.0],
        );
        assert_close(
            &rewards(Reward::TrainLossDrop, &ds, &end, 0.5),
            &[0.5, -0.25, 0.75 + 0.5],
        );
        assert!(rewards(Reward::TrainLossDrop, &[], &end, 0.5).is_empty());
    }

    #[test]
    fn a_missing_or_non_finite_figure_rewards_nothing_but_the_terminal_still_counts() {
        let ds = decisions3([
            (f64::NAN, Some(1.0), None),
            (1.5, None, Some(0.5)),
            (1.0, Some(f64::INFINITY), Some(0.625)),
        ]);
        let end = End {
            val_loss: Some(0.5),
            val_accuracy: None,
            train_loss: Some(0.25),
        };
        // ValLoss: 1.0 -> none -> inf -> 0.5 (inf - 0.5 is not finite).
        assert_close(
            &rewards(Reward::ValLossDrop, &ds, &end, 3.0),
            &[0.0, 0.0, 3.0],
        );
        // ValAccuracy: none -> 0.5 -> 0.625 -> none.
        assert_close(
            &rewards(Reward::ValAccuracyGain, &ds, &end, 3.0),
            &[0.0, 0.125, 3.0],
        );
        // TrainLoss: nan -> 1.5 -> 1.0 -> 0.25.
        assert_close(
            &rewards(Reward::TrainLossDrop, &ds, &end, 0.0),
            &[0.0, 0.5, 0.75],
        );
    }

    #[test]
    fn q_learning_bootstraps_from_the_best_value_of_the_next_state_last_first() {
        let s = spec();
        let mut p = Policy::fresh(&s);
        // Four Progress states, three actions; values already learned.
        p.table[1] = vec![-2.0, -1.0, -3.0];
        p.table[2] = vec![0.5, 4.0, 1.0];
        p.table[0][1] = 1.0;
        let ds = [
            decision(5, 0, 1, 1.0),
            decision(10, 1, 2, 0.5),
            decision(15, 2, 1, 0.25),
        ];
        learn(&mut p, &s, &ds, &[1.0, -0.5, 2.0], 3, 0.2);
        // Last first: Q[2][1] = 4 + 0.5 (2 - 4) = 3; then
        // Q[1][2] = -3 + 0.5 (-0.5 + 0.9 * 3 + 3) = -0.4 (the row's best is
        // now 3, learned a moment ago); then Q[0][1] = 1 + 0.5 (1 + 0.9 * -0.4 - 1).
        assert_close(&p.table[2], &[0.5, 3.0, 1.0]);
        assert_close(&p.table[1], &[-2.0, -1.0, -0.4]);
        assert_close(&p.table[0], &[0.0, 1.0 + 0.5 * (0.9 * -0.4), 0.0]);
        let log = &p.history[0];
        assert_eq!(log.trial, 3);
        assert!((log.ret - 2.5).abs() < 1e-12, "{log:?}");
        assert_eq!(
            log.epsilon, 0.0,
            "episode 3 is past the decay: epsilon's end"
        );
        assert_eq!(log.lrs, vec![(0, 0.2), (5, 0.1), (10, 0.1), (15, 0.1)]);
    }

    #[test]
    fn learning_counts_visits_keeps_the_mean_return_and_logs_each_episodes_epsilon() {
        let s = spec();
        let mut p = Policy::fresh(&s);
        let ds = [decision(5, 1, 2, 1.0), decision(10, 1, 2, 0.5)];
        learn(&mut p, &s, &ds, &[1.0, 2.0], 0, 0.1);
        learn(&mut p, &s, &ds, &[0.5, 0.5], 1, 0.1);
        learn(&mut p, &s, &ds[..1], &[-1.0], 2, 0.1);
        assert_eq!(p.visits[1], vec![0, 0, 5]);
        assert!(
            p.visits
                .iter()
                .enumerate()
                .all(|(i, row)| i == 1 || row == &[0, 0, 0])
        );
        // Returns 3, 1 and -1: their mean.
        assert!((p.baseline - 1.0).abs() < 1e-12, "{}", p.baseline);
        let logged: Vec<(usize, f64, f64)> = p
            .history
            .iter()
            .map(|h| (h.trial, h.ret, h.epsilon))
            .collect();
        assert_eq!(logged, vec![(0, 3.0, 1.0), (1, 1.0, 0.5), (2, -1.0, 0.0)]);
        // More decisions than rewards (or the other way): only the pairs count.
        learn(&mut p, &s, &ds, &[4.0], 3, 0.1);
        assert_eq!(p.visits[1], vec![0, 0, 6]);
        assert_eq!(p.history[3].lrs, vec![(0, 0.1), (5, 0.1)]);
    }

    #[test]
    fn epsilon_decays_per_episode_for_q_learning_and_is_zero_for_reinforce() {
        let mut s = spec();
        let at: Vec<f64> = (0..4).map(|e| epsilon(&s, e)).collect();
        assert_eq!(at, vec![1.0, 0.5, 0.0, 0.0]);
        s.method = ControllerMethod::Reinforce {
            lr: 0.5,
            baseline: false,
        };
        assert_eq!(epsilon(&s, 0), 0.0);
    }

    #[test]
    fn reinforce_without_a_baseline_moves_along_the_whole_return() {
        let s = reinforce(false);
        let mut p = Policy::fresh(&s);
        let ds = [decision(5, 0, 2, 1.0), decision(10, 1, 0, 0.7)];
        learn(&mut p, &s, &ds, &[0.3, 0.6], 0, 0.1);
        let (first, second) = (p.table[0].clone(), p.table[1].clone());
        learn(&mut p, &s, &ds, &[0.3, 0.6], 1, 0.1);
        // Unlike with the baseline (0.9 by now), the same return moves the
        // preferences again: the taken action up, the others down, by
        // lr * return * (1 - p) and lr * return * -p.
        let probs = Policy {
            table: vec![first.clone()],
            ..p.clone()
        }
        .probabilities(0);
        for j in 0..3 {
            let grad = if j == 2 { 1.0 - probs[j] } else { -probs[j] };
            assert!(
                (p.table[0][j] - (first[j] + 0.5 * 0.9 * grad)).abs() < 1e-12,
                "{:?}",
                p.table[0]
            );
        }
        assert!(p.table[1][0] > second[0] && p.table[1][1] < second[1]);
        assert!((p.baseline - 0.9).abs() < 1e-12, "still the mean return");
    }

    /// The action `behaviour` must take at decision `k`: the draws of the
    /// decision's own generator, read the way the contract says.
    fn expected_draw(
        seed: u64,
        episode: usize,
        k: usize,
        pick: impl FnOnce(&mut Rng) -> usize,
    ) -> usize {
        pick(&mut Rng::derive(seed, &format!("controller-{episode}-{k}")))
    }

    #[test]
    fn epsilon_greedy_explores_exactly_when_its_draw_is_below_epsilon() {
        let s = spec();
        let mut p = Policy::fresh(&s);
        p.table[0] = vec![0.0, 0.0, 1.0];
        // Episode 1: epsilon 0.5.
        let act = behaviour(&p, &s, 11, 1);
        let (mut explored, mut greedy) = (0, 0);
        for k in 0..200 {
            let want = expected_draw(11, 1, k, |rng| {
                if rng.f64() < 0.5 {
                    explored += 1;
                    rng.below(3)
                } else {
                    greedy += 1;
                    2
                }
            });
            assert_eq!(act(0, k), want, "decision {k}");
        }
        assert!(explored > 70 && greedy > 70, "{explored} {greedy}");
    }

    #[test]
    fn reinforce_samples_each_action_with_its_softmax_probability() {
        let s = reinforce(true);
        let mut p = Policy::fresh(&s);
        // Probabilities 1/8, 2/8 and 5/8.
        p.table[3] = vec![0.0, 2f64.ln(), 5f64.ln()];
        let act = behaviour(&p, &s, 5, 0);
        let mut counts = [0usize; 3];
        for k in 0..400 {
            let want = expected_draw(5, 0, k, |rng| match rng.f64() {
                u if u < 0.125 => 0,
                u if u < 0.375 => 1,
                _ => 2,
            });
            let got = act(3, k);
            assert_eq!(got, want, "decision {k}");
            counts[got] += 1;
        }
        assert!(
            counts[0] > 25 && counts[1] > 70 && counts[2] > 200,
            "{counts:?}"
        );
        // The same decision of another episode draws anew.
        let other = behaviour(&p, &s, 5, 1);
        assert!((0..50).any(|k| other(3, k) != act(3, k)));
    }

    #[test]
    fn a_draw_past_every_probability_takes_the_last_action() {
        let s = reinforce(true);
        let mut p = Policy::fresh(&s);
        // A row that is not a number has no probability to fall below.
        p.table[0] = vec![f64::NAN; 3];
        let act = behaviour(&p, &s, 5, 0);
        assert!((0..20).all(|k| act(0, k) == 2));
    }

    #[test]
    fn a_saved_policy_loads_back_and_one_for_another_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = spec();
        assert_eq!(
            policy_path(dir.path()),
            dir.path().join("controller").join("policy.ron")
        );
        assert_eq!(
            load_or_fresh(dir.path(), &s).expect("fresh"),
            Policy::fresh(&s)
        );
        let mut p = Policy::fresh(&s);
        learn(&mut p, &s, &[decision(5, 2, 0, 1.0)], &[0.75], 0, 0.1);
        save(dir.path(), &p).expect("save");
        assert_eq!(load_or_fresh(dir.path(), &s).expect("load"), p);
        let mut other = s.clone();
        other.actions = vec![0.5, 2.0];
        let err = load_or_fresh(dir.path(), &other).expect_err("another layout");
        assert!(
            matches!(&err, ControllerError::OtherLayout { path, .. } if *path == policy_path(dir.path())),
            "{err}"
        );
    }

    #[test]
    fn behaviour_is_a_function_of_state_decision_and_episode() {
        let s = spec();
        let p = Policy::fresh(&s);
        let a = behaviour(&p, &s, 7, 0);
        let b = behaviour(&p, &s, 7, 0);
        let picks: Vec<usize> = (0..20).map(|k| a(0, k)).collect();
        assert_eq!(picks, (0..20).map(|k| b(0, k)).collect::<Vec<_>>());
        assert!(picks.iter().any(|&x| x != picks[0]), "explores: {picks:?}");
        // epsilon 0 from episode 2: greedy (on an all-zero row: keep, x1).
        let greedy = behaviour(&p, &s, 7, 3);
        assert!((0..20).all(|k| greedy(0, k) == 1));
    }
}
