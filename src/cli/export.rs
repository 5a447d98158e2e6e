//! `trainlab export csv RUN_DIR`: a run's record as CSV (written atomically);
//! `trainlab export pytorch EXPERIMENT_OR_RUN`: the experiment as a PyTorch
//! script. Bad input is exit 2, with nothing written.

use std::process::ExitCode;

use super::EXIT_BAD_INPUT;
use super::args::ExportCommand;
use crate::runs::{files, metrics_csv, read_events};
use crate::spec::{load_file, uses_model};

/// `export pytorch`: a script (and its sidecar files) for an experiment or a run.
fn pytorch(
    from: &std::path::Path,
    output: Option<std::path::PathBuf>,
    eval_only: bool,
) -> ExitCode {
    // The output's folder is checked before anything is read.
    let target = output.clone().unwrap_or_else(|| {
        if from.is_dir() {
            from.join("train.py")
        } else {
            "train.py".into()
        }
    });
    if from.exists()
        && let Err(code) = super::run::check_writable_file(&target)
    {
        return code;
    }
    let result = (|| {
        let (exp, weights, default_out) = if from.is_dir() {
            let exp = load_file(&from.join(files::EXPERIMENT))?;
            let w = from.join(files::WEIGHTS);
            (exp, w.is_file().then_some(w), from.join("train.py"))
        } else {
            let exp = load_file(from)?;
            (exp, None, std::path::PathBuf::from("train.py"))
        };
        // A Q-table has no network a PyTorch script could hold (before the
        // weights check: a tabular run has none to find).
        if !uses_model(&exp) {
            return Err(anyhow::anyhow!(
                "{} is a tabular {} experiment: it learns a table of Q-values, not a network, \
                 so there is nothing to export to PyTorch{}; export pytorch writes \
                 networks (image and text models, DQN gridworlds: agent.method Dqn(...))",
                from.display(),
                exp.agent.method.name(),
                if from.is_dir() {
                    format!(" (its table is in {})", from.join(files::QTABLE).display())
                } else {
                    String::new()
                }
            ));
        }
        let out = output.unwrap_or(default_out);
        let done = crate::export::pytorch::export(&exp, weights.as_deref(), eval_only, &out)?;
        let beside: Vec<String> = done
            .sidecars
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "wrote {}{}; run it with: python {}{}",
            done.script.display(),
            if beside.is_empty() {
                String::new()
            } else {
                format!(" (and the data it reads, {})", beside.join(", "))
            },
            done.script.display(),
            if weights.is_some() && !eval_only {
                " [--eval-only]"
            } else {
                ""
            }
        );
        Ok::<(), anyhow::Error>(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// `export onnx`: the run's model as an ONNX file.
fn onnx(run_dir: &std::path::Path, output: Option<std::path::PathBuf>, int8: bool) -> ExitCode {
    let default_name = if int8 {
        "model_int8.onnx"
    } else {
        "model.onnx"
    };
    let out = output.unwrap_or_else(|| run_dir.join(default_name));
    if run_dir.is_dir()
        && let Err(code) = super::run::check_writable_file(&out)
    {
        return code;
    }
    let precision = if int8 {
        crate::export::onnx::Precision::Int8
    } else {
        crate::export::onnx::Precision::Float
    };
    match crate::export::onnx::export(run_dir, &out, precision) {
        Ok(done) => {
            eprintln!(
                "wrote {} ({} nodes): input {}, output {}",
                done.path.display(),
                done.nodes,
                done.input,
                done.output
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// `export tensorboard`: event files for a run or a study.
fn tensorboard(from: &std::path::Path, output: Option<std::path::PathBuf>) -> ExitCode {
    let out = output.unwrap_or_else(|| from.join(crate::runs::tensorboard::DIR));
    if from.is_dir()
        && let Err(code) = super::run::check_writable(&out)
    {
        return code;
    }
    let written: anyhow::Result<_> = if from.join(crate::study::STUDY_FILE).is_file() {
        crate::study::tensorboard::export(from, &out).map_err(Into::into)
    } else {
        crate::runs::tensorboard::export(from, &out).map_err(Into::into)
    };
    match written {
        Ok(done) => {
            eprintln!(
                "wrote {} event file(s) for {} run(s) into {}; view them with: tensorboard --logdir {}",
                done.files.len(),
                done.runs,
                out.display(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

pub(crate) fn export(command: ExportCommand) -> ExitCode {
    let (run_dir, output) = match command {
        ExportCommand::Csv { run_dir, output } => (run_dir, output),
        ExportCommand::Onnx {
            run_dir,
            output,
            int8,
        } => return onnx(&run_dir, output, int8),
        ExportCommand::Tensorboard { from, output } => return tensorboard(&from, output),
        ExportCommand::Pytorch {
            from,
            output,
            eval_only,
        } => return pytorch(&from, output, eval_only),
    };
    if let Some(path) = output.as_deref().filter(|p| p.as_os_str() != "-")
        && run_dir.is_dir()
        && let Err(code) = super::run::check_writable_file(path)
    {
        return code;
    }
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
