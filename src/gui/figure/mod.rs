//! A plot as plain data, and writing it to a file: what each view puts on screen
//! with egui_plot, described once more as a [`Figure`] (title, axes with their
//! visible ranges, series with colours and styles) so it can be saved as SVG
//! ([`svg::to_svg`]) or PNG ([`png::render_png`]) at a chosen size; and the pure
//! series maths the plots are built from (`smoothing`, `aggregate`).
//!
//! Contract: a figure holds values in plot coordinates (a log axis holds log10 of
//! the value, as the on-screen plot does, and labels its ticks with the value);
//! non-finite points break a line and are never drawn; only what lies in the
//! axis ranges is visible. Files are written to a temporary name, then renamed.

pub mod aggregate;
pub mod buttons;
pub mod pictures;
pub mod plot;
pub mod png;
pub mod smoothing;
pub mod svg;

use std::path::Path;

/// One plot as it is on screen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figure {
    /// The caption above the plot.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// What is drawn, in drawing order (later on top).
    pub series: Vec<Series>,
    /// Size on screen in points (width, height): the size of a file at 1x.
    pub size: [f32; 2],
    /// Whether a legend is drawn (as on screen).
    pub legend: bool,
}

/// An axis: its caption, the visible range, and how ticks are labelled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Axis {
    /// Caption ("step", "loss").
    pub label: String,
    /// Visible range (low, high) in plot coordinates.
    pub range: (f64, f64),
    /// The coordinates are log10 of the values: ticks are labelled with 10^v.
    pub log10: bool,
}

/// One thing drawn: a line, markers, or vertical (horizontal) lines at the points' x (y).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry; series with the same name share one entry, empty = none.
    pub name: String,
    /// sRGB colour and opacity.
    pub colour: [u8; 4],
    /// Points in plot coordinates, in drawing order.
    pub points: Vec<[f64; 2]>,
    /// How the points are drawn.
    pub style: Style,
}

/// How a [`Series`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// A polyline `width` pixels wide, broken at non-finite points.
    Line {
        /// Stroke width in pixels at 1x.
        width: f32,
        /// Dashed instead of solid.
        dashed: bool,
    },
    /// A marker at each point.
    Markers {
        /// Marker radius in pixels at 1x.
        radius: f32,
        /// Filled, or outlined only.
        filled: bool,
        /// The marker's shape.
        shape: Marker,
    },
    /// A vertical line across the plot at each point's x (epoch starts, NaN steps).
    VLines {
        /// Stroke width in pixels at 1x.
        width: f32,
        /// Dashed instead of solid.
        dashed: bool,
    },
    /// A bar from 0 to each point's y, centred on its x.
    Bars {
        /// Bar width in plot units.
        width: f64,
    },
    /// A filled region between two boundaries over the same x values: the points
    /// are the upper boundary left to right, then the lower one right to left
    /// (quantile bands). Drawn without an outline.
    Band,
    /// A horizontal line across the plot at each point's y (an optimum to reach).
    HLines {
        /// Stroke width in pixels at 1x.
        width: f32,
        /// Dashed instead of solid.
        dashed: bool,
    },
}

/// Marker shapes the views use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A circle.
    Circle,
    /// A square turned 45 degrees.
    Diamond,
    /// A cross (x).
    Cross,
}

impl Series {
    /// A solid line.
    pub fn line(
        name: impl Into<String>,
        colour: egui::Color32,
        width: f32,
        points: Vec<[f64; 2]>,
    ) -> Self {
        Self {
            name: name.into(),
            colour: colour.to_srgba_unmultiplied(),
            points,
            style: Style::Line {
                width,
                dashed: false,
            },
        }
    }

    /// Markers of `shape` at the points.
    pub fn markers(
        name: impl Into<String>,
        colour: egui::Color32,
        radius: f32,
        filled: bool,
        shape: Marker,
        points: Vec<[f64; 2]>,
    ) -> Self {
        Self {
            name: name.into(),
            colour: colour.to_srgba_unmultiplied(),
            points,
            style: Style::Markers {
                radius,
                filled,
                shape,
            },
        }
    }

    /// Bars `width` plot units wide from 0 to each point's y.
    pub fn bars(
        name: impl Into<String>,
        colour: egui::Color32,
        width: f64,
        points: Vec<[f64; 2]>,
    ) -> Self {
        Self {
            name: name.into(),
            colour: colour.to_srgba_unmultiplied(),
            points,
            style: Style::Bars { width },
        }
    }

    /// The region between `lower` and `upper` (points `[x, y]` at the same xs,
    /// left to right), filled with `colour`.
    pub fn band(
        name: impl Into<String>,
        colour: egui::Color32,
        upper: &[[f64; 2]],
        lower: &[[f64; 2]],
    ) -> Self {
        let mut points = upper.to_vec();
        points.extend(lower.iter().rev());
        Self {
            name: name.into(),
            colour: colour.to_srgba_unmultiplied(),
            points,
            style: Style::Band,
        }
    }

    /// Horizontal lines at the `ys`.
    pub fn hlines(
        name: impl Into<String>,
        colour: egui::Color32,
        width: f32,
        dashed: bool,
        ys: &[f64],
    ) -> Self {
        Self {
            name: name.into(),
            colour: colour.to_srgba_unmultiplied(),
            points: ys.iter().map(|&y| [0.0, y]).collect(),
            style: Style::HLines { width, dashed },
        }
    }

    /// Vertical lines at the `xs`.
    pub fn vlines(
        name: impl Into<String>,
        colour: egui::Color32,
        width: f32,
        dashed: bool,
        xs: &[f64],
    ) -> Self {
        Self {
            name: name.into(),
            colour: colour.to_srgba_unmultiplied(),
            points: xs.iter().map(|&x| [x, 0.0]).collect(),
            style: Style::VLines { width, dashed },
        }
    }
}

impl Figure {
    /// A figure with no series yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x: Axis {
                label: x_label.into(),
                ..Axis::default()
            },
            y: Axis {
                label: y_label.into(),
                ..Axis::default()
            },
            series: Vec::new(),
            size: [640.0, 400.0],
            legend: true,
        }
    }

    /// Takes the visible ranges and the size from the plot as it was drawn.
    pub fn set_view(&mut self, bounds: &egui_plot::PlotBounds, rect: egui::Rect) {
        let (min, max) = (bounds.min(), bounds.max());
        self.x.range = (min[0], max[0]);
        self.y.range = (min[1], max[1]);
        self.size = [rect.width(), rect.height()];
    }
}

/// File kinds a figure is saved as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics.
    Svg,
    /// A raster image.
    Png,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// Writes `figure` to `path` as `format`: an SVG of the on-screen size, or a PNG
/// `scale` times that size in pixels; to a temporary name first, then renamed.
pub fn save(figure: &Figure, format: Format, scale: f32, path: &Path) -> anyhow::Result<()> {
    let bytes = match format {
        Format::Svg => svg::to_svg(figure).into_bytes(),
        Format::Png => png::svg_to_png(&svg::to_svg(figure), scale)?,
    };
    crate::util::atomic::write_atomic(path, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Tick positions for `range`: 1, 2 or 5 times a power of ten apart, about
/// `target` of them; empty for an empty or non-finite range.
pub fn ticks(range: (f64, f64), target: usize) -> Vec<f64> {
    let (lo, hi) = range;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) || target == 0 {
        return Vec::new();
    }
    let raw = span / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick's label: the value (10^v on a log axis), short and without noise digits.
pub fn tick_label(v: f64, step: f64, log10: bool) -> String {
    if log10 {
        let value = 10f64.powf(v);
        return if (1e-3..1e5).contains(&value.abs()) {
            trim(format!("{value:.3}"))
        } else {
            format!("{value:.0e}")
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e6 || v.abs() < 1e-4 {
        return format!("{v:.1e}");
    }
    let decimals = (-step.abs().log10().floor()).max(0.0) as usize;
    trim(format!("{v:.decimals$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        for (range, want) in [
            ((0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
            ((3.0, 97.0), vec![20.0, 40.0, 60.0, 80.0]),
            ((-0.03, 0.03), vec![-0.02, 0.0, 0.02]),
        ] {
            let got = ticks(range, 5);
            assert_eq!(got.len(), want.len(), "{range:?}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{range:?}: {got:?} vs {want:?}");
            }
        }
        assert!(ticks((1.0, 1.0), 5).is_empty());
        assert!(ticks((0.0, f64::NAN), 5).is_empty());
    }

    #[test]
    fn tick_labels_read_as_values() {
        assert_eq!(tick_label(0.4, 0.2, false), "0.4");
        assert_eq!(tick_label(2000.0, 500.0, false), "2000");
        assert_eq!(tick_label(-1.0, 1.0, true), "0.1");
        assert_eq!(tick_label(0.0, 1.0, true), "1");
    }
}
