//! Pictures that are not plots, saved as PNG from their data (not from the
//! screen): the confusion matrix, with its class names and counts, and the grid
//! of first-layer weights.
//!
//! Contract: pure functions of the data; the matrix goes through SVG (text in the
//! app's font, see [`super::png`]), the weights are pixels (red positive, blue
//! negative, each unit scaled to its own largest weight, as on screen).

use std::fmt::Write;

use egui::Color32;

use super::svg::escape;

const CELL: f64 = 40.0;
const LABEL_W: f64 = 110.0;
const TOP: f64 = 58.0;

/// The confusion matrix `m` (rows: true class, columns: predicted) as SVG, with
/// `caption` above it; cell colour is the share of the row, as on screen.
pub fn confusion_svg(m: &[Vec<u32>], classes: &[String], caption: &str) -> String {
    let n = m.len();
    let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    let w = LABEL_W + CELL * n as f64 + 20.0;
    let h = TOP + CELL * n as f64 + 70.0;
    let w = w.max(360.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w:.0}" height="{h:.0}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="8" y="18" font-size="12">{}</text>"#,
        escape(caption)
    );
    let grid_w = CELL * n as f64;
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">predicted class</text>"#,
        LABEL_W + grid_w / 2.0,
        TOP - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text x="8" y="{:.1}" font-size="13">true class</text>"#,
        TOP - 10.0
    );
    for (t, row) in m.iter().enumerate() {
        let total = row.iter().sum::<u32>().max(1);
        let y = TOP + CELL * t as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABEL_W - 6.0,
            y + CELL / 2.0 + 4.0,
            escape(&name(t))
        );
        for (p, &count) in row.iter().enumerate() {
            let x = LABEL_W + CELL * p as f64;
            let frac = f64::from(count) / f64::from(total);
            let (r, g, b) = if t == p { (60, 170, 90) } else { (220, 70, 60) };
            let opacity = if count == 0 {
                0.0
            } else {
                0.15 + 0.85 * frac.sqrt()
            };
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="rgb({r},{g},{b})" fill-opacity="{opacity:.3}" stroke="#ddd"/>"##,
                CELL - 1.0,
                CELL - 1.0
            );
            if count > 0 {
                let ink = if opacity > 0.55 { "white" } else { "black" };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{ink}" font-size="11">{count}</text>"#,
                    x + CELL / 2.0,
                    y + CELL / 2.0 + 4.0
                );
            }
        }
    }
    // Column names, turned so long names fit under narrow cells.
    let base = TOP + grid_w + 8.0;
    for p in 0..n {
        let x = LABEL_W + CELL * p as f64 + CELL / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{base:.1}" text-anchor="end" transform="rotate(-40 {x:.1} {base:.1})">{}</text>"#,
            escape(&name(p))
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The weights of `units` (each `size` = [w, h] values, row by row) as one PNG:
/// a grid of tiles, `zoom` pixels per weight, 2 white pixels between tiles.
pub fn weights_png(units: &[&[f32]], size: [usize; 2], zoom: u32) -> anyhow::Result<Vec<u8>> {
    let [w, h] = size;
    if units.is_empty() || w == 0 || h == 0 {
        return Err(anyhow::anyhow!("there are no weights to draw"));
    }
    if let Some(bad) = units.iter().position(|u| u.len() != w * h) {
        return Err(anyhow::anyhow!(
            "unit {bad} has {} weights, not {w}x{h}",
            units[bad].len()
        ));
    }
    let zoom = zoom.max(1) as usize;
    let gap = 2;
    let cols = (units.len() as f64).sqrt().ceil() as usize;
    let rows = units.len().div_ceil(cols);
    let (tw, th) = (w * zoom, h * zoom);
    let width = cols * (tw + gap) + gap;
    let height = rows * (th + gap) + gap;
    let too_big = u32::try_from(width.max(height)).map_or(true, |s| s > super::png::MAX_SIDE);
    if too_big {
        return Err(anyhow::anyhow!("{width}x{height} pixels is too large"));
    }
    let mut rgba = vec![255u8; width * height * 4];
    for (i, unit) in units.iter().enumerate() {
        let colours = signed_colours(unit);
        let (ox, oy) = (gap + (i % cols) * (tw + gap), gap + (i / cols) * (th + gap));
        for py in 0..th {
            for px in 0..tw {
                let c = colours[(py / zoom) * w + px / zoom];
                let at = ((oy + py) * width + ox + px) * 4;
                rgba[at..at + 4].copy_from_slice(&c.to_srgba_unmultiplied());
            }
        }
    }
    super::png::rgba_to_png(width as u32, height as u32, &rgba)
}

/// Red for positive, blue for negative, white for zero, scaled so the largest
/// magnitude in `values` is full colour (the weights view's colours too).
pub fn signed_colours(values: &[f32]) -> Vec<Color32> {
    let scale = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    values
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
        .collect()
}

#[cfg(test)]
mod tests {
    use resvg::tiny_skia::Pixmap;

    use super::*;

    #[test]
    fn the_matrix_has_every_count_and_name_and_renders() {
        let m = vec![vec![50, 2], vec![0, 48]];
        let classes = vec!["cat <1>".to_string(), "dog".to_string()];
        let svg = confusion_svg(&m, &classes, "test set");
        let doc = resvg::usvg::roxmltree::Document::parse(&svg).expect("XML");
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        for want in [
            "50",
            "2",
            "48",
            "cat <1>",
            "dog",
            "test set",
            "predicted class",
        ] {
            assert!(texts.contains(&want), "{want} in {texts:?}");
        }
        assert!(!texts.contains(&"0"), "empty cells stay blank");
        let png = super::super::png::svg_to_png(&svg, 2.0).expect("render");
        let p = Pixmap::decode_png(&png).expect("PNG");
        assert_eq!(p.width(), 2 * 360);
        // The diagonal cell (0, 0) is green: sample its corner, away from the digits.
        let (x, y) = ((LABEL_W + 4.0) as u32 * 2, (TOP + 4.0) as u32 * 2);
        let c = p.pixel(x, y).expect("inside").demultiply();
        assert!(c.green() > c.red() && c.green() > c.blue(), "{c:?}");
    }

    #[test]
    fn weights_become_a_grid_of_signed_tiles() {
        let a = [1.0, -1.0, 0.0, 0.5];
        let b = [0.0; 4];
        let png = weights_png(&[&a, &b, &a], [2, 2], 3).expect("png");
        let p = Pixmap::decode_png(&png).expect("PNG");
        // Three tiles: 2 columns, 2 rows of 6x6 pixels with 2-pixel gaps.
        assert_eq!((p.width(), p.height()), (2 * 8 + 2, 2 * 8 + 2));
        let at = |x, y| {
            let c = p.pixel(x, y).expect("inside").demultiply();
            [c.red(), c.green(), c.blue()]
        };
        assert_eq!(at(2, 2), [255, 0, 0], "largest positive: red");
        assert_eq!(at(2 + 3, 2), [0, 0, 255], "largest negative: blue");
        assert_eq!(at(2, 2 + 3), [255, 255, 255], "zero: white");
        assert!(weights_png(&[&a[..3]], [2, 2], 1).is_err(), "wrong length");
        assert!(weights_png(&[], [2, 2], 1).is_err());
    }
}
