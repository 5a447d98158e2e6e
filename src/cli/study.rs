//! `trainlab study run | resume | show`: a study folder created from a study file,
//! worked on until every trial has ended, its leaderboard printed. Exit codes as
//! for runs: 2 for a bad study file or folder; failed trials do not fail the study.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::StudyCommand;
use crate::runs::default_run_dir;
use crate::spec::load_study;
use crate::study::{Journal, TrialState, create, leaderboard_csv, load, replay, work};

pub(crate) fn study(command: StudyCommand) -> ExitCode {
    let result = match command {
        StudyCommand::Run {
            file,
            out,
            parallel,
        } => load_study(&file)
            .map_err(|e| e.to_string())
            .and_then(|study| {
                let dir =
                    out.unwrap_or_else(|| default_run_dir(Path::new("studies"), &study.spec.name));
                create(&study, &dir)?;
                eprintln!("study folder: {}", dir.display());
                run(&dir, parallel)
            }),
        StudyCommand::Resume { dir, parallel } => run(&dir, parallel),
        StudyCommand::Show { dir, csv } => show(&dir, csv),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run(dir: &Path, parallel: Option<usize>) -> Result<(), String> {
    let trials = work(dir, parallel, &|line| eprintln!("{line}"))?;
    let failed = trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Failed(_)))
        .count();
    eprintln!(
        "{} trials: {} finished, {} stopped early, {failed} failed; leaderboard: {}",
        trials.len(),
        trials
            .iter()
            .filter(|t| t.state == TrialState::Finished)
            .count(),
        trials
            .iter()
            .filter(|t| t.state == TrialState::Stopped)
            .count(),
        dir.join("leaderboard.csv").display()
    );
    show(dir, false)
}

fn show(dir: &Path, csv: bool) -> Result<(), String> {
    let study = load(dir)?;
    let trials = replay(&Journal::new(dir).read().map_err(|e| e.to_string())?);
    let paths: Vec<String> = study.spec.space.keys().cloned().collect();
    let text = leaderboard_csv(&trials, &paths, &study.spec.objectives);
    if csv {
        print!("{text}");
        return Ok(());
    }
    // The CSV as aligned columns.
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| split_csv(l).into_iter().map(short).collect())
        .collect();
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    if let Some(best) = best_trial(&trials, &study) {
        let file = crate::study::trial_dir(dir, best).join(crate::runs::files::EXPERIMENT);
        println!(
            "best: trial {best}; its exact experiment{} is {} (run it alone: trainlab run {})",
            if matches!(study.spec.search, crate::spec::Search::Pbt { .. }) {
                " (with its PBT schedule)"
            } else {
                ""
            },
            file.display(),
            file.display()
        );
    }
    Ok(())
}

/// The finished trial with the best first objective.
fn best_trial(trials: &[crate::study::Trial], study: &crate::spec::LoadedStudy) -> Option<usize> {
    let objective = *study.spec.objectives.first()?;
    trials
        .iter()
        .filter(|t| t.state == TrialState::Finished)
        .filter_map(|t| Some((objective.score(t.values.first().copied().flatten()?), t.id)))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, id)| id)
}

/// A long number cut to 4 decimals for the screen (the CSV keeps every digit).
fn short(cell: String) -> String {
    match cell.parse::<f64>() {
        Ok(v) if cell.len() > 8 && v.fract() != 0.0 => format!("{v:.4}"),
        _ => cell,
    }
}

/// Splits one CSV line (quotes allowed).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(s) = out.last_mut() {
                    s.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => {
                if let Some(s) = out.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    out
}
