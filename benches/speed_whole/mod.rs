//! Whole-run mode of the speed bench (`cargo bench --bench speed -- whole`):
//! `trainlab run` of three shipped experiments as they are (validation, dropout,
//! logging, checkpoints, the test pass, the saved weights) against
//! benches/pytorch_whole.py doing the same work, alternating, medians reported.
//!
//! Contract: both sides are timed the same way, from the start of data loading
//! to the end of the run (trainlab's `summary.json` wall seconds; the script's
//! own clock, after Python has imported torch), over the same number of trained
//! items; the PyTorch side trains as many epochs as trainlab did (early
//! stopping). GFLOP/s are the training FLOPs per item (the step bench's counts)
//! times items, over the whole run's and over the steps' seconds. With
//! `--warm-up`, each side runs once more first, printed apart and left out of the
//! medians, so that the first (cold) run's costs are seen apart from the warm ones.

use std::path::Path;
use std::process::Command;

/// The shipped experiments and the step-bench case whose FLOPs per item they share.
pub const EXPERIMENTS: [(&str, &str); 3] = [
    ("fashion_mlp", "mlp"),
    ("mnist_cnn", "cnn"),
    ("text_charlm_lstm", "lstm"),
];

/// One whole run, either side.
#[derive(Debug, Clone, Copy)]
pub struct Whole {
    /// Wall seconds from data loading to the end.
    pub wall: f64,
    /// Seconds in training steps only.
    pub train: f64,
    /// Items (samples, tokens) trained on.
    pub items: f64,
    /// Epochs trained.
    pub epochs: f64,
}

/// `trainlab run experiments/<name>.ron` into a fresh folder; its summary.
pub fn ours(name: &str, threads: Option<usize>) -> Result<Whole, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let run_dir = out.path().join("run");
    // `TRAINLAB_BIN`: time another build (an installed one, a copy kept apart).
    let bin =
        std::env::var_os("TRAINLAB_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_trainlab").into());
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(
            Path::new(root)
                .join("experiments")
                .join(format!("{name}.ron")),
        )
        .arg("--out")
        .arg(&run_dir);
    if let Some(n) = threads {
        cmd.env("RAYON_NUM_THREADS", n.to_string());
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        return Err(format!("trainlab run {name}: {}", err.trim()));
    }
    let text = std::fs::read(run_dir.join("summary.json")).map_err(|e| e.to_string())?;
    let s: serde_json::Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let num = |k: &str| s[k].as_f64().ok_or_else(|| format!("summary has no {k}"));
    Ok(Whole {
        wall: num("wall_seconds")?,
        train: num("train_seconds")?,
        items: num("samples_per_sec")? * num("train_seconds")?,
        epochs: num("epochs")?,
    })
}

/// benches/pytorch_whole.py for `name`, `epochs` epochs (rounded up).
pub fn torch(python: &str, name: &str, epochs: f64, threads: usize) -> Result<Whole, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_whole.py");
    let mut cmd = Command::new(python);
    pytorch_at_our_level(&mut cmd);
    let o = cmd
        .args([script, "--experiment", name, "--json", "--threads"])
        .arg(threads.to_string())
        .arg("--epochs")
        .arg((epochs.ceil() as usize).max(1).to_string())
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        return Err(format!("pytorch_whole.py {name}: {}", err.trim()));
    }
    let v: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no result in: {text}"))?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| format!("no {k} in: {text}"));
    Ok(Whole {
        wall: num("wall_seconds")?,
        train: num("train_seconds")?,
        items: num("items")?,
        epochs: epochs.ceil(),
    })
}

/// Under `TRAINLAB_SIMD=avx2`, limits the PyTorch process `cmd` to AVX2 as well:
/// its own kernels (ATen), oneDNN and MKL each read a variable of their own; one
/// the user set wins. (trainlab's children inherit `TRAINLAB_SIMD` itself.)
/// Either way it runs with the system's huge-page setting, not trainlab's.
pub fn pytorch_at_our_level(cmd: &mut Command) {
    trainlab::util::allocator::system_huge_pages_for(cmd);
    if trainlab::util::simd::level() != trainlab::util::simd::Level::Avx2 {
        return;
    }
    for (var, value) in [
        ("ATEN_CPU_CAPABILITY", "avx2"),
        ("ONEDNN_MAX_CPU_ISA", "AVX2"),
        ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
    ] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, value);
        }
    }
}

/// The faster (by wall time) of [`torch`] at each of `threads`, each printed.
fn best_torch(python: &str, name: &str, epochs: f64, threads: &[usize]) -> Result<Whole, String> {
    let mut best: Option<Whole> = None;
    let mut error = None;
    for &n in threads {
        match torch(python, name, epochs, n) {
            Ok(t) => {
                println!(
                    "  {name} run: pytorch {:.0}/s in {:.1} s ({n} thread{})",
                    t.items / t.wall,
                    t.wall,
                    if n == 1 { "" } else { "s" }
                );
                if best.is_none_or(|b| t.wall < b.wall) {
                    best = Some(t);
                }
            }
            Err(e) => error = Some(e),
        }
    }
    best.ok_or_else(|| error.unwrap_or_default())
}

/// The median of each figure over `runs`.
pub fn median(runs: &[Whole]) -> Option<Whole> {
    let pick = |f: fn(&Whole) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (!runs.is_empty()).then(|| Whole {
        wall: pick(|w| w.wall),
        train: pick(|w| w.train),
        items: pick(|w| w.items),
        epochs: pick(|w| w.epochs),
    })
}

/// Runs the whole-run comparison for the experiments in `only` (all when
/// empty), `repeat` times each side in turn, and prints the table.
pub fn run(
    only: &[String],
    python: Option<&str>,
    repeat: usize,
    threads: Option<usize>,
    flops_of: &dyn Fn(&str) -> f64,
    peak: f64,
    warm_up: bool,
) {
    // As the step bench: PyTorch at its better of 1 and 2 threads unless told
    // (on a busy machine its second thread can cost it more than half).
    let torch_threads = threads.map_or(vec![1, 2], |n| vec![n]);
    println!(
        "whole runs (`trainlab run experiments/<name>.ron` as shipped vs benches/pytorch_whole.py, \
         PyTorch threads: best of {torch_threads:?}); items/s = items trained / wall seconds of \
         the run; step/s = the same over training-step seconds only"
    );
    println!(
        "{:<17} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>18} {:>18}",
        "experiment",
        "ours run/s",
        "torch run/s",
        "ratio",
        "ours step/s",
        "torch step/s",
        "ratio",
        "ours GFLOP/s run",
        "ours GFLOP/s step"
    );
    for (name, case) in EXPERIMENTS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        if warm_up {
            // Not counted: the first run of a sitting reads the binary, the data
            // and the libraries from disk and finds the allocator's pages cold.
            match ours(name, threads) {
                Ok(w) => {
                    println!(
                        "  {name} warm-up (not counted): trainlab {:.0}/s in {:.1} s ({:.1} s in \
                         steps: run speed {:.0} % of step speed)",
                        w.items / w.wall,
                        w.wall,
                        w.train,
                        100.0 * w.train / w.wall
                    );
                    if let Some(py) = python {
                        match torch(py, name, w.epochs, torch_threads[0]) {
                            Ok(t) => println!(
                                "  {name} warm-up (not counted): pytorch {:.0}/s in {:.1} s",
                                t.items / t.wall,
                                t.wall
                            ),
                            Err(e) => println!("  {name} warm-up: pytorch: {e}"),
                        }
                    }
                }
                Err(e) => println!("  {name} warm-up: trainlab: {e}"),
            }
        }
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            match ours(name, threads) {
                Ok(w) => {
                    // The measure of the work around the steps: the run's
                    // speed as a share of its own steps' speed (target >= 85 %).
                    println!(
                        "  {name} run: trainlab {:.0}/s in {:.1} s ({:.1} s in steps: \
                         run speed {:.0} % of step speed)",
                        w.items / w.wall,
                        w.wall,
                        w.train,
                        100.0 * w.train / w.wall
                    );
                    if let Some(py) = python {
                        match best_torch(py, name, w.epochs, &torch_threads) {
                            Ok(t) => theirs.push(t),
                            Err(e) => println!("  {name}: pytorch: {e}"),
                        }
                    }
                    mine.push(w);
                }
                Err(e) => println!("  {name}: trainlab: {e}"),
            }
        }
        let (Some(m), t) = (median(&mine), median(&theirs)) else {
            continue;
        };
        let speed = |w: &Whole, secs: f64| w.items / secs;
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".into(), |b| format!("{:.2}x", a / b));
        let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        let gflops = |secs: f64| {
            let g = m.items * flops_of(case) / secs / 1e9;
            format!("{g:.1} ({:.0} %)", 100.0 * g / peak)
        };
        println!(
            "{:<17} {:>12.0} {:>12} {:>7} {:>12.0} {:>12} {:>7} {:>18} {:>18}",
            name,
            speed(&m, m.wall),
            show(t.map(|t| speed(&t, t.wall))),
            ratio(speed(&m, m.wall), t.map(|t| speed(&t, t.wall))),
            speed(&m, m.train),
            show(t.map(|t| speed(&t, t.train))),
            ratio(speed(&m, m.train), t.map(|t| speed(&t, t.train))),
            gflops(m.wall),
            gflops(m.train)
        );
    }
}
