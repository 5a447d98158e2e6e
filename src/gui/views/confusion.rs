//! The confusion matrix: how often each true class (row) was predicted as each
//! class (column). Clicking a cell shows those test images.
//!
//! Contract: prefers the trained model's analysis of the test set (clickable); while
//! training it shows the latest evaluation's counts from the event stream. Cell
//! colour is the fraction of the row, so rare classes read the same as common ones.
//! "Save PNG" draws the same matrix from its counts, with class names.

use egui::{Align2, Color32, FontId, Rect, Sense, Ui, Vec2};

use super::thumbnails::{Thumbnails, Tile, tile_grid};
use crate::gui::figure::buttons::save_png_button;
use crate::gui::figure::pictures::confusion_svg;
use crate::gui::state::inspect::Inspector;
use crate::gui::state::run_state::RunSeries;

/// What the learner picked in the Confusion tab.
#[derive(Debug, Default)]
pub struct ConfusionState {
    /// The cell clicked: (true, predicted); forgotten when another model loads.
    pub selected_cell: Option<(usize, usize)>,
}

/// Draws the matrix and, for a selected cell, its images.
pub fn confusion_view(
    ui: &mut Ui,
    series: &RunSeries,
    inspector: &Inspector,
    state: &mut ConfusionState,
    thumbs: &mut Thumbnails,
) {
    let (matrix, classes, source) = if let Some(a) = &inspector.analysis {
        let n = a.classes.len();
        let mut m = vec![vec![0u32; n]; n];
        for (&t, &p) in a.test.labels.iter().zip(&a.predicted) {
            m[usize::from(t)][usize::from(p)] += 1;
        }
        let predictor = inspector.predictor.as_ref();
        let run = predictor
            .and_then(|p| p.run_dir.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        // The accuracy of the weights as loaded: a study trial's may be halved.
        let half = match predictor.is_some_and(|p| p.half_precision) {
            true => " (weights kept in half precision)",
            false => "",
        };
        let source = format!(
            "test set, trained run {}{half} — accuracy {:.2}% — click a cell to see its images",
            run.unwrap_or_default(),
            a.accuracy() * 100.0
        );
        (m, a.classes.clone(), source)
    } else if let Some(e) = &series.latest_eval {
        let classes = series
            .info
            .as_ref()
            .map(|i| i.classes.clone())
            .unwrap_or_default();
        let source = format!(
            "{} split at step {} (images appear once the run ends)",
            e.split.name(),
            e.step
        );
        (e.confusion.clone(), classes, source)
    } else {
        ui.label("No evaluation yet: the matrix appears after the first validation pass of a run.");
        return;
    };
    ui.horizontal(|ui| {
        ui.label(&source);
        save_png_button(ui, "confusion", "confusion-matrix.png", || {
            let svg = confusion_svg(&matrix, &classes, &source);
            crate::gui::figure::png::svg_to_png(&svg, 2.0)
        });
    });
    let clicked = matrix_grid(ui, &matrix, &classes, state.selected_cell);
    if clicked.is_some() && inspector.analysis.is_some() {
        state.selected_cell = clicked;
    }
    let (Some((t, p)), Some(a)) = (state.selected_cell, &inspector.analysis) else {
        return;
    };
    let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    let cell = a.cell(t, p);
    ui.separator();
    ui.label(format!(
        "True {} predicted as {}: {} images",
        name(t),
        name(p),
        cell.len()
    ));
    let tiles: Vec<Tile<'_>> = cell
        .iter()
        .take(120)
        .map(|&i| Tile {
            id: format!("test{i}"),
            pixels: a.test.image(i),
            caption: format!("{:.0}%", a.confidence[i] * 100.0),
            color: None,
            hover: format!("test image #{i}"),
        })
        .collect();
    egui::ScrollArea::vertical()
        .id_salt("cell_images")
        .show(ui, |ui| {
            tile_grid(ui, thumbs, [a.test.cols, a.test.rows], 48.0, &tiles);
        });
}

/// Draws the grid; returns the clicked cell.
fn matrix_grid(
    ui: &mut Ui,
    m: &[Vec<u32>],
    classes: &[String],
    selected: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let n = m.len();
    let cell = 38.0;
    let label_w = 80.0;
    let size = Vec2::new(label_w + cell * n as f32, 18.0 + cell * n as f32 + 16.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    let painter = ui.painter_at(rect);
    let font = FontId::proportional(11.0);
    let text = ui.visuals().text_color();
    let origin = rect.min + Vec2::new(label_w, 18.0);
    painter.text(
        rect.min + Vec2::new(label_w + cell * n as f32 / 2.0, 0.0),
        Align2::CENTER_TOP,
        "predicted ⏵",
        font.clone(),
        text,
    );
    let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    let mut clicked = None;
    for (t, row) in m.iter().enumerate() {
        let row_total: u32 = row.iter().sum::<u32>().max(1);
        painter.text(
            origin + Vec2::new(-4.0, cell * (t as f32 + 0.5)),
            Align2::RIGHT_CENTER,
            name(t),
            font.clone(),
            text,
        );
        for (p, &count) in row.iter().enumerate() {
            let r = Rect::from_min_size(
                origin + Vec2::new(cell * p as f32, cell * t as f32),
                Vec2::splat(cell - 1.0),
            );
            let frac = count as f32 / row_total as f32;
            let base = if t == p {
                Color32::from_rgb(60, 170, 90)
            } else {
                Color32::from_rgb(220, 70, 60)
            };
            let fill = if count == 0 {
                ui.visuals().extreme_bg_color
            } else {
                base.gamma_multiply(0.15 + 0.85 * frac.sqrt())
            };
            painter.rect_filled(r, 2.0, fill);
            if selected == Some((t, p)) {
                painter.rect_stroke(r, 2.0, (2.0, Color32::WHITE), egui::StrokeKind::Inside);
            }
            if count > 0 {
                painter.text(
                    r.center(),
                    Align2::CENTER_CENTER,
                    count.to_string(),
                    font.clone(),
                    Color32::WHITE,
                );
            }
            if response.clicked()
                && let Some(pos) = response.interact_pointer_pos()
                && r.contains(pos)
            {
                clicked = Some((t, p));
            }
            if t == n - 1 {
                let short: String = name(p).chars().take(5).collect();
                painter.text(
                    r.center_bottom() + Vec2::new(0.0, 3.0),
                    Align2::CENTER_TOP,
                    short,
                    font.clone(),
                    text,
                );
            }
        }
    }
    painter.text(
        rect.min + Vec2::new(0.0, 4.0),
        Align2::LEFT_TOP,
        "true ⏷",
        font,
        text,
    );
    clicked
}
