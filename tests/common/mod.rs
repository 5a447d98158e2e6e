//! Helpers shared by the training integration tests.

// Each test crate compiles this module and uses only some of it.
#![allow(dead_code)]

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

/// The summary of a run that finished.
pub fn summary(events: &[TrainEvent]) -> &RunSummary {
    match events.last() {
        Some(TrainEvent::Finished(s)) => s,
        other => panic!("expected Finished last, got {other:?}"),
    }
}
