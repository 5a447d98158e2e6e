//! The workbench window (egui/eframe): edit an experiment, train it on the worker,
//! watch it learn, and look inside the trained model.
//!
//! Contract: the GUI is a consumer of the worker's event stream and a sender of
//! control messages, like the CLI; it never touches training internals. Each file
//! is one thing the learner looks at or one piece of state behind it.

mod agent_params;
mod aggregate;
mod app;
mod canvas;
mod confusion;
mod controls;
mod curves;
mod dataset;
mod document;
mod draw;
mod history;
mod hyperparams;
mod inspect;
mod job;
mod live;
mod maze_params;
mod maze_view;
mod menu;
mod mistakes;
mod model_editor;
mod notes;
mod playground;
mod points_params;
mod predictor;
mod rl_curves;
mod run_state;
mod samples;
mod smoothing;
mod status_bar;
mod study;
mod text_params;
mod text_view;
mod thumbnails;
mod views;
mod weights;

pub use app::{Persisted, TrainlabApp};
pub use canvas::DigitCanvas;
pub use maze_view::{MazeState, maze_tab};
pub use playground::{DEFAULT_RESOLUTION, PlaygroundState, playground_tab};
pub use run_state::{RunSeries, RunState};
pub use study::{Column, Metric, Page, SearchPick, StudyAction, StudyView};
pub use views::Tab;

/// Opens the window and runs until it is closed. Errors (no display, no GPU
/// driver) are returned so `main` can fall back to the terminal.
pub fn run_gui(file: Option<std::path::PathBuf>) -> Result<(), String> {
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
    .map_err(|e| e.to_string())
}
