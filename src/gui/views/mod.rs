//! The tabs of the central area: one file (or folder, for the study and the
//! playground) per thing a learner looks at, the status bar under them, the
//! [`Tab`] enum and the dispatch from a tab to its view, with the state of the
//! views behind them ([`ViewStates`]).
//!
//! Each view's own state (what the learner scrolled, zoomed, toggled, picked, and
//! caches only it reads) is a `<View>State` struct at the top of its file, or in
//! `state.rs` for a folder view, and [`ViewStates`] holds one of each. What the
//! events and background jobs feed for several views lives in `gui/state/`.
//!
//! Contract: [`ViewStates::poll`] runs once per frame before drawing and only
//! takes finished background work (or starts it when its inputs changed); the
//! `show` functions draw and report requests (open a file, inspect a run) that
//! the app carries out.

pub(super) mod canvas;
pub(super) mod compress;
mod confusion;
pub(super) mod curves;
mod draw;
pub(super) mod history;
pub(super) mod layers;
pub(super) mod maze_view;
mod mistakes;
pub(super) mod playground;
pub(super) mod projector;
pub(super) mod pytorch;
pub(super) mod rl_curves;
pub(super) mod saliency;
mod samples;
pub(super) mod status_bar;
pub(super) mod study;
pub(super) mod text_view;
mod thumbnails;
mod weights;

use std::path::Path;

use egui::Ui;
use serde::{Deserialize, Serialize};

use crate::data::class_names;
use crate::gui::state::inspect::Inspector;
use crate::gui::state::overlay::Overlays;
use crate::gui::state::run_state::RunSeries;
use crate::spec::{DatasetSpec, Experiment};
use compress::state::CompressState;
use confusion::{ConfusionState, confusion_view};
use curves::CurvesState;
use draw::{DrawState, draw_view};
use history::{HistoryAction, HistoryState};
use maze_view::MazeState;
use mistakes::mistakes_view;
use playground::PlaygroundState;
use pytorch::PytorchState;
use samples::SamplesState;
use study::StudyState;
use text_view::TextState;
use thumbnails::Thumbnails;
use weights::{WeightsState, weights_view};

/// The views a learner can switch between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Tab {
    /// Sample images and split sizes.
    #[default]
    Data,
    /// Loss, accuracy, lr, throughput.
    Curves,
    /// Confusion matrix.
    Confusion,
    /// Most confident mistakes.
    Mistakes,
    /// First-layer weights.
    Weights,
    /// Per-layer activation and gradient distributions over the steps.
    Layers,
    /// A trained run's layer activations (or embeddings) in 2-D by PCA.
    Projector,
    /// Draw-a-digit canvas.
    Draw,
    /// Past runs.
    History,
    /// The run's model table and log.
    Log,
    /// The gridworld: editing, Q-values, greedy path.
    Maze,
    /// Text: samples and generation, or classifying a sentence.
    Text,
    /// The 2-D playground: the model's output over the plane, its units and weights.
    Playground,
    /// A study: its trials, curves, parallel coordinates, Pareto front; Explore.
    Study,
    /// A finished run pruned to several sparsities: accuracy, size, speed, weights.
    Compress,
    /// The experiment as a standalone PyTorch script.
    PyTorch,
}

impl Tab {
    /// Every tab in display order.
    pub const ALL: [Tab; 13] = [
        Tab::Data,
        Tab::Curves,
        Tab::Confusion,
        Tab::Mistakes,
        Tab::Weights,
        Tab::Layers,
        Tab::Projector,
        Tab::Draw,
        Tab::History,
        Tab::Log,
        Tab::Study,
        Tab::Compress,
        Tab::PyTorch,
    ];

    /// The tabs that make sense for `exp`'s kind of data.
    pub fn visible(exp: &Experiment) -> &'static [Tab] {
        match exp.dataset {
            DatasetSpec::Images(_) => &Tab::ALL,
            DatasetSpec::Gridworld(_) => &[
                Tab::Maze,
                Tab::Curves,
                Tab::History,
                Tab::Log,
                Tab::Study,
                Tab::PyTorch,
            ],
            DatasetSpec::Text(_) => &[
                Tab::Text,
                Tab::Curves,
                Tab::Layers,
                Tab::Projector,
                Tab::History,
                Tab::Log,
                Tab::Study,
                Tab::Compress,
                Tab::PyTorch,
            ],
            DatasetSpec::Points(_) => &[
                Tab::Playground,
                Tab::Curves,
                Tab::Layers,
                Tab::History,
                Tab::Log,
                Tab::Study,
                Tab::Compress,
                Tab::PyTorch,
            ],
        }
    }

    /// Tab caption.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Maze => "Maze",
            Tab::Text => "Text",
            Tab::Data => "Data",
            Tab::Curves => "Curves",
            Tab::Confusion => "Confusion",
            Tab::Mistakes => "Mistakes",
            Tab::Weights => "Weights",
            Tab::Layers => "Layers",
            Tab::Projector => "Projector",
            Tab::Draw => "Draw a digit",
            Tab::History => "History",
            Tab::Log => "Log",
            Tab::Study => "Study",
            Tab::Playground => "Playground",
            Tab::Compress => "Compress",
            Tab::PyTorch => "PyTorch",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Tab::Text => {
                "What the language model writes, or what the classifier makes of your sentence."
            }
            Tab::Maze => {
                "The maze: paint it, then watch the Q-values and the agent's path as it learns."
            }
            Tab::Data => "The images the model learns from, and how they are split.",
            Tab::Curves => "Watch the loss fall and the accuracy rise as it trains.",
            Tab::Confusion => "Which classes get mistaken for which.",
            Tab::Mistakes => "Test images the model got wrong while being most sure.",
            Tab::Weights => "What the first layer's units look for.",
            Tab::Layers => {
                "Each layer's activations and gradients over training: vanishing gradients, dead ReLUs."
            }
            Tab::Projector => {
                "A trained run's hidden layer (or a text model's embeddings) flattened to 2-D: which classes it separates."
            }
            Tab::Draw => "Draw a digit and see what the model thinks it is.",
            Tab::History => "Past runs: compare their curves, inspect their models.",
            Tab::Log => "The model table and everything the run reported.",
            Tab::Playground => {
                "The plane as the model sees it: its answer everywhere, each hidden unit's own map, and the weights between them."
            }
            Tab::Compress => {
                "A finished run made smaller: prune its smallest weights, see what accuracy, size and speed that buys."
            }
            Tab::PyTorch => {
                "The experiment as a standalone PyTorch script: the same model, data and training, to copy or save."
            }
            Tab::Study => {
                "Many runs of one experiment over a search space: open a study, or explore the experiment under edit."
            }
        }
    }

    /// The tab strip with the tabs in `shown`.
    pub fn bar(ui: &mut Ui, tab: &mut Tab, shown: &[Tab]) {
        if !shown.contains(tab)
            && let Some(&first) = shown.first()
        {
            *tab = first;
        }
        // Wrapped: on a narrow window (or beside the notes) a second row beats
        // cut-off tabs and a central panel pushed wider than the window.
        ui.horizontal_wrapped(|ui| {
            for &t in shown {
                ui.selectable_value(tab, t, t.label())
                    .on_hover_text(t.help());
            }
        });
    }
}

/// What the views need to know about the app.
pub struct ViewContext<'a> {
    /// The experiment under edit.
    pub exp: &'a Experiment,
    /// The current run.
    pub series: &'a RunSeries,
    /// Where runs are recorded.
    pub runs_root: &'a Path,
    /// Whether a run is training now.
    pub live: bool,
}

/// The state of every view, one `<View>State` each.
#[derive(Default)]
pub struct ViewStates {
    /// The Curves tab: plot settings (persisted) and what the plots cache.
    pub curves: CurvesState,
    samples: SamplesState,
    history: HistoryState,
    /// Past runs ticked for comparison (shared state: History, Study and Compress
    /// tick them, Curves and Layers draw them).
    overlays: Overlays,
    /// Test images drawn by the Confusion and Mistakes tabs, for the model of
    /// `thumbs_generation`.
    thumbs: Thumbnails,
    thumbs_generation: u64,
    /// The Confusion tab's picked cell.
    pub confusion: ConfusionState,
    /// The Draw tab's canvas.
    pub draw: DrawState,
    weights: WeightsState,
    layers: layers::LayersState,
    /// The PyTorch tab's script, made from the experiment under edit.
    pub pytorch: PytorchState,
    /// Saliency heatmaps in the Draw and Mistakes views.
    pub saliency: saliency::SaliencyState,
    /// The Projector tab.
    pub projector: projector::ProjectorState,
    /// The Maze tab's toggles and brush.
    pub maze: MazeState,
    /// The Text tab's prompt, sentence and loaded model.
    pub text: TextState,
    /// The Study tab: the open study folder or file, and the Explore panel.
    pub study: StudyState,
    /// The Playground tab: the live model's maps over the plane.
    pub playground: PlaygroundState,
    /// The Compress tab: a finished run's pruned variants.
    pub compress: CompressState,
    requests: Vec<HistoryAction>,
}

impl ViewStates {
    /// Takes finished background work; starts loading the preview when the dataset
    /// changed and the Data tab is open.
    pub fn poll(
        &mut self,
        ctx: &egui::Context,
        tab: Tab,
        (dataset, seed): (&DatasetSpec, u64),
        runs_root: &Path,
        errors: &mut Vec<String>,
    ) {
        if tab == Tab::Data {
            self.samples.poll(ctx, dataset, seed);
        }
        self.history.poll(runs_root);
        errors.append(&mut self.history.errors);
        self.overlays.poll();
        errors.append(&mut self.overlays.errors);
    }

    /// Past runs ticked for comparison.
    pub fn overlay_runs(&self) -> impl Iterator<Item = &RunSeries> {
        self.overlays.runs()
    }

    /// The Curves tab's state beside the past runs it overlays.
    pub fn curves_and_overlays(&mut self) -> (&mut CurvesState, Vec<&RunSeries>) {
        (&mut self.curves, self.overlays.runs().collect())
    }

    /// Overlays the recorded run in `dir` on the plots (loaded in the background).
    pub fn compare_run(&mut self, dir: &Path, ctx: &egui::Context) {
        self.overlays.add(dir, ctx);
    }

    /// Overlays the recorded run in `dir` under the legend name `label`.
    pub fn compare_run_labelled(&mut self, dir: &Path, label: &str, ctx: &egui::Context) {
        self.overlays.add_labelled(dir, label, ctx);
    }

    /// Whether overlaid runs are still being read.
    pub fn is_loading_overlays(&self) -> bool {
        self.overlays.is_loading()
    }

    /// Rescans the run folder (after a run ends).
    pub fn refresh_history(&mut self, root: &Path) {
        self.history.refresh(root);
    }

    /// Queues a request as if a view had made it (carried out next frame).
    pub fn push_request(&mut self, request: HistoryAction) {
        self.requests.push(request);
    }

    /// Probes for the live run from the projector and the saliency views.
    pub fn take_probes(&mut self) -> Vec<crate::events::Probe> {
        let mut probes = self.projector.take_probes();
        probes.extend(self.saliency.take_probes());
        probes
    }

    /// An answer from the live run, for the projector and the saliency views.
    pub fn on_answer(&mut self, answer: &crate::events::ProbeAnswer) {
        self.projector.on_answer(answer);
        self.saliency.on_answer(answer);
    }

    /// Requests from the views (inspect a run, open its experiment).
    pub fn take_requests(&mut self) -> Vec<HistoryAction> {
        std::mem::take(&mut self.requests)
    }

    /// Draws `tab` (any but the ones the app draws itself: Curves, Maze, Text,
    /// Study, Playground, Compress, which edit the experiment or report actions).
    pub fn show(&mut self, ui: &mut Ui, tab: Tab, cx: &ViewContext<'_>, inspector: &mut Inspector) {
        if inspector.generation != self.thumbs_generation {
            // Another model: its test images and verdicts differ.
            self.thumbs.clear();
            self.confusion.selected_cell = None;
            self.thumbs_generation = inspector.generation;
        }
        match tab {
            Tab::Curves | Tab::Maze | Tab::Text | Tab::Study | Tab::Playground | Tab::Compress => {}
            Tab::Data => self.samples.show(ui),
            Tab::Projector => {
                let inspected = inspector.predictor.as_ref().map(|p| p.run_dir.as_path());
                let layers = match (&cx.exp.dataset, &cx.series.info) {
                    (DatasetSpec::Images(_), Some(info)) => info.layers.as_slice(),
                    _ => &[],
                };
                let live = projector::LiveRun {
                    layers,
                    eval_step: cx.series.latest_eval.as_ref().map(|e| e.step),
                };
                let live = cx.live.then_some(&live);
                self.projector.show(ui, cx.runs_root, inspected, live);
            }
            Tab::Confusion => {
                confusion_view(
                    ui,
                    cx.series,
                    inspector,
                    &mut self.confusion,
                    &mut self.thumbs,
                );
            }
            Tab::Mistakes => mistakes_view(ui, inspector, &mut self.thumbs, &mut self.saliency),
            Tab::Weights => {
                let side = image_side(cx.exp);
                weights_view(ui, inspector, cx.live, &mut self.weights, side);
            }
            Tab::Draw => {
                let (input, _) = crate::spec::dataset_io(&cx.exp.dataset, cx.exp.seed);
                if input == [1, 28, 28] {
                    let classes = canvas_classes(cx, inspector);
                    let draw = &mut self.draw;
                    draw_view(ui, inspector, draw, cx.live, &classes, &mut self.saliency);
                } else {
                    ui.label(format!(
                        "The canvas draws 28x28 grey images, and this model takes {} images, \
                         so there is nothing to draw for it. The Data, Confusion and Mistakes \
                         tabs show its images.",
                        input
                            .iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join("x")
                    ));
                }
            }
            Tab::History => {
                if let Some(a) = self.history.show(ui, cx.runs_root, &mut self.overlays) {
                    self.requests.push(a);
                }
            }
            Tab::Log => log_view(ui, cx.series),
            Tab::Layers => {
                let others: Vec<&RunSeries> = self.overlays.runs().collect();
                self.layers.show(ui, cx.series, &others);
            }
            Tab::PyTorch => self.pytorch.show(ui, cx.exp),
        }
    }
}

fn image_side(exp: &Experiment) -> usize {
    let (input, _) = crate::spec::dataset_io(&exp.dataset, exp.seed);
    input.last().copied().unwrap_or(28)
}

/// Class names for the canvas bars: the live run's, else the loaded model's.
fn canvas_classes(cx: &ViewContext<'_>, inspector: &Inspector) -> Vec<String> {
    if cx.live
        && let Some(info) = &cx.series.info
    {
        return info.classes.clone();
    }
    if let Some(p) = &inspector.predictor {
        return p.classes.clone();
    }
    match &cx.exp.dataset {
        DatasetSpec::Images(d) => class_names(d.name),
        DatasetSpec::Gridworld(_) | DatasetSpec::Text(_) | DatasetSpec::Points(_) => Vec::new(),
    }
}

fn log_view(ui: &mut Ui, series: &RunSeries) {
    let Some(info) = &series.info else {
        ui.label("Nothing to report yet: start a run.");
        return;
    };
    ui.label(format!(
        "{} on {}: {} parameters; {} train / {} val / {} test samples; {} steps per epoch, {} planned.",
        info.name, info.device, info.parameters, info.train_samples, info.val_samples, info.test_samples, info.steps_per_epoch, info.total_steps
    ));
    egui::Grid::new("layers").striped(true).show(ui, |ui| {
        ui.strong("layer");
        ui.strong("output shape");
        ui.strong("parameters");
        ui.end_row();
        for l in &info.layers {
            ui.label(&l.kind);
            ui.label(format!("{:?}", l.output));
            ui.label(l.params.to_string());
            ui.end_row();
        }
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("log")
        .stick_to_bottom(true)
        .show(ui, |ui| {
            for line in &series.log {
                ui.label(egui::RichText::new(line).monospace());
            }
        });
}
