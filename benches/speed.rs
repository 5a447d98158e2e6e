//! Training-speed benchmark: trainlab's real training loop against the PyTorch
//! reference script (benches/pytorch_reference.py), same models, same batch size,
//! same machine, in one run. Prints samples/s for each and the ratio.
//!
//! The `lstm` case (a char-LSTM language model) is compared in tokens/s.
//!
//! Run: `cargo bench --bench speed` (add `-- mlp`, `-- cnn` or `-- lstm` for one model,
//! `-- --no-torch` to skip PyTorch). Samples/s count training steps only
//! (forward, backward, optimizer), not evaluation.

use std::process::Command;

use trainlab::spec::{
    DatasetSpec, Experiment, ImageDatasetSpec, LanguageModelSpec, LayerSpec, TextDatasetSpec,
    TextTask, TrainingSpec,
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
}

fn cases() -> Vec<Case> {
    use LayerSpec::*;
    vec![
        Case {
            name: "mlp",
            layers: vec![Flatten, Linear { out: 128 }, ReLU, Linear { out: 10 }],
            steps: 2100,
            text: false,
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
        },
    ]
}

/// Trains `case` through the public worker API and returns (samples/s, peak RSS).
fn trainlab_speed(case: &Case) -> Result<(f64, Option<u64>), String> {
    let exp = if case.text {
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

fn main() {
    trainlab::util::threads::pin_thread_count();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let skip_torch = args.iter().any(|a| a == "--no-torch");
    let only: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    println!(
        "{:<6} {:>16} {:>16} {:>8} {:>12}",
        "model", "trainlab smp/s", "pytorch smp/s", "ratio", "peak RSS"
    );
    for case in cases() {
        if !only.is_empty() && !only.iter().any(|o| *o == case.name) {
            continue;
        }
        let ours = trainlab_speed(&case);
        let torch = if skip_torch {
            Err("skipped".to_string())
        } else {
            torch_speed(case.name)
        };
        let fmt = |r: &Result<f64, String>| match r {
            Ok(v) => format!("{v:.0}"),
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
            "{:<6} {:>16} {:>16} {:>8} {:>12}",
            case.name,
            fmt(&ours_speed),
            fmt(&torch),
            ratio,
            rss
        );
        for (who, r) in [("trainlab", &ours_speed), ("pytorch", &torch)] {
            if let Err(e) = r {
                println!("       {who}: {e}");
            }
        }
    }
}
