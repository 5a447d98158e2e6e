//! The Layers tab: per layer, how its activations and its parameters' gradient
//! are distributed over the steps (quantile bands), every layer's gradient norm,
//! the fraction of dead ReLU units, and a table of the newest record; for the
//! current run (live or finished) or any History run ticked for comparison.
//!
//! Contract: reads only `RunSeries::layer_stats` (folded in from events, or read
//! back from `metrics.jsonl` for a History run); builds its figures from those
//! records each frame (at most `figures::MAX_COLUMNS` columns per plot) and keeps
//! nothing else between frames but the choices ([`LayersState`], in `state.rs`).
//! Every plot saves as PNG/SVG; the records save as CSV.

pub(crate) mod figures;
mod state;

use egui::{Color32, Ui};
use egui_plot::Plot;

use self::figures::{Which, band_figure, dead_figure, layer_label, norm_figure, number, to_csv};
use crate::events::LayerStats;
use crate::gui::figure::plot::show_with_save_row;
use crate::gui::state::run_state::RunSeries;
use crate::gui::views::curves::PALETTE;
pub use state::LayersState;

impl LayersState {
    /// Draws the tab for `current` or one of `others` (History runs).
    pub fn show(&mut self, ui: &mut Ui, current: &RunSeries, others: &[&RunSeries]) {
        let run = match &self.source {
            Some(label) => others.iter().find(|r| &r.label == label).copied(),
            None => None,
        }
        .unwrap_or(current);
        if self.source.as_ref().is_some_and(|l| *l != run.label) {
            self.source = None;
        }
        self.choices(ui, current, others, run);
        let records = &run.layer_stats;
        if records.is_empty() {
            ui.label(
                "No layer statistics in this run. They are recorded at every evaluation of \
                 image, text and points runs (training.layer_stats, on by default): start a \
                 run, or tick a History run that has them.",
            );
            return;
        }
        egui::ScrollArea::vertical()
            .id_salt("layers_scroll")
            .show(ui, |ui| {
                self.plots(ui, records);
                ui.separator();
                latest_table(ui, records);
            });
    }

    /// The run and layer choosers and the CSV button.
    fn choices(
        &mut self,
        ui: &mut Ui,
        current: &RunSeries,
        others: &[&RunSeries],
        run: &RunSeries,
    ) {
        ui.horizontal(|ui| {
            ui.label("Run:");
            let shown = if self.source.is_some() {
                run.label.clone()
            } else {
                format!("current run ({})", current.label)
            };
            egui::ComboBox::from_id_salt("layers_run")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.source, None, "current run");
                    for o in others {
                        ui.selectable_value(&mut self.source, Some(o.label.clone()), &o.label);
                    }
                })
                .response
                .on_hover_text("The current run, or a run ticked in History.");
            let Some(first) = run.layer_stats.first() else {
                return;
            };
            let chosen = self
                .layer
                .and_then(|i| first.layers.iter().find(|l| l.index == i))
                .or_else(|| first.layers.iter().find(|l| l.gradient.is_some()))
                .or_else(|| first.layers.first());
            self.layer = chosen.map(|l| l.index);
            ui.label("Layer:");
            let item = |l: &crate::events::LayerStat| format!("layer {}", layer_label(l));
            egui::ComboBox::from_id_salt("layers_layer")
                .selected_text(chosen.map(item).unwrap_or_default())
                .show_ui(ui, |ui| {
                    for l in &first.layers {
                        ui.selectable_value(&mut self.layer, Some(l.index), item(l));
                    }
                })
                .response
                .on_hover_text("The layer whose distributions the two upper plots show.");
            if ui
                .button("Save CSV")
                .on_hover_text("Every record of this run: quantiles, mean, RMS, gradient norm and dead fraction per layer and step.")
                .clicked()
            {
                self.save_csv(&run.layer_stats, &run.label);
            }
            if let Some(m) = &self.saved {
                ui.label(m);
            }
        });
    }

    fn save_csv(&mut self, records: &[LayerStats], label: &str) {
        let Some(path) = rfd::FileDialog::new()
            .add_filter("CSV", &["csv"])
            .set_file_name(format!(
                "{}_layers.csv",
                label.replace(['/', '\\', ' '], "_")
            ))
            .save_file()
        else {
            return;
        };
        self.saved = Some(
            match crate::util::atomic::write_atomic(&path, to_csv(records).as_bytes()) {
                Ok(()) => format!("Saved {}", path.display()),
                Err(e) => format!("Not saved: {}: {e}", path.display()),
            },
        );
    }

    /// The four plots, two by two.
    fn plots(&self, ui: &mut Ui, records: &[LayerStats]) {
        let layer = self.layer.unwrap_or(0);
        let width = ((ui.available_width() - 24.0) / 2.0).max(200.0);
        let size = [width, 220.0];
        let has_grad = records
            .last()
            .and_then(|r| r.layers.iter().find(|l| l.index == layer))
            .is_some_and(|l| l.gradient.is_some());
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                let fig = band_figure(records, layer, Which::Activation, PALETTE[0]);
                plot(ui, "layers_activation", fig, size, false);
            });
            ui.vertical(|ui| {
                if has_grad {
                    let fig = band_figure(records, layer, Which::Gradient, PALETTE[1]);
                    plot(ui, "layers_gradient", fig, size, false);
                } else {
                    ui.set_width(width);
                    ui.label("This layer has no parameters, so no gradient of its own: choose a Linear or Conv2d layer.");
                }
            });
        });
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                plot(
                    ui,
                    "layers_norm",
                    norm_figure(records, &PALETTE),
                    size,
                    true,
                )
            });
            ui.vertical(|ui| match dead_figure(records, &PALETTE) {
                Some(fig) => plot(ui, "layers_dead", fig, size, false),
                None => {
                    ui.label("No ReLU layer, so no dead units to count.");
                }
            });
        });
    }
}

/// One plot with its title above and the save row under it.
fn plot(ui: &mut Ui, id: &str, fig: crate::gui::figure::Figure, [w, h]: [f32; 2], log_y: bool) {
    ui.label(&fig.title);
    let mut p = Plot::new(id.to_string())
        .width(w)
        .height(h)
        .x_axis_label(fig.x.label.clone())
        .y_axis_label(fig.y.label.clone())
        .legend(crate::gui::figure::plot::legend_for(&fig))
        .allow_scroll(false);
    if log_y {
        p = p.y_axis_formatter(|mark, _| {
            crate::gui::figure::tick_label(mark.value, mark.step_size, true)
        });
    }
    show_with_save_row(ui, p, fig, id);
}

/// The newest record as a table: one row per layer.
fn latest_table(ui: &mut Ui, records: &[LayerStats]) {
    let Some(r) = records.last() else { return };
    ui.strong(format!(
        "At step {} ({} samples, the same at every record)",
        r.step, r.samples
    ));
    egui::Grid::new("layers_latest")
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "layer",
                "activation median",
                "activation 5 %",
                "activation 95 %",
                "gradient norm",
                "dead ReLU",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for l in &r.layers {
                ui.label(layer_label(l));
                let a = &l.activation;
                ui.label(number(a.median()));
                ui.label(number(a.quantiles[1]));
                ui.label(number(a.quantiles[5]));
                ui.label(l.grad_norm.map_or("-".into(), number));
                let dead = l
                    .dead_fraction
                    .map_or("-".into(), |d| format!("{:.1} %", d * 100.0));
                let colour = match l.dead_fraction {
                    Some(d) if d > 0.5 => Color32::from_rgb(200, 60, 40),
                    _ => ui.visuals().text_color(),
                };
                ui.colored_label(colour, dead);
                ui.end_row();
            }
        });
}
