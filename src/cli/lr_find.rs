//! `trainlab lr-find EXP`: the learning-rate range test (`train::lr_find`) from
//! the command line: a line per tenth of the sweep, `lr_find.csv` in the output
//! folder, and the two suggested learning rates.
//!
//! Contract: exit 0 with the CSV written; 2 for bad input (file, override,
//! range, a gridworld experiment, an unwritable folder); 1 when the run failed
//! before a step was measured or the CSV could not be written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::check::load_with_overrides;
use super::{EXIT_BAD_INPUT, EXIT_RUN_FAILED};
use crate::runs::default_run_dir;
use crate::train::lr_find::{LrFindError, LrRange, Suggestions, lr_find, supported, write_csv};

/// Arguments of `trainlab lr-find`.
#[derive(Debug, Args)]
pub struct LrFindArgs {
    /// Experiment file (RON); images, text or points (not gridworld).
    pub file: PathBuf,
    /// Learning rate of the first step.
    #[arg(long, default_value_t = 1e-7)]
    pub start: f64,
    /// Learning rate of the last step.
    #[arg(long, default_value_t = 10.0)]
    pub end: f64,
    /// Steps at most (the test stops early once the smoothed loss passes 4x its minimum).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Override a field (VALUE as in the file, see `run --help`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Folder for lr_find.csv (default: runs/<name>-lr-find-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Parent folder for the default output folder.
    #[arg(long, default_value = "runs")]
    pub runs_root: PathBuf,
}

pub(crate) fn lr_find_command(args: &LrFindArgs) -> ExitCode {
    let exp = match load_with_overrides(&args.file, &args.overrides) {
        Ok(exp) => exp,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let range = LrRange {
        start: args.start,
        end: args.end,
        steps: args.steps,
    };
    if let Err(e) = supported(&exp).and_then(|()| range.check()) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_run_dir(&args.runs_root, &format!("{}-lr-find", exp.name)));
    if let Err(code) = super::run::check_writable(&dir) {
        return code;
    }
    eprintln!(
        "lr-find {}: up to {} steps, lr {:.1e} -> {:.1e}",
        exp.name, range.steps, range.start, range.end
    );
    let every = (range.steps / 10).max(1) as u64;
    let mut show = |p: &crate::train::lr_find::LrPoint| {
        if p.step.is_multiple_of(every) || p.step == 1 {
            eprintln!(
                "  step {:>4}  lr {:.3e}  loss {:.4}  smoothed {:.4}",
                p.step, p.lr, p.loss, p.smoothed
            );
        }
    };
    let result = match lr_find(&exp, &range, None, &mut show) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(match e {
                LrFindError::BadInput(_) => EXIT_BAD_INPUT,
                _ => EXIT_RUN_FAILED,
            });
        }
    };
    if let Some(why) = &result.stopped {
        eprintln!("{why}");
    }
    match write_csv(&dir, &result.points) {
        Ok(path) => println!("wrote {} ({} steps)", path.display(), result.points.len()),
        Err(e) => {
            eprintln!(
                "error: could not write {}: {}",
                dir.join(crate::train::lr_find::CSV).display(),
                crate::util::atomic::os_words(&e)
            );
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    }
    print!("{}", suggestion_lines(&result.suggestions));
    ExitCode::SUCCESS
}

/// The suggestions as printed.
fn suggestion_lines(s: &Suggestions) -> String {
    let mut out = String::new();
    match s.steepest {
        Some(lr) => out.push_str(&format!("steepest descent: lr {lr:.3e}\n")),
        None => out.push_str("steepest descent: none (the smoothed loss never fell)\n"),
    }
    if let (Some(lr), Some((at, loss))) = (s.min_over_10, s.minimum) {
        out.push_str(&format!(
            "minimum / 10:     lr {lr:.3e} (lowest smoothed loss {loss:.4} at lr {at:.3e})\n"
        ));
    }
    out
}
