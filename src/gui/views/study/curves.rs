//! Every trial's validation curve over epochs, overlaid in one plot and coloured by
//! the trial's first objective value (legend: the colour scale). A trial without
//! the picked validation series falls back to its training loss. Stopped (ASHA)
//! trials end early with a cross at their last point; failed trials are red and
//! dashed; trials without a value yet are grey.
//!
//! Contract: draws the points [`StudyData`] already holds; builds no more than one
//! line per trial per frame and reads no files.

use egui::{Color32, Ui};
use egui_plot::Plot;

use super::scale::{ColorScale, FAILED, ramp, short};
use super::state::{Series, StudyData, TrialCurves};
use crate::gui::figure::plot::show_with_save_row;
use crate::gui::figure::{Figure, Marker, Series as FigureSeries, Style};

/// Which curve to draw per trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Validation accuracy.
    #[default]
    ValAccuracy,
    /// Validation loss.
    ValLoss,
    /// Training loss.
    TrainLoss,
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Self::ValAccuracy => "val accuracy",
            Self::ValLoss => "val loss",
            Self::TrainLoss => "train loss",
        }
    }

    fn series(self, c: &TrialCurves) -> &Series {
        let picked = match self {
            Self::ValAccuracy => &c.val_accuracy,
            Self::ValLoss => &c.val_loss,
            Self::TrainLoss => &c.train_loss,
        };
        if picked.points.is_empty() {
            &c.train_loss
        } else {
            picked
        }
    }
}

/// The colour scale as a bar with its ends labelled.
pub fn scale_legend(ui: &mut Ui, scale: &ColorScale) {
    ui.horizontal(|ui| {
        let Some(((lo, hi), o)) = scale.range.zip(scale.objective) else {
            ui.weak("colour: first objective (no values yet)");
            return;
        };
        let (worst, best) = if o.score(lo) <= o.score(hi) {
            (lo, hi)
        } else {
            (hi, lo)
        };
        ui.label(format!("{}:", o.label()));
        ui.label(short(worst));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(160.0, 14.0), egui::Sense::hover());
        let n = 32;
        for i in 0..n {
            let x0 = rect.left() + rect.width() * i as f32 / n as f32;
            let x1 = rect.left() + rect.width() * (i + 1) as f32 / n as f32;
            ui.painter().rect_filled(
                egui::Rect::from_x_y_ranges(x0..=x1 + 0.5, rect.y_range()),
                0.0,
                ramp(i as f32 / (n - 1) as f32),
            );
        }
        ui.label(short(best));
        ui.separator();
        ui.colored_label(Color32::from_gray(140), "grey: no value yet");
        ui.colored_label(FAILED, "red dashed: failed");
        ui.label("×: stopped early");
    });
}

/// Draws the overlaid curves.
pub fn study_curves(ui: &mut Ui, data: &StudyData, metric: &mut Metric) {
    ui.horizontal(|ui| {
        ui.label("Curve");
        for m in [Metric::ValAccuracy, Metric::ValLoss, Metric::TrainLoss] {
            ui.selectable_value(metric, m, m.label());
        }
    });
    scale_legend(ui, &data.derived.colors);
    let metric = *metric;
    let mut fig = Figure::new(
        format!("Trial curves: {}", metric.label()),
        "epoch",
        metric.label(),
    );
    fig.legend = false;
    for t in &data.trials {
        let Some(c) = data.curves.get(t.id) else {
            continue;
        };
        let s = metric.series(c);
        if s.points.is_empty() {
            continue;
        }
        let color = data.derived.colors.trial_color(t);
        let name = format!("{:04}", t.id);
        let width = if t.state.name() == "running" {
            2.5
        } else {
            1.5
        };
        let mut line = FigureSeries::line(name.clone(), color, width, s.points.clone());
        if t.state.name() == "failed" {
            line.style = Style::Line {
                width,
                dashed: true,
            };
        }
        fig.series.push(line);
        if t.state.name() == "stopped"
            && let Some(end) = s.last()
        {
            fig.series.push(FigureSeries::markers(
                name,
                color,
                5.0,
                false,
                Marker::Cross,
                vec![end],
            ));
        }
    }
    // Leave room under the plot for its save row (it sat behind the status bar).
    let height = (ui.available_height() - 44.0).max(150.0);
    let plot = Plot::new("study_curves")
        .height(height)
        .x_axis_label("epoch")
        .y_axis_label(metric.label())
        .allow_scroll(false);
    show_with_save_row(ui, plot, fig, "study_curves");
}
