//! The workbench window (egui/eframe): edit an experiment, train it on the worker,
//! watch it learn, and look inside the trained model.
//!
//! Contract: the GUI is a consumer of the worker's event stream and a sender of
//! control messages, like the CLI; it never touches training internals. Each file
//! is one thing the learner looks at or one piece of state behind it, in one of
//! three rooms:
//! - `editor/`: the panels that edit the experiment and start it;
//! - `views/`: the tabs that show a run (curves, maze, text, confusion, weights,
//!   canvas, history, study, playground, compress), each with its own
//!   `<View>State`, and the status bar;
//! - `state/`: what the worker's events and background jobs feed for several
//!   views to read (the rule is in `state/mod.rs`).
//!
//! `figure/` describes a plot as plain data, with the series maths behind it, and
//! saves it as SVG or PNG.
//!
//! `app.rs` ties them together: it lays the panels out and carries out what they
//! report.

mod app;
mod editor;
pub mod figure;
mod state;
mod views;

pub use app::{Persisted, TrainlabApp};
pub use editor::controls::Pace;
pub use editor::dataset::use_image_folder;
pub use state::run_state::{RunSeries, RunState};
pub use views::Tab;
pub use views::canvas::DigitCanvas;
pub use views::compress::state::CompressState;
pub use views::history::save_metrics_csv;
pub use views::maze_view::{MazeState, maze_tab};
pub use views::playground::{DEFAULT_RESOLUTION, PlaygroundState, playground_tab};
pub use views::pytorch::{PytorchState, save_script};
pub use views::study::{Column, Metric, Page, SearchPick, StudyAction, StudyState};

/// Opens the window and runs until it is closed. Errors (no display, no GPU
/// driver) are returned so `main` can fall back to the terminal.
pub fn run_gui(file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("trainlab")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([900.0, 600.0]),
        ..Default::default()
    };
    eframe::run_native(
        "trainlab",
        options,
        Box::new(move |cc| {
            let mut app = TrainlabApp::new(cc);
            if let Some(f) = &file {
                app.open_path(f);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}
