//! Small multiples: the first objective against each explored knob, one small
//! scatter per path (log10 on x for log-uniform params, category index for
//! choices), points coloured like everywhere else in the study views.
//!
//! Contract: draws the trials that have a first objective value; reads no files.

use egui::Ui;
use egui_plot::Plot;

use super::scale::{AxisKind, short};
use super::state::StudyData;
use crate::gui::figure::plot::show_with_save_row;
use crate::gui::figure::{Figure, Marker, Series};

/// The x axis's tick labels in the knob's own values: 10^x on a log axis, the
/// choice's name at a category's index (none between two), plain numbers.
fn tick_text(
    kind: AxisKind,
) -> impl Fn(egui_plot::GridMark, &std::ops::RangeInclusive<f64>) -> String {
    move |mark, _| tick_label(&kind, mark.value)
}

fn tick_label(kind: &AxisKind, x: f64) -> String {
    match kind {
        AxisKind::Log(..) => short(10f64.powf(x)),
        AxisKind::Categories(names) => {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            names
                .get(i as usize)
                .map_or_else(String::new, |n| n.trim_matches('"').to_string())
        }
        AxisKind::Linear(..) => short(x),
    }
}

/// Draws one scatter per explored path.
pub fn knob_scatter(ui: &mut Ui, data: &StudyData) {
    let d = &data.derived;
    let Some(objective) = data.objectives().first().copied() else {
        ui.label("No objective yet: the study file is still being read.");
        return;
    };
    // As many plots per row as fit whole (a cut-off third plot hid its data).
    let avail = ui.available_width() - 24.0;
    let per_row = ((avail / 340.0).floor() as usize).clamp(1, d.paths.len().max(1));
    let width = (avail / per_row as f32 - 16.0).clamp(200.0, 420.0);
    let size = egui::vec2(width, 220.0);
    egui::ScrollArea::vertical()
        .id_salt("study_scatter")
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for (i, path) in d.paths.iter().enumerate() {
                    let Some(axis) = d.axes.get(i) else { continue };
                    let x_label = match &axis.kind {
                        AxisKind::Log(..) => format!("{path} (log scale)"),
                        AxisKind::Categories(names) => format!(
                            "{path}: {}",
                            names
                                .iter()
                                .map(|n| n.trim_matches('"'))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        ),
                        AxisKind::Linear(..) => path.clone(),
                    };
                    let mut fig = Figure::new(
                        format!("{} against {path}", objective.label()),
                        x_label.clone(),
                        objective.label(),
                    );
                    fig.legend = false;
                    for t in &data.trials {
                        let Some(y) = t.values.first().copied().flatten() else {
                            continue;
                        };
                        let Some(x) = t.params.get(path).and_then(|v| axis.plot_x(v)) else {
                            continue;
                        };
                        fig.series.push(Series::markers(
                            format!("{:04}", t.id),
                            d.colors.trial_color(t),
                            4.0,
                            true,
                            Marker::Circle,
                            vec![[x, y]],
                        ));
                    }
                    ui.vertical(|ui| {
                        let plot = Plot::new(("study_scatter", i))
                            .width(size.x)
                            .height(size.y)
                            .x_axis_label(x_label)
                            .x_axis_formatter(tick_text(axis.kind.clone()))
                            .y_axis_label(objective.label())
                            .allow_scroll(false)
                            .allow_drag(false);
                        show_with_save_row(ui, plot, fig, &format!("study_scatter{i}"));
                    });
                }
            });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_show_the_knobs_values_not_positions() {
        let log = AxisKind::Log(1e-4, 1e-1);
        assert_eq!(tick_label(&log, -3.0), short(1e-3));
        let choice = AxisKind::Categories(vec!["\"relu\"".into(), "\"tanh\"".into()]);
        assert_eq!(tick_label(&choice, 1.0), "tanh");
        assert_eq!(tick_label(&choice, 0.5), "");
        assert_eq!(tick_label(&choice, 5.0), "");
        assert_eq!(tick_label(&AxisKind::Linear(0.0, 1.0), 0.25), short(0.25));
    }
}
