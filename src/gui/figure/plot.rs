//! Drawing a [`Figure`] with egui_plot, so the screen and a saved file come from
//! the same data: the views build a figure, draw it here, then record the view
//! (ranges, size) the plot ended up showing.
//!
//! Contract: every series becomes the egui_plot item of its style, with the same
//! name, colour, width and markers; non-finite points are left out, as
//! egui_plot would not draw them either.

use egui::{Color32, Stroke};
use egui_plot::{
    Bar, BarChart, Corner, HLine, Legend, Line, LineStyle, MarkerShape, PlotPoints, PlotResponse,
    PlotUi, Points, Polygon, VLine,
};

use super::{Figure, Marker, Series, Style};

fn colour(c: [u8; 4]) -> Color32 {
    let [r, g, b, a] = c;
    Color32::from_rgba_unmultiplied(r, g, b, a)
}

/// Adds `series` to the plot being built.
pub fn add_series(plot_ui: &mut PlotUi<'_>, series: &Series) {
    let Series {
        name,
        colour: c,
        points,
        style,
    } = series;
    let c = colour(*c);
    let finite = || -> Vec<[f64; 2]> {
        points
            .iter()
            .copied()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .collect()
    };
    match *style {
        Style::Line { width, dashed } => {
            let mut line = Line::new(name.clone(), PlotPoints::new(finite()))
                .color(c)
                .width(width);
            if dashed {
                line = line.style(LineStyle::dashed_loose());
            }
            plot_ui.line(line);
        }
        Style::Markers {
            radius,
            filled,
            shape,
        } => {
            let shape = match shape {
                Marker::Circle => MarkerShape::Circle,
                Marker::Diamond => MarkerShape::Diamond,
                Marker::Cross => MarkerShape::Cross,
            };
            plot_ui.points(
                Points::new(name.clone(), PlotPoints::new(finite()))
                    .color(c)
                    .radius(radius)
                    .filled(filled)
                    .shape(shape),
            );
        }
        Style::VLines { width, dashed } => {
            for &[x, _] in points.iter().filter(|p| p[0].is_finite()) {
                let mut v = VLine::new(name.clone(), x).stroke(Stroke::new(width, c));
                if dashed {
                    v = v.style(LineStyle::dashed_loose());
                }
                plot_ui.vline(v);
            }
        }
        Style::Bars { width } => {
            let bars: Vec<Bar> = finite()
                .into_iter()
                .map(|[x, y]| Bar::new(x, y).width(width).fill(c))
                .collect();
            plot_ui.bar_chart(BarChart::new(name.clone(), bars).color(c));
        }
        Style::Band => {
            // egui fills convex shapes only: one quadrilateral per x interval.
            let n = points.len() / 2;
            for i in 0..n.saturating_sub(1) {
                let quad = [
                    points[i],
                    points[i + 1],
                    points[2 * n - 2 - i],
                    points[2 * n - 1 - i],
                ];
                if quad.iter().all(|p| p[0].is_finite() && p[1].is_finite()) {
                    plot_ui.polygon(
                        Polygon::new(name.clone(), PlotPoints::new(quad.to_vec()))
                            .fill_color(c)
                            // No outline, but the colour set: egui_plot's legend
                            // shows the stroke colour, and gives a transparent
                            // one an automatic colour unlike the band.
                            .stroke(Stroke::new(0.0, c)),
                    );
                }
            }
        }
        Style::HLines { width, dashed } => {
            for &[_, y] in points.iter().filter(|p| p[1].is_finite()) {
                let mut h = HLine::new(name.clone(), y).stroke(Stroke::new(width, c));
                if dashed {
                    h = h.style(LineStyle::dashed_loose());
                }
                plot_ui.hline(h);
            }
        }
    }
}

/// The corner of `figure`'s data area with the fewest data points in it, where
/// its legend hides the least (ties keep the first of right-top, left-top,
/// right-bottom, left-bottom). Each corner region is a quadrant (a legend of
/// several long run names takes about that much); a bar counts along its whole
/// height, a line at its points.
pub fn legend_corner(figure: &Figure) -> Corner {
    let mut pts: Vec<[f64; 2]> = Vec::new();
    for s in &figure.series {
        let finite = s
            .points
            .iter()
            .filter(|p| p[0].is_finite() && p[1].is_finite());
        match s.style {
            Style::Line { .. } | Style::Markers { .. } | Style::Band => pts.extend(finite),
            Style::Bars { .. } => {
                for &[x, y] in finite {
                    pts.extend((0..=8).map(|k| [x, y * f64::from(k) / 8.0]));
                }
            }
            Style::VLines { .. } | Style::HLines { .. } => {}
        }
    }
    let Some(first) = pts.first() else {
        return Corner::RightTop;
    };
    let (mut lo, mut hi) = (*first, *first);
    for p in &pts {
        for d in 0..2 {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d]);
        }
    }
    let t = |p: &[f64; 2], d: usize| {
        let w = hi[d] - lo[d];
        if w > 0.0 { (p[d] - lo[d]) / w } else { 0.5 }
    };
    let count = |right: bool, top: bool| {
        pts.iter()
            .filter(|p| {
                let (x, y) = (t(p, 0), t(p, 1));
                (if right { x >= 0.5 } else { x <= 0.5 }) && (if top { y >= 0.5 } else { y <= 0.5 })
            })
            .count()
    };
    let corners = [
        (Corner::RightTop, count(true, true)),
        (Corner::LeftTop, count(false, true)),
        (Corner::RightBottom, count(true, false)),
        (Corner::LeftBottom, count(false, false)),
    ];
    corners
        .iter()
        .min_by_key(|(_, n)| *n)
        .map_or(Corner::RightTop, |(c, _)| *c)
}

/// The legend for `figure`: in its emptiest corner.
pub fn legend_for(figure: &Figure) -> Legend {
    Legend::default().position(legend_corner(figure))
}

/// Adds every series of `figure`, in order.
pub fn draw(plot_ui: &mut PlotUi<'_>, figure: &Figure) {
    for s in &figure.series {
        add_series(plot_ui, s);
    }
}

/// Records in `figure` the ranges and size the plot was shown with.
pub fn record_view<R>(figure: &mut Figure, response: &PlotResponse<R>) {
    figure.set_view(response.transform.bounds(), response.response.rect);
}

/// Shows `figure` in `plot`, then the save row under it (`salt` tells rows apart):
/// for views that keep no figure between frames.
pub fn show_with_save_row(
    ui: &mut egui::Ui,
    plot: egui_plot::Plot<'_>,
    mut figure: Figure,
    salt: &str,
) {
    let response = plot.show(ui, |plot_ui| draw(plot_ui, &figure));
    record_view(&mut figure, &response);
    super::buttons::save_row(ui, salt, || figure);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        let mut fig = Figure::new("acc", "step", "accuracy");
        // Accuracy rising from the bottom left to the top right.
        let rising: Vec<[f64; 2]> = (0..50)
            .map(|i| [f64::from(i), f64::from(i) / 50.0])
            .collect();
        fig.series
            .push(Series::line("train", Color32::RED, 1.0, rising));
        let c = legend_corner(&fig);
        assert!(matches!(c, Corner::LeftTop | Corner::RightBottom), "{c:?}");
        // A falling loss: the top right is empty.
        let mut fig = Figure::new("loss", "step", "loss");
        let falling: Vec<[f64; 2]> = (0..50)
            .map(|i| [f64::from(i), 1.0 / (1.0 + f64::from(i))])
            .collect();
        fig.series
            .push(Series::line("loss", Color32::RED, 1.0, falling));
        assert!(matches!(legend_corner(&fig), Corner::RightTop));
        // Bars fill their height: with tall bars on the right, not there.
        let mut fig = Figure::new("speed", "", "");
        fig.series.push(Series::bars(
            "b",
            Color32::RED,
            0.5,
            vec![[0.0, 0.1], [1.0, 0.2], [2.0, 1.0], [3.0, 1.0]],
        ));
        assert!(
            matches!(legend_corner(&fig), Corner::LeftTop),
            "{:?}",
            legend_corner(&fig)
        );
    }
}
