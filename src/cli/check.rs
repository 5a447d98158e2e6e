//! `trainlab check`: parse, override and validate; print the model table.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::CheckArgs;
use super::table::model_table;
use crate::spec::{Experiment, SpecError, apply_override, load_file};

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
