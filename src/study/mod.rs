//! Studies: many runs of one base experiment over a search space, as one folder
//! that several processes can work on at once.
//!
//! ```text
//! DIR/study.ron         the study as run (base experiment written in)
//! DIR/journal.jsonl     append-only: trial sampled, started, reported, finished, ...
//! DIR/leaderboard.csv   one row per trial, rewritten whenever a trial ends
//! DIR/controller/      a controller study's policy (see `controller`)
//! DIR/leases/           one file per working process, kept fresh while it works
//! DIR/trials/<id>/      each trial's normal run folder (checkpoints included;
//!                       PBT: a member's folder is replaced by a copy of a better one)
//! ```
//!
//! The journal is the only shared state: every decision (which trial next, which
//! ASHA promotion) is made under its lock from a replay of it (`state`), so a
//! study survives any of its workers being killed and continues with `resume`.

pub mod controller;
mod error;
mod journal;
mod leaderboard;
mod lease;
mod pbt;
mod run;
mod sample;
pub mod slurm;
mod state;
pub mod tensorboard;

pub use error::{SlurmError, StudySetupError, WriteError};
pub use journal::{Entry, Journal, Move, Owner};
pub use leaderboard::{csv as leaderboard_csv, pareto_front};
pub use lease::LEASE;
pub use run::{
    STUDY_FILE, StudyError, create, figure, load, trial_dir, trial_experiment, work, work_until,
};
pub use sample::{Point, grid, random};
pub use state::{Job, Trial, TrialState, next_job, replay, rungs, rungs_every};
