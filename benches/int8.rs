//! int8 inference of the seed MLP (784-128-10) and of the MNIST CNN against
//! f32, on every int8 kernel this CPU runs (VNNI, AVX2, portable), and against
//! PyTorch's int8 of the same models (dynamic quantisation for the MLP, eager
//! static quantisation with the x86 backend for the CNN): same machine, same
//! run, batch 1 and 64, medians of three alternating rounds.
//!
//! Run: `cargo bench --bench int8 [-- mlp|cnn]` (PyTorch from $TRAINLAB_PYTHON,
//! /opt/trainlab-torch/bin/python or python3; skipped, with a note, without it).

use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use trainlab::model::{Mode, Model};
use trainlab::quant::{Int8Kernel, Int8Model};
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

/// `batch` samples of 784 values, back to back (the arithmetic does not
/// depend on them; these cover the codes' range).
fn input(batch: usize) -> Vec<f32> {
    (0..batch * 784)
        .map(|i| ((i + i / 784) % 7) as f32 * 0.2 - 0.6)
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const TORCH: &str = r#"
import copy, json, os, time, torch
from torch import nn
import torch.ao.quantization as tq
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("THREADS", "0")) or torch.get_num_threads())
def rate(model, batch):
    x = torch.randn(batch, 1, 28, 28)
    with torch.no_grad():
        model(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5 or n < 3:
            model(x); n += 1
        return n * batch / (time.perf_counter() - t0)
class Static(nn.Module):
    # Eager-mode static quantisation: int8 between the stubs.
    def __init__(self, m):
        super().__init__()
        self.q, self.m, self.d = tq.QuantStub(), m, tq.DeQuantStub()
    def forward(self, x):
        return self.d(self.m(self.q(x)))
out = {}
if os.environ["MODEL"] == "mlp":
    f32 = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    q = tq.quantize_dynamic(f32, {nn.Linear}, dtype=torch.qint8)
else:
    f32 = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(),
                        nn.Linear(128, 10)).eval()
    q = Static(copy.deepcopy(f32)).eval()
    q.qconfig = tq.get_default_qconfig("x86")
    tq.prepare(q, inplace=True)
    with torch.no_grad():
        q(torch.randn(256, 1, 28, 28))
    tq.convert(q, inplace=True)
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

/// One model's figures: trainlab f32, trainlab int8 on each kernel, PyTorch.
fn bench(name: &str, layers: &[LayerSpec], python: Option<&std::path::Path>) {
    let model = Model::build(layers, &[1, 28, 28], 1, &Device::Cpu).expect("model");
    let mut rng = trainlab::util::rng::Rng::new(3);
    let calibration: Vec<Vec<f32>> = (0..256)
        .map(|_| (0..784).map(|_| rng.normal() as f32).collect())
        .collect();
    let q = Int8Model::quantise(&model, layers, &calibration).expect("quantises");
    let kernels = Int8Kernel::available();
    // The fused pass is the layer-by-layer one, bit for bit, on every kernel.
    for &k in &kernels {
        let mut qk = q.clone();
        qk.set_kernel(k);
        let x = input(64);
        assert_eq!(qk.forward_flat(&x, 64), qk.forward_unfused(&x, 64), "{k:?}");
    }
    // Per round: f32 at batch 1 and 64, then each kernel at batch 1 and 64.
    let mut ours: Vec<Vec<f64>> = Vec::new();
    let mut torch: Vec<serde_json::Value> = Vec::new();
    for _ in 0..ROUNDS {
        let mut row = Vec::new();
        for batch in [1usize, 64] {
            let x = Tensor::zeros((batch, 1, 28, 28), candle_core::DType::F32, &Device::Cpu)
                .expect("x");
            row.push(samples_per_sec(batch, || {
                model.forward(&x, Mode::Eval).expect("forward");
            }));
        }
        for &k in &kernels {
            let mut qk = q.clone();
            qk.set_kernel(k);
            for batch in [1usize, 64] {
                let x = input(batch);
                row.push(samples_per_sec(batch, || {
                    qk.forward_flat(&x, batch);
                }));
            }
        }
        // The best kernel once more, layer by layer (quantise, product,
        // rescale, then each f32 step on its own): what fusing gained.
        for batch in [1usize, 64] {
            let x = input(batch);
            row.push(samples_per_sec(batch, || {
                q.forward_unfused(&x, batch);
            }));
        }
        ours.push(row);
        if let Some(p) = python
            && let Ok(o) = Command::new(p)
                .args(["-c", TORCH])
                .env("MODEL", name)
                .output()
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout)
        {
            torch.push(v);
        }
    }
    let col = |i: usize| median(ours.iter().map(|r| r[i]).collect());
    println!("\n{name}: samples/s, medians of {ROUNDS} alternating rounds");
    println!("{:<28} {:>12} {:>12}", "", "batch 1", "batch 64");
    println!("{:<28} {:>12.0} {:>12.0}", "trainlab f32", col(0), col(1));
    for (i, k) in kernels.iter().enumerate() {
        let label = format!("trainlab int8 ({k:?})").to_lowercase();
        println!(
            "{label:<28} {:>12.0} {:>12.0}",
            col(2 + 2 * i),
            col(3 + 2 * i)
        );
    }
    let best = 2 + 2 * (kernels.len() - 1);
    let unfused = 2 + 2 * kernels.len();
    let label = format!("int8 unfused ({:?})", q.kernel()).to_lowercase();
    println!(
        "{:<28} {:>12.0} {:>12.0}",
        format!("trainlab {label}"),
        col(unfused),
        col(unfused + 1)
    );
    println!(
        "best trainlab int8 / trainlab f32: batch 1 {:.2}x, batch 64 {:.2}x; fused / unfused: {:.2}x, {:.2}x",
        col(best) / col(0),
        col(best + 1) / col(1),
        col(best) / col(unfused),
        col(best + 1) / col(unfused + 1)
    );
    if torch.is_empty() {
        println!("PyTorch: not measured (no Python with torch found)");
        return;
    }
    let t = |k: &str| median(torch.iter().filter_map(|v| v[k].as_f64()).collect());
    let how = if name == "mlp" { "dynamic" } else { "static" };
    println!(
        "{:<28} {:>12.0} {:>12.0}",
        "PyTorch f32",
        t("f32_1"),
        t("f32_64")
    );
    println!(
        "{:<28} {:>12.0} {:>12.0}",
        format!("PyTorch int8 ({how})"),
        t("int8_1"),
        t("int8_64")
    );
    println!(
        "best trainlab int8 / PyTorch int8: batch 1 {:.2}x, batch 64 {:.2}x",
        col(best) / t("int8_1"),
        col(best + 1) / t("int8_64"),
    );
}

fn main() {
    // As the trainlab binary does: candle otherwise asks for its thread count on
    // every matmul, which dominates a batch-1 pass.
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    let python = python();
    let mlp = vec![
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 128 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 10 },
    ];
    let conv = |out| LayerSpec::Conv2d {
        out,
        kernel: 3,
        stride: 1,
        padding: 0,
    };
    let cnn = vec![
        conv(32),
        LayerSpec::ReLU,
        conv(64),
        LayerSpec::ReLU,
        LayerSpec::MaxPool2d {
            kernel: 2,
            stride: None,
        },
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 128 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 10 },
    ];
    let only = std::env::args().skip(1).find(|a| a == "mlp" || a == "cnn");
    for (name, layers) in [("mlp", &mlp), ("cnn", &cnn)] {
        if only.as_deref().is_none_or(|o| o == name) {
            bench(name, layers, python.as_deref());
        }
    }
}
