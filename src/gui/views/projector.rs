//! The Projector tab: a trained run's inner representation in two dimensions
//! (`infer::projector`, PCA): image runs show a chosen layer's activations for
//! the test images, one point each, coloured by true class; text runs show the
//! embedding table, one point per token with the token as its label. A click on
//! a point shows the sample (the image, or the token) and the model's prediction.
//!
//! Contract: the runs offered are the live run (while one trains; the default
//! then) and those under the runs folder with saved weights (History runs). A
//! History run's projection is computed on a background [`Job`] whenever the run
//! or layer changes; the live run's is a `Probe::Project` the worker answers
//! between steps, asked again when the layer changes, at each new evaluation
//! (at most every [`LIVE_MIN_INTERVAL`]) and on Refresh, one at a time (an
//! answer lost to a full channel is asked again after [`LIVE_PATIENCE`]).
//! Nothing is computed in the frame. The plot's transform is kept so
//! a click maps to the nearest point on screen (within 12 points), and tests
//! can click a point by its coordinates. The plot saves as PNG/SVG like others.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Color32, Ui};
use egui_plot::{Plot, PlotPoint, PlotTransform, Text};

use super::saliency::heatmap;
use crate::events::{LayerRow, Probe, ProbeAnswer};
use crate::gui::figure::{Figure, Marker, Series, plot as figure_plot};
use crate::gui::state::job::Job;
use crate::infer::projector::{LayerChoice, Projection, project_run, projectable_runs};

/// Test images projected at most (a scatter of more is a blur).
pub const LIMIT: usize = 1000;
/// The live projection is asked again at most this often.
pub const LIVE_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// An unanswered live probe is given up (and asked again) after this long.
pub const LIVE_PATIENCE: Duration = Duration::from_secs(10);
/// Tokens labelled with their text at most (the rest are points only).
const LABELLED: usize = 300;

/// Ten well-separated class colours (then they repeat).
const CLASS_COLOURS: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// The tab's state.
#[derive(Default)]
pub struct ProjectorState {
    runs: Option<Vec<(PathBuf, Vec<LayerChoice>)>>,
    /// The run shown.
    pub run: Option<PathBuf>,
    /// The layer projected (image runs; None: the last hidden one).
    pub layer: Option<usize>,
    job: Option<Job<Projection>>,
    /// (run, layer) the projection or job is for.
    asked: Option<(PathBuf, Option<usize>)>,
    /// The finished projection.
    pub projection: Option<Projection>,
    /// Why the last one failed.
    pub error: Option<String>,
    /// The clicked point.
    pub selected: Option<usize>,
    /// The scatter's mapping to the screen, as last drawn.
    pub transform: Option<PlotTransform>,
    /// While a run trains: show it (true, the default) or a History run.
    pub use_live: bool,
    /// Whether the projection shown came from the live model.
    pub shown_live: bool,
    /// Where the projection shown came from ("live model at step 300", a run).
    pub source: String,
    live: LiveAsk,
}

/// The live run's projection requests.
#[derive(Default)]
struct LiveAsk {
    /// Whether a run was live at the last frame.
    was_live: bool,
    next_id: u64,
    /// The probe awaited and when it went out.
    awaiting: Option<(u64, Instant)>,
    /// (layer, newest evaluation step) of the last request.
    asked: Option<(Option<usize>, Option<u64>)>,
    /// When the last request went out.
    last: Option<Instant>,
    /// Refresh pressed.
    forced: bool,
    outbox: Vec<Probe>,
}

/// What the projector needs to know about the run that trains now.
pub struct LiveRun<'a> {
    /// Its layers (image runs; empty for text runs, which show embeddings).
    pub layers: &'a [LayerRow],
    /// The step of its newest evaluation.
    pub eval_step: Option<u64>,
}

impl ProjectorState {
    /// Whether a projection is being computed.
    pub fn is_loading(&self) -> bool {
        self.job.as_ref().is_some_and(Job::is_pending)
    }

    fn poll(&mut self) {
        let Some(job) = &mut self.job else { return };
        match job.poll() {
            None => {}
            Some(r) => {
                self.job = None;
                self.selected = None;
                match r {
                    Ok(p) => {
                        self.projection = Some(p);
                        self.shown_live = false;
                        self.source = self
                            .asked
                            .as_ref()
                            .and_then(|(d, _)| d.file_name())
                            .map_or_else(String::new, |n| format!("run {}", n.to_string_lossy()));
                        self.error = None;
                    }
                    Err(e) => {
                        self.projection = None;
                        self.error = Some(e);
                    }
                }
            }
        }
    }

    /// Starts a projection when the run or layer changed.
    fn request(&mut self, ctx: &egui::Context) {
        let Some(run) = self.run.clone() else { return };
        let want = (run.clone(), self.layer);
        if self.asked.as_ref() == Some(&want) {
            return;
        }
        self.asked = Some(want);
        let layer = self.layer;
        let ctx = ctx.clone();
        self.job = Some(Job::spawn(
            "projector",
            move || ctx.request_repaint(),
            move || project_run(&run, layer, LIMIT).map_err(anyhow::Error::from),
        ));
    }

    /// Probes for the live run waiting to be sent.
    pub fn take_probes(&mut self) -> Vec<Probe> {
        std::mem::take(&mut self.live.outbox)
    }

    /// An answer from the live run (others' answers are ignored).
    pub fn on_answer(&mut self, answer: &ProbeAnswer) {
        let ProbeAnswer::Projected {
            id,
            step,
            projection,
        } = answer
        else {
            return;
        };
        if self.live.awaiting.map(|(a, _)| a) != Some(*id) {
            return;
        }
        self.live.awaiting = None;
        if !self.use_live {
            return;
        }
        let same =
            self.shown_live && self.projection.as_ref().map(|p| &p.what) == Some(&projection.what);
        if !same {
            self.selected = None;
        }
        self.projection = Some((**projection).clone());
        self.shown_live = true;
        self.source = format!("live model at step {step}");
        self.error = None;
    }

    /// Asks the live run for a projection when one is due.
    fn request_live(&mut self, live: &LiveRun<'_>) {
        let ask = &mut self.live;
        if ask
            .awaiting
            .is_some_and(|(_, at)| at.elapsed() < LIVE_PATIENCE)
        {
            return;
        }
        let want = (self.layer, live.eval_step);
        let recent = ask.last.is_some_and(|t| t.elapsed() < LIVE_MIN_INTERVAL);
        let changed_layer = ask.asked.map(|(l, _)| l) != Some(self.layer);
        let due =
            ask.forced || changed_layer || !self.shown_live || (ask.asked != Some(want) && !recent);
        if !due {
            return;
        }
        ask.forced = false;
        ask.next_id += 1;
        ask.awaiting = Some((ask.next_id, Instant::now()));
        ask.asked = Some(want);
        ask.last = Some(Instant::now());
        ask.outbox.push(Probe::Project {
            id: ask.next_id,
            layer: self.layer,
            limit: LIMIT,
        });
    }

    /// Draws the tab; `default_run` (the inspected run) is shown first among
    /// History runs, and `live` (a run training now) before them.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        runs_root: &Path,
        default_run: Option<&Path>,
        live: Option<&LiveRun<'_>>,
    ) {
        self.poll();
        if live.is_some() && !self.live.was_live {
            self.use_live = true;
            self.live.asked = None;
        }
        if live.is_none() && self.live.was_live {
            // The run ended: its folder joins the list; show History again.
            self.runs = None;
            self.run = None;
            self.asked = None;
            self.live.awaiting = None;
        }
        self.live.was_live = live.is_some();
        let live = live.filter(|_| self.use_live);
        let runs = self
            .runs
            .get_or_insert_with(|| projectable_runs(runs_root))
            .clone();
        if self.run.is_none() {
            self.run = default_run
                .map(Path::to_path_buf)
                .or_else(|| runs.first().map(|(d, _)| d.clone()));
        }
        let live_layers = live.map(|l| live_choices(l.layers));
        self.choosers(ui, &runs, live_layers.as_deref(), self.live.was_live);
        match live {
            Some(l) => self.request_live(l),
            None => self.request(ui.ctx()),
        }
        if self.is_loading() || (live.is_some() && self.live.awaiting.is_some() && !self.shown_live)
        {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Projecting…");
            });
        }
        if let Some(e) = &self.error {
            ui.colored_label(
                Color32::from_rgb(230, 110, 90),
                format!("Cannot project: {e}"),
            );
        }
        let Some(p) = self.projection.clone() else {
            if self.run.is_none() && live.is_none() {
                ui.label("No trained run yet: the projector shows image and text runs that saved their weights (see History), and the run that trains now.");
            }
            return;
        };
        ui.label(format!(
            "{} ({}, {} points): PCA to 2-D; the axes hold {:.1}% and {:.1}% of the variance. Click a point to see its sample.",
            p.what,
            self.source,
            p.points.len(),
            p.explained[0] * 100.0,
            p.explained[1] * 100.0
        ));
        ui.horizontal_top(|ui| {
            let width = (ui.available_width() - 240.0).max(300.0);
            ui.vertical(|ui| {
                ui.set_width(width);
                self.scatter(ui, &p, width);
            });
            ui.vertical(|ui| self.detail(ui, &p));
        });
    }

    fn choosers(
        &mut self,
        ui: &mut Ui,
        runs: &[(PathBuf, Vec<LayerChoice>)],
        live_layers: Option<&[LayerChoice]>,
        live_exists: bool,
    ) {
        let name = |d: &Path| {
            d.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Run:");
            let shown = if live_layers.is_some() {
                LIVE_RUN.to_string()
            } else {
                self.run.as_deref().map_or_else(|| "(none)".into(), name)
            };
            egui::ComboBox::from_id_salt("projector_run")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    if live_exists
                        && ui
                            .selectable_label(self.use_live, LIVE_RUN)
                            .on_hover_text("The model that trains now, asked between its steps.")
                            .clicked()
                        && !self.use_live
                    {
                        self.use_live = true;
                        self.shown_live = false;
                        self.layer = None;
                    }
                    for (d, _) in runs {
                        let chosen =
                            !(live_exists && self.use_live) && self.run.as_ref() == Some(d);
                        if ui.selectable_label(chosen, name(d)).clicked() {
                            self.run = Some(d.clone());
                            self.use_live = false;
                            self.asked = None;
                            self.layer = None;
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            if ui
                .small_button("⟳")
                .on_hover_text("List the runs again (and ask the live run for a new projection).")
                .clicked()
            {
                self.runs = None;
                self.live.forced = true;
            }
            let layers = match live_layers {
                Some(l) => Some(l),
                None => runs
                    .iter()
                    .find(|(d, _)| Some(d) == self.run.as_ref())
                    .map(|(_, l)| l.as_slice()),
            };
            if let Some(layers) = layers.filter(|l| !l.is_empty()) {
                let label = ui.label("Layer:");
                let shown = match self.layer {
                    Some(i) => layers
                        .get(i)
                        .map_or_else(|| i.to_string(), |l| l.name.clone()),
                    None => "last hidden".into(),
                };
                egui::ComboBox::from_id_salt("projector_layer")
                    .selected_text(shown)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.layer, None, "last hidden");
                        for l in layers {
                            ui.selectable_value(&mut self.layer, Some(l.index), &l.name);
                        }
                    })
                    .response
                    .labelled_by(label.id);
            }
        });
    }

    fn scatter(&mut self, ui: &mut Ui, p: &Projection, width: f32) {
        let figure = scatter_figure(p);
        let plot = Plot::new("projector_plot")
            .width(width)
            .height(420.0)
            .data_aspect(1.0)
            .legend(figure_plot::legend_for(&figure));
        let labels = p.labels.is_empty();
        let response = plot.show(ui, |plot_ui| {
            figure_plot::draw(plot_ui, &figure);
            if labels {
                for (pt, name) in p.points.iter().zip(&p.names).take(LABELLED) {
                    plot_ui.text(Text::new("", PlotPoint::new(pt[0], pt[1]), name.as_str()));
                }
            }
            if let Some(pt) = self.selected.and_then(|i| p.points.get(i)) {
                let ring =
                    Series::markers("", Color32::WHITE, 7.0, false, Marker::Circle, vec![*pt]);
                figure_plot::add_series(plot_ui, &ring);
            }
        });
        self.transform = Some(response.transform);
        if response.response.clicked()
            && let Some(pos) = response.response.interact_pointer_pos()
        {
            self.selected = nearest(p, &response.transform, pos);
        }
        let mut saved = figure;
        figure_plot::record_view(&mut saved, &response);
        crate::gui::figure::buttons::save_row(ui, "projector", || saved);
        csv_button(ui, "projector", "projection.csv", || p.to_csv());
    }

    fn detail(&self, ui: &mut Ui, p: &Projection) {
        let Some(i) = self.selected else {
            ui.weak("(click a point)");
            return;
        };
        let class = |c: usize| p.classes.get(c).cloned().unwrap_or_else(|| c.to_string());
        if let Some(pixels) = p.image(i) {
            ui.label(format!("test image #{i}"));
            heatmap(ui, pixels, p.image_size, None, 140.0);
        }
        if let Some(name) = p.names.get(i) {
            ui.label(format!("token #{i}: {name:?}"));
        }
        if let Some(&truth) = p.labels.get(i) {
            ui.label(format!("true class: {}", class(truth)));
        }
        if let Some(&(pred, prob)) = p.predicted.get(i) {
            ui.label(format!("predicted: {} ({:.0}%)", class(pred), prob * 100.0));
        }
        if let Some(pt) = p.points.get(i) {
            ui.weak(format!("at ({:.3}, {:.3})", pt[0], pt[1]));
        }
    }
}

/// A "Save CSV" button: asks where, writes `make()` there atomically, and says
/// beside the button where it went (or why not) until the next save.
pub(crate) fn csv_button(ui: &mut Ui, salt: &str, file_name: &str, make: impl FnOnce() -> String) {
    let id = egui::Id::unique("trainlab_csv_button").with(salt);
    ui.horizontal(|ui| {
        if ui
            .small_button("Save CSV")
            .on_hover_text("These points as a CSV table.")
            .clicked()
            && let Some(path) = rfd::FileDialog::new()
                .add_filter("CSV", &["csv"])
                .set_file_name(file_name)
                .save_file()
        {
            let said = match crate::util::atomic::write_atomic(&path, make().as_bytes()) {
                Ok(()) => format!("Saved {}", path.display()),
                Err(e) => format!("Not saved: {}: {e}", path.display()),
            };
            ui.data_mut(|d| d.insert_temp(id, said));
        }
        if let Some(said) = ui.data(|d| d.get_temp::<String>(id)) {
            ui.weak(said);
        }
    });
}

/// The Run list's entry for the run that trains now.
const LIVE_RUN: &str = "live run";

/// The live run's layers as the chooser lists them (as `layer_choices` does
/// for a History run).
fn live_choices(rows: &[LayerRow]) -> Vec<LayerChoice> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| LayerChoice {
            index: i,
            name: format!("{i}: {} {:?}", r.kind, r.output),
        })
        .collect()
}

/// The index of the point drawn nearest to `pos`, within 12 points.
fn nearest(p: &Projection, t: &PlotTransform, pos: egui::Pos2) -> Option<usize> {
    p.points
        .iter()
        .enumerate()
        .map(|(i, pt)| {
            (
                i,
                t.position_from_point(&PlotPoint::new(pt[0], pt[1]))
                    .distance(pos),
            )
        })
        .filter(|(_, d)| *d <= 12.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// One series of markers per class (or one for tokens).
fn scatter_figure(p: &Projection) -> Figure {
    let mut fig = Figure::new(
        format!("Projector: {}", p.what),
        "component 1",
        "component 2",
    );
    if p.labels.is_empty() {
        fig.legend = false;
        fig.series.push(Series::markers(
            "tokens",
            CLASS_COLOURS[0],
            3.0,
            true,
            Marker::Circle,
            p.points.clone(),
        ));
        return fig;
    }
    let classes = p
        .labels
        .iter()
        .max()
        .map_or(0, |m| m + 1)
        .max(p.classes.len());
    for c in 0..classes {
        let pts: Vec<[f64; 2]> = p
            .points
            .iter()
            .zip(&p.labels)
            .filter(|(_, l)| **l == c)
            .map(|(pt, _)| *pt)
            .collect();
        if pts.is_empty() {
            continue;
        }
        let name = p.classes.get(c).cloned().unwrap_or_else(|| c.to_string());
        let colour = CLASS_COLOURS[c % CLASS_COLOURS.len()];
        fig.series.push(Series::markers(
            name,
            colour,
            2.5,
            true,
            Marker::Circle,
            pts,
        ));
    }
    fig
}
