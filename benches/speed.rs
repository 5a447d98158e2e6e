//! Training-speed benchmark: trainlab's real training loop against the PyTorch
//! reference script (benches/pytorch_reference.py), same models, same batch size,
//! same machine, in one run. Prints samples/s for each and the ratio.
//!
//! The `lstm` case (a char-LSTM language model) is compared in tokens/s.
//!
//! Run: `cargo bench --bench speed` (add `-- mlp`, `-- cnn` or `-- lstm` for one model,
//! `-- --no-torch` to skip PyTorch, `-- --repeat N` to run both N times in turn and
//! report medians: a shared VM's speed drifts by several per cent between runs;
//! `-- --device cuda` trains trainlab's side on GPU 0, in a `--features cuda` build,
//! while the PyTorch reference stays on the CPU).
//! Samples/s count training steps only (forward, backward, optimizer), not evaluation.

use std::process::Command;

use trainlab::spec::{
    DatasetSpec, DeviceSpec, Experiment, ImageDatasetSpec, LanguageModelSpec, LayerSpec,
    TextDatasetSpec, TextTask, TrainingSpec,
};
use trainlab::train::{StartOptions, TrainEvent, start};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 64;
/// Batches per epoch of the bundled sample used for timing.
const STEPS_PER_EPOCH: usize = 140;

struct Case {
    name: &'static str,
    layers: Vec<LayerSpec>,
    steps: usize,
    /// A character language model on the bundled words (speeds are tokens/s).
    text: bool,
    /// Training FLOPs per sample (per token for the LSTM): 2 per multiply-add, and
    /// 3x the forward pass for forward + backward (the usual convention; the
    /// first layer's skipped input gradient is not subtracted).
    flops: f64,
}

fn cases() -> Vec<Case> {
    use LayerSpec::*;
    vec![
        Case {
            name: "mlp",
            layers: vec![Flatten, Linear { out: 128 }, ReLU, Linear { out: 10 }],
            steps: 2100,
            text: false,
            flops: 6.0 * (784.0 * 128.0 + 128.0 * 10.0),
        },
        Case {
            name: "cnn",
            layers: vec![
                Conv2d {
                    out: 32,
                    kernel: 3,
                    stride: 1,
                    padding: 0,
                },
                ReLU,
                Conv2d {
                    out: 64,
                    kernel: 3,
                    stride: 1,
                    padding: 0,
                },
                ReLU,
                MaxPool2d {
                    kernel: 2,
                    stride: None,
                },
                Flatten,
                Linear { out: 128 },
                ReLU,
                Linear { out: 10 },
            ],
            steps: 140,
            text: false,
            // conv1 26x26x32x9, conv2 24x24x64x288, fc 9216x128, fc 128x10
            flops: 6.0
                * (26.0 * 26.0 * 32.0 * 9.0 + 24.0 * 24.0 * 64.0 * 288.0 + 9216.0 * 128.0 + 1280.0),
        },
        // The reference's char-LSTM: embedding 64, one LSTM layer of 256, seq 64,
        // batch 32, Adam; its vocabulary is 96 random ids, ours the bundled
        // words' characters (a slightly smaller output layer).
        Case {
            name: "lstm",
            layers: vec![
                Embedding { dim: 64 },
                LSTM {
                    hidden: 256,
                    layers: 1,
                    dropout: 0.0,
                },
            ],
            steps: 110,
            text: true,
            // Input projection 64x1024 and recurrence 256x1024 per token; the output
            // layer (256 x vocabulary, under 8 % more) is left out for both.
            flops: 6.0 * (64.0 * 1024.0 + 256.0 * 1024.0),
        },
    ]
}

/// Trains `case` on `device` through the public worker API and returns
/// (samples/s, peak RSS).
fn trainlab_speed(case: &Case, device: DeviceSpec) -> Result<(f64, Option<u64>), String> {
    let mut exp = if case.text {
        char_lm(case)
    } else {
        Experiment {
            name: format!("bench_{}", case.name),
            model: case.layers.clone(),
            dataset: DatasetSpec::Images(ImageDatasetSpec {
                train_limit: Some(BATCH * STEPS_PER_EPOCH),
                test_limit: Some(100),
                val_fraction: 0.0,
                ..ImageDatasetSpec::default()
            }),
            training: TrainingSpec {
                epochs: case.steps.div_ceil(STEPS_PER_EPOCH),
                batch_size: BATCH,
                log_every_steps: 50,
                save_weights: false,
                ..TrainingSpec::default()
            },
            ..Experiment::default()
        }
    };
    exp.device = device;
    let handle = start(exp, StartOptions::default());
    let mut result = Err("no events".to_string());
    for event in handle.events().iter() {
        match event {
            TrainEvent::Finished(s) => result = Ok((s.samples_per_sec, s.peak_rss_bytes)),
            TrainEvent::Failed { message, .. } => result = Err(message),
            _ => {}
        }
    }
    handle.join();
    result
}

/// The lstm case as a text experiment: `case.steps` steps of 32 windows of 64.
fn char_lm(case: &Case) -> Experiment {
    let steps_per_epoch = 40;
    Experiment {
        name: format!("bench_{}", case.name),
        model: case.layers.clone(),
        dataset: DatasetSpec::Text(TextDatasetSpec {
            // Enough words for 40 steps of 32 x 64 characters per epoch.
            limit: Some(steps_per_epoch * 32 * 64 / 9),
            val_fraction: 0.0,
            test_fraction: 0.0,
            task: TextTask::LanguageModel(LanguageModelSpec {
                seq_len: 64,
                sample_every_steps: None,
                ..LanguageModelSpec::default()
            }),
            ..TextDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs: case.steps.div_ceil(steps_per_epoch),
            batch_size: 32,
            log_every_steps: 50,
            eval_every_steps: Some(1_000_000),
            save_weights: false,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

/// PyTorch's best samples/s over 1 and 2 threads, or why it could not run.
fn torch_speed(model: &str) -> Result<f64, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_reference.py");
    let out = Command::new("python3")
        .args([script, "--model", model, "--best-threads", "--json"])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["model"] == model)
        .and_then(|v| {
            // The language model is compared in tokens/s, like ours.
            let key = if model == "lstm" {
                "tokens_per_sec"
            } else {
                "samples_per_sec"
            };
            v[key].as_f64()
        })
        .ok_or_else(|| format!("no result for {model} in: {text}"))
}

/// One measurement: trainlab's (speed, peak RSS) and PyTorch's speed, or why not.
type Measured = (Result<(f64, Option<u64>), String>, Result<f64, String>);

/// The runs' medians (the peak RSS is the largest); a side that failed every time
/// gives its first error.
fn median_run(runs: Vec<Measured>) -> Measured {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ours: Vec<(f64, Option<u64>)> = runs.iter().filter_map(|(o, _)| o.clone().ok()).collect();
    let torch: Vec<f64> = runs.iter().filter_map(|(_, t)| t.clone().ok()).collect();
    let first_err = |i: usize| {
        runs.iter()
            .find_map(|r| {
                if i == 0 {
                    r.0.clone().err()
                } else {
                    r.1.clone().err()
                }
            })
            .unwrap_or_default()
    };
    let ours = if ours.is_empty() {
        Err(first_err(0))
    } else {
        let rss = ours.iter().filter_map(|(_, r)| *r).max();
        Ok((median(ours.iter().map(|(s, _)| *s).collect()), rss))
    };
    let torch = if torch.is_empty() {
        Err(first_err(1))
    } else {
        Ok(median(torch))
    };
    (ours, torch)
}

/// f32 GEMM throughput of this machine in GFLOP/s: the best of five 1024^3
/// products on every core with the GEMM library candle uses (AVX-512 where the
/// CPU has it). The practical ceiling that the models' figures are compared to.
fn gemm_peak() -> f64 {
    let n = 1024;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let start = std::time::Instant::now();
        // SAFETY: three dense row-major n x n buffers, strides as given.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            );
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(&c);
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// The command line: model names to run (all when empty) and the options.
struct Args {
    only: Vec<String>,
    skip_torch: bool,
    repeat: usize,
    device: DeviceSpec,
}

/// Reads the bench's arguments; flags it does not know (cargo passes `--bench`)
/// are ignored.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        only: Vec::new(),
        skip_torch: false,
        repeat: 1,
        device: DeviceSpec::Cpu,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-torch" => parsed.skip_torch = true,
            "--repeat" => {
                parsed.repeat = args
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--repeat takes a count of at least 1")?;
            }
            "--device" => {
                parsed.device = match args.next().as_deref() {
                    Some("cpu") => DeviceSpec::Cpu,
                    Some("cuda") => DeviceSpec::Cuda(0),
                    Some("metal") => DeviceSpec::Metal(0),
                    other => {
                        return Err(format!("--device takes cpu, cuda or metal, not {other:?}"));
                    }
                };
            }
            flag if flag.starts_with('-') => {}
            name => parsed.only.push(name.to_string()),
        }
    }
    Ok(parsed)
}

fn main() {
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    let Args {
        only,
        skip_torch,
        repeat,
        device,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let peak = gemm_peak();
    println!("f32 GEMM ceiling on this machine (1024^3, all cores): {peak:.0} GFLOP/s");
    println!(
        "{:<6} {:>16} {:>16} {:>8} {:>12} {:>22} {:>22}",
        "model",
        "trainlab smp/s",
        "pytorch smp/s",
        "ratio",
        "peak RSS",
        "trainlab GFLOP/s",
        "pytorch GFLOP/s"
    );
    for case in cases() {
        if !only.is_empty() && !only.iter().any(|o| o == case.name) {
            continue;
        }
        // Alternate the two so that a drift of the machine's speed hits both.
        let mut runs = Vec::new();
        for _ in 0..repeat {
            let ours = trainlab_speed(&case, device);
            let torch = if skip_torch {
                Err("skipped".to_string())
            } else {
                torch_speed(case.name)
            };
            runs.push((ours, torch));
        }
        if repeat > 1 {
            let each =
                |r: &Result<f64, String>| r.as_ref().map_or("-".into(), |v| format!("{v:.0}"));
            for (ours, torch) in &runs {
                let ours = ours.as_ref().map(|(s, _)| *s).map_err(Clone::clone);
                println!(
                    "  {} run: trainlab {}, pytorch {}",
                    case.name,
                    each(&ours),
                    each(torch)
                );
            }
        }
        let (ours, torch) = median_run(runs);
        let fmt = |r: &Result<f64, String>| match r {
            Ok(v) => format!("{v:.0}"),
            Err(_) => "-".into(),
        };
        let gflops = |r: &Result<f64, String>| match r {
            Ok(v) => {
                let g = v * case.flops / 1e9;
                format!("{g:.1} ({:.0} %)", 100.0 * g / peak)
            }
            Err(_) => "-".into(),
        };
        let ours_speed = ours.as_ref().map(|(s, _)| *s).map_err(Clone::clone);
        let ratio = match (&ours_speed, &torch) {
            (Ok(a), Ok(b)) => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        let rss = ours
            .as_ref()
            .ok()
            .and_then(|(_, r)| *r)
            .map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0));
        println!(
            "{:<6} {:>16} {:>16} {:>8} {:>12} {:>22} {:>22}",
            case.name,
            fmt(&ours_speed),
            fmt(&torch),
            ratio,
            rss,
            gflops(&ours_speed),
            gflops(&torch)
        );
        for (who, r) in [("trainlab", &ours_speed), ("pytorch", &torch)] {
            if let Err(e) = r {
                println!("       {who}: {e}");
            }
        }
    }
}
