//! The maze's settings in the dataset section: its layout (generated from a seed,
//! or drawn by hand in the Maze tab), rewards, slipperiness, episode length and how
//! a state is shown to a network.
//!
//! Contract: edits the [`GridworldSpec`] in place inside the dataset section and
//! returns true when something changed; every knob has a tooltip.

use egui::{ComboBox, DragValue, Ui};

use super::hyperparams::row;
use crate::data::maze::{MAX_SIDE, MIN_SIDE};
use crate::spec::{EncodingSpec, GeneratedMaze, GridworldSpec, LayoutSpec, MazeAlgorithm};

/// Draws the maze rows.
pub fn maze_rows(ui: &mut Ui, g: &mut GridworldSpec) -> bool {
    let mut changed = false;
    egui::Grid::new("maze_grid").num_columns(2).spacing([8.0, 6.0]).show(ui, |ui| {
        match &mut g.layout {
            LayoutSpec::Generated(m) => changed |= generated_rows(ui, m),
            LayoutSpec::Rows(rows) => {
                let size = format!("drawn by hand, {} x {}", rows.len(), rows.first().map_or(0, |r| r.chars().count()));
                let mut regenerate = false;
                ui.label("Layout");
                ui.horizontal(|ui| {
                    ui.label(size);
                    regenerate = ui.button("generate instead").on_hover_text("Replace the drawing with a generated maze.").clicked();
                });
                ui.end_row();
                if regenerate {
                    g.layout = LayoutSpec::Generated(GeneratedMaze::default());
                    changed = true;
                }
            }
        }
        let r = &mut g.rewards;
        changed |= row(ui, "Reward per move", "Usually a small negative number: every move costs, so shorter paths score higher.", |ui| {
            ui.add(DragValue::new(&mut r.step).clamp_existing_to_range(false).range(-10.0..=10.0).speed(0.001))
        });
        changed |= row(ui, "Reward at goal", "Given when the agent reaches G; the episode ends.", |ui| {
            ui.add(DragValue::new(&mut r.goal).clamp_existing_to_range(false).range(-100.0..=100.0).speed(0.01))
        });
        changed |= row(ui, "Reward in pit", "Given when the agent steps into a pit X; the episode ends.", |ui| {
            ui.add(DragValue::new(&mut r.pit).clamp_existing_to_range(false).range(-100.0..=100.0).speed(0.01))
        });
        changed |= row(ui, "Slip chance", "On slippery cells ~, the chance that a move goes in a random direction instead.", |ui| {
            ui.add(DragValue::new(&mut g.slip).clamp_existing_to_range(false).range(0.0..=1.0).speed(0.01))
        });
        changed |= row(ui, "Moves per episode", "An episode that has not ended after this many moves starts over (default: 4 x cells).", |ui| {
            let mut on = g.max_steps.is_some();
            let mut r = ui.checkbox(&mut on, "");
            if r.changed() {
                g.max_steps = on.then_some(1000);
            }
            if let Some(n) = &mut g.max_steps {
                let drag = ui.add(DragValue::new(n).clamp_existing_to_range(false).range(1..=10_000_000));
                let unit = ui.label("moves");
                if drag.labelled_by(unit.id).changed() {
                    r.mark_changed();
                }
            }
            r
        });
        changed |= encoding_row(ui, &mut g.encoding);
    });
    changed
}

fn generated_rows(ui: &mut Ui, m: &mut GeneratedMaze) -> bool {
    let sides = MIN_SIDE..=MAX_SIDE.min(128);
    let mut changed = row(
        ui,
        "Rows",
        "Maze height in cells, walls included (odd sizes use every row).",
        |ui| {
            ui.add(
                DragValue::new(&mut m.rows)
                    .clamp_existing_to_range(false)
                    .range(sides.clone()),
            )
        },
    );
    changed |= row(
        ui,
        "Columns",
        "Maze width in cells, walls included.",
        |ui| {
            ui.add(
                DragValue::new(&mut m.cols)
                    .clamp_existing_to_range(false)
                    .range(sides),
            )
        },
    );
    changed |= row(
        ui,
        "Algorithm",
        "DFS carves long winding corridors; Prim many short dead ends.",
        |ui| {
            let mut r = ui.radio(m.algorithm == MazeAlgorithm::Dfs, "DFS");
            if r.clicked() {
                m.algorithm = MazeAlgorithm::Dfs;
                r.mark_changed();
            }
            if ui
                .radio(m.algorithm == MazeAlgorithm::Prim, "Prim")
                .clicked()
            {
                m.algorithm = MazeAlgorithm::Prim;
                r.mark_changed();
            }
            r
        },
    );
    changed |= row(
        ui,
        "Extra loops",
        "Share of walls knocked down after carving: 0 = exactly one path between cells.",
        |ui| {
            ui.add(
                DragValue::new(&mut m.extra_loops)
                    .clamp_existing_to_range(false)
                    .range(0.0..=1.0)
                    .speed(0.01),
            )
        },
    );
    changed |= row(
        ui,
        "Maze seed",
        "Fixes the maze; off = use the experiment's seed.",
        |ui| {
            let mut on = m.seed.is_some();
            let mut r = ui.checkbox(&mut on, "");
            if r.changed() {
                m.seed = on.then_some(1);
            }
            if let Some(s) = &mut m.seed {
                let drag = ui.add(DragValue::new(s).clamp_existing_to_range(false));
                let name = ui.label("seed");
                if drag.labelled_by(name.id).changed() {
                    r.mark_changed();
                }
            }
            r
        },
    );
    changed
}

fn encoding_row(ui: &mut Ui, e: &mut EncodingSpec) -> bool {
    let name = |e: &EncodingSpec| match e {
        EncodingSpec::OneHot => "one-hot cell",
        EncodingSpec::Coordinates => "(row, col)",
        EncodingSpec::LocalView { .. } => "local view",
    };
    let mut changed = false;
    let label = ui
        .label("State for DQN")
        .on_hover_text("What the Q-network sees of the agent's position.");
    ComboBox::from_id_salt("encoding")
        .selected_text(name(e))
        .show_ui(ui, |ui| {
            let options = [
                (EncodingSpec::OneHot, "One input per free cell: exact but large."),
                (EncodingSpec::Coordinates, "Two inputs, row and column scaled to [0, 1]: small, but the network must learn the walls."),
                (EncodingSpec::LocalView { radius: 2 }, "The cells around the agent: what a robot would see."),
            ];
            for (value, help) in options {
                let same = std::mem::discriminant(e) == std::mem::discriminant(&value);
                if ui.selectable_label(same, name(&value)).on_hover_text(help).clicked() && !same {
                    *e = value;
                    changed = true;
                }
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    if let EncodingSpec::LocalView { radius } = e {
        changed |= row(ui, "  radius", "Cells seen in each direction.", |ui| {
            ui.add(
                DragValue::new(radius)
                    .clamp_existing_to_range(false)
                    .range(1..=10),
            )
        });
    }
    changed
}
