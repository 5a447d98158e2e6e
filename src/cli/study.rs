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
            .map_err(|e| e.to_string())
            .and_then(|study| {
                let dir =
                    out.unwrap_or_else(|| default_run_dir(Path::new("studies"), &study.spec.name));
                create(&study, &dir)?;
                eprintln!("study folder: {}", dir.display());
                run(&dir, parallel)
            }),
        StudyCommand::Resume { dir, parallel } | StudyCommand::Work { dir, parallel } => {
            load(&dir).and_then(|_| run(&dir, parallel))
        }
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
        StudyCommand::Status { dir } => status(&dir),
        StudyCommand::Show { dir, csv } => show(&dir, csv),
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
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Set by SIGTERM, SIGINT or SIGUSR1 (SLURM's warning before the time limit).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// What `study work` exits with after an interruption (128 + SIGINT, as shells).
const EXIT_INTERRUPTED: u8 = 130;

/// Routes the stop signals to [`INTERRUPTED`].
fn catch_signals() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    static FLAG: std::sync::OnceLock<std::sync::Arc<AtomicBool>> = std::sync::OnceLock::new();
    let flag = FLAG.get_or_init(|| std::sync::Arc::new(AtomicBool::new(false)));
    let mut signals = vec![SIGINT, SIGTERM];
    #[cfg(unix)]
    signals.push(signal_hook::consts::SIGUSR1);
    // A second Ctrl+C ends the process at once; SIGTERM may come twice under
    // SLURM (from srun and from the step daemon), so it never does.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone())
        .map_err(|e| format!("cannot catch SIGINT: {e}"))?;
    for sig in signals {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| format!("cannot catch signal {sig}: {e}"))?;
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

fn run(dir: &Path, parallel: Option<usize>) -> Result<(), String> {
    catch_signals()?;
    let trials = work_until(dir, parallel, &|line| eprintln!("{line}"), &INTERRUPTED)?;
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
) -> Result<(), String> {
    let study = load_study(file).map_err(|e| e.to_string())?;
    if job.tasks == 0 {
        return Err("--tasks: at least 1".into());
    }
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
        std::env::current_exe().map_err(|e| format!("cannot find trainlab itself: {e}"))?;
    create(&study, &dir)?;
    let script = slurm::script(&study.spec.name, &dir, &binary, job);
    let written = std::fs::create_dir_all(dir.join("slurm")).and_then(|()| {
        crate::util::atomic::write_atomic(&dir.join(slurm::SCRIPT), script.as_bytes())
    });
    let submitted = written
        .map_err(|e| format!("{}: {e}", dir.join(slurm::SCRIPT).display()))
        .and_then(|()| {
            if dry_run {
                Ok(None)
            } else {
                slurm::submit(&dir).map(Some)
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
fn status(dir: &Path) -> Result<(), String> {
    let study = load(dir)?;
    let trials = replay(&Journal::new(dir).read().map_err(|e| e.to_string())?);
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
                t.values[0].map_or("-".into(), |v| format!("{v:.4}")),
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

fn show(dir: &Path, csv: bool) -> Result<(), String> {
    let study = load(dir)?;
    let trials = replay(&Journal::new(dir).read().map_err(|e| e.to_string())?);
    let paths: Vec<String> = study.spec.space.keys().cloned().collect();
    let text = leaderboard_csv(&trials, &paths, &study.spec.objectives);
    if csv {
        // A reader that stops early (`| head`) is not an error.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
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
