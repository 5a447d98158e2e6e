//! Studies as the tests drive them: `trainlab study run` and `resume` as a user
//! types them, and a study killed part-way (SIGKILL) once it reached a point.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use super::trainlab;

/// `trainlab study run FILE --out OUT` to its end; its output, whatever the exit.
pub fn run(file: &Path, out: &Path) -> Output {
    trainlab()
        .args(["study", "run"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs")
}

/// `trainlab study resume OUT` to its end; its output, whatever the exit.
pub fn resume(out: &Path) -> Output {
    trainlab()
        .args(["study", "resume"])
        .arg(out)
        .output()
        .expect("runs")
}

/// Starts `trainlab study run FILE --out OUT`, asks `reached` every `poll` until
/// it answers, then kills the study (SIGKILL) and waits for it; `reached`'s
/// answer. Fails after two minutes, saying it waited for `what`.
pub fn kill_when<T>(
    file: &Path,
    out: &Path,
    what: &str,
    poll: Duration,
    mut reached: impl FnMut() -> Option<T>,
) -> T {
    let mut child = trainlab()
        .args(["study", "run"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let began = Instant::now();
    let answer = loop {
        if let Some(answer) = reached() {
            break answer;
        }
        assert!(began.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(poll);
    };
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    answer
}

/// The trials with a `Finished` entry in `entries`, in journal order.
pub fn finished_ids(entries: &[trainlab::study::Entry]) -> Vec<usize> {
    entries
        .iter()
        .filter_map(|e| match e {
            trainlab::study::Entry::Finished { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}
