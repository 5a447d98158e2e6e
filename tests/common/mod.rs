//! Helpers shared by the training integration tests.

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

/// The summary of a run that finished.
pub fn summary(events: &[TrainEvent]) -> &RunSummary {
    match events.last() {
        Some(TrainEvent::Finished(s)) => s,
        other => panic!("expected Finished last, got {other:?}"),
    }
}
