//! int8 inference of the seed MLP (784-128-10) against f32, and against
//! PyTorch's dynamic int8 quantisation of the same MLP (`quantize_dynamic`),
//! same machine, same run, batch 1 and 64, medians of three alternating rounds.
//!
//! Run: `cargo bench --bench int8` (PyTorch from $TRAINLAB_PYTHON,
//! /opt/trainlab-torch/bin/python or python3; skipped, with a note, without it).
//! `TRAINLAB_INT8=portable` measures the portable kernel instead of AVX2.

use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use trainlab::model::{Mode, Model};
use trainlab::quant::Int8Model;
use trainlab::spec::LayerSpec;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 3;

fn samples_per_sec(batch: usize, mut pass: impl FnMut()) -> f64 {
    pass();
    let began = Instant::now();
    let mut n = 0u64;
    while began.elapsed() < Duration::from_millis(500) || n < 3 {
        pass();
        n += 1;
    }
    (n * batch as u64) as f64 / began.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const TORCH: &str = r#"
import json, time, torch
from torch import nn
torch.manual_seed(0)
torch.set_num_threads(int(__import__("os").environ.get("THREADS", "0")) or torch.get_num_threads())
f32 = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
q = torch.ao.quantization.quantize_dynamic(f32, {nn.Linear}, dtype=torch.qint8)
def rate(model, batch):
    x = torch.randn(batch, 1, 28, 28)
    with torch.no_grad():
        model(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5 or n < 3:
            model(x); n += 1
        return n * batch / (time.perf_counter() - t0)
print(json.dumps({f"{k}_{b}": rate(m, b) for k, m in (("f32", f32), ("int8", q)) for b in (1, 64)}))
"#;

fn python() -> Option<std::path::PathBuf> {
    [
        std::env::var_os("TRAINLAB_PYTHON").map(Into::into),
        Some("/opt/trainlab-torch/bin/python".into()),
        Some("python3".into()),
    ]
    .into_iter()
    .flatten()
    .find(|p: &std::path::PathBuf| {
        Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn main() {
    // As the trainlab binary does: candle otherwise asks for its thread count on
    // every matmul, which dominates a batch-1 pass.
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    let layers = vec![
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 128 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 10 },
    ];
    let model = Model::build(&layers, &[1, 28, 28], 1, &Device::Cpu).expect("model");
    let mut rng = trainlab::util::rng::Rng::new(3);
    let calibration: Vec<Vec<f32>> = (0..256)
        .map(|_| (0..784).map(|_| rng.normal() as f32).collect())
        .collect();
    let q = Int8Model::quantise(&model, &layers, &calibration).expect("quantises");
    let python = python();
    let mut ours: Vec<[f64; 4]> = Vec::new();
    let mut torch: Vec<serde_json::Value> = Vec::new();
    for _ in 0..ROUNDS {
        let mut row = [0.0; 4];
        for (k, batch) in [1usize, 64].into_iter().enumerate() {
            let x = Tensor::zeros((batch, 1, 28, 28), candle_core::DType::F32, &Device::Cpu)
                .expect("x");
            row[k] = samples_per_sec(batch, || {
                model.forward(&x, Mode::Eval).expect("forward");
            });
            let rows = vec![vec![0.1f32; 784]; batch];
            row[2 + k] = samples_per_sec(batch, || {
                q.forward(&rows);
            });
        }
        ours.push(row);
        if let Some(p) = &python
            && let Ok(o) = Command::new(p).args(["-c", TORCH]).output()
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout)
        {
            torch.push(v);
        }
    }
    let col = |i: usize| median(ours.iter().map(|r| r[i]).collect());
    println!(
        "int8 kernel: {:?}; samples/s, medians of {ROUNDS} rounds",
        q.kernel()
    );
    println!("{:<28} {:>12} {:>12}", "", "batch 1", "batch 64");
    println!("{:<28} {:>12.0} {:>12.0}", "trainlab f32", col(0), col(1));
    println!("{:<28} {:>12.0} {:>12.0}", "trainlab int8", col(2), col(3));
    if torch.is_empty() {
        println!("PyTorch: not measured (no Python with torch found)");
        return;
    }
    let t = |k: &str| median(torch.iter().filter_map(|v| v[k].as_f64()).collect());
    println!(
        "{:<28} {:>12.0} {:>12.0}",
        "PyTorch f32",
        t("f32_1"),
        t("f32_64")
    );
    println!(
        "{:<28} {:>12.0} {:>12.0}",
        "PyTorch int8 (dynamic)",
        t("int8_1"),
        t("int8_64")
    );
    println!(
        "trainlab int8 / PyTorch int8: batch 1 {:.2}x, batch 64 {:.2}x; trainlab int8 / f32: {:.2}x, {:.2}x",
        col(2) / t("int8_1"),
        col(3) / t("int8_64"),
        col(2) / col(0),
        col(3) / col(1)
    );
}
