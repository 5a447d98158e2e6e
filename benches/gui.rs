//! GUI benchmark for the workbench's performance targets:
//! - frame time (UI pass + tessellation, what the GUI thread does each frame) while
//!   a real run trains at full speed and the plots hold >= 1M loss points (a 1M-step
//!   recorded run is overlaid for comparison: the plots must decimate, not draw all);
//! - training throughput with the GUI attached vs headless (the CLI's way of
//!   consuming events), same experiment, alternating twice;
//! - time from pressing Start to the first loss point on screen (bundled MNIST).
//!
//! Run: `cargo bench --bench gui`. GPU rasterisation is not included (it runs on
//! the GPU, or in the compositor); the window's creation time is not either.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use egui::{Pos2, RawInput, Rect, Vec2};
use trainlab::gui::{Tab, TrainlabApp};
use trainlab::spec::Experiment;
use trainlab::train::{RunInfo, StartOptions, StepMetrics, TrainEvent, start};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FRAME: Duration = Duration::from_micros(16_667);
const PAST_POINTS: u64 = 1_000_000;

/// The built-in default experiment as a user runs it (10 epochs, a Step event
/// every 10 steps) — the throughput target is about the same file in both.
fn experiment() -> Experiment {
    Experiment::default()
}

/// A recorded run with `PAST_POINTS` steps, for the overlay.
fn write_past_run(root: &Path) -> std::io::Result<std::path::PathBuf> {
    let dir = root.join("past-1m");
    std::fs::create_dir_all(&dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("metrics.jsonl"))?);
    let info = RunInfo {
        name: "past".into(),
        run_dir: None,
        device: "cpu".into(),
        parameters: 0,
        train_samples: 0,
        val_samples: 0,
        test_samples: 0,
        steps_per_epoch: 10_000,
        total_steps: PAST_POINTS,
        classes: Vec::new(),
        layers: Vec::new(),
        step_items: Default::default(),
    };
    serde_json::to_writer(&mut out, &TrainEvent::Started(info))?;
    out.write_all(b"\n")?;
    for step in 1..=PAST_POINTS {
        let t = step as f64;
        // A falling, noisy curve (deterministic): only its size matters here.
        let loss = 2.3 / (1.0 + t / 5e4) + 0.05 * ((t * 0.37).sin() + (t * 0.011).cos());
        let m = StepMetrics {
            step,
            epoch: t / 10_000.0,
            loss,
            accuracy: 1.0 - loss / 2.5,
            lr: 1e-3,
            samples_per_sec: 30_000.0,
            steps_covered: 1,
        };
        serde_json::to_writer(&mut out, &TrainEvent::Step(m))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(dir)
}

fn headless_samples_per_sec() -> f64 {
    let handle = start(experiment(), StartOptions::default());
    let mut sps = 0.0;
    for e in handle.events().iter() {
        if let TrainEvent::Finished(s) = e {
            sps = s.samples_per_sec;
        }
    }
    handle.join();
    sps
}

struct GuiRun {
    samples_per_sec: f64,
    frame_ms: Vec<f64>,
    first_point: Option<Duration>,
    points: usize,
}

fn frame(ctx: &egui::Context, app: &mut TrainlabApp) -> Duration {
    let input = RawInput {
        screen_rect: Some(Rect::from_min_size(Pos2::ZERO, Vec2::new(1400.0, 900.0))),
        ..RawInput::default()
    };
    let began = Instant::now();
    let out = ctx.run_ui(input, |ui| app.show(ui));
    let _meshes = ctx.tessellate(out.shapes, out.pixels_per_point);
    began.elapsed()
}

fn gui_run(root: &Path, past: &Path) -> GuiRun {
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.doc.exp = experiment();
    app.tab = Tab::Curves;
    app.views.compare_run(past, &ctx);
    while app.views.is_loading_overlays() {
        frame(&ctx, &mut app);
        std::thread::sleep(Duration::from_millis(20));
    }
    let points: usize = app.views.overlay_runs().map(|r| r.steps.loss.len()).sum();
    frame(&ctx, &mut app); // warm caches (font atlas) before timing
    let started = Instant::now();
    app.start_run(&ctx);
    let mut frame_ms = Vec::new();
    let mut first_point = None;
    while app.is_running() {
        let dt = frame(&ctx, &mut app);
        frame_ms.push(dt.as_secs_f64() * 1e3);
        if first_point.is_none() && !app.series.steps.loss.is_empty() {
            first_point = Some(started.elapsed());
        }
        std::thread::sleep(FRAME.saturating_sub(dt));
    }
    frame(&ctx, &mut app);
    GuiRun {
        samples_per_sec: app
            .series
            .summary
            .as_ref()
            .map_or(0.0, |s| s.samples_per_sec),
        frame_ms,
        first_point,
        points: points + app.series.steps.loss.len(),
    }
}

/// A long tabular Q-learning run on the 21x21 example maze.
fn maze_experiment() -> Option<Experiment> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/gridworld_qlearning.ron");
    let mut exp = trainlab::spec::load_file(&path).ok()?;
    exp.agent.episodes = 300_000;
    Some(exp)
}

fn maze_moves_per_sec(summary: Option<&trainlab::train::RunSummary>) -> f64 {
    summary
        .and_then(|s| s.rl.as_ref())
        .map_or(0.0, |r| r.env_steps_per_sec)
}

/// Frame times with the Maze tab open while the maze trains, and moves/s with the
/// GUI attached and headless.
fn maze_round(root: &Path) -> Option<(Vec<f64>, f64, f64)> {
    let exp = maze_experiment()?;
    let handle = start(exp.clone(), StartOptions::default());
    let mut summary = None;
    for e in handle.events().iter() {
        if let TrainEvent::Finished(s) = e {
            summary = Some(s);
        }
    }
    handle.join();
    let headless = maze_moves_per_sec(summary.as_ref());
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.doc.exp = exp;
    app.tab = Tab::Maze;
    frame(&ctx, &mut app);
    app.start_run(&ctx);
    let mut frame_ms = Vec::new();
    while app.is_running() {
        let dt = frame(&ctx, &mut app);
        frame_ms.push(dt.as_secs_f64() * 1e3);
        std::thread::sleep(FRAME.saturating_sub(dt));
    }
    frame(&ctx, &mut app);
    Some((
        frame_ms,
        headless,
        maze_moves_per_sec(app.series.summary.as_ref()),
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    let root = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return eprintln!("cannot make a temporary folder: {e}"),
    };
    let past = match write_past_run(root.path()) {
        Ok(p) => p,
        Err(e) => return eprintln!("cannot write the 1M-point run: {e}"),
    };
    println!(
        "experiment: the built-in default (MLP, bundled MNIST, 10 epochs, a Step event every 10 steps), unchanged"
    );
    let mut ratios = Vec::new();
    for round in 1..=2 {
        let cli = headless_samples_per_sec();
        let gui = gui_run(root.path(), &past);
        let mut ms = gui.frame_ms.clone();
        ms.sort_by(f64::total_cmp);
        let ratio = gui.samples_per_sec / cli;
        ratios.push(ratio);
        println!(
            "round {round}: headless {cli:.0} samples/s, GUI attached {:.0} samples/s ({:.1}%)",
            gui.samples_per_sec,
            ratio * 100.0
        );
        println!(
            "         {} frames while training, {} loss points plotted: frame time p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            ms.len(),
            gui.points,
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            percentile(&ms, 1.0)
        );
        match gui.first_point {
            Some(t) => println!(
                "         Start to first loss point on screen: {:.0} ms",
                t.as_secs_f64() * 1e3
            ),
            None => println!("         no loss point arrived"),
        }
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!(
        "GUI-attached throughput, mean of rounds: {:.1}% of headless (target >= 95%)",
        mean * 100.0
    );
    match maze_round(root.path()) {
        Some((mut ms, headless, gui)) => {
            ms.sort_by(f64::total_cmp);
            println!(
                "maze (21x21 Q-learning, 300k episodes, Maze tab open): {} frames, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; {:.1} M moves/s with the GUI, {:.1} M headless",
                ms.len(),
                percentile(&ms, 0.5),
                percentile(&ms, 0.95),
                percentile(&ms, 1.0),
                gui / 1e6,
                headless / 1e6
            );
        }
        None => println!("maze: experiments/gridworld_qlearning.ron could not be loaded"),
    }
}
