//! The trials table: id, state, every explored path, every objective, epochs and
//! wall seconds, whether it is on the Pareto front (two or more objectives), one
//! row per trial; click a header to sort by it (again to flip).
//!
//! Contract: draws the rows in the order [`TableState::order`] computed when the
//! trials or the sort changed (not per frame); clicking any cell of a trial's row asks to show
//! its run in Curves, "open" asks to load its exact experiment into the editor.

use egui::{RichText, Ui};

use super::StudyAction;
use super::scale::short;
use super::state::StudyData;
use crate::study::Trial;

/// A column to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Column {
    /// Trial number.
    #[default]
    Id,
    /// State name.
    State,
    /// The n-th explored path.
    Param(usize),
    /// The n-th objective.
    Objective(usize),
    /// Epochs trained.
    Epochs,
    /// Wall seconds.
    Wall,
}

/// What the user set on the table.
#[derive(Debug, Default)]
pub struct TableState {
    /// Sorted by.
    pub sort: Column,
    /// Largest first.
    pub descending: bool,
    /// Trial indices in display order, and what they were computed from.
    order: Vec<usize>,
    key: Option<(u64, Column, bool)>,
}

impl TableState {
    /// Trial ids in display order (recomputed when the data or the sort changed).
    pub fn order(&mut self, data: &StudyData) -> &[usize] {
        let key = (data.generation, self.sort, self.descending);
        if self.key != Some(key) {
            self.order = sorted(
                &data.trials,
                &data.derived.paths,
                self.sort,
                self.descending,
            );
            self.key = Some(key);
        }
        &self.order
    }

    /// Sorts by `c` (flips the direction when it already is).
    pub fn click(&mut self, c: Column) {
        if self.sort == c {
            self.descending = !self.descending;
        } else {
            self.sort = c;
            self.descending = false;
        }
    }
}

/// Trial indices sorted by `column`; missing values last, ties by id.
pub fn sorted(trials: &[Trial], paths: &[String], column: Column, descending: bool) -> Vec<usize> {
    #[derive(PartialEq, PartialOrd)]
    enum Key {
        Num(f64),
        Text(String),
    }
    let key = |t: &Trial| -> Option<Key> {
        match column {
            Column::Id => Some(Key::Num(t.id as f64)),
            Column::State => Some(Key::Text(t.state.name().to_string())),
            Column::Param(i) => {
                let v = t.params.get(paths.get(i)?)?;
                Some(
                    v.trim()
                        .parse::<f64>()
                        .map_or_else(|_| Key::Text(v.clone()), Key::Num),
                )
            }
            Column::Objective(i) => t.values.get(i).copied().flatten().map(Key::Num),
            Column::Epochs => Some(Key::Num(t.epochs)),
            Column::Wall => Some(Key::Num(t.wall_seconds)),
        }
    };
    let mut rows: Vec<(usize, Option<Key>)> = trials
        .iter()
        .enumerate()
        .map(|(i, t)| (i, key(t)))
        .collect();
    rows.sort_by(|(ia, a), (ib, b)| {
        use std::cmp::Ordering;
        let by = match (a, b) {
            (Some(a), Some(b)) => {
                let o = a.partial_cmp(b).unwrap_or(Ordering::Equal);
                if descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by.then(ia.cmp(ib))
    });
    rows.into_iter().map(|(i, _)| i).collect()
}

/// A parameter value as shown: numbers shortened, quotes dropped.
pub fn show_value(v: &str) -> String {
    match v.trim().parse::<f64>() {
        Ok(x) => short(x),
        Err(_) => v.trim_matches('"').to_string(),
    }
}

fn header(ui: &mut Ui, state: &TableState, c: Column, text: &str) -> bool {
    let arrow = match (state.sort == c, state.descending) {
        (false, _) => "",
        (true, false) => " ⏶",
        (true, true) => " ⏷",
    };
    ui.add(egui::Button::new(RichText::new(format!("{text}{arrow}")).strong()).frame(false))
        .on_hover_text("Sort by this column (click again to reverse).")
        .clicked()
}

/// Draws the table.
pub fn trials_table(ui: &mut Ui, data: &StudyData, state: &mut TableState) -> Option<StudyAction> {
    let mut action = None;
    let objectives = data.objectives();
    let paths = &data.derived.paths;
    let mut clicked = None;
    let order = state.order(data).to_vec();
    // Every objective together (the Pareto page picks two of them).
    let front: Vec<usize> = if objectives.len() >= 2 {
        crate::study::pareto_front(&data.trials, objectives)
    } else {
        Vec::new()
    };
    egui::ScrollArea::both().id_salt("study_table").show(ui, |ui| {
        egui::Grid::new("study_table_grid")
            .striped(true)
            .num_columns(paths.len() + objectives.len() + 7)
            .show(ui, |ui| {
                let mut heads: Vec<(Column, String)> = vec![(Column::Id, "id".into()), (Column::State, "state".into())];
                heads.extend(paths.iter().enumerate().map(|(i, p)| (Column::Param(i), p.clone())));
                heads.extend(objectives.iter().enumerate().map(|(i, o)| (Column::Objective(i), o.label())));
                heads.push((Column::Epochs, "epochs".into()));
                heads.push((Column::Wall, "wall s".into()));
                for (c, text) in &heads {
                    if header(ui, state, *c, text) {
                        clicked = Some(*c);
                    }
                }
                // PBT: whom each member copied, and when (not sortable).
                let pbt = data.trials.iter().any(|t| !t.lineage.is_empty());
                if objectives.len() >= 2 {
                    ui.label(RichText::new("Pareto").strong()).on_hover_text(
                        "★: on the Pareto front of all the objectives (no other trial is at least as good on every one and better on one).",
                    );
                }
                if pbt {
                    ui.label("copied").on_hover_text(
                        "Population-based training: trial@epoch for each time this member took a better member's weights and settings.",
                    );
                }
                ui.label("");
                ui.end_row();
                for &i in &order {
                    let Some(t) = data.trials.get(i) else { continue };
                    let color = data.derived.colors.trial_color(t);
                    // Any cell of the row shows the trial's run (not only its id).
                    let mut row_clicked = false;
                    let mut cell = |ui: &mut Ui, text: RichText| {
                        let r = ui
                            .add(egui::Label::new(text).sense(egui::Sense::click()))
                            .on_hover_text("Show this trial's run in Curves.")
                            .on_hover_cursor(egui::CursorIcon::PointingHand);
                        row_clicked |= r.clicked();
                        r
                    };
                    cell(ui, RichText::new(format!("{:04}", t.id)).color(color));
                    let state_label = cell(ui, RichText::new(t.state.name()));
                    if let crate::study::TrialState::Failed(reason) = &t.state {
                        state_label.on_hover_text(reason);
                    }
                    for p in paths {
                        cell(ui, RichText::new(t.params.get(p).map_or_else(String::new, |v| show_value(v))));
                    }
                    for k in 0..objectives.len() {
                        cell(ui, RichText::new(t.values.get(k).copied().flatten().map_or_else(|| "—".into(), short)));
                    }
                    cell(ui, RichText::new(short(t.epochs)));
                    cell(ui, RichText::new(format!("{:.1}", t.wall_seconds)));
                    if objectives.len() >= 2 {
                        let mark = if front.contains(&t.id) { "★" } else { "" };
                        cell(ui, RichText::new(mark));
                    }
                    if pbt {
                        let copied: Vec<String> =
                            t.lineage.iter().map(|(epochs, from)| format!("{from}@{epochs}")).collect();
                        cell(ui, RichText::new(copied.join(" ")));
                    }
                    if row_clicked {
                        action = Some(StudyAction::ShowRun(t.id));
                    }
                    if ui
                        .small_button("open")
                        .on_hover_text("Open as experiment: load this trial's exact experiment into the editor (unsaved).")
                        .clicked()
                    {
                        action = Some(StudyAction::OpenExperiment(t.id));
                    }
                    ui.end_row();
                }
            });
    });
    if let Some(c) = clicked {
        state.click(c);
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::TrialState;

    fn trial(id: usize, wall: f64, value: Option<f64>, lr: &str) -> Trial {
        // Through the journal, so new Trial fields need no change here.
        let params = [("lr".to_string(), lr.to_string())].into();
        let mut t =
            crate::study::replay(&[crate::study::Entry::Sampled { id: 0, params }]).remove(0);
        t.id = id;
        t.state = TrialState::Finished;
        t.values = vec![value];
        t.epochs = 1.0;
        t.wall_seconds = wall;
        t
    }

    #[test]
    fn columns_sort_both_ways_with_missing_values_last() {
        let t = vec![
            trial(0, 3.0, Some(0.5), "0.01"),
            trial(1, 1.0, None, "0.001"),
            trial(2, 2.0, Some(0.9), "0.1"),
        ];
        let paths = vec!["lr".to_string()];
        let cases = [
            (Column::Wall, false, vec![1, 2, 0]),
            (Column::Wall, true, vec![0, 2, 1]),
            (Column::Objective(0), false, vec![0, 2, 1]),
            (Column::Objective(0), true, vec![2, 0, 1]),
            (Column::Param(0), false, vec![1, 0, 2]),
            (Column::Param(7), false, vec![0, 1, 2]),
        ];
        for (c, desc, want) in cases {
            assert_eq!(sorted(&t, &paths, c, desc), want, "{c:?} descending={desc}");
        }
    }
}
