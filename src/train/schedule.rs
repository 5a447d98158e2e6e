//! Learning rate as a pure function of the step: linear warmup, then constant,
//! step decay or cosine. The peak may be changed mid-run by a control message,
//! or by a learned controller ([`LrSteerer`]) at its decision steps.
//!
//! Controller contract: a decision is made after every `decide_every_steps`
//! optimizer steps (never at step 0 or the last step) from the bucketed
//! observation of the run so far; the action multiplies the peak lr from the
//! next step on. The choice is a pure function of (state, decision number), so
//! a run steered by the same agent makes the same decisions.
//!
//! The decay is planned over `schedule.decay_epochs` (default: the run's epochs).
//! A run extended past that plan keeps the lr its plan ended with: a cosine stays
//! at its floor instead of being stretched over the longer run (which would make
//! the lr jump back up at the step the extension starts).

use std::sync::{Arc, Mutex};

use crate::spec::{
    ControllerError, Decision, Experiment, LrDecay, Observation, Policy, ScheduleSpec, load_policy,
};

/// The steps a decay is planned over: `schedule.decay_epochs` (else the
/// run's `epochs`) epochs of `steps_per_epoch` steps.
pub fn decay_steps(schedule: &ScheduleSpec, epochs: usize, steps_per_epoch: u64) -> u64 {
    schedule.decay_epochs.unwrap_or(epochs) as u64 * steps_per_epoch
}

/// Learning rate for optimizer step `step` (0-based) of a decay planned over
/// `total_steps` (see [`decay_steps`]); later steps keep the lr of its last step.
pub fn lr_at(
    schedule: &ScheduleSpec,
    peak: f64,
    step: u64,
    total_steps: u64,
    steps_per_epoch: u64,
) -> f64 {
    let warmup = schedule.warmup_steps as u64;
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    match &schedule.decay {
        LrDecay::Constant | LrDecay::Controlled { .. } => peak,
        LrDecay::Step {
            every_epochs,
            gamma,
        } => {
            let epoch = step / steps_per_epoch.max(1);
            let drops = epoch / (*every_epochs as u64).max(1);
            peak * gamma.powi(drops.min(i32::MAX as u64) as i32)
        }
        LrDecay::Cosine { final_fraction } => {
            // The last step (total_steps - 1) lands exactly on the floor.
            let span = total_steps.saturating_sub(warmup + 1).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            let floor = peak * final_fraction;
            floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// Picks an action index from (state, decision number).
pub type Choose = Arc<dyn Fn(usize, usize) -> usize + Send + Sync>;

/// A learning-rate agent handed to a run (a controller study's episode): its
/// layout, how it chooses, and where the run writes its decisions.
#[derive(Clone)]
pub struct LrAgent {
    /// The layout (features, actions, decision interval) and table.
    pub policy: Arc<Policy>,
    /// The behaviour: greedy, epsilon-greedy or sampled, seeded per decision.
    pub choose: Choose,
    /// Every decision the run made, in order (read after the run).
    pub decisions: Arc<Mutex<Vec<Decision>>>,
}

impl LrAgent {
    /// The greedy policy (no exploration).
    pub fn greedy(policy: Policy) -> Self {
        let policy = Arc::new(policy);
        let p = Arc::clone(&policy);
        Self {
            policy,
            choose: Arc::new(move |state, _| p.greedy(state)),
            decisions: Arc::default(),
        }
    }
}

impl std::fmt::Debug for LrAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrAgent")
            .field("actions", &self.policy.actions)
            .field("every", &self.policy.decide_every_steps)
            .finish_non_exhaustive()
    }
}

/// `path` as given, or, when it is relative and missing here, the installed
/// copy under `/usr/share/trainlab` (the lessons' policies) if there is one.
fn installed_or(path: &std::path::Path) -> std::path::PathBuf {
    installed_under(std::path::Path::new(crate::util::install::SHARE_DIR), path)
}

/// [`installed_or`] with the installation directory given (tests use a scratch one).
fn installed_under(share: &std::path::Path, path: &std::path::Path) -> std::path::PathBuf {
    let installed = share.join(path);
    if path.is_relative() && !path.exists() && installed.exists() {
        installed
    } else {
        path.to_path_buf()
    }
}

/// The training loop's side of a controller: the loss window it observes and
/// the decisions it makes.
pub(crate) struct LrSteerer {
    agent: LrAgent,
    /// The file's lr (LrLevel is measured against it).
    file_lr: f64,
    /// (sum of step losses, steps) since the last decision.
    window: (f64, u64),
    /// The previous window's mean (before the first decision: the first
    /// logged loss).
    previous: Option<f64>,
}

impl LrSteerer {
    /// The run's controller: the agent given (a study episode), else the greedy
    /// policy of `schedule.decay: Controlled(policy)`, else none. A policy file
    /// that cannot be read or does not fit is an error naming it.
    pub(crate) fn for_run(
        exp: &Experiment,
        agent: Option<LrAgent>,
    ) -> Result<Option<Self>, ControllerError> {
        let agent = match (agent, &exp.schedule.decay) {
            (Some(a), _) => a,
            (None, LrDecay::Controlled { policy }) => {
                LrAgent::greedy(load_policy(&installed_or(policy))?)
            }
            (None, _) => return Ok(None),
        };
        Ok(Some(Self {
            agent,
            file_lr: exp.optimizer.lr(),
            window: (0.0, 0),
            previous: None,
        }))
    }

    /// Adds a logged mean loss over `steps` steps to the window.
    pub(crate) fn observe_loss(&mut self, mean: f64, steps: u64) {
        if self.previous.is_none() && self.window.1 == 0 {
            self.previous = Some(mean);
        }
        self.window.0 += mean * steps as f64;
        self.window.1 += steps;
    }

    /// Whether a decision is due after `step` steps of `total`.
    pub(crate) fn due(&self, step: u64, total: u64) -> bool {
        let every = self.agent.policy.decide_every_steps.max(1);
        step > 0 && step < total && step.is_multiple_of(every)
    }

    /// Decides after `step` steps of `total` with the peak lr at `peak` and the
    /// latest validation (loss, accuracy); records and returns the decision.
    pub(crate) fn decide(
        &mut self,
        step: u64,
        total: u64,
        peak: f64,
        val: Option<(f64, f64)>,
    ) -> Decision {
        let mean = self.window.0 / self.window.1.max(1) as f64;
        let before = self.previous.unwrap_or(mean);
        let obs = Observation {
            loss_trend: if before > 0.0 { mean / before } else { 1.0 },
            val_gap: val.map(|(l, _)| (l - mean) / mean.max(1e-12)),
            lr_ratio: peak / self.file_lr.max(f64::MIN_POSITIVE),
            progress: step as f64 / total.max(1) as f64,
        };
        let policy = &self.agent.policy;
        let state = policy.state_of(&obs);
        let mut decisions = self
            .agent
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let action = (self.agent.choose)(state, decisions.len()).min(policy.actions.len() - 1);
        let factor = policy.actions[action];
        let decision = Decision {
            step,
            state,
            action,
            lr: if factor == 1.0 { peak } else { peak * factor },
            train_loss: mean,
            val_loss: val.map(|v| v.0),
            val_accuracy: val.map(|v| v.1),
        };
        decisions.push(decision.clone());
        self.previous = Some(mean);
        self.window = (0.0, 0);
        decision
    }

    /// A readable name of `state`.
    pub(crate) fn state_label(&self, state: usize) -> String {
        self.agent.policy.state_label(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(warmup: usize, decay: LrDecay) -> ScheduleSpec {
        ScheduleSpec {
            warmup_steps: warmup,
            decay,
            ..ScheduleSpec::default()
        }
    }

    #[test]
    fn an_extended_run_keeps_the_planned_decay() {
        let mut s = sched(
            0,
            LrDecay::Cosine {
                final_fraction: 0.1,
            },
        );
        // Planned for 10 epochs of 10 steps, now trained for 20.
        assert_eq!(decay_steps(&s, 20, 10), 200, "no plan: the run's epochs");
        s.decay_epochs = Some(10);
        let total = decay_steps(&s, 20, 10);
        assert_eq!(total, 100);
        let end = lr_at(&s, 2.0, 99, total, 10);
        assert!(
            (end - 0.2).abs() < 1e-9,
            "the plan ends on the floor: {end}"
        );
        for step in 100..200 {
            assert_eq!(lr_at(&s, 2.0, step, total, 10), end, "step {step} stays");
        }
    }

    #[test]
    fn constant_and_warmup() {
        let s = sched(4, LrDecay::Constant);
        let lrs: Vec<f64> = (0..6).map(|i| lr_at(&s, 1.0, i, 100, 10)).collect();
        assert_eq!(lrs, vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn step_decay_drops_per_epoch_group() {
        let s = sched(
            0,
            LrDecay::Step {
                every_epochs: 2,
                gamma: 0.1,
            },
        );
        assert_eq!(lr_at(&s, 1.0, 19, 100, 10), 1.0);
        assert!((lr_at(&s, 1.0, 20, 100, 10) - 0.1).abs() < 1e-12);
        assert!((lr_at(&s, 1.0, 45, 100, 10) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn cosine_after_warmup_starts_at_the_peak_and_halves_at_mid_span() {
        let s = sched(
            2,
            LrDecay::Cosine {
                final_fraction: 0.1,
            },
        );
        // 13 steps, 2 of warmup: the decay spans steps 2..=12, 10 intervals.
        assert_eq!(lr_at(&s, 2.0, 1, 13, 10), 2.0, "the warmup's last step");
        assert_eq!(lr_at(&s, 2.0, 2, 13, 10), 2.0, "the decay's first step");
        let mid = lr_at(&s, 2.0, 7, 13, 10);
        assert!(
            (mid - 1.1).abs() < 1e-9,
            "5 of 10 intervals: halfway, {mid}"
        );
        let end = lr_at(&s, 2.0, 12, 13, 10);
        assert!(
            (end - 0.2).abs() < 1e-9,
            "the last step is the floor: {end}"
        );
    }

    fn policy() -> Policy {
        Policy::fresh(&crate::spec::controller::example(1))
    }

    /// What the agent was asked: (state, number of actions), in order.
    type Asked = Arc<Mutex<Vec<(usize, usize)>>>;

    /// A steerer whose agent answers `answers` in turn and records what it was asked.
    fn steerer(answers: Vec<usize>) -> (LrSteerer, Asked) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        let agent = LrAgent {
            policy: Arc::new(policy()),
            choose: Arc::new(move |state, n| {
                log.lock().unwrap().push((state, n));
                answers[n]
            }),
            decisions: Arc::default(),
        };
        let mut exp = Experiment::default();
        exp.optimizer.set_lr(0.1);
        let s = LrSteerer::for_run(&exp, Some(agent))
            .unwrap()
            .expect("an agent steers");
        (s, asked)
    }

    #[test]
    fn decisions_are_due_every_n_steps_strictly_inside_the_run() {
        let (s, _) = steerer(vec![]);
        let due: Vec<u64> = (0..=40).filter(|&step| s.due(step, 30)).collect();
        assert_eq!(
            due,
            vec![10, 20],
            "not at step 0, not at the last step (30)"
        );
    }

    #[test]
    fn a_decision_observes_the_window_and_scales_the_peak() {
        let (mut s, asked) = steerer(vec![99, 1]);
        assert_eq!(s.file_lr, 0.1);
        // Window 1: losses 2.0 over 4 steps, 1.0 over 2: mean 10/6, against the
        // first logged loss 2.0 (falling); validation loss 2.0 is 20 % above it
        // (medium); lr 0.4 is 4x the file's (>=4); step 10 of 30 (25-50%).
        s.observe_loss(2.0, 4);
        s.observe_loss(1.0, 2);
        let first = s.decide(10, 30, 0.4, Some((2.0, 0.9)));
        // ((falling 0 * 3 + medium 1) * 5 + >=4 4) * 4 + 25-50% 1
        let state = 37;
        assert_eq!(
            first,
            Decision {
                step: 10,
                state,
                action: 2,
                lr: 0.4 * 2.0,
                train_loss: 10.0 / 6.0,
                val_loss: Some(2.0),
                val_accuracy: Some(0.9),
            },
            "action 99 is capped at the last (x2)"
        );
        assert_eq!(
            s.state_label(state),
            "LossTrend=falling, ValGap=medium, LrLevel=>=4, Progress=25-50%"
        );
        // Window 2: 1.0 over 2 steps against the previous window's 10/6
        // (falling); no validation (small); lr 0.1 is the file's (1); step 20 of
        // 30 (50-75%); the agent keeps the lr (x1).
        s.observe_loss(1.0, 2);
        let second = s.decide(20, 30, 0.1, None);
        assert_eq!(
            second,
            Decision {
                step: 20,
                state: 10, // ((0 * 3 + 0) * 5 + 2) * 4 + 2
                action: 1,
                lr: 0.1,
                train_loss: 1.0,
                val_loss: None,
                val_accuracy: None,
            }
        );
        assert_eq!(*asked.lock().unwrap(), vec![(state, 0), (10, 1)]);
        assert_eq!(*s.agent.decisions.lock().unwrap(), vec![first, second]);
    }

    #[test]
    fn a_run_is_steered_by_the_agent_given_else_by_its_policy_file_else_not() {
        let exp = Experiment::default();
        assert!(matches!(LrSteerer::for_run(&exp, None), Ok(None)));
        let mut controlled = exp.clone();
        controlled.schedule.decay = LrDecay::Controlled {
            policy: "no/such/policy.ron".into(),
        };
        let err = LrSteerer::for_run(&controlled, None)
            .err()
            .expect("a missing policy file is an error");
        assert!(err.to_string().contains("no/such/policy.ron"), "{err}");
        let agent = LrAgent::greedy(policy());
        assert_eq!(
            format!("{agent:?}"),
            "LrAgent { actions: [0.5, 1.0, 2.0], every: 10, .. }"
        );
        // An unvisited state: greedy keeps the lr (the action nearest x1).
        assert_eq!((agent.choose)(5, 0), 1);
        let s = LrSteerer::for_run(&controlled, Some(agent)).unwrap();
        assert_eq!(s.map(|s| s.file_lr), Some(exp.optimizer.lr()));
    }

    #[test]
    fn a_relative_policy_missing_here_is_read_from_the_installed_copy() {
        use std::path::{Path, PathBuf};
        let share = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(share.path().join("policies")).unwrap();
        std::fs::write(share.path().join("policies/p.ron"), "").unwrap();
        std::fs::write(share.path().join("Cargo.toml"), "").unwrap();
        let under = |p: &str| installed_under(share.path(), Path::new(p));
        assert_eq!(under("policies/p.ron"), share.path().join("policies/p.ron"));
        assert_eq!(
            under("Cargo.toml"),
            PathBuf::from("Cargo.toml"),
            "here first"
        );
        assert_eq!(under("no/such.ron"), PathBuf::from("no/such.ron"));
        let absolute = share.path().join("policies/other.ron");
        assert_eq!(installed_under(share.path(), &absolute), absolute);
        assert_eq!(
            installed_or(Path::new("Cargo.toml")),
            PathBuf::from("Cargo.toml")
        );
    }

    #[test]
    fn cosine_goes_from_peak_to_floor() {
        let s = sched(
            0,
            LrDecay::Cosine {
                final_fraction: 0.1,
            },
        );
        assert_eq!(lr_at(&s, 2.0, 0, 101, 10), 2.0);
        assert!((lr_at(&s, 2.0, 50, 101, 10) - 1.1).abs() < 1e-9);
        assert!((lr_at(&s, 2.0, 101, 101, 10) - 0.2).abs() < 1e-9);
    }
}
