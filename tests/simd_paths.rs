//! The hand-written kernels' lower SIMD levels, forced with `TRAINLAB_SIMD`, train
//! the same models as the default (best) level: a char-LSTM, a char-GRU (skinny
//! products, vectorised cells), the MLP (fused loss) and the CNN (im2col, pooling),
//! each for a few steps through the CLI binary, with step losses equal within
//! float rounding. On a CPU
//! without a level the variable falls back to the best one, and the runs agree
//! trivially.

use std::process::Command;

/// (experiment file, its `--set` overrides): a few steps of each model.
const RUNS: [(&str, &[&str]); 4] = [
    ("text_charlm_lstm.ron", &["dataset.limit=2000"]),
    ("text_charlm_gru.ron", &["dataset.limit=2000"]),
    (
        "mnist_mlp.ron",
        &["dataset.train_limit=640", "dataset.test_limit=64"],
    ),
    // The CNN: im2col and the vectorised 2x2 pooling (`model/kernels/`).
    (
        "mnist_cnn.ron",
        &["dataset.train_limit=640", "dataset.test_limit=64"],
    ),
];
/// Steps per run.
const STEPS: &str = "8";

/// The step losses of `file` trained with `TRAINLAB_SIMD=level` (unset for `None`).
fn losses(file: &str, sets: &[&str], level: Option<&str>) -> Vec<f64> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainlab"));
    cmd.arg("run")
        .arg(format!("{}/experiments/{file}", env!("CARGO_MANIFEST_DIR")))
        .args(["--no-record", "--json", "--halt-after", STEPS])
        .args(["--set", "training.log_every_steps=1"]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    cmd.env_remove("TRAINLAB_SIMD");
    if let Some(level) = level {
        cmd.env("TRAINLAB_SIMD", level);
    }
    let out = cmd.output().expect("trainlab runs");
    assert!(
        out.status.success(),
        "{file} at {level:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "Step")
        .filter_map(|v| v["loss"].as_f64())
        .collect()
}

#[test]
fn forced_avx2_and_portable_kernels_train_like_the_default() {
    for (file, sets) in RUNS {
        let best = losses(file, sets, None);
        assert_eq!(best.len(), 8, "{file}: {best:?}");
        assert!(best.iter().all(|l| l.is_finite()), "{file}: {best:?}");
        for level in ["avx2", "portable"] {
            let forced = losses(file, sets, Some(level));
            assert_eq!(forced.len(), best.len(), "{file} at {level}");
            for (step, (a, b)) in forced.iter().zip(&best).enumerate() {
                // Sums in another order differ in the last bits; Adam steps let
                // that grow a little over a few steps, a real bug would not be small.
                assert!(
                    (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                    "{file} at {level}, step {}: {a} vs {b} (all: {forced:?} vs {best:?})",
                    step + 1
                );
            }
        }
    }
}
