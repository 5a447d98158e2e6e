//! `trainlab run`: load, override, start the worker, show its events, print the summary.

use std::process::ExitCode;

use super::args::RunArgs;
use super::check::load_with_overrides;
use super::progress::Progress;
use super::table::{model_table, summary_table};
use super::{EXIT_BAD_INPUT, EXIT_RUN_FAILED};
use crate::runs::default_run_dir;
use crate::spec::{DatasetSpec, Experiment};
use crate::train::{FailureKind, StartOptions, TrainEvent, start};

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let exp = match load_with_overrides(&args.file, &args.overrides) {
        Ok(exp) => exp,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let run_dir = if args.no_record {
        None
    } else {
        Some(
            args.out
                .clone()
                .unwrap_or_else(|| default_run_dir(&args.runs_root, &exp.name)),
        )
    };
    let options = StartOptions {
        run_dir,
        halt_after_step: args.halt_after,
        pace: args.pace,
        ..StartOptions::default()
    };
    run_experiment(exp, options, args.json)
}

/// Trains the built-in default experiment (the MLP on the bundled MNIST sample),
/// recording under `runs/`.
pub fn run_default() -> ExitCode {
    let exp = Experiment::default();
    eprintln!(
        "training the built-in default experiment ({}); `trainlab --help` lists the commands",
        exp.name
    );
    let dir = default_run_dir(std::path::Path::new("runs"), &exp.name);
    let options = StartOptions {
        run_dir: Some(dir),
        ..StartOptions::default()
    };
    run_experiment(exp, options, false)
}

/// Starts the worker and shows its events until the run ends.
pub(crate) fn run_experiment(exp: Experiment, options: StartOptions, json: bool) -> ExitCode {
    if !json {
        eprint!("{}", model_table(&exp));
    }
    let episodes = matches!(exp.dataset, DatasetSpec::Gridworld(_));
    let handle = start(exp, options);
    let progress = (!json).then(|| Progress::new(episodes));
    let mut code = ExitCode::from(EXIT_RUN_FAILED);
    for event in handle.events().iter() {
        if json {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("{line}");
            }
        } else if let Some(p) = &progress {
            p.show(&event);
        }
        match &event {
            TrainEvent::Finished(summary) => {
                if !json {
                    println!("{}", summary_table(summary));
                }
                code = ExitCode::SUCCESS;
            }
            TrainEvent::Failed {
                step,
                kind,
                message,
            } => {
                eprintln!("error: run failed at step {step}: {message}");
                if *kind == FailureKind::BadInput {
                    code = ExitCode::from(EXIT_BAD_INPUT);
                }
            }
            _ => {}
        }
    }
    handle.join();
    code
}
