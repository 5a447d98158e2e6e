//! Batch-1 text generation (the GUI's live samples, the Probe's text): tokens per
//! second of text_charlm_lstm.ron's model size (embedding 64, one LSTM layer of
//! 256, a 96-character vocabulary, a 32-character window), trainlab against
//! PyTorch doing the same (`pytorch_generate.py`: the window re-read for every
//! character, as trainlab's generator defines the logits), alternately in one
//! run, medians of the rounds.
//!
//! Rows: trainlab's generator (`infer::generate`, the windowed path), the same
//! generator through `Model::forward` per character (the path before it, and the
//! one other models take), PyTorch re-reading the window (same text, the
//! ratio's denominator), and PyTorch carrying its state from character to
//! character (one LSTM step each: a different text, for comparison only).
//! Each side at its better of 1 thread and every core (`--threads N`: N each).
//!
//! Run: `cargo bench --bench generate [-- --rounds 5 --tokens 1000 --threads N]`
//! (PyTorch from $TRAINLAB_PYTHON, /opt/trainlab-torch/bin/python or python3;
//! its rows are skipped, with a note, without it).

#[path = "common/python.rs"]
mod python;
use std::process::Command;
use std::time::Instant;

use candle_core::Device;
use trainlab::data::text::Vocab;
use trainlab::infer::{Sampling, generate_with};
use trainlab::model::Model;
use trainlab::spec::{LayerSpec, Tokens};
use trainlab::util::rng::Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// text_charlm_lstm.ron's window (`seq_len`).
const CONTEXT: usize = 32;
/// Characters of the vocabulary, the three specials included.
const VOCAB: usize = 96;

struct Args {
    rounds: usize,
    tokens: usize,
    threads: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rounds: 5,
        tokens: 1000,
        threads: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut count = |name: &str| {
            it.next()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .ok_or(format!("{name} takes a count of at least 1"))
        };
        match a.as_str() {
            "--rounds" => args.rounds = count("--rounds")?,
            "--tokens" => args.tokens = count("--tokens")?,
            "--threads" => args.threads = Some(count("--threads")?),
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// The model and a 96-entry character vocabulary.
fn char_lstm() -> (Model, Vocab) {
    let chars: String = (32u8..=124).map(char::from).collect();
    let vocab = Vocab::build([chars.as_str()], Tokens::Chars, false, 1);
    assert_eq!(vocab.len(), VOCAB);
    let specs = [
        LayerSpec::Embedding { dim: 64 },
        LayerSpec::LSTM {
            hidden: 256,
            layers: 1,
            dropout: 0.0,
        },
    ];
    let model = Model::build_with_head(&specs, &[CONTEXT, VOCAB], Some(VOCAB), 42, &Device::Cpu)
        .expect("the model builds");
    (model, vocab)
}

/// Tokens per second of `n` tokens from an empty prompt (after a warm-up of 50),
/// on the windowed path or through `Model::forward`, with `threads` threads.
fn trainlab_rate(model: &Model, vocab: &Vocab, n: usize, windowed: bool, threads: usize) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| {
        let run = |length: usize, seed: u64| {
            let s = Sampling {
                temperature: 0.8,
                top_k: None,
                length,
            };
            let mut rng = Rng::new(seed);
            generate_with(model, vocab, &Device::Cpu, "", &s, &mut rng, windowed)
                .expect("generation runs")
        };
        run(50, 7);
        let began = Instant::now();
        let text = run(n, 1);
        let secs = began.elapsed().as_secs_f64();
        assert_eq!(text.chars().count(), n);
        n as f64 / secs
    })
}

/// Best of 1 thread and every core, or `threads` only.
fn best_rate(threads: Option<usize>, mut rate: impl FnMut(usize) -> f64) -> (f64, usize) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tries = match threads {
        Some(n) => vec![n],
        None if all > 1 => vec![1, all],
        None => vec![1],
    };
    tries
        .into_iter()
        .map(|t| (rate(t), t))
        .fold((0.0, 1), |a, b| if b.0 > a.0 { b } else { a })
}

/// PyTorch's tokens per second in `mode` (window or state) and its thread count.
fn torch_rate(python: &str, mode: &str, args: &Args) -> Result<(f64, usize), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_generate.py");
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match args.threads {
        Some(n) => n.to_string(),
        None if all > 1 => format!("1,{all}"),
        None => "1".to_string(),
    };
    let out = Command::new(python)
        .arg(script)
        .args(["--mode", mode, "--threads", &threads])
        .args(["--tokens", &args.tokens.to_string()])
        .args([
            "--context",
            &CONTEXT.to_string(),
            "--vocab",
            &VOCAB.to_string(),
        ])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        let at = text.find(&format!("\"{name}\": "))? + name.len() + 4;
        let rest = &text[at..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    match (field("tokens_per_sec"), field("threads")) {
        (Some(tps), Some(t)) => Ok((tps, t as usize)),
        _ => Err(format!("unexpected output: {text}")),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn main() {
    trainlab::util::threads::pin_thread_count();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("generate bench: {e}");
            std::process::exit(2);
        }
    };
    let (model, vocab) = char_lstm();
    let python = python::torch_python();
    if python.is_none() {
        eprintln!("note: no Python with torch found; the PyTorch rows are skipped");
    }
    println!(
        "batch-1 generation: char-LSTM emb 64, hidden 256, vocabulary {VOCAB}, window {CONTEXT}; \
         {} tokens a round, {} rounds, SIMD level {}",
        args.tokens,
        args.rounds,
        trainlab::util::simd::level().name()
    );
    // Rows: windowed, forward per token, PyTorch window, PyTorch state.
    let mut rates: [Vec<f64>; 4] = Default::default();
    let mut threads: [Vec<usize>; 4] = Default::default();
    for round in 0..args.rounds {
        let mut line = format!("round {}:", round + 1);
        for (row, windowed) in [(0, true), (1, false)] {
            let (r, t) = best_rate(args.threads, |t| {
                trainlab_rate(&model, &vocab, args.tokens, windowed, t)
            });
            rates[row].push(r);
            threads[row].push(t);
            line += &format!(" {r:.0}");
        }
        if let Some(py) = &python {
            for (row, mode) in [(2, "window"), (3, "state")] {
                match torch_rate(py, mode, &args) {
                    Ok((r, t)) => {
                        rates[row].push(r);
                        threads[row].push(t);
                        line += &format!(" {r:.0}");
                    }
                    Err(e) => eprintln!("PyTorch ({mode}): {e}"),
                }
            }
        }
        println!(
            "{line}  tokens/s (trainlab windowed, trainlab forward, PyTorch window, PyTorch state)"
        );
    }
    let names = [
        "trainlab, windowed generator (infer::generate)",
        "trainlab, Model::forward per token",
        "PyTorch, window re-read per token (same text)",
        "PyTorch, state carried (1 step/token; not the same text)",
    ];
    println!("\n{:<58} {:>12} {:>8}", "tokens/s (median)", "", "threads");
    for (i, name) in names.iter().enumerate() {
        if rates[i].is_empty() {
            continue;
        }
        let t = threads[i]
            .iter()
            .map(|&t| t.to_string())
            .collect::<Vec<_>>()
            .join(",");
        println!("{name:<58} {:>12.0} {t:>8}", median(rates[i].clone()));
    }
    let ours = median(rates[0].clone());
    if !rates[2].is_empty() {
        let theirs = median(rates[2].clone());
        println!(
            "\nratio trainlab windowed / PyTorch doing the same: {:.2}x (trainlab forward: {:.2}x)",
            ours / theirs,
            median(rates[1].clone()) / theirs
        );
    }
    if !rates[3].is_empty() {
        println!(
            "trainlab windowed / PyTorch carrying state: {:.2}x",
            ours / median(rates[3].clone())
        );
    }
}
