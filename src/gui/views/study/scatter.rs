//! Small multiples: the first objective against each explored knob, one small
//! scatter per path (log10 on x for log-uniform params, category index for
//! choices), points coloured like everywhere else in the study views.
//!
//! Contract: draws the trials that have a first objective value; reads no files.

use egui::Ui;
use egui_plot::Plot;

use super::scale::AxisKind;
use super::state::StudyData;
use crate::gui::figure::plot::show_with_save_row;
use crate::gui::figure::{Figure, Marker, Series};

/// Draws one scatter per explored path.
pub fn knob_scatter(ui: &mut Ui, data: &StudyData) {
    let d = &data.derived;
    let Some(objective) = data.objectives().first().copied() else {
        ui.label("No objective yet: the study file is still being read.");
        return;
    };
    let size = egui::vec2(320.0, 220.0);
    egui::ScrollArea::vertical()
        .id_salt("study_scatter")
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for (i, path) in d.paths.iter().enumerate() {
                    let Some(axis) = d.axes.get(i) else { continue };
                    let x_label = match &axis.kind {
                        AxisKind::Log(..) => format!("log10 {path}"),
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
                            .y_axis_label(objective.label())
                            .allow_scroll(false)
                            .allow_drag(false);
                        show_with_save_row(ui, plot, fig, &format!("study_scatter{i}"));
                    });
                }
            });
        });
}
