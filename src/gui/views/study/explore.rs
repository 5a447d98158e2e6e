//! The Explore panel: turns the experiment under edit into a study. Every number,
//! switch and name in the experiment is listed as its `--set` path (found by
//! walking the experiment's JSON tree, the same tree `--set` walks); tick the ones
//! to explore and give each a range and scale (numbers) or choices (switches,
//! names); pick the search and objectives; "Start study" builds a study with the
//! experiment written in.
//!
//! Contract: [`ExploreState::build`] never panics; it writes the study as RON and
//! reads it back through [`load_study`], so every mistake is reported exactly as
//! for a study file (the message names the path at fault). The knob list is
//! rebuilt only when the experiment changed, keeping what was set per path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use egui::Ui;
use serde_json::Value;

use crate::spec::{
    BaseSpec, Experiment, Figure, LoadedStudy, Objective, Parallel, Param, Search, StudySpec,
    load_study, study_to_ron,
};

/// What a knob holds.
#[derive(Debug, Clone, PartialEq)]
pub enum KnobKind {
    /// A number (whole when `integer`).
    Number {
        /// Its value in the experiment.
        value: f64,
        /// Whether only whole numbers fit.
        integer: bool,
    },
    /// A switch.
    Bool(bool),
    /// A name or text (e.g. a unit enum variant).
    Name(String),
}

/// One explorable path and what the user set for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    /// The `--set` path.
    pub path: String,
    /// Its kind and current value.
    pub kind: KnobKind,
    /// Explore it.
    pub on: bool,
    /// Numbers: range.
    pub low: f64,
    /// Numbers: range.
    pub high: f64,
    /// Numbers: log scale.
    pub log: bool,
    /// Numbers under grid search: how many values.
    pub steps: usize,
    /// Switches and names: comma-separated choices.
    pub choices: String,
}

impl Knob {
    fn new(path: String, kind: KnobKind) -> Self {
        let (low, high, log, choices) = match &kind {
            KnobKind::Number { value, integer } => {
                let v = *value;
                if *integer {
                    let lo = (v / 2.0).floor().max(1.0);
                    (lo, (v * 2.0).max(lo + 1.0), v >= 8.0, String::new())
                } else if v > 0.0 && v < 1.0 {
                    (v / 10.0, (v * 10.0).min(1.0), true, String::new())
                } else if v == 0.0 {
                    (0.0, 1.0, false, String::new())
                } else {
                    (v / 2.0, v * 2.0, false, String::new())
                }
            }
            KnobKind::Bool(_) => (0.0, 1.0, false, "true, false".into()),
            KnobKind::Name(n) => (0.0, 1.0, false, n.clone()),
        };
        Self {
            path,
            kind,
            on: false,
            low: low.min(high),
            high: high.max(low),
            log,
            steps: 3,
            choices,
        }
    }
}

/// Every number, switch and name in `exp` that its kind of learning uses, as
/// `--set` paths (arrays by index, enum variants by name): the agent's settings
/// only for a maze, the network's and optimizer's only where there is one.
pub fn knobs(exp: &Experiment) -> Vec<(String, KnobKind)> {
    let mut out = Vec::new();
    if let Ok(tree) = serde_json::to_value(exp) {
        walk(&tree, "", &mut out);
    }
    let maze = matches!(exp.dataset, crate::spec::DatasetSpec::Gridworld(_));
    let network = crate::spec::uses_model(exp);
    out.retain(|(path, _)| {
        let under = |root: &str| path == root || path.starts_with(&format!("{root}."));
        if under("agent") {
            return maze;
        }
        if under("model") || under("optimizer") || under("schedule") {
            return network;
        }
        // A maze trains no batches: the supervised loop's settings do nothing.
        !(maze && under("training"))
    });
    out
}

/// Whether objective `o` is measured for `exp`'s kind of learning.
pub fn fits(exp: &Experiment, o: &Objective) -> bool {
    use crate::spec::{DatasetSpec, TextTask};
    let figure = match o {
        Objective::Maximize(f) | Objective::Minimize(f) => *f,
    };
    let maze = matches!(exp.dataset, DatasetSpec::Gridworld(_));
    let language_model = matches!(
        &exp.dataset,
        DatasetSpec::Text(t) if matches!(t.task, TextTask::LanguageModel(_))
    );
    match figure {
        Figure::SuccessRate | Figure::PathRatio => maze,
        Figure::BitsPerToken => language_model,
        Figure::Parameters => crate::spec::uses_model(exp),
        Figure::TrainSeconds => true,
        _ => !maze,
    }
}

fn walk(v: &Value, path: &str, out: &mut Vec<(String, KnobKind)>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                walk(v, &join(k), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(v, &join(&i.to_string()), out);
            }
        }
        Value::Number(n) => {
            if let Some(value) = n.as_f64() {
                let integer = n.is_i64() || n.is_u64();
                out.push((path.to_string(), KnobKind::Number { value, integer }));
            }
        }
        Value::Bool(b) => out.push((path.to_string(), KnobKind::Bool(*b))),
        Value::String(s) if !path.is_empty() && path != "name" => {
            out.push((path.to_string(), KnobKind::Name(s.clone())));
        }
        Value::String(_) | Value::Null => {}
    }
}

/// The search method picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchPick {
    /// Every combination.
    Grid,
    /// Random points.
    #[default]
    Random,
    /// Successive halving.
    Asha,
    /// Population-based training (optimizer settings only).
    Pbt,
}

/// The objectives offered, in order (the first ticked drives the search).
pub const OFFERED: [Objective; 10] = [
    Objective::Maximize(Figure::ValAccuracy),
    Objective::Minimize(Figure::ValLoss),
    Objective::Maximize(Figure::TestAccuracy),
    Objective::Minimize(Figure::TestLoss),
    Objective::Minimize(Figure::TrainLoss),
    Objective::Minimize(Figure::BitsPerToken),
    Objective::Minimize(Figure::Parameters),
    Objective::Minimize(Figure::TrainSeconds),
    Objective::Maximize(Figure::SuccessRate),
    Objective::Minimize(Figure::PathRatio),
];

/// The panel's state.
#[derive(Debug, Clone)]
pub struct ExploreState {
    /// Every explorable path of the experiment.
    pub knobs: Vec<Knob>,
    source: Option<Experiment>,
    /// Study name (empty: the experiment's name + "_study").
    pub name: String,
    /// Search method.
    pub search: SearchPick,
    /// Random / ASHA: how many trials.
    pub trials: usize,
    /// ASHA: epochs of the first rung.
    pub min_epochs: usize,
    /// ASHA: epochs of a trial never stopped.
    pub max_epochs: usize,
    /// ASHA: reduction factor.
    pub eta: usize,
    /// Which of [`OFFERED`] are objectives.
    pub objectives: [bool; OFFERED.len()],
    /// Trials at once (0: one per core).
    pub parallel: usize,
    /// Show only ticked paths and those matching this text.
    pub filter: String,
}

impl Default for ExploreState {
    fn default() -> Self {
        let mut objectives = [false; OFFERED.len()];
        objectives[0] = true;
        Self {
            knobs: Vec::new(),
            source: None,
            name: String::new(),
            search: SearchPick::Random,
            trials: 8,
            min_epochs: 1,
            max_epochs: 9,
            eta: 3,
            objectives,
            parallel: 0,
            filter: String::new(),
        }
    }
}

impl ExploreState {
    /// Rebuilds the knob list when `exp` changed, keeping the settings per path.
    pub fn sync(&mut self, exp: &Experiment) {
        if self.source.as_ref() == Some(exp) {
            return;
        }
        let old: BTreeMap<String, Knob> =
            self.knobs.drain(..).map(|k| (k.path.clone(), k)).collect();
        self.knobs = knobs(exp)
            .into_iter()
            .map(|(path, kind)| match old.get(&path) {
                Some(k) if std::mem::discriminant(&k.kind) == std::mem::discriminant(&kind) => {
                    Knob { kind, ..k.clone() }
                }
                _ => Knob::new(path, kind),
            })
            .collect();
        // A maze measures no accuracy: tick the first objective that fits.
        let ticked = OFFERED
            .iter()
            .zip(self.objectives)
            .any(|(o, on)| on && fits(exp, o));
        if !ticked && let Some(i) = OFFERED.iter().position(|o| fits(exp, o)) {
            self.objectives[i] = true;
        }
        self.source = Some(exp.clone());
    }

    /// Ticks (or unticks) exploring `path`; false when the experiment has no such path.
    pub fn set_explore(&mut self, path: &str, on: bool) -> bool {
        match self.knobs.iter_mut().find(|k| k.path == path) {
            Some(k) => {
                k.on = on;
                true
            }
            None => false,
        }
    }

    /// The study these settings describe, with `exp` written in.
    pub fn spec(&self, exp: &Experiment) -> anyhow::Result<StudySpec> {
        let mut space = BTreeMap::new();
        for k in self.knobs.iter().filter(|k| k.on) {
            space.insert(k.path.clone(), self.param(k)?);
        }
        let objectives: Vec<Objective> = OFFERED
            .iter()
            .zip(self.objectives)
            .filter(|(o, on)| *on && fits(exp, o))
            .map(|(o, _)| *o)
            .collect();
        let search = match self.search {
            SearchPick::Grid => Search::Grid,
            SearchPick::Random => Search::Random {
                trials: self.trials,
            },
            SearchPick::Asha => Search::Asha {
                trials: self.trials,
                min_epochs: self.min_epochs,
                max_epochs: self.max_epochs,
                eta: self.eta,
            },
            // The population steps every `min_epochs` up to `max_epochs`.
            SearchPick::Pbt => Search::Pbt {
                population: self.trials,
                interval_epochs: self.min_epochs,
                max_epochs: self.max_epochs,
                quantile: 0.25,
                perturb: (0.8, 1.2),
            },
        };
        let name = if self.name.trim().is_empty() {
            format!("{}_study", exp.name)
        } else {
            self.name.trim().to_string()
        };
        Ok(StudySpec {
            name,
            base: BaseSpec::Inline(Box::new(exp.clone())),
            space,
            search,
            objectives,
            parallel: if self.parallel == 0 {
                Parallel::Auto
            } else {
                Parallel::Trials(self.parallel)
            },
            seed: exp.seed,
            trial_weights: Default::default(),
        })
    }

    fn param(&self, k: &Knob) -> anyhow::Result<Param> {
        let at = |m: String| anyhow::anyhow!("{}: {m}", k.path);
        match &k.kind {
            KnobKind::Number { integer, .. } => {
                if !(k.low.is_finite() && k.high.is_finite()) {
                    return Err(at("the range must be finite numbers".into()));
                }
                if self.search == SearchPick::Grid {
                    let values =
                        grid_values(k.low, k.high, k.steps, k.log, *integer).map_err(at)?;
                    return Ok(Param::Choice(values));
                }
                Ok(match (*integer, k.log) {
                    (true, true) => {
                        Param::IntLogUniform(k.low.round() as i64, k.high.round() as i64)
                    }
                    (true, false) => Param::IntUniform(k.low.round() as i64, k.high.round() as i64),
                    (false, true) => Param::LogUniform(k.low, k.high),
                    (false, false) => Param::Uniform(k.low, k.high),
                })
            }
            KnobKind::Bool(_) | KnobKind::Name(_) => {
                let values: Vec<ron::Value> = k
                    .choices
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| match c {
                        "true" => ron::Value::Bool(true),
                        "false" => ron::Value::Bool(false),
                        _ => ron::Value::String(c.to_string()),
                    })
                    .collect();
                if values.is_empty() {
                    return Err(at("give at least one choice (comma-separated)".into()));
                }
                Ok(Param::Choice(values))
            }
        }
    }

    /// Builds the study and reads it back through the study-file loader (so the
    /// errors are those of a study file).
    pub fn build(&self, exp: &Experiment) -> anyhow::Result<LoadedStudy> {
        let spec = self.spec(exp)?;
        let text = study_to_ron(&spec);
        let file = scratch_file();
        std::fs::write(&file, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        let loaded = load_study(&file).map_err(anyhow::Error::from);
        let _ = std::fs::remove_file(&file);
        loaded
    }
}

/// A file name of our own in the temporary folder.
fn scratch_file() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "trainlab-explore-{}-{}.ron",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `steps` values from low to high (log-spaced when `log`), whole when `integer`.
/// Boundary: the GUI shows the text beside the field the user is editing.
pub fn grid_values(
    low: f64,
    high: f64,
    steps: usize,
    log: bool,
    integer: bool,
) -> Result<Vec<ron::Value>, String> {
    if steps == 0 || steps > 1000 {
        return Err(format!("{steps} grid values: give 1 to 1000"));
    }
    if log && low <= 0.0 {
        return Err(format!("a log range must stay above 0 (low is {low})"));
    }
    let mut out: Vec<f64> = (0..steps)
        .map(|i| {
            let f = if steps == 1 {
                0.0
            } else {
                i as f64 / (steps - 1) as f64
            };
            if log {
                (low.ln() + (high.ln() - low.ln()) * f).exp()
            } else {
                low + (high - low) * f
            }
        })
        .map(|v| {
            if integer {
                v.round()
            } else {
                (v * 1e9).round() / 1e9
            }
        })
        .collect();
    out.dedup();
    Ok(out
        .into_iter()
        .map(|v| {
            if integer {
                ron::Value::Number(ron::value::Number::from(v as i64))
            } else {
                ron::Value::Number(ron::value::Number::from(v))
            }
        })
        .collect())
}

/// What the panel asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExploreAction {
    /// Build the study and start it.
    Start,
}

/// Draws the panel for the experiment under edit.
pub fn explore_panel(
    ui: &mut Ui,
    state: &mut ExploreState,
    exp: &Experiment,
    busy: bool,
) -> Option<ExploreAction> {
    state.sync(exp);
    ui.label(format!(
        "Explore \"{}\" (the experiment under edit): tick the settings to vary, give their ranges, pick the search and objectives.",
        exp.name
    ));
    egui::Grid::new("explore_settings")
        .num_columns(2)
        .show(ui, |ui| {
            let l = ui.label("Study name");
            ui.add(
                egui::TextEdit::singleline(&mut state.name)
                    .hint_text(format!("{}_study", exp.name)),
            )
            .labelled_by(l.id);
            ui.end_row();
            ui.label("Search");
            ui.horizontal(|ui| search_row(ui, state));
            ui.end_row();
        });
    // Outside the grid: a wrapped row in a grid cell spilled over the next row.
    ui.horizontal_wrapped(|ui| {
        ui.label("Objectives");
        for (o, on) in OFFERED.iter().zip(state.objectives.iter_mut()) {
            if fits(exp, o) {
                ui.checkbox(on, o.label());
            }
        }
    });
    ui.horizontal(|ui| {
        let l = ui.label("At once");
        ui.add(egui::DragValue::new(&mut state.parallel).range(0..=256))
            .labelled_by(l.id);
        ui.weak("trials (0: one per core)");
    });
    let action = start_row(ui, state, busy);
    ui.separator();
    knob_table(ui, state);
    action
}

/// The search method and its numbers (trials, rungs, PBT's interval).
fn search_row(ui: &mut Ui, state: &mut ExploreState) {
    ui.selectable_value(&mut state.search, SearchPick::Grid, "Grid")
        .on_hover_text("Every combination (numbers: evenly spaced values).");
    ui.selectable_value(&mut state.search, SearchPick::Random, "Random");
    ui.selectable_value(&mut state.search, SearchPick::Asha, "ASHA")
        .on_hover_text("Random trials; the best 1/eta of each rung train on, the rest stop early.");
    ui.selectable_value(&mut state.search, SearchPick::Pbt, "PBT").on_hover_text(
        "Population-based training: a population trains side by side; every interval the worst quarter copy the best quarter's weights and settings, nudged. Only optimizer settings can be explored.",
    );
    if state.search != SearchPick::Grid {
        let l = ui.label("trials");
        ui.add(egui::DragValue::new(&mut state.trials).range(1..=10_000))
            .labelled_by(l.id);
    }
    if state.search == SearchPick::Pbt {
        let l = ui.label("every (epochs)");
        ui.add(egui::DragValue::new(&mut state.min_epochs).range(1..=10_000))
            .labelled_by(l.id);
        let l = ui.label("epochs");
        ui.add(egui::DragValue::new(&mut state.max_epochs).range(2..=10_000))
            .labelled_by(l.id);
    }
    if state.search == SearchPick::Asha {
        let l = ui.label("min epochs");
        ui.add(egui::DragValue::new(&mut state.min_epochs).range(1..=10_000))
            .labelled_by(l.id);
        let l = ui.label("max epochs");
        ui.add(egui::DragValue::new(&mut state.max_epochs).range(1..=10_000))
            .labelled_by(l.id);
        let l = ui.label("eta");
        ui.add(egui::DragValue::new(&mut state.eta).range(2..=16))
            .labelled_by(l.id);
    }
}

/// The start button, how many paths are explored, and the path filter.
fn start_row(ui: &mut Ui, state: &mut ExploreState, busy: bool) -> Option<ExploreAction> {
    let mut action = None;
    ui.horizontal(|ui| {
        let n = state.knobs.iter().filter(|k| k.on).count();
        if ui
            .add_enabled(!busy, egui::Button::new("▶ Start study"))
            .on_hover_text(
                "Write the study into a new folder under the runs folder and train its trials.",
            )
            .on_disabled_hover_text("This window is already working on a study.")
            .clicked()
        {
            action = Some(ExploreAction::Start);
        }
        ui.label(format!("{n} path(s) explored"));
        ui.separator();
        let l = ui.label("Filter");
        ui.text_edit_singleline(&mut state.filter).labelled_by(l.id);
    });
    action
}

/// Every path of the experiment that can be explored (those the filter
/// matches, and the ticked ones), with its current value and, when ticked, its
/// range or choices.
fn knob_table(ui: &mut Ui, state: &mut ExploreState) {
    let grid = state.search == SearchPick::Grid;
    let filter = state.filter.to_lowercase();
    egui::ScrollArea::vertical()
        .id_salt("explore_knobs")
        .show(ui, |ui| {
            egui::Grid::new("explore_knobs_grid")
                .striped(true)
                .num_columns(3)
                .show(ui, |ui| {
                    for k in state.knobs.iter_mut() {
                        if !k.on && !filter.is_empty() && !k.path.to_lowercase().contains(&filter) {
                            continue;
                        }
                        ui.checkbox(&mut k.on, k.path.as_str())
                            .on_hover_text("Explore this path.");
                        ui.weak(match &k.kind {
                            KnobKind::Number { value, .. } => super::scale::short(*value),
                            KnobKind::Bool(b) => b.to_string(),
                            KnobKind::Name(n) => n.clone(),
                        });
                        ui.horizontal(|ui| {
                            if k.on {
                                knob_range(ui, k, grid);
                            }
                        });
                        ui.end_row();
                    }
                });
        });
}

/// A ticked path's range (numbers: from, to, scale, and on a grid how many
/// values) or its choices.
fn knob_range(ui: &mut Ui, k: &mut Knob, grid: bool) {
    match k.kind {
        KnobKind::Number { integer, .. } => {
            let speed = (k.high - k.low).abs().max(1e-6) / 100.0;
            let l = ui.label("from");
            ui.add(
                egui::DragValue::new(&mut k.low)
                    .speed(speed)
                    .max_decimals(if integer { 0 } else { 6 }),
            )
            .labelled_by(l.id);
            let l = ui.label("to");
            ui.add(
                egui::DragValue::new(&mut k.high)
                    .speed(speed)
                    .max_decimals(if integer { 0 } else { 6 }),
            )
            .labelled_by(l.id);
            ui.selectable_value(&mut k.log, false, "linear");
            ui.selectable_value(&mut k.log, true, "log");
            if grid {
                let l = ui.label("values");
                ui.add(egui::DragValue::new(&mut k.steps).range(1..=100))
                    .labelled_by(l.id);
            }
        }
        KnobKind::Bool(_) | KnobKind::Name(_) => {
            let l = ui.label("choices");
            ui.text_edit_singleline(&mut k.choices)
                .on_hover_text("Comma-separated, e.g. Adam, Sgd  or  true, false")
                .labelled_by(l.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_experiment_offers_its_rate_and_widths_and_builds_a_study() {
        let exp = Experiment::default();
        let mut s = ExploreState::default();
        s.sync(&exp);
        let paths: Vec<&str> = s.knobs.iter().map(|k| k.path.as_str()).collect();
        assert!(paths.contains(&"model.1.Linear.out"), "{paths:?}");
        let lr = paths
            .iter()
            .find(|p| p.ends_with(".lr"))
            .copied()
            .expect("an lr path");
        let lr = lr.to_string();
        assert!(s.set_explore(&lr, true));
        assert!(s.set_explore("model.1.Linear.out", true));
        s.trials = 3;
        let study = s.build(&exp).expect("builds");
        assert_eq!(study.spec.space.len(), 2);
        assert!(matches!(study.spec.space[&lr], Param::LogUniform(..)));
        // Grid turns numbers into evenly spaced choices.
        s.search = SearchPick::Grid;
        let study = s.build(&exp).expect("grid builds");
        assert!(matches!(&study.spec.space[&lr], Param::Choice(v) if v.len() == 3));
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let exp = Experiment::default();
        let mut s = ExploreState::default();
        s.sync(&exp);
        assert!(
            s.build(&exp)
                .expect_err("nothing explored")
                .to_string()
                .contains("space")
        );
        s.set_explore("model.1.Linear.out", true);
        s.objectives = [false; OFFERED.len()];
        assert!(
            s.build(&exp)
                .expect_err("no objective")
                .to_string()
                .contains("objectives")
        );
        s.objectives[0] = true;
        if let Some(k) = s.knobs.iter_mut().find(|k| k.path == "model.1.Linear.out") {
            k.low = 500.0;
            k.high = 2.0;
        }
        assert!(
            s.build(&exp)
                .expect_err("backwards range")
                .to_string()
                .contains("below high")
        );
        if let Some(k) = s.knobs.iter_mut().find(|k| k.path == "model.1.Linear.out") {
            k.low = f64::NAN;
        }
        assert!(s.build(&exp).is_err());
        assert!(grid_values(0.0, 1.0, 3, true, false).is_err());
    }

    #[test]
    fn pbt_explores_optimizer_settings_and_names_any_other_path() {
        let exp = Experiment::default();
        let mut s = ExploreState::default();
        s.sync(&exp);
        let lr = s
            .knobs
            .iter()
            .find(|k| k.path.ends_with(".lr"))
            .map(|k| k.path.clone())
            .expect("an lr path");
        s.set_explore(&lr, true);
        s.search = SearchPick::Pbt;
        s.trials = 4;
        s.min_epochs = 1;
        s.max_epochs = 3;
        let study = s.build(&exp).expect("builds");
        assert!(matches!(
            study.spec.search,
            Search::Pbt {
                population: 4,
                interval_epochs: 1,
                max_epochs: 3,
                ..
            }
        ));
        s.set_explore("model.1.Linear.out", true);
        let err = s
            .build(&exp)
            .expect_err("a model path under PBT")
            .to_string();
        assert!(
            err.contains("model.1.Linear.out") && err.contains("optimizer"),
            "{err}"
        );
    }
}
