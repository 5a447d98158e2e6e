//! First-layer weights drawn as images: each unit's incoming weights laid out in
//! the input's shape (28x28 for a Linear on images, k x k for a convolution) —
//! red positive, blue negative — so the learner sees the strokes a unit looks for.
//!
//! Contract: textures are rebuilt only when a new snapshot arrives (keyed by its
//! source text); at most [`MAX_TILES`] units are drawn. "Save PNG" writes the same
//! tiles from the weights themselves ([`weights_picture`]).

use egui::{TextureHandle, Ui, Vec2};

use super::thumbnails::signed_texture;
use crate::gui::figure::buttons::save_png_button;
use crate::gui::figure::pictures::weights_png;
use crate::gui::state::inspect::{Inspector, WeightTensor};

/// Units drawn at most.
const MAX_TILES: usize = 128;

/// Textures of the snapshot on screen.
#[derive(Default)]
pub struct WeightsState {
    key: String,
    tiles: Vec<TextureHandle>,
    tile_size: [usize; 2],
}

/// How a weight tensor splits into square-ish tiles: (count, [w, h]).
pub fn tiling(shape: &[usize], image_side: usize) -> Option<(usize, [usize; 2])> {
    match shape {
        // Linear on a flattened image: one image-shaped tile per output unit.
        [out, inp] if *inp == image_side * image_side => Some((*out, [image_side, image_side])),
        // Linear on something else: one row per unit, as a strip.
        [out, inp] => Some((*out, [*inp, 1])),
        // Conv2d [out, in, kh, kw]: the first input channel of each filter.
        [out, _, kh, kw] => Some((*out, [*kw, *kh])),
        _ => None,
    }
}

/// Draws the view: live snapshot while training, else the trained model's.
pub fn weights_view(
    ui: &mut Ui,
    inspector: &Inspector,
    live: bool,
    state: &mut WeightsState,
    image_side: usize,
) {
    let view = if live {
        inspector.live_weights.as_ref()
    } else {
        inspector.trained_weights.as_ref()
    };
    let Some(view) = view.or(inspector.trained_weights.as_ref()) else {
        ui.label("No weights yet: start a run (they update live as it learns) or inspect a past run under History.");
        return;
    };
    let key = format!("{}:{}", view.source, view.name);
    if key != state.key {
        rebuild(ui.ctx(), view, state, image_side);
        state.key = key;
    }
    ui.horizontal(|ui| {
        ui.label(format!(
            "{} {:?} from the {} — red: positive weight, blue: negative. {} units shown.",
            view.name,
            view.shape,
            view.source,
            state.tiles.len()
        ));
        save_png_button(ui, "weights", "weights.png", || {
            weights_picture(view, image_side)
        });
    });
    let [w, h] = state.tile_size;
    let scale = (64.0 / w.max(h).max(1) as f32).clamp(1.0, 12.0);
    let size = Vec2::new(w as f32 * scale, h as f32 * scale);
    egui::ScrollArea::vertical()
        .id_salt("weights")
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for (i, tex) in state.tiles.iter().enumerate() {
                    ui.add(
                        egui::Image::new(egui::load::SizedTexture::from(tex))
                            .fit_to_exact_size(size),
                    )
                    .on_hover_text(format!("unit {i}"));
                }
            });
        });
}

/// The units drawn on screen as one PNG, 64 pixels or so per unit.
pub fn weights_picture(view: &WeightTensor, image_side: usize) -> anyhow::Result<Vec<u8>> {
    let (count, [w, h]) = tiling(&view.shape, image_side).ok_or_else(|| {
        anyhow::anyhow!("weights of shape {:?} are not drawn as images", view.shape)
    })?;
    let per_unit = view.values.len() / count.max(1);
    let units: Vec<&[f32]> = (0..count.min(MAX_TILES))
        .map_while(|unit| view.values.get(unit * per_unit..unit * per_unit + w * h))
        .collect();
    let zoom = (64 / w.max(h).max(1)).clamp(1, 12) as u32;
    weights_png(&units, [w, h], zoom)
}

fn rebuild(ctx: &egui::Context, view: &WeightTensor, state: &mut WeightsState, image_side: usize) {
    state.tiles.clear();
    let Some((count, [w, h])) = tiling(&view.shape, image_side) else {
        return;
    };
    let per_unit = view.values.len() / count.max(1);
    for unit in 0..count.min(MAX_TILES) {
        let start = unit * per_unit;
        let Some(values) = view.values.get(start..start + w * h) else {
            break;
        };
        state
            .tiles
            .push(signed_texture(ctx, &format!("w{unit}"), [w, h], values));
    }
    state.tile_size = [w, h];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_follow_the_layer_kind() {
        assert_eq!(tiling(&[128, 784], 28), Some((128, [28, 28])));
        assert_eq!(tiling(&[10, 64], 28), Some((10, [64, 1])));
        assert_eq!(tiling(&[32, 1, 3, 5], 28), Some((32, [5, 3])));
        assert_eq!(tiling(&[7], 28), None);
    }
}
