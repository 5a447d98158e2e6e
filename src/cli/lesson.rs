//! `trainlab lesson verify FILE...`: train each lesson (and the steps it needs)
//! into a scratch folder and print every claim with its measured value.
//! Exit 0 when every claim holds, 1 when one does not, 2 for bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_BAD_INPUT, EXIT_RUN_FAILED};
use crate::lesson::{Report, format_value, verify};

/// `trainlab lesson ...`.
#[derive(Debug, Subcommand)]
pub enum LessonCommand {
    /// Train a lesson (and the steps it depends on, into a temporary folder) and
    /// check every claim of its notes: exit 0 if all hold, 1 if one does not
    Verify(VerifyArgs),
}

/// Arguments of `trainlab lesson verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Lesson files (RON), e.g. experiments/lessons/*.ron.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Change the lesson before it runs (its own run and the steps that are the
    /// lesson itself), e.g. `--set optimizer.lr=0.05`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Keep the runs in this folder (one subfolder per lesson, which must not
    /// exist yet) instead of a temporary folder that is removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

pub(crate) fn lesson(command: LessonCommand) -> ExitCode {
    match command {
        LessonCommand::Verify(args) => verify_all(&args),
    }
}

fn verify_all(args: &VerifyArgs) -> ExitCode {
    let scratch_root = match &args.keep {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "trainlab-lesson-{}-{}",
            std::process::id(),
            crate::runs::timestamp_utc()
        )),
    };
    let mut failed = Vec::new();
    let mut bad = false;
    for file in &args.files {
        let scratch = scratch_root.join(
            file.file_stem()
                .map_or_else(|| "lesson".into(), |s| s.to_string_lossy().into_owned()),
        );
        if scratch.exists() {
            eprintln!(
                "error: {} already exists: give --keep a folder without it",
                scratch.display()
            );
            bad = true;
            continue;
        }
        let mut progress = |line: &str| eprintln!("  {line}");
        match verify(file, &args.overrides, &scratch, &mut progress) {
            Ok(report) => {
                print!("{}", report_text(&report));
                for o in report.outcomes.iter().filter(|o| !o.holds) {
                    failed.push(format!("{}: \"{}\"", file.display(), o.check.claim));
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                bad = true;
            }
        }
    }
    if args.keep.is_none() {
        remove_scratch(&scratch_root);
    } else {
        eprintln!("runs kept in {}", scratch_root.display());
    }
    if bad {
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if failed.is_empty() {
        println!("every claim holds");
        ExitCode::SUCCESS
    } else {
        println!(
            "{} claim{} {} not hold:",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            if failed.len() == 1 { "does" } else { "do" }
        );
        for f in &failed {
            println!("  {f}");
        }
        ExitCode::from(EXIT_RUN_FAILED)
    }
}

/// The scratch folder is ours (made under the system's temporary folder).
fn remove_scratch(dir: &Path) {
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(dir)
    {
        eprintln!("note: could not remove {}: {e}", dir.display());
    }
}

/// One line per claim: holds/FAILS, the figure with its measured value, what it
/// was held against, and the claim's words.
fn report_text(report: &Report) -> String {
    let mut out = format!("{}\n", report.file.display());
    for o in &report.outcomes {
        let f = o.check.figure;
        let value = match &o.value {
            Ok(v) => format_value(f, *v),
            Err(why) => format!("not measured ({why})"),
        };
        let expected = match &o.expected {
            Ok(e) => e.clone(),
            Err(why) => format!("nothing to compare with ({why})"),
        };
        out.push_str(&format!(
            "  {}  {} of {}: {value}, expected {expected}\n         \"{}\"\n",
            if o.holds { "holds" } else { "FAILS" },
            f.label(),
            o.whose,
            o.check.claim
        ));
    }
    let timings: Vec<String> = report
        .timings
        .iter()
        .map(|(run, s)| format!("{run} {s:.0} s"))
        .collect();
    out.push_str(&format!("  trained: {}\n", timings.join(", ")));
    out
}
