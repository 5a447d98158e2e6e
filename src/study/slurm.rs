//! SLURM: the array job script that puts `trainlab study work DIR` on every task,
//! submitting it with `sbatch`, and asking `squeue` how the job stands. No
//! server: the tasks meet only in the study folder (journal, leases).
//!
//! Contract: the script is plain bash a user may edit (module load lines, ...);
//! it names the exact trainlab binary and version that wrote it and requests
//! SLURM's warning signal (`--signal=USR1@120`), on which a worker checkpoints
//! and releases its trial before the time limit.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::SlurmError;

/// The script's name in the study folder.
pub const SCRIPT: &str = "submit.sbatch";
/// Job ids submitted for the study, one per line.
pub const JOBS: &str = "slurm_jobs.txt";

/// What the array asks of SLURM.
#[derive(Debug, Clone, Default)]
pub struct ArrayJob {
    /// Array tasks, each one worker process.
    pub tasks: usize,
    /// CPUs per task (the trial's threads).
    pub cpus_per_task: usize,
    /// GPUs per task, if any.
    pub gpus_per_task: Option<usize>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (HH:MM:SS).
    pub time: Option<String>,
    /// `--account`.
    pub account: Option<String>,
}

/// The script for the study in `dir` (an absolute path), calling `binary`.
pub fn script(name: &str, dir: &Path, binary: &Path, job: &ArrayJob) -> String {
    let mut s = format!(
        "#!/bin/bash\n\
         # trainlab study \"{name}\": an array of {tasks} tasks; each runs\n\
         # `trainlab study work` on the study folder until no trial is left. Tasks\n\
         # share nothing but that folder, so it must be on a filesystem every node\n\
         # sees. Written by trainlab {version}. Edit freely (e.g. add `module load`\n\
         # lines below) and submit again with: sbatch {script}\n\
         #SBATCH --job-name=trainlab-{name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --ntasks=1\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --output={out}/%A_%a.out\n\
         # Two minutes before the time limit: checkpoint, release the trial, exit.\n\
         #SBATCH --signal=USR1@120\n",
        tasks = job.tasks,
        version = env!("CARGO_PKG_VERSION"),
        script = dir.join(SCRIPT).display(),
        last = job.tasks.saturating_sub(1),
        cpus = job.cpus_per_task.max(1),
        out = dir.join("slurm").display(),
    );
    for (flag, value) in [
        ("partition", job.partition.clone()),
        ("time", job.time.clone()),
        ("gpus-per-task", job.gpus_per_task.map(|g| g.to_string())),
        ("account", job.account.clone()),
    ] {
        if let Some(v) = value {
            s.push_str(&format!("#SBATCH --{flag}={v}\n"));
        }
    }
    s.push_str(&format!(
        "\nset -eu\n\
         TRAINLAB={binary}   # trainlab {version}\n\
         STUDY={dir}\n\
         srun \"$TRAINLAB\" study work \"$STUDY\"\n",
        binary = shell_quote(&binary.display().to_string()),
        version = env!("CARGO_PKG_VERSION"),
        dir = shell_quote(&dir.display().to_string()),
    ));
    s
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Why `dir` may not be visible from other nodes, if it looks node-local.
pub fn local_path_warning(dir: &Path) -> Option<String> {
    ["/tmp", "/var/tmp", "/dev/shm", "/run"]
        .iter()
        .find(|p| dir.starts_with(p))
        .map(|p| {
            format!(
                "warning: {} is under {p}, which is usually local to one machine; tasks on \
                 other nodes will not see it. Use a folder on the shared filesystem (--out).",
                dir.display()
            )
        })
}

/// Whether `sbatch` can be run, with what to do if not.
pub fn sbatch_available() -> Result<(), SlurmError> {
    sbatch_available_at(Path::new("sbatch"))
}

/// [`sbatch_available`] with the program to run given (tests give a stand-in).
fn sbatch_available_at(sbatch: &Path) -> Result<(), SlurmError> {
    match Command::new(sbatch).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(SlurmError::SbatchBroken {
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        }),
        Err(e) => Err(SlurmError::NoSbatch(e)),
    }
}

/// Submits the script; the job id.
pub fn submit(dir: &Path) -> Result<String, SlurmError> {
    submit_with(Path::new("sbatch"), dir)
}

/// [`submit`] with the program to run given (tests give a stand-in).
fn submit_with(sbatch: &Path, dir: &Path) -> Result<String, SlurmError> {
    let out = Command::new(sbatch)
        .arg("--parsable")
        .arg(dir.join(SCRIPT))
        .output()
        .map_err(SlurmError::Run)?;
    if !out.status.success() {
        return Err(SlurmError::Refused {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints "id" or "id;cluster".
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(SlurmError::NoJobId {
            stdout: text.into_owned(),
        });
    }
    let mut jobs = std::fs::read_to_string(dir.join(JOBS)).unwrap_or_default();
    jobs.push_str(&id);
    jobs.push('\n');
    if let Err(source) = crate::util::atomic::write_atomic(&dir.join(JOBS), jobs.as_bytes()) {
        return Err(SlurmError::JobsFile {
            id,
            path: dir.join(JOBS),
            source,
        });
    }
    Ok(id)
}

/// The study's jobs as `squeue` shows them (`id state elapsed` per task), or
/// why it cannot tell; None when no job was submitted.
pub fn queue(dir: &Path) -> Option<Result<Vec<String>, SlurmError>> {
    queue_with(Path::new("squeue"), dir)
}

/// [`queue`] with the program to run given (tests give a stand-in).
fn queue_with(squeue: &Path, dir: &Path) -> Option<Result<Vec<String>, SlurmError>> {
    let jobs = std::fs::read_to_string(dir.join(JOBS)).ok()?;
    let ids: Vec<&str> = jobs.lines().filter(|l| !l.trim().is_empty()).collect();
    if ids.is_empty() {
        return None;
    }
    Some(
        Command::new(squeue)
            .args(["-h", "-o", "%i %T %M %R", "-j", &ids.join(",")])
            .output()
            .map_err(SlurmError::NoSqueue)
            .map(|o| {
                // squeue fails for ids it no longer knows: the job has ended.
                if o.status.success() {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_string)
                        .collect()
                } else {
                    Vec::new()
                }
            }),
    )
}

/// The study folder as an absolute path (tasks may start anywhere).
pub fn absolute(dir: &Path) -> Result<PathBuf, SlurmError> {
    std::path::absolute(dir).map_err(|source| SlurmError::Path {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_asks_for_what_was_given_and_quotes_paths() {
        let job = ArrayJob {
            tasks: 3,
            cpus_per_task: 2,
            partition: Some("gpu".into()),
            time: Some("01:00:00".into()),
            ..ArrayJob::default()
        };
        let s = script(
            "s",
            Path::new("/shared/my study"),
            Path::new("/opt/trainlab"),
            &job,
        );
        for line in [
            "#SBATCH --array=0-2",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=01:00:00",
            "#SBATCH --signal=USR1@120",
            "TRAINLAB=/opt/trainlab",
            "STUDY='/shared/my study'",
            "srun \"$TRAINLAB\" study work \"$STUDY\"",
        ] {
            assert!(s.contains(line), "{line} missing in\n{s}");
        }
        assert!(!s.contains("--account") && !s.contains("--gpus-per-task"));
        assert!(local_path_warning(Path::new("/tmp/x")).is_some());
        assert!(local_path_warning(Path::new("/home/u/x")).is_none());
    }

    // Stand-ins for sbatch and squeue that every Unix has: `true` succeeds
    // silently, `false` fails silently, `echo` prints the arguments it was given
    // (so the output shows exactly what sbatch or squeue would have been asked).
    #[cfg(unix)]
    const MISSING: &str = "/nonexistent/trainlab-test/program";

    #[cfg(unix)]
    #[test]
    fn sbatch_is_available_only_when_its_version_runs_and_succeeds() {
        assert!(sbatch_available_at(Path::new("true")).is_ok());
        let broken = sbatch_available_at(Path::new("false"));
        assert!(
            matches!(&broken, Err(SlurmError::SbatchBroken { stderr }) if stderr.is_empty()),
            "{broken:?}"
        );
        let none = sbatch_available_at(Path::new(MISSING));
        assert!(matches!(none, Err(SlurmError::NoSbatch(_))), "{none:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_submission_notes_the_id_before_any_semicolon_and_refusals_are_errors() {
        let tmp = tempfile::tempdir().expect("tmp");
        // `--parsable` prints "id;cluster": the id is what comes before the `;`,
        // here "--parsable <tmp>/a" of echo's "--parsable <tmp>/a;b/submit.sbatch".
        let dir = tmp.path().join("a;b");
        std::fs::create_dir(&dir).expect("dir");
        let id = format!("--parsable {}", tmp.path().join("a").display());
        assert_eq!(submit_with(Path::new("echo"), &dir).expect("submitted"), id);
        assert_eq!(
            std::fs::read_to_string(dir.join(JOBS)).expect("jobs"),
            format!("{id}\n")
        );
        submit_with(Path::new("echo"), &dir).expect("submitted");
        assert_eq!(
            std::fs::read_to_string(dir.join(JOBS)).expect("jobs"),
            format!("{id}\n{id}\n"),
            "each submission appends its id"
        );
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).expect("dir");
        let silent = submit_with(Path::new("true"), &other);
        assert!(
            matches!(&silent, Err(SlurmError::NoJobId { stdout }) if stdout.is_empty()),
            "{silent:?}"
        );
        let refused = submit_with(Path::new("false"), &other);
        assert!(
            matches!(&refused, Err(SlurmError::Refused { stderr }) if stderr.is_empty()),
            "{refused:?}"
        );
        let none = submit_with(Path::new(MISSING), &other);
        assert!(matches!(none, Err(SlurmError::Run(_))), "{none:?}");
        assert!(
            !other.join(JOBS).exists(),
            "no id noted for a failed submission"
        );
        // Submitted, but the folder is gone: the error names the id.
        let gone = tmp.path().join("gone");
        let lost = submit_with(Path::new("echo"), &gone);
        let want = format!("--parsable {}/{SCRIPT}", gone.display());
        assert!(
            matches!(&lost, Err(SlurmError::JobsFile { id, .. }) if *id == want),
            "{lost:?}"
        );
    }

    #[test]
    fn the_public_calls_refuse_a_folder_without_a_script_or_jobs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        // No script in the folder: sbatch, where installed, refuses before
        // submitting anything; where not, it cannot be run.
        let none = submit(dir);
        assert!(
            matches!(none, Err(SlurmError::Refused { .. } | SlurmError::Run(_))),
            "{none:?}"
        );
        assert!(!dir.join(JOBS).exists());
        // No job noted: squeue is not asked (it can take many seconds to say
        // that no controller answers).
        assert!(queue(dir).is_none());
        std::fs::write(dir.join(JOBS), "\n").expect("write");
        assert!(queue(dir).is_none());
        let here = std::env::current_dir().expect("cwd");
        assert_eq!(
            absolute(Path::new("rel/study")).expect("absolute"),
            here.join("rel/study")
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_queue_asks_for_every_noted_job_and_an_unknown_job_has_ended() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        assert!(queue_with(Path::new("echo"), dir).is_none(), "no jobs file");
        std::fs::write(dir.join(JOBS), "\n  \n").expect("write");
        assert!(queue_with(Path::new("echo"), dir).is_none(), "no job in it");
        std::fs::write(dir.join(JOBS), "12\n\n13\n").expect("write");
        let asked = queue_with(Path::new("echo"), dir)
            .expect("jobs")
            .expect("ran");
        assert_eq!(asked, ["-h -o %i %T %M %R -j 12,13"]);
        // squeue fails for ids it no longer knows: nothing is running.
        let ended = queue_with(Path::new("false"), dir)
            .expect("jobs")
            .expect("ran");
        assert!(ended.is_empty(), "{ended:?}");
        let none = queue_with(Path::new(MISSING), dir).expect("jobs");
        assert!(matches!(none, Err(SlurmError::NoSqueue(_))), "{none:?}");
    }
}
