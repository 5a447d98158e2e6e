//! `trainlab check`: parse, override and validate; print the model table. A study
//! file (one with `base:` and `search:`) is checked as a study: its base, every path
//! and range of its space, its search.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::CheckArgs;
use super::table::model_table;
use crate::spec::{Experiment, SpecError, apply_override, load_file, load_study};

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
    if looks_like_study(&args.file) {
        return check_study(args);
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
fn looks_like_study(file: &std::path::Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|t| t.contains("base:") && t.contains("search:"))
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
