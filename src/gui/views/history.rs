//! The run history: past run folders under the runs root, newest first, with their
//! final figures; tick any number to overlay their curves on the plots, inspect one
//! (its model feeds the confusion matrix, gallery, weights and canvas), open its
//! experiment in the editor, resume / extend it from its newest checkpoint, or
//! compress it (its pruned variants, in `<run>-compressed/`, are listed too), or
//! save its metrics as CSV.
//!
//! Contract: the folder is rescanned on request and when a run ends, never per
//! frame; the ticks start and stop overlays, which are shared state
//! ([`Overlays`], read on background jobs) rather than this view's own.

use std::path::{Path, PathBuf};

use egui::Ui;

use crate::events::StopReason;
use crate::gui::state::overlay::Overlays;
use crate::runs::{RunListing, files, list_runs, read_events};

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

/// History state: the listing and the learner's settings (the runs ticked for
/// comparison are [`Overlays`]).
#[derive(Default)]
pub struct HistoryState {
    listing: Vec<RunListing>,
    scanned: Option<PathBuf>,
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

    /// Scans once per root.
    pub fn poll(&mut self, root: &Path) {
        if self.scanned.as_deref() != Some(root) {
            self.refresh(root);
        }
    }

    /// The line above the table: where the runs are, refresh, clear, extend-by.
    fn toolbar(&mut self, ui: &mut Ui, root: &Path, overlays: &mut Overlays) {
        ui.horizontal(|ui| {
            ui.label(format!("Runs in {}", root.display()));
            if ui
                .button("Refresh")
                .on_hover_text("Look for new run folders.")
                .clicked()
            {
                self.refresh(root);
            }
            if !overlays.is_empty() && ui.button("Clear comparison").clicked() {
                overlays.clear();
            }
            ui.separator();
            self.extend_epochs = self.extend_epochs.max(1);
            ui.label("extend by");
            ui.add(egui::DragValue::new(&mut self.extend_epochs).range(1..=1000))
                .on_hover_text("How many epochs \"extend\" trains a run further.");
            ui.label("epochs");
        });
    }

    /// Draws the table, its ticks starting and stopping `overlays`; returns what
    /// the learner chose.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        root: &Path,
        overlays: &mut Overlays,
    ) -> Option<HistoryAction> {
        let mut action = None;
        self.toolbar(ui, root, overlays);
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
                    let mut on = overlays.is_ticked(&run.dir);
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
                overlays.add(&dir, &ctx);
            } else {
                overlays.remove(&dir);
            }
        }
        action
    }
}
