//! The "Find lr" button beside the learning-rate field: runs the range test
//! (`train::lr_find`) on a copy of the experiment under edit in the background,
//! plots loss against learning rate (log x) as it comes in, marks the two
//! suggestions, and a click on the plot (or a suggestion's button) sets the field.
//!
//! Contract: the test runs on a [`Job`]; the points reach the plot through a
//! shared list while it runs; Cancel (or a new start) stops it within a step.
//! The experiment is copied when the button is pressed: later edits do not
//! change a test under way. Nothing here changes the experiment except the
//! learner's click, which sets `optimizer.lr` to the lr under the pointer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use egui::{Color32, Ui};
use egui_plot::{HoverPosition, Plot, PlotTransform};

use crate::gui::figure::{Figure, Marker, Series, plot as figure_plot};
use crate::gui::state::job::Job;
use crate::spec::Experiment;
use crate::train::lr_find::{
    LrFindResult, LrPoint, LrRange, Suggestions, lr_find, supported, to_csv,
};

/// The finder's state (one test at a time).
#[derive(Default)]
pub struct LrFinder {
    job: Option<Job<LrFindResult>>,
    cancel: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<LrPoint>>>,
    /// The finished test.
    pub result: Option<LrFindResult>,
    /// Why the last test failed.
    pub error: Option<String>,
    /// The plot's mapping from values to the screen, as last drawn (tests click
    /// through it).
    pub transform: Option<PlotTransform>,
    /// Whether the finder's window is shown.
    pub open: bool,
    /// The button was clicked this frame (the test starts once the experiment
    /// is free to copy).
    requested: bool,
}

impl LrFinder {
    /// Whether a test is running.
    pub fn is_running(&self) -> bool {
        self.job.as_ref().is_some_and(Job::is_pending)
    }

    /// Starts the range test on a copy of `exp`.
    pub fn start(&mut self, exp: &Experiment, ctx: &egui::Context) {
        self.cancel.store(true, Ordering::Relaxed);
        self.cancel = Arc::new(AtomicBool::new(false));
        self.live = Arc::new(Mutex::new(Vec::new()));
        self.result = None;
        self.error = None;
        self.open = true;
        let (exp, cancel, live) = (exp.clone(), self.cancel.clone(), self.live.clone());
        let (c1, c2) = (ctx.clone(), ctx.clone());
        self.job = Some(Job::spawn(
            "lr-find",
            move || c1.request_repaint(),
            move || {
                let mut on_point = |p: &LrPoint| {
                    if let Ok(mut l) = live.lock() {
                        l.push(*p);
                    }
                    c2.request_repaint();
                };
                Ok(lr_find(
                    &exp,
                    &LrRange::default(),
                    Some(&cancel),
                    &mut on_point,
                )?)
            },
        ));
    }

    /// Takes a finished test.
    pub fn poll(&mut self) {
        let Some(job) = &mut self.job else { return };
        match job.poll() {
            None => {}
            Some(Ok(r)) => {
                self.job = None;
                self.result = Some(r);
            }
            Some(Err(e)) => {
                self.job = None;
                self.error = Some(e);
            }
        }
    }

    fn points(&self) -> Vec<LrPoint> {
        match &self.result {
            Some(r) => r.points.clone(),
            None => self.live.lock().map(|l| l.clone()).unwrap_or_default(),
        }
    }

    /// The "Find lr" button (beside the field); `refused` (why the test does not
    /// apply) greys it out. A click is carried out by [`LrFinder::take_request`].
    pub fn button(&mut self, ui: &mut Ui, refused: Option<&str>) {
        let help = refused.unwrap_or(
            "Learning-rate range test: trains a copy for up to 100 steps with the lr rising \
             from 1e-7 to 10 and plots the loss; click the plot to take an lr.",
        );
        let enabled = refused.is_none() && !self.is_running();
        if ui
            .add_enabled(enabled, egui::Button::new("Find lr").small())
            .on_hover_text(help)
            .on_disabled_hover_text(help)
            .clicked()
        {
            self.requested = true;
        }
    }

    /// Starts the test on `exp` when the button was clicked.
    pub fn take_request(&mut self, exp: &Experiment, ctx: &egui::Context) {
        if std::mem::take(&mut self.requested) && supported(exp).is_ok() {
            self.start(exp, ctx);
        }
    }

    /// The finder's window (when open); returns the lr the learner picked.
    pub fn window(&mut self, ctx: &egui::Context) -> Option<f64> {
        self.poll();
        let mut open = self.open;
        let mut picked = None;
        egui::Window::new("Learning-rate finder")
            .open(&mut open)
            .default_width(420.0)
            .resizable(true)
            .show(ctx, |ui| picked = self.panel(ui));
        self.open &= open;
        picked
    }

    /// Progress, the plot, the suggestions; returns the lr the learner picked.
    fn panel(&mut self, ui: &mut Ui) -> Option<f64> {
        let mut picked = None;
        let points = self.points();
        ui.horizontal(|ui| {
            if self.is_running() {
                ui.spinner();
                ui.label(format!("lr range test: step {}", points.len()));
                if ui.small_button("Cancel").clicked() {
                    self.cancel.store(true, Ordering::Relaxed);
                }
            } else if let Some(e) = &self.error {
                ui.colored_label(Color32::from_rgb(230, 110, 90), e);
            }
        });
        if points.is_empty() {
            return None;
        }
        let s = match &self.result {
            Some(r) => r.suggestions,
            None => Suggestions::of(&points),
        };
        let figure = lr_figure(&points, &s);
        let plot = Plot::new("lr_find_plot")
            .height(170.0)
            .legend(figure_plot::legend_for(&figure))
            .x_axis_formatter(|m, _| format!("{:.0e}", 10f64.powf(m.value)))
            .label_formatter(|pos| {
                let p = match pos {
                    HoverPosition::NearDataPoint { position, .. }
                    | HoverPosition::Elsewhere { position } => position,
                };
                Some(format!(
                    "lr {:.2e} (click to use)\nloss {:.3}",
                    10f64.powf(p.x),
                    p.y
                ))
            })
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false);
        let response = plot.show(ui, |plot_ui| figure_plot::draw(plot_ui, &figure));
        self.transform = Some(response.transform);
        if response.response.clicked()
            && let Some(pos) = response.response.interact_pointer_pos()
        {
            let lr = 10f64.powf(response.transform.value_from_position(pos).x);
            if lr.is_finite() && lr > 0.0 {
                picked = Some(round_lr(lr));
            }
        }
        if let Some(r) = &self.result
            && let Some(why) = &r.stopped
        {
            ui.weak(why);
        }
        picked = picked.or(suggestion_buttons(ui, &s));
        let mut saved = figure;
        figure_plot::record_view(&mut saved, &response);
        crate::gui::figure::buttons::save_row(ui, "lr_find", || saved);
        crate::gui::views::projector::csv_button(ui, "lr_find", "lr_find.csv", || to_csv(&points));
        picked
    }
}

/// Loss (raw, faint) and smoothed loss against log10 lr, with the suggestions.
fn lr_figure(points: &[LrPoint], s: &Suggestions) -> Figure {
    let mut fig = Figure::new("Learning-rate range test", "learning rate", "loss");
    fig.x.log10 = true;
    let xy = |f: fn(&LrPoint) -> f64| -> Vec<[f64; 2]> {
        points.iter().map(|p| [p.lr.log10(), f(p)]).collect()
    };
    fig.series.push(Series::line(
        "loss",
        Color32::from_gray(150).gamma_multiply(0.6),
        1.0,
        xy(|p| p.loss),
    ));
    fig.series.push(Series::line(
        "smoothed",
        Color32::from_rgb(80, 160, 255),
        2.0,
        xy(|p| p.smoothed),
    ));
    let near = |lr: f64| {
        points
            .iter()
            .min_by(|a, b| {
                (a.lr.ln() - lr.ln())
                    .abs()
                    .total_cmp(&(b.lr.ln() - lr.ln()).abs())
            })
            .map(|p| [lr.log10(), p.smoothed])
    };
    if let Some(lr) = s.steepest {
        let c = Color32::from_rgb(90, 200, 120);
        fig.series
            .push(Series::vlines("steepest", c, 1.5, true, &[lr.log10()]));
        fig.series
            .extend(near(lr).map(|p| Series::markers("", c, 5.0, true, Marker::Circle, vec![p])));
    }
    if let Some(lr) = s.min_over_10 {
        let c = Color32::from_rgb(240, 170, 60);
        fig.series
            .push(Series::vlines("min / 10", c, 1.5, true, &[lr.log10()]));
    }
    fig
}

/// Buttons that take a suggestion; returns the one clicked.
fn suggestion_buttons(ui: &mut Ui, s: &Suggestions) -> Option<f64> {
    let mut picked = None;
    ui.horizontal_wrapped(|ui| {
        ui.label("Suggested:");
        if let Some(lr) = s.steepest {
            let text = format!("steepest {lr:.1e}");
            if ui
                .small_button(text)
                .on_hover_text("Where the smoothed loss falls fastest.")
                .clicked()
            {
                picked = Some(round_lr(lr));
            }
        }
        if let Some(lr) = s.min_over_10 {
            let text = format!("min/10 {lr:.1e}");
            if ui
                .small_button(text)
                .on_hover_text("A tenth of the lr at the lowest smoothed loss.")
                .clicked()
            {
                picked = Some(round_lr(lr));
            }
        }
        if s.steepest.is_none() && s.min_over_10.is_none() {
            ui.weak("none yet");
        }
    });
    picked
}

/// Two significant digits: the field shows `3.2e-3`, not `3.1622776e-3`.
pub fn round_lr(lr: f64) -> f64 {
    format!("{lr:.1e}").parse().unwrap_or(lr)
}
