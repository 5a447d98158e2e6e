//! The Controller page of a controller study (`search: Controller(..)`): the
//! policy as a heatmap (the visited states x the actions, the greedy action
//! bold and outlined), every episode's lr trajectory coloured by its return
//! (dark purple lowest, yellow highest), the return per episode, and a table of
//! the episodes. Fresh after every episode, as the study writes its policy.
//!
//! Contract: draws the policy [`StudyData`] holds (read by the study's
//! background watcher); reads no files. Every number is also a label (cell
//! values with 3 decimals, returns with 4), so it can be read off the window.

use egui::{Color32, RichText, Ui};
use egui_plot::Plot;

use super::scale::ramp;
use super::state::StudyData;
use crate::gui::figure::plot::show_with_save_row;
use crate::gui::figure::{Figure, Marker, Series};
use crate::spec::Policy;

/// Draws the page.
pub fn controller_page(ui: &mut Ui, data: &StudyData) {
    let Some(p) = &data.policy else {
        ui.label("No episode learned yet: the policy appears when the first episode ends.");
        return;
    };
    let visited = p.visits.iter().filter(|r| r.iter().any(|&v| v > 0)).count();
    ui.label(format!(
        "Policy after {} episode(s): {visited} of {} states visited; a decision every {} steps \
         multiplies the lr by one of {:?}",
        p.history.len(),
        p.table.len(),
        p.decide_every_steps,
        p.actions
    ));
    egui::ScrollArea::vertical()
        .id_salt("controller_page")
        .show(ui, |ui| {
            egui::CollapsingHeader::new("Policy heatmap (state x action)")
                .id_salt("controller_heatmap")
                .default_open(true)
                .show(ui, |ui| heatmap(ui, p));
            ui.columns(2, |cols| {
                trajectories(&mut cols[0], p);
                returns(&mut cols[1], p);
            });
            episodes_table(ui, p);
        });
}

/// The visited states' rows of the table, coloured over the table's range.
fn heatmap(ui: &mut Ui, p: &Policy) {
    let (lo, hi) = p
        .table
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (hi - lo).max(1e-12);
    ui.label(format!(
        "value: {lo:.3} (dark) .. {hi:.3} (yellow); bold and outlined: the greedy action; \
         unvisited states keep their start value and are not listed"
    ));
    egui::ScrollArea::vertical()
        .id_salt("controller_heatmap_rows")
        .max_height(320.0)
        .show(ui, |ui| {
            egui::Grid::new("controller_heatmap_grid")
                .striped(false)
                .show(ui, |ui| {
                    ui.strong("state");
                    for a in &p.actions {
                        ui.strong(format!("lr x{a}"));
                    }
                    ui.strong("visits");
                    ui.end_row();
                    for (s, row) in p.table.iter().enumerate() {
                        let visits: u32 = p.visits[s].iter().sum();
                        if visits == 0 {
                            continue;
                        }
                        ui.label(p.state_label(s));
                        let greedy = p.greedy(s);
                        for (a, v) in row.iter().enumerate() {
                            cell(
                                ui,
                                *v,
                                ((v - lo) / span) as f32,
                                a == greedy,
                                p.visits[s][a],
                            );
                        }
                        ui.label(visits.to_string());
                        ui.end_row();
                    }
                });
        });
}

fn cell(ui: &mut Ui, value: f64, t: f32, greedy: bool, visits: u32) {
    let fill = ramp(t);
    let text_colour = if t > 0.6 {
        Color32::BLACK
    } else {
        Color32::WHITE
    };
    let mut text = RichText::new(format!("{value:.3}"))
        .color(text_colour)
        .monospace();
    if greedy {
        text = text.strong();
    }
    let stroke = if greedy {
        egui::Stroke::new(2.0, Color32::WHITE)
    } else {
        egui::Stroke::NONE
    };
    egui::Frame::new()
        .fill(fill)
        .stroke(stroke)
        .inner_margin(egui::Margin::symmetric(6, 2))
        .show(ui, |ui| ui.label(text))
        .response
        .on_hover_text(format!("taken {visits} time(s)"));
}

/// Each episode's (step, lr) as a staircase, coloured by its return.
fn trajectories(ui: &mut Ui, p: &Policy) {
    let (lo, hi) = return_range(p);
    let mut fig = Figure::new("lr per episode (colour: return)", "step", "lr");
    fig.legend = false;
    for h in &p.history {
        let mut points: Vec<[f64; 2]> = Vec::new();
        for w in h.lrs.windows(2) {
            let (s, lr) = (w[1].0 as f64, w[0].1);
            points.push([w[0].0 as f64, lr]);
            points.push([s, lr]);
        }
        if let Some(&(s, lr)) = h.lrs.last() {
            points.push([s as f64, lr]);
            points.push([(s + p.decide_every_steps) as f64, lr]);
        }
        let t = ((h.ret - lo) / (hi - lo).max(1e-12)) as f32;
        fig.series.push(Series::line(
            format!("episode {}", h.trial),
            ramp(t),
            1.5,
            points,
        ));
    }
    let plot = Plot::new("controller_lrs")
        .height(220.0)
        .x_axis_label("step")
        .y_axis_label("lr")
        .allow_scroll(false);
    show_with_save_row(ui, plot, fig, "controller_lrs");
}

/// The return of each episode, in order.
fn returns(ui: &mut Ui, p: &Policy) {
    let points: Vec<[f64; 2]> = p.history.iter().map(|h| [h.trial as f64, h.ret]).collect();
    let mut fig = Figure::new("return per episode", "episode", "return");
    fig.legend = false;
    let colour = Color32::from_rgb(80, 160, 255);
    fig.series
        .push(Series::line("return", colour, 1.5, points.clone()));
    fig.series.push(Series::markers(
        "return",
        colour,
        3.0,
        true,
        Marker::Circle,
        points,
    ));
    let plot = Plot::new("controller_returns")
        .height(220.0)
        .x_axis_label("episode")
        .y_axis_label("return")
        .allow_scroll(false);
    show_with_save_row(ui, plot, fig, "controller_returns");
}

fn return_range(p: &Policy) -> (f64, f64) {
    p.history
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), h| {
            (a.min(h.ret), b.max(h.ret))
        })
}

/// One row per episode: return, exploration, lr changes, final lr.
fn episodes_table(ui: &mut Ui, p: &Policy) {
    egui::CollapsingHeader::new("Episodes")
        .id_salt("controller_episodes")
        .default_open(true)
        .show(ui, |ui| {
            egui::Grid::new("controller_episodes_grid")
                .striped(true)
                .show(ui, |ui| {
                    for head in ["episode", "return", "epsilon", "lr changes", "final lr"] {
                        ui.strong(head);
                    }
                    ui.end_row();
                    for h in &p.history {
                        let changes = h.lrs.windows(2).filter(|w| w[0].1 != w[1].1).count();
                        ui.label(format!("{:04}", h.trial));
                        ui.label(format!("{:.4}", h.ret));
                        ui.label(format!("{:.2}", h.epsilon));
                        ui.label(changes.to_string());
                        ui.label(format!("{:e}", h.lrs.last().map_or(0.0, |l| l.1)));
                        ui.end_row();
                    }
                });
        });
}
