//! The egui workbench (being built).

/// Opens the workbench window.
pub fn run_app() -> std::process::ExitCode {
    eprintln!("the GUI is being built; use `trainlab run FILE`");
    std::process::ExitCode::from(2)
}
