//! The Compress view's plots: test accuracy (or bits per token) against
//! sparsity, size and inference speed per variant as bars, and the weight
//! histograms of the original against the selected variant.
//!
//! Contract: draws what [`CompressState`] holds; reads no files.

use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, Corner, Legend, Line, Plot, PlotPoints, Points, VLine};

use crate::gui::state::compress::{CompressState, Histogram};
use crate::train::compress::Variant;

const DENSE: Color32 = Color32::from_rgb(120, 150, 220);
const SPARSE: Color32 = Color32::from_rgb(240, 170, 60);
const ORIGINAL: Color32 = Color32::from_rgb(120, 150, 220);
const PRUNED: Color32 = Color32::from_rgb(230, 110, 90);

/// Accuracy (or bits per token) against sparsity, one line per fine-tuning.
pub fn quality_curve(ui: &mut Ui, s: &CompressState, height: f32) {
    let language = s.rows.iter().any(|r| r.test_accuracy.is_none());
    let (label, scale) = if language {
        ("bits per token (lower is better)", 1.0)
    } else {
        ("test accuracy %", 100.0)
    };
    Plot::new("compress_quality")
        .height(height)
        .x_axis_label("sparsity (share of prunable weights at zero)")
        .y_axis_label(label)
        .include_x(0.0)
        .include_x(1.0)
        .legend(Legend::default().position(Corner::LeftBottom))
        .allow_scroll(false)
        .show(ui, |plot| {
            for ft in s.finetune_groups() {
                let pts: Vec<[f64; 2]> = s
                    .curve(ft)
                    .into_iter()
                    .map(|[x, y]| [x, y * scale])
                    .collect();
                let name = if ft == 0 {
                    "pruned".to_string()
                } else {
                    format!("pruned + {ft} epoch(s) fine-tuning")
                };
                let color = if ft == 0 {
                    PRUNED
                } else {
                    Color32::from_rgb(90, 180, 110)
                };
                plot.line(Line::new(name.clone(), PlotPoints::new(pts.clone())).color(color));
                plot.points(Points::new(name, pts).radius(4.0).color(color));
            }
            if s.finetune_groups().is_empty() {
                let pts: Vec<[f64; 2]> = s
                    .curve(0)
                    .into_iter()
                    .map(|[x, y]| [x, y * scale])
                    .collect();
                plot.points(Points::new("original", pts).radius(4.0).color(ORIGINAL));
            }
            plot.vline(
                VLine::new("slider", s.sparsity)
                    .color(Color32::from_gray(140))
                    .style(egui_plot::LineStyle::dashed_loose()),
            );
        });
}

/// One bar series: legend name, colour, the value of a variant.
type Series = (&'static str, Color32, fn(&Variant) -> f64);

fn grouped_bars(
    ui: &mut Ui,
    id: &str,
    rows: &[Variant],
    y_label: &str,
    height: f32,
    series: [Series; 2],
) {
    Plot::new(id)
        .height(height)
        .y_axis_label(y_label)
        .legend(Legend::default().position(Corner::RightTop))
        .allow_scroll(false)
        .allow_drag(false)
        .x_axis_formatter(|mark, _| format!("#{}", mark.value.round()))
        .show(ui, |plot| {
            for (k, (name, color, value)) in series.into_iter().enumerate() {
                let offset = if k == 0 { -0.2 } else { 0.2 };
                let bars: Vec<Bar> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        Bar::new(i as f64 + offset, value(r))
                            .width(0.38)
                            .name(&r.name)
                    })
                    .collect();
                plot.bar_chart(BarChart::new(name, bars).color(color));
            }
        });
}

/// Size on disk, dense and sparse, per variant (in KB).
pub fn size_bars(ui: &mut Ui, rows: &[Variant], height: f32) {
    grouped_bars(
        ui,
        "compress_size",
        rows,
        "KB",
        height,
        [
            ("dense file", DENSE, |r| r.size_bytes as f64 / 1024.0),
            ("sparse (values + positions)", SPARSE, |r| {
                r.sparse_bytes as f64 / 1024.0
            }),
        ],
    );
}

/// Forward passes per second at batch 1 and 64, per variant.
pub fn speed_bars(ui: &mut Ui, rows: &[Variant], height: f32) {
    grouped_bars(
        ui,
        "compress_speed",
        rows,
        "samples / s (thousands)",
        height,
        [
            ("batch 1", DENSE, |r| r.samples_per_sec_batch1 / 1000.0),
            ("batch 64", SPARSE, |r| r.samples_per_sec_batch64 / 1000.0),
        ],
    );
}

fn hist_bars(h: &Histogram, color: Color32) -> Vec<Bar> {
    h.bars()
        .map(|(x, c)| Bar::new(x, c as f64).width(h.width).fill(color))
        .collect()
}

/// The original's weights against the selected variant's (nonzero weights;
/// the zeros are counted in the legend).
pub fn histograms(ui: &mut Ui, s: &CompressState, height: f32) {
    let Some(run) = &s.run else { return };
    let original = s.histograms(run);
    let variant = s
        .selected_row()
        .and_then(|r| Some((r, s.histograms(std::path::Path::new(&r.dir))?)));
    if original.is_none() {
        ui.weak("Reading the original's weights…");
        return;
    }
    let pick = |w: &crate::gui::state::compress::WeightHistograms| {
        if s.by_magnitude {
            w.magnitude.clone()
        } else {
            w.value.clone()
        }
    };
    let pct = |w: &crate::gui::state::compress::WeightHistograms| {
        100.0 * w.zeros as f64 / w.total.max(1) as f64
    };
    Plot::new("compress_hist")
        .height(height)
        .x_axis_label(if s.by_magnitude { "|weight|" } else { "weight" })
        .y_axis_label("weights (nonzero)")
        .legend(Legend::default().position(Corner::RightTop))
        .allow_scroll(false)
        .show(ui, |plot| {
            if let Some(o) = original {
                plot.bar_chart(
                    BarChart::new(
                        format!("original ({:.1}% zero)", pct(o)),
                        hist_bars(&pick(o), ORIGINAL.gamma_multiply(0.7)),
                    )
                    .color(ORIGINAL),
                );
            }
            if let Some((row, v)) = variant {
                plot.bar_chart(
                    BarChart::new(
                        format!("{} ({:.1}% zero)", row.name, pct(v)),
                        hist_bars(&pick(v), PRUNED.gamma_multiply(0.7)),
                    )
                    .color(PRUNED),
                );
            }
        });
}
