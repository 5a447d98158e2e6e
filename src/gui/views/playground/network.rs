//! The network drawing beside the plane: a column of input features, one column
//! per hidden layer whose nodes are the units' own maps, and the output; lines
//! between nodes whose thickness is the weight's size and whose colour its sign
//! (blue positive, orange negative).
//!
//! Contract: draws only from what it is given. Lines are drawn for a Linear
//! layer only when its shape matches the two columns it joins, so an unusual
//! model (two output scores, a width change without Linear) loses lines, never
//! panics.

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, TextureId, Ui, Vec2};

use super::colour::{BLUE, ORANGE};
use crate::events::FieldWeights;

/// One node of a column: its map (if any) and what hovering says.
pub struct Node {
    /// The map drawn in the node.
    pub texture: Option<TextureId>,
    /// Caption under input nodes ("x1"); empty for hidden units.
    pub caption: String,
    /// Hover text.
    pub hover: String,
}

/// Draws `columns` (inputs first, output last) in `size`, joined by `weights`
/// (in layer order: `weights[k]` joins column k to column k + 1).
pub fn network(ui: &mut Ui, size: Vec2, columns: &[Vec<Node>], weights: &[&FieldWeights]) {
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    if columns.is_empty() {
        return;
    }
    let painter = ui.painter_at(rect);
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(1).max(1) as f32;
    let gap_y = 8.0;
    let caption = 14.0;
    let node = ((rect.height() - 20.0) / tallest - gap_y - caption)
        .min(rect.width() / columns.len() as f32 * 0.45)
        .clamp(10.0, 56.0);
    let step_x = if columns.len() > 1 {
        (rect.width() - node) / (columns.len() - 1) as f32
    } else {
        0.0
    };
    let rects: Vec<Vec<Rect>> = columns
        .iter()
        .enumerate()
        .map(|(c, col)| {
            let pitch = node + gap_y + caption;
            let top = rect.center().y - pitch * col.len() as f32 / 2.0;
            (0..col.len())
                .map(|i| {
                    Rect::from_min_size(
                        Pos2::new(rect.left() + c as f32 * step_x, top + i as f32 * pitch),
                        Vec2::splat(node),
                    )
                })
                .collect()
        })
        .collect();
    // Lines first, under the nodes.
    for (k, w) in weights.iter().enumerate() {
        let (Some(from), Some(to)) = (rects.get(k), rects.get(k + 1)) else {
            break;
        };
        if w.inputs != from.len() || w.outputs != to.len() || w.values.len() != w.inputs * w.outputs
        {
            continue;
        }
        let biggest = w
            .values
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-6);
        for (j, b) in to.iter().enumerate() {
            for (i, a) in from.iter().enumerate() {
                let v = w.values[j * w.inputs + i];
                if !v.is_finite() {
                    continue;
                }
                let k = v.abs() / biggest;
                let colour = if v >= 0.0 { BLUE } else { ORANGE };
                painter.line_segment(
                    [a.right_center(), b.left_center()],
                    Stroke::new(0.3 + 4.0 * k, colour.gamma_multiply(0.25 + 0.75 * k)),
                );
            }
        }
    }
    let hover_pos = response.hover_pos();
    for (col, rs) in columns.iter().zip(&rects) {
        for (n, r) in col.iter().zip(rs) {
            match n.texture {
                Some(t) => {
                    painter.image(
                        t,
                        *r,
                        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                        Color32::WHITE,
                    );
                }
                None => {
                    painter.rect_filled(*r, 2.0, Color32::from_gray(235));
                }
            }
            painter.rect_stroke(
                *r,
                2.0,
                Stroke::new(1.0, Color32::from_gray(90)),
                egui::StrokeKind::Outside,
            );
            if !n.caption.is_empty() {
                painter.text(
                    r.center_bottom() + Vec2::new(0.0, 2.0),
                    Align2::CENTER_TOP,
                    &n.caption,
                    FontId::proportional(11.0),
                    ui.visuals().text_color(),
                );
            }
            if hover_pos.is_some_and(|p| r.contains(p)) {
                response.clone().on_hover_text_at_pointer(&n.hover);
            }
        }
    }
}
