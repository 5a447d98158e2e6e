//! Helpers shared by the training integration tests.

// Each test crate compiles this module and uses only some of it.
#![allow(dead_code)]

pub mod experiments;
pub mod study;
pub mod workbench;

use trainlab::spec::Experiment;
use trainlab::train::{RunSummary, StartOptions, TrainEvent, start};

/// Runs `exp` to the end and returns every event received.
pub fn run_all(exp: Experiment, options: StartOptions) -> Vec<TrainEvent> {
    trainlab::spec::validate(&exp).expect("valid experiment");
    let handle = start(exp, options);
    let events: Vec<TrainEvent> = handle.events().iter().collect();
    handle.join();
    events
}

/// Every file below `dir` (recursively), sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("a readable folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The loss of every Step event, in order.
pub fn step_losses(events: &[TrainEvent]) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(s.loss),
            _ => None,
        })
        .collect()
}

/// An Episodes event's figures without its timing, which differs between runs.
pub fn untimed_episodes(m: &trainlab::events::EpisodeMetrics) -> String {
    let mut m = m.clone();
    m.steps_per_sec = 0.0;
    format!("{m:?}")
}

/// The summary of a run that finished.
pub fn summary(events: &[TrainEvent]) -> &RunSummary {
    match events.last() {
        Some(TrainEvent::Finished(s)) => s,
        other => panic!("expected Finished last, got {other:?}"),
    }
}

/// The trainlab binary of this build.
pub fn trainlab() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_trainlab"))
}

/// Fails the test, with both outputs, unless the command `o` came from
/// succeeded; its standard output.
pub fn succeeded(o: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// Fails the test unless each of `names` is a file in `dir`.
pub fn assert_files(dir: &std::path::Path, names: &[&str]) {
    for f in names {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
}

/// A Python for which `python -c CODE` succeeds: $TRAINLAB_PYTHON, the venv
/// .ci/run makes (/opt/trainlab-torch), or python3. None, with a note naming
/// `packages`, where none has them; under CI=true that is a failure, since
/// .ci/run installs them.
pub fn python_with(code: &str, packages: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let candidates = [
        std::env::var_os("TRAINLAB_PYTHON").map(PathBuf::from),
        Some(PathBuf::from("/opt/trainlab-torch/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    let found = candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", code])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Python with {packages}: .ci/run installs them in /opt/trainlab-torch"
        );
        eprintln!("skipping: no Python with {packages} (pip install {packages})");
    }
    found
}

/// Runs `python` with `args` (a script and its arguments, or `-c CODE ...`) on
/// one thread (the models are small, CI has two cores); its standard output.
/// Fails the test with both outputs when Python fails.
pub fn run_python<S: AsRef<std::ffi::OsStr>>(
    python: &std::path::Path,
    args: impl IntoIterator<Item = S>,
) -> String {
    let o = std::process::Command::new(python)
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("python runs");
    succeeded(&o)
}
