//! `trainlab export csv RUN_DIR`: a run's record as CSV (written atomically).
//! A folder without a record is exit 2.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::ExportCommand;
use crate::runs::{files, metrics_csv, read_events};

pub(crate) fn export(command: ExportCommand) -> ExitCode {
    let ExportCommand::Csv { run_dir, output } = command;
    let result = (|| {
        if !run_dir.join(files::METRICS).is_file() {
            return Err(format!(
                "{} is not a run folder: it has no {}",
                run_dir.display(),
                files::METRICS
            ));
        }
        let events = read_events(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        let csv = metrics_csv(&events);
        match output.as_deref() {
            Some(p) if p.as_os_str() == "-" => {
                // A reader that stops early (`| head`) is not an error.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), csv.as_bytes());
                Ok(())
            }
            other => {
                let path = other.map_or_else(|| run_dir.join("metrics.csv"), |p| p.to_path_buf());
                crate::util::atomic::write_atomic(&path, csv.as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                eprintln!(
                    "wrote {} ({} rows)",
                    path.display(),
                    csv.lines().count().saturating_sub(1)
                );
                Ok(())
            }
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
