//! Parallel coordinates: one vertical axis per explored path (linear, log for
//! log-uniform params, categories for choices) and one per objective, one polyline
//! per trial coloured by its first objective value.
//!
//! Contract: draws the positions precomputed in [`Derived`](super::state::Derived)
//! (0..=1 per axis); a trial missing a value on an axis has a gap there. Painter
//! only: no plot state, nothing allocated per trial beyond its polyline.

use egui::{Align2, Color32, FontId, Pos2, Stroke, Ui};

use super::curves::scale_legend;
use super::scale::AxisKind;
use super::state::StudyData;

/// Draws the axes and a polyline per trial.
pub fn parallel_coordinates(ui: &mut Ui, data: &StudyData) {
    let d = &data.derived;
    scale_legend(ui, &d.colors);
    if d.axes.is_empty() {
        ui.label("No axes yet: the study file is still being read.");
        return;
    }
    let size = ui.available_size().max(egui::vec2(200.0, 200.0));
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let top = rect.top() + 44.0;
    let bottom = rect.bottom() - 24.0;
    let n = d.axes.len();
    let x_of = |i: usize| {
        if n < 2 {
            rect.center().x
        } else {
            rect.left() + 100.0 + (rect.width() - 200.0) * i as f32 / (n - 1) as f32
        }
    };
    let y_of = |t: f32| bottom - (bottom - top) * t;
    let text = ui.visuals().text_color();
    let backing = ui.visuals().panel_fill.gamma_multiply(0.9);
    let font = FontId::proportional(12.0);
    // Lines first, failed and valueless ones underneath.
    let mut order: Vec<usize> = (0..data.trials.len()).collect();
    order.sort_by_key(|&i| data.trials[i].values.first().copied().flatten().is_some());
    for i in order {
        let (Some(t), Some(row)) = (data.trials.get(i), d.positions.get(i)) else {
            continue;
        };
        let color = d.colors.trial_color(t);
        let faint = t.values.first().copied().flatten().is_none();
        let stroke = Stroke::new(
            if faint { 1.0 } else { 1.6 },
            if faint {
                color.gamma_multiply(0.5)
            } else {
                color
            },
        );
        let mut run: Vec<Pos2> = Vec::new();
        for (a, p) in row.iter().enumerate() {
            match p {
                Some(p) => run.push(Pos2::new(x_of(a), y_of(*p))),
                None => {
                    if run.len() > 1 {
                        painter.add(egui::Shape::line(std::mem::take(&mut run), stroke));
                    }
                    run.clear();
                }
            }
        }
        if run.len() > 1 {
            painter.add(egui::Shape::line(run, stroke));
        }
    }
    for (a, axis) in d.axes.iter().enumerate() {
        let x = x_of(a);
        painter.line_segment(
            [Pos2::new(x, top), Pos2::new(x, bottom)],
            Stroke::new(1.5, Color32::from_gray(200)),
        );
        let scale = match axis.kind {
            AxisKind::Log(..) => " (log)",
            _ => "",
        };
        painter.text(
            Pos2::new(x, rect.top() + 4.0 + 14.0 * (a % 2) as f32),
            Align2::CENTER_TOP,
            format!("{}{scale}", axis.label),
            font.clone(),
            text,
        );
        for (at, label) in axis.tick_labels() {
            // On a backing of the panel's colour: the trials' lines pass behind
            // the numbers instead of through them.
            let galley = painter.layout_no_wrap(label, font.clone(), text);
            let at = Align2::LEFT_CENTER.anchor_size(Pos2::new(x + 4.0, y_of(at)), galley.size());
            painter.rect_filled(at.expand(2.0), 2.0, backing);
            painter.galley(at.min, galley, text);
        }
    }
}
