//! The `trainlab` binary as a user runs it: exit codes, file:line:col errors,
//! overrides, the summary table and the run folder.

use std::path::Path;
use std::process::Command;

mod common;

use common::{assert_files, succeeded, trainlab};

fn example(name: &str) -> String {
    format!("{}/experiments/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `trainlab run mnist_mlp.ron` for one short epoch, recording into `out`.
fn short_run(out: &std::path::Path, train_limit: usize) -> std::process::Output {
    trainlab()
        .args([
            "run",
            &example("mnist_mlp.ron"),
            "--set",
            "training.epochs=1",
            "--set",
        ])
        .arg(format!("dataset.train_limit={train_limit}"))
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs")
}

/// `trainlab check` on the example `name` with `--set set`: fails unless it
/// exits with 2 and its message holds `wanted`.
fn check_refuses(name: &str, set: &str, wanted: &str) {
    let out = trainlab()
        .args(["check", &example(name), "--set", set])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(wanted), "{err}");
}

#[test]
fn check_accepts_every_example_and_rejects_broken_with_position() {
    for name in [
        "mnist_mlp.ron",
        "mnist_cnn.ron",
        "fashion_mlp.ron",
        "fashion_cnn.ron",
        "gridworld_qlearning.ron",
        "gridworld_sarsa.ron",
        "gridworld_dqn.ron",
        "gridworld_slippery.ron",
        "text_charlm_lstm.ron",
        "text_charlm_gru.ron",
        "text_charlm_transformer.ron",
        "text_classify_bag.ron",
        "text_classify_gru.ron",
        "text_pretrain_lm.ron",
        "text_finetune.ron",
        "mnist_pretrain_cnn.ron",
        "fashion_finetune_cnn.ron",
        "text_fortunes_lm.ron",
        "text_fortunes_topic.ron",
    ] {
        let out = trainlab()
            .args(["check", &example(name)])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = trainlab()
        .args(["check", &example("broken.ron")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.ron:15:9"), "{err}");
    assert!(err.contains("batch_size"), "suggests the real field: {err}");
}

#[test]
fn check_reads_a_study_file_as_a_study() {
    let studies = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/studies");
    let mut seen = 0;
    for entry in std::fs::read_dir(&studies).expect("experiments/studies") {
        let path = entry.expect("entry").path();
        let out = trainlab().arg("check").arg(&path).output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(": ok (a study of "),
            "{}: {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        seen += 1;
    }
    assert!(seen >= 5, "{seen} example studies");
    // A study's own mistakes are reported, with exit 2; --set is refused.
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.ron");
    std::fs::write(
        &bad,
        r#"(name: "s", base: "/nonexistent/exp.ron", space: {}, search: Grid, objectives: [Maximize(ValAccuracy)])"#,
    )
    .expect("write");
    let out = trainlab().arg("check").arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/exp.ron"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let any = std::fs::read_dir(&studies)
        .expect("studies")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let out = trainlab()
        .arg("check")
        .arg(&any)
        .args(["--set", "optimizer.lr=0.1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a study"));
}

#[test]
fn check_reads_a_controller_policy_as_a_policy() {
    let good = example("lessons/policies/09_agent_policy.ron");
    let out = trainlab().args(["check", &good]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout
                .contains(": ok (a controller policy: Q-values over 180 state(s) x 3 action(s)"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A misspelt kind is reported where it is, as a policy (not as an experiment's
    // unknown field); a table of the wrong size is named; --set is refused.
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(&good).expect("policy");
    let bad = dir.path().join("bad_policy.ron");
    std::fs::write(&bad, text.replace("kind: QValues", "kind: QValuez")).expect("write");
    let out = trainlab().arg("check").arg(&bad).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad_policy.ron:6:11: not a controller policy") && err.contains("QValuez"),
        "{err}"
    );
    let torn = dir.path().join("torn_policy.ron");
    std::fs::write(&torn, text.replacen("        [0.0, 0.0, 0.0],\n", "", 1)).expect("write");
    let out = trainlab().arg("check").arg(&torn).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("torn_policy.ron does not fit") && err.contains("180 rows"),
        "{err}"
    );
    let out = trainlab()
        .args(["check", &good, "--set", "optimizer.lr=0.1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a controller policy"));
}

#[test]
fn check_accepts_every_file_in_experiments_but_broken() {
    fn ron_files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                ron_files(&path, into);
            } else if path.extension().is_some_and(|e| e == "ron") {
                into.push(path);
            }
        }
    }
    let mut files = Vec::new();
    ron_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"),
        &mut files,
    );
    assert!(files.len() >= 40, "{} files", files.len());
    for path in files {
        let out = trainlab().arg("check").arg(&path).output().expect("runs");
        let broken = path.file_name().is_some_and(|n| n == "broken.ron");
        assert_eq!(
            out.status.success(),
            !broken,
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_override_is_exit_2() {
    check_refuses("mnist_mlp.ron", "optimizer.lr=-1", "optimizer.lr");
}

#[test]
fn run_trains_writes_the_folder_and_prints_a_summary() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("try1");
    let out = short_run(&run_dir, 1000);
    let stdout = succeeded(&out);
    assert!(stdout.contains("test loss / acc"), "{stdout}");
    assert_files(
        &run_dir,
        &[
            "experiment.ron",
            "metrics.jsonl",
            "summary.json",
            "model.safetensors",
        ],
    );
    let resolved = trainlab::spec::load_file(&run_dir.join("experiment.ron")).expect("resolved");
    assert_eq!(resolved.training.epochs, 1, "overrides are recorded");
}

#[test]
fn diverging_run_is_exit_1_and_missing_data_exit_2() {
    let out = trainlab()
        .args([
            "run",
            &example("mnist_mlp.ron"),
            "--no-record",
            "--set",
            r#"optimizer={"Sgd":{"lr":1e12}}"#,
            "--set",
            "dataset.train_limit=640",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("diverged"));

    let out = trainlab()
        .args([
            "run",
            &example("mnist_mlp.ron"),
            "--no-record",
            "--set",
            r#"dataset.source={"Dir":"/no/such/dir"}"#,
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/dir"));
}

#[test]
fn weights_load_in_python_safetensors() {
    let has_python = Command::new("python3")
        .args(["-c", "import safetensors.numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_python {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install the Python safetensors package (pip install safetensors numpy)"
        );
        eprintln!("skipped: python3 with safetensors is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let out = short_run(dir.path(), 500);
    assert!(out.status.success());
    let script = "import sys; from safetensors.numpy import load_file; \
                  t = load_file(sys.argv[1]); \
                  print(sorted((k, v.shape) for k, v in t.items()))";
    let py = Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("model.safetensors"))
        .output()
        .expect("python runs");
    let listing = String::from_utf8_lossy(&py.stdout);
    succeeded(&py);
    assert!(
        listing.contains("('layers.1.weight', (128, 784))"),
        "{listing}"
    );
    assert!(listing.contains("('layers.3.bias', (10,))"), "{listing}");
}

#[test]
fn maze_run_writes_the_folder_and_overrides_reach_the_agent() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("maze");
    let out = trainlab()
        .args([
            "run",
            &example("gridworld_qlearning.ron"),
            "--set",
            "agent.epsilon.start=0.5",
            "--set",
            "agent.episodes=500",
            "--set",
            "dataset.layout.rows=11",
            "--out",
        ])
        .arg(&run_dir)
        .output()
        .expect("runs");
    let stdout = succeeded(&out);
    assert!(stdout.contains("greedy path"), "{stdout}");
    assert_files(
        &run_dir,
        &[
            "experiment.ron",
            "metrics.jsonl",
            "summary.json",
            "qtable.json",
        ],
    );
    let resolved = trainlab::spec::load_file(&run_dir.join("experiment.ron")).expect("resolved");
    assert_eq!(resolved.agent.epsilon.start, 0.5, "overrides are recorded");
    let summary: trainlab::events::RunSummary =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
            .expect("parses");
    let rl = summary.rl.expect("rl figures");
    assert_eq!(rl.episodes, 500);
    assert!(rl.greedy_optimal, "{rl:?}");
}

#[test]
fn bad_maze_is_exit_2_with_row_and_column() {
    check_refuses(
        "gridworld_sarsa.ron",
        r#"dataset.layout={"Rows":["S.#","..?"]}"#,
        "row 2, column 3",
    );
    check_refuses("gridworld_dqn.ron", "model.2.Linear.out=5", "4 actions");
}

#[test]
fn run_trains_a_language_model_on_a_text_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let corpus = dir.path().join("corpus.txt");
    let lines: String = (0..300)
        .map(|i| format!("the cat sat on mat number {}\n", i % 7))
        .collect();
    std::fs::write(&corpus, lines).expect("write");
    let exp = dir.path().join("lm.ron");
    std::fs::write(
        &exp,
        format!(
            "(name: \"file_lm\", dataset: Text(source: File({:?}), task: LanguageModel(seq_len: 16, \
             sample_every_steps: Some(5), sample: (length: 20))), model: [Embedding(dim: 8), LSTM(hidden: 16)], \
             training: (epochs: 1, batch_size: 8, log_every_steps: 5))",
            corpus
        ),
    )
    .expect("write");
    let run_dir = dir.path().join("run");
    let out = trainlab()
        .arg("run")
        .arg(&exp)
        .arg("--out")
        .arg(&run_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(run_dir.join("vocab.json").is_file());
    assert!(run_dir.join("model.safetensors").is_file());
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).expect("metrics");
    assert!(metrics.contains("\"Sample\"") && metrics.contains("bits_per_token"));
}

/// Every file of a run folder, with its bytes (to show nothing changed).
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    common::files_under(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

#[test]
fn halt_then_resume_finishes_the_run_and_bad_resumes_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    // 900 training images in steps of 64: 15 a epoch; halt in epoch 2.
    let out = trainlab()
        .args([
            "run",
            &example("mnist_mlp.ron"),
            "--set",
            "training.epochs=2",
            "--set",
            "dataset.train_limit=1000",
            "--halt-after",
            "20",
            "--out",
        ])
        .arg(&run_dir)
        .output()
        .expect("runs");
    succeeded(&out);

    // A model that no longer matches: exit 2, nothing changed.
    let before = snapshot(&run_dir);
    let out = trainlab()
        .arg("resume")
        .arg(&run_dir)
        .args(["--set", "model.1.Linear.out=64"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not match") && err.contains("layers.1.weight"),
        "{err}"
    );
    assert!(
        snapshot(&run_dir) == before,
        "a refused resume changes nothing"
    );

    // The real resume trains to the end.
    let out = trainlab()
        .arg("resume")
        .arg(&run_dir)
        .output()
        .expect("runs");
    succeeded(&out);
    let summary: trainlab::events::RunSummary =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
            .expect("parses");
    assert_eq!(summary.steps, 30);
    assert_eq!(summary.reason, trainlab::events::StopReason::Completed);

    // A truncated weight file in the newest checkpoint: named, exit 2, nothing changed.
    let (_, newest) = trainlab::runs::checkpoints::latest(&run_dir).expect("checkpoint");
    let weights = newest.join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).expect("truncate");
    let before = snapshot(&run_dir);
    let out = trainlab()
        .arg("resume")
        .arg(&run_dir)
        .args(["--set", "training.epochs=3"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("model.safetensors"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(snapshot(&run_dir) == before);

    // A folder without checkpoints.
    std::fs::remove_dir_all(run_dir.join("checkpoints")).expect("rm");
    let out = trainlab()
        .arg("resume")
        .arg(&run_dir)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint"));
}

#[test]
fn export_csv_writes_one_row_per_logged_step() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = dir.path().join("run");
    let o = trainlab()
        .args([
            "run",
            "experiments/mnist_mlp.ron",
            "--set",
            "training.epochs=1",
            "--set",
            "dataset.train_limit=2000",
            "--out",
        ])
        .arg(&run)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    succeeded(&o);
    let o = trainlab()
        .args(["export", "csv"])
        .arg(&run)
        .output()
        .expect("runs");
    succeeded(&o);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("metrics.csv");
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(header.starts_with("step,epoch,train_loss"), "{header}");
    assert!(
        header.contains("val_loss") && header.contains("test_accuracy"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= 2, "{csv}");
    let steps: Vec<u64> = rows
        .iter()
        .map(|r| {
            r.split(',')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("step")
        })
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "one row per step, in order"
    );
    let o = trainlab()
        .args(["export", "csv"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
}

/// `trainlab ARGS...` run from the project root; (exit code, stdout, stderr).
/// Runs `cmd` to its end: exit code, standard output, standard error.
fn outcome(cmd: &mut Command) -> (Option<i32>, String, String) {
    let o = cmd.output().expect("runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn trainlab_in_root(args: &[&str]) -> (Option<i32>, String, String) {
    let out = trainlab()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn set_reads_values_as_ron_against_the_field_type() {
    let mlp = example("mnist_mlp.ron");
    // Options: None, Some(..), and the bare value.
    for value in ["None", "Some(100)", "100"] {
        let set = format!("training.eval_every_steps={value}");
        let (code, _, err) = trainlab_in_root(&["check", &mlp, "--set", &set]);
        assert_eq!(code, Some(0), "{set}: {err}");
    }
    // A variant with a payload, and a whole list.
    let lstm = example("text_charlm_lstm.ron");
    let (code, _, err) = trainlab_in_root(&[
        "check",
        &lstm,
        "--set",
        r#"dataset.source=File("corpus.txt")"#,
    ]);
    assert_ne!(code, Some(2), "the variant is read: {err}");
    assert!(!err.contains("unknown variant"), "{err}");
    let (code, out, err) = trainlab_in_root(&[
        "check",
        &mlp,
        "--set",
        "model=[Flatten, Linear(out: 10)]",
        "--set",
        "optimizer=Adam(lr: 1e-3)",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("total parameters: 7850"),
        "784 x 10 + 10: {out}"
    );
    // A value of the wrong type: exit 2, in words, no Rust type names.
    let (code, _, err) = trainlab_in_root(&["check", &mlp, "--set", "training.epochs=2.5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("training.epochs") && err.contains("whole number"),
        "{err}"
    );
    for rust in ["usize", "u64", "f64", "Option", "struct "] {
        assert!(!err.contains(rust), "`{rust}` in: {err}");
    }
    // A list's indices as a person counts them.
    let (code, _, err) = trainlab_in_root(&["check", &mlp, "--set", "model.9.Linear.out=3"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("indices 0-3"), "{err}");
}

#[test]
fn a_refused_resume_is_one_message_and_backtraces_need_verbose() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let out = short_run(&run_dir, 300);
    succeeded(&out);
    // Finished: resuming without more epochs is refused, before any table.
    let out = trainlab()
        .arg("resume")
        .arg(&run_dir)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--set training.epochs=2"), "says how: {err}");
    assert!(
        !err.contains("run failed"),
        "a refusal is not a failed run: {err}"
    );
    assert!(!err.contains("total parameters"), "no model table: {err}");
    // A shape mismatch with RUST_BACKTRACE=1: the message, no library frames...
    let mismatch = |verbose: bool| {
        let mut cmd = trainlab();
        if verbose {
            cmd.arg("--verbose");
        }
        let out = cmd
            .arg("resume")
            .arg(&run_dir)
            .args([
                "--set",
                "model.1.Linear.out=64",
                "--set",
                "training.epochs=2",
            ])
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = mismatch(false);
    assert!(quiet.contains("does not match"), "{quiet}");
    assert!(
        quiet.lines().count() < 8 && !quiet.contains("candle_core::"),
        "no backtrace without --verbose:\n{quiet}"
    );
    // ... which --verbose shows.
    let verbose = mismatch(true);
    assert!(
        verbose.lines().count() > quiet.lines().count() + 10,
        "--verbose adds the backtrace:\n{verbose}"
    );
}

#[test]
fn extending_a_finished_run_keeps_the_lr_and_ends_with_validation() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let set = |s: &str| ["--set".to_string(), s.to_string()];
    // 300 images less the validation share, in batches of 64: 4 or 5 steps an
    // epoch; val every 3 steps does not land on the last step of 2 epochs.
    let mut args: Vec<String> = vec!["run".into(), example("mnist_mlp.ron")];
    for s in [
        "training.epochs=1",
        "dataset.train_limit=300",
        "training.log_every_steps=1",
        "training.eval_every_steps=Some(3)",
        "schedule.decay=Cosine(final_fraction: 0.1)",
    ] {
        args.extend(set(s));
    }
    let out = trainlab()
        .args(&args)
        .arg("--out")
        .arg(&run_dir)
        .output()
        .expect("runs");
    succeeded(&out);
    let out = trainlab()
        .arg("resume")
        .arg(&run_dir)
        .args(["--set", "training.epochs=2"])
        .output()
        .expect("runs");
    succeeded(&out);

    let events = trainlab::runs::read_events(&run_dir).expect("metrics.jsonl");
    let lrs: Vec<(u64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            trainlab::events::TrainEvent::Step(s) => Some((s.step, s.lr)),
            _ => None,
        })
        .collect();
    assert!(lrs.len() >= 8, "a Step record per step: {lrs:?}");
    let resumed_at = events
        .iter()
        .find_map(|e| match e {
            trainlab::events::TrainEvent::Restored { step, .. } => Some(*step),
            _ => None,
        })
        .expect("a Restored record");
    let (_, floor) = *lrs
        .iter()
        .rfind(|(s, _)| *s <= resumed_at)
        .expect("a step before the extension");
    let (peak_step, peak) = lrs
        .iter()
        .copied()
        .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    assert!(
        peak_step <= 1 && floor < peak * 0.2,
        "the first epoch decayed: {lrs:?}"
    );
    for (step, lr) in lrs.iter().filter(|(s, _)| *s > resumed_at) {
        assert!(
            (lr - floor).abs() <= 1e-12 * floor.max(1.0),
            "step {step}: lr {lr} after the extension, {floor} before it: {lrs:?}"
        );
    }
    // The run ends with a validation pass at its last step, and the summary
    // reports that one.
    let last_step = lrs.last().map(|(s, _)| *s).expect("steps");
    let last_val = events
        .iter()
        .filter_map(|e| match e {
            trainlab::events::TrainEvent::Eval(m) if m.split == trainlab::events::Split::Val => {
                Some(m)
            }
            _ => None,
        })
        .next_back()
        .expect("val records");
    assert_eq!(last_val.step, last_step, "a final val pass");
    let summary: trainlab::events::RunSummary =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
            .expect("parses");
    assert_eq!(summary.val_loss, Some(last_val.loss));
    let resolved = trainlab::spec::load_file(&run_dir.join("experiment.ron")).expect("resolved");
    assert_eq!(
        resolved.schedule.decay_epochs,
        Some(1),
        "the plan is recorded"
    );
}

#[test]
fn study_files_paths_and_tables_read_as_a_person_expects() {
    let dir = tempfile::tempdir().expect("tmp");
    let exp = dir.path().join("mlp.ron");
    std::fs::copy(example("mnist_mlp.ron"), &exp).expect("copy");
    let studies = dir.path().join("studies");
    std::fs::create_dir(&studies).expect("mkdir");
    let study = studies.join("s.ron");
    let write = |text: &str| std::fs::write(&study, text).expect("write");
    let good = r#"(
    name: "s",
    base: "../mlp.ron",
    space: {
        "optimizer.lr": Choice([1.18e-5]),
        "dataset.train_limit": Choice([200]),
        "training.epochs": Choice([1]),
    },
    search: Random(trials: 1),
    objectives: [Maximize(ValAccuracy), Minimize(Parameters)],
    parallel: Trials(1),
)"#;
    // A width of the wrong type: refused before any trial, at its line.
    write(&good.replace(
        r#""training.epochs": Choice([1]),"#,
        r#""model.1.Linear.out": Choice([12.5, "wide"]),"#,
    ));
    let folder = dir.path().join("out");
    let (code, _, err) = outcome(
        trainlab()
            .args(["study", "run"])
            .arg(&study)
            .arg("--out")
            .arg(&folder),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s.ron:7:9") && err.contains("model.1.Linear.out"),
        "{err}"
    );
    assert!(err.contains("whole number"), "{err}");
    assert!(!folder.exists(), "no trial ran");
    // A base that is not there: the study file, line and path.
    write(&good.replace("../mlp.ron", "../nothing.ron"));
    let (code, _, err) = outcome(trainlab().args(["study", "run"]).arg(&study));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s.ron:3:5") && err.contains("nothing.ron"),
        "{err}"
    );
    // Not a study at all.
    write("[1, 2, 3]");
    let (code, _, err) = outcome(trainlab().args(["study", "run"]).arg(&study));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("a study file is") && !err.contains("StudySpec"),
        "{err}"
    );
    // A file where a folder is wanted.
    let (code, _, err) = outcome(trainlab().args(["study", "show"]).arg(&study));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("study folder") && err.contains("trainlab study run"),
        "{err}"
    );
    assert!(!err.contains("Not a directory"), "{err}");

    // The plain path base runs; the table shows each figure as a person reads it.
    write(good);
    let o = trainlab()
        .args(["study", "run"])
        .arg(&study)
        .arg("--out")
        .arg(&folder)
        .output()
        .expect("runs");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("0 "))
        .unwrap_or_else(|| panic!("trial 0's row: {out}"));
    assert!(row.contains("1.180e-5"), "a small lr is not 0.0000: {row}");
    assert!(
        row.contains("101770") && !row.contains("101770.0"),
        "a count: {row}"
    );
    assert!(row.contains(" %"), "accuracy as a percentage: {row}");
    // The progress line of the trial, too.
    assert!(
        err.contains("Parameters 101770") && !err.contains("101770.0"),
        "{err}"
    );
    // Resuming says what it found.
    let (code, _, err) = outcome(trainlab().args(["study", "resume"]).arg(&folder));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("1 trial(s) done") && err.contains("0 to run"),
        "{err}"
    );
}

#[test]
fn exporting_a_tabular_run_says_it_has_no_network() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = trainlab()
        .args([
            "export",
            "pytorch",
            &example("gridworld_qlearning.ron"),
            "--eval-only",
            "-o",
        ])
        .arg(dir.path().join("x.py"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("tabular") && err.contains("not a network"),
        "{err}"
    );
    assert!(!err.contains("trained weights"), "{err}");
    assert!(!dir.path().join("x.py").exists());
}
