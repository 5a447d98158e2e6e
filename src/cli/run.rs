//! `trainlab run`: load, override, start the worker, show its events, print the summary.
//!
//! Contract: the output folder is checked before any data is loaded: one that
//! cannot be written is refused (exit 2; a full disk exit 1), and `--out` onto a
//! folder that holds anything is refused with nothing touched (the same run
//! points to `trainlab resume`), so no run ever replaces another's files.

use std::path::Path;
use std::process::ExitCode;

use super::args::RunArgs;
use super::check::load_with_overrides;
use super::progress::Progress;
use super::table::{model_table, summary_table};
use super::{EXIT_BAD_INPUT, EXIT_RUN_FAILED};
use crate::events::{FailureKind, TrainEvent};
use crate::runs::{checkpoints, default_run_dir, files};
use crate::spec::{DatasetSpec, Experiment, load_file, to_ron_string};
use crate::train::{StartOptions, start};
use crate::util::atomic::probe_writable;

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let exp = match load_with_overrides(&args.file, &args.overrides) {
        Ok(exp) => exp,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    // A lesson whose earlier step was not run yet: say which command makes it.
    if let Some(message) = crate::lesson::unmet_step(&exp, &args.file) {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let run_dir = if args.no_record {
        None
    } else {
        if let Some(out) = &args.out
            && let Err(e) = refuse_occupied(out, &exp)
        {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| default_run_dir(&args.runs_root, &exp.name));
        if let Err(code) = check_writable(&dir) {
            return code;
        }
        Some(dir)
    };
    let options = StartOptions {
        run_dir,
        halt_after_step: args.halt_after,
        pace: args.pace,
        ..StartOptions::default()
    };
    run_experiment(exp, options, args.json)
}

/// Refuses an output folder that already holds something: its files belong to
/// another run (or to this one, which `trainlab resume` continues).
fn refuse_occupied(out: &Path, exp: &Experiment) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let count = entries.count();
    if count == 0 {
        return Ok(());
    }
    let recorded = load_file(&out.join(files::EXPERIMENT)).ok();
    let same = recorded
        .as_ref()
        .is_some_and(|r| to_ron_string(r) == to_ron_string(exp));
    let shown = out.display();
    let finished = out.join(files::SUMMARY).is_file();
    Err(anyhow::Error::msg(
        match (recorded, same, checkpoints::latest(out)) {
            (Some(_), true, Some(_)) if finished => format!(
                "{shown} already holds this run, finished; nothing was changed. Train it longer \
             with `trainlab resume {shown} --set training.epochs=N`, or choose another --out \
             to train it anew"
            ),
            (Some(_), true, Some((step, _))) => format!(
                "{shown} already holds this run (checkpoint at step {step}); nothing was changed. \
             Continue it with `trainlab resume {shown}`, or choose another --out to train it anew"
            ),
            (Some(_), true, None) => format!(
                "{shown} already holds this run, with no checkpoint to continue from; nothing was \
             changed. Choose another --out, or delete the folder to train it there again"
            ),
            (Some(r), false, _) => format!(
                "{shown} holds another run (of \"{}\"); nothing was changed. Choose another --out \
             (or none: a fresh folder under runs/ is made), or delete that folder first",
                r.name
            ),
            (None, _, _) => format!(
                "{shown} is not empty ({count} entr{}); nothing was changed. Choose an empty or new \
             folder for --out (or none: a fresh folder under runs/ is made)",
                if count == 1 { "y" } else { "ies" }
            ),
        },
    ))
}

/// Refuses a run folder that cannot be written, before anything is loaded: exit
/// 2, or 1 when the disk is full (an I/O failure, not a mistake in the input).
pub(crate) fn check_writable(dir: &Path) -> Result<(), ExitCode> {
    probe_writable(dir).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(if e.no_space {
            EXIT_RUN_FAILED
        } else {
            EXIT_BAD_INPUT
        })
    })
}

/// Like [`check_writable`] for the folder a file `path` is written into.
pub(crate) fn check_writable_file(path: &Path) -> Result<(), ExitCode> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => check_writable(parent),
        None => check_writable(Path::new(".")),
    }
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

/// Starts the worker and shows its events until the run ends. A resume shows the
/// model and progress only once its checkpoint is accepted, so a refused one is
/// one error message; a refusal (bad input) is not reported as a failed run.
pub(crate) fn run_experiment(exp: Experiment, options: StartOptions, json: bool) -> ExitCode {
    let mut table = (!json).then(|| model_table(&exp));
    let mut waiting_for_restore = options.resume_from.is_some();
    if !waiting_for_restore && let Some(t) = table.take() {
        eprint!("{t}");
    }
    let mut held: Vec<TrainEvent> = Vec::new();
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
            match &event {
                // Clears the bar; the message is printed below.
                TrainEvent::Failed { .. } => p.show(&event),
                TrainEvent::Restored { .. } if waiting_for_restore => {
                    waiting_for_restore = false;
                    if let Some(t) = table.take() {
                        eprint!("{t}");
                    }
                    for e in held.drain(..) {
                        p.show(&e);
                    }
                    p.show(&event);
                }
                _ if waiting_for_restore => held.push(event.clone()),
                _ => p.show(&event),
            }
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
                if *kind == FailureKind::BadInput {
                    eprintln!("error: {message}");
                    code = ExitCode::from(EXIT_BAD_INPUT);
                } else {
                    eprintln!("error: run failed at step {step}: {message}");
                }
            }
            _ => {}
        }
    }
    handle.join();
    code
}
