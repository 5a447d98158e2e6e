//! The workbench window: panels, tabs, shortcuts, and turning what views report
//! into effects (files, runs, background jobs).
//!
//! Contract: [`TrainlabApp::show`] draws one frame into any `Ui` (eframe's window or a
//! kittest harness); worker events arrive through the live run's relay and are folded
//! into [`RunSeries`] at the start of a frame. Only [`Persisted`] survives restarts.

use std::path::{Path, PathBuf};

use egui::{Color32, Key, KeyboardShortcut, Modifiers, Ui};
use serde::{Deserialize, Serialize};

use super::editor::controls::{LiveRate, Pace, RunAction, pace_control, run_controls};
use super::editor::dataset::{dataset_picker, use_folder, use_image_folder};
use super::editor::document::{Document, example_files};
use super::editor::hyperparams::{devices, hyperparams_with};
use super::editor::lr_finder::LrFinder;
use super::editor::menu::{MenuAction, top_bar};
use super::editor::model_editor::{RED, model_editor};
use super::editor::prompts::{
    PathAnswer, PathPrompt, PathPurpose, UnsavedChoice, path_modal, unsaved_modal,
};
use super::state::inspect::Inspector;
use super::state::live::LiveRun;
use super::state::run_state::{RunSeries, RunState};
use super::views::compress::{CompressAction, compress_view};
use super::views::curves::{CurveSettings, curves_view};
use super::views::history::HistoryAction;
use super::views::maze_view::maze_tab;
use super::views::playground::playground_tab;
use super::views::rl_curves::rl_curves_view;
use super::views::status_bar::status_bar;
use super::views::study::StudyAction;
use super::views::text_view::text_tab;
use super::views::{Tab, ViewStates};
use crate::events::Control;
use crate::runs::default_run_dir;
use crate::spec::{DatasetSpec, DeviceSpec, to_ron_string, validate};

/// What is remembered between sessions (eframe storage, key [`eframe::APP_KEY`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// The experiment under edit, as RON.
    pub experiment_ron: String,
    /// Its file, if any.
    pub path: Option<PathBuf>,
    /// Recent files, newest first.
    pub recent: Vec<PathBuf>,
    /// Plot settings.
    pub curves: CurveSettings,
    /// The open tab.
    pub tab: Tab,
    /// Where runs are recorded and listed.
    pub runs_root: PathBuf,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            experiment_ron: to_ron_string(&crate::spec::Experiment::default()),
            path: None,
            recent: Vec::new(),
            curves: CurveSettings::default(),
            tab: Tab::default(),
            runs_root: PathBuf::from("runs"),
        }
    }
}

/// Something that would replace the experiment under edit; with unsaved edits it
/// waits for the learner's Save / Discard / Cancel.
#[derive(Debug, Clone)]
enum Replacement {
    /// File > New.
    New,
    /// A file (experiment, study file or folder) from a menu, the history or a prompt.
    Open(PathBuf),
    /// A study trial's experiment.
    Adopt(Box<crate::spec::Experiment>),
}

/// The application state.
pub struct TrainlabApp {
    /// The experiment being edited.
    pub doc: Document,
    /// The current (or last) run's series.
    pub series: RunSeries,
    /// The open tab.
    pub tab: Tab,
    /// Where runs are recorded and listed.
    pub runs_root: PathBuf,
    /// Messages shown in the error banner until dismissed.
    pub errors: Vec<String>,
    /// Trained model, test-set analysis, canvas (see `inspect`).
    pub inspector: Inspector,
    /// Every view's own state (see `views`).
    pub views: ViewStates,
    /// Whether the notes panel is open (when the experiment has notes).
    pub notes_open: bool,
    /// The "Find lr" range test and its window.
    pub lr_finder: LrFinder,
    /// Slow motion: applied at Start and sent live when changed during a run.
    pub pace: Pace,
    /// Ask the system's file dialogs for paths (tests turn this off: the path
    /// prompt then shows at once, as when no dialog program is installed).
    pub native_dialogs: bool,
    /// What waits for the answer to "save your edits first?".
    unsaved_prompt: Option<Replacement>,
    /// A path being typed by hand, and what to do after a Save As.
    path_prompt: Option<(PathPrompt, Option<Replacement>)>,
    live: Option<LiveRun>,
    live_lr: LiveRate,
    /// The live run's slow-motion pace (steps per second), None at full speed.
    live_pace: Option<f64>,
    devices: Vec<DeviceSpec>,
    examples: Vec<PathBuf>,
    lessons: Vec<PathBuf>,
    last_title: String,
    /// The kind of data the shown figures were made for; a different kind picked
    /// in the editor makes them stale.
    last_dataset: std::mem::Discriminant<DatasetSpec>,
}

impl TrainlabApp {
    /// An app restored from `persisted`.
    pub fn from_persisted(p: Persisted) -> Self {
        let Persisted {
            experiment_ron,
            path,
            recent,
            curves,
            tab,
            runs_root,
        } = p;
        let doc = Document::restore(&experiment_ron, path, recent);
        let last_dataset = std::mem::discriminant(&doc.exp.dataset);
        let mut app = Self {
            live_lr: LiveRate::of(&doc.exp),
            live_pace: None,
            doc,
            series: RunSeries::default(),
            tab,
            errors: Vec::new(),
            inspector: Inspector::default(),
            views: ViewStates::default(),
            live: None,
            pace: Pace::default(),
            native_dialogs: true,
            unsaved_prompt: None,
            path_prompt: None,
            notes_open: true,
            lr_finder: LrFinder::default(),
            devices: devices(),
            examples: example_files(&crate::util::install::experiments_dir()),
            lessons: example_files(&crate::util::install::experiments_dir().join("lessons")),
            last_title: String::new(),
            last_dataset,
            runs_root,
        };
        app.views.curves.settings = curves;
        app.inspector.load_latest(&app.runs_root, None);
        app
    }

    /// A fresh app recording runs under `runs_root` (tests use a temporary folder).
    pub fn with_runs_root(runs_root: &Path) -> Self {
        Self::from_persisted(Persisted {
            runs_root: runs_root.to_path_buf(),
            ..Persisted::default()
        })
    }

    /// Used by eframe: restores the last session from storage.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let persisted = cc
            .storage
            .and_then(|s| eframe::get_value::<Persisted>(s, eframe::APP_KEY))
            .unwrap_or_default();
        Self::from_persisted(persisted)
    }

    /// What to remember.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            experiment_ron: to_ron_string(&self.doc.exp),
            path: self.doc.path.clone(),
            recent: self.doc.recent.clone(),
            curves: self.views.curves.settings.clone(),
            tab: self.tab,
            runs_root: self.runs_root.clone(),
        }
    }

    /// What the Curves tab's plot `name` ("loss_plot", "accuracy_plot", "lr_plot",
    /// "speed_plot"; mazes: "rl_return", "rl_length", "rl_eps", "rl_loss") showed
    /// when it was last drawn: what its "Save PNG" and "Save SVG" write.
    pub fn curve_figure(&self, name: &str) -> Option<&super::figure::Figure> {
        self.views.curves.cache.figure(name)
    }

    /// Changes the live run's pace as the "full speed" box does (None: full speed).
    pub fn set_live_pace(&mut self, pace: Option<f64>, ctx: &egui::Context) {
        self.run_action(RunAction::SetPace(pace), ctx);
    }

    /// Whether a run is going (started and not yet finished).
    pub fn is_running(&self) -> bool {
        self.live.is_some()
    }

    /// Opens an experiment file, a study file (offered to run in the Study tab), or
    /// a study folder (or its study.ron), shown live in the Study tab; an error goes
    /// to the banner.
    pub fn open_path(&mut self, path: &Path) {
        let is_study_dir = |d: &Path| d.join(crate::study::STUDY_FILE).is_file();
        if path.is_dir() {
            if is_study_dir(path) {
                self.views.study.open_folder(path);
                self.tab = Tab::Study;
            } else {
                self.errors.push(format!(
                    "{} is not a study folder (it has no {}).",
                    path.display(),
                    crate::study::STUDY_FILE
                ));
            }
            return;
        }
        if let Some(dir) = path.parent()
            && path
                .file_name()
                .is_some_and(|n| n == crate::study::STUDY_FILE)
            && dir.join("journal.jsonl").is_file()
        {
            self.views.study.open_folder(dir);
            self.tab = Tab::Study;
            return;
        }
        let as_study = crate::spec::load_study(path);
        if let Ok(study) = as_study {
            self.views.study.open_file(path, study);
            self.tab = Tab::Study;
            return;
        }
        if let Err(e) = self.doc.open(path) {
            // A file that reads like a study gets the study loader's message.
            let looks_like_study = std::fs::read_to_string(path)
                .is_ok_and(|t| t.contains("objectives") && t.contains("space"));
            match as_study {
                Err(se) if looks_like_study => {
                    self.errors.push(format!("Could not open the study: {se}"));
                }
                _ => self
                    .errors
                    .push(format!("Could not open the experiment: {e}")),
            }
        } else {
            self.live_lr = LiveRate::of(&self.doc.exp);
            // The banner's open errors were about the file this one replaces.
            self.errors.retain(|e| !e.starts_with("Could not open"));
            self.document_switched();
        }
    }

    /// Another experiment is now under edit: a finished run's figures (status
    /// bar, curves, playground box) belonged to the one before, so they go; a
    /// live run keeps showing, it is still going.
    fn document_switched(&mut self) {
        self.last_dataset = std::mem::discriminant(&self.doc.exp.dataset);
        if self.live.is_some() {
            return;
        }
        self.series = RunSeries::default();
        self.views.playground.forget_run();
    }

    fn study_action(&mut self, action: StudyAction, ctx: &egui::Context) {
        let studies = self.runs_root.join("studies");
        match action {
            StudyAction::ShowRun(id) => {
                let Some(d) = &self.views.study.data else {
                    return;
                };
                let dir = crate::study::trial_dir(&d.dir, id);
                if !dir.join(crate::runs::files::METRICS).is_file() {
                    self.errors.push(format!(
                        "Trial {id:04} has not started yet: nothing to plot."
                    ));
                    return;
                }
                let name = d.study.as_ref().map_or("study", |s| s.spec.name.as_str());
                let label = format!("{name}/{id:04}");
                self.views.compare_run_labelled(&dir, &label, ctx);
                self.tab = Tab::Curves;
            }
            StudyAction::OpenExperiment(id) => {
                let Some(d) = &self.views.study.data else {
                    return;
                };
                let file = crate::study::trial_dir(&d.dir, id).join(crate::runs::files::EXPERIMENT);
                let exp = crate::spec::load_file(&file)
                    .map_err(|e| e.to_string())
                    .or_else(|e| {
                        // Not started yet: the base experiment with the trial's settings.
                        let study = d.study.as_ref().ok_or(e)?;
                        let t = d
                            .trials
                            .iter()
                            .find(|t| t.id == id)
                            .ok_or("no such trial")?;
                        crate::study::trial_experiment(study, id, &t.params)
                            .map_err(|e| e.to_string())
                    });
                match exp {
                    Ok(exp) => self.request(Replacement::Adopt(Box::new(exp))),
                    Err(e) => self
                        .errors
                        .push(format!("Cannot open trial {id:04} as an experiment: {e}")),
                }
            }
            StudyAction::RunFile => {
                let Some((_, study)) = self.views.study.file.clone() else {
                    return;
                };
                let dir = default_run_dir(&studies, &study.spec.name);
                if let Err(e) = self.views.study.start(Some(study), &dir, ctx) {
                    self.errors.push(format!("Cannot run the study: {e}"));
                }
            }
            StudyAction::Continue => {
                let Some(dir) = self.views.study.data.as_ref().map(|d| d.dir.clone()) else {
                    return;
                };
                if let Err(e) = self.views.study.start(None, &dir, ctx) {
                    self.errors.push(format!("Cannot work on the study: {e}"));
                }
            }
            StudyAction::StartExplore => match self.views.study.explore.build(&self.doc.exp) {
                Ok(study) => {
                    let dir = default_run_dir(&studies, &study.spec.name);
                    if let Err(e) = self.views.study.start(Some(study), &dir, ctx) {
                        self.errors.push(format!("Cannot start the study: {e}"));
                    }
                }
                Err(e) => self.errors.push(format!("Cannot start the study: {e}")),
            },
        }
    }

    /// Draws one frame.
    pub fn show(&mut self, ui: &mut Ui) {
        self.pump_events(ui.ctx());
        self.inspector.poll(ui.ctx(), &mut self.errors);
        self.views.poll(
            ui.ctx(),
            self.tab,
            (&self.doc.exp.dataset, self.doc.exp.seed),
            &self.runs_root,
            &mut self.errors,
        );
        self.views.study.poll(ui.ctx(), &mut self.errors);
        self.views.compress.poll(ui.ctx());
        self.errors.append(&mut self.views.compress.errors);
        if std::mem::take(&mut self.views.compress.wrote_runs) {
            self.views.refresh_history(&self.runs_root);
        }
        self.handle_view_requests(ui.ctx());
        if std::mem::discriminant(&self.doc.exp.dataset) != self.last_dataset {
            self.document_switched();
        }
        self.shortcuts(ui);
        self.update_title(ui.ctx());

        egui::Panel::top("top_bar").show(ui, |ui| {
            if let Some(a) = top_bar(ui, &self.doc, &self.examples, &self.lessons) {
                self.menu_action(a);
            }
        });
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            status_bar(
                ui,
                &self.series,
                self.doc.exp.training.epochs,
                self.live_pace,
            );
        });
        // Side panels sized to the window, so a 1024-wide one keeps room for the tabs.
        let window = ui.available_width();
        egui::Panel::left("editor")
            .default_size((window * 0.3).clamp(300.0, 420.0))
            .resizable(true)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.editor(ui));
            });
        self.notes_panel(ui);
        let mut study_action = None;
        let mut compress_action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            self.error_banner(ui);
            let (curves, overlays) = self.views.curves_and_overlays();
            let mut all: Vec<&RunSeries> = Vec::new();
            if !self.series.steps.step.is_empty() || self.series.state != RunState::Idle {
                all.push(&self.series);
            }
            all.extend(overlays);
            let ctx = super::views::ViewContext {
                exp: &self.doc.exp,
                series: &self.series,
                runs_root: &self.runs_root,
                live: self.live.is_some(),
            };
            Tab::bar(ui, &mut self.tab, Tab::visible(&self.doc.exp));
            ui.separator();
            let rl = matches!(self.doc.exp.dataset, DatasetSpec::Gridworld(_));
            match self.tab {
                Tab::Curves if rl => {
                    rl_curves_view(ui, &mut curves.settings, &mut curves.cache, &all)
                }
                Tab::Curves => curves_view(ui, &mut curves.settings, &mut curves.cache, &all),
                Tab::Maze => {
                    let live = self.live.is_some();
                    maze_tab(
                        ui,
                        &mut self.views.maze,
                        &mut self.doc.exp,
                        &self.series,
                        live,
                    );
                }
                Tab::Text => {
                    let live = self.live.is_some();
                    text_tab(ui, &mut self.views.text, &self.doc.exp, &self.series, live);
                }
                Tab::Study => study_action = self.views.study.show(ui, &self.doc.exp),
                Tab::Compress => compress_action = compress_view(ui, &mut self.views.compress),
                Tab::Playground => {
                    let live = self.live.is_some();
                    playground_tab(
                        ui,
                        &mut self.views.playground,
                        &self.doc.exp,
                        &self.series,
                        live,
                    );
                }
                other => self.views.show(ui, other, &ctx, &mut self.inspector),
            }
        });
        if let Some(a) = study_action {
            self.study_action(a, ui.ctx());
        }
        if let Some(a) = compress_action {
            self.compress_action(a, ui.ctx());
        }
        self.prompts(ui);
        self.send_probes();
    }

    /// The experiment's notes on the right (lessons), when it has any.
    fn notes_panel(&mut self, ui: &mut Ui) {
        if self.doc.exp.notes.trim().is_empty() {
            return;
        }
        if !self.notes_open {
            egui::Panel::right("notes_closed").show(ui, |ui| {
                if ui
                    .button("◀ Notes")
                    .on_hover_text("Show the experiment's notes.")
                    .clicked()
                {
                    self.notes_open = true;
                }
            });
            return;
        }
        let window = ui.ctx().content_rect().width();
        egui::Panel::right("notes")
            .default_size((window * 0.24).clamp(220.0, 340.0))
            .resizable(true)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.strong("Notes");
                    if ui
                        .small_button("hide ▶")
                        .on_hover_text("Fold the notes away.")
                        .clicked()
                    {
                        self.notes_open = false;
                    }
                });
                ui.separator();
                egui::ScrollArea::vertical()
                    .id_salt("notes_scroll")
                    .show(ui, |ui| {
                        super::editor::notes::notes_view(ui, &self.doc.exp.notes)
                    });
            });
    }

    /// Keeps the live model's answers (canvas, weights) fresh and sends the probes.
    fn send_probes(&mut self) {
        let Some(live) = &self.live else {
            self.inspector.take_probes();
            self.views.text.take_probes();
            self.views.take_probes();
            self.views.playground.run_ended();
            return;
        };
        if self.series.state.is_live() {
            self.inspector
                .refresh_live(self.tab == Tab::Draw, self.tab == Tab::Weights);
            let points = matches!(self.doc.exp.dataset, DatasetSpec::Points(_));
            self.views
                .playground
                .refresh(true, points && self.tab == Tab::Playground);
        }
        let mut probes = self.inspector.take_probes();
        probes.extend(self.views.text.take_probes());
        probes.extend(self.views.playground.take_probes());
        probes.extend(self.views.take_probes());
        for p in probes {
            live.send(Control::Probe(p));
        }
    }

    fn handle_view_requests(&mut self, ctx: &egui::Context) {
        for request in self.views.take_requests() {
            match request {
                HistoryAction::Inspect(dir) => {
                    match crate::spec::load_file(&dir.join(crate::runs::files::EXPERIMENT)) {
                        Ok(exp) => {
                            self.views.text.load_run(&dir, &exp, ctx);
                            self.inspector.load_run(&dir, exp, ctx);
                        }
                        Err(e) => self.errors.push(format!("Cannot inspect that run: {e}")),
                    }
                }
                HistoryAction::OpenExperiment(path) => self.request(Replacement::Open(path)),
                HistoryAction::Compress(dir) => self.open_compress(&dir, ctx),
                HistoryAction::Resume { dir, extra_epochs } => {
                    if let Err(e) = self.resume_run(&dir, extra_epochs, ctx) {
                        self.errors
                            .push(format!("Cannot resume {}: {e}", dir.display()));
                    }
                }
            }
        }
    }

    /// Opens the Compress tab on the finished run in `dir`; an error (no model)
    /// goes to the banner.
    pub fn open_compress(&mut self, dir: &Path, ctx: &egui::Context) {
        let before = self.errors.len();
        self.views.compress.open(dir, &self.runs_root, ctx);
        self.errors.append(&mut self.views.compress.errors);
        if self.errors.len() == before {
            self.tab = Tab::Compress;
        }
    }

    fn compress_action(&mut self, action: CompressAction, ctx: &egui::Context) {
        match action {
            CompressAction::Overlay(dir, label) => {
                let run = self
                    .views
                    .compress
                    .run
                    .as_ref()
                    .and_then(|r| r.file_name())
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                self.views
                    .compare_run_labelled(&dir, &format!("{run}/{label}"), ctx);
                self.tab = Tab::Curves;
            }
            CompressAction::Inspect(dir) => {
                self.views.push_request(HistoryAction::Inspect(dir));
            }
            CompressAction::ShowHistory => {
                self.views.refresh_history(&self.runs_root);
                self.tab = Tab::History;
            }
        }
    }

    fn editor(&mut self, ui: &mut Ui) {
        let problem = validate(&self.doc.exp).err().map(|e| e.to_string());
        let state = self.series.state.clone();
        if self.live.is_none() {
            // The disabled live row shows the rate a run would start with.
            self.live_lr = LiveRate::of(&self.doc.exp);
        }
        if let Some(a) = run_controls(ui, &state, problem.as_deref(), &mut self.live_lr) {
            self.run_action(a, ui.ctx());
        }
        let unit = if matches!(self.doc.exp.dataset, DatasetSpec::Gridworld(_)) {
            "episodes"
        } else {
            "steps"
        };
        if pace_control(ui, &mut self.pace, unit) {
            let pace = self.pace.value();
            self.run_action(RunAction::SetPace(pace), ui.ctx());
        }
        ui.separator();
        egui::CollapsingHeader::new("Dataset")
            .default_open(true)
            .show(ui, |ui| {
                let out = dataset_picker(ui, &mut self.doc.exp);
                if out.pick_folder
                    && let Some(dir) = rfd::FileDialog::new()
                        .set_title("Folder with the four IDX files")
                        .pick_folder()
                {
                    use_folder(&mut self.doc.exp, dir);
                }
                if out.pick_image_folder
                    && let Some(dir) = rfd::FileDialog::new()
                        .set_title("Folder with one subfolder of images per class")
                        .pick_folder()
                {
                    use_image_folder(&mut self.doc.exp, dir);
                }
            });
        egui::CollapsingHeader::new("Model")
            .default_open(true)
            .show(ui, |ui| {
                if crate::spec::uses_model(&self.doc.exp) {
                    model_editor(ui, &mut self.doc.exp);
                } else {
                    ui.weak("Q-learning and SARSA keep a table of values, not a network: pick DQN under Hyperparameters to train the layers here.");
                }
            });
        egui::CollapsingHeader::new("Hyperparameters")
            .default_open(true)
            .show(ui, |ui| {
                let finder = Some(&mut self.lr_finder);
                hyperparams_with(ui, &mut self.doc.exp, &self.devices, finder);
            });
        if let Some(lr) = self.lr_finder.window(ui.ctx()) {
            self.doc.exp.optimizer.set_lr(lr);
        }
        ui.horizontal(|ui| {
            let label = ui
                .label("Name")
                .on_hover_text("Used for the run folder name and plot legends.");
            ui.text_edit_singleline(&mut self.doc.exp.name)
                .labelled_by(label.id);
        });
    }

    fn error_banner(&mut self, ui: &mut Ui) {
        let mut dismiss = None;
        for (i, e) in self.errors.iter().enumerate() {
            egui::Frame::new()
                .fill(Color32::from_rgb(80, 20, 20))
                .inner_margin(6.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        // The button comes first so a long message cannot push it away.
                        if ui.small_button("dismiss").clicked() {
                            dismiss = Some(i);
                        }
                        ui.colored_label(RED, "⚠");
                        ui.add(
                            egui::Label::new(egui::RichText::new(e).color(Color32::WHITE)).wrap(),
                        );
                    });
                });
        }
        if let Some(i) = dismiss {
            self.errors.remove(i);
        }
    }

    fn pump_events(&mut self, ctx: &egui::Context) {
        let Some(live) = &self.live else { return };
        let (events, ended) = live.drain();
        for e in &events {
            if let crate::events::TrainEvent::Probed(answer) = e {
                self.inspector.on_answer(answer);
                self.views.text.on_answer(answer);
                self.views.playground.on_answer(answer);
                self.views.on_answer(answer);
                continue;
            }
            self.series.apply(e);
            if let crate::events::TrainEvent::Failed { message, .. } = e {
                self.errors.push(format!("The run failed: {message}"));
            }
        }
        // After the drain: a run that ended put its final snapshot there first.
        if let Some(p) = live.take_policy() {
            self.series.show_policy(p);
        }
        if ended {
            if let Some(live) = self.live.take()
                && matches!(self.series.state, RunState::Finished(_))
            {
                // Each view takes the kinds of model it shows (images, text).
                self.inspector
                    .load_run(&live.run_dir, live.experiment.clone(), ctx);
                self.views
                    .text
                    .load_run(&live.run_dir, &live.experiment, ctx);
            }
            if self.series.state.is_live() {
                self.series.state =
                    RunState::Failed("the worker ended without a final event".into());
            }
            self.views.refresh_history(&self.runs_root);
        }
    }

    fn run_action(&mut self, action: RunAction, ctx: &egui::Context) {
        match action {
            RunAction::Start => self.start_run(ctx),
            RunAction::Pause => self.send(Control::Pause),
            RunAction::Resume => self.send(Control::Resume),
            RunAction::Stop => self.send(Control::Stop),
            RunAction::SetLearningRate(lr) => self.send(Control::SetLearningRate(lr)),
            RunAction::SetPace(p) => {
                // Only a live run hears it; the next Start takes `self.pace` anyway.
                if let Some(live) = &self.live {
                    live.send(Control::SetPace(p));
                    self.live_pace = p;
                }
            }
        }
    }

    fn send(&mut self, control: Control) {
        if let Some(live) = &self.live
            && !live.send(control)
        {
            self.errors.push("The run has already ended.".into());
        }
    }

    /// Starts a run of the current experiment (no-op with a message when invalid or busy).
    pub fn start_run(&mut self, ctx: &egui::Context) {
        if self.live.is_some() {
            return;
        }
        if let Err(e) = validate(&self.doc.exp) {
            self.errors.push(format!("Cannot start: {e}"));
            return;
        }
        let exp = self.doc.exp.clone();
        let run_dir = default_run_dir(&self.runs_root, &exp.name);
        self.series = RunSeries::starting(
            &run_dir
                .file_name()
                .map_or_else(|| exp.name.clone(), |n| n.to_string_lossy().into_owned()),
        );
        self.live_lr = LiveRate::of(&exp);
        let ctx = ctx.clone();
        let pace = self.pace.value();
        self.live_pace = pace;
        self.views.playground.forget_run();
        self.last_dataset = std::mem::discriminant(&exp.dataset);
        self.live = Some(LiveRun::start(exp, run_dir, pace, move |after| {
            ctx.request_repaint_after(after)
        }));
        // The playground is the view to watch a points run in; others go to the curves.
        if self.tab != Tab::Playground {
            self.tab = Tab::Curves;
        }
    }

    /// Continues the run in `dir` from its newest checkpoint, `extra_epochs` beyond
    /// its own; the curves start with what it recorded before the checkpoint.
    pub fn resume_run(
        &mut self,
        dir: &Path,
        extra_epochs: usize,
        ctx: &egui::Context,
    ) -> anyhow::Result<()> {
        if self.live.is_some() {
            return Err(anyhow::anyhow!("a run is in progress; stop it first"));
        }
        let mut exp = crate::spec::load_file(&dir.join(crate::runs::files::EXPERIMENT))?;
        exp.training.epochs += extra_epochs;
        validate(&exp)?;
        let (_, checkpoint) = crate::runs::checkpoints::latest(dir).ok_or_else(|| {
            anyhow::anyhow!(
                "it has no checkpoint (it stopped before its first one, or ended with keep_last 0)"
            )
        })?;
        let before = crate::runs::read_events_before(dir, &checkpoint)
            .map_err(|e| anyhow::anyhow!("cannot read its record: {e}"))?;
        let label = dir
            .file_name()
            .map_or_else(|| exp.name.clone(), |n| n.to_string_lossy().into_owned());
        // The rate in force at the checkpoint: the file's, or the last live change.
        self.live_lr = LiveRate::of(&exp);
        self.live_lr.value = before
            .iter()
            .rev()
            .find_map(|e| match e {
                crate::events::TrainEvent::LrChanged { lr, .. } => Some(*lr),
                _ => None,
            })
            .unwrap_or(self.live_lr.value);
        self.series = RunSeries::from_events(&label, &before);
        self.series.state = RunState::Starting;
        self.live_pace = None;
        let ctx = ctx.clone();
        self.live = Some(LiveRun::resume(
            exp,
            dir.to_path_buf(),
            checkpoint,
            move |after| ctx.request_repaint_after(after),
        ));
        self.tab = Tab::Curves;
        Ok(())
    }

    fn menu_action(&mut self, action: MenuAction) {
        match action {
            MenuAction::New => self.request(Replacement::New),
            MenuAction::Open => {
                let picked = if self.native_dialogs {
                    rfd::FileDialog::new()
                        .add_filter("experiment or study", &["ron"])
                        .pick_file()
                } else {
                    None
                };
                match picked {
                    Some(p) => self.request(Replacement::Open(p)),
                    None => self.ask_path(PathPurpose::OpenFile, None),
                }
            }
            MenuAction::OpenPath(p) => self.request(Replacement::Open(p)),
            MenuAction::OpenStudyFolder => {
                let picked = if self.native_dialogs {
                    rfd::FileDialog::new()
                        .set_title("A study folder (with study.ron and journal.jsonl)")
                        .pick_folder()
                } else {
                    None
                };
                match picked {
                    Some(dir) => self.request(Replacement::Open(dir)),
                    None => self.ask_path(PathPurpose::OpenStudyFolder, None),
                }
            }
            MenuAction::Save => match self.doc.path.clone() {
                Some(p) => {
                    self.save_to(&p);
                }
                None => self.menu_action(MenuAction::SaveAs),
            },
            MenuAction::SaveAs => {
                self.save_as_then(None);
            }
        }
    }

    /// Save As (the native dialog, else the path prompt), then `then`.
    fn save_as_then(&mut self, then: Option<Replacement>) {
        let name = format!("{}.ron", self.doc.exp.name);
        let picked = if self.native_dialogs {
            rfd::FileDialog::new()
                .add_filter("experiment", &["ron"])
                .set_file_name(name)
                .save_file()
        } else {
            None
        };
        match picked {
            Some(p) => {
                if self.save_to(&p)
                    && let Some(r) = then
                {
                    self.carry_out(r);
                }
            }
            None => self.ask_path(PathPurpose::SaveAs, then),
        }
    }

    /// Shows the path prompt (no dialog came back with a path).
    fn ask_path(&mut self, purpose: PathPurpose, then: Option<Replacement>) {
        let text = match purpose {
            PathPurpose::SaveAs => format!("{}.ron", self.doc.exp.name),
            _ => String::new(),
        };
        self.path_prompt = Some((PathPrompt { purpose, text }, then));
    }

    /// Replaces the document with `r`, first asking about unsaved edits.
    fn request(&mut self, r: Replacement) {
        if self.doc.is_dirty() && self.replaces_document(&r) {
            self.unsaved_prompt = Some(r);
        } else {
            self.carry_out(r);
        }
    }

    /// Whether `r` would put another experiment under edit (a study opens in the
    /// Study tab and leaves the document alone).
    fn replaces_document(&self, r: &Replacement) -> bool {
        match r {
            Replacement::New | Replacement::Adopt(_) => true,
            Replacement::Open(path) => !opens_as_study(path),
        }
    }

    fn carry_out(&mut self, r: Replacement) {
        match r {
            Replacement::New => {
                self.doc.replace(crate::spec::Experiment::default());
                self.document_switched();
            }
            Replacement::Open(path) => self.open_path(&path),
            Replacement::Adopt(exp) => {
                self.doc.adopt(*exp);
                self.live_lr = LiveRate::of(&self.doc.exp);
                self.document_switched();
            }
        }
    }

    /// The two modal questions, when one is open.
    fn prompts(&mut self, ui: &mut Ui) {
        if let Some(r) = &self.unsaved_prompt {
            let what = match r {
                Replacement::New => "starting a new experiment".to_string(),
                Replacement::Open(p) => format!(
                    "opening {}",
                    p.file_name().map_or_else(
                        || p.display().to_string(),
                        |n| n.to_string_lossy().into_owned()
                    )
                ),
                Replacement::Adopt(e) => format!("opening the trial experiment {}", e.name),
            };
            let name = self
                .doc
                .path
                .as_deref()
                .and_then(Path::file_name)
                .map_or_else(
                    || "The experiment".to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
            let has_file = self.doc.path.is_some();
            if let Some(choice) = unsaved_modal(ui, &name, &what, has_file)
                && let Some(r) = self.unsaved_prompt.take()
            {
                match choice {
                    UnsavedChoice::Cancel => {}
                    UnsavedChoice::Discard => self.carry_out(r),
                    UnsavedChoice::Save => match self.doc.path.clone() {
                        Some(p) => {
                            if self.save_to(&p) {
                                self.carry_out(r);
                            }
                        }
                        None => self.save_as_then(Some(r)),
                    },
                }
            }
        }
        if let Some((prompt, _)) = &mut self.path_prompt
            && let Some(answer) = path_modal(ui, prompt)
            && let Some((prompt, then)) = self.path_prompt.take()
        {
            match (answer, prompt.purpose) {
                (PathAnswer::Cancel, _) => {}
                (PathAnswer::Go(p), PathPurpose::SaveAs) => {
                    if self.save_to(&p)
                        && let Some(r) = then
                    {
                        self.carry_out(r);
                    }
                }
                (PathAnswer::Go(p), PathPurpose::OpenFile | PathPurpose::OpenStudyFolder) => {
                    if p.exists() {
                        self.request(Replacement::Open(p));
                    } else {
                        self.errors.push(format!(
                            "Could not open {}: there is no such file or folder.",
                            p.display()
                        ));
                    }
                }
            }
        }
    }

    /// Saves to `path`; false (and a message in the banner) when it failed.
    fn save_to(&mut self, path: &Path) -> bool {
        match self.doc.save_to(path) {
            Ok(()) => true,
            Err(e) => {
                self.errors.push(e.to_string());
                false
            }
        }
    }

    fn shortcuts(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        let save = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
        let open = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
        let start = KeyboardShortcut::new(Modifiers::COMMAND, Key::Enter);
        if ctx.input_mut(|i| i.consume_shortcut(&save)) {
            self.menu_action(MenuAction::Save);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&open)) {
            self.menu_action(MenuAction::Open);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&start)) && validate(&self.doc.exp).is_ok() {
            self.start_run(&ctx);
        }
        // Space toggles pause, unless the user is typing into a field.
        if !ctx.text_edit_focused() && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Space))
        {
            match self.series.state {
                RunState::Running => self.send(Control::Pause),
                RunState::Paused => self.send(Control::Resume),
                _ => {}
            }
        }
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let title = self.doc.title();
        if title != self.last_title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.last_title = title;
        }
    }
}

/// Whether `path` opens in the Study tab (a study folder, its study.ron, or a
/// study file) rather than as the experiment under edit.
fn opens_as_study(path: &Path) -> bool {
    path.is_dir()
        || (path
            .file_name()
            .is_some_and(|n| n == crate::study::STUDY_FILE)
            && path
                .parent()
                .is_some_and(|d| d.join("journal.jsonl").is_file()))
        || crate::spec::load_study(path).is_ok()
}

impl eframe::App for TrainlabApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.persisted());
    }
}
