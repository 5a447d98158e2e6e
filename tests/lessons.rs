//! The lessons in experiments/lessons/: each loads, carries notes that open with
//! a heading, and trains for a few steps (episodes) headless, as the workbench
//! runs it from the Lessons menu. The fine-tuning lesson starts from a freshly
//! pretrained run. `trainlab lesson verify` trains every lesson as shipped and
//! every claim of its notes holds; a claim made false fails, naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// A lesson saved by the workbench keeps its steps and checks: the file reads
/// back to the same experiment.
#[test]
fn lessons_keep_their_claims_when_saved() {
    for file in lessons() {
        let exp = load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!exp.checks.is_empty(), "{}: no checks", file.display());
        let text = trainlab::spec::to_ron_string(&exp);
        let back = trainlab::spec::from_ron_str(&text, "saved").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exp, back, "{}:\n{text}", file.display());
    }
}

fn trainlab(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainlab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run trainlab")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// CI's guard on the lessons: every lesson, as shipped, with the steps it needs,
/// and every claim of its notes holds (a changed default that breaks a lesson's
/// story fails here).
#[test]
fn every_lesson_verifies() {
    let files = lessons();
    let mut args = vec!["lesson", "verify"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let began = std::time::Instant::now();
    let out = trainlab(&args, root());
    let all = text(&out);
    eprintln!(
        "lesson verify, all lessons: {:.0} s\n{all}",
        began.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("every claim holds"), "{all}");
    for name in &names {
        assert!(stdout.contains(name.as_str()), "{name} not reported\n{all}");
    }
    assert!(!stdout.contains("FAILS"), "{all}");
}

/// Lesson 01 with a learning rate that learns well: its claim that the accuracy
/// stays near 10 % is false, and `verify` says so by name and exits 1.
#[test]
fn a_false_claim_fails_naming_it() {
    let lesson = "experiments/lessons/01_learning_rate_too_large.ron";
    let out = trainlab(
        &["lesson", "verify", lesson, "--set", "optimizer.lr=0.05"],
        root(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failing: Vec<&str> = stdout.lines().filter(|l| l.contains("FAILS")).collect();
    assert!(
        failing
            .iter()
            .any(|l| l.contains("test accuracy of the lesson")),
        "{all}"
    );
    assert!(
        stdout.contains(&format!("{lesson}: \"the accuracy stays near 10 %\"")),
        "{all}"
    );
    // The step that is meant to learn well still holds.
    assert!(
        stdout.contains("holds  test accuracy of step \"lr 0.05\""),
        "{all}"
    );
}

/// A lesson file whose check quotes words its notes do not have, or names a
/// step it does not list, is refused before anything trains (exit 2, file:line:col).
#[test]
fn a_malformed_lesson_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, checks: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "(\n    name: \"t\",\n    notes: \"# T\\n\\nThe accuracy stays near 10 %.\",\n    \
                 dataset: Points(kind: Spiral, samples: 40),\n    model: [Linear(out: 1)],\n    \
                 training: (epochs: 1),\n    checks: [\n{checks}\n    ],\n)\n"
            ),
        )
        .expect("write");
        path
    };
    let cases = [
        (
            "not_in_notes.ron",
            r#"        (claim: "the accuracy reaches 99 %", figure: TestAccuracy, is: AtLeast(0.99)),"#,
            "8:18",
            "is not in the notes",
        ),
        (
            "no_step.ron",
            r#"        (claim: "stays near 10 %", figure: TestAccuracy, is: LessThan(Step("mlp"))),"#,
            "8:76",
            "names step \"mlp\"",
        ),
        (
            "yes_no.ron",
            r#"        (claim: "stays near 10 %", figure: TestAccuracy, is: Yes),"#,
            "8:18",
            "use AtMost",
        ),
        (
            "typo.ron",
            r#"        (claim: "stays near 10 %", figure: TestAcuracy, is: AtMost(0.2)),"#,
            "8:",
            "TestAcuracy",
        ),
    ];
    for (name, check, position, words) in cases {
        let path = write(name, check);
        let out = trainlab(
            &["lesson", "verify", &path.display().to_string()],
            dir.path(),
        );
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {all}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{}:{position}", path.display())),
            "{name}: {all}"
        );
        assert!(stderr.contains(words), "{name}: {all}");
        assert!(
            !stderr.contains("training"),
            "{name}: nothing trains: {all}"
        );
    }
}

/// `trainlab run` of the fine-tuning lesson before its step 1 was run says to
/// run step 1 first, with the exact command, instead of "cannot read".
#[test]
fn finetune_lesson_without_step_one_names_the_command() {
    let cwd = tempfile::tempdir().expect("tmp");
    let lesson = root().join("experiments/lessons/07_pretrain_then_finetune.ron");
    let out = trainlab(
        &["run", &lesson.display().to_string(), "--no-record"],
        cwd.path(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let expected = format!(
        "trainlab run {} --out runs/pretrain_cnn",
        root().join("experiments/mnist_pretrain_cnn.ron").display()
    );
    assert!(all.contains(&expected), "{all}");
    assert!(all.contains("Run step 1 first"), "{all}");
}

/// The model table of a text model before its text is read: no zero-size input
/// and no total that leaves out the vocabulary without saying so.
#[test]
fn text_model_table_says_what_the_vocabulary_adds() {
    let out = trainlab(
        &["check", "experiments/lessons/06_sampling_temperature.ron"],
        root(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(", 0]"), "{all}");
    assert!(stdout.contains("[32] tokens"), "{all}");
    assert!(stdout.contains("32/token"), "{all}");
    assert!(!stdout.contains("total parameters: 62208"), "{all}");
}
