//! GUI benchmark for the workbench's performance targets:
//! - frame time (UI pass + tessellation, what the GUI thread does each frame) while
//!   a real run trains at full speed and the plots hold >= 1M loss points (a 1M-step
//!   recorded run is overlaid for comparison: the plots must decimate, not draw all);
//! - training throughput with the GUI attached vs headless (the CLI's way of
//!   consuming events), same experiment, alternating twice;
//! - time from pressing Start to the first loss point on screen (bundled MNIST);
//! - frame time of the Study tab while a 64-trial study folder fills (every
//!   trial's metrics.jsonl growing, the journal moving trials along): the overlaid
//!   curves live, then the table and parallel coordinates once it is complete;
//! - frame time of the Playground tab while the spiral example (2-8-8-1 tanh, 500
//!   points, as the file says) trains at full speed, a new 100 x 100 field asked every frame (each
//!   answer re-made into 17 textures). `--playground-only` runs just this one.
//!
//! Run: `cargo bench --bench gui`. GPU rasterisation is not included (it runs on
//! the GPU, or in the compositor); the window's creation time is not either.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use egui::{Pos2, RawInput, Rect, Vec2};
use trainlab::gui::{Page, Tab, TrainlabApp};
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

/// Frame times (ms) of the Playground tab while the spiral example trains at
/// full speed; the field answers received and the steps trained.
fn playground_round(root: &Path) -> Result<(Vec<f64>, u64, u64, usize), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/playground_spiral.ron");
    let exp = trainlab::spec::load_file(&path).map_err(|e| e.to_string())?;
    let epochs = exp.training.epochs;
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.doc.exp = exp;
    app.tab = Tab::Playground;
    frame(&ctx, &mut app); // warm caches (font atlas, the points) before timing
    app.start_run(&ctx);
    let mut frame_ms = Vec::new();
    while app.is_running() {
        let dt = frame(&ctx, &mut app);
        frame_ms.push(dt.as_secs_f64() * 1e3);
        std::thread::sleep(FRAME.saturating_sub(dt));
    }
    frame(&ctx, &mut app);
    Ok((
        frame_ms,
        app.playground.answers,
        app.series.last_step(),
        epochs,
    ))
}

const STUDY_TRIALS: usize = 64;
const STUDY_EPOCHS: usize = 8;
const STEPS_PER_EPOCH: u64 = 40;

/// A study folder of `STUDY_TRIALS` random trials (nothing trained yet).
fn study_folder(root: &Path) -> Result<std::path::PathBuf, String> {
    let file = root.join("bench-study.ron");
    let text = format!(
        r#"(
    name: "bench",
    base: Inline(name: "mlp"),
    space: {{
        "optimizer.lr": LogUniform(1e-4, 3e-2),
        "model.1.Linear.out": IntLogUniform(16, 512),
        "training.batch_size": Choice([32, 64, 128]),
    }},
    search: Random(trials: {STUDY_TRIALS}),
    objectives: [Maximize(ValAccuracy), Minimize(Parameters)],
)"#
    );
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let study = trainlab::spec::load_study(&file).map_err(|e| e.to_string())?;
    let dir = root.join("bench-study");
    trainlab::study::create(&study, &dir)?;
    Ok(dir)
}

/// Plays a study being trained: every trial's record grows an epoch at a time
/// (Step lines and a validation pass), the journal starts and ends trials; a few
/// are stopped early and a few fail. Takes about `STUDY_EPOCHS` * 0.4 s.
fn fill_study(dir: &Path) -> std::io::Result<()> {
    use trainlab::study::{Entry, Journal, Owner, trial_dir};
    let journal = Journal::new(dir);
    let started: Vec<Entry> = (0..STUDY_TRIALS)
        .map(|id| Entry::Started {
            id,
            epochs: None,
            owner: Owner::me(),
        })
        .collect();
    journal.append(&started)?;
    let mut files = Vec::new();
    for id in 0..STUDY_TRIALS {
        let d = trial_dir(dir, id);
        std::fs::create_dir_all(&d)?;
        files.push(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join("metrics.jsonl"))?,
        );
    }
    let quality = |id: usize| 0.8 + 0.15 * ((id * 37 % 64) as f64 / 64.0);
    for epoch in 1..=STUDY_EPOCHS {
        let mut ended = Vec::new();
        for (id, f) in files.iter_mut().enumerate() {
            let stopped_at = if id % 9 == 0 { 3 } else { STUDY_EPOCHS };
            if epoch > stopped_at || (id % 13 == 5 && epoch > 1) {
                continue;
            }
            let mut text = String::new();
            for k in 1..=STEPS_PER_EPOCH {
                let step = (epoch as u64 - 1) * STEPS_PER_EPOCH + k;
                let e = step as f64 / STEPS_PER_EPOCH as f64;
                let loss = 2.3 * (1.0 - quality(id)) * (1.0 + 3.0 / (1.0 + e))
                    + 0.02 * (step as f64).sin();
                text.push_str(&format!(
                    "{{\"event\":\"Step\",\"step\":{step},\"epoch\":{e},\"loss\":{loss},\"accuracy\":0.5,\"lr\":0.001,\"samples_per_sec\":1000.0,\"steps_covered\":1}}\n"
                ));
            }
            let acc = quality(id) * (1.0 - 0.5 / (epoch as f64 + 1.0));
            let step = epoch as u64 * STEPS_PER_EPOCH;
            text.push_str(&format!(
                "{{\"event\":\"Eval\",\"step\":{step},\"epoch\":{epoch},\"split\":\"val\",\"loss\":{},\"accuracy\":{acc},\"confusion\":[]}}\n",
                1.0 - acc
            ));
            f.write_all(text.as_bytes())?;
            if id % 13 == 5 {
                ended.push(Entry::Failed {
                    id,
                    reason: "diverged".into(),
                });
            } else if epoch == stopped_at && stopped_at < STUDY_EPOCHS {
                ended.push(Entry::Stopped { id });
            } else if epoch == STUDY_EPOCHS {
                ended.push(Entry::Finished {
                    id,
                    values: vec![Some(acc), Some(1e5 * quality(id))],
                    wall_seconds: 3.0,
                    epochs: epoch as f64,
                });
            }
        }
        if !ended.is_empty() {
            journal.append(&ended)?;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    Ok(())
}

/// Frame times (ms) of the Study tab's curves while the study fills, then of the
/// table and of parallel coordinates; and the points plotted at the end.
#[allow(clippy::type_complexity)]
fn study_round(root: &Path) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, usize), String> {
    let dir = study_folder(root)?;
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.open_path(&dir);
    app.study.page = Page::Curves;
    app.study.metric = trainlab::gui::Metric::ValAccuracy;
    frame(&ctx, &mut app);
    let writer = {
        let dir = dir.clone();
        std::thread::spawn(move || fill_study(&dir))
    };
    let mut live = Vec::new();
    let mut points = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let dt = frame(&ctx, &mut app);
        live.push(dt.as_secs_f64() * 1e3);
        std::thread::sleep(FRAME.saturating_sub(dt));
        let done = writer.is_finished();
        points = app.study.data.as_ref().map_or(0, |d| {
            d.curves
                .iter()
                .map(|c| c.val_accuracy.points.len() + c.train_loss.points.len())
                .sum()
        });
        let settled = app
            .study
            .data
            .as_ref()
            .is_some_and(|d| d.derived.counts.running == 0 && d.trials.len() == STUDY_TRIALS);
        if done && settled {
            break;
        }
    }
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("the writer thread panicked".into()),
    }
    let mut pages = Vec::new();
    for page in [Page::Trials, Page::Parallel] {
        app.study.page = page;
        frame(&ctx, &mut app);
        pages.push(
            (0..120)
                .map(|_| frame(&ctx, &mut app).as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        );
    }
    app.study.page = Page::Curves;
    app.study.metric = trainlab::gui::Metric::TrainLoss;
    frame(&ctx, &mut app);
    pages.push(
        (0..120)
            .map(|_| frame(&ctx, &mut app).as_secs_f64() * 1e3)
            .collect::<Vec<_>>(),
    );
    let train = pages.pop().unwrap_or_default();
    let parallel = pages.pop().unwrap_or_default();
    let table = pages.pop().unwrap_or_default();
    Ok((live, table, parallel, train, points))
}

fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{what}: {} frames, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (target 16 ms)",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 1.0)
    );
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
    match playground_round(root.path()) {
        Ok((ms, answers, steps, epochs)) => {
            println!(
                "playground: spiral example, {epochs} epochs at full speed ({steps} steps), grid {0} x {0}, {answers} field answers drawn",
                trainlab::gui::DEFAULT_RESOLUTION
            );
            report("  Playground tab while it trains", ms);
        }
        Err(e) => println!("playground: {e}"),
    }
    if std::env::args().any(|a| a == "--playground-only") {
        return;
    }
    match study_round(root.path()) {
        Ok((live, table, parallel, train, points)) => {
            println!(
                "study: {STUDY_TRIALS} trials filling live ({STUDY_EPOCHS} epochs each, {points} curve points at the end)"
            );
            report("  Study tab, trial curves while the folder fills", live);
            report("  Study tab, trials table (complete study)", table);
            report(
                "  Study tab, parallel coordinates (complete study)",
                parallel,
            );
            report(
                "  Study tab, every trial's training loss (complete study)",
                train,
            );
        }
        Err(e) => println!("study: {e}"),
    }
    if std::env::args().any(|a| a == "--study-only") {
        return;
    }
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
