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
        let mut s = spec();
        s.method = ControllerMethod::Reinforce {
            lr: 0.5,
            baseline: true,
        };
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
