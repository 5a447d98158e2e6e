//! The Compress view's plots: test accuracy (or bits per token) against
//! sparsity, size and inference speed per variant as bars, and the weight
//! histograms of the original against the selected variant.
//!
//! Contract: draws what [`CompressState`] holds; reads no files. Each plot is a
//! figure with the save row under it.

use egui::{Color32, Ui};
use egui_plot::{Corner, Legend, Plot};

use super::state::{CompressState, Histogram};
use crate::compress::Variant;
use crate::gui::figure::plot::{legend_for, show_with_save_row};
use crate::gui::figure::{Figure, Marker, Series as FigureSeries};

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
    let mut fig = Figure::new(
        "Quality against sparsity",
        "sparsity (share of prunable weights at zero)",
        label,
    );
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
        fig.series
            .push(FigureSeries::line(name.clone(), color, 1.0, pts.clone()));
        fig.series.push(FigureSeries::markers(
            name,
            color,
            4.0,
            true,
            Marker::Circle,
            pts,
        ));
    }
    if s.finetune_groups().is_empty() {
        let pts: Vec<[f64; 2]> = s
            .curve(0)
            .into_iter()
            .map(|[x, y]| [x, y * scale])
            .collect();
        fig.series.push(FigureSeries::markers(
            "original",
            ORIGINAL,
            4.0,
            true,
            Marker::Circle,
            pts,
        ));
    }
    fig.series.push(FigureSeries::vlines(
        "slider",
        Color32::from_gray(140),
        1.0,
        true,
        &[s.sparsity],
    ));
    let plot = Plot::new("compress_quality")
        .height(height)
        .x_axis_label("sparsity (share of prunable weights at zero)")
        .y_axis_label(label)
        .include_x(0.0)
        .include_x(1.0)
        .legend(legend_for(&fig))
        .allow_scroll(false);
    show_with_save_row(ui, plot, fig, "compress_quality");
}

/// One bar series: legend name, colour, the value of a variant.
type Series = (&'static str, Color32, fn(&Variant) -> f64);

fn grouped_bars(
    ui: &mut Ui,
    id: &str,
    title: &str,
    rows: &[Variant],
    y_label: &str,
    height: f32,
    series: [Series; 2],
) {
    let mut fig = Figure::new(title, "variant (row #)", y_label);
    for (k, (name, color, value)) in series.into_iter().enumerate() {
        let offset = if k == 0 { -0.2 } else { 0.2 };
        let bars: Vec<[f64; 2]> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| [i as f64 + offset, value(r)])
            .collect();
        fig.series.push(FigureSeries::bars(name, color, 0.38, bars));
    }
    // Headroom above the tallest bar holds the legend, so it hides no bar.
    let top = fig
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p[1]))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let plot = Plot::new(id)
        .height(height)
        .y_axis_label(y_label)
        .include_y(0.0)
        .include_y(top * 1.45)
        .legend(Legend::default().position(Corner::RightTop))
        .allow_scroll(false)
        .allow_drag(false)
        .x_axis_formatter(|mark, _| format!("#{}", mark.value.round()));
    show_with_save_row(ui, plot, fig, id);
}

/// Size on disk, dense and sparse, per variant (in KB).
pub fn size_bars(ui: &mut Ui, rows: &[Variant], height: f32) {
    grouped_bars(
        ui,
        "compress_size",
        "Size on disk per variant",
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
        "Inference speed per variant (CPU)",
        rows,
        "samples / s (thousands)",
        height,
        [
            ("batch 1", DENSE, |r| r.samples_per_sec_batch1 / 1000.0),
            ("batch 64", SPARSE, |r| r.samples_per_sec_batch64 / 1000.0),
        ],
    );
}

fn hist_series(name: String, h: &Histogram, color: Color32) -> FigureSeries {
    let bars = h.bars().map(|(x, c)| [x, c as f64]).collect();
    FigureSeries::bars(name, color.gamma_multiply(0.7), h.width, bars)
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
    let pick = |w: &super::state::WeightHistograms| {
        if s.by_magnitude {
            w.magnitude.clone()
        } else {
            w.value.clone()
        }
    };
    let pct = |w: &super::state::WeightHistograms| 100.0 * w.zeros as f64 / w.total.max(1) as f64;
    let x_label = if s.by_magnitude { "|weight|" } else { "weight" };
    let mut fig = Figure::new("Weight histogram", x_label, "weights (nonzero)");
    if let Some(o) = original {
        fig.series.push(hist_series(
            format!("original ({:.1}% zero)", pct(o)),
            &pick(o),
            ORIGINAL,
        ));
    }
    if let Some((row, v)) = variant {
        fig.series.push(hist_series(
            format!("{} ({:.1}% zero)", row.name, pct(v)),
            &pick(v),
            PRUNED,
        ));
    }
    let plot = Plot::new("compress_hist")
        .height(height)
        .x_axis_label(x_label)
        .y_axis_label("weights (nonzero)")
        .legend(legend_for(&fig))
        .allow_scroll(false);
    show_with_save_row(ui, plot, fig, "compress_hist");
}
