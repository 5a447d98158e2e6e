//! Grey images as egui textures, and a grid of captioned thumbnails.
//!
//! Contract: textures are uploaded once per image and kept in a [`Thumbnails`]
//! cache keyed by the caller's id, so a grid costs nothing per frame after the first.

use std::collections::HashMap;

use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions, Ui, Vec2};

/// Uploads `pixels` (row-major, 0 = black) as a texture drawn with sharp pixels.
pub fn grey_texture(
    ctx: &egui::Context,
    name: &str,
    size: [usize; 2],
    pixels: &[u8],
) -> TextureHandle {
    ctx.load_texture(
        name,
        ColorImage::from_gray(size, pixels),
        TextureOptions::NEAREST,
    )
}

/// Uploads signed values as a texture: blue for negative, red for positive, scaled
/// by the largest magnitude so the sign pattern of a weight tile is visible.
pub fn signed_texture(
    ctx: &egui::Context,
    name: &str,
    size: [usize; 2],
    values: &[f32],
) -> TextureHandle {
    let scale = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let pixels: Vec<Color32> = values
        .iter()
        .map(|&v| {
            let t = (v / scale).clamp(-1.0, 1.0);
            let k = (255.0 * (1.0 - t.abs())) as u8;
            if t >= 0.0 {
                Color32::from_rgb(255, k, k)
            } else {
                Color32::from_rgb(k, k, 255)
            }
        })
        .collect();
    ctx.load_texture(name, ColorImage::new(size, pixels), TextureOptions::NEAREST)
}

/// Textures by id, uploaded on first use.
#[derive(Default)]
pub struct Thumbnails {
    textures: HashMap<String, TextureHandle>,
}

impl Thumbnails {
    /// The texture for `id`, uploading `pixels` the first time.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        id: &str,
        size: [usize; 2],
        pixels: &[u8],
    ) -> TextureHandle {
        self.textures
            .entry(id.to_string())
            .or_insert_with(|| grey_texture(ctx, id, size, pixels))
            .clone()
    }

    /// Forgets every texture (the images behind the ids changed).
    pub fn clear(&mut self) {
        self.textures.clear();
    }
}

/// One captioned image in a grid.
pub struct Tile<'a> {
    /// Cache id of the image.
    pub id: String,
    /// Row-major grey pixels.
    pub pixels: &'a [u8],
    /// Caption under the image.
    pub caption: String,
    /// Caption colour (e.g. red for a wrong prediction).
    pub color: Option<Color32>,
    /// Hover text.
    pub hover: String,
}

/// Draws `tiles` in rows that fit the width; each image is `side` points square.
pub fn tile_grid(
    ui: &mut Ui,
    cache: &mut Thumbnails,
    size: [usize; 2],
    side: f32,
    tiles: &[Tile<'_>],
) {
    let ctx = ui.ctx().clone();
    let cell = side + 10.0;
    let per_row = ((ui.available_width() / cell).floor() as usize).max(1);
    for row in tiles.chunks(per_row) {
        ui.horizontal(|ui| {
            for tile in row {
                let tex = cache.get(&ctx, &tile.id, size, tile.pixels);
                ui.allocate_ui(Vec2::new(cell, side + 40.0), |ui| {
                    ui.vertical(|ui| {
                        let image = egui::Image::new(egui::load::SizedTexture::from(&tex))
                            .fit_to_exact_size(Vec2::splat(side));
                        ui.add(image).on_hover_text(&tile.hover);
                        let mut text = RichText::new(&tile.caption);
                        if let Some(c) = tile.color {
                            text = text.color(c);
                        }
                        ui.add(egui::Label::new(text).wrap());
                    });
                });
            }
        });
        ui.add_space(4.0);
    }
}
