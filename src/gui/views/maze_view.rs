//! The maze tab: the grid drawn with the painter, painted with the mouse while no
//! run is going, and — once a run reports — its Q-values as a heatmap (per cell,
//! or per action as four triangles), the greedy policy as arrows, the greedy path
//! and the solver's optimal path, and an agent that walks the current policy.
//!
//! Contract: edits change only the experiment's layout (drawn cells become
//! `LayoutSpec::Rows`); overlays are drawn from the run's own maze
//! (`EnvInfo::layout`) so they always match the cells they describe.

use std::time::Instant;

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Shape, Stroke, Ui, Vec2};

use crate::data::maze::{ACTION_NAMES, ACTIONS, Cell, Maze, MazeError, maze_for};
use crate::events::PolicySnapshot;
use crate::gui::state::run_state::RunSeries;
use crate::spec::{DatasetSpec, Experiment, GeneratedMaze, LayoutSpec};

/// What the learner toggled on the maze (kept while the app runs).
pub struct MazeState {
    /// Cell kind painted by a click.
    pub brush: Cell,
    /// Colour cells by their best Q-value.
    pub heatmap: bool,
    /// Split each cell into four triangles, one per action.
    pub triangles: bool,
    /// Arrows of the greedy action.
    pub arrows: bool,
    /// The greedy path and the optimal one.
    pub paths: bool,
    /// Walk the current policy from the start.
    pub animate: bool,
    /// Moves per second of the walking agent.
    pub speed: f32,
    walk_started: Option<Instant>,
    cache: Option<((LayoutSpec, u64), Result<Maze, MazeError>)>,
}

impl Default for MazeState {
    fn default() -> Self {
        Self {
            brush: Cell::Wall,
            heatmap: true,
            triangles: false,
            arrows: true,
            paths: true,
            animate: false,
            speed: 6.0,
            walk_started: None,
            cache: None,
        }
    }
}

impl MazeState {
    /// The editor's maze, rebuilt only when the layout or seed changed.
    fn editor_maze(&mut self, exp: &Experiment) -> Option<Result<Maze, MazeError>> {
        let DatasetSpec::Gridworld(g) = &exp.dataset else {
            return None;
        };
        let key = (g.layout.clone(), exp.seed);
        if self.cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let maze = maze_for(&g.layout, exp.seed);
            self.cache = Some((key, maze));
        }
        self.cache.as_ref().map(|(_, m)| m.clone())
    }
}

/// Draws the tab; returns true when the learner changed the maze.
pub fn maze_tab(
    ui: &mut Ui,
    state: &mut MazeState,
    exp: &mut Experiment,
    series: &RunSeries,
    live: bool,
) -> bool {
    let Some(editor) = state.editor_maze(exp) else {
        ui.label("This experiment has no maze: pick \"Gridworld maze\" as the data.");
        return false;
    };
    let mut changed = toolbar(ui, state, exp, live);
    let Some((maze, overlays)) = shown_maze(ui, &editor, series, live) else {
        return changed;
    };
    let policy = series
        .policy
        .as_ref()
        .filter(|p| overlays && p.rows == maze.rows() && p.cols == maze.cols());
    let avail = ui.available_size() - Vec2::new(0.0, 40.0);
    let side = (avail.x / maze.cols() as f32)
        .min(avail.y / maze.rows() as f32)
        .clamp(3.0, 48.0);
    let size = Vec2::new(side * maze.cols() as f32, side * maze.rows() as f32);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let grid = Grid { rect, side };
    let painter = ui.painter_at(rect);
    let q_scale = policy.map_or(1.0, |p| {
        p.q.iter().flatten().fold(1e-6f32, |m, v| m.max(v.abs()))
    });
    for r in 0..maze.rows() {
        for c in 0..maze.cols() {
            let q = policy.map(|p| p.q[r * maze.cols() + c]);
            paint_cell(&painter, &grid, state, (r, c), maze.get(r, c), q, q_scale);
        }
    }
    if let (Some(env), true) = (&series.env, state.paths && overlays) {
        let pts: Vec<Pos2> = env.optimal_path.iter().map(|&p| grid.centre(p)).collect();
        painter.add(Shape::dashed_line(
            &pts,
            Stroke::new(2.0, Color32::from_gray(90)),
            side * 0.3,
            side * 0.2,
        ));
    }
    if let (Some(p), true) = (policy, state.paths) {
        paint_greedy_path(&painter, &grid, p);
    }
    walk(ui, &painter, &grid, state, policy);
    if let Some((r, c)) = response
        .hover_pos()
        .and_then(|pos| grid.cell_at(pos, &maze))
    {
        let mut text = format!("row {r}, column {c}: {:?}", maze.get(r, c));
        if let Some(p) = policy {
            let q = p.q[r * maze.cols() + c];
            for (name, v) in ACTION_NAMES.iter().zip(q) {
                text.push_str(&format!("\nQ({name}) = {v:.4}"));
            }
        }
        response.clone().on_hover_text_at_pointer(text);
    }
    // Painting while stopped.
    if !live
        && (response.clicked() || response.dragged())
        && let Some(pos) = response.interact_pointer_pos()
        && let Ok(mut m) = editor
        && let Some((r, c)) = grid.cell_at(pos, &m)
        && m.get(r, c) != state.brush
    {
        m.set(r, c, state.brush);
        if let DatasetSpec::Gridworld(g) = &mut exp.dataset {
            g.layout = LayoutSpec::Rows(m.to_rows());
            changed = true;
        }
    }
    if let Some(p) = policy {
        captions(ui, state, p, q_scale);
    }
    changed
}

/// The maze to draw and whether the run's overlays belong on it: the run's
/// maze carries them; the editor's is shown when it differs (edited since) and
/// no run is going. None (with the reason shown) when the editor's maze is
/// invalid.
fn shown_maze(
    ui: &mut Ui,
    editor: &Result<Maze, MazeError>,
    series: &RunSeries,
    live: bool,
) -> Option<(Maze, bool)> {
    let run_maze = series
        .env
        .as_ref()
        .and_then(|e| Maze::parse(&e.layout).ok());
    let (maze, overlays) = match (editor, run_maze) {
        (_, Some(m)) if live => (m, true),
        (Ok(e), Some(m)) if *e == m => (m, true),
        (Ok(e), _) => (e.clone(), false),
        (Err(msg), _) => {
            ui.colored_label(
                crate::gui::editor::model_editor::RED,
                format!("The maze is not valid: {msg}"),
            );
            return None;
        }
    };
    if !overlays && series.env.is_some() {
        ui.weak(
            "The maze was edited since the last run: its Q-values are hidden until the next run.",
        );
    }
    Some((maze, overlays))
}

/// Where the maze's cells are on the screen.
struct Grid {
    rect: Rect,
    /// Side of one cell, in points.
    side: f32,
}

impl Grid {
    fn cell_rect(&self, r: usize, c: usize) -> Rect {
        Rect::from_min_size(
            self.rect.min + Vec2::new(c as f32 * self.side, r as f32 * self.side),
            Vec2::splat(self.side),
        )
    }

    fn centre(&self, (r, c): (u16, u16)) -> Pos2 {
        self.cell_rect(r as usize, c as usize).center()
    }

    /// The (row, column) of `maze` under `pos`, if any.
    fn cell_at(&self, pos: Pos2, maze: &Maze) -> Option<(usize, usize)> {
        let (r, c) = (
            ((pos.y - self.rect.min.y) / self.side) as usize,
            ((pos.x - self.rect.min.x) / self.side) as usize,
        );
        (r < maze.rows() && c < maze.cols()).then_some((r, c))
    }
}

/// One cell: its kind's colour, or its Q-values as a heatmap (one colour, or
/// four triangles), its symbol, and the greedy arrow.
fn paint_cell(
    painter: &egui::Painter,
    grid: &Grid,
    state: &MazeState,
    (r, c): (usize, usize),
    cell: Cell,
    q: Option<[f32; 4]>,
    q_scale: f32,
) {
    let side = grid.side;
    let cr = grid.cell_rect(r, c);
    let open = !matches!(cell, Cell::Wall);
    match q {
        Some(q) if open && !cell.is_terminal() && state.triangles => {
            let (tl, tr, bl, br) = (
                cr.left_top(),
                cr.right_top(),
                cr.left_bottom(),
                cr.right_bottom(),
            );
            let m = cr.center();
            for (a, pts) in [[tl, tr, m], [tr, br, m], [br, bl, m], [bl, tl, m]]
                .into_iter()
                .enumerate()
            {
                painter.add(Shape::convex_polygon(
                    pts.to_vec(),
                    diverging(q[a] / q_scale),
                    Stroke::NONE,
                ));
            }
        }
        Some(q) if open && !cell.is_terminal() && state.heatmap => {
            let best = q.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            painter.rect_filled(cr, 0.0, diverging(best / q_scale));
        }
        _ => {
            painter.rect_filled(cr, 0.0, cell_colour(cell));
        }
    }
    if matches!(cell, Cell::Start | Cell::Goal | Cell::Pit | Cell::Slippery) && side >= 10.0 {
        if q.is_some() && !cell.is_terminal() {
            painter.rect_stroke(
                cr.shrink(1.0),
                0.0,
                (1.5, cell_colour(cell)),
                egui::StrokeKind::Inside,
            );
        }
        let label = cell.symbol().to_string();
        painter.text(
            cr.center(),
            Align2::CENTER_CENTER,
            label,
            FontId::monospace(side * 0.45),
            Color32::BLACK,
        );
    }
    if let Some(q) = q
        && state.arrows
        && open
        && !cell.is_terminal()
        && side >= 8.0
        && q.iter().any(|&v| v != 0.0)
    {
        let a = crate::data::maze::argmax(&q);
        let (dr, dc) = ACTIONS[a];
        let dir = Vec2::new(dc as f32, dr as f32) * side * 0.3;
        painter.arrow(
            cr.center() - dir * 0.5,
            dir,
            Stroke::new((side * 0.06).max(1.0), Color32::from_black_alpha(170)),
        );
    }
}

/// The greedy path: one colour whatever the run's state, with a dark rim, so it
/// stands out on red, white and blue cells alike (whether it reaches G is
/// written under the maze, not coded in a colour).
fn paint_greedy_path(painter: &egui::Painter, grid: &Grid, p: &PolicySnapshot) {
    let pts: Vec<Pos2> = p.greedy_path.iter().map(|&p| grid.centre(p)).collect();
    let width = (grid.side * 0.15).clamp(1.5, 5.0);
    painter.add(Shape::line(
        pts.clone(),
        Stroke::new(width + 2.0, Color32::from_gray(20)),
    ));
    painter.add(Shape::line(pts, Stroke::new(width, GREEDY)));
}

/// The agent walking the greedy path, when animated.
fn walk(
    ui: &Ui,
    painter: &egui::Painter,
    grid: &Grid,
    state: &mut MazeState,
    policy: Option<&PolicySnapshot>,
) {
    let Some(p) = policy.filter(|_| state.animate) else {
        state.walk_started = None;
        return;
    };
    let started = *state.walk_started.get_or_insert_with(Instant::now);
    let moves = p.greedy_path.len().max(1);
    let walked = started.elapsed().as_secs_f32() * state.speed;
    let at = walked as usize % (moves + 2);
    if let Some(&cell) = p.greedy_path.get(at.min(moves - 1)) {
        let (centre, radius) = (grid.centre(cell), grid.side * 0.32);
        painter.circle_filled(centre, radius, Color32::from_rgb(250, 220, 40));
        painter.circle_stroke(centre, radius, Stroke::new(1.5, Color32::BLACK));
    }
    // The next frame when the agent moves on, not every frame in between.
    ui.ctx()
        .request_repaint_after(next_move(walked, state.speed));
}

/// How long until the walk `walked` moves into (a fractional count of moves at
/// `speed` moves a second) reaches its next whole move.
fn next_move(walked: f32, speed: f32) -> std::time::Duration {
    let left = (walked.floor() + 1.0 - walked).max(0.0) / speed.max(1e-3);
    std::time::Duration::from_secs_f32(left).max(std::time::Duration::from_millis(1))
}

/// Under the maze: the colour scale, the paths' legend, and which moment of
/// training the picture is (snapshots arrive at the window's frame rate, the
/// last one when the run ends).
fn captions(ui: &mut Ui, state: &MazeState, p: &PolicySnapshot, q_scale: f32) {
    let what = if state.triangles {
        "Q-value of a move"
    } else {
        "best Q-value of a cell"
    };
    legend(ui, q_scale, what);
    if state.paths {
        paths_legend(ui, p.reached_goal);
    }
    ui.weak(format!(
        "Q-values after episode {} ({} moves)",
        p.episode, p.env_steps
    ));
}

/// The greedy path's colour: a bright green that none of the heatmap's
/// red-white-blue cells share.
const GREEDY: Color32 = Color32::from_rgb(40, 220, 90);

/// What the two lines on the maze are.
fn paths_legend(ui: &mut Ui, reached_goal: bool) {
    ui.horizontal_wrapped(|ui| {
        let (rect, _) = ui.allocate_exact_size(Vec2::new(28.0, 12.0), Sense::hover());
        let y = rect.center().y;
        let (a, b) = (Pos2::new(rect.min.x, y), Pos2::new(rect.max.x, y));
        ui.painter()
            .line_segment([a, b], Stroke::new(5.0, Color32::from_gray(20)));
        ui.painter().line_segment([a, b], Stroke::new(3.0, GREEDY));
        let greedy = if reached_goal {
            "solid = greedy path (the agent's best moves now)"
        } else {
            "solid = greedy path (does not reach G yet)"
        };
        ui.label(greedy);
        ui.separator();
        let (rect, _) = ui.allocate_exact_size(Vec2::new(28.0, 12.0), Sense::hover());
        let y = rect.center().y;
        ui.painter().add(Shape::dashed_line(
            &[Pos2::new(rect.min.x, y), Pos2::new(rect.max.x, y)],
            Stroke::new(2.0, Color32::from_gray(90)),
            6.0,
            4.0,
        ));
        ui.label("dashed = optimal path (the solver's)");
    });
}

fn toolbar(ui: &mut Ui, state: &mut MazeState, exp: &mut Experiment, live: bool) -> bool {
    let mut changed = false;
    ui.horizontal_wrapped(|ui| {
        // Each control on its own (not one enabled group), so the row wraps at
        // the tab's edge instead of running off it.
        ui.add_enabled(!live, egui::Label::new("Paint:"))
            .on_hover_text("Click or drag on the maze to paint cells (while no run is going).");
        for cell in Cell::ALL {
            let name = match cell {
                Cell::Free => "floor",
                Cell::Wall => "wall",
                Cell::Start => "start S",
                Cell::Goal => "goal G",
                Cell::Pit => "pit X",
                Cell::Slippery => "ice ~",
            };
            if ui
                .add_enabled(!live, egui::Button::selectable(state.brush == cell, name))
                .clicked()
            {
                state.brush = cell;
            }
        }
        if ui
            .add_enabled(!live, egui::Button::new("New maze"))
            .on_hover_text("Generate a fresh maze of the same size with the next seed.")
            .clicked()
            && let DatasetSpec::Gridworld(g) = &mut exp.dataset
        {
            let (rows, cols, next) = match &g.layout {
                LayoutSpec::Generated(m) => {
                    (m.rows, m.cols, m.seed.unwrap_or(exp.seed).wrapping_add(1))
                }
                LayoutSpec::Rows(r) => (
                    r.len().max(5),
                    r.first().map_or(9, |s| s.chars().count()).max(5),
                    exp.seed.wrapping_add(1),
                ),
            };
            let old = match &g.layout {
                LayoutSpec::Generated(m) => m.clone(),
                LayoutSpec::Rows(_) => GeneratedMaze::default(),
            };
            g.layout = LayoutSpec::Generated(GeneratedMaze {
                rows,
                cols,
                seed: Some(next),
                ..old
            });
            changed = true;
        }
    });
    // The view toggles on a row of their own: one long row ran off the tab.
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut state.heatmap, "Q heatmap")
            .on_hover_text("Colour each cell by its best Q-value: red good, blue bad.");
        ui.checkbox(&mut state.triangles, "per action")
            .on_hover_text("Split each cell into four triangles, one per move.");
        ui.checkbox(&mut state.arrows, "arrows")
            .on_hover_text("The move the agent would take in each cell now.");
        ui.checkbox(&mut state.paths, "paths").on_hover_text(
            "Solid green: the greedy path from S now. Dashed grey: the optimal path.",
        );
        ui.checkbox(&mut state.animate, "walk")
            .on_hover_text("An agent walking the current greedy path.");
        ui.add(
            egui::Slider::new(&mut state.speed, 1.0..=60.0)
                .logarithmic(true)
                .suffix(" moves/s")
                .text("speed"),
        );
    });
    changed
}

fn cell_colour(cell: Cell) -> Color32 {
    match cell {
        Cell::Free => Color32::from_gray(225),
        Cell::Wall => Color32::from_gray(45),
        Cell::Start => Color32::from_rgb(120, 210, 120),
        Cell::Goal => Color32::from_rgb(250, 205, 60),
        Cell::Pit => Color32::from_rgb(150, 30, 30),
        Cell::Slippery => Color32::from_rgb(170, 215, 245),
    }
}

/// Blue (-1) through white (0) to red (+1).
pub fn diverging(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let k = (255.0 * (1.0 - t.abs())) as u8;
    if t >= 0.0 {
        Color32::from_rgb(255, k, k)
    } else {
        Color32::from_rgb(k, k, 255)
    }
}

/// The colour bar; `what` names the quantity the colours show.
fn legend(ui: &mut Ui, scale: f32, what: &str) {
    ui.horizontal(|ui| {
        ui.label(format!("{:.3}", -scale));
        let (rect, _) = ui.allocate_exact_size(Vec2::new(200.0, 12.0), Sense::hover());
        let painter = ui.painter_at(rect);
        let n = 40;
        for i in 0..n {
            let t = i as f32 / (n - 1) as f32 * 2.0 - 1.0;
            let x0 = rect.min.x + rect.width() * i as f32 / n as f32;
            let r = Rect::from_min_max(
                Pos2::new(x0, rect.min.y),
                Pos2::new(x0 + rect.width() / n as f32 + 0.5, rect.max.y),
            );
            painter.rect_filled(r, 0.0, diverging(t));
        }
        ui.label(format!("{scale:.3}  {what}"));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_asks_for_a_frame_when_the_agent_moves_on() {
        use std::time::Duration;
        let close = |a: Duration, b: f32| (a.as_secs_f32() - b).abs() < 1e-4;
        // 6 moves a second, 2.5 moves in: the third move is 1/12 s away.
        assert!(close(next_move(2.5, 6.0), 0.5 / 6.0));
        assert!(close(next_move(0.0, 2.0), 0.5), "{:?}", next_move(0.0, 2.0));
        assert!(close(next_move(7.9, 10.0), 0.01));
        assert!(next_move(3.0, 60.0) <= Duration::from_secs_f32(1.0 / 60.0 + 1e-4));
        assert!(next_move(3.0, 60.0) >= Duration::from_millis(1));
    }

    #[test]
    fn the_colour_map_is_diverging_and_safe() {
        assert_eq!(diverging(0.0), Color32::WHITE);
        assert_eq!(diverging(1.0), Color32::from_rgb(255, 0, 0));
        assert_eq!(diverging(-1.0), Color32::from_rgb(0, 0, 255));
        assert_eq!(diverging(f32::NAN), Color32::WHITE);
        assert_eq!(diverging(7.0), diverging(1.0));
    }
}
