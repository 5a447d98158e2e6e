//! "Watch it learn": loss, accuracy, learning rate and throughput plots over steps.
//!
//! Contract: draws [`RunSeries`] it is given (the live run first, then overlaid past
//! runs) and never recomputes from scratch per frame: smoothing is incremental per
//! series ([`Ema`]) and decimation results are cached until the series grows, the
//! view moves or the smoothing changes. Long series (> 4 points per pixel) are drawn
//! as a min/max envelope; NaN/inf steps are marked with red vertical lines.

use std::collections::HashMap;

use egui::{Color32, Id, Slider, Stroke, Ui};
use egui_plot::{Corner, Legend, Line, LineStyle, Plot, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::aggregate::{envelope_polyline, min_max_envelope, non_finite_positions};
use super::run_state::RunSeries;
use super::smoothing::Ema;
use crate::train::Split;

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

/// Derived data kept between frames (not persisted).
#[derive(Default)]
pub struct CurvesCache {
    ema: HashMap<String, Ema>,
    decimated: HashMap<(String, &'static str), Decimated>,
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
const PALETTE: [Color32; 6] = [
    Color32::from_rgb(80, 160, 255),
    Color32::from_rgb(255, 150, 60),
    Color32::from_rgb(110, 200, 110),
    Color32::from_rgb(220, 100, 200),
    Color32::from_rgb(230, 210, 80),
    Color32::from_rgb(150, 150, 255),
];

impl CurvesCache {
    /// Smoothed loss of `series` under `weight`, extended incrementally.
    fn smoothed(&mut self, series: &RunSeries, weight: f64) -> &[f64] {
        let ema = self
            .ema
            .entry(series.label.clone())
            .or_insert_with(|| Ema::new(weight));
        if (ema.weight() - weight.clamp(0.0, 0.999)).abs() > 1e-12 {
            *ema = Ema::new(weight);
        }
        ema.extend_to(&series.steps.loss);
        &ema.values
    }

    /// Points to draw for `(xs, ys)` in `x_range` at `buckets` pixels, plus the x
    /// positions of non-finite values; cached until an input changes.
    fn points(
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
        let (pts, bad) = if ys.len() > 4 * buckets.max(1) {
            let ys: Vec<f64> = ys.iter().map(|&y| map(y)).collect();
            let b = min_max_envelope(xs, &ys, x_range, buckets);
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
}

/// Draws the smoothing/log controls and the four plots for `runs` (first = live).
pub fn curves_view(
    ui: &mut Ui,
    settings: &mut CurveSettings,
    cache: &mut CurvesCache,
    runs: &[&RunSeries],
) {
    ui.horizontal(|ui| {
        ui.label("Smoothing").on_hover_text(
            "Exponential moving average of the loss, like TensorBoard: higher = smoother but lags behind.",
        );
        ui.add(Slider::new(&mut settings.smoothing, 0.0..=0.99));
        ui.checkbox(&mut settings.show_raw, "raw loss")
            .on_hover_text("Also draw the unsmoothed loss, faintly.");
        ui.checkbox(&mut settings.log_loss, "log scale")
            .on_hover_text("Loss on a log axis: shows progress late in training when the loss is small.");
    });
    if runs.iter().all(|r| r.steps.step.is_empty()) {
        ui.label(
            "No curves yet: press ▶ Start (Ctrl+Enter) to train, or tick past runs under History.",
        );
    }
    let height = ((ui.available_height() - 20.0) / 2.0).max(120.0);
    let width = ((ui.available_width() - 16.0) / 2.0).max(200.0);
    // A fixed id: all four plots share one x axis.
    let link = Id::unique("trainlab_steps_axis");
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Training loss (lower is better)");
            loss_plot(ui, settings, cache, runs, [width, height], link);
        });
        ui.vertical(|ui| {
            ui.label("Accuracy (higher is better): train line, val dots, test diamond");
            accuracy_plot(ui, runs, [width, height], link);
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Learning rate");
            simple_plot(ui, "lr_plot", runs, [width, height], link, |r| &r.steps.lr);
        });
        ui.vertical(|ui| {
            ui.label("Throughput (samples/s)");
            simple_plot(ui, "speed_plot", runs, [width, height], link, |r| {
                &r.steps.samples_per_sec
            });
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

fn epoch_lines(series: &RunSeries, color: Color32) -> Vec<VLine> {
    series
        .epoch_starts
        .iter()
        .map(|&x| {
            VLine::new("epoch", x)
                .stroke(Stroke::new(1.0, color.gamma_multiply(0.35)))
                .style(LineStyle::dashed_loose())
        })
        .collect()
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
    // Everything is computed before the plot closure (which must own its data).
    let mut items = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let xs = &run.steps.step;
        let range = (
            xs.first().copied().unwrap_or(0.0),
            xs.last().copied().unwrap_or(0.0),
        );
        let raw = settings.show_raw.then(|| {
            cache.points(
                (run.label.clone(), "raw"),
                xs,
                &run.steps.loss,
                range,
                buckets,
                log,
            )
        });
        let smooth: Vec<f64> = cache.smoothed(run, settings.smoothing).to_vec();
        let (smooth_pts, bad) =
            cache.points((run.label.clone(), "ema"), xs, &smooth, range, buckets, log);
        let val: Vec<[f64; 2]> = run
            .evals
            .iter()
            .filter(|e| e.split == Split::Val)
            .filter(|e| !log || e.loss > 0.0)
            .map(|e| [e.step, if log { e.loss.log10() } else { e.loss }])
            .collect();
        items.push((
            run.label.clone(),
            color,
            raw,
            smooth_pts,
            bad,
            val,
            epoch_lines(run, color),
        ));
    }
    plot.show(ui, move |plot_ui| {
        for (label, color, raw, smooth, bad, val, epochs) in items {
            if let Some((raw_pts, _)) = raw {
                plot_ui.line(
                    Line::new(format!("{label} raw"), PlotPoints::new(raw_pts))
                        .color(color.gamma_multiply(0.3))
                        .width(1.0),
                );
            }
            plot_ui.line(
                Line::new(format!("{label} loss"), PlotPoints::new(smooth))
                    .color(color)
                    .width(2.0),
            );
            if !val.is_empty() {
                plot_ui.points(
                    Points::new(format!("{label} val loss"), PlotPoints::new(val))
                        .color(color)
                        .radius(4.0)
                        .filled(false),
                );
            }
            for x in bad {
                plot_ui.vline(VLine::new("NaN/inf loss", x).stroke(Stroke::new(1.5, Color32::RED)));
            }
            for v in epochs {
                plot_ui.vline(v);
            }
        }
    });
}

fn accuracy_plot(ui: &mut Ui, runs: &[&RunSeries], size: [f32; 2], link: Id) {
    let mut items = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let train: Vec<[f64; 2]> = run
            .steps
            .step
            .iter()
            .zip(&run.steps.accuracy)
            .map(|(&x, &y)| [x, y])
            .collect();
        items.push((
            run.label.clone(),
            color,
            train,
            run.accuracy_points(Split::Val),
            run.accuracy_points(Split::Test),
            epoch_lines(run, color),
        ));
    }
    base_plot("accuracy_plot", size, link)
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, move |plot_ui| {
            for (label, color, train, val, test, epochs) in items {
                plot_ui.line(
                    Line::new(format!("{label} train"), PlotPoints::new(train))
                        .color(color.gamma_multiply(0.5)),
                );
                if !val.is_empty() {
                    plot_ui.line(
                        Line::new(format!("{label} val"), PlotPoints::new(val.clone()))
                            .color(color)
                            .width(2.0),
                    );
                    plot_ui.points(
                        Points::new(format!("{label} val"), PlotPoints::new(val))
                            .color(color)
                            .radius(3.0),
                    );
                }
                if !test.is_empty() {
                    plot_ui.points(
                        Points::new(format!("{label} test"), PlotPoints::new(test))
                            .color(color)
                            .radius(6.0)
                            .shape(egui_plot::MarkerShape::Diamond),
                    );
                }
                for v in epochs {
                    plot_ui.vline(v);
                }
            }
        });
}

fn simple_plot(
    ui: &mut Ui,
    id: &str,
    runs: &[&RunSeries],
    size: [f32; 2],
    link: Id,
    column: impl Fn(&RunSeries) -> &Vec<f64>,
) {
    let mut items = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let pts: Vec<[f64; 2]> = run
            .steps
            .step
            .iter()
            .zip(column(run))
            .map(|(&x, &y)| [x, y])
            .collect();
        let changes: Vec<f64> = run.lr_changes.iter().map(|&(s, _)| s as f64).collect();
        items.push((run.label.clone(), PALETTE[i % PALETTE.len()], pts, changes));
    }
    let show_changes = id == "lr_plot";
    base_plot(id, size, link)
        .include_y(0.0)
        .show(ui, move |plot_ui| {
            for (label, color, pts, changes) in items {
                plot_ui.line(Line::new(label, PlotPoints::new(pts)).color(color));
                if show_changes {
                    for x in changes {
                        plot_ui.vline(
                            VLine::new("lr changed", x)
                                .stroke(Stroke::new(1.0, Color32::from_rgb(255, 170, 0))),
                        );
                    }
                }
            }
        });
}
