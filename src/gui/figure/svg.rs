//! A [`Figure`] as an SVG document: white background, title, axes with round
//! ticks and grid lines, the series clipped to the plot area, a legend.
//!
//! Contract: a pure function of the figure (its `size` is the document's size);
//! each series is exactly one `<path class="series">`, in drawing order; a
//! non-finite point ends the line it is in (the next finite point starts a new
//! one) and is never drawn; only the axis ranges are visible (clip path). Text is
//! XML-escaped and set in the generic `sans-serif` family.

use std::fmt::Write;

use super::{Figure, Marker, Series, Style, tick_label, ticks};

/// Margins around the plot area: left (tick labels + y caption), right, top
/// (title), bottom (tick labels + x caption).
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 44.0;

/// Beyond this many pixels outside the plot a coordinate is clamped, so a far-off
/// point cannot produce numbers a renderer loses precision on.
const FAR: f64 = 1e5;

/// The plot area and the mapping from plot coordinates into it.
struct Frame {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let t = (x - self.x.0) / (self.x.1 - self.x.0);
        (self.left + t * self.width).clamp(-FAR, FAR)
    }

    fn py(&self, y: f64) -> f64 {
        let t = (y - self.y.0) / (self.y.1 - self.y.0);
        (self.top + self.height - t * self.height).clamp(-FAR, FAR)
    }

    fn contains(&self, x: f64, y: f64) -> bool {
        let (lo_x, hi_x) = self.x;
        let (lo_y, hi_y) = self.y;
        (lo_x..=hi_x).contains(&x) && (lo_y..=hi_y).contains(&y)
    }
}

/// A usable range: `r` if finite and non-empty, else one around it.
fn usable(r: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = r;
    if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    }
}

/// The SVG text of `fig`, `fig.size` points wide and high.
pub fn to_svg(fig: &Figure) -> String {
    let Figure {
        title,
        x,
        y,
        series,
        size,
        legend: show_legend,
    } = fig;
    let w = f64::from(size[0]).max(LEFT + RIGHT + 40.0);
    let h = f64::from(size[1]).max(TOP + BOTTOM + 40.0);
    let frame = Frame {
        left: LEFT,
        top: TOP,
        width: w - LEFT - RIGHT,
        height: h - TOP - BOTTOM,
        x: usable(x.range),
        y: usable(y.range),
    };
    let mut s = String::new();
    // Writing into a String cannot fail; the results are ignored below.
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{w:.0}" height="{h:.0}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<defs><clipPath id="plot-area"><rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"/></clipPath></defs>"#,
        frame.left, frame.top, frame.width, frame.height
    );
    if !title.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="20" text-anchor="middle" font-size="13">{}</text>"#,
            w / 2.0,
            escape(title)
        );
    }
    axes(&mut s, &frame, x, y);
    let _ = writeln!(s, r#"<g clip-path="url(#plot-area)">"#);
    for series in series {
        series_path(&mut s, &frame, series);
    }
    let _ = writeln!(s, "</g>");
    if *show_legend {
        // The same corner as on screen: where the data is not.
        let corner = super::plot::legend_corner(fig);
        legend(&mut s, &frame, series, corner);
    }
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, f: &Frame, x: &super::Axis, y: &super::Axis) {
    let bottom = f.top + f.height;
    let right = f.left + f.width;
    let x_ticks = ticks(f.x, ((f.width / 90.0) as usize).max(2));
    let x_step = step_of(&x_ticks);
    for &t in &x_ticks {
        let px = f.px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.2}" y1="{:.2}" x2="{px:.2}" y2="{bottom:.2}" stroke="#e4e4e4"/><text x="{px:.2}" y="{:.2}" text-anchor="middle" fill="#333">{}</text>"##,
            f.top,
            bottom + 14.0,
            escape(&tick_label(t, x_step, x.log10))
        );
    }
    let y_target = ((f.height / 50.0) as usize).max(2);
    let y_ticks = if y.log10 {
        log_ticks(f.y, y_target)
    } else {
        ticks(f.y, y_target)
    };
    let y_step = step_of(&y_ticks);
    for &t in &y_ticks {
        let py = f.py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{:.2}" y1="{py:.2}" x2="{right:.2}" y2="{py:.2}" stroke="#e4e4e4"/><text x="{:.2}" y="{:.2}" text-anchor="end" fill="#333">{}</text>"##,
            f.left,
            f.left - 5.0,
            py + 4.0,
            escape(&tick_label(t, y_step, y.log10))
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="none" stroke="#888"/>"##,
        f.left, f.top, f.width, f.height
    );
    if !x.label.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}" text-anchor="middle" font-size="12">{}</text>"#,
            f.left + f.width / 2.0,
            bottom + 34.0,
            escape(&x.label)
        );
    }
    if !y.label.is_empty() {
        let cy = f.top + f.height / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="14" y="{cy:.2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {cy:.2})">{}</text>"#,
            escape(&y.label)
        );
    }
}

/// Ticks of a log10 axis at 1, 2 and 5 times powers of ten (only the powers
/// when that gives more than `target`), or linear ticks within one decade.
fn log_ticks(range: (f64, f64), target: usize) -> Vec<f64> {
    let (lo, hi) = range;
    if !(lo.is_finite() && hi.is_finite()) || hi - lo > 300.0 {
        return ticks(range, target);
    }
    let decades = (lo.floor() as i64)..=(hi.ceil() as i64);
    let at = |mults: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|k| mults.iter().map(move |m| k as f64 + m.log10()))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let fine = at(&[1.0, 2.0, 5.0]);
    if fine.len() < 2 {
        return ticks(range, target);
    }
    if fine.len() <= target {
        return fine;
    }
    let coarse = at(&[1.0]);
    if coarse.len() >= 2 { coarse } else { fine }
}

fn step_of(ticks: &[f64]) -> f64 {
    match ticks {
        [a, b, ..] => b - a,
        _ => 1.0,
    }
}

fn colour_attrs(c: [u8; 4], paint: &str) -> String {
    let [r, g, b, a] = c;
    let alpha = f64::from(a) / 255.0;
    format!(r#"{paint}="rgb({r},{g},{b})" {paint}-opacity="{alpha:.3}""#)
}

const DASH: &str = r#" stroke-dasharray="6 4""#;

fn series_path(s: &mut String, f: &Frame, series: &Series) {
    let Series {
        name: _,
        colour,
        points,
        style,
    } = series;
    let mut d = String::new();
    let attrs = match *style {
        Style::Line { width, dashed } => {
            let mut pen_down = false;
            for &[x, y] in points {
                if !(x.is_finite() && y.is_finite()) {
                    pen_down = false;
                    continue;
                }
                let cmd = if pen_down { 'L' } else { 'M' };
                let _ = write!(d, "{cmd}{:.2},{:.2} ", f.px(x), f.py(y));
                pen_down = true;
            }
            format!(
                r#"fill="none" {} stroke-width="{width}" stroke-linejoin="round"{}"#,
                colour_attrs(*colour, "stroke"),
                if dashed { DASH } else { "" }
            )
        }
        Style::Markers {
            radius,
            filled,
            shape,
        } => {
            marker_path(&mut d, f, points, radius, shape);
            if filled && shape != Marker::Cross {
                format!(r#"{} stroke="none""#, colour_attrs(*colour, "fill"))
            } else {
                format!(
                    r#"fill="none" {} stroke-width="1.5""#,
                    colour_attrs(*colour, "stroke")
                )
            }
        }
        Style::VLines { width, dashed } => {
            for &[x, _] in points {
                if !(x.is_finite() && (f.x.0..=f.x.1).contains(&x)) {
                    continue;
                }
                let _ = write!(d, "M{:.2},{:.2} V{:.2} ", f.px(x), f.top, f.top + f.height);
            }
            format!(
                r#"fill="none" {} stroke-width="{width}"{}"#,
                colour_attrs(*colour, "stroke"),
                if dashed { DASH } else { "" }
            )
        }
        Style::Bars { width } => {
            for &[x, y] in points {
                if !(x.is_finite() && y.is_finite()) {
                    continue;
                }
                let (x0, x1) = (f.px(x - width / 2.0), f.px(x + width / 2.0));
                let (y0, y1) = (f.py(0.0), f.py(y));
                let _ = write!(
                    d,
                    "M{x0:.2},{y0:.2} L{x0:.2},{y1:.2} L{x1:.2},{y1:.2} L{x1:.2},{y0:.2} Z "
                );
            }
            format!(r#"{} stroke="none""#, colour_attrs(*colour, "fill"))
        }
        Style::Band => {
            band_path(&mut d, f, points);
            format!(r#"{} stroke="none""#, colour_attrs(*colour, "fill"))
        }
        Style::HLines { width, dashed } => {
            for &[_, y] in points {
                if !(y.is_finite() && (f.y.0..=f.y.1).contains(&y)) {
                    continue;
                }
                let _ = write!(d, "M{:.2},{:.2} H{:.2} ", f.left, f.py(y), f.left + f.width);
            }
            format!(
                r#"fill="none" {} stroke-width="{width}"{}"#,
                colour_attrs(*colour, "stroke"),
                if dashed { DASH } else { "" }
            )
        }
    };
    let _ = writeln!(s, r#"<path class="series" d="{}" {attrs}/>"#, d.trim_end());
}

/// Markers at the points inside the plot area, as path commands.
fn marker_path(d: &mut String, f: &Frame, points: &[[f64; 2]], radius: f32, shape: Marker) {
    let r = f64::from(radius);
    for &[x, y] in points {
        if !(x.is_finite() && y.is_finite() && f.contains(x, y)) {
            continue;
        }
        let (cx, cy) = (f.px(x), f.py(y));
        let _ = match shape {
            Marker::Circle => write!(
                d,
                "M{:.2},{cy:.2} a{r},{r} 0 1,0 {:.2},0 a{r},{r} 0 1,0 {:.2},0 Z ",
                cx - r,
                2.0 * r,
                -2.0 * r
            ),
            Marker::Diamond => write!(
                d,
                "M{cx:.2},{:.2} L{:.2},{cy:.2} L{cx:.2},{:.2} L{:.2},{cy:.2} Z ",
                cy - r,
                cx + r,
                cy + r,
                cx - r
            ),
            Marker::Cross => write!(
                d,
                "M{:.2},{:.2} L{:.2},{:.2} M{:.2},{:.2} L{:.2},{:.2} ",
                cx - r,
                cy - r,
                cx + r,
                cy + r,
                cx + r,
                cy - r,
                cx - r,
                cy + r
            ),
        };
    }
}

/// A band (the upper boundary's points, then the lower's in reverse): one
/// closed outline per stretch of finite points.
fn band_path(d: &mut String, f: &Frame, points: &[[f64; 2]]) {
    let n = points.len() / 2;
    let ok = |i: usize| {
        let (u, l) = (points[i], points[2 * n - 1 - i]);
        u[0].is_finite() && u[1].is_finite() && l[0].is_finite() && l[1].is_finite()
    };
    let mut i = 0;
    while i < n {
        if !ok(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && ok(i) {
            i += 1;
        }
        let ids = (start..i).chain((start..i).rev().map(|k| 2 * n - 1 - k));
        for (j, k) in ids.enumerate() {
            let [x, y] = points[k];
            let cmd = if j == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{:.2},{:.2} ", f.px(x), f.py(y));
        }
        d.push_str("Z ");
    }
}

/// One entry per distinct non-empty name, inside the plot in `corner`.
fn legend(s: &mut String, f: &Frame, series: &[Series], corner: egui_plot::Corner) {
    let mut entries: Vec<&Series> = Vec::new();
    for se in series {
        if !se.name.is_empty() && !entries.iter().any(|e| e.name == se.name) {
            entries.push(se);
        }
    }
    if entries.is_empty() {
        return;
    }
    let longest = entries
        .iter()
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(0);
    let bw = longest as f64 * 6.2 + 34.0;
    let bh = entries.len() as f64 * 15.0 + 8.0;
    let right = matches!(
        corner,
        egui_plot::Corner::RightTop | egui_plot::Corner::RightBottom
    );
    let top = matches!(
        corner,
        egui_plot::Corner::RightTop | egui_plot::Corner::LeftTop
    );
    let bx = if right {
        f.left + f.width - bw - 6.0
    } else {
        f.left + 6.0
    };
    let by = if top {
        f.top + 6.0
    } else {
        f.top + f.height - bh - 6.0
    };
    let _ = writeln!(
        s,
        r##"<g class="legend"><rect x="{bx:.2}" y="{by:.2}" width="{bw:.2}" height="{bh:.2}" fill="white" fill-opacity="0.85" stroke="#bbb"/>"##
    );
    for (i, e) in entries.iter().enumerate() {
        let cy = by + 11.0 + i as f64 * 15.0;
        let swatch = match e.style {
            Style::Markers { .. } | Style::Bars { .. } | Style::Band => format!(
                r#"<circle cx="{:.2}" cy="{cy:.2}" r="3.5" {}/>"#,
                bx + 14.0,
                colour_attrs(e.colour, "fill")
            ),
            Style::Line { dashed, .. }
            | Style::VLines { dashed, .. }
            | Style::HLines { dashed, .. } => format!(
                r#"<line x1="{:.2}" y1="{cy:.2}" x2="{:.2}" y2="{cy:.2}" {} stroke-width="2"{}/>"#,
                bx + 6.0,
                bx + 22.0,
                colour_attrs(e.colour, "stroke"),
                if dashed { DASH } else { "" }
            ),
        };
        let _ = writeln!(
            s,
            r#"{swatch}<text x="{:.2}" y="{:.2}">{}</text>"#,
            bx + 28.0,
            cy + 4.0,
            escape(&e.name)
        );
    }
    let _ = writeln!(s, "</g>");
}

/// `text` with the five XML special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use resvg::usvg::roxmltree;

    use super::*;
    use crate::gui::figure::Axis;

    fn figure(series: Vec<Series>) -> Figure {
        Figure {
            title: "Loss <train> & val".into(),
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
            series,
            size: [400.0, 300.0],
            legend: true,
        }
    }

    fn red_line(points: Vec<[f64; 2]>) -> Series {
        Series::line("run loss", egui::Color32::RED, 2.0, points)
    }

    /// The `d` attributes of the series paths, in order.
    fn series_paths(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
        doc.descendants()
            .filter(|n| n.has_tag_name("path") && n.attribute("class") == Some("series"))
            .map(|n| n.attribute("d").unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn valid_xml_with_one_path_per_series_and_escaped_text() {
        let fig = figure(vec![
            red_line(vec![[0.0, 1.0], [5.0, 0.5], [10.0, 0.2]]),
            Series::markers(
                "val",
                egui::Color32::BLUE,
                4.0,
                false,
                Marker::Circle,
                vec![[5.0, 0.6]],
            ),
            Series::vlines("epoch", egui::Color32::GRAY, 1.0, true, &[2.0, 4.0]),
            red_line(Vec::new()),
        ]);
        let svg = to_svg(&fig);
        let paths = series_paths(&svg);
        assert_eq!(paths.len(), 4, "one path per series, empty ones too");
        assert!(
            svg.contains("Loss &lt;train&gt; &amp; val"),
            "title escaped"
        );
        assert!(svg.contains(r#"width="400" height="300""#));
        assert_eq!(
            paths[2].matches('M').count(),
            2,
            "one stroke per epoch line"
        );
        assert!(svg.contains("stroke-dasharray"), "dashed epoch lines");
        assert!(paths[3].is_empty());
    }

    #[test]
    fn non_finite_points_break_the_line_and_are_not_drawn() {
        let fig = figure(vec![red_line(vec![
            [0.0, 0.5],
            [1.0, 0.4],
            [2.0, f64::NAN],
            [3.0, 0.3],
            [4.0, f64::INFINITY],
            [f64::NEG_INFINITY, 0.2],
            [6.0, 0.2],
            [7.0, 0.1],
        ])]);
        let d = &series_paths(&to_svg(&fig))[0];
        assert_eq!(d.matches('M').count(), 3, "three pieces: {d}");
        assert_eq!(d.matches('L').count(), 2, "{d}");
        assert!(!d.contains("NaN") && !d.contains("inf"), "{d}");
    }

    #[test]
    fn ranges_map_to_the_plot_area() {
        // x 0..10 spans the plot area's width, y 0..1 its height (y up).
        let fig = figure(vec![red_line(vec![[0.0, 0.0], [10.0, 1.0]])]);
        let d = &series_paths(&to_svg(&fig))[0];
        let right = 400.0 - RIGHT;
        let bottom = 300.0 - BOTTOM;
        assert_eq!(
            d,
            &format!("M{LEFT:.2},{bottom:.2} L{right:.2},{TOP:.2}"),
            "corners of the range at the corners of the area"
        );
        // A narrower range moves the same point: x 5..10 puts x=5 at the left edge.
        let mut zoomed = fig.clone();
        zoomed.x.range = (5.0, 10.0);
        zoomed.series = vec![red_line(vec![[5.0, 0.0]])];
        let d = &series_paths(&to_svg(&zoomed))[0];
        assert!(d.starts_with(&format!("M{LEFT:.2},")), "{d}");
        // Markers outside the range are left out; the clip path hides line parts.
        zoomed.series = vec![Series::markers(
            "m",
            egui::Color32::RED,
            3.0,
            true,
            Marker::Diamond,
            vec![[1.0, 0.5], [7.0, 0.5]],
        )];
        let d = &series_paths(&to_svg(&zoomed))[0];
        assert_eq!(d.matches('M').count(), 1, "{d}");
        assert!(to_svg(&zoomed).contains(r#"clip-path="url(#plot-area)""#));
    }

    #[test]
    fn degenerate_ranges_still_make_a_figure() {
        let mut fig = figure(vec![red_line(vec![[1.0, 1.0], [1.0, 1.0]])]);
        fig.x.range = (1.0, 1.0);
        fig.y.range = (f64::NAN, f64::INFINITY);
        let d = &series_paths(&to_svg(&fig))[0];
        assert!(!d.contains("NaN") && !d.contains("inf"), "{d}");
    }

    #[test]
    fn a_log_axis_ticks_at_one_two_five_and_labels_values() {
        let got: Vec<String> = log_ticks((-1.3, 0.35), 6)
            .iter()
            .map(|&v| tick_label(v, 1.0, true))
            .collect();
        assert_eq!(got, ["0.1", "0.2", "0.5", "1", "2"]);
        let wide: Vec<String> = log_ticks((-4.5, 1.2), 5)
            .iter()
            .map(|&v| tick_label(v, 1.0, true))
            .collect();
        assert_eq!(
            wide,
            ["1e-4", "0.001", "0.01", "0.1", "1", "10"],
            "powers only"
        );
        let mut fig = figure(Vec::new());
        fig.y = Axis {
            label: "loss".into(),
            range: (-0.8, 0.1),
            log10: true,
        };
        let svg = to_svg(&fig);
        for label in [">0.2</text>", ">0.5</text>", ">1</text>"] {
            assert!(svg.contains(label), "{label}");
        }
    }

    #[test]
    fn legend_lists_each_name_once() {
        let fig = figure(vec![
            red_line(vec![[0.0, 0.5]]),
            Series::vlines("epoch", egui::Color32::GRAY, 1.0, true, &[2.0]),
            Series::vlines("epoch", egui::Color32::GRAY, 1.0, true, &[4.0]),
            Series::vlines("", egui::Color32::GRAY, 1.0, true, &[4.0]),
        ]);
        let svg = to_svg(&fig);
        let doc = roxmltree::Document::parse(&svg).expect("xml");
        let legend = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("legend"))
            .expect("a legend");
        let names: Vec<&str> = legend
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(names, ["run loss", "epoch"]);
    }
}
