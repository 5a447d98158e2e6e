//! The run history: past run folders under the runs root, newest first, with their
//! final figures; tick any number to overlay their curves on the plots, inspect one
//! (its model feeds the confusion matrix, gallery, weights and canvas), open its
//! experiment in the editor, resume / extend it from its newest checkpoint, or
//! compress it (its pruned variants, in `<run>-compressed/`, are listed too), or
//! save its metrics as CSV.
//!
//! Contract: the folder is rescanned on request and when a run ends, never per
//! frame; overlaid runs are read from metrics.jsonl on a background [`Job`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use egui::Ui;

use crate::events::StopReason;
use crate::gui::state::job::{Job, take_finished};
use crate::gui::state::run_state::RunSeries;
use crate::runs::{RunListing, files, list_runs, read_events, read_record};

/// What the learner asked for in the history.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryAction {
    /// Load this run's model into the inspector.
    Inspect(PathBuf),
    /// Open this run's experiment.ron in the editor.
    OpenExperiment(PathBuf),
    /// Open the Compress tab on this run.
    Compress(PathBuf),
    /// Continue this run from its newest checkpoint, training `extra_epochs` more
    /// epochs than its experiment says (0: just finish it).
    Resume {
        /// The run folder.
        dir: PathBuf,
        /// Epochs added to the run's own.
        extra_epochs: usize,
    },
}

/// Writes the metrics of the run in `run_dir` to `path` as CSV (the columns of
/// `trainlab export csv`), to a temporary name first, then renamed.
pub fn save_metrics_csv(run_dir: &Path, path: &Path) -> anyhow::Result<()> {
    let events = read_events(run_dir).map_err(|e| anyhow::anyhow!("{}: {e}", run_dir.display()))?;
    let csv = crate::runs::metrics_csv(&events);
    crate::util::atomic::write_atomic(path, csv.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A run read for the overlay, and a line for the user when part of its
/// record could not be read.
type LoadedRun = (RunSeries, Option<String>);

/// History state.
#[derive(Default)]
pub struct HistoryState {
    listing: Vec<RunListing>,
    scanned: Option<PathBuf>,
    /// Runs overlaid on the plots, by folder.
    pub overlay: BTreeMap<PathBuf, RunSeries>,
    /// Runs being read: the series, and a line to show when part of the record
    /// could not be read (a torn last line).
    loading: Vec<(PathBuf, Job<LoadedRun>)>,
    /// Errors to report (read by the app).
    pub errors: Vec<String>,
    /// How many epochs "extend" adds (at least 1).
    pub extend_epochs: usize,
}

impl HistoryState {
    /// Rescans `root`, with the pruned variants in its `*-compressed` folders
    /// (labelled `folder/variant`, after the runs directly under `root`).
    pub fn refresh(&mut self, root: &Path) {
        self.listing = list_runs(root);
        let mut groups: Vec<PathBuf> = std::fs::read_dir(root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_dir()
                            && p.file_name()
                                .is_some_and(|n| n.to_string_lossy().ends_with("-compressed"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        groups.sort();
        for group in groups {
            let name = group
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let mut variants = list_runs(&group);
            variants.sort_by(|a, b| a.label.cmp(&b.label));
            for mut v in variants {
                v.label = format!("{name}/{}", v.label);
                self.listing.push(v);
            }
        }
        self.scanned = Some(root.to_path_buf());
    }

    /// Scans once per root; takes finished loads.
    pub fn poll(&mut self, root: &Path) {
        if self.scanned.as_deref() != Some(root) {
            self.refresh(root);
        }
        for (dir, outcome) in take_finished(&mut self.loading) {
            match outcome {
                Ok((series, note)) => {
                    self.overlay.insert(dir, series);
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

    /// Starts overlaying the run in `dir`.
    pub fn add_overlay(&mut self, dir: &Path, ctx: &egui::Context) {
        let label = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        self.add_overlay_labelled(dir, &label, ctx);
    }

    /// Starts overlaying the run in `dir`, named `label` in the legend.
    pub fn add_overlay_labelled(&mut self, dir: &Path, label: &str, ctx: &egui::Context) {
        // Asked again (a trial still training): read it afresh.
        self.overlay.remove(dir);
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

    /// Draws the table; returns what the learner chose.
    pub fn show(&mut self, ui: &mut Ui, root: &Path) -> Option<HistoryAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            ui.label(format!("Runs in {}", root.display()));
            if ui
                .button("Refresh")
                .on_hover_text("Look for new run folders.")
                .clicked()
            {
                self.refresh(root);
            }
            if !self.overlay.is_empty() && ui.button("Clear comparison").clicked() {
                self.overlay.clear();
            }
            ui.separator();
            self.extend_epochs = self.extend_epochs.max(1);
            ui.label("extend by");
            ui.add(egui::DragValue::new(&mut self.extend_epochs).range(1..=1000))
                .on_hover_text("How many epochs \"extend\" trains a run further.");
            ui.label("epochs");
        });
        if self.listing.is_empty() {
            ui.label("No runs yet. Every run you start is recorded here (experiment, metrics, summary, weights).");
            return None;
        }
        let ctx = ui.ctx().clone();
        let mut toggled: Vec<(PathBuf, bool)> = Vec::new();
        egui::ScrollArea::vertical().id_salt("history").show(ui, |ui| {
            egui::Grid::new("history_grid").striped(true).num_columns(7).show(ui, |ui| {
                for h in ["compare", "run", "test acc", "val acc", "steps", "time", ""] {
                    ui.strong(h);
                }
                ui.end_row();
                for run in &self.listing {
                    let mut on = self.overlay.contains_key(&run.dir) || self.loading.iter().any(|(d, _)| d == &run.dir);
                    if ui.checkbox(&mut on, "").on_hover_text("Overlay this run's curves on the plots.").changed() {
                        toggled.push((run.dir.clone(), on));
                    }
                    ui.label(&run.label);
                    let pct = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |a| format!("{:.2}%", a * 100.0));
                    match &run.summary {
                        Some(s) => {
                            ui.label(pct(s.test_accuracy));
                            ui.label(pct(s.val_accuracy));
                            ui.label(s.steps.to_string());
                            ui.label(super::status_bar::format_duration(s.wall_seconds));
                        }
                        None => {
                            ui.weak("unfinished");
                            ui.label("");
                            ui.label("");
                            ui.label("");
                        }
                    }
                    ui.horizontal(|ui| {
                        // Mazes are inspected in their own tab, from the run's Q-values.
                        let has_weights = run.dir.join(files::WEIGHTS).is_file()
                            && run.summary.as_ref().is_none_or(|s| s.rl.is_none());
                        if ui
                            .add_enabled(has_weights, egui::Button::new("inspect"))
                            .on_hover_text("Use this run's model for the confusion matrix, mistakes, weights and canvas.")
                            .clicked()
                        {
                            action = Some(HistoryAction::Inspect(run.dir.clone()));
                        }
                        if ui
                            .add_enabled(has_weights, egui::Button::new("compress"))
                            .on_hover_text("Prune this run's model to several sparsities: accuracy, size and speed of each.")
                            .clicked()
                        {
                            action = Some(HistoryAction::Compress(run.dir.clone()));
                        }
                        if ui.button("open").on_hover_text("Load this run's experiment into the editor.").clicked() {
                            action = Some(HistoryAction::OpenExperiment(run.dir.join(files::EXPERIMENT)));
                        }
                        let unfinished = run.summary.as_ref().is_none_or(|s| s.reason == StopReason::Stopped);
                        let at = run.checkpoint_step.map_or_else(String::new, |s| format!(" (step {s})"));
                        if ui
                            .add_enabled(run.checkpoint_step.is_some() && unfinished, egui::Button::new("resume"))
                            .on_hover_text(format!("Continue this stopped or killed run from its last checkpoint{at}, into the same folder."))
                            .clicked()
                        {
                            action = Some(HistoryAction::Resume { dir: run.dir.clone(), extra_epochs: 0 });
                        }
                        if ui
                            .add_enabled(run.checkpoint_step.is_some(), egui::Button::new("extend"))
                            .on_hover_text(format!("Train this run {} more epoch(s) from its last checkpoint{at}.", self.extend_epochs))
                            .clicked()
                        {
                            action = Some(HistoryAction::Resume { dir: run.dir.clone(), extra_epochs: self.extend_epochs });
                        }
                        if ui
                            .button("csv")
                            .on_hover_text("Save this run's metrics as CSV: a row per step, a column per figure (as `trainlab export csv`).")
                            .clicked()
                            && let Some(path) = rfd::FileDialog::new()
                                .add_filter("CSV", &["csv"])
                                .set_file_name(format!("{}.csv", run.label.replace(['/', '\\'], "_")))
                                .save_file()
                            && let Err(e) = save_metrics_csv(&run.dir, &path)
                        {
                            self.errors.push(format!("Could not save the CSV: {e}"));
                        }
                    });
                    ui.end_row();
                }
            });
        });
        for (dir, on) in toggled {
            if on {
                self.add_overlay(&dir, &ctx);
            } else {
                self.overlay.remove(&dir);
            }
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{StepMetrics, TrainEvent};

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
        let mut history = HistoryState::default();
        history.add_overlay_labelled(dir.path(), "torn", &ctx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while history.is_loading() && std::time::Instant::now() < deadline {
            history.poll(dir.path());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let series = history.overlay.get(dir.path()).expect("overlaid");
        assert_eq!(
            series.steps.step,
            vec![1.0, 2.0],
            "the two whole lines, not the torn one"
        );
        assert!(
            history
                .errors
                .iter()
                .any(|e| e.contains("incomplete line") && e.contains(files::METRICS)),
            "{:?}",
            history.errors
        );
    }
}
