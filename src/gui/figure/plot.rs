//! Drawing a [`Figure`] with egui_plot, so the screen and a saved file come from
//! the same data: the views build a figure, draw it here, then record the view
//! (ranges, size) the plot ended up showing.
//!
//! Contract: every series becomes the egui_plot item of its style, with the same
//! name, colour, width and markers; non-finite points are left out, as
//! egui_plot would not draw them either.

use egui::{Color32, Stroke};
use egui_plot::{
    Bar, BarChart, HLine, Line, LineStyle, MarkerShape, PlotPoints, PlotResponse, PlotUi, Points,
    VLine,
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
