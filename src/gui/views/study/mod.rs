//! The Study tab: a study folder read live from disk (trials table, overlaid
//! curves, parallel coordinates, knob scatters, Pareto front), a study file opened
//! but not yet run, and the Explore panel that makes a study of the experiment
//! under edit.
//!
//! Contract: [`StudyState::poll`] runs once per frame and only takes what the
//! background reader and the study's workers produced; the page functions draw and
//! return a [`StudyAction`] that the app carries out (open a trial's run, load its
//! experiment, start or continue a study). One study folder is shown at a time.

mod controller;
mod curves;
mod explore;
mod parallel;
mod pareto;
mod runner;
mod scale;
mod scatter;
mod state;
mod table;

use std::path::Path;

use egui::Ui;

pub use curves::Metric;
pub use explore::SearchPick;
pub use pareto::ParetoState;
pub use state::{StudyData, StudyState, StudyWatch};
pub use table::{Column, TableState};

use crate::spec::{Experiment, LoadedStudy, Search};
use runner::StudyRunner;
use scale::short;

/// What the learner asked for in the Study tab.
#[derive(Debug, Clone, PartialEq)]
pub enum StudyAction {
    /// Show trial `id`'s run in Curves.
    ShowRun(usize),
    /// Load trial `id`'s exact experiment into the editor, unsaved.
    OpenExperiment(usize),
    /// Run the opened study file in a new folder.
    RunFile,
    /// Work on the open study folder (continue what is left).
    Continue,
    /// Build a study from the Explore panel and run it.
    StartExplore,
}

/// The pages of the Study tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    /// The trials table.
    #[default]
    Trials,
    /// Overlaid curves.
    Curves,
    /// Parallel coordinates.
    Parallel,
    /// First objective vs each knob.
    Scatter,
    /// Two objectives and their front.
    Pareto,
    /// Make a study of the experiment under edit.
    Explore,
    /// A controller study's policy and episodes.
    Controller,
}

impl Page {
    const ALL: [Page; 7] = [
        Page::Controller,
        Page::Trials,
        Page::Curves,
        Page::Parallel,
        Page::Scatter,
        Page::Pareto,
        Page::Explore,
    ];

    fn label(self) -> &'static str {
        match self {
            Page::Trials => "Trials",
            Page::Curves => "Trial curves",
            Page::Parallel => "Parallel coordinates",
            Page::Scatter => "Objective vs knobs",
            Page::Pareto => "Pareto",
            Page::Explore => "Explore",
            Page::Controller => "Controller",
        }
    }
}

impl StudyState {
    /// Shows the study in `dir` (read from the next frame on).
    pub fn open_folder(&mut self, dir: &Path) {
        self.opening = Some(dir.to_path_buf());
        self.file = None;
        if self.page == Page::Explore {
            self.page = Page::Trials;
        }
    }

    /// Shows a study file that has not been run.
    pub fn open_file(&mut self, path: &Path, study: LoadedStudy) {
        self.file = Some((path.to_path_buf(), study));
        if self.page == Page::Explore {
            self.page = Page::Trials;
        }
    }

    /// Whether this window is working on a study now.
    pub fn is_working(&self) -> bool {
        self.runner.as_ref().is_some_and(StudyRunner::is_running)
    }

    /// Starts working on `dir` (creating it for `study` when given) and shows it.
    pub fn start(
        &mut self,
        study: Option<LoadedStudy>,
        dir: &Path,
        ctx: &egui::Context,
    ) -> anyhow::Result<()> {
        if self.is_working() {
            anyhow::bail!("this window is already working on a study; wait for it to end");
        }
        let c = ctx.clone();
        self.runner = Some(StudyRunner::start(study, dir, move || c.request_repaint()));
        self.progress.clear();
        self.outcome = None;
        self.open_folder(dir);
        Ok(())
    }

    /// Takes what the reader and the workers produced (never blocks).
    pub fn poll(&mut self, ctx: &egui::Context, errors: &mut Vec<String>) {
        if let Some(dir) = self.opening.take() {
            let c = ctx.clone();
            self.watch = None; // ends the previous reader
            self.watch = Some(StudyWatch::start(&dir, move || c.request_repaint()));
            self.data = Some(StudyData::new(&dir));
            self.table = TableState::default();
            self.pareto = ParetoState::default();
        }
        if let (Some(w), Some(d)) = (&self.watch, &mut self.data) {
            let updates = w.drain();
            d.apply(updates);
            if d.study.is_none()
                && let Some(e) = d.error.take()
            {
                errors.push(format!("Cannot open the study {}: {e}", d.dir.display()));
                self.data = None;
                self.watch = None;
            }
        }
        if let Some(r) = &mut self.runner {
            self.progress = r.lines();
            match r.poll() {
                None => {}
                Some(Ok(line)) => {
                    self.outcome = Some(line);
                    self.runner = None;
                }
                Some(Err(e)) => {
                    errors.push(format!("The study stopped: {e}"));
                    self.outcome = Some(format!("stopped: {e}"));
                    self.runner = None;
                }
            }
        }
    }

    /// Draws the tab; `exp` is the experiment under edit (for Explore).
    pub fn show(&mut self, ui: &mut Ui, exp: &Experiment) -> Option<StudyAction> {
        let mut action = None;
        if let Some((path, study)) = &self.file {
            file_header(ui, path, study, self.is_working(), &mut action);
            ui.separator();
        }
        if let Some(d) = &self.data {
            summary_line(ui, d, self.is_working(), &mut action);
        } else if self.file.is_none() {
            ui.label("No study open: open a study folder or study file (File menu), or explore the experiment under edit below.");
        }
        if self.is_working() || self.outcome.is_some() {
            let last = self.progress.last().cloned().unwrap_or_default();
            let head = match &self.outcome {
                Some(o) => format!("Done: {o}"),
                None => format!("Working… {last}"),
            };
            egui::CollapsingHeader::new(head)
                .id_salt("study_progress")
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("study_progress_lines")
                        .max_height(160.0)
                        .stick_to_bottom(true)
                        .show(ui, |ui| {
                            for l in &self.progress {
                                ui.label(egui::RichText::new(l).monospace());
                            }
                        });
                });
        }
        let has_data = self.data.is_some();
        if !has_data {
            self.page = Page::Explore;
        }
        let controller = (self.data.as_ref().and_then(|d| d.study.as_ref()))
            .is_some_and(|s| matches!(s.spec.search, Search::Controller(_)));
        if self.page == Page::Controller && !controller {
            self.page = Page::Trials;
        }
        ui.horizontal_wrapped(|ui| {
            for p in Page::ALL {
                if p == Page::Controller && !controller {
                    continue;
                }
                if has_data || p == Page::Explore {
                    ui.selectable_value(&mut self.page, p, p.label());
                }
            }
        });
        ui.separator();
        let page_action = match (self.page, &self.data) {
            (Page::Explore, _) => {
                let busy = self.is_working();
                explore::explore_panel(ui, &mut self.explore, exp, busy)
                    .map(|_| StudyAction::StartExplore)
            }
            (_, None) => None,
            (Page::Trials, Some(d)) => table::trials_table(ui, d, &mut self.table),
            (Page::Controller, Some(d)) => {
                controller::controller_page(ui, d);
                None
            }
            (Page::Curves, Some(d)) => {
                curves::study_curves(ui, d, &mut self.metric);
                None
            }
            (Page::Parallel, Some(d)) => {
                parallel::parallel_coordinates(ui, d);
                None
            }
            (Page::Scatter, Some(d)) => {
                scatter::knob_scatter(ui, d);
                None
            }
            (Page::Pareto, Some(d)) => {
                pareto::pareto_view(ui, d, &mut self.pareto);
                None
            }
        };
        action.or(page_action)
    }

    /// Trial ids in the table's order (as last drawn or as the sort now says).
    pub fn table_order(&mut self) -> Vec<usize> {
        let Some(d) = &self.data else {
            return Vec::new();
        };
        let idx = self.table.order(d).to_vec();
        idx.into_iter()
            .filter_map(|i| d.trials.get(i).map(|t| t.id))
            .collect()
    }
}

fn search_text(s: &Search) -> String {
    match s {
        Search::Grid => "grid".into(),
        Search::Random { trials } => format!("random, {trials} trials"),
        Search::Asha {
            trials,
            min_epochs,
            max_epochs,
            eta,
        } => format!("ASHA, {trials} trials, {min_epochs}..{max_epochs} epochs, eta {eta}"),
        Search::Controller(c) => format!(
            "controller, {} episodes, a decision every {} steps",
            c.episodes, c.decide_every_steps
        ),
        other => format!("{other:?}"),
    }
}

fn file_header(
    ui: &mut Ui,
    path: &Path,
    study: &LoadedStudy,
    busy: bool,
    action: &mut Option<StudyAction>,
) {
    let s = &study.spec;
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!("Study file {}", path.display()));
        ui.label(format!(
            "\"{}\" on {}: explores {}; {}; objectives {}.",
            s.name,
            study.base.name,
            s.space.keys().cloned().collect::<Vec<_>>().join(", "),
            search_text(&s.search),
            s.objectives
                .iter()
                .map(|o| o.label())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if ui
            .add_enabled(!busy, egui::Button::new("▶ Run study"))
            .on_hover_text("Create a study folder under the runs folder and train its trials here.")
            .clicked()
        {
            *action = Some(StudyAction::RunFile);
        }
    });
}

fn summary_line(ui: &mut Ui, d: &StudyData, busy: bool, action: &mut Option<StudyAction>) {
    let c = &d.derived.counts;
    ui.horizontal_wrapped(|ui| {
        let name = d
            .study
            .as_ref()
            .map_or_else(|| "…".to_string(), |s| s.spec.name.clone());
        ui.strong(format!("Study \"{name}\""));
        ui.weak(d.dir.display().to_string());
        ui.label(format!(
            "{} trials: {} done, {} running, {} pending, {} failed, {} stopped early.",
            d.trials.len(),
            c.finished,
            c.running,
            c.pending,
            c.failed,
            c.stopped
        ));
        if let (Some((id, v)), Some(o)) = (d.derived.best, d.objectives().first()) {
            ui.label(format!(
                "Best so far: {} {} (trial {id:04}).",
                o.label(),
                short(v)
            ));
        }
        let left = c.pending + c.running;
        if !busy
            && left > 0
            && ui
                .button("Work on it")
                .on_hover_text(
                    "Train what is left of this study here (other processes may work on it too).",
                )
                .clicked()
        {
            *action = Some(StudyAction::Continue);
        }
        if let Some(e) = &d.error {
            ui.colored_label(scale::FAILED, e);
        }
    });
}
