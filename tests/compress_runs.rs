//! `trainlab compress` on a real (small) trained run: pruned weights are really
//! zero at the requested sparsity, the masks survive fine-tuning, every variant
//! is a run folder that loads like any other (and can start another run), and
//! bad input is exit 2 with a clear message.

use std::path::Path;
use std::process::{Command, Output};

use trainlab::infer::load_saved_model;
use trainlab::spec::{DatasetSpec, ImageDatasetSpec, TrainingSpec, to_ron_string};
use trainlab::train::prune::prunable;

fn trainlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainlab"))
}

/// Trains the default MLP on part of the bundled digits into `dir/run`.
fn trained(dir: &Path) -> std::path::PathBuf {
    trained_model(dir, trainlab::spec::Experiment::default().model)
}

/// Trains `model` on part of the bundled digits into `dir/run`.
fn trained_model(dir: &Path, model: Vec<trainlab::spec::LayerSpec>) -> std::path::PathBuf {
    let exp = trainlab::spec::Experiment {
        model,
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

/// `compress --int8` on `run` with the int8 kernel `kernel` (None: the best
/// here): the original's and the int8 variant's rows of compress.json.
fn int8_rows(
    run: &Path,
    out: &Path,
    kernel: Option<&str>,
) -> (serde_json::Value, serde_json::Value) {
    let mut cmd = trainlab();
    cmd.args(["compress", "--sparsity", "0.5", "--int8", "--out"])
        .arg(out)
        .arg(run);
    if let Some(k) = kernel {
        cmd.env("TRAINLAB_INT8", k);
    }
    ok(&cmd.output().expect("runs"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compress.json")).expect("json"))
            .expect("parses");
    let rows = json["variants"].as_array().expect("rows").clone();
    let original = rows[0].clone();
    let int8 = rows
        .into_iter()
        .find(|r| r["int8"] == true)
        .expect("an int8 row");
    (original, int8)
}

/// The int8 copy keeps the accuracy within 2 points in under 30 % of the
/// size, and every kernel (VNNI, AVX2, portable: integer sums are exact)
/// classifies every test image alike.
fn int8_holds(run: &Path, tmp: &Path) {
    let (original, best) = int8_rows(run, &tmp.join("best"), None);
    let acc = |r: &serde_json::Value| r["test_accuracy"].as_f64().expect("accuracy");
    assert!(
        (acc(&best) - acc(&original)).abs() < 0.02,
        "{best} vs {original}"
    );
    for kernel in ["avx2", "portable"] {
        let (_, other) = int8_rows(run, &tmp.join(kernel), Some(kernel));
        assert_eq!(acc(&best), acc(&other), "{kernel}");
        assert!(
            other["name"].as_str().is_some_and(|n| n.contains(kernel))
                || !cfg!(target_arch = "x86_64"),
            "{other}"
        );
    }
    let size = |r: &serde_json::Value| r["size_bytes"].as_u64().expect("size") as f64;
    assert!(size(&best) < 0.3 * size(&original), "{best} vs {original}");
    assert!(tmp.join("best/int8/model_int8.safetensors").is_file());
}

#[test]
fn int8_keeps_the_accuracy_in_a_quarter_of_the_size_on_every_kernel() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = trained(tmp.path());
    int8_holds(&run, tmp.path());
}

#[test]
fn an_int8_cnn_keeps_the_accuracy_on_every_kernel() {
    use trainlab::spec::LayerSpec;
    let tmp = tempfile::tempdir().expect("tmp");
    let conv = |out, padding| LayerSpec::Conv2d {
        out,
        kernel: 3,
        stride: 1,
        padding,
    };
    let run = trained_model(
        tmp.path(),
        vec![
            conv(8, 1),
            LayerSpec::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            LayerSpec::ReLU,
            LayerSpec::MaxPool2d {
                kernel: 2,
                stride: None,
            },
            conv(16, 0),
            LayerSpec::ReLU,
            LayerSpec::MaxPool2d {
                kernel: 2,
                stride: None,
            },
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 10 },
        ],
    );
    int8_holds(&run, tmp.path());
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
