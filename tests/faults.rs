//! Fault injection, the way SQLite tests its I/O errors and crashes: runs and
//! studies on a folder that fills up (tiny tmpfs mounts, several fill levels), on
//! a folder remounted read-only under a running run, and processes killed with
//! SIGKILL at random moments (checkpoint writing, journal appends, leaderboard
//! rewrites, two workers on one study). After each fault: every file parses,
//! nothing finished is recorded twice, `resume` / `study resume` finish, and the
//! final figures equal those of a run that was never interrupted.
//!
//! The tmpfs tests need root and `mount`; without them they print why they skip,
//! except under CI=true, where a missing mount is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{study, trainlab};
use trainlab::study::{Entry, Journal, TrialState, replay};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line the command printed on stderr.
fn last_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------- tmpfs mounts

/// A small tmpfs mounted for one test; unmounted when dropped, also when the
/// test fails.
struct Tmpfs {
    dir: PathBuf,
    _holder: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts `kib` KiB of tmpfs, or says why not and returns None (a failure
    /// under CI=true, where CI runs as root so that these tests run).
    fn mount(kib: u64) -> Option<Self> {
        let holder = tempfile::tempdir().expect("tmp");
        let dir = holder.path().join("m");
        std::fs::create_dir(&dir).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .output();
        let why = match &out {
            Ok(o) if o.status.success() => {
                return Some(Self {
                    dir,
                    _holder: holder,
                });
            }
            Ok(o) => stderr(o),
            Err(e) => e.to_string(),
        };
        let message = format!("cannot mount a tmpfs (needs root): {}", why.trim());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}; CI must run the fault suite as root");
        }
        eprintln!("skipping this fault test: {message}");
        None
    }

    fn remount(&self, options: &str) -> bool {
        Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Gives the folder room again.
    fn grow(&self) {
        assert!(
            self.remount("size=256m"),
            "cannot grow {}",
            self.dir.display()
        );
    }

    /// Makes the folder read-only; retries while a file is open for writing
    /// (the kernel refuses then), for at most `patience`.
    fn read_only(&self, patience: Duration) -> bool {
        let began = Instant::now();
        while began.elapsed() < patience {
            if self.remount("ro") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

// ---------------------------------------------------------------- experiments

/// One small experiment of each kind, as a user writes them.
fn experiment(kind: &str) -> String {
    match kind {
        "image" => r#"(
    name: "image", seed: 3,
    dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), test_limit: Some(100)),
    model: [Flatten, Linear(out: 32), ReLU, Linear(out: 10)],
    optimizer: Adam(lr: 1e-3),
    training: (epochs: 4, batch_size: 50, tensorboard: false),
)"#
        .into(),
        "text" => r#"(
    name: "text", seed: 3,
    dataset: Text(
        source: Bundled(Words), tokens: Chars, limit: Some(3000),
        task: LanguageModel(seq_len: 16, sample_every_steps: None),
    ),
    model: [Embedding(dim: 16), GRU(hidden: 32)],
    optimizer: Adam(lr: 3e-3),
    training: (epochs: 3, batch_size: 16, log_every_steps: 5, tensorboard: false),
)"#
        .into(),
        "maze" => r#"(
    name: "maze", seed: 7,
    dataset: Gridworld(
        layout: Generated(rows: 9, cols: 9, algorithm: Dfs),
        rewards: (step: -0.01, goal: 1.0),
        max_steps: 200,
    ),
    agent: (
        method: QLearning(alpha: 0.5), episodes: 200, gamma: 0.99,
        epsilon: (start: 1.0, end: 0.05, decay_episodes: 100),
        log_every_episodes: 20,
    ),
    training: (tensorboard: false),
)"#
        .into(),
        "points" => r#"(
    name: "points", seed: 1,
    dataset: Points(kind: Spiral, samples: 200, noise: 0.0, test_fraction: 0.5, features: [X1, X2]),
    model: [Linear(out: 8), Tanh, Linear(out: 1)],
    optimizer: Adam(lr: 0.03),
    training: (epochs: 20, batch_size: 10, log_every_steps: 5, tensorboard: false),
)"#
        .into(),
        other => panic!("no experiment {other}"),
    }
}

fn write_experiment(dir: &Path, kind: &str) -> PathBuf {
    let path = dir.join(format!("{kind}.ron"));
    std::fs::write(&path, experiment(kind)).expect("write experiment");
    path
}

fn run(file: &Path, out: &Path, extra: &[&str]) -> Output {
    trainlab()
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("trainlab runs")
}

fn resume(dir: &Path) -> Output {
    trainlab()
        .arg("resume")
        .arg(dir)
        .output()
        .expect("trainlab runs")
}

/// The figures a resume must reproduce exactly (no timings).
fn figures(run_dir: &Path) -> String {
    let text = std::fs::read_to_string(run_dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: no summary.json: {e}", run_dir.display()));
    let s: serde_json::Value = serde_json::from_str(&text).expect("summary parses");
    let mut rl = s["rl"].clone();
    if let Some(o) = rl.as_object_mut() {
        for timing in ["first_optimal_seconds", "env_steps_per_sec"] {
            o.remove(timing);
        }
    }
    format!(
        "steps {} train {} {} val {} {} test {} {} language {} rl {rl}",
        s["steps"],
        s["train_loss"],
        s["train_accuracy"],
        s["val_loss"],
        s["val_accuracy"],
        s["test_loss"],
        s["test_accuracy"],
        s["language"],
    )
}

/// Every file of a run folder parses: the record line by line (a torn last line
/// only when `torn_ok`: a killed process), each checkpoint whole.
fn assert_run_files_whole(run_dir: &Path, torn_ok: bool) {
    if let Ok(text) = std::fs::read_to_string(run_dir.join("metrics.jsonl")) {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let whole = line.ends_with('\n');
            if !whole && torn_ok && i + 1 == lines.len() {
                continue;
            }
            assert!(whole, "{}: torn last line {line:?}", run_dir.display());
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{}: line {}: {e}", run_dir.display(), i + 1));
        }
    }
    for (_, dir) in trainlab::runs::checkpoints::list(run_dir) {
        let state = std::fs::read(dir.join("state.json")).expect("checkpoint state.json");
        serde_json::from_slice::<serde_json::Value>(&state)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for name in ["model.safetensors", "training.safetensors"] {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                safetensors::SafeTensors::deserialize(&bytes)
                    .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()));
            }
        }
    }
    for name in ["summary.json", "experiment.ron"] {
        let p = run_dir.join(name);
        if p.is_file() {
            assert!(
                std::fs::metadata(&p).expect("stat").len() > 0,
                "{}",
                p.display()
            );
        }
    }
}

/// Bytes a finished run folder takes on a tmpfs (whole pages).
fn footprint(dir: &Path) -> u64 {
    let mut total = 4096;
    for e in std::fs::read_dir(dir).expect("ls").flatten() {
        let meta = e.metadata().expect("stat");
        total += if meta.is_dir() {
            footprint(&e.path())
        } else {
            meta.len().div_ceil(4096) * 4096
        };
    }
    total
}

// ---------------------------------------------------------------- full disk

/// A run on a folder that fills at `kib`: exit 0 (it fit) or 1 with a last line
/// that names what was not written and why; the record stays whole; after space
/// is freed, `resume` finishes with the figures of `reference`.
/// Returns whether it got as far as a resume from a checkpoint (None: skipped).
fn fill_then_resume(file: &Path, kind: &str, kib: u64, reference: &str) -> Option<bool> {
    let fs = Tmpfs::mount(kib)?;
    let out = fs.dir.join("r");
    let o = run(file, &out, &[]);
    let code = o.status.code();
    let last = last_line(&o);
    match code {
        Some(0) => {
            assert_eq!(figures(&out), reference, "{kind} at {kib} KiB: fitted");
            eprintln!("{kind} at {kib} KiB: fitted");
            return Some(false);
        }
        Some(1) => {}
        other => panic!(
            "{kind} at {kib} KiB: exit {other:?} (want 0 or 1): {}",
            stderr(&o)
        ),
    }
    assert!(
        last.starts_with("error:") && last.contains("no space left on device"),
        "{kind} at {kib} KiB: last line must say what failed and why: {last}"
    );
    assert!(
        !out.join("summary.json").exists(),
        "{kind} at {kib} KiB: a failed run must not look finished"
    );
    if !out.join("experiment.ron").exists() {
        // Refused before anything was written (too full to start).
        assert!(last.contains("cannot write to"), "{last}");
        eprintln!("{kind} at {kib} KiB: refused before it started");
        return Some(false);
    }
    assert!(last.contains("could not save what it trained"), "{last}");
    assert_run_files_whole(&out, false);
    let has_checkpoint = trainlab::runs::checkpoints::latest(&out).is_some();
    if has_checkpoint {
        assert!(
            last.contains(&format!("trainlab resume {}", out.display())),
            "{last}"
        );
    } else {
        assert!(last.contains("no whole checkpoint"), "{last}");
    }
    // Still full: resume fails the same way, as an I/O failure (or fits in
    // what the cut-back record left free).
    let again = resume(&out);
    if has_checkpoint && again.status.success() {
        assert_eq!(
            figures(&out),
            reference,
            "{kind} at {kib} KiB: resumed still full"
        );
        return Some(true);
    }
    if has_checkpoint {
        assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
        assert!(
            last_line(&again).contains("no space left on device"),
            "{}",
            stderr(&again)
        );
        assert!(!out.join("summary.json").exists());
    }
    fs.grow();
    if has_checkpoint {
        let o = resume(&out);
        assert!(
            o.status.success(),
            "{kind} at {kib} KiB: resume: {}",
            stderr(&o)
        );
        assert_run_files_whole(&out, false);
        assert_eq!(figures(&out), reference, "{kind} at {kib} KiB: resumed");
    }
    eprintln!("{kind} at {kib} KiB: {last}");
    Some(has_checkpoint)
}

fn every_level(kind: &str) {
    let work = tempfile::tempdir().expect("tmp");
    let file = write_experiment(work.path(), kind);
    let reference_dir = work.path().join("reference");
    let o = run(&file, &reference_dir, &[]);
    assert!(o.status.success(), "{kind}: reference run: {}", stderr(&o));
    let reference = figures(&reference_dir);
    // A checkpoint is written beside the one it replaces: the peak is higher.
    let need = footprint(&reference_dir) / 1024 + 64;
    // Fill at several moments: very early, in the middle, near the end.
    let mut resumed = 0;
    for percent in [8, 35, 60, 85] {
        let kib = (need * percent / 100).max(16);
        match fill_then_resume(&file, kind, kib, &reference) {
            None => return,
            Some(r) => resumed += usize::from(r),
        }
    }
    assert!(
        resumed > 0,
        "{kind}: no fill level got as far as a checkpoint to resume"
    );
}

#[test]
fn an_image_run_on_a_filling_disk_fails_visibly_and_resumes_exactly() {
    every_level("image");
}

#[test]
fn a_language_model_on_a_filling_disk_fails_visibly_and_resumes_exactly() {
    every_level("text");
}

#[test]
fn a_gridworld_run_on_a_filling_disk_fails_visibly_and_resumes_exactly() {
    every_level("maze");
}

#[test]
fn a_points_run_on_a_filling_disk_fails_visibly_and_resumes_exactly() {
    every_level("points");
}

// ---------------------------------------------------------------- read-only

#[test]
fn a_folder_made_read_only_mid_run_fails_the_run_and_resume_finishes_it() {
    let work = tempfile::tempdir().expect("tmp");
    let file = write_experiment(work.path(), "image");
    let reference_dir = work.path().join("reference");
    let o = run(&file, &reference_dir, &["--set", "training.epochs=8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = figures(&reference_dir);
    let Some(fs) = Tmpfs::mount(64 * 1024) else {
        return;
    };
    let out = fs.dir.join("r");
    // Slow motion, so that the folder turns read-only while it trains.
    let child = trainlab()
        .arg("run")
        .arg(&file)
        .args(["--set", "training.epochs=8", "--pace", "40", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let began = Instant::now();
    while trainlab::runs::checkpoints::latest(&out).is_none() {
        assert!(began.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        fs.read_only(Duration::from_secs(5)),
        "cannot remount read-only"
    );
    let o = child.wait_with_output().expect("ends");
    let last = last_line(&o);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        last.contains("read-only file system") && last.contains("trainlab resume"),
        "{last}"
    );
    assert_run_files_whole(&out, false);
    // Still read-only: refused before anything is loaded (exit 2).
    let o = resume(&out);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        last_line(&o).contains("read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(fs.remount("rw"), "remount rw");
    let o = resume(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(figures(&out), reference);
}

#[test]
fn unwritable_output_folders_are_refused_before_any_work() {
    let work = tempfile::tempdir().expect("tmp");
    let file = write_experiment(work.path(), "image");
    // A parent that is a file: no folder can be made there.
    let blocker = work.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let o = run(&file, &blocker.join("r"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(last_line(&o).contains("cannot write to"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("parameters"),
        "refused before the model table"
    );
    let study = work.path().join("study.ron");
    std::fs::write(&study, study_text(2)).expect("write");
    let o = study::run(&study, &blocker.join("s"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let Some(fs) = Tmpfs::mount(1024) else { return };
    assert!(fs.remount("ro"), "remount ro");
    for args in [
        vec![
            "run".to_string(),
            file.display().to_string(),
            "--out".into(),
        ],
        vec![
            "study".into(),
            "run".into(),
            study.display().to_string(),
            "--out".into(),
        ],
    ] {
        let o = trainlab()
            .args(&args)
            .arg(fs.dir.join("x"))
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            last_line(&o).contains("read-only file system"),
            "{}",
            stderr(&o)
        );
    }
}

// ---------------------------------------------------------------- run --out

#[test]
fn run_out_onto_a_used_folder_refuses_and_touches_nothing() {
    let work = tempfile::tempdir().expect("tmp");
    let file = write_experiment(work.path(), "image");
    let out = work.path().join("r");
    let o = run(&file, &out, &["--set", "training.epochs=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&out);
    // The same run: pointed to resume.
    let o = run(&file, &out, &["--set", "training.epochs=1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(last_line(&o).contains("trainlab resume"), "{}", stderr(&o));
    // Another run: refused too.
    let o = run(&file, &out, &["--set", "training.epochs=2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        last_line(&o).contains("holds another run"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&out), before, "nothing in the folder changed");
    // Any other non-empty folder.
    let other = work.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), b"mine").expect("write");
    let o = run(&file, &other, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&other).expect("ls").count(), 1);
    // The resume it points to works, and files are readable by others (umask).
    let o = trainlab()
        .arg("resume")
        .arg(&out)
        .args(["--set", "training.epochs=2"])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let (_, ck) = trainlab::runs::checkpoints::latest(&out).expect("checkpoint");
    for p in [out.join("model.safetensors"), ck.join("model.safetensors")] {
        assert_eq!(mode(&p), mode(&out.join("summary.json")), "{}", p.display());
    }
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), std::fs::read(e.path()).expect("read")));
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------- kills

/// A small pseudo-random stream (seeded from the clock, printed for replay).
struct Rand(u64);

impl Rand {
    fn new() -> Self {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("fault suite seed: FAULTS_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn kill_after(mut child: Child, delay: Duration) {
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn kills_while_checkpoints_are_written_lose_nothing() {
    let work = tempfile::tempdir().expect("tmp");
    let file = write_experiment(work.path(), "image");
    // A checkpoint after every step: most of the time goes into writing them.
    let every_step = [
        "--set",
        "training.checkpoint.every_steps=Some(1)",
        "--set",
        "training.checkpoint.every_epochs=None",
    ];
    let reference_dir = work.path().join("reference");
    let o = run(&file, &reference_dir, &every_step);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = figures(&reference_dir);
    let mut rng = Rand::new();
    let out = work.path().join("r");
    let mut kills = 0;
    let began = Instant::now();
    while kills < 50 && began.elapsed() < Duration::from_secs(60) {
        let mut cmd = trainlab();
        if trainlab::runs::checkpoints::latest(&out).is_some() {
            cmd.arg("resume").arg(&out);
        } else {
            let _ = std::fs::remove_dir_all(&out);
            cmd.arg("run")
                .arg(&file)
                .args(every_step)
                .arg("--out")
                .arg(&out);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        kill_after(child, Duration::from_millis(100 + rng.below(300)));
        kills += 1;
        assert_run_files_whole(&out, true);
        if out.join("summary.json").exists() {
            // It got to the end between kills: exact, then start over.
            assert_eq!(
                figures(&out),
                reference,
                "killed and resumed after {kills} kills"
            );
            std::fs::remove_dir_all(&out).expect("start over");
        }
    }
    let o = if trainlab::runs::checkpoints::latest(&out).is_some() {
        resume(&out)
    } else {
        let _ = std::fs::remove_dir_all(&out);
        run(&file, &out, &every_step)
    };
    assert!(o.status.success(), "after {kills} kills: {}", stderr(&o));
    assert_run_files_whole(&out, false);
    assert_eq!(figures(&out), reference, "after {kills} kills");
}

fn study_text(trials: usize) -> String {
    format!(
        r#"(
    name: "kills",
    base: Inline(
        name: "mlp", seed: 5,
        dataset: Images(name: Mnist, source: Bundled, train_limit: Some(300), test_limit: Some(100)),
        model: [Flatten, Linear(out: 16), ReLU, Linear(out: 10)],
        training: (epochs: 2, batch_size: 50, tensorboard: false),
    ),
    space: {{ "optimizer.lr": LogUniform(1e-3, 1e-2) }},
    search: Random(trials: {trials}),
    objectives: [Maximize(ValAccuracy)],
    parallel: Trials(1),
    seed: 9,
)"#
    )
}

/// Objective values by trial, from the journal's Finished entries.
fn finished_values(dir: &Path) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Journal::new(dir)
        .read()
        .expect("journal")
        .into_iter()
        .filter_map(|e| match e {
            Entry::Finished { id, values, .. } => Some((id, format!("{values:?}"))),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The invariants of a study folder after any fault.
fn assert_study_whole(dir: &Path) {
    let journal = Journal::new(dir);
    let entries = journal.read().expect("journal reads");
    let mut finished: Vec<usize> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Finished { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let n = finished.len();
    finished.sort_unstable();
    finished.dedup();
    assert_eq!(finished.len(), n, "a trial finished twice: {entries:?}");
    if let Ok(text) = std::fs::read_to_string(dir.join("journal.jsonl")) {
        // Only a kill may leave a torn line, and only at the end.
        let lines: Vec<&str> = text.lines().collect();
        let whole = text.ends_with('\n');
        for (i, l) in lines.iter().enumerate() {
            if i + 1 == lines.len() && !whole {
                continue;
            }
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("journal line {}: {e}: {l}", i + 1));
        }
    }
    if let Ok(csv) = std::fs::read_to_string(dir.join("leaderboard.csv")) {
        let mut lines = csv.lines();
        let columns = lines.next().map_or(0, |h| h.split(',').count());
        assert!(csv.ends_with('\n'), "leaderboard is whole");
        for l in lines {
            assert_eq!(l.split(',').count(), columns, "leaderboard row {l}");
        }
    }
    for t in replay(&entries) {
        assert_run_files_whole(&trainlab::study::trial_dir(dir, t.id), true);
    }
}

#[test]
fn kills_of_study_workers_lose_nothing_and_rerun_nothing_finished() {
    let work = tempfile::tempdir().expect("tmp");
    let file = work.path().join("study.ron");
    std::fs::write(&file, study_text(6)).expect("write");
    let reference = work.path().join("reference");
    let o = study::run(&file, &reference);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = finished_values(&reference);
    assert_eq!(want.len(), 6);

    let out = work.path().join("s");
    let o = trainlab()
        .args(["study", "run"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut rng = Rand::new();
    kill_after(o, Duration::from_millis(100 + rng.below(300)));
    let mut kills = 1;
    let began = Instant::now();
    // Two workers on one study, killed at random moments (one or both).
    while kills < 40 && began.elapsed() < Duration::from_secs(90) {
        assert_study_whole(&out);
        let spawn = || {
            trainlab()
                .args(["study", "work"])
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starts")
        };
        let (a, mut b) = (spawn(), spawn());
        kill_after(a, Duration::from_millis(50 + rng.below(400)));
        kills += 1;
        if rng.below(2) == 0 {
            let _ = b.kill();
            kills += 1;
        }
        let _ = b.wait();
    }
    assert_study_whole(&out);
    let o = study::resume(&out);
    assert!(o.status.success(), "after {kills} kills: {}", stderr(&o));
    assert_study_whole(&out);
    let trials = replay(&Journal::new(&out).read().expect("journal"));
    assert!(
        trials.iter().all(|t| t.state == TrialState::Finished),
        "{trials:?}"
    );
    assert_eq!(finished_values(&out), want, "figures as without kills");
}

// ---------------------------------------------------------------- studies, full

#[test]
fn a_study_on_a_full_disk_stops_naming_the_trial_and_resumes() {
    let work = tempfile::tempdir().expect("tmp");
    let file = work.path().join("study.ron");
    std::fs::write(&file, study_text(4)).expect("write");
    let reference = work.path().join("reference");
    let o = study::run(&file, &reference);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = finished_values(&reference);
    let need = footprint(&reference) / 1024;
    for percent in [20, 50, 80] {
        let Some(fs) = Tmpfs::mount((need * percent / 100).max(16)) else {
            return;
        };
        let out = fs.dir.join("s");
        let o = study::run(&file, &out);
        match o.status.code() {
            Some(0) => {
                assert_eq!(finished_values(&out), want);
                continue;
            }
            Some(1) => {}
            other => panic!("study at {percent}%: exit {other:?}: {}", stderr(&o)),
        }
        let last = last_line(&o);
        assert!(
            last.contains("study \"kills\"") && last.contains("no space left on device"),
            "{last}"
        );
        if !out.join("study.ron").exists() {
            // Too full to make the study: nothing to resume.
            continue;
        }
        assert!(last.contains("trainlab study resume"), "{last}");
        assert_study_whole(&out);
        let before = finished_values(&out);
        let started_before = Journal::new(&out).read().expect("journal").len();
        fs.grow();
        let o = study::resume(&out);
        assert!(o.status.success(), "study at {percent}%: {}", stderr(&o));
        assert_study_whole(&out);
        let entries = Journal::new(&out).read().expect("journal");
        for (id, _) in &before {
            assert!(
                !entries[started_before..]
                    .iter()
                    .any(|e| matches!(e, Entry::Started { id: s, .. } if s == id)),
                "trial {id} had finished and ran again"
            );
        }
        assert_eq!(finished_values(&out), want, "study at {percent}%");
    }
}
