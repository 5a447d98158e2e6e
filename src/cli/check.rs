//! `trainlab check`: parse, override and validate; print the model table. A study
//! file (one with `base:` and `search:`) is checked as a study: its base, every path
//! and range of its space, its search. A controller policy file (one with `table:`
//! and `decide_every_steps:`, as a study writes `policy.ron`) is checked as a policy:
//! parsed with file:line:col errors, then its layout and table checked.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::CheckArgs;
use super::table::model_table;
use crate::spec::{
    Experiment, PolicyKind, SpecError, apply_override, load_file, load_policy, load_study,
};

/// Loads a file and applies `--set` overrides in order.
pub(crate) fn load_with_overrides(
    file: &std::path::Path,
    overrides: &[String],
) -> Result<Experiment, SpecError> {
    let mut exp = load_file(file)?;
    for o in overrides {
        exp = apply_override(&exp, o)?;
    }
    Ok(exp)
}

pub(crate) fn check(args: &CheckArgs) -> ExitCode {
    let text = std::fs::read_to_string(&args.file).unwrap_or_default();
    if looks_like_study(&text) {
        return check_study(args);
    }
    if looks_like_policy(&text) {
        return check_policy(args);
    }
    match load_with_overrides(&args.file, &args.overrides) {
        Ok(exp) => {
            println!("{}: ok", args.file.display());
            print!("{}", model_table(&exp));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// A study file names its base experiment and its search; an experiment has
/// neither field.
fn looks_like_study(text: &str) -> bool {
    text.contains("base:") && text.contains("search:")
}

/// A controller policy names its table and its decision interval; an experiment
/// has neither field, and a controller study (checked first) has no table.
fn looks_like_policy(text: &str) -> bool {
    text.contains("table:") && text.contains("decide_every_steps:")
}

fn check_policy(args: &CheckArgs) -> ExitCode {
    if !args.overrides.is_empty() {
        eprintln!(
            "error: {} is a controller policy: --set applies to experiment files (a \
             policy is what a controller study learned)",
            args.file.display()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    match load_policy(&args.file) {
        Ok(policy) => {
            let kind = match policy.kind {
                PolicyKind::QValues => "Q-values",
                PolicyKind::Preferences => "preferences",
            };
            println!(
                "{}: ok (a controller policy: {kind} over {} state(s) x {} action(s), \
                 learned from {} episode(s))",
                args.file.display(),
                policy.table.len(),
                policy.actions.len(),
                policy.history.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn check_study(args: &CheckArgs) -> ExitCode {
    if !args.overrides.is_empty() {
        eprintln!(
            "error: {} is a study: --set applies to experiment files (a study's trials \
             take their settings from its space)",
            args.file.display()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    match load_study(&args.file) {
        Ok(study) => {
            println!(
                "{}: ok (a study of {} over {} setting(s); base experiment {})",
                args.file.display(),
                study.spec.name,
                study.spec.space.len(),
                study.base.name
            );
            print!("{}", model_table(&study.base));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
