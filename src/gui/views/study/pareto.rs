//! The Pareto view: pick two objectives, scatter every finished (or stopped) trial
//! on them, and highlight and connect the trials no other beats on both.
//!
//! Contract: the front is [`crate::study::pareto_front`] over the two picked
//! objectives, recomputed only when the trials or the pick change.

use egui::{Color32, Ui};
use egui_plot::Plot;

use super::scale::short;
use super::state::StudyData;
use crate::gui::figure::plot::show_with_save_row;
use crate::gui::figure::{Figure, Marker, Series};
use crate::study::{Trial, pareto_front};

/// The two objectives picked, and the front computed for them.
#[derive(Debug, Default)]
pub struct ParetoState {
    /// Objective on x.
    pub x: usize,
    /// Objective on y.
    pub y: usize,
    /// Trial ids on the front, sorted along x, and what they were computed from.
    front: Vec<(usize, [f64; 2])>,
    key: Option<(u64, usize, usize)>,
}

const FRONT: Color32 = Color32::from_rgb(255, 150, 60);

/// The trials' values on objectives `x` and `y` (finished or stopped, both measured).
fn points(trials: &[Trial], x: usize, y: usize) -> Vec<(usize, [f64; 2])> {
    trials
        .iter()
        .filter(|t| matches!(t.state.name(), "finished" | "stopped"))
        .filter_map(|t| {
            let a = t.values.get(x).copied().flatten()?;
            let b = t.values.get(y).copied().flatten()?;
            Some((t.id, [a, b]))
        })
        .collect()
}

impl ParetoState {
    fn refresh(&mut self, data: &StudyData) {
        let key = (data.generation, self.x, self.y);
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        let objectives = data.objectives();
        let (Some(ox), Some(oy)) = (objectives.get(self.x), objectives.get(self.y)) else {
            self.front.clear();
            return;
        };
        // Project every trial on the two objectives, then ask for the front.
        let projected: Vec<Trial> = data
            .trials
            .iter()
            .map(|t| Trial {
                values: vec![
                    t.values.get(self.x).copied().flatten(),
                    t.values.get(self.y).copied().flatten(),
                ],
                ..t.clone()
            })
            .collect();
        let ids = pareto_front(&projected, &[*ox, *oy]);
        let mut front: Vec<(usize, [f64; 2])> = points(&data.trials, self.x, self.y)
            .into_iter()
            .filter(|(id, _)| ids.contains(id))
            .collect();
        front.sort_by(|a, b| a.1[0].total_cmp(&b.1[0]));
        self.front = front;
    }

    /// Trial ids on the front (after the last draw).
    pub fn front_ids(&self) -> Vec<usize> {
        self.front.iter().map(|(id, _)| *id).collect()
    }
}

/// What hovering a point says: the trial it is, and its two values.
fn hover_text(
    all: &[(usize, [f64; 2])],
    front: &[(usize, [f64; 2])],
    x_label: &str,
    y_label: &str,
    pos: &egui_plot::HoverPosition<'_>,
) -> Option<String> {
    let egui_plot::HoverPosition::NearDataPoint {
        plot_name, index, ..
    } = pos
    else {
        return None;
    };
    let list = if *plot_name == "front" { front } else { all };
    let (id, [x, y]) = list.get(*index)?;
    let on = if front.iter().any(|(f, _)| f == id) {
        " (on the front)"
    } else {
        ""
    };
    Some(format!(
        "trial {id:04}{on}\n{x_label} = {}\n{y_label} = {}",
        short(*x),
        short(*y)
    ))
}

/// Draws the pickers and the scatter.
pub fn pareto_view(ui: &mut Ui, data: &StudyData, state: &mut ParetoState) {
    let objectives = data.objectives();
    if objectives.len() < 2 {
        ui.label("The Pareto view needs a study with at least two objectives.");
        return;
    }
    if state.x == state.y {
        state.y = usize::from(state.x == 0);
    }
    ui.horizontal(|ui| {
        for (axis, pick) in [("x", &mut state.x), ("y", &mut state.y)] {
            egui::ComboBox::from_label(axis)
                .selected_text(
                    objectives
                        .get(*pick)
                        .map_or_else(String::new, |o| o.label()),
                )
                .show_ui(ui, |ui| {
                    for (i, o) in objectives.iter().enumerate() {
                        ui.selectable_value(pick, i, o.label());
                    }
                });
        }
    });
    state.x = state.x.min(objectives.len() - 1);
    state.y = state.y.min(objectives.len() - 1);
    state.refresh(data);
    let all = points(&data.trials, state.x, state.y);
    ui.label(format!(
        "{} trials measured on both; {} on the front (no other trial is better on both).",
        all.len(),
        state.front.len()
    ));
    let (x_label, y_label) = (objectives[state.x].label(), objectives[state.y].label());
    let mut fig = Figure::new(
        format!("Pareto front: {y_label} against {x_label}"),
        x_label.clone(),
        y_label.clone(),
    );
    let trials: Vec<[f64; 2]> = all.iter().map(|(_, p)| *p).collect();
    let front: Vec<[f64; 2]> = state.front.iter().map(|(_, p)| *p).collect();
    fig.series = vec![
        Series::markers(
            "trials",
            Color32::from_gray(160),
            3.5,
            true,
            Marker::Circle,
            trials,
        ),
        Series::line("front", FRONT, 2.0, front.clone()),
        Series::markers("front", FRONT, 6.0, true, Marker::Diamond, front),
    ];
    let front_ids = state.front.clone();
    // Leave room under the plot for its save row (it sat behind the status bar).
    let height = (ui.available_height() - 44.0).max(150.0);
    let plot = Plot::new("study_pareto")
        .height(height)
        .x_axis_label(x_label.clone())
        .y_axis_label(y_label.clone())
        .allow_scroll(false)
        .label_formatter(move |pos| hover_text(&all, &front_ids, &x_label, &y_label, pos));
    show_with_save_row(ui, plot, fig, "study_pareto");
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_plot::{HoverPosition, PlotPoint};

    #[test]
    fn hovering_a_point_names_its_trial() {
        let all = vec![(3, [0.5, 100.0]), (7, [0.9, 300.0])];
        let front = vec![(7, [0.9, 300.0])];
        let near = |name: &'static str, index| HoverPosition::NearDataPoint {
            plot_name: name,
            position: PlotPoint::new(0.0, 0.0),
            index,
        };
        let t = hover_text(&all, &front, "acc", "params", &near("trials", 0)).expect("text");
        assert!(t.starts_with("trial 0003\n"), "{t}");
        let t = hover_text(&all, &front, "acc", "params", &near("front", 0)).expect("text");
        assert!(t.starts_with("trial 0007 (on the front)"), "{t}");
        assert!(t.contains("acc = ") && t.contains("params = "), "{t}");
        assert_eq!(hover_text(&all, &front, "a", "b", &near("trials", 9)), None);
    }
}
