//! Error types of `study` besides the worker's stop ([`super::StudyError`], a
//! message with an I/O flag the CLI turns into its exit code): sampling a search
//! space, copying PBT members, exporting a study for TensorBoard, and SLURM.

use std::path::PathBuf;

use crate::runs::RunsError;
use crate::spec::SpecError;

/// Why a study's file, points or folders could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum StudySetupError {
    /// The study file or a trial's experiment does not load or take its settings.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A search-space entry that does not give values.
    #[error("{0}")]
    Param(String),
    /// Grid search over a continuous distribution.
    #[error("{path}: grid search needs Choice or Range")]
    NotGridable {
        /// The `--set` path of the entry.
        path: String,
    },
    /// A PBT member's folder could not be replaced by a copy of a better one.
    #[error("PBT copy of trial {from} into {to}: {what}: {source}")]
    PbtCopy {
        /// The member copied.
        from: usize,
        /// The member replaced.
        to: usize,
        /// The step that failed ("copying", "moving the copy in", ...).
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The study's journal could not be read.
    #[error("{}: {source}", dir.display())]
    Journal {
        /// The study folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file of the study could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Writing TensorBoard files failed.
    #[error(transparent)]
    Runs(#[from] RunsError),
}

/// A study file (the leaderboard, an episode's experiment.ron) could not be
/// written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {}", path.display(), crate::util::atomic::os_words(source))]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Why a SLURM command could not be run or did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// `sbatch` is not installed or not reachable.
    #[error(
        "cannot run sbatch ({0}): submit from a SLURM login node, or use --dry-run to \
         only write the script"
    )]
    NoSbatch(#[source] std::io::Error),
    /// `sbatch --version` failed.
    #[error("sbatch --version failed: {stderr}")]
    SbatchBroken {
        /// What it printed.
        stderr: String,
    },
    /// `sbatch` could not be started for the submission.
    #[error("cannot run sbatch: {0}")]
    Run(#[source] std::io::Error),
    /// `sbatch` refused the job.
    #[error("sbatch refused the job: {stderr}")]
    Refused {
        /// What it printed.
        stderr: String,
    },
    /// `sbatch` printed no job id.
    #[error("sbatch printed no job id: {stdout:?}")]
    NoJobId {
        /// What it printed.
        stdout: String,
    },
    /// The job was submitted but its id could not be noted in the folder.
    #[error("job {id} submitted, but {}: {source}", path.display())]
    JobsFile {
        /// The job id.
        id: String,
        /// The jobs file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `squeue` could not be run.
    #[error("squeue is not available here ({0})")]
    NoSqueue(#[source] std::io::Error),
    /// The folder could not be made absolute.
    #[error("{}: {source}", path.display())]
    Path {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
