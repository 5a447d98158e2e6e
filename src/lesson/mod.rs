//! Verifying a lesson: train the runs it needs (its `steps`, then itself) into a
//! scratch folder and measure every claim of its `checks` (see `spec::lesson`).
//!
//! Nothing here prints: [`verify`] reports progress through a callback and
//! returns the measured claims; `trainlab lesson verify` shows them.

mod error;
mod measure;
mod plan;

use std::path::{Path, PathBuf};

pub use error::Unmeasured;
pub use measure::Measured;
pub use plan::{Run, RunKey, plan_runs, unmet_step};

use crate::events::{FailureKind, TrainEvent};
use crate::spec::{Check, Expect, LessonFigure, OtherRun};
use crate::train::{StartOptions, start};

/// Why a lesson could not be verified at all (exit 2): the message names the
/// file, line and column, or the path, and what to change.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLesson(pub String);

impl std::fmt::Display for BadLesson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One claim with what was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The check as written.
    pub check: Check,
    /// Whose figure it is, e.g. `the lesson` or `step "mlp"`.
    pub whose: String,
    /// The measured value, or why it could not be measured.
    pub value: Result<f64, Unmeasured>,
    /// What it was held against, in words (e.g. `at most 20.00 %`, `< 101,770
    /// (step "mlp")`), or why the other run has no such figure.
    pub expected: Result<String, Unmeasured>,
    /// Whether the claim holds (false when anything could not be measured).
    pub holds: bool,
}

/// Everything `lesson verify` found for one lesson file.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The lesson file.
    pub file: PathBuf,
    /// One per check, in file order.
    pub outcomes: Vec<Outcome>,
    /// Seconds each run took to train, in the order they ran.
    pub timings: Vec<(String, f64)>,
}

impl Report {
    /// Whether every claim holds.
    pub fn all_hold(&self) -> bool {
        self.outcomes.iter().all(|o| o.holds)
    }
}

/// Trains the lesson's steps and the lesson itself into folders under `scratch`
/// (which must be empty or absent; the caller removes it) and measures its checks.
/// `overrides` are `--set` assignments for the lesson's own run and for the steps
/// that are the lesson itself. `progress` gets one line per run started and ended.
pub fn verify(
    file: &Path,
    overrides: &[String],
    scratch: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, BadLesson> {
    let runs = plan_runs(file, overrides)?;
    let mut measured: Vec<(RunKey, Measured)> = Vec::new();
    let mut timings = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut exp = run.experiment.clone();
        // A run that starts from an earlier step's folder starts from where
        // that step was trained here.
        let trained_here = exp.training.init_from.as_ref().and_then(|from| {
            runs[..i]
                .iter()
                .find(|r| r.out.as_ref() == Some(from))
                .map(|done| scratch.join(done.folder_name()))
        });
        if trained_here.is_some() {
            exp.training.init_from = trained_here;
        }
        let dir = scratch.join(run.folder_name());
        progress(&format!(
            "[{}/{}] training {} ({})",
            i + 1,
            runs.len(),
            run.key.describe(),
            run.source
        ));
        let began = std::time::Instant::now();
        let m = train(exp, dir);
        let seconds = began.elapsed().as_secs_f64();
        if let Some((FailureKind::BadInput, _, message)) = &m.failure {
            return Err(BadLesson(format!(
                "{}: {} cannot run: {message}",
                file.display(),
                run.key.describe()
            )));
        }
        progress(&format!(
            "[{}/{}] {} done in {seconds:.1} s{}",
            i + 1,
            runs.len(),
            run.key.describe(),
            m.failure
                .as_ref()
                .map_or(String::new(), |(_, step, msg)| format!(
                    " (failed at step {step}: {msg})"
                ))
        ));
        timings.push((run.key.describe(), seconds));
        measured.push((run.key.clone(), m));
    }
    let exp = &runs
        .last()
        .ok_or_else(|| BadLesson(format!("{}: nothing to run", file.display())))?
        .experiment;
    let find = |key: &RunKey| measured.iter().find(|(k, _)| k == key).map(|(_, m)| m);
    let outcomes = exp
        .checks
        .iter()
        .map(|check| {
            let key = match &check.of {
                Some(step) => RunKey::Step(step.clone()),
                None => RunKey::Lesson,
            };
            let value = find(&key).map_or(Err(Unmeasured::NotRun), |m| m.figure(check.figure));
            let (expected, holds) = judge(check, &value, |other| {
                let key = RunKey::from_other(other);
                let m = find(&key).ok_or(Unmeasured::NotRun)?;
                m.figure(check.figure)
                    .map(|v| (v, key.describe()))
                    .map_err(|e| Unmeasured::OtherRun {
                        whose: key.describe(),
                        source: Box::new(e),
                    })
            });
            Outcome {
                check: check.clone(),
                whose: key.describe(),
                value,
                expected,
                holds,
            }
        })
        .collect();
    Ok(Report {
        file: file.to_path_buf(),
        outcomes,
        timings,
    })
}

/// Compares a measured value with what the check expects; `other` measures
/// the same figure of another run.
fn judge(
    check: &Check,
    value: &Result<f64, Unmeasured>,
    other: impl Fn(&OtherRun) -> Result<(f64, String), Unmeasured>,
) -> (Result<String, Unmeasured>, bool) {
    let shown = |v: f64| format_value(check.figure, v);
    let v = value.as_ref().ok().copied();
    match &check.is {
        Expect::AtMost(x) => (
            Ok(format!("at most {}", shown(*x))),
            v.is_some_and(|v| v <= *x),
        ),
        Expect::AtLeast(x) => (
            Ok(format!("at least {}", shown(*x))),
            v.is_some_and(|v| v >= *x),
        ),
        Expect::Between(lo, hi) => (
            Ok(format!("between {} and {}", shown(*lo), shown(*hi))),
            v.is_some_and(|v| *lo <= v && v <= *hi),
        ),
        Expect::Exactly(x) => (
            Ok(format!("exactly {}", shown(*x))),
            v.is_some_and(|v| v == *x),
        ),
        Expect::Yes => (Ok("yes".into()), v.is_some_and(|v| v != 0.0)),
        Expect::No => (Ok("no".into()), v.is_some_and(|v| v == 0.0)),
        Expect::LessThan(o) | Expect::GreaterThan(o) => {
            let less = matches!(check.is, Expect::LessThan(_));
            match other(o) {
                Ok((x, whose)) => (
                    Ok(format!(
                        "{} {} ({whose})",
                        if less { "less than" } else { "greater than" },
                        shown(x)
                    )),
                    v.is_some_and(|v| if less { v < x } else { v > x }),
                ),
                Err(e) => (Err(e), false),
            }
        }
    }
}

/// A figure as people read it: accuracies in percent, counts with thousands
/// separators, yes/no in words.
pub fn format_value(figure: LessonFigure, v: f64) -> String {
    match figure {
        f if f.is_yes_no() => if v != 0.0 { "yes" } else { "no" }.to_string(),
        f if f.is_fraction() => format!("{:.2} %", v * 100.0),
        LessonFigure::Parameters
        | LessonFigure::Steps
        | LessonFigure::GreedyPathLength
        | LessonFigure::OptimalPathLength
        | LessonFigure::FirstOptimalEpisode => crate::util::text::thousands(v.round() as u64),
        LessonFigure::FinalLr | LessonFigure::GradientRatio => format!("{v:.3e}"),
        _ => format!("{v:.4}"),
    }
}

/// Trains one run into `dir`, keeping the figures checks read.
fn train(exp: crate::spec::Experiment, dir: PathBuf) -> Measured {
    let handle = start(
        exp,
        StartOptions {
            run_dir: Some(dir),
            ..StartOptions::default()
        },
    );
    let mut m = Measured::default();
    for event in handle.events().iter() {
        match event {
            TrainEvent::Step(s) => m.step(&s),
            TrainEvent::Eval(e) => m.eval(&e),
            TrainEvent::Episodes(e) => m.episodes = Some(e),
            TrainEvent::LayerStats(l) => m.layer_stats(l),
            TrainEvent::Finished(s) => m.summary = Some(s),
            TrainEvent::Failed {
                step,
                kind,
                message,
            } => m.failure = Some((kind, step, message)),
            _ => {}
        }
    }
    handle.join();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(is: Expect) -> Check {
        Check {
            claim: "x".into(),
            figure: LessonFigure::TestAccuracy,
            of: None,
            is,
        }
    }

    #[test]
    fn thresholds_hold_and_fail() {
        let none = |_: &OtherRun| Err(Unmeasured::NotRun);
        assert!(judge(&check(Expect::AtMost(0.2)), &Ok(0.1), none).1);
        assert!(!judge(&check(Expect::AtMost(0.2)), &Ok(0.3), none).1);
        assert!(judge(&check(Expect::AtLeast(0.2)), &Ok(0.2), none).1);
        assert!(!judge(&check(Expect::Between(0.2, 0.4)), &Ok(0.41), none).1);
        assert!(judge(&check(Expect::Between(0.2, 0.4)), &Ok(0.3), none).1);
        // A value that could not be measured never holds.
        assert!(
            !judge(
                &check(Expect::AtLeast(0.0)),
                &Err(Unmeasured::Unfinished),
                none
            )
            .1
        );
    }

    #[test]
    fn comparisons_use_the_other_run() {
        let other = |_: &OtherRun| Ok((101_770.0, "step \"mlp\"".to_string()));
        let less = check(Expect::LessThan(OtherRun::Step("mlp".into())));
        let (expected, holds) = judge(&less, &Ok(105_866.0), other);
        assert!(!holds);
        assert!(expected.expect("measured").contains("step \"mlp\""));
        assert!(judge(&less, &Ok(50_000.0), other).1);
        let greater = check(Expect::GreaterThan(OtherRun::Step("mlp".into())));
        assert!(judge(&greater, &Ok(105_866.0), other).1);
        let missing = |_: &OtherRun| Err(Unmeasured::NotRun);
        assert!(!judge(&greater, &Ok(1.0), missing).1);
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(format_value(LessonFigure::Parameters, 105_866.0), "105,866");
        assert_eq!(format_value(LessonFigure::TestAccuracy, 0.0981), "9.81 %");
        assert_eq!(format_value(LessonFigure::Diverged, 0.0), "no");
    }
}
