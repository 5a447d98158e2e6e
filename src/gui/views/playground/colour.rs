//! The playground's colour scales and the images built from a field's grids.
//!
//! Contract: pure functions. Values map through one diverging scale, orange (-1)
//! through white (0) to blue (+1), the class-0 and class-1 colours of the
//! points; NaN and infinities are drawn white (no opinion) and never panic. A
//! grid whose length is not `resolution²` gives a blank (white) image of the
//! asked size.

use egui::{Color32, ColorImage};

/// Class 0 (and negative values).
pub const ORANGE: Color32 = Color32::from_rgb(245, 147, 34);
/// Class 1 (and positive values).
pub const BLUE: Color32 = Color32::from_rgb(8, 119, 189);

/// Orange (-1) through white (0) to blue (+1); clamped, NaN is white.
pub fn diverging(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let end = if t >= 0.0 { BLUE } else { ORANGE };
    let k = t.abs();
    // Rounded by adding a half and truncating (the value is in c..=255, never
    // negative): the same as `round`, without a libm call per channel (three per
    // pixel, 17 maps of 10,000 pixels for every field the view shows).
    let mix = |c: u8| (255.0 + (f32::from(c) - 255.0) * k + 0.5) as u8;
    Color32::from_rgb(mix(end.r()), mix(end.g()), mix(end.b()))
}

/// How a grid's values become -1..1 before colouring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// p(class 1) in 0..1: 0.5 is white.
    Probability,
    /// Already about -1..1 (fitted values, tanh units): clamped.
    Unit,
    /// Any range: divided by the largest magnitude in the grid (ReLU, Linear).
    Normalised,
}

/// The image of a `resolution` x `resolution` grid (row-major, top row first).
pub fn grid_image(values: &[f32], resolution: usize, scale: Scale) -> ColorImage {
    let r = resolution.max(1);
    if values.len() != r * r {
        return ColorImage::new([r, r], vec![Color32::WHITE; r * r]);
    }
    let norm = match scale {
        Scale::Normalised => {
            let m = values
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()));
            if m > 0.0 { 1.0 / m } else { 1.0 }
        }
        Scale::Probability | Scale::Unit => 1.0,
    };
    let pixels = values
        .iter()
        .map(|&v| match scale {
            Scale::Probability => diverging(2.0 * v - 1.0),
            Scale::Unit | Scale::Normalised => diverging(v * norm),
        })
        .collect();
    ColorImage::new([r, r], pixels)
}

/// The scale for a hidden layer of kind `kind` (e.g. "Tanh").
pub fn unit_scale(kind: &str) -> Scale {
    match kind {
        "Tanh" | "Sigmoid" => Scale::Unit,
        _ => Scale::Normalised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_runs_orange_white_blue_and_is_safe() {
        assert_eq!(diverging(0.0), Color32::WHITE);
        assert_eq!(diverging(1.0), BLUE);
        assert_eq!(diverging(-1.0), ORANGE);
        assert_eq!(diverging(f32::NAN), Color32::WHITE);
        assert_eq!(diverging(f32::INFINITY), Color32::WHITE);
        assert_eq!(diverging(9.0), BLUE);
    }

    /// The channel mix rounds to the nearest integer, as `round` would.
    #[test]
    fn mixed_channels_are_rounded_to_nearest() {
        for i in -1000..=1000 {
            let t = i as f32 / 1000.0;
            let end = if t >= 0.0 { BLUE } else { ORANGE };
            let k = t.abs();
            let want = |c: u8| (255.0 + (f32::from(c) - 255.0) * k).round() as u8;
            assert_eq!(
                diverging(t),
                Color32::from_rgb(want(end.r()), want(end.g()), want(end.b())),
                "t = {t}"
            );
        }
    }

    #[test]
    fn grids_become_images_of_their_size() {
        let cases: [(&str, Vec<f32>, Scale, Color32); 4] = [
            ("p = 1 is blue", vec![1.0; 4], Scale::Probability, BLUE),
            (
                "p = 0.5 is white",
                vec![0.5; 4],
                Scale::Probability,
                Color32::WHITE,
            ),
            (
                "relu max is blue",
                vec![0.0, 0.0, 0.0, 3.0],
                Scale::Normalised,
                Color32::WHITE,
            ),
            (
                "short grid is blank",
                vec![1.0; 3],
                Scale::Unit,
                Color32::WHITE,
            ),
        ];
        for (what, values, scale, first) in cases {
            let img = grid_image(&values, 2, scale);
            assert_eq!(img.size, [2, 2], "{what}");
            assert_eq!(img.pixels[0], first, "{what}");
        }
        let img = grid_image(&[0.0, 0.0, 0.0, 3.0], 2, Scale::Normalised);
        assert_eq!(
            img.pixels[3], BLUE,
            "the largest value gets the full colour"
        );
    }
}
