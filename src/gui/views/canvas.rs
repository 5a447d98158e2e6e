//! The draw-a-digit canvas: a square the learner paints with the mouse, turned into
//! a 28x28 image prepared the way MNIST digits were (fit into 20x20, centred by
//! centre of mass) so the model sees what it was trained on.
//!
//! Contract: [`DigitCanvas::ui`] returns true when the ink changed;
//! [`DigitCanvas::to_mnist`] is a pure function of the ink (an empty canvas gives an
//! all-black image). The texture is re-uploaded only when the ink changes.

use egui::{Color32, ColorImage, Pos2, Rect, Sense, TextureHandle, TextureOptions, Ui, Vec2};

/// Ink resolution (4x MNIST's 28).
pub const GRID: usize = 112;
/// MNIST side.
pub const SIDE: usize = 28;
/// Brush radius in ink cells: about MNIST's pen width after fitting.
const BRUSH: f32 = 5.0;

/// Ink in [0, 1] per cell, row-major.
pub struct DigitCanvas {
    ink: Vec<f32>,
    last: Option<Pos2>,
    texture: Option<TextureHandle>,
    preview: Option<TextureHandle>,
    dirty: bool,
}

impl Default for DigitCanvas {
    fn default() -> Self {
        Self {
            ink: vec![0.0; GRID * GRID],
            last: None,
            texture: None,
            preview: None,
            dirty: true,
        }
    }
}

impl DigitCanvas {
    /// Whether nothing has been drawn.
    pub fn is_empty(&self) -> bool {
        self.ink.iter().all(|&v| v <= 0.0)
    }

    /// Wipes the ink.
    pub fn clear(&mut self) {
        self.ink.fill(0.0);
        self.dirty = true;
    }

    /// Paints a stroke between two points in ink coordinates (0..GRID).
    pub fn stroke(&mut self, a: Pos2, b: Pos2) {
        let steps = (a.distance(b) / 0.5).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let p = a.lerp(b, i as f32 / steps as f32);
            self.dab(p);
        }
        self.dirty = true;
    }

    fn dab(&mut self, p: Pos2) {
        let r = BRUSH + 1.0;
        let (y0, y1) = (
            (p.y - r).floor().max(0.0) as usize,
            ((p.y + r).ceil() as usize).min(GRID),
        );
        let (x0, x1) = (
            (p.x - r).floor().max(0.0) as usize,
            ((p.x + r).ceil() as usize).min(GRID),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let d = Pos2::new(x as f32 + 0.5, y as f32 + 0.5).distance(p);
                // Solid core with a one-cell soft edge, like a pen on paper.
                let v = (BRUSH + 0.5 - d).clamp(0.0, 1.0);
                let cell = &mut self.ink[y * GRID + x];
                *cell = cell.max(v);
            }
        }
    }

    /// Draws the canvas `side` points square; returns true when the ink changed.
    pub fn ui(&mut self, ui: &mut Ui, side: f32) -> bool {
        let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::drag());
        let mut changed = false;
        if response.is_pointer_button_down_on()
            && let Some(pos) = response.interact_pointer_pos()
        {
            let p = to_ink(rect, pos);
            let from = self.last.unwrap_or(p);
            self.stroke(from, p);
            self.last = Some(p);
            changed = true;
        } else {
            self.last = None;
        }
        if self.dirty || self.texture.is_none() {
            let image = ColorImage::from_gray_iter(
                [GRID, GRID],
                self.ink.iter().map(|&v| (v * 255.0) as u8),
            );
            match &mut self.texture {
                Some(t) => t.set(image, TextureOptions::LINEAR),
                None => {
                    self.texture = Some(ui.ctx().load_texture(
                        "digit_canvas",
                        image,
                        TextureOptions::LINEAR,
                    ))
                }
            }
            let seen = ColorImage::from_gray([SIDE, SIDE], &self.to_mnist());
            match &mut self.preview {
                Some(t) => t.set(seen, TextureOptions::NEAREST),
                None => {
                    self.preview = Some(ui.ctx().load_texture(
                        "digit_canvas_28",
                        seen,
                        TextureOptions::NEAREST,
                    ))
                }
            }
            self.dirty = false;
        }
        let painter = ui.painter_at(rect);
        if let Some(t) = &self.texture {
            painter.image(
                t.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        painter.rect_stroke(rect, 2.0, (1.0, Color32::GRAY), egui::StrokeKind::Outside);
        changed
    }

    /// What the model sees (the 28x28 image), drawn `side` points square.
    pub fn preview_ui(&self, ui: &mut Ui, side: f32) -> egui::Response {
        match &self.preview {
            Some(t) => ui.add(
                egui::Image::new(egui::load::SizedTexture::from(t))
                    .fit_to_exact_size(Vec2::splat(side)),
            ),
            None => ui.allocate_exact_size(Vec2::splat(side), Sense::hover()).1,
        }
    }

    /// The ink as an MNIST-style 28x28 image (0 = black background).
    pub fn to_mnist(&self) -> Vec<u8> {
        mnist_style(&self.ink, GRID)
    }
}

fn to_ink(rect: Rect, pos: Pos2) -> Pos2 {
    let rel = (pos - rect.min) / rect.size();
    Pos2::new(rel.x * GRID as f32, rel.y * GRID as f32)
}

/// Crops `ink` (side x side) to its bounding box, scales it to fit 20x20 keeping
/// the aspect ratio, and places it in 28x28 with its centre of mass at the centre.
pub fn mnist_style(ink: &[f32], side: usize) -> Vec<u8> {
    let mut out = vec![0u8; SIDE * SIDE];
    let on = |y: usize, x: usize| ink[y * side + x] > 0.05;
    let rows: Vec<usize> = (0..side).filter(|&y| (0..side).any(|x| on(y, x))).collect();
    let cols: Vec<usize> = (0..side).filter(|&x| (0..side).any(|y| on(y, x))).collect();
    let (Some(&top), Some(&bottom), Some(&left), Some(&right)) =
        (rows.first(), rows.last(), cols.first(), cols.last())
    else {
        return out;
    };
    let (h, w) = (bottom - top + 1, right - left + 1);
    let scale = 20.0 / h.max(w) as f32;
    let (oh, ow) = (
        ((h as f32 * scale).round() as usize).max(1),
        ((w as f32 * scale).round() as usize).max(1),
    );
    // Area average: each output cell is the mean of the ink cells that land in it.
    let mut sum = vec![0.0f32; oh * ow];
    let mut count = vec![0u32; oh * ow];
    for y in 0..h {
        for x in 0..w {
            let oy = ((y as f32 * scale) as usize).min(oh - 1);
            let ox = ((x as f32 * scale) as usize).min(ow - 1);
            sum[oy * ow + ox] += ink[(top + y) * side + left + x];
            count[oy * ow + ox] += 1;
        }
    }
    let small: Vec<f32> = (0..oh * ow)
        .map(|i| {
            if count[i] > 0 {
                sum[i] / count[i] as f32
            } else {
                // Upscaling a tiny drawing: nearest ink cell.
                let (oy, ox) = (i / ow, i % ow);
                let y = ((oy as f32 / scale) as usize).min(h - 1);
                let x = ((ox as f32 / scale) as usize).min(w - 1);
                ink[(top + y) * side + left + x]
            }
        })
        .collect();
    let mass: f32 = small.iter().sum::<f32>().max(1e-6);
    let cy = small
        .iter()
        .enumerate()
        .map(|(i, v)| (i / ow) as f32 * v)
        .sum::<f32>()
        / mass;
    let cx = small
        .iter()
        .enumerate()
        .map(|(i, v)| (i % ow) as f32 * v)
        .sum::<f32>()
        / mass;
    let place = |centre: f32, len: usize| -> usize {
        let start = (13.5 - centre).round() as isize;
        start.clamp(0, (SIDE - len) as isize) as usize
    };
    let (y0, x0) = (place(cy, oh), place(cx, ow));
    for y in 0..oh {
        for x in 0..ow {
            out[(y0 + y) * SIDE + x0 + x] =
                (small[y * ow + x].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centre_of_mass(img: &[u8]) -> (f32, f32) {
        let mass: f32 = img.iter().map(|&v| f32::from(v)).sum();
        let cy = img
            .iter()
            .enumerate()
            .map(|(i, &v)| (i / SIDE) as f32 * f32::from(v))
            .sum::<f32>()
            / mass;
        let cx = img
            .iter()
            .enumerate()
            .map(|(i, &v)| (i % SIDE) as f32 * f32::from(v))
            .sum::<f32>()
            / mass;
        (cy, cx)
    }

    #[test]
    fn empty_canvas_is_black() {
        assert!(DigitCanvas::default().to_mnist().iter().all(|&v| v == 0));
        assert!(DigitCanvas::default().is_empty());
    }

    #[test]
    fn a_stroke_in_a_corner_is_fitted_and_centred() {
        let mut c = DigitCanvas::default();
        // A short vertical bar near the top-left corner.
        c.stroke(Pos2::new(10.0, 5.0), Pos2::new(10.0, 40.0));
        assert!(!c.is_empty());
        let img = c.to_mnist();
        let rows: Vec<usize> = (0..SIDE)
            .filter(|&y| (0..SIDE).any(|x| img[y * SIDE + x] > 12))
            .collect();
        let height = rows.last().expect("ink") - rows.first().expect("ink") + 1;
        assert!(
            (19..=21).contains(&height),
            "fitted to 20 rows, got {height}"
        );
        let (cy, cx) = centre_of_mass(&img);
        assert!(
            (cy - 13.5).abs() < 1.0 && (cx - 13.5).abs() < 1.0,
            "centre of mass at ({cy}, {cx})"
        );
        c.clear();
        assert!(c.is_empty());
    }
}
