//! The Playground tab (2-D points): the model's output over the plane as a
//! heatmap with the train points (filled, dark rim) and test points (hollow rings
//! in a white rim) on it, every
//! hidden unit's own map as a node of the network drawing beside it, and the
//! run's latest loss and accuracy in a corner.
//!
//! Contract: draws from [`PlaygroundState`] and the run's series only; the live
//! maps come from `Probe::Field` answers the app routes to the state. Without a
//! run it shows the points alone (and the last answer, if any).

mod colour;
mod network;
mod state;

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Ui, Vec2};

pub use colour::{BLUE, ORANGE, diverging};
pub use state::{DEFAULT_RESOLUTION, PlaygroundState};

use crate::data::points::Point;
use crate::events::Split;
use crate::gui::state::run_state::RunSeries;
use crate::spec::{DatasetSpec, Experiment, Feature};
use network::{Node, network};

/// Points drawn per split at most (a larger set is thinned evenly).
const MAX_DRAWN: usize = 3000;
/// The rim of a train point (dark, like TensorFlow Playground's).
const OUTLINE: Color32 = Color32::from_gray(30);

/// Draws the tab.
pub fn playground_tab(
    ui: &mut Ui,
    state: &mut PlaygroundState,
    exp: &Experiment,
    series: &RunSeries,
    live: bool,
) {
    let DatasetSpec::Points(spec) = &exp.dataset else {
        ui.label("This experiment has no points: pick a \"2-D playground\" data set.");
        return;
    };
    let regression = spec.kind.is_regression();
    let features = spec.features.clone();
    state.upload(ui.ctx());
    ui.horizontal(|ui| {
        ui.checkbox(&mut state.show_test, "Show test points")
            .on_hover_text("Test points are drawn outlined; the model never trains on them.");
        ui.separator();
        let label = ui.label("Grid").on_hover_text(
            "Points per side at which the live model is asked (2 to 200): finer is slower.",
        );
        ui.add(egui::DragValue::new(&mut state.resolution).range(2..=200))
            .labelled_by(label.id);
        ui.separator();
        match &state.maps {
            Some(m) if live => ui.label(format!("live model at step {}", m.step)),
            Some(m) => ui.label(format!("final model, step {}", m.step)),
            None if live => ui.weak("waiting for the model's first answer…"),
            None => ui.weak("the data alone: start a run to see what the model makes of it"),
        };
    });
    ui.separator();
    let avail = ui.available_size();
    let side = (avail.y - 30.0).min(avail.x * 0.58).max(120.0);
    let net_width = (avail.x - side - 16.0).max(120.0);
    ui.horizontal_top(|ui| {
        let columns = node_columns(state, ui.ctx(), &features, regression);
        let weights: Vec<&crate::events::FieldWeights> = state
            .maps
            .as_ref()
            .map(|m| m.weights.iter().collect())
            .unwrap_or_default();
        network(ui, Vec2::new(net_width, side), &columns, &weights);
        ui.add_space(8.0);
        // The figures belong to the run whose maps are shown (a points run), never
        // to an earlier run of another data set.
        let stats = if state.maps.is_some() {
            corner_stats(series, regression)
        } else {
            Vec::new()
        };
        plane(ui, state, exp, side, regression, live, &stats);
    });
}

fn node_columns(
    state: &mut PlaygroundState,
    ctx: &egui::Context,
    features: &[Feature],
    regression: bool,
) -> Vec<Vec<Node>> {
    let inputs = state.feature_textures(ctx, features);
    let mut cols: Vec<Vec<Node>> = vec![
        features
            .iter()
            .zip(inputs)
            .map(|(f, texture)| Node {
                texture: Some(texture),
                caption: f.label().to_string(),
                hover: format!("input feature {}", f.label()),
            })
            .collect(),
    ];
    let mut current: Option<usize> = None;
    for u in &state.unit_textures {
        if current != Some(u.layer) {
            current = Some(u.layer);
            cols.push(Vec::new());
        }
        if let Some(col) = cols.last_mut() {
            col.push(Node {
                texture: Some(u.texture.id()),
                caption: String::new(),
                hover: format!(
                    "layer {} ({}), unit {}: its output over the plane",
                    u.layer, u.kind, u.unit
                ),
            });
        }
    }
    cols.push(vec![Node {
        texture: state.output_texture.as_ref().map(|t| t.id()),
        caption: "output".into(),
        hover: if regression {
            "the fitted value".into()
        } else {
            "p(class 1): blue class 1, orange class 0".into()
        },
    }]);
    cols
}

/// The big map with the points.
fn plane(
    ui: &mut Ui,
    state: &mut PlaygroundState,
    exp: &Experiment,
    side: f32,
    regression: bool,
    live: bool,
    stats: &[String],
) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    let painter = ui.painter_at(rect);
    match &state.output_texture {
        Some(t) => {
            painter.image(
                t.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        None => {
            painter.rect_filled(rect, 0.0, Color32::from_gray(250));
        }
    }
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, Color32::from_gray(120)),
        egui::StrokeKind::Inside,
    );
    let to_screen = |p: &Point| {
        Pos2::new(
            rect.left() + (p.x1 + 6.0) / 12.0 * rect.width(),
            rect.top() + (6.0 - p.x2) / 12.0 * rect.height(),
        )
    };
    let colour = |p: &Point| {
        if regression {
            diverging(p.label)
        } else if p.label > 0.5 {
            BLUE
        } else {
            ORANGE
        }
    };
    let show_test = state.show_test;
    let Some(points) = state.points(exp, live) else {
        return;
    };
    let radius = (side / 160.0).clamp(2.0, 4.0);
    for p in thinned(&points.train) {
        let at = to_screen(p);
        if rect.contains(at) {
            // A dark rim keeps a point visible on a region of its own colour.
            painter.circle(at, radius, colour(p), Stroke::new(1.0, OUTLINE));
        }
    }
    if show_test {
        for p in thinned(&points.test) {
            let at = to_screen(p);
            if rect.contains(at) {
                // Hollow: a ring of the class colour in a white rim.
                painter.circle_stroke(at, radius + 1.2, Stroke::new(1.0, Color32::WHITE));
                painter.circle_stroke(at, radius, Stroke::new(1.8, colour(p)));
            }
        }
    }
    let text = Color32::from_gray(60);
    if !stats.is_empty() {
        let height = 16.0 * stats.len() as f32 + 6.0;
        let width = stats.iter().map(|s| s.chars().count()).max().unwrap_or(0) as f32 * 7.2 + 12.0;
        let box_rect = Rect::from_min_size(rect.min + Vec2::splat(4.0), Vec2::new(width, height));
        painter.rect_filled(box_rect, 3.0, Color32::from_black_alpha(150));
        // A real label (not painted text), so screen readers and tests read it.
        ui.scope_builder(
            egui::UiBuilder::new()
                .max_rect(box_rect.shrink2(Vec2::new(6.0, 3.0)))
                .layout(egui::Layout::top_down(egui::Align::Min)),
            |ui| {
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(stats.join("\n"))
                            .font(FontId::monospace(11.5))
                            .color(Color32::WHITE),
                    )
                    .extend(),
                );
            },
        );
    }
    for (v, label) in [(-6.0f32, "-6"), (0.0, "0"), (6.0, "6")] {
        let x = rect.left() + (v + 6.0) / 12.0 * rect.width();
        painter.text(
            Pos2::new(
                x.clamp(rect.left() + 8.0, rect.right() - 8.0),
                rect.bottom() - 2.0,
            ),
            Align2::CENTER_BOTTOM,
            label,
            FontId::proportional(10.0),
            text,
        );
    }
}

fn thinned(points: &[Point]) -> impl Iterator<Item = &Point> {
    let every = points.len().div_ceil(MAX_DRAWN).max(1);
    points.iter().step_by(every)
}

/// Latest train and test loss and accuracy, one line each.
fn corner_stats(series: &RunSeries, regression: bool) -> Vec<String> {
    let acc = if regression { "fit" } else { "accuracy" };
    let train = series
        .steps
        .loss
        .last()
        .zip(series.steps.accuracy.last())
        .map(|(l, a)| format!("train  loss {l:.4}  {acc} {:.1}%", a * 100.0));
    let test = series
        .evals
        .iter()
        .rev()
        .find(|e| e.split != Split::Train)
        .map(|e| {
            format!(
                "test   loss {:.4}  {acc} {:.1}%",
                e.loss,
                e.accuracy * 100.0
            )
        });
    if train.is_none() && test.is_none() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "step {}, epoch {:.0}",
        series.last_step(),
        series.last_epoch()
    )];
    lines.extend(train);
    lines.extend(test);
    lines
}
