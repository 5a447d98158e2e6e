//! `trainlab resume RUN_DIR`: continue a run from its newest checkpoint, into the
//! same folder. Everything is checked before anything in the folder changes: a
//! folder without a checkpoint, a damaged checkpoint or one whose model no longer
//! matches the experiment is an error (exit 2) that leaves the folder as it was;
//! so is a folder that cannot be written (exit 1 when its disk is full).

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::ResumeArgs;
use super::check::load_with_overrides;
use super::run::{check_writable, run_experiment};
use crate::runs::{checkpoints, files};
use crate::train::StartOptions;

pub(crate) fn resume(args: &ResumeArgs) -> ExitCode {
    // Checked first: a folder that cannot take a checkpoint cannot continue.
    if args.run_dir.join(files::EXPERIMENT).is_file()
        && let Err(code) = check_writable(&args.run_dir)
    {
        return code;
    }
    match prepare(args) {
        Ok((exp, options)) => run_experiment(exp, options, args.json),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn prepare(args: &ResumeArgs) -> anyhow::Result<(crate::spec::Experiment, StartOptions)> {
    let dir = &args.run_dir;
    let file = dir.join(files::EXPERIMENT);
    if !file.is_file() {
        return Err(anyhow::anyhow!(
            "{} is not a run folder: it has no {}",
            dir.display(),
            files::EXPERIMENT
        ));
    }
    let exp = load_with_overrides(&file, &args.overrides)?;
    // An extension keeps the lr decay the run was planned with (no jump back up).
    let recorded = crate::spec::load_file(&file)?;
    let exp = crate::spec::keep_decay_plan(&recorded, exp);
    let Some((step, checkpoint)) = checkpoints::latest(dir) else {
        return Err(anyhow::anyhow!(
            "{} has no checkpoint to continue from (nothing in {}/); the run stopped \
             before its first one, was recorded with checkpoints off, or ended with \
             training.checkpoint.keep_last: 0 (which keeps none). Start it again \
             with `trainlab run {}`",
            dir.display(),
            dir.join(checkpoints::DIR).display(),
            file.display()
        ));
    };
    if let Some(epochs) = finished_epochs(dir)
        && exp.training.epochs as f64 <= epochs
    {
        return Err(anyhow::anyhow!(
            "{} finished already: it trained all {} epochs; to train more, raise the \
             epochs, e.g. `trainlab resume {} --set training.epochs={}`",
            dir.display(),
            exp.training.epochs,
            dir.display(),
            exp.training.epochs + 1
        ));
    }
    if let Ok((_, Some(note))) = crate::runs::read_record(dir) {
        eprintln!("note: {note}; the record continues from the checkpoint");
    }
    eprintln!("resuming {} from step {step}", dir.display());
    let options = StartOptions {
        run_dir: Some(dir.clone()),
        resume_from: Some(checkpoint),
        ..StartOptions::default()
    };
    Ok((exp, options))
}

/// The epochs a finished supervised run trained (its summary says so); None for
/// a run that did not finish (killed, or stopped for lack of space after its last
/// checkpoint: resuming it completes it) and for gridworld runs (episodes).
fn finished_epochs(dir: &std::path::Path) -> Option<f64> {
    let text = std::fs::read(dir.join(files::SUMMARY)).ok()?;
    let summary: crate::events::RunSummary = serde_json::from_slice(&text).ok()?;
    if summary.rl.is_some() || summary.reason != crate::events::StopReason::Completed {
        return None;
    }
    Some(summary.epochs)
}
