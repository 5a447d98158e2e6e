//! The Compress tab: a finished run made smaller by magnitude pruning. A slider
//! prunes and tests one sparsity when released (no fine-tuning: the accuracy is
//! re-evaluated live); a sweep makes 50/80/90/95% with optional fine-tuning. The
//! table, the accuracy curve, size and speed bars and weight histograms show what
//! each variant costs and keeps.
//!
//! Contract: draws [`CompressState`] and reports requests (overlay or inspect a
//! variant, show the History); the work itself runs on the state's background job.

mod charts;
pub mod state;

use std::path::PathBuf;

use egui::Ui;

use crate::compress::CompressPlan;
use crate::spec::PruneScope;
use state::{CompressState, quality};

/// The sweep's sparsities.
pub const SWEEP: [f64; 4] = [0.5, 0.8, 0.9, 0.95];

/// What the learner asked for in the Compress tab.
#[derive(Debug, Clone, PartialEq)]
pub enum CompressAction {
    /// Overlay this variant's curves on the plots (folder, legend label).
    Overlay(PathBuf, String),
    /// Load this variant's model into the inspector.
    Inspect(PathBuf),
    /// Show the History tab.
    ShowHistory,
}

/// Draws the tab; returns what the learner asked for.
pub fn compress_view(ui: &mut Ui, s: &mut CompressState) -> Option<CompressAction> {
    let Some(run) = s.run.clone() else {
        ui.label(
            "Pick a finished run to compress: the \"compress\" button on its row in the History. Its pruned \
             variants are recorded as runs in a \"-compressed\" folder beside it.",
        );
        return ui
            .button("Show the History")
            .clicked()
            .then_some(CompressAction::ShowHistory);
    };
    let mut action = None;
    ui.horizontal(|ui| {
        ui.strong(run.file_name().map_or_else(
            || run.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ));
        ui.weak(format!("variants go to {}", s.out.display()));
    });
    controls(ui, s);
    ui.separator();
    if s.rows.is_empty() {
        ui.label("No variants yet: release the slider or run the sweep.");
        return None;
    }
    egui::ScrollArea::vertical()
        .id_salt("compress_scroll")
        .show(ui, |ui| {
            action = table(ui, s);
            ui.separator();
            let h = 220.0;
            ui.columns(2, |cols| {
                cols[0].strong("Test accuracy vs sparsity");
                charts::quality_curve(&mut cols[0], s, h);
                cols[1].horizontal(|ui| {
                    let label = ui.strong("Weights: original vs");
                    let names: Vec<String> = s
                        .rows
                        .iter()
                        .filter(|r| r.name != "original")
                        .map(|r| r.name.clone())
                        .collect();
                    egui::ComboBox::from_id_salt("compress_pick")
                        .selected_text(s.selected.clone().unwrap_or_else(|| "—".into()))
                        .show_ui(ui, |ui| {
                            for n in names {
                                ui.selectable_value(&mut s.selected, Some(n.clone()), n);
                            }
                        })
                        .response
                        .labelled_by(label.id);
                    ui.checkbox(&mut s.by_magnitude, "magnitude").on_hover_text(
                        "Histogram of |w| (else of w). Zeros are counted in the legend, not drawn.",
                    );
                });
                charts::histograms(&mut cols[1], s, h);
            });
            ui.columns(2, |cols| {
                cols[0].strong("Size (bars by row #)");
                charts::size_bars(&mut cols[0], &s.rows, h);
                cols[1].strong("Inference speed, CPU (bars by row #)");
                charts::speed_bars(&mut cols[1], &s.rows, h);
            });
        });
    action
}

fn controls(ui: &mut Ui, s: &mut CompressState) {
    let mut plan = None;
    ui.horizontal(|ui| {
        ui.label("sparsity");
        let slider = ui
            .add(
                egui::Slider::new(&mut s.sparsity, 0.0..=0.99)
                    .custom_formatter(|v, _| format!("{:.0}%", v * 100.0))
                    .custom_parser(|t| {
                        t.trim()
                            .trim_end_matches('%')
                            .parse::<f64>()
                            .ok()
                            .map(|v| v / 100.0)
                    }),
            )
            .on_hover_text(
                "Share of the prunable weights (Linear, Conv, recurrent, attention matrices) \
                 set to zero, smallest first. Release to prune and test it (no fine-tuning).",
            );
        let released = slider.drag_stopped() || (slider.lost_focus() && slider.changed());
        if released
            || ui
                .button("prune & test")
                .on_hover_text("Prune to this sparsity and test it, without fine-tuning.")
                .clicked()
        {
            plan = Some(CompressPlan {
                sparsities: vec![(s.sparsity * 100.0).round() / 100.0],
                finetune_epochs: 0,
                scope: s.scope,
                int8: false,
            });
        }
        ui.separator();
        let label = ui.label("pruned by");
        egui::ComboBox::from_id_salt("compress_scope")
            .selected_text(match s.scope {
                PruneScope::Global => "one threshold",
                PruneScope::PerLayer => "per layer",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.scope, PruneScope::Global, "one threshold")
                    .on_hover_text("One threshold over all layers: layers lose different shares.");
                ui.selectable_value(&mut s.scope, PruneScope::PerLayer, "per layer")
                    .on_hover_text("Each layer loses the same share.");
            })
            .response
            .labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        let label = SWEEP
            .iter()
            .map(|v| format!("{:.0}", v * 100.0))
            .collect::<Vec<_>>()
            .join("/");
        if ui
            .button(format!("sweep {label}%"))
            .on_hover_text("Make one variant per sparsity, each fine-tuned as set on the right.")
            .clicked()
        {
            plan = Some(CompressPlan {
                sparsities: SWEEP.to_vec(),
                finetune_epochs: s.finetune_epochs,
                scope: s.scope,
                int8: s.int8,
            });
        }
        ui.label("fine-tune");
        ui.add(egui::DragValue::new(&mut s.finetune_epochs).range(0..=100))
            .on_hover_text("Epochs of training after pruning, the zeros held at zero (0: none).");
        ui.label("epochs");
        ui.checkbox(&mut s.int8, "+ int8 copy").on_hover_text(
            "The sweep also makes an int8-quantised copy of the original (image MLPs and CNNs).",
        );
        if let Some(doing) = s.busy() {
            ui.separator();
            ui.spinner();
            ui.label(doing);
        }
    });
    if let Some(plan) = plan {
        s.request(plan, ui.ctx());
    }
}

fn table(ui: &mut Ui, s: &mut CompressState) -> Option<CompressAction> {
    let mut action = None;
    let language = s.rows.iter().any(|r| r.test_accuracy.is_none());
    egui::Grid::new("compress_table")
        .striped(true)
        .num_columns(9)
        .show(ui, |ui| {
            let metric = if language { "bits/token" } else { "test acc" };
            for h in [
                "#", "variant", "sparsity", metric, "size", "sparse", "batch 1/s", "batch 64/s",
                "",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for (i, r) in s.rows.iter().enumerate() {
                ui.label(i.to_string());
                let chosen = s.selected.as_deref() == Some(r.name.as_str());
                if ui.selectable_label(chosen, &r.name).clicked() && r.name != "original" {
                    s.selected = Some(r.name.clone());
                }
                ui.label(format!("{:.1}%", r.sparsity * 100.0));
                ui.label(quality(r).map_or_else(
                    || "—".into(),
                    |q| {
                        if language {
                            format!("{q:.3}")
                        } else {
                            format!("{:.2}%", q * 100.0)
                        }
                    },
                ));
                ui.label(kb(r.size_bytes));
                ui.label(kb(r.sparse_bytes));
                ui.label(format!("{:.0}", r.samples_per_sec_batch1));
                ui.label(format!("{:.0}", r.samples_per_sec_batch64));
                ui.horizontal(|ui| {
                    let dir = PathBuf::from(&r.dir);
                    if ui
                        .small_button("overlay")
                        .on_hover_text("Show this run's curves on the Curves tab.")
                        .clicked()
                    {
                        action = Some(CompressAction::Overlay(dir.clone(), r.name.clone()));
                    }
                    if ui
                        .small_button("inspect")
                        .on_hover_text(
                            "Use this model for the confusion matrix, mistakes, weights and canvas.",
                        )
                        .clicked()
                    {
                        action = Some(CompressAction::Inspect(dir));
                    }
                });
                ui.end_row();
            }
        });
    ui.horizontal(|ui| {
        ui.weak("Every variant is a run: the History lists them under the original's name.");
        if ui.small_button("open the History").clicked() {
            action = Some(CompressAction::ShowHistory);
        }
    });
    action
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}
