//! The learning-rate controller's plain data: the study's `search: Controller(..)`
//! settings, what the agent observes (bucketed state), the decisions a run
//! records, and the policy file (`policy.ron`) that a study writes after every
//! episode and `schedule: (decay: Controlled(policy: ".."))` reads back.
//!
//! Contract: a state is a mixed-radix index over the listed features' buckets
//! (first feature most significant), so a policy fits a run only when its
//! features, their bucket counts and its actions are the ones the run uses;
//! [`Policy::check`] says what differs. Nothing here touches a device or a file
//! except [`load_policy`], which names the file in every error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::agent::EpsilonSpec;

/// `search: Controller(..)`: each episode is one trial, a whole run steered by
/// the agent, which multiplies the lr by one of `actions` every
/// `decide_every_steps` optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSpec {
    /// Trials (whole runs) the agent learns from, one after the other.
    pub episodes: usize,
    /// Optimizer steps between decisions.
    pub decide_every_steps: u64,
    /// Factors the lr may be multiplied by at a decision.
    pub actions: Vec<f64>,
    /// What the agent observes, each bucketed (see [`StateFeature`]).
    pub state: Vec<StateFeature>,
    /// What a decision is rewarded with (the study's first objective is added at
    /// the end of an episode).
    pub reward: Reward,
    /// How the agent learns.
    pub method: ControllerMethod,
}

/// One observed quantity and its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateFeature {
    /// Mean training loss since the last decision over the mean before it:
    /// falling (< 0.97), flat (0.97..1.0), rising (>= 1.0).
    LossTrend,
    /// (validation loss - training loss) / training loss: small (< 0.05),
    /// medium (0.05..0.25), large (>= 0.25); no validation split: small.
    ValGap,
    /// The lr over the file's lr, as a power of two rounded and clamped to
    /// -2..2: <= 1/4, 1/2, 1, 2, >= 4.
    LrLevel,
    /// Share of the run's steps done, in quarters.
    Progress,
}

impl StateFeature {
    /// The bucket names, in index order.
    pub fn bucket_names(self) -> &'static [&'static str] {
        match self {
            Self::LossTrend => &["falling", "flat", "rising"],
            Self::ValGap => &["small", "medium", "large"],
            Self::LrLevel => &["<=1/4", "1/2", "1", "2", ">=4"],
            Self::Progress => &["0-25%", "25-50%", "50-75%", "75-100%"],
        }
    }

    /// The bucket `obs` falls in.
    pub fn bucket(self, obs: &Observation) -> usize {
        match self {
            Self::LossTrend => match obs.loss_trend {
                r if r < 0.97 => 0,
                r if r < 1.0 => 1,
                _ => 2,
            },
            Self::ValGap => match obs.val_gap {
                Some(g) if g >= 0.25 => 2,
                Some(g) if g >= 0.05 => 1,
                _ => 0,
            },
            Self::LrLevel => {
                let level = obs.lr_ratio.max(1e-300).log2().round().clamp(-2.0, 2.0);
                (level + 2.0) as usize
            }
            Self::Progress => ((obs.progress * 4.0).floor().max(0.0) as usize).min(3),
        }
    }
}

/// What a decision is rewarded with, measured at the next decision (or the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reward {
    /// Validation loss then minus validation loss now.
    ValLossDrop,
    /// Validation accuracy now minus then.
    ValAccuracyGain,
    /// Mean training loss of the window before minus this window's.
    TrainLossDrop,
}

/// How the controller learns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ControllerMethod {
    /// A table of action values, updated after each episode from its
    /// transitions (last first); epsilon-greedy while learning.
    QLearning {
        /// Step size of the update.
        alpha: f64,
        /// Discount of the next decision's value.
        gamma: f64,
        /// Exploration per episode.
        epsilon: EpsilonSpec,
    },
    /// A softmax policy over per-state action preferences, moved along the
    /// episode's returns (REINFORCE).
    Reinforce {
        /// Step size of the update.
        lr: f64,
        /// Subtract the mean return of the episodes so far.
        baseline: bool,
    },
}

/// What the agent sees at a decision, before bucketing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// See [`StateFeature::LossTrend`].
    pub loss_trend: f64,
    /// See [`StateFeature::ValGap`].
    pub val_gap: Option<f64>,
    /// The lr now over the file's lr.
    pub lr_ratio: f64,
    /// Steps done over the run's steps.
    pub progress: f64,
}

/// One decision a run made (recorded for learning and for the GUI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Optimizer steps done when it was made; the next step uses `lr`.
    pub step: u64,
    /// The state index.
    pub state: usize,
    /// The action index.
    pub action: usize,
    /// The (peak) lr from this step on.
    pub lr: f64,
    /// Mean training loss since the previous decision.
    pub train_loss: f64,
    /// The validation figures at this step, if the run has a validation split.
    pub val_loss: Option<f64>,
    /// Validation accuracy at this step.
    pub val_accuracy: Option<f64>,
}

/// Which kind of table a policy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Action values: greedy takes the largest.
    QValues,
    /// Softmax preferences: greedy takes the largest.
    Preferences,
}

/// One episode the policy learned from, for the study view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeLog {
    /// The trial's id.
    pub trial: usize,
    /// Sum of its rewards (terminal bonus included).
    pub ret: f64,
    /// Exploration it ran with (Q-learning; 0 for REINFORCE).
    pub epsilon: f64,
    /// (step, lr) of each decision, the file's lr at step 0 first.
    pub lrs: Vec<(u64, f64)>,
}

/// `policy.ron`: the layout it was learned for, its table and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// What `table` holds.
    pub kind: PolicyKind,
    /// Optimizer steps between decisions.
    pub decide_every_steps: u64,
    /// Lr factors, one column of `table` each.
    pub actions: Vec<f64>,
    /// Observed features, first most significant in the state index.
    pub state: Vec<StateFeature>,
    /// Buckets per feature (written so a changed bucketing is noticed).
    pub buckets: Vec<usize>,
    /// One row per state, one value per action.
    pub table: Vec<Vec<f64>>,
    /// Times each (state, action) was taken in the episodes learned from.
    pub visits: Vec<Vec<u32>>,
    /// Mean return of the episodes so far (REINFORCE's baseline).
    pub baseline: f64,
    /// The episodes learned from, in order.
    pub history: Vec<EpisodeLog>,
}

impl Policy {
    /// A fresh (all-zero) policy for `spec`.
    pub fn fresh(spec: &ControllerSpec) -> Self {
        let buckets: Vec<usize> = spec.state.iter().map(|f| f.bucket_names().len()).collect();
        let states = buckets.iter().product::<usize>().max(1);
        Self {
            kind: match spec.method {
                ControllerMethod::QLearning { .. } => PolicyKind::QValues,
                ControllerMethod::Reinforce { .. } => PolicyKind::Preferences,
            },
            decide_every_steps: spec.decide_every_steps,
            actions: spec.actions.clone(),
            state: spec.state.clone(),
            buckets,
            table: vec![vec![0.0; spec.actions.len()]; states],
            visits: vec![vec![0; spec.actions.len()]; states],
            baseline: 0.0,
            history: Vec::new(),
        }
    }

    /// The state index of `obs`.
    pub fn state_of(&self, obs: &Observation) -> usize {
        state_index(&self.state, obs)
    }

    /// The action with the largest value in `state`; on ties (an unvisited
    /// state) the one nearest "keep the lr" (factor 1), so a state the agent
    /// never met leaves the lr alone.
    pub fn greedy(&self, state: usize) -> usize {
        let row = &self.table[state.min(self.table.len().saturating_sub(1))];
        let keep = (self.actions.iter().enumerate())
            .min_by(|a, b| (a.1.ln().abs()).total_cmp(&b.1.ln().abs()))
            .map_or(0, |(i, _)| i);
        let mut best = keep.min(row.len().saturating_sub(1));
        for (a, v) in row.iter().enumerate() {
            if *v > row[best] {
                best = a;
            }
        }
        best
    }

    /// Softmax of `state`'s preferences.
    pub fn probabilities(&self, state: usize) -> Vec<f64> {
        let row = &self.table[state.min(self.table.len().saturating_sub(1))];
        let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - top).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|x| x / sum).collect()
    }

    /// A readable name of `state`, e.g. `LossTrend=falling, Progress=0-25%`.
    pub fn state_label(&self, state: usize) -> String {
        state_label(&self.state, state)
    }

    /// Why this policy cannot steer with `spec`'s layout (None: it fits).
    pub fn differs_from(&self, spec: &ControllerSpec) -> Option<String> {
        let fresh = Self::fresh(spec);
        self.check_with(&fresh.state, &fresh.actions, spec.decide_every_steps)
    }

    /// Whether the file is whole and uses the buckets this build knows.
    pub fn check(&self) -> Result<(), ControllerError> {
        let bad = |m: String| Err(ControllerError::Policy(m));
        let expected: Vec<usize> = self.state.iter().map(|f| f.bucket_names().len()).collect();
        if self.buckets != expected {
            return bad(format!(
                "its state {:?} has {:?} buckets, this trainlab buckets them {:?}",
                self.state, self.buckets, expected
            ));
        }
        let states = expected.iter().product::<usize>().max(1);
        if self.actions.is_empty() || self.actions.iter().any(|a| !(*a > 0.0 && a.is_finite())) {
            return bad(format!(
                "actions {:?} must be positive lr factors",
                self.actions
            ));
        }
        if self.decide_every_steps == 0 {
            return bad("decide_every_steps must be at least 1".into());
        }
        if self.table.len() != states || self.table.iter().any(|r| r.len() != self.actions.len()) {
            return bad(format!(
                "its table must have {states} rows (states) of {} values (actions); it has {} rows",
                self.actions.len(),
                self.table.len()
            ));
        }
        if self.table.iter().flatten().any(|v| !v.is_finite()) {
            return bad("its table holds a value that is not a finite number".into());
        }
        Ok(())
    }

    fn check_with(&self, state: &[StateFeature], actions: &[f64], every: u64) -> Option<String> {
        if self.state != state {
            return Some(format!(
                "it observes {:?}, the study observes {state:?}",
                self.state
            ));
        }
        if self.actions != actions {
            return Some(format!(
                "its actions are {:?}, the study's are {actions:?}",
                self.actions
            ));
        }
        (self.decide_every_steps != every).then(|| {
            format!(
                "it decides every {} steps, the study every {every}",
                self.decide_every_steps
            )
        })
    }
}

/// The mixed-radix state index of `obs` over `features`.
pub fn state_index(features: &[StateFeature], obs: &Observation) -> usize {
    features
        .iter()
        .fold(0, |index, f| index * f.bucket_names().len() + f.bucket(obs))
}

/// The readable name of state `index` over `features`.
pub fn state_label(features: &[StateFeature], index: usize) -> String {
    let mut rest = index;
    let mut parts: Vec<String> = features
        .iter()
        .rev()
        .map(|f| {
            let names = f.bucket_names();
            let b = rest % names.len();
            rest /= names.len();
            format!("{f:?}={}", names[b])
        })
        .collect();
    parts.reverse();
    parts.join(", ")
}

/// The policy as the file holds it (rows of the table on one line each).
pub fn policy_to_ron(policy: &Policy) -> String {
    super::load::pretty_ron(policy, 2)
}

/// Why a controller policy file or a `search: Controller(..)` cannot be used.
/// Every message about a file names it.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The policy file could not be read.
    #[error(
        "cannot read the controller policy {}: {}",
        path.display(),
        crate::util::atomic::os_words(source)
    )]
    Read {
        /// The policy file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file is not RON of a policy.
    #[error("{}:{line}:{col}: not a controller policy: {code}", path.display())]
    Parse {
        /// The policy file.
        path: PathBuf,
        /// Line of the problem (from 1).
        line: usize,
        /// Column of the problem (from 1).
        col: usize,
        /// RON's description.
        code: String,
    },
    /// The policy file parses but is torn or made by another build.
    #[error("the controller policy {} does not fit: {problem}", path.display())]
    Unfit {
        /// The policy file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A policy learned for another controller layout than the study's.
    #[error("{} was learned for another controller: {why}", path.display())]
    OtherLayout {
        /// The policy file.
        path: PathBuf,
        /// How the layouts differ.
        why: String,
    },
    /// A policy that is torn or made by another build (no file involved).
    #[error("{0}")]
    Policy(String),
    /// A `search: Controller(..)` setting out of range.
    #[error("search: Controller {0}")]
    Setting(String),
    /// A controller study whose other fields do not suit a controller.
    #[error("{0}")]
    Study(&'static str),
}

/// Reads a policy file; every error names the file.
pub fn load_policy(path: &Path) -> Result<Policy, ControllerError> {
    let text = std::fs::read_to_string(path).map_err(|source| ControllerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let policy: Policy =
        super::load::ron_options()
            .from_str(&text)
            .map_err(|e| ControllerError::Parse {
                path: path.to_path_buf(),
                line: e.span.start.line,
                col: e.span.start.col,
                code: e.code.to_string(),
            })?;
    policy.check().map_err(|e| ControllerError::Unfit {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    Ok(policy)
}

/// Problems with a `search: Controller(..)` (None: it is sound).
pub fn check_spec(spec: &ControllerSpec) -> Result<(), ControllerError> {
    let bad = |m: String| Err(ControllerError::Setting(m));
    if spec.episodes == 0 || spec.decide_every_steps == 0 {
        return bad("needs episodes >= 1 and decide_every_steps >= 1".into());
    }
    if spec.actions.is_empty() || spec.actions.iter().any(|a| !(*a > 0.0 && a.is_finite())) {
        return bad(format!(
            "actions {:?}: give lr factors > 0, e.g. [0.5, 1.0, 2.0]",
            spec.actions
        ));
    }
    let twice = (spec.state.iter().enumerate()).any(|(i, f)| spec.state[..i].contains(f));
    if spec.state.is_empty() || twice {
        return bad(
            "state: list each of LossTrend, ValGap, LrLevel, Progress at most once, at least one"
                .into(),
        );
    }
    match &spec.method {
        ControllerMethod::QLearning {
            alpha,
            gamma,
            epsilon,
        } => {
            if !(*alpha > 0.0 && *alpha <= 1.0 && (0.0..=1.0).contains(gamma)) {
                return bad(format!(
                    "QLearning needs alpha in (0, 1] and gamma in [0, 1] (alpha {alpha}, gamma {gamma})"
                ));
            }
            if !(0.0..=1.0).contains(&epsilon.start) || !(0.0..=1.0).contains(&epsilon.end) {
                return bad("QLearning epsilon start and end must be in [0, 1]".into());
            }
        }
        ControllerMethod::Reinforce { lr, .. } if !(*lr > 0.0 && lr.is_finite()) => {
            return bad(format!("Reinforce lr {lr} must be > 0"));
        }
        ControllerMethod::Reinforce { .. } => {}
    }
    Ok(())
}

/// A Q-learning controller over all four state features, for tests here and in
/// the schedule that runs it.
#[cfg(test)]
pub(crate) fn example(episodes: usize) -> ControllerSpec {
    ControllerSpec {
        episodes,
        decide_every_steps: 10,
        actions: vec![0.5, 1.0, 2.0],
        state: vec![
            StateFeature::LossTrend,
            StateFeature::ValGap,
            StateFeature::LrLevel,
            StateFeature::Progress,
        ],
        reward: Reward::ValLossDrop,
        method: ControllerMethod::QLearning {
            alpha: 0.3,
            gamma: 0.9,
            epsilon: EpsilonSpec::default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ControllerSpec {
        example(4)
    }

    #[test]
    fn states_are_mixed_radix_over_the_buckets() {
        let p = Policy::fresh(&spec());
        assert_eq!(p.table.len(), 3 * 3 * 5 * 4);
        let obs = Observation {
            loss_trend: 1.2,
            val_gap: Some(0.1),
            lr_ratio: 0.25,
            progress: 0.99,
        };
        let s = p.state_of(&obs);
        assert_eq!(s, ((2 * 3 + 1) * 5) * 4 + 3);
        assert_eq!(
            p.state_label(s),
            "LossTrend=rising, ValGap=medium, LrLevel=<=1/4, Progress=75-100%"
        );
        assert!(p.check().is_ok());
    }

    #[test]
    fn a_policy_for_another_layout_says_what_differs() {
        let p = Policy::fresh(&spec());
        let mut other = spec();
        other.actions = vec![0.5, 2.0];
        assert!(p.differs_from(&other).expect("differs").contains("actions"));
        other = spec();
        other.state.pop();
        assert!(
            p.differs_from(&other)
                .expect("differs")
                .contains("observes")
        );
        assert_eq!(p.differs_from(&spec()), None);
        let mut torn = p.clone();
        torn.table.pop();
        assert!(
            torn.check()
                .expect_err("short")
                .to_string()
                .contains("rows")
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = spec();
        s.actions = vec![0.0];
        assert!(
            check_spec(&s)
                .expect_err("zero")
                .to_string()
                .contains("actions")
        );
        s = spec();
        s.state = vec![StateFeature::Progress, StateFeature::Progress];
        assert!(
            check_spec(&s)
                .expect_err("twice")
                .to_string()
                .contains("at most once")
        );
    }
}
