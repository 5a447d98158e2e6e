//! `trainlab compress` on a real (small) trained run: pruned weights are really
//! zero at the requested sparsity, the masks survive fine-tuning, every variant
//! is a run folder that loads like any other (and can start another run), and
//! bad input is exit 2 with a clear message.

use std::path::Path;
use std::process::{Command, Output};

use trainlab::runs::load_saved_model;
use trainlab::spec::{DatasetSpec, ImageDatasetSpec, TrainingSpec, to_ron_string};
use trainlab::train::prune::prunable;

fn trainlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainlab"))
}

/// Trains the default MLP on part of the bundled digits into `dir/run`.
fn trained(dir: &Path) -> std::path::PathBuf {
    let exp = trainlab::spec::Experiment {
        name: "small".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(1000),
            test_limit: Some(200),
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs: 2,
            batch_size: 50,
            ..TrainingSpec::default()
        },
        ..trainlab::spec::Experiment::default()
    };
    let file = dir.join("small.ron");
    std::fs::write(&file, to_ron_string(&exp)).expect("write");
    let run = dir.join("run");
    let o = trainlab()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run
}

fn zero_share(dir: &Path) -> f64 {
    let saved = load_saved_model(dir).expect("loads like any run");
    let mut zero = 0;
    let mut total = 0;
    for (_, var) in prunable(&saved.model, &saved.experiment.model) {
        let v: Vec<f32> = var
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("values");
        zero += v.iter().filter(|x| **x == 0.0).count();
        total += v.len();
    }
    zero as f64 / total as f64
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn pruned_variants_are_sparse_stay_sparse_and_load_as_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = trained(tmp.path());
    let out = tmp.path().join("c");
    let o = trainlab()
        .args([
            "compress",
            "--sparsity",
            "0.5,0.9",
            "--finetune-epochs",
            "1",
            "--out",
        ])
        .arg(&out)
        .arg(&run)
        .output()
        .expect("runs");
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("original") && table.contains("sparsity-0.90-ft1"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compress.json")).expect("json"))
            .expect("parses");
    let rows = json["variants"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["name"], "original");
    assert_eq!(rows[0]["sparsity"].as_f64(), Some(0.0));
    for (row, target) in rows[1..].iter().zip([0.5, 0.9]) {
        let dir = Path::new(row["dir"].as_str().expect("dir"));
        // Exactly the share asked for, after an epoch of fine-tuning.
        let share = zero_share(dir);
        assert!((share - target).abs() < 1e-3, "{share} vs {target}");
        assert!((row["sparsity"].as_f64().expect("n") - target).abs() < 1e-3);
        assert!(
            row["test_accuracy"].as_f64().is_some_and(|a| a > 0.5),
            "{row}"
        );
        assert!(
            row["samples_per_sec_batch64"]
                .as_f64()
                .is_some_and(|s| s > 0.0)
        );
        if target > 0.5 {
            assert!(
                row["sparse_bytes"].as_u64() < row["size_bytes"].as_u64(),
                "{row}"
            );
        }
    }
    // Without fine-tuning, the zeros are there too; a variant starts another run.
    let o = trainlab()
        .args(["compress", "--sparsity", "0.8", "--per-layer", "--out"])
        .arg(tmp.path().join("d"))
        .arg(&run)
        .output()
        .expect("runs");
    ok(&o);
    let pruned = tmp.path().join("d").join("sparsity-0.80");
    assert!((zero_share(&pruned) - 0.8).abs() < 1e-3);
    let o = trainlab()
        .arg("run")
        .arg(tmp.path().join("small.ron"))
        .args(["--no-record", "--set", "training.epochs=1", "--set"])
        .arg(format!("training.init_from=\"{}\"", pruned.display()))
        .output()
        .expect("runs");
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("init_from")
            || String::from_utf8_lossy(&o.stdout).contains("init_from")
    );
}

#[test]
fn int8_keeps_the_accuracy_in_a_quarter_of_the_size_on_either_kernel() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = trained(tmp.path());
    let row = |out: &str, portable: bool| {
        let mut cmd = trainlab();
        cmd.args(["compress", "--sparsity", "0.5", "--int8", "--out"])
            .arg(tmp.path().join(out))
            .arg(&run);
        if portable {
            cmd.env("TRAINLAB_INT8", "portable");
        }
        ok(&cmd.output().expect("runs"));
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(out).join("compress.json")).expect("json"),
        )
        .expect("parses");
        let rows = json["variants"].as_array().expect("rows").clone();
        let original = rows[0].clone();
        let int8 = rows
            .into_iter()
            .find(|r| r["int8"] == true)
            .expect("an int8 row");
        (original, int8)
    };
    let (original, fast) = row("a", false);
    let (_, portable) = row("b", true);
    let acc = |r: &serde_json::Value| r["test_accuracy"].as_f64().expect("accuracy");
    assert!(
        (acc(&fast) - acc(&original)).abs() < 0.02,
        "{fast} vs {original}"
    );
    // Integer sums are exact: both kernels classify every test image alike.
    assert_eq!(acc(&fast), acc(&portable));
    assert!(
        portable["name"]
            .as_str()
            .is_some_and(|n| n.contains("portable"))
    );
    let size = |r: &serde_json::Value| r["size_bytes"].as_u64().expect("size") as f64;
    assert!(size(&fast) < 0.3 * size(&original), "{fast} vs {original}");
    assert!(tmp.path().join("a/int8/model_int8.safetensors").is_file());
}

#[test]
fn bad_input_is_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = trained(tmp.path());
    for (args, what) in [
        (vec!["--sparsity", "1.0"], "must be in [0, 1)"),
        (vec!["--sparsity=-0.1"], "must be in [0, 1)"),
    ] {
        let o = trainlab()
            .arg("compress")
            .args(&args)
            .arg(&run)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(what),
            "{args:?}"
        );
    }
    let o = trainlab()
        .arg("compress")
        .arg(tmp.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no trained model"));
    assert!(
        !run.join("compressed").exists(),
        "nothing made for bad input"
    );
}
