//! Training-speed benchmark: trainlab's real training loop against the PyTorch
//! reference script (benches/pytorch_reference.py), same models, same batch size,
//! same machine, in one run. Prints samples/s for each and the ratio, each model's
//! GFLOP/s against the measured GEMM ceiling, and batch-1 inference latency.
//!
//! The char language models (`lstm`, `gru`, `transformer`) are compared in tokens/s;
//! `mlp-infer` (the digit canvas) and `lstm-infer` (one generated character) in
//! forward passes per second, printed as latency.
//!
//! Run: `cargo bench --bench speed` (add model names, e.g. `-- mlp gru`, for some;
//! `-- --no-torch` to skip PyTorch; `-- --repeat N` to run both N times in turn,
//! ours, torch, ours, torch..., and report medians, default 3: a shared VM's speed
//! drifts by several per cent between runs; `-- --threads N` for N threads on both
//! sides instead of all cores here and PyTorch's better of 1 and 2;
//! `-- --device cuda` trains trainlab's side on GPU 0, in a `--features cuda` build,
//! while the PyTorch reference stays on the CPU; `-- whole` (optionally with
//! experiment names) times whole `trainlab run`s of shipped experiments against
//! benches/pytorch_whole.py doing the same work, see speed_whole/mod.rs). `TRAINLAB_SIMD=avx2` measures
//! trainlab's AVX2 kernels (see benches/README.md).
//! Samples/s count training steps only (forward, backward, optimizer), not evaluation.

use std::process::Command;

#[path = "common/python.rs"]
mod python;
#[path = "speed_whole/mod.rs"]
mod speed_whole;

use candle_core::{Device, Tensor};
use trainlab::model::{Mode, Model};
use trainlab::spec::{
    DatasetSpec, DeviceSpec, Experiment, ImageDatasetSpec, LanguageModelSpec, LayerSpec,
    OptimizerSpec, TextDatasetSpec, TextTask, TrainingSpec,
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
    kind: Kind,
    /// FLOPs per sample (per token for the language models): 2 per multiply-add;
    /// for training 3x the forward pass for forward + backward (the usual
    /// convention; the first layer's skipped input gradient is not subtracted).
    flops: f64,
}

/// What a case measures.
enum Kind {
    /// Image classification training on the bundled digits, batch 64.
    Images,
    /// A character language model on the bundled words, batch 32 (speeds are tokens/s).
    Text(TextCase),
    /// Batch-1 forward passes of an untrained model on one input of this shape
    /// (a `[steps, vocabulary]` shape reads token ids, as in `Model::build_with_head`).
    Infer {
        input: Vec<usize>,
        head: Option<usize>,
    },
}

/// A language model's window and optimizer, as in its experiment file.
struct TextCase {
    seq_len: usize,
    optimizer: OptimizerSpec,
    clip: Option<f64>,
}

/// The reference's vocabulary size (its token ids are random; ours are the
/// bundled words' characters, a slightly smaller output layer).
const VOCAB: usize = 96;

/// Every case, in the order the table lists them.
fn cases() -> Vec<Case> {
    let mut all = image_cases();
    all.extend(text_cases());
    all.extend(infer_cases());
    all
}

/// Image classification training on the bundled digits.
fn image_cases() -> Vec<Case> {
    use LayerSpec::*;
    vec![
        Case {
            name: "mlp",
            layers: vec![Flatten, Linear { out: 128 }, ReLU, Linear { out: 10 }],
            steps: 2100,
            kind: Kind::Images,
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
            kind: Kind::Images,
            // conv1 26x26x32x9, conv2 24x24x64x288, fc 9216x128, fc 128x10
            flops: 6.0
                * (26.0 * 26.0 * 32.0 * 9.0 + 24.0 * 24.0 * 64.0 * 288.0 + 9216.0 * 128.0 + 1280.0),
        },
    ]
}

/// Character language models on the bundled words (speeds in tokens/s).
fn text_cases() -> Vec<Case> {
    use LayerSpec::*;
    vec![
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
            kind: Kind::Text(TextCase {
                seq_len: 64,
                optimizer: OptimizerSpec::adam(1e-3),
                clip: None,
            }),
            // Input projection 64x1024 and recurrence 256x1024 per token; the output
            // layer (256 x vocabulary, under 8 % more) is left out for both. The
            // model's FLOPs as PyTorch computes them: trainlab projects each
            // vocabulary entry once instead (benches/README.md).
            flops: 6.0 * (64.0 * 1024.0 + 256.0 * 1024.0),
        },
        // experiments/text_charlm_gru.ron: window 32, Adam 3e-3, clipping at 1.
        Case {
            name: "gru",
            layers: vec![
                Embedding { dim: 64 },
                GRU {
                    hidden: 256,
                    layers: 1,
                    dropout: 0.0,
                },
            ],
            steps: 120,
            kind: Kind::Text(TextCase {
                seq_len: 32,
                optimizer: OptimizerSpec::adam(3e-3),
                clip: Some(1.0),
            }),
            // Input projection 64x768 and recurrence 256x768 per token (output
            // layer left out, as for the LSTM).
            flops: 6.0 * (64.0 * 768.0 + 256.0 * 768.0),
        },
        // experiments/text_charlm_transformer.ron: window 32, two blocks of width
        // 64 (4 heads, feed-forward 256), AdamW 1e-3, clipping at 1.
        Case {
            name: "transformer",
            layers: vec![
                Embedding { dim: 64 },
                PositionEmbedding { context: 32 },
                Transformer {
                    heads: 4,
                    width: 256,
                },
                Transformer {
                    heads: 4,
                    width: 256,
                },
            ],
            steps: 120,
            kind: Kind::Text(TextCase {
                seq_len: 32,
                optimizer: OptimizerSpec::AdamW {
                    lr: 1e-3,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.01,
                },
                clip: Some(1.0),
            }),
            // Per token and block: qkv 64x192, projection 64x64, feed-forward
            // 64x256 + 256x64, and attention scores and mix, 2 x 64 x (window 32)
            // counted whole (the causal half is not subtracted); output layer left out.
            flops: 6.0
                * 2.0
                * (64.0 * 192.0 + 64.0 * 64.0 + 2.0 * 64.0 * 256.0 + 2.0 * 64.0 * 32.0),
        },
    ]
}

/// Batch-1 inference latency: what the workbench's interactive views wait for.
fn infer_cases() -> Vec<Case> {
    use LayerSpec::*;
    vec![
        // The digit canvas: one 28x28 drawing through the MLP.
        Case {
            name: "mlp-infer",
            layers: vec![Flatten, Linear { out: 128 }, ReLU, Linear { out: 10 }],
            steps: 3000,
            kind: Kind::Infer {
                input: vec![1, 28, 28],
                head: None,
            },
            flops: 2.0 * (784.0 * 128.0 + 128.0 * 10.0),
        },
        // Text generation: one character from the char-LSTM, which re-reads its
        // 64-character window (trainlab's generator does this; so does the reference).
        Case {
            name: "lstm-infer",
            layers: vec![
                Embedding { dim: 64 },
                LSTM {
                    hidden: 256,
                    layers: 1,
                    dropout: 0.0,
                },
            ],
            steps: 300,
            kind: Kind::Infer {
                input: vec![64, VOCAB],
                head: Some(VOCAB),
            },
            // 64 positions of input projection and recurrence, plus the output layer.
            flops: 2.0 * 64.0 * (64.0 * 1024.0 + 256.0 * 1024.0 + 256.0 * 96.0),
        },
    ]
}

/// Forward passes per second of `case` (an `Infer` case) on the CPU, from
/// `case.steps` timed passes after a tenth as many untimed ones; each pass reads
/// its answer back, as the digit canvas and the generator do.
fn infer_speed(case: &Case, input: &[usize], head: Option<usize>) -> Result<f64, String> {
    let err = |e: candle_core::Error| e.to_string();
    let device = Device::Cpu;
    let model = Model::build_with_head(&case.layers, input, head, 42, &device).map_err(err)?;
    let x = if head.is_some() {
        let ids: Vec<u32> = (0..input[0] as u32).map(|i| 1 + (i * 37) % 95).collect();
        Tensor::new(ids.as_slice(), &device).and_then(|t| t.unsqueeze(0))
    } else {
        let values: Vec<f32> = (0..input.iter().product::<usize>())
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        Tensor::from_vec(
            values,
            [1].iter().chain(input).copied().collect::<Vec<_>>(),
            &device,
        )
    }
    .map_err(err)?;
    let pass = || -> Result<Vec<f32>, candle_core::Error> {
        let out = model.forward(&x, Mode::Eval)?.get(0)?;
        // Text: the last position's logits, the one the next character is drawn from.
        let out = if head.is_some() {
            out.get(input[0] - 1)?
        } else {
            out
        };
        out.to_vec1::<f32>()
    };
    for _ in 0..case.steps / 10 {
        pass().map_err(err)?;
    }
    let start = std::time::Instant::now();
    for _ in 0..case.steps {
        std::hint::black_box(pass().map_err(err)?);
    }
    Ok(case.steps as f64 / start.elapsed().as_secs_f64())
}

/// Trains `case` on `device` through the public worker API and returns
/// (samples/s, peak RSS); an inference case runs on the CPU (peak RSS not read).
fn trainlab_speed(case: &Case, device: DeviceSpec) -> Result<(f64, Option<u64>), String> {
    let mut exp = match &case.kind {
        Kind::Text(text) => char_lm(case, text),
        Kind::Infer { input, head } => return Ok((infer_speed(case, input, *head)?, None)),
        Kind::Images => Experiment {
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
        },
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

/// A language-model case as a text experiment: `case.steps` steps of 32 windows
/// of `text.seq_len`.
fn char_lm(case: &Case, text: &TextCase) -> Experiment {
    let steps_per_epoch = 40;
    Experiment {
        name: format!("bench_{}", case.name),
        model: case.layers.clone(),
        dataset: DatasetSpec::Text(TextDatasetSpec {
            // Enough words for 40 steps of 32 windows per epoch.
            limit: Some(steps_per_epoch * 32 * text.seq_len / 9),
            val_fraction: 0.0,
            test_fraction: 0.0,
            task: TextTask::LanguageModel(LanguageModelSpec {
                seq_len: text.seq_len,
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
            grad_clip_norm: text.clip,
            save_weights: false,
            ..TrainingSpec::default()
        },
        optimizer: text.optimizer.clone(),
        ..Experiment::default()
    }
}

/// PyTorch's samples/s (tokens/s for the language models, passes/s for
/// inference) at `threads`, or its best over 1 and 2 threads; or why it could not run.
fn torch_speed(python: &str, model: &str, threads: Option<usize>) -> Result<f64, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_reference.py");
    let mut cmd = Command::new(python);
    cmd.args([script, "--model", model, "--json"]);
    // The same instruction set for PyTorch under TRAINLAB_SIMD=avx2.
    speed_whole::pytorch_at_our_level(&mut cmd);
    match threads {
        Some(n) => cmd.args(["--threads", &n.to_string()]),
        None => cmd.arg("--best-threads"),
    };
    let out = cmd.output().map_err(|e| format!("{python}: {e}"))?;
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
            let key = if matches!(model, "lstm" | "gru" | "transformer") {
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

/// f32 GEMM throughput of this machine in GFLOP/s on `threads` threads: the best
/// of six 1024^3 products with the GEMM library candle uses (AVX-512 where the
/// CPU has it, whatever `TRAINLAB_SIMD` says). The practical ceiling that the
/// models' figures are compared to.
fn gemm_peak(threads: usize) -> f64 {
    let n = 1024;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
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
                parallelism,
            );
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(&c);
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// `-- whole`: the shipped experiments' whole runs (the other names pick some).
fn whole(
    only: Vec<String>,
    python: Option<&str>,
    repeat: usize,
    threads: Option<usize>,
    peak: f64,
    warm_up: bool,
) {
    let names: Vec<String> = only.into_iter().filter(|o| o != "whole").collect();
    let flops = |case: &str| {
        cases()
            .iter()
            .find(|c| c.name == case)
            .map_or(f64::NAN, |c| c.flops)
    };
    speed_whole::run(&names, python, repeat, threads, &flops, peak, warm_up);
}

/// The command line: model names to run (all when empty) and the options.
struct Args {
    only: Vec<String>,
    skip_torch: bool,
    repeat: usize,
    /// Threads for both sides (trainlab's pool, PyTorch's intra-op threads);
    /// `None`: every core here, PyTorch's better of 1 and 2.
    threads: Option<usize>,
    device: DeviceSpec,
    /// `-- whole --warm-up`: one untimed run of each side first (see speed_whole).
    warm_up: bool,
}

/// Reads the bench's arguments; flags it does not know (cargo passes `--bench`)
/// are ignored.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        only: Vec::new(),
        skip_torch: false,
        repeat: 3,
        threads: None,
        device: DeviceSpec::Cpu,
        warm_up: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-torch" => parsed.skip_torch = true,
            "--warm-up" => parsed.warm_up = true,
            "--repeat" => {
                parsed.repeat = args
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--repeat takes a count of at least 1")?;
            }
            "--threads" => {
                parsed.threads = Some(
                    args.next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--threads takes a count of at least 1")?,
                );
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
    let Args {
        only,
        skip_torch,
        repeat,
        threads,
        device,
        warm_up,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Some(n) = threads {
        // SAFETY: still single-threaded: no thread exists yet to read the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    let peak = print_setup(threads);
    // Probing for torch takes seconds: only when PyTorch will run.
    let python = if skip_torch {
        String::new()
    } else {
        python::torch_python().unwrap_or_else(|| "python3".to_string())
    };
    if only.iter().any(|o| o == "whole") {
        let py = (!skip_torch).then_some(python.as_str());
        return whole(only, py, repeat, threads, peak, warm_up);
    }
    println!(
        "speed: samples/s (mlp, cnn), tokens/s (lstm, gru, transformer), latency of one \
         batch-1 pass (*-infer); ratio: trainlab's speed / PyTorch's (above 1: trainlab faster)"
    );
    println!(
        "{:<11} {:>16} {:>16} {:>8} {:>12} {:>22} {:>22}",
        "model", "trainlab", "pytorch", "ratio", "peak RSS", "trainlab GFLOP/s", "pytorch GFLOP/s"
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
                torch_speed(&python, case.name, threads)
            };
            runs.push((ours, torch));
        }
        print_row(&case, runs, peak);
    }
}

/// Prints the kernels, the threads and the GEMM ceilings; returns the ceiling
/// (GFLOP/s) at the threads trainlab uses, which the models are compared with.
fn print_setup(threads: Option<usize>) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |t| t.get());
    let ours = threads.unwrap_or(cores);
    println!(
        "trainlab kernels: {} (TRAINLAB_SIMD), {ours} threads; PyTorch: {}",
        trainlab::util::simd::level().name(),
        threads.map_or("best of 1 and 2 threads".to_string(), |n| format!(
            "{n} threads"
        ))
    );
    let mut counts = vec![1, 2.min(cores), cores, ours];
    counts.sort_unstable();
    counts.dedup();
    let ceilings: Vec<(usize, f64)> = counts.into_iter().map(|n| (n, gemm_peak(n))).collect();
    let list: Vec<String> = ceilings
        .iter()
        .map(|(n, g)| format!("{n} thread{}: {g:.0}", if *n == 1 { "" } else { "s" }))
        .collect();
    println!(
        "f32 GEMM ceiling (gemm crate, 1024^3), GFLOP/s: {}",
        list.join(", ")
    );
    ceilings
        .iter()
        .find(|(n, _)| *n == ours)
        .map_or(f64::NAN, |(_, g)| *g)
}

/// Prints `case`'s row of the table from its alternating runs (each run printed
/// too when there are several), the medians compared.
fn print_row(case: &Case, runs: Vec<Measured>, peak: f64) {
    let repeat = runs.len();
    let infer = matches!(case.kind, Kind::Infer { .. });
    let fmt = |r: &Result<f64, String>| match r {
        Ok(v) if infer => format!("{:.1} us", 1e6 / v),
        Ok(v) => format!("{v:.0}"),
        Err(_) => "-".into(),
    };
    if repeat > 1 {
        for (ours, torch) in &runs {
            let ours = ours.as_ref().map(|(s, _)| *s).map_err(Clone::clone);
            println!(
                "  {} run: trainlab {}, pytorch {}",
                case.name,
                fmt(&ours),
                fmt(torch)
            );
        }
    }
    let (ours, torch) = median_run(runs);
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
        "{:<11} {:>16} {:>16} {:>8} {:>12} {:>22} {:>22}",
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
