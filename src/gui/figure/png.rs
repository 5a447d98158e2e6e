//! SVG to PNG with resvg, text set in the font the app ships (egui's default
//! proportional font), so a saved plot looks the same offline and on a machine
//! without system fonts.
//!
//! Contract: `scale` multiplies the SVG's own size; a result over
//! [`MAX_SIDE`] pixels a side, a zero size or an invalid SVG is an error, never
//! a panic. Also encodes RGBA pixel buffers (the confusion matrix, the weights).

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg::{self, fontdb};

/// The largest PNG side written, in pixels.
pub const MAX_SIDE: u32 = 16_384;

/// The app's own fonts, loaded once, with the proportional one as `sans-serif`.
fn fonts() -> &'static (Arc<fontdb::Database>, String) {
    static FONTS: OnceLock<(Arc<fontdb::Database>, String)> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut db = fontdb::Database::new();
        let defs = egui::FontDefinitions::default();
        // The proportional family's fonts, first one first (egui's own fallback order).
        let names = defs
            .families
            .get(&egui::FontFamily::Proportional)
            .cloned()
            .unwrap_or_default();
        for name in &names {
            if let Some(data) = defs.font_data.get(name) {
                let bytes: &[u8] = (*data.font).as_ref();
                db.load_font_data(bytes.to_vec());
            }
        }
        let family = db
            .faces()
            .next()
            .and_then(|f| f.families.first())
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| "sans-serif".into());
        db.set_sans_serif_family(family.clone());
        (Arc::new(db), family)
    })
}

/// The PNG of `svg` rendered at `scale` times its size.
pub fn svg_to_png(svg: &str, scale: f32) -> anyhow::Result<Vec<u8>> {
    let (db, family) = fonts();
    let opt = usvg::Options {
        fontdb: Arc::clone(db),
        font_family: family.clone(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| anyhow::anyhow!("invalid SVG: {e}"))?;
    let size = tree.size();
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    let (w, h) = (
        (size.width() * scale).round() as u32,
        (size.height() * scale).round() as u32,
    );
    let mut pixmap = new_pixmap(w, h)?;
    resvg::render(
        &tree,
        Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| anyhow::anyhow!("cannot encode the PNG: {e}"))
}

/// The PNG of a `width` x `height` image given as unpremultiplied sRGBA rows.
pub fn rgba_to_png(width: u32, height: u32, rgba: &[u8]) -> anyhow::Result<Vec<u8>> {
    if rgba.len() != width as usize * height as usize * 4 {
        return Err(anyhow::anyhow!(
            "{} bytes do not make a {width}x{height} RGBA image",
            rgba.len()
        ));
    }
    let mut pixmap = new_pixmap(width, height)?;
    for (px, c) in pixmap.pixels_mut().iter_mut().zip(rgba.chunks_exact(4)) {
        *px = resvg::tiny_skia::ColorU8::from_rgba(c[0], c[1], c[2], c[3]).premultiply();
    }
    pixmap
        .encode_png()
        .map_err(|e| anyhow::anyhow!("cannot encode the PNG: {e}"))
}

fn new_pixmap(w: u32, h: u32) -> anyhow::Result<Pixmap> {
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(anyhow::anyhow!(
            "{w}x{h} pixels is too large (at most {MAX_SIDE} a side): choose a smaller scale"
        ));
    }
    Pixmap::new(w, h).ok_or_else(|| anyhow::anyhow!("cannot make a {w}x{h} image"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gui::figure::{Axis, Figure, Series, svg::to_svg};

    fn decode(png: &[u8]) -> Pixmap {
        Pixmap::decode_png(png).expect("a valid PNG")
    }

    /// A thick pure-green horizontal line at y = 0.5 across x 0..10.
    fn green_line() -> Figure {
        Figure {
            title: "green".into(),
            x: Axis {
                label: "step".into(),
                range: (0.0, 10.0),
                log10: false,
            },
            y: Axis {
                label: "loss".into(),
                range: (0.0, 1.0),
                log10: false,
            },
            series: vec![Series::line(
                "",
                egui::Color32::from_rgb(0, 200, 0),
                6.0,
                vec![[0.0, 0.5], [10.0, 0.5]],
            )],
            size: [400.0, 300.0],
            legend: true,
        }
    }

    fn pixel(p: &Pixmap, x: u32, y: u32) -> [u8; 4] {
        let c = p.pixel(x, y).expect("in the image").demultiply();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    #[test]
    fn renders_at_the_chosen_scale_with_the_series_where_expected() {
        for scale in [1u32, 2] {
            let png = svg_to_png(&to_svg(&green_line()), scale as f32).expect("render");
            let p = decode(&png);
            assert_eq!((p.width(), p.height()), (400 * scale, 300 * scale));
            // y = 0.5 is halfway down the plot area (top 32, bottom 300 - 44).
            let (x, y) = (200 * scale, (32 + (300 - 44 - 32) / 2) * scale);
            assert_eq!(
                pixel(&p, x, y),
                [0, 200, 0, 255],
                "the line at scale {scale}"
            );
            // Well above it: background (white or a light grid line).
            let above = pixel(&p, x + 3 * scale, y - 40 * scale);
            assert!(
                above[1] > 200 && above[0] > 200,
                "background, got {above:?}"
            );
        }
    }

    #[test]
    fn text_is_drawn_with_the_bundled_font() {
        // The same figure with and without a title differs only by the title's pixels.
        let with = decode(&svg_to_png(&to_svg(&green_line()), 1.0).expect("render"));
        let mut untitled = green_line();
        untitled.title.clear();
        let without = decode(&svg_to_png(&to_svg(&untitled), 1.0).expect("render"));
        let dark = |p: &Pixmap| {
            (0..p.width())
                .flat_map(|x| (0..24).map(move |y| (x, y)))
                .filter(|&(x, y)| pixel(p, x, y)[0] < 128)
                .count()
        };
        assert!(dark(&with) > 20, "the title's glyphs are drawn");
        assert_eq!(dark(&without), 0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(svg_to_png("<svg", 1.0).is_err());
        assert!(
            svg_to_png(&to_svg(&green_line()), 1000.0).is_err(),
            "too large"
        );
        assert!(rgba_to_png(2, 2, &[0; 3]).is_err());
        let png = rgba_to_png(2, 1, &[255, 0, 0, 255, 0, 0, 255, 255]).expect("encode");
        let p = decode(&png);
        assert_eq!(pixel(&p, 0, 0), [255, 0, 0, 255]);
        assert_eq!(pixel(&p, 1, 0), [0, 0, 255, 255]);
    }
}
