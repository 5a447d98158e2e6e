//! Studies on a real SLURM cluster (`.ci/slurm-cluster.sh` starts a one-node one;
//! `.ci/run` does so in CI): a study submitted as an array job gives the same
//! leaderboard as the same study run here; a task cancelled mid-trial releases
//! its trial at a checkpoint and another task finishes it; ASHA decides on the
//! array as it does locally. Without a cluster these tests say so and pass,
//! except under CI=true, where a missing cluster is a failure.
//! Also, without a cluster: `submit --dry-run`, sbatch missing, bad folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use trainlab::study::{Entry, Journal, TrialState, replay};

/// One array job at a time: the cluster has few CPUs and the tests time things.
static CLUSTER: Mutex<()> = Mutex::new(());

fn trainlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainlab"))
}

fn cluster_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mix", "alloc"].iter().any(|s| l.contains(s)))
        });
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no SLURM cluster answers `sinfo`: .ci/run starts one with .ci/slurm-cluster.sh"
        );
        eprintln!("skipping: no SLURM cluster here (start one with `sudo .ci/slurm-cluster.sh`)");
    }
    up
}

fn study_file(dir: &Path, epochs: usize, search: &str) -> PathBuf {
    let text = format!(
        r#"(
    name: "slurm",
    base: Inline(
        name: "mlp",
        dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), test_limit: Some(100)),
        model: [Flatten, Linear(out: 32), ReLU, Linear(out: 10)],
        training: (epochs: {epochs}, batch_size: 50),
    ),
    space: {{ "optimizer.lr": LogUniform(1e-4, 1e-1) }},
    search: {search},
    objectives: [Maximize(ValAccuracy)],
    seed: 4,
)"#
    );
    let path = dir.join("study.ron");
    std::fs::write(&path, text).expect("write");
    path
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    err
}

/// Submits `file` as `tasks` array tasks into `out`; the job id.
fn submit(file: &Path, out: &Path, tasks: usize) -> String {
    let o = trainlab()
        .args(["study", "submit", "--slurm", "--tasks", &tasks.to_string()])
        .arg(file)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs");
    ok(&o);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Waits until the job has left the queue.
fn wait_for(job: &str, limit: Duration) {
    let began = Instant::now();
    loop {
        let o = Command::new("squeue")
            .args(["-h", "-j", job])
            .output()
            .expect("squeue");
        if String::from_utf8_lossy(&o.stdout).trim().is_empty() {
            return;
        }
        assert!(
            began.elapsed() < limit,
            "job {job} still queued after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The leaderboard without its wall-clock column.
fn board(dir: &Path) -> String {
    let csv = std::fs::read_to_string(dir.join("leaderboard.csv")).expect("leaderboard");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    let wall = header
        .iter()
        .position(|h| *h == "wall_seconds")
        .expect("column");
    csv.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != wall)
                .map(|(_, c)| c)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The same study run here, one thread per trial as on the array's 1-CPU tasks.
fn run_locally(file: &Path, out: &Path, parallel: usize) {
    let o = trainlab()
        .args(["study", "run", "--parallel", &parallel.to_string()])
        .arg(file)
        .arg("--out")
        .arg(out)
        .env("SLURM_CPUS_PER_TASK", parallel.to_string())
        .output()
        .expect("runs");
    ok(&o);
}

#[test]
fn dry_run_writes_the_script_and_bad_input_is_clear() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(dir.path(), 1, "Random(trials: 2)");
    let out = dir.path().join("s");
    let o = trainlab()
        .args([
            "study",
            "submit",
            "--slurm",
            "--tasks",
            "3",
            "--cpus-per-task",
            "2",
            "--time",
            "00:30:00",
            "--partition",
            "main",
            "--dry-run",
        ])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let err = ok(&o);
    let script = std::fs::read_to_string(out.join("submit.sbatch")).expect("script");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), script.trim());
    for line in [
        "#SBATCH --array=0-2",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --time=00:30:00",
        "#SBATCH --partition=main",
        "#SBATCH --signal=USR1@120",
        &format!("TRAINLAB={}", env!("CARGO_BIN_EXE_trainlab")),
        &format!("STUDY={}", out.display()),
        "study work \"$STUDY\"",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(script.contains(line), "{line} missing from\n{script}");
    }
    assert!(
        err.contains("not submitted") && err.contains("usually local"),
        "{err}"
    );
    assert!(out.join("journal.jsonl").is_file() && !out.join("slurm_jobs.txt").exists());
    // A noted job is looked up with squeue: here none can be run, and status says so.
    std::fs::write(out.join("slurm_jobs.txt"), "12345\n").expect("write");
    let o = trainlab()
        .args(["study", "status"])
        .arg(&out)
        .env("PATH", "")
        .output()
        .expect("runs");
    let text = ok(&o);
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(
        status.contains("slurm: squeue is not available here"),
        "{status}{text}"
    );
    std::fs::remove_file(out.join("slurm_jobs.txt")).expect("remove");

    // No sbatch: the error says so and nothing is created.
    let none = dir.path().join("none");
    let o = trainlab()
        .args(["study", "submit", "--slurm"])
        .arg(&file)
        .arg("--out")
        .arg(&none)
        .env("PATH", "")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    // Found missing before anything is created (`sbatch --version`), with the
    // way out; not only when the submission itself fails.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot run sbatch") && err.contains("use --dry-run to only write the script"),
        "{err}"
    );
    assert!(!none.exists(), "nothing half-created");

    // A folder that is not a study.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    for cmd in ["work", "status"] {
        let o = trainlab()
            .args(["study", cmd])
            .arg(&empty)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "study {cmd}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("study.ron"),
            "study {cmd}"
        );
    }
}

#[test]
fn an_array_job_gives_the_leaderboard_of_a_local_run() {
    if !cluster_up() {
        return;
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(dir.path(), 3, "Random(trials: 6)");
    let job = submit(&file, &dir.path().join("array"), 3);
    wait_for(&job, Duration::from_secs(300));
    let status = trainlab()
        .args(["study", "status"])
        .arg(dir.path().join("array"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("trials: 6 finished") && text.contains("best so far: trial"),
        "{text}"
    );
    assert!(
        text.contains("slurm: the job is no longer in the queue"),
        "{text}"
    );
    run_locally(&file, &dir.path().join("local"), 1);
    assert_eq!(
        board(&dir.path().join("array")),
        board(&dir.path().join("local"))
    );
}

#[test]
fn a_cancelled_task_releases_its_trial_and_another_finishes_it() {
    if !cluster_up() {
        return;
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    // Trials of several seconds, so the cancel lands in the middle of one.
    let file = study_file(dir.path(), 2000, "Random(trials: 4)");
    let out = dir.path().join("s");
    let job = submit(&file, &out, 3);
    let journal = Journal::new(&out);
    let began = Instant::now();
    // A trial running for a second, and the array task of its process.
    let (id, task) = loop {
        let trials = replay(&journal.read().unwrap_or_default());
        let running = trials.iter().find_map(|t| match &t.state {
            TrialState::Running { owner, .. } => Some((t.id, owner.pid)),
            _ => None,
        });
        if let Some((id, pid)) = running {
            std::thread::sleep(Duration::from_secs(1));
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let task = env
                .split(|b| *b == 0)
                .filter_map(|v| std::str::from_utf8(v).ok())
                .find_map(|v| v.strip_prefix("SLURM_ARRAY_TASK_ID=").map(str::to_string));
            if let Some(task) = task {
                break (id, task);
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "no trial started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let o = Command::new("scancel")
        .arg(format!("{job}_{task}"))
        .output()
        .expect("scancel");
    assert!(o.status.success());
    wait_for(&job, Duration::from_secs(300));
    let entries = journal.read().expect("journal");
    assert!(
        entries.contains(&Entry::Released { id, epochs: None }),
        "trial {id} released by the cancelled task {task}: {entries:?}"
    );
    let trials = replay(&entries);
    assert!(
        trials
            .iter()
            .all(|t| t.state == TrialState::Finished && t.epochs == 2000.0),
        "{trials:?}"
    );
    let events =
        trainlab::runs::read_events(&out.join("trials").join(format!("{id:04}"))).expect("record");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, trainlab::events::TrainEvent::Restored { .. })),
        "trial {id} continued from its checkpoint"
    );
}

#[test]
fn asha_on_the_array_promotes_and_stops_as_a_local_run() {
    if !cluster_up() {
        return;
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let file = study_file(
        dir.path(),
        3,
        "Asha(trials: 6, min_epochs: 1, max_epochs: 3, eta: 3)",
    );
    // One worker on each side: asynchronous promotion then depends only on results.
    let job = submit(&file, &dir.path().join("array"), 1);
    wait_for(&job, Duration::from_secs(300));
    run_locally(&file, &dir.path().join("local"), 1);
    let outcome = |d: &str| {
        replay(&Journal::new(&dir.path().join(d)).read().expect("journal"))
            .into_iter()
            .map(|t| (t.id, t.state, t.epochs, t.rungs))
            .collect::<Vec<_>>()
    };
    let array = outcome("array");
    assert!(
        array.iter().any(|t| t.1 == TrialState::Stopped)
            && array.iter().any(|t| t.1 == TrialState::Finished)
    );
    assert_eq!(array, outcome("local"));
}
