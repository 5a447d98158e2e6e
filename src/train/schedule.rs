//! Learning rate as a pure function of the step: linear warmup, then constant,
//! step decay or cosine. The peak may be changed mid-run by a control message.
//!
//! The decay is planned over `schedule.decay_epochs` (default: the run's epochs).
//! A run extended past that plan keeps the lr its plan ended with: a cosine stays
//! at its floor instead of being stretched over the longer run (which would make
//! the lr jump back up at the step the extension starts).

use crate::spec::{LrDecay, ScheduleSpec};

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
        LrDecay::Constant => peak,
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
