//! "Watch it learn": loss, accuracy, learning rate and throughput plots over steps.
//!
//! Contract: draws [`RunSeries`] it is given (the live run first, then overlaid past
//! runs) and never recomputes from scratch per frame: smoothing is incremental per
//! series ([`Ema`]) and decimation results are cached until the series grows, the
//! view moves or the smoothing changes. Long series (> 4 points per pixel) are drawn
//! as a min/max envelope; NaN/inf steps are marked with red vertical lines. Each
//! plot is built as a [`Figure`] first and drawn from it, so "Save PNG"/"Save SVG"
//! under it write exactly what is on screen.

use std::collections::HashMap;

use egui::{Color32, Id, Slider, Ui};
use egui_plot::{Corner, Legend, Plot};
use serde::{Deserialize, Serialize};

use crate::gui::figure::buttons::save_row;
use crate::gui::figure::plot as figure_plot;
use crate::gui::figure::{Figure, Marker, Series};

use crate::events::Split;
use crate::gui::figure::aggregate::{envelope_polyline, min_max_envelope, non_finite_positions};
use crate::gui::figure::smoothing::Ema;
use crate::gui::state::run_state::RunSeries;

/// What the user set on the plots (persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CurveSettings {
    /// EMA weight for the loss curve, 0 (raw) to 0.99.
    pub smoothing: f64,
    /// Plot the loss on a log10 axis.
    pub log_loss: bool,
    /// Draw the raw (unsmoothed) loss faintly behind the smoothed line.
    pub show_raw: bool,
}

impl Default for CurveSettings {
    fn default() -> Self {
        Self {
            smoothing: 0.6,
            log_loss: false,
            show_raw: true,
        }
    }
}

/// The Curves tab's state (the maze's curves share it).
#[derive(Default)]
pub struct CurvesState {
    /// What the learner set (persisted with the session).
    pub settings: CurveSettings,
    /// What the plots derived, kept between frames.
    pub cache: CurvesCache,
}

/// Derived data kept between frames (not persisted).
#[derive(Default)]
pub struct CurvesCache {
    ema: HashMap<String, Ema>,
    decimated: HashMap<(String, &'static str), Decimated>,
    /// Per plot: the x range shown last frame, when the user zoomed or panned
    /// (None while the plot fits itself to the data).
    view: HashMap<&'static str, Option<(f64, f64)>>,
    /// Per plot: what it showed last frame, for saving it.
    figures: HashMap<&'static str, Figure>,
    /// Each shown run's palette index, kept while it is shown: a run keeps its
    /// colour when another run is overlaid or the live run starts.
    colours: HashMap<String, usize>,
}

/// Inputs of a cached decimation, the points to draw, and the x of non-finite values.
type Decimated = (DecimationKey, Vec<[f64; 2]>, Vec<f64>);

#[derive(Debug, Clone, Copy, PartialEq)]
struct DecimationKey {
    len: usize,
    x_range: (f64, f64),
    buckets: usize,
    log: bool,
}

/// Line colours for overlaid runs (the live run uses the first).
pub(crate) const PALETTE: [Color32; 6] = [
    Color32::from_rgb(80, 160, 255),
    Color32::from_rgb(255, 150, 60),
    Color32::from_rgb(110, 200, 110),
    Color32::from_rgb(220, 100, 200),
    Color32::from_rgb(230, 210, 80),
    Color32::from_rgb(150, 150, 255),
];

impl CurvesCache {
    /// Frees the colours of runs no longer shown, then gives each new one the
    /// first palette colour no shown run has.
    pub(crate) fn assign_colours(&mut self, runs: &[&RunSeries]) {
        self.colours
            .retain(|label, _| runs.iter().any(|r| &r.label == label));
        for r in runs {
            if !self.colours.contains_key(&r.label) {
                let used: Vec<usize> = self.colours.values().copied().collect();
                let free = (0..).find(|i| !used.contains(i)).unwrap_or(0);
                self.colours.insert(r.label.clone(), free);
            }
        }
    }

    /// The colour of the run labelled `label` (see [`Self::assign_colours`]).
    pub(crate) fn colour(&self, label: &str) -> Color32 {
        let i = self.colours.get(label).copied().unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }

    /// Smoothed loss of `series` under `weight`, extended incrementally. The values
    /// are moved out so the caller can decimate them; give them back with `put_ema`.
    fn take_smoothed(&mut self, series: &RunSeries, weight: f64) -> Ema {
        let mut ema = self
            .ema
            .remove(&series.label)
            .unwrap_or_else(|| Ema::new(weight));
        if (ema.weight() - weight.clamp(0.0, 0.999)).abs() > 1e-12 {
            ema = Ema::new(weight);
        }
        ema.extend_to(&series.steps.loss);
        ema
    }

    fn put_ema(&mut self, label: &str, ema: Ema) {
        self.ema.insert(label.to_string(), ema);
    }

    /// The x range to decimate for plot `plot`: what the user zoomed to (plus one
    /// screen either side, so panning stays smooth), else all of `xs`.
    pub(crate) fn x_range(&self, plot: &'static str, xs: &[f64]) -> (f64, f64) {
        let all = (
            xs.first().copied().unwrap_or(0.0),
            xs.last().copied().unwrap_or(0.0),
        );
        match self.view.get(plot).copied().flatten() {
            Some((lo, hi)) => {
                let w = hi - lo;
                ((lo - w).max(all.0), (hi + w).min(all.1))
            }
            None => all,
        }
    }

    /// Points to draw for `(xs, ys)` in `x_range` at `buckets` pixels, plus the x
    /// positions of non-finite values; cached until an input changes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn points(
        &mut self,
        id: (String, &'static str),
        xs: &[f64],
        ys: &[f64],
        x_range: (f64, f64),
        buckets: usize,
        log: bool,
    ) -> (Vec<[f64; 2]>, Vec<f64>) {
        let key = DecimationKey {
            len: ys.len(),
            x_range,
            buckets,
            log,
        };
        if let Some((k, pts, bad)) = self.decimated.get(&id)
            && *k == key
        {
            return (pts.clone(), bad.clone());
        }
        let map = |y: f64| {
            if log {
                if y > 0.0 { y.log10() } else { f64::NAN }
            } else {
                y
            }
        };
        let lo = xs.partition_point(|&x| x < x_range.0);
        let hi = xs.partition_point(|&x| x <= x_range.1);
        let (xs, ys) = (
            &xs[lo..hi.max(lo)],
            &ys[lo.min(ys.len())..hi.max(lo).min(ys.len())],
        );
        let (pts, bad) = if ys.len() > 4 * buckets.max(1) {
            let mapped: Vec<f64>;
            let ys = if log {
                mapped = ys.iter().map(|&y| map(y)).collect();
                &mapped[..]
            } else {
                ys
            };
            let b = min_max_envelope(xs, ys, x_range, buckets);
            (envelope_polyline(&b), non_finite_positions(&b))
        } else {
            let mut pts = Vec::with_capacity(ys.len());
            let mut bad = Vec::new();
            for (&x, &y) in xs.iter().zip(ys) {
                let y = map(y);
                if y.is_finite() {
                    pts.push([x, y])
                } else {
                    bad.push(x)
                }
            }
            (pts, bad)
        };
        self.decimated.insert(id, (key, pts.clone(), bad.clone()));
        (pts, bad)
    }

    /// Decimated `(step, column)` points of `run` for plot `plot`.
    fn column(
        &mut self,
        plot: &'static str,
        run: &RunSeries,
        ys: &[f64],
        buckets: usize,
    ) -> Vec<[f64; 2]> {
        let range = self.x_range(plot, &run.steps.step);
        self.points(
            (run.label.clone(), plot),
            &run.steps.step,
            ys,
            range,
            buckets,
            false,
        )
        .0
    }

    /// What plot `plot` ("loss_plot", "accuracy_plot", "lr_plot", "speed_plot", or
    /// for mazes "rl_return", "rl_length", "rl_eps", "rl_loss") showed last frame.
    pub fn figure(&self, plot: &str) -> Option<&Figure> {
        self.figures.get(plot)
    }

    /// Remembers whether the user moved plot `plot` away from fitting the data.
    pub(crate) fn remember_view(&mut self, plot: &'static str, auto: bool, bounds: (f64, f64)) {
        self.view.insert(plot, (!auto).then_some(bounds));
    }
}

/// Draws the smoothing/log controls and the four plots for `runs` (first = live).
pub fn curves_view(
    ui: &mut Ui,
    settings: &mut CurveSettings,
    cache: &mut CurvesCache,
    runs: &[&RunSeries],
) {
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing").on_hover_text(
            "Exponential moving average of the loss, like TensorBoard: higher = smoother but lags behind.",
        );
        ui.add(Slider::new(&mut settings.smoothing, 0.0..=0.99)).labelled_by(label.id);
        ui.checkbox(&mut settings.show_raw, "raw loss")
            .on_hover_text("Also draw the unsmoothed loss, faintly.");
        ui.checkbox(&mut settings.log_loss, "log scale")
            .on_hover_text("Loss on a log axis: shows progress late in training when the loss is small.");
    });
    cache.assign_colours(runs);
    if runs.iter().all(|r| r.steps.step.is_empty()) {
        ui.label(
            "No curves yet: press ▶ Start (Ctrl+Enter) to train, or tick past runs under History.",
        );
    }
    // Room for the two captions, the x-axis labels and the two rows of save buttons.
    let height = ((ui.available_height() - 110.0) / 2.0).max(120.0);
    // Never wider than the panel: a plot cut at its edges hid its legend.
    let width = ((ui.available_width() - 24.0) / 2.0).max(120.0).floor();
    // A fixed id: all four plots share one x axis.
    let link = Id::unique("trainlab_steps_axis");
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            loss_plot(ui, settings, cache, runs, [width, height], link);
        });
        ui.vertical(|ui| {
            accuracy_plot(ui, cache, runs, [width, height], link);
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            let fig = Figure::new("Learning rate", "step", "learning rate");
            simple_plot(
                ui,
                cache,
                "lr_plot",
                fig,
                runs,
                [width, height],
                link,
                |r| &r.steps.lr,
            );
        });
        ui.vertical(|ui| {
            let fig = Figure::new(
                "Throughput (samples/s; tokens/s for language models)",
                "step",
                "per second",
            );
            simple_plot(
                ui,
                cache,
                "speed_plot",
                fig,
                runs,
                [width, height],
                link,
                |r| &r.steps.samples_per_sec,
            );
        });
    });
}

fn base_plot(id: &str, [w, h]: [f32; 2], link: Id) -> Plot<'static> {
    Plot::new(id.to_string())
        .width(w)
        .height(h)
        .legend(Legend::default().position(Corner::RightTop))
        .link_axis(link, [true, false])
        .x_axis_label("step")
}

fn epoch_lines(series: &RunSeries, color: Color32) -> Series {
    Series::vlines(
        "epoch",
        color.gamma_multiply(0.35),
        1.0,
        true,
        &series.epoch_starts,
    )
}

/// Shows `figure` (its title above, the save row under it) in `plot`, records
/// the view for the next frame's decimation, and keeps the figure as shown for
/// [`CurvesCache::figure`].
pub(crate) fn show_plot(
    ui: &mut Ui,
    cache: &mut CurvesCache,
    name: &'static str,
    plot: Plot<'static>,
    mut figure: Figure,
) {
    ui.label(&figure.title);
    let plot = plot.legend(figure_plot::legend_for(&figure));
    let response = plot.show(ui, |plot_ui| {
        figure_plot::draw(plot_ui, &figure);
        let b = plot_ui.plot_bounds();
        (plot_ui.auto_bounds().x, (b.min()[0], b.max()[0]))
    });
    let (auto, bounds) = response.inner;
    cache.remember_view(name, auto, bounds);
    figure_plot::record_view(&mut figure, &response);
    save_row(ui, name, || figure.clone());
    cache.figures.insert(name, figure);
}

fn loss_plot(
    ui: &mut Ui,
    settings: &CurveSettings,
    cache: &mut CurvesCache,
    runs: &[&RunSeries],
    size: [f32; 2],
    link: Id,
) {
    let log = settings.log_loss;
    let buckets = size[0].max(1.0) as usize;
    let mut plot = base_plot("loss_plot", size, link);
    if log {
        plot = plot.y_axis_formatter(|mark, _| format!("{:.3}", 10f64.powf(mark.value)));
    }
    let mut fig = Figure::new(
        "Training loss (lower is better); circles: validation loss",
        "step",
        "loss",
    );
    fig.y.log10 = log;
    // Several runs: one legend entry per run (the title says which mark is
    // which), so the legend stays small next to the data.
    let many = runs.len() > 1;
    for run in runs {
        let color = cache.colour(&run.label);
        let label = &run.label;
        // One run: the legend names the marks only (its name is in the status
        // bar and the history; a long run name cut the legend at the plot's edges).
        let name = |what: &str| {
            if many {
                label.clone()
            } else {
                what.to_string()
            }
        };
        let xs = &run.steps.step;
        let range = cache.x_range("loss_plot", xs);
        if settings.show_raw {
            let (raw, _) = cache.points(
                (run.label.clone(), "raw"),
                xs,
                &run.steps.loss,
                range,
                buckets,
                log,
            );
            fig.series.push(Series::line(
                name("raw"),
                color.gamma_multiply(0.3),
                1.0,
                raw,
            ));
        }
        let ema = cache.take_smoothed(run, settings.smoothing);
        let (smooth, bad) = cache.points(
            (run.label.clone(), "ema"),
            xs,
            &ema.values,
            range,
            buckets,
            log,
        );
        cache.put_ema(&run.label, ema);
        fig.series
            .push(Series::line(name("loss"), color, 2.0, smooth));
        let val: Vec<[f64; 2]> = run
            .evals
            .iter()
            .filter(|e| e.split == Split::Val)
            .filter(|e| !log || e.loss > 0.0)
            .map(|e| [e.step, if log { e.loss.log10() } else { e.loss }])
            .collect();
        if !val.is_empty() {
            fig.series.push(Series::markers(
                name("val loss"),
                color,
                4.0,
                false,
                Marker::Circle,
                val,
            ));
        }
        if !bad.is_empty() {
            fig.series.push(Series::vlines(
                "NaN/inf loss",
                Color32::RED,
                1.5,
                false,
                &bad,
            ));
        }
        fig.series.push(epoch_lines(run, color));
    }
    show_plot(ui, cache, "loss_plot", plot, fig);
}

fn accuracy_plot(
    ui: &mut Ui,
    cache: &mut CurvesCache,
    runs: &[&RunSeries],
    size: [f32; 2],
    link: Id,
) {
    let buckets = size[0].max(1.0) as usize;
    let mut fig = Figure::new(
        "Accuracy (higher is better): train line, val dots, test diamond",
        "step",
        "accuracy",
    );
    // Several runs: one legend entry per run (the title says which mark is
    // which), so the legend stays small next to the data.
    let many = runs.len() > 1;
    for run in runs {
        let color = cache.colour(&run.label);
        let label = &run.label;
        // One run: the legend names the marks only (its name is in the status
        // bar and the history; a long run name cut the legend at the plot's edges).
        let name = |what: &str| {
            if many {
                label.clone()
            } else {
                what.to_string()
            }
        };
        let train = cache.column("accuracy_plot", run, &run.steps.accuracy, buckets);
        fig.series.push(Series::line(
            name("train"),
            color.gamma_multiply(0.5),
            1.0,
            train,
        ));
        let val = run.accuracy_points(Split::Val);
        if !val.is_empty() {
            fig.series
                .push(Series::line(name("val"), color, 2.0, val.clone()));
            fig.series.push(Series::markers(
                name("val"),
                color,
                3.0,
                true,
                Marker::Circle,
                val,
            ));
        }
        let test = run.accuracy_points(Split::Test);
        if !test.is_empty() {
            fig.series.push(Series::markers(
                name("test"),
                color,
                6.0,
                true,
                Marker::Diamond,
                test,
            ));
        }
        fig.series.push(epoch_lines(run, color));
    }
    let plot = base_plot("accuracy_plot", size, link)
        .include_y(0.0)
        .include_y(1.0);
    show_plot(ui, cache, "accuracy_plot", plot, fig);
}

#[allow(clippy::too_many_arguments)]
fn simple_plot(
    ui: &mut Ui,
    cache: &mut CurvesCache,
    id: &'static str,
    mut fig: Figure,
    runs: &[&RunSeries],
    size: [f32; 2],
    link: Id,
    column: impl Fn(&RunSeries) -> &Vec<f64>,
) {
    let buckets = size[0].max(1.0) as usize;
    let show_changes = id == "lr_plot";
    for run in runs {
        let pts = cache.column(id, run, column(run), buckets);
        fig.series.push(Series::line(
            run.label.clone(),
            cache.colour(&run.label),
            1.0,
            pts,
        ));
        if show_changes && !run.lr_changes.is_empty() {
            let changes: Vec<f64> = run.lr_changes.iter().map(|&(s, _)| s as f64).collect();
            fig.series.push(Series::vlines(
                "lr changed",
                Color32::from_rgb(255, 170, 0),
                1.0,
                false,
                &changes,
            ));
        }
    }
    let plot = base_plot(id, size, link).include_y(0.0);
    show_plot(ui, cache, id, plot, fig);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overlaying a run, or starting one in front of the overlays, leaves every
    /// shown run its colour; a run taken away frees its colour.
    #[test]
    fn a_runs_colour_stays_when_others_come_and_go() {
        let (a, b, c) = (
            RunSeries::starting("a"),
            RunSeries::starting("b"),
            RunSeries::starting("live"),
        );
        let mut cache = CurvesCache::default();
        cache.assign_colours(&[&a]);
        let colour_a = cache.colour("a");
        cache.assign_colours(&[&a, &b]);
        let colour_b = cache.colour("b");
        assert_ne!(colour_a, colour_b);
        // A live run drawn first does not shift the overlays.
        cache.assign_colours(&[&c, &a, &b]);
        assert_eq!(cache.colour("a"), colour_a);
        assert_eq!(cache.colour("b"), colour_b);
        let colour_c = cache.colour("live");
        assert!(colour_c != colour_a && colour_c != colour_b);
        // "a" unticked: its colour is free for the next run.
        cache.assign_colours(&[&c, &b]);
        let d = RunSeries::starting("d");
        cache.assign_colours(&[&c, &b, &d]);
        assert_eq!(cache.colour("d"), colour_a);
        assert_eq!(cache.colour("b"), colour_b);
    }
}
