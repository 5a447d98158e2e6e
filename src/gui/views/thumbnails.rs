//! Grey and colour images as egui textures, and a grid of captioned thumbnails.
//!
//! Contract: textures are uploaded once per image and kept in a [`Thumbnails`]
//! cache keyed by the caller's id, so a grid costs nothing per frame after the first.
//! An image's pixels are channels-first bytes: `w * h` of them is grey, `3 * w * h`
//! is red, green and blue planes (a folder dataset with `channels: Rgb`).

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

/// Uploads grey or channels-first RGB `pixels` (see the module comment).
pub fn image_texture(
    ctx: &egui::Context,
    name: &str,
    size: [usize; 2],
    pixels: &[u8],
) -> TextureHandle {
    let plane = size[0] * size[1];
    if plane == 0 || pixels.len() != 3 * plane {
        return grey_texture(ctx, name, size, pixels);
    }
    let (r, rest) = pixels.split_at(plane);
    let (g, b) = rest.split_at(plane);
    let colours: Vec<Color32> = r
        .iter()
        .zip(g)
        .zip(b)
        .map(|((&r, &g), &b)| Color32::from_rgb(r, g, b))
        .collect();
    ctx.load_texture(
        name,
        ColorImage::new(size, colours),
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
    let pixels = crate::gui::figure::pictures::signed_colours(values);
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
            .or_insert_with(|| image_texture(ctx, id, size, pixels))
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
    /// Grey pixels row-major, or RGB planes (see the module comment).
    pub pixels: &'a [u8],
    /// Caption under the image.
    pub caption: String,
    /// Caption colour (e.g. red for a wrong prediction).
    pub color: Option<Color32>,
    /// Hover text.
    pub hover: String,
}

/// Draws `tiles` in rows that fit the width; each image is `side` points square.
/// Returns the index of the tile whose image was clicked.
pub fn tile_grid(
    ui: &mut Ui,
    cache: &mut Thumbnails,
    size: [usize; 2],
    side: f32,
    tiles: &[Tile<'_>],
) -> Option<usize> {
    let mut clicked = None;
    let ctx = ui.ctx().clone();
    let cell = side + 10.0;
    let per_row = ((ui.available_width() / cell).floor() as usize).max(1);
    for (r, row) in tiles.chunks(per_row).enumerate() {
        ui.horizontal(|ui| {
            for (k, tile) in row.iter().enumerate() {
                let tex = cache.get(&ctx, &tile.id, size, tile.pixels);
                ui.allocate_ui(Vec2::new(cell, side + 40.0), |ui| {
                    ui.vertical(|ui| {
                        let image = egui::Image::new(egui::load::SizedTexture::from(&tex))
                            .fit_to_exact_size(Vec2::splat(side));
                        if ui
                            .add(image.sense(egui::Sense::click()))
                            .on_hover_text(&tile.hover)
                            .clicked()
                        {
                            clicked = Some(r * per_row + k);
                        }
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
    clicked
}
