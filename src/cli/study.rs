//! `trainlab study run | resume | show`: a study folder created from a study file,
//! worked on until every trial has ended, its leaderboard printed. Exit codes as
//! for runs: 2 for a bad study file or folder; failed trials do not fail the study.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::StudyCommand;
use crate::runs::default_run_dir;
use crate::spec::load_study;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::study::{Journal, TrialState, create, leaderboard_csv, load, replay, slurm, work_until};

pub(crate) fn study(command: StudyCommand) -> ExitCode {
    let result = match command {
        StudyCommand::Run {
            file,
            out,
            parallel,
        } => load_study(&file)
            .map_err(anyhow::Error::from)
            .and_then(|study| {
                let dir =
                    out.unwrap_or_else(|| default_run_dir(Path::new("studies"), &study.spec.name));
                create(&study, &dir).map_err(note_io)?;
                eprintln!("study folder: {}", dir.display());
                run(&dir, parallel)
            }),
        StudyCommand::Resume { dir, parallel } => study_folder(&dir, "resume")
            .and_then(|()| Ok(load(&dir)?))
            .and_then(|study| {
                eprintln!("{}", picked_up(&dir, &study)?);
                run(&dir, parallel)
            }),
        StudyCommand::Work { dir, parallel } => study_folder(&dir, "work")
            .and_then(|()| Ok(load(&dir)?))
            .and_then(|_| run(&dir, parallel)),
        StudyCommand::Submit {
            file,
            slurm: _,
            tasks,
            partition,
            time,
            cpus_per_task,
            gpus_per_task,
            account,
            out,
            dry_run,
        } => {
            let job = slurm::ArrayJob {
                tasks,
                cpus_per_task,
                gpus_per_task,
                partition,
                time,
                account,
            };
            submit(&file, out, &job, dry_run)
        }
        StudyCommand::Status { dir } => study_folder(&dir, "status").and_then(|()| status(&dir)),
        StudyCommand::Show { dir, csv } => {
            study_folder(&dir, "show").and_then(|()| show(&dir, csv))
        }
    };
    match result {
        Ok(()) if INTERRUPTED.load(Ordering::Relaxed) => {
            eprintln!(
                "interrupted: running trials were checkpointed and released; other workers \
                 (or `trainlab study resume`) continue them"
            );
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if IO_FAILED.load(Ordering::Relaxed) {
                super::EXIT_RUN_FAILED
            } else {
                EXIT_BAD_INPUT
            })
        }
    }
}

/// Set when the study stopped because a file could not be written (exit 1:
/// an I/O failure, not bad input).
static IO_FAILED: AtomicBool = AtomicBool::new(false);

/// The message of a study error, noting whether it was an I/O failure.
fn note_io(e: crate::study::StudyError) -> anyhow::Error {
    if e.io {
        IO_FAILED.store(true, Ordering::Relaxed);
    }
    anyhow::Error::msg(e.message)
}

/// `dir` must be a study folder; a study file or a missing folder says what
/// `trainlab study VERB` wants instead.
fn study_folder(dir: &Path, verb: &str) -> anyhow::Result<()> {
    if dir.is_file() {
        return Err(anyhow::anyhow!(
            "study {verb} works on a study folder (made by `trainlab study run`), and {} \
             is a file; to start the study it describes: trainlab study run {}",
            dir.display(),
            dir.display()
        ));
    }
    if !dir.join(crate::study::STUDY_FILE).is_file() {
        return Err(anyhow::anyhow!(
            "{} is not a study folder: it has no {} (study folders are made by \
             `trainlab study run FILE.ron`, by default under studies/)",
            dir.display(),
            crate::study::STUDY_FILE
        ));
    }
    Ok(())
}

/// What `study resume` found in the folder, in one line.
fn picked_up(dir: &Path, study: &crate::spec::LoadedStudy) -> anyhow::Result<String> {
    let trials = replay(&Journal::new(dir).read()?);
    let count = |f: &dyn Fn(&TrialState) -> bool| trials.iter().filter(|t| f(&t.state)).count();
    let planned = match study.spec.search {
        crate::spec::Search::Random { trials } | crate::spec::Search::Asha { trials, .. } => {
            Some(trials)
        }
        crate::spec::Search::Pbt { population, .. } => Some(population),
        crate::spec::Search::Controller(ref c) => Some(c.episodes),
        crate::spec::Search::Grid => crate::study::grid(&study.spec.space).ok().map(|g| g.len()),
    };
    let finished = count(&|s| matches!(s, TrialState::Finished | TrialState::Stopped));
    let failed = count(&|s| matches!(s, TrialState::Failed(_)));
    let running = count(&|s| matches!(s, TrialState::Running { .. }));
    let waiting = count(&|s| {
        matches!(
            s,
            TrialState::Pending | TrialState::AtRung | TrialState::Released { .. }
        )
    });
    let not_started = planned.map_or(0, |p| p.saturating_sub(trials.len()));
    Ok(format!(
        "resuming study {} ({}): {finished} trial(s) done (not run again), {failed} failed, \
         {running} were running (continued from their checkpoints unless another worker \
         holds them), {} to run{}",
        study.spec.name,
        dir.display(),
        waiting + not_started,
        planned.map_or(String::new(), |p| format!(", of {p} planned"))
    ))
}

/// Set by SIGTERM, SIGINT or SIGUSR1 (SLURM's warning before the time limit).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// What `study work` exits with after an interruption (128 + SIGINT, as shells).
const EXIT_INTERRUPTED: u8 = 130;

/// Routes the stop signals to [`INTERRUPTED`].
fn catch_signals() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    static FLAG: std::sync::OnceLock<std::sync::Arc<AtomicBool>> = std::sync::OnceLock::new();
    let flag = FLAG.get_or_init(|| std::sync::Arc::new(AtomicBool::new(false)));
    let mut signals = vec![SIGINT, SIGTERM];
    #[cfg(unix)]
    signals.push(signal_hook::consts::SIGUSR1);
    // A second Ctrl+C ends the process at once; SIGTERM may come twice under
    // SLURM (from srun and from the step daemon), so it never does.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone())
        .map_err(|e| anyhow::anyhow!("cannot catch SIGINT: {e}"))?;
    for sig in signals {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| anyhow::anyhow!("cannot catch signal {sig}: {e}"))?;
    }
    // The study code reads a plain static; mirror the flag into it.
    let flag = flag.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        INTERRUPTED.store(true, Ordering::Relaxed);
    });
    Ok(())
}

fn run(dir: &Path, parallel: Option<usize>) -> anyhow::Result<()> {
    catch_signals()?;
    let trials =
        work_until(dir, parallel, &|line| eprintln!("{line}"), &INTERRUPTED).map_err(note_io)?;
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

/// `study submit --slurm`: the folder, its script, and the job.
fn submit(
    file: &Path,
    out: Option<std::path::PathBuf>,
    job: &slurm::ArrayJob,
    dry_run: bool,
) -> anyhow::Result<()> {
    let study = load_study(file)?;
    anyhow::ensure!(job.tasks > 0, "--tasks: at least 1");
    // Nothing is created for a submission that cannot happen.
    if !dry_run {
        slurm::sbatch_available()?;
    }
    let dir = slurm::absolute(
        &out.unwrap_or_else(|| default_run_dir(Path::new("studies"), &study.spec.name)),
    )?;
    if let Some(w) = slurm::local_path_warning(&dir) {
        eprintln!("{w}");
    }
    let binary =
        std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find trainlab itself: {e}"))?;
    create(&study, &dir)?;
    let script = slurm::script(&study.spec.name, &dir, &binary, job);
    let written = std::fs::create_dir_all(dir.join("slurm")).and_then(|()| {
        crate::util::atomic::write_atomic(&dir.join(slurm::SCRIPT), script.as_bytes())
    });
    let submitted = written
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(slurm::SCRIPT).display()))
        .and_then(|()| {
            if dry_run {
                Ok(None)
            } else {
                Ok(slurm::submit(&dir).map(Some)?)
            }
        });
    match submitted {
        Ok(None) => {
            println!("{script}");
            eprintln!(
                "dry run: wrote {} (not submitted); submit it with: sbatch {}",
                dir.join(slurm::SCRIPT).display(),
                dir.join(slurm::SCRIPT).display()
            );
            Ok(())
        }
        Ok(Some(id)) => {
            println!("{id}");
            eprintln!(
                "submitted job {id}: {} tasks on {}\nfollow it: trainlab study status {}   \
                 (or open the folder in the GUI; task logs in {})",
                job.tasks,
                dir.display(),
                dir.display(),
                dir.join("slurm").display()
            );
            Ok(())
        }
        Err(e) => {
            // Nothing half-created: the folder was made by this command.
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// `study status`: counts, the best so far, the SLURM job.
fn status(dir: &Path) -> anyhow::Result<()> {
    let study = load(dir)?;
    let trials = replay(&Journal::new(dir).read()?);
    let count = |f: &dyn Fn(&TrialState) -> bool| trials.iter().filter(|t| f(&t.state)).count();
    println!("study {} ({})", study.spec.name, dir.display());
    println!(
        "trials: {} finished, {} stopped early, {} running, {} waiting (pending, at a rung or released), {} failed, of {}",
        count(&|s| *s == TrialState::Finished),
        count(&|s| *s == TrialState::Stopped),
        count(&|s| matches!(s, TrialState::Running { .. })),
        count(&|s| matches!(
            s,
            TrialState::Pending | TrialState::AtRung | TrialState::Released { .. }
        )),
        count(&|s| matches!(s, TrialState::Failed(_))),
        trials.len()
    );
    let objective = study.spec.objectives[0];
    let best = trials
        .iter()
        .filter_map(|t| Some((objective.score(t.values.first().copied().flatten()?), t)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, t)) => {
            let settings: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "best so far: trial {} ({}), {} {} after {} epoch(s): {}",
                t.id,
                t.state.name(),
                objective.label(),
                t.values[0].map_or("-".into(), |v| objective.figure().value_text(v)),
                t.epochs,
                settings.join(", ")
            );
        }
        None => println!("best so far: no trial has reported yet"),
    }
    match slurm::queue(dir) {
        None => {}
        Some(Ok(lines)) if lines.is_empty() => println!("slurm: the job is no longer in the queue"),
        Some(Ok(lines)) => {
            println!("slurm (task state elapsed reason):");
            for l in lines {
                println!("  {l}");
            }
        }
        Some(Err(e)) => println!("slurm: {e}"),
    }
    Ok(())
}

fn show(dir: &Path, csv: bool) -> anyhow::Result<()> {
    let study = load(dir)?;
    let (entries, torn) = Journal::new(dir).read_noting()?;
    if let Some(note) = torn {
        eprintln!("note: {note}");
    }
    let trials = replay(&entries);
    let paths: Vec<String> = study.spec.space.keys().cloned().collect();
    let text = leaderboard_csv(&trials, &paths, &study.spec.objectives);
    if csv {
        // A reader that stops early (`| head`) is not an error.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
        return Ok(());
    }
    // The CSV as aligned columns, each figure as a person reads it.
    let mut lines = text.lines().map(split_csv);
    let header = lines.next().unwrap_or_default();
    let kinds: Vec<Column> = header
        .iter()
        .map(|h| {
            if let Some(o) = study.spec.objectives.iter().find(|o| o.label() == *h) {
                Column::Figure(o.figure())
            } else if paths.contains(h) {
                Column::Setting
            } else {
                Column::Text
            }
        })
        .collect();
    let rows: Vec<Vec<String>> = std::iter::once(header.clone())
        .chain(lines.map(|cells| {
            cells
                .into_iter()
                .zip(kinds.iter().chain(std::iter::repeat(&Column::Text)))
                .map(|(cell, kind)| cell_text(cell, *kind))
                .collect()
        }))
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

/// What a leaderboard column holds, for how its numbers are shown.
#[derive(Clone, Copy)]
enum Column {
    Figure(crate::spec::Figure),
    Setting,
    Text,
}

/// One cell for the screen (the CSV keeps every digit).
fn cell_text(cell: String, kind: Column) -> String {
    match (kind, cell.parse::<f64>()) {
        (Column::Figure(f), Ok(v)) => f.value_text(v),
        (Column::Setting, Ok(v)) => crate::spec::setting_text(v),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{BaseSpec, Figure, LoadedStudy, Objective, Parallel, Search, StudySpec};
    use crate::study::Trial;

    #[test]
    fn the_best_trial_is_the_smallest_value_when_minimising() {
        let study = |objective| LoadedStudy {
            spec: StudySpec {
                name: "s".into(),
                base: BaseSpec::Inline(Box::default()),
                space: BTreeMap::new(),
                search: Search::Random { trials: 4 },
                objectives: vec![objective],
                parallel: Parallel::Auto,
                seed: 1,
                trial_weights: Default::default(),
            },
            base: Default::default(),
        };
        let trial = |id: usize, state: TrialState, v: f64| Trial {
            id,
            params: BTreeMap::new(),
            state,
            values: vec![Some(v)],
            epochs: 1.0,
            wall_seconds: 1.0,
            rungs: BTreeMap::new(),
            lineage: Vec::new(),
            generations: Vec::new(),
        };
        let trials = [
            trial(0, TrialState::Finished, 0.4),
            trial(1, TrialState::Finished, 0.2),
            trial(2, TrialState::Finished, 0.9),
            // Smaller still, but stopped early: not a finished result.
            trial(3, TrialState::Stopped, 0.1),
            trial(4, TrialState::Finished, 0.2),
        ];
        let min = study(Objective::Minimize(Figure::ValLoss));
        assert_eq!(
            best_trial(&trials, &min),
            Some(1),
            "smallest loss, lower id on a tie"
        );
        let max = study(Objective::Maximize(Figure::ValAccuracy));
        assert_eq!(best_trial(&trials, &max), Some(2), "largest accuracy");
        assert_eq!(best_trial(&trials[3..4], &min), None, "nothing finished");
    }
}
