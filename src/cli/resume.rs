//! `trainlab resume RUN_DIR`: continue a run from its newest checkpoint, into the
//! same folder. Everything is checked before anything in the folder changes: a
//! folder without a checkpoint, a damaged checkpoint or one whose model no longer
//! matches the experiment is an error (exit 2) that leaves the folder as it was.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::ResumeArgs;
use super::check::load_with_overrides;
use super::run::run_experiment;
use crate::runs::{checkpoints, files};
use crate::train::StartOptions;

pub(crate) fn resume(args: &ResumeArgs) -> ExitCode {
    match prepare(args) {
        Ok((exp, options)) => run_experiment(exp, options, args.json),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn prepare(args: &ResumeArgs) -> Result<(crate::spec::Experiment, StartOptions), String> {
    let dir = &args.run_dir;
    let file = dir.join(files::EXPERIMENT);
    if !file.is_file() {
        return Err(format!(
            "{} is not a run folder: it has no {}",
            dir.display(),
            files::EXPERIMENT
        ));
    }
    let exp = load_with_overrides(&file, &args.overrides).map_err(|e| e.to_string())?;
    let Some((step, checkpoint)) = checkpoints::latest(dir) else {
        return Err(format!(
            "{} has no checkpoint to continue from (nothing in {}/); the run stopped \
             before its first one, or was recorded with checkpoints off. Start it again \
             with `trainlab run {}`",
            dir.display(),
            dir.join(checkpoints::DIR).display(),
            file.display()
        ));
    };
    eprintln!("resuming {} from step {step}", dir.display());
    let options = StartOptions {
        run_dir: Some(dir.clone()),
        resume_from: Some(checkpoint),
        ..StartOptions::default()
    };
    Ok((exp, options))
}
