//! The command line: `run` trains an experiment headless with a progress bar and a
//! summary table, `resume` continues a run from its checkpoint, `study` runs and
//! shows hyperparameter studies, `compress` prunes a trained run, `check`
//! validates a file, `lesson verify` trains a lesson and checks the claims of its
//! notes. Exit codes: 0 ok, 1 the run failed (a lesson: a claim does not hold),
//! 2 bad input (file, override or data location).
//!
//! The CLI is a consumer of the worker's event stream, like the GUI; it knows
//! nothing of how training works.

mod args;
mod check;
mod compress;
mod export;
mod generate;
mod lesson;
mod lr_find;
mod progress;
mod resume;
mod run;
mod study;
mod table;

pub use args::{Cli, Command};
pub use run::run_default;

use std::process::ExitCode;

/// Exit code for a run that started but failed (diverged, worker error).
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code for bad input: unreadable or invalid experiment, bad `--set`.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Runs a parsed command; `None` means "open the GUI" and is handled by main.
pub fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Run(args) => run::run(&args),
        Command::Resume(args) => resume::resume(&args),
        Command::Study(command) => study::study(command),
        Command::Check(args) => check::check(&args),
        Command::LrFind(args) => lr_find::lr_find_command(&args),
        Command::Lesson(command) => lesson::lesson(command),
        Command::Compress(args) => compress::compress(&args),
        Command::Export(command) => export::export(command),
        Command::Gui(args) => open_gui(args.file),
        Command::Generate(command) => generate::generate(command),
    }
}

/// Opens the workbench window; without a display it says why and trains the
/// built-in default in the terminal instead, so the command still does something.
pub fn open_gui(file: Option<std::path::PathBuf>) -> ExitCode {
    match crate::gui::run_gui(file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "trainlab: could not open the window ({e}).\n\
                 Training the built-in default in the terminal instead; `trainlab run FILE` trains any experiment headless."
            );
            run_default()
        }
    }
}
