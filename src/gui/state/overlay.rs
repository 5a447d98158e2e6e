//! The past runs ticked for comparison: their series, read back from their
//! `metrics.jsonl` on background jobs, which the Curves and Layers tabs draw beside
//! the current run (History, Study and Compress tick them).
//!
//! Contract: a run is read on a [`Job`], never in a frame; [`Overlays::poll`] only
//! takes finished reads. Asking again for a run already overlaid reads it afresh
//! (a trial still training). A record with a torn last line is overlaid without
//! it, and the line for the user says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::gui::state::job::{Job, take_finished};
use crate::gui::state::run_state::RunSeries;
use crate::runs::{files, read_record};

/// A run read for the overlay, and a line for the user when part of its
/// record could not be read.
type LoadedRun = (RunSeries, Option<String>);

/// The runs overlaid on the plots, by folder, and those still being read.
#[derive(Default)]
pub struct Overlays {
    /// Runs overlaid on the plots, by folder.
    runs: BTreeMap<PathBuf, RunSeries>,
    /// Runs being read: the series, and a line to show when part of the record
    /// could not be read (a torn last line).
    loading: Vec<(PathBuf, Job<LoadedRun>)>,
    /// Errors to report (taken by the app).
    pub errors: Vec<String>,
}

impl Overlays {
    /// Starts overlaying the run in `dir`, named by its folder in the legend.
    pub fn add(&mut self, dir: &Path, ctx: &egui::Context) {
        let label = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        self.add_labelled(dir, &label, ctx);
    }

    /// Starts overlaying the run in `dir`, named `label` in the legend.
    pub fn add_labelled(&mut self, dir: &Path, label: &str, ctx: &egui::Context) {
        // Asked again (a trial still training): read it afresh.
        self.runs.remove(dir);
        self.loading.retain(|(d, _)| d != dir);
        let label = label.to_string();
        let path = dir.to_path_buf();
        let ctx = ctx.clone();
        let job = Job::spawn(
            "history",
            move || ctx.request_repaint(),
            move || {
                let (events, note) = read_record(&path).map_err(|e| {
                    anyhow::anyhow!("cannot read {}: {e}", path.join(files::METRICS).display())
                })?;
                Ok((RunSeries::from_events(&label, &events), note))
            },
        );
        self.loading.push((dir.to_path_buf(), job));
    }

    /// Takes finished reads.
    pub fn poll(&mut self) {
        for (dir, outcome) in take_finished(&mut self.loading) {
            match outcome {
                Ok((series, note)) => {
                    self.runs.insert(dir, series);
                    self.errors.extend(note);
                }
                Err(e) => self.errors.push(e),
            }
        }
    }

    /// Whether overlaid runs are still being read.
    pub fn is_loading(&self) -> bool {
        !self.loading.is_empty()
    }

    /// Whether the run in `dir` is overlaid or being read.
    pub fn is_ticked(&self, dir: &Path) -> bool {
        self.runs.contains_key(dir) || self.loading.iter().any(|(d, _)| d == dir)
    }

    /// Stops overlaying the run in `dir` (and drops a read in flight).
    pub fn remove(&mut self, dir: &Path) {
        self.runs.remove(dir);
        self.loading.retain(|(d, _)| d != dir);
    }

    /// Whether no run is overlaid.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Stops overlaying every run.
    pub fn clear(&mut self) {
        self.runs.clear();
    }

    /// The overlaid runs, by folder.
    pub fn runs(&self) -> impl Iterator<Item = &RunSeries> {
        self.runs.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{StepMetrics, TrainEvent};

    fn wait(overlays: &mut Overlays) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while overlays.is_loading() && std::time::Instant::now() < deadline {
            overlays.poll();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A record whose last line was cut (a run killed while writing it) still
    /// overlays its whole lines, and the window says what was skipped.
    #[test]
    fn a_torn_last_line_is_skipped_and_said() {
        let dir = tempfile::tempdir().expect("tmp");
        let step = |step| {
            TrainEvent::Step(StepMetrics {
                step,
                epoch: 0.1,
                loss: 1.5,
                accuracy: 0.5,
                lr: 1e-3,
                samples_per_sec: 100.0,
                steps_covered: 1,
            })
        };
        let mut text = String::new();
        for s in [1, 2] {
            text.push_str(&serde_json::to_string(&step(s)).expect("json"));
            text.push('\n');
        }
        let third = serde_json::to_string(&step(3)).expect("json");
        text.push_str(&third[..third.len() / 2]);
        std::fs::write(dir.path().join(files::METRICS), text).expect("write");

        let ctx = egui::Context::default();
        let mut overlays = Overlays::default();
        overlays.add_labelled(dir.path(), "torn", &ctx);
        assert!(overlays.is_ticked(dir.path()), "ticked while it is read");
        wait(&mut overlays);
        let series = overlays.runs.get(dir.path()).expect("overlaid");
        assert_eq!(
            series.steps.step,
            vec![1.0, 2.0],
            "the two whole lines, not the torn one"
        );
        assert!(
            overlays
                .errors
                .iter()
                .any(|e| e.contains("incomplete line") && e.contains(files::METRICS)),
            "{:?}",
            overlays.errors
        );
        overlays.remove(dir.path());
        assert!(overlays.is_empty() && !overlays.is_ticked(dir.path()));
    }

    /// A folder without a record is reported by name and overlays nothing.
    #[test]
    fn a_missing_record_is_an_error_not_an_overlay() {
        let dir = tempfile::tempdir().expect("tmp");
        let ctx = egui::Context::default();
        let mut overlays = Overlays::default();
        overlays.add(dir.path(), &ctx);
        wait(&mut overlays);
        assert!(overlays.is_empty() && !overlays.is_ticked(dir.path()));
        assert!(
            overlays.errors.iter().any(|e| e.contains(files::METRICS)),
            "{:?}",
            overlays.errors
        );
    }
}
