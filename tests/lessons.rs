//! The lessons in experiments/lessons/: each loads, carries notes that open with
//! a heading, and trains for a few steps (episodes) headless, as the workbench
//! runs it from the Lessons menu. The fine-tuning lesson starts from a freshly
//! pretrained run.

use std::path::{Path, PathBuf};

use trainlab::spec::{DatasetSpec, load_file};
use trainlab::train::{StartOptions, TrainEvent, start};

fn lessons() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/lessons");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("experiments/lessons")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    files
}

/// Runs `exp` for a few steps; the error message if it failed.
fn a_few_steps(exp: trainlab::spec::Experiment, run_dir: Option<PathBuf>) -> Result<(), String> {
    let handle = start(
        exp,
        StartOptions {
            run_dir,
            halt_after_step: Some(3),
            ..StartOptions::default()
        },
    );
    let mut outcome = Err("no summary".to_string());
    for e in handle.events().iter() {
        match e {
            TrainEvent::Finished(_) => outcome = Ok(()),
            TrainEvent::Failed { message, .. } => outcome = Err(message),
            _ => {}
        }
    }
    handle.join();
    outcome
}

#[test]
fn every_lesson_has_notes_and_runs() {
    let files = lessons();
    assert!(files.len() >= 7, "{files:?}");
    let tmp = tempfile::tempdir().expect("tmp");
    for file in files {
        let name = file.display().to_string();
        let mut exp = load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            exp.notes.trim_start().starts_with("# "),
            "{name}: notes open with a heading"
        );
        assert!(exp.notes.len() > 300, "{name}: a few paragraphs");
        if exp.training.init_from.is_some() {
            // Step 1 of the lesson, briefly, into a folder of its own.
            let pretrain = tmp.path().join("pretrain");
            let base = load_file(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/mnist_pretrain_cnn.ron"),
            )
            .expect("pretrain file");
            a_few_steps(base, Some(pretrain.clone())).expect("pretraining");
            exp.training.init_from = Some(pretrain);
        }
        if let DatasetSpec::Images(d) = &mut exp.dataset {
            d.train_limit = Some(d.train_limit.unwrap_or(500).min(500));
            d.test_limit = Some(100);
        }
        a_few_steps(exp, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
