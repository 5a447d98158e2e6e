//! Scheduled optimizer changes (`schedule.changes`): the optimizer settings that
//! hold from each listed epoch on, resolved once so the training loop only swaps
//! them in. Population-based training writes its hyperparameter schedule here, so
//! a member's whole history replays as one experiment.
//!
//! Contract: changes apply in epoch (or step) order and accumulate; only
//! `optimizer.*` paths may change, and the optimizer keeps its kind (its state
//! carries over). A file's changes are all by epoch (PBT) or all by step (a
//! learned controller's decisions).

use std::mem::discriminant;

use super::experiment::{DatasetSpec, Experiment, OptimizerSpec};
use super::overrides::apply_override;
use super::validate::ValidationError;

/// When a scheduled change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAt {
    /// The first step of this epoch.
    Epoch(usize),
    /// This optimizer step (counted from 0).
    Step(u64),
}

/// The optimizer in force from each change on, in order.
pub fn scheduled_optimizers(
    exp: &Experiment,
) -> Result<Vec<(ChangeAt, OptimizerSpec)>, ValidationError> {
    let changes = &exp.schedule.changes;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    if matches!(exp.dataset, DatasetSpec::Gridworld(_)) {
        return Err(ValidationError::new(
            "schedule.changes",
            "gridworld runs count episodes, not epochs; leave changes empty",
        ));
    }
    // Overrides validate what they produce: without the changes, so this does
    // not come back here.
    let mut current = exp.clone();
    current.schedule.changes.clear();
    let mut out = Vec::with_capacity(changes.len());
    let mut last_epoch = 0;
    let by_step = changes[0].step.is_some();
    let mut last_step = 0;
    for (i, change) in changes.iter().enumerate() {
        let field = format!("schedule.changes.{i}");
        if change.step.is_some() != by_step {
            return Err(ValidationError::new(
                field,
                "give every change an epoch or every change a step, not both kinds",
            ));
        }
        if let Some(step) = change.step {
            if step == 0 || step <= last_step || change.epoch != 0 {
                return Err(ValidationError::new(
                    format!("{field}.step"),
                    format!(
                        "{step} must be at least 1, come after the change before it, and \
                         stand without an epoch"
                    ),
                ));
            }
            last_step = step;
        } else if change.epoch == 0
            || change.epoch >= exp.training.epochs
            || change.epoch <= last_epoch && i > 0
        {
            return Err(ValidationError::new(
                format!("{field}.epoch"),
                format!(
                    "{} must be in 1..{} (epochs count from 0; the first is the file's own \
                     settings) and come after the change before it",
                    change.epoch, exp.training.epochs
                ),
            ));
        }
        last_epoch = change.epoch;
        for (path, value) in &change.set {
            if !path.starts_with("optimizer.") {
                return Err(ValidationError::new(
                    format!("{field}.set"),
                    format!(
                        "`{path}`: only optimizer settings (optimizer.lr, ...) can change during a run"
                    ),
                ));
            }
            current = apply_override(&current, &format!("{path}={value}"))
                .map_err(|e| ValidationError::new(format!("{field}.set"), e.to_string()))?;
        }
        if discriminant(&current.optimizer) != discriminant(&exp.optimizer) {
            return Err(ValidationError::new(
                format!("{field}.set"),
                "the optimizer keeps its kind during a run (its state carries over)",
            ));
        }
        let at = change
            .step
            .map_or(ChangeAt::Epoch(change.epoch), ChangeAt::Step);
        out.push((at, current.optimizer.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::experiment::ScheduledChange;

    fn with(changes: &[(usize, &str, &str)]) -> Experiment {
        let mut exp = Experiment::default();
        exp.training.epochs = 5;
        exp.schedule.changes = changes
            .iter()
            .map(|(epoch, path, value)| ScheduledChange {
                epoch: *epoch,
                step: None,
                set: BTreeMap::from([(path.to_string(), value.to_string())]),
            })
            .collect();
        exp
    }

    #[test]
    fn changes_accumulate_in_epoch_order() {
        let exp = with(&[
            (1, "optimizer.lr", "0.01"),
            (3, "optimizer.Adam.weight_decay", "0.001"),
        ]);
        let out = scheduled_optimizers(&exp).expect("valid");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, ChangeAt::Epoch(1));
        assert_eq!(
            out[1].1.lr(),
            0.01,
            "the lr set at epoch 1 still holds at 3"
        );
        assert!(
            matches!(out[1].1, OptimizerSpec::Adam { weight_decay, .. } if weight_decay == 0.001)
        );
        crate::spec::validate(&exp).expect("validate accepts it");
    }

    #[test]
    fn bad_changes_say_what_is_wrong() {
        for (exp, what) in [
            (with(&[(0, "optimizer.lr", "0.01")]), "must be in 1..5"),
            (with(&[(5, "optimizer.lr", "0.01")]), "must be in 1..5"),
            (
                with(&[(2, "optimizer.lr", "0.01"), (2, "optimizer.lr", "0.02")]),
                "after the change",
            ),
            (
                with(&[(1, "training.batch_size", "8")]),
                "only optimizer settings",
            ),
            (with(&[(1, "optimizer.lr", "-1")]), "must be > 0"),
            (with(&[(1, "optimizer.lrr", "0.1")]), "no field"),
        ] {
            let err = crate::spec::validate(&exp).expect_err(what).to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
    }
}
