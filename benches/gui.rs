//! GUI benchmark for the workbench's performance targets:
//! - frame time (UI pass + tessellation, what the GUI thread does each frame) while
//!   a real run trains at full speed and the plots hold >= 1M loss points (a 1M-step
//!   recorded run is overlaid for comparison: the plots must decimate, not draw all);
//! - training throughput with the GUI attached (the run's tab open, a frame drawn
//!   whenever the app asks for a repaint, at most 60 a second, as eframe does)
//!   vs headless (the CLI's way: blocking on the events, recording a run folder)
//!   for every kind of run (image MLP and CNN, char-LM with live samples, text
//!   classifier, tabular and DQN mazes, the playground's field, a study of two
//!   trials, a paced run lifted to full speed), medians of 5 rounds (`--rounds N`) whose order
//!   alternates, with how often the open view changed (updates shown per second);
//!   `-- --watch-only [maze ...]` runs just this, or the kinds whose names hold a word;
//! - time from pressing Start to the first loss point on screen (bundled MNIST);
//! - frame time of the Study tab while a 64-trial study folder fills (every
//!   trial's metrics.jsonl growing, the journal moving trials along): the overlaid
//!   curves live, then the table and parallel coordinates once it is complete;
//! - frame time of the Playground tab while the spiral example (2-8-8-1 tanh, 500
//!   points, as the file says) trains at full speed, a new 100 x 100 field asked every frame (each
//!   answer re-made into 17 textures). `--playground-only` runs just this one.
//! - frame time of the Layers tab while a small MNIST MLP trains at full speed and
//!   records layer statistics every 2 steps (hundreds of records, the bands drawn
//!   thinned to 300). `--layers-only` runs just this one.
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

struct GuiRun {
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
        frame_ms,
        first_point,
        points: points + app.series.steps.loss.len(),
    }
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
    let frame_ms = frames_until_done(&ctx, &mut app, |_| {});
    Ok((
        frame_ms,
        app.views.playground.answers,
        app.series.last_step(),
        epochs,
    ))
}

/// Frame times (ms) of `app` drawn at 60 fps until its run ends (`before` runs
/// ahead of each frame), then one last frame for the final state.
fn frames_until_done(
    ctx: &egui::Context,
    app: &mut TrainlabApp,
    mut before: impl FnMut(&mut TrainlabApp),
) -> Vec<f64> {
    let mut frame_ms = Vec::new();
    while app.is_running() {
        before(app);
        let dt = frame(ctx, app);
        frame_ms.push(dt.as_secs_f64() * 1e3);
        std::thread::sleep(FRAME.saturating_sub(dt));
    }
    frame(ctx, app);
    frame_ms
}

/// Frame times (ms) of the Layers tab while a small MLP trains at full speed and
/// records layer statistics every 2 steps; the records and the steps trained.
fn layers_round(root: &Path) -> Result<(Vec<f64>, usize, u64), String> {
    let exp = trainlab::spec::from_ron_str(
        "(name: \"layers-bench\", dataset: Images(name: Mnist, source: Bundled, \
         train_limit: Some(600), test_limit: Some(100), val_fraction: 0.2), \
         model: [Flatten, Linear(out: 16), ReLU, Linear(out: 10)], \
         training: (epochs: 60, batch_size: 32, log_every_steps: 3, eval_every_steps: Some(2)))",
        "layers bench",
    )
    .map_err(|e| e.to_string())?;
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.doc.exp = exp;
    app.tab = Tab::Layers;
    frame(&ctx, &mut app); // warm caches (font atlas) before timing
    app.start_run(&ctx);
    // Start shows the curves; the Layers tab stays open here.
    let frame_ms = frames_until_done(&ctx, &mut app, |app| app.tab = Tab::Layers);
    Ok((
        frame_ms,
        app.series.layer_stats.len(),
        app.series.last_step(),
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
    app.views.study.page = Page::Curves;
    app.views.study.metric = trainlab::gui::Metric::ValAccuracy;
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
        points = app.views.study.data.as_ref().map_or(0, |d| {
            d.curves
                .iter()
                .map(|c| c.val_accuracy.points.len() + c.train_loss.points.len())
                .sum()
        });
        let settled = app
            .views
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
        app.views.study.page = page;
        frame(&ctx, &mut app);
        pages.push(
            (0..120)
                .map(|_| frame(&ctx, &mut app).as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        );
    }
    app.views.study.page = Page::Curves;
    app.views.study.metric = trainlab::gui::Metric::TrainLoss;
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

/// One kind of run the workbench is watched on.
struct Kind {
    name: &'static str,
    /// What it trains, for the report.
    what: &'static str,
    exp: Experiment,
    /// The tab kept open while it trains.
    tab: Tab,
    /// Slow motion at this pace, lifted to full speed after `PACED_FOR`.
    pace: Option<f64>,
    /// Also timed headless without a run folder (what recording costs).
    unrecorded: bool,
    /// What the open view shows; a change between two frames is one update shown.
    shown: fn(&TrainlabApp) -> u64,
    /// The figure in the summary: samples/s, or moves/s for mazes.
    unit: &'static str,
}

/// How long a paced run goes slowly before it is switched to full speed.
const PACED_FOR: Duration = Duration::from_secs(1);

fn example(file: &str) -> Result<Experiment, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(file);
    trainlab::spec::load_file(&path).map_err(|e| format!("{file}: {e}"))
}

fn curve_points(app: &TrainlabApp) -> u64 {
    app.series.steps.loss.len() as u64
}

/// Every kind the issue names, each sized to train for several seconds a round
/// (rounds of one or two seconds said more about starting than about training).
fn kinds() -> Result<Vec<Kind>, String> {
    // The built-in default, 400 epochs instead of 10: the same steps, longer
    // (at 120, a quiet headless round lasted under 2 s and rounds swung by tens
    // of points).
    let mut mlp = experiment();
    mlp.training.epochs = 400;
    let mut cnn = example("mnist_cnn.ron")?;
    cnn.training.epochs = 3;
    if let trainlab::spec::DatasetSpec::Images(d) = &mut cnn.dataset {
        d.train_limit = Some(8_000);
    }
    let mut lm = example("text_charlm_gru.ron")?;
    lm.training.epochs = 3;
    let mut classifier = example("text_classify_gru.ron")?;
    classifier.training.epochs = 15;
    classifier.training.early_stopping = None;
    let mut maze = example("gridworld_qlearning.ron")?;
    maze.agent.episodes = 4_000_000;
    let mut dqn = example("gridworld_dqn.ron")?;
    dqn.agent.stop_when_optimal = false;
    dqn.agent.episodes = 8_000;
    let mut playground = example("playground_spiral.ron")?;
    // Over three times its epochs: what watching costs per step is the same,
    // and one round says more.
    playground.training.epochs = 5_000;
    let curves = Tab::Curves;
    Ok(vec![
        Kind {
            name: "image MLP",
            what: "the built-in default (bundled MNIST) for 400 epochs, 1M-point run overlaid",
            exp: mlp.clone(),
            tab: curves,
            pace: None,
            unrecorded: true,
            shown: curve_points,
            unit: "samples/s",
        },
        Kind {
            name: "image CNN",
            what: "mnist_cnn.ron, 3 epochs of 8,000 images",
            exp: cnn,
            tab: curves,
            pace: None,
            unrecorded: false,
            shown: curve_points,
            unit: "samples/s",
        },
        Kind {
            name: "char-LM, live samples",
            what: "text_charlm_gru.ron, 3 epochs, a sample every 100 steps, Text tab",
            exp: lm,
            tab: Tab::Text,
            pace: None,
            unrecorded: false,
            shown: |a| a.series.samples.len() as u64 * 1_000_000 + curve_points(a),
            unit: "samples/s",
        },
        Kind {
            name: "text classifier",
            what: "text_classify_gru.ron for 15 epochs, no early stopping",
            exp: classifier,
            tab: curves,
            pace: None,
            unrecorded: false,
            shown: curve_points,
            unit: "samples/s",
        },
        Kind {
            name: "tabular maze",
            what: "gridworld_qlearning.ron (21x21), 4M episodes, Maze tab",
            exp: maze,
            tab: Tab::Maze,
            pace: None,
            unrecorded: true,
            shown: |a| a.series.policy.as_ref().map_or(0, |p| p.episode),
            unit: "moves/s",
        },
        Kind {
            name: "DQN maze",
            what: "gridworld_dqn.ron (8x8), 8,000 episodes, Maze tab",
            exp: dqn,
            tab: Tab::Maze,
            pace: None,
            unrecorded: false,
            shown: |a| a.series.policy.as_ref().map_or(0, |p| p.episode),
            unit: "moves/s",
        },
        Kind {
            name: "playground field",
            what: "playground_spiral.ron for 5,000 epochs (its file: 1,500), a 100 x 100 field asked per frame (answered at most 25/s)",
            exp: playground,
            tab: Tab::Playground,
            pace: None,
            unrecorded: false,
            shown: |a| a.views.playground.answers,
            unit: "samples/s",
        },
        Kind {
            name: "paced, then full speed",
            what: "the built-in default (400 epochs) at 20 steps/s for 1 s, then full speed",
            exp: mlp,
            tab: curves,
            pace: Some(20.0),
            unrecorded: false,
            shown: curve_points,
            unit: "samples/s",
        },
    ])
}

fn throughput(s: &trainlab::events::RunSummary) -> f64 {
    s.rl.as_ref()
        .map_or(s.samples_per_sec, |r| r.env_steps_per_sec)
}

/// A fresh folder under `root` for one run.
fn fresh(root: &Path, name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.join(format!("{}-{n}", name.replace([' ', ','], "_")))
}

/// The run headless, as the CLI consumes it (blocking on the events, recording
/// into a run folder unless `record` is false); its throughput.
fn headless(kind: &Kind, root: &Path, record: bool) -> Result<f64, String> {
    let handle = start(
        kind.exp.clone(),
        StartOptions {
            run_dir: record.then(|| fresh(root, kind.name)),
            pace: kind.pace,
            ..StartOptions::default()
        },
    );
    let began = Instant::now();
    let mut lifted = kind.pace.is_none();
    let mut result = Err("no Finished event".to_string());
    loop {
        match handle.events().recv_timeout(Duration::from_millis(20)) {
            Ok(TrainEvent::Finished(s)) => result = Ok(throughput(&s)),
            Ok(TrainEvent::Failed { message, .. }) => result = Err(message),
            Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if !lifted && began.elapsed() >= PACED_FOR {
            lifted = handle.send(trainlab::events::Control::SetPace(None));
        }
    }
    handle.join();
    result
}

/// Frames as eframe schedules them: one when something asked for a repaint (the
/// worker's wake, a view waiting for an answer, egui itself), at most 60 a
/// second, none while nothing asked.
struct Repaints {
    asked: crossbeam_channel::Receiver<Duration>,
}

impl Repaints {
    fn new(ctx: &egui::Context) -> Self {
        let (tx, asked) = crossbeam_channel::unbounded();
        ctx.set_request_repaint_callback(move |info| {
            let _ = tx.send(info.delay);
        });
        Self { asked }
    }

    /// Draws one frame (what was asked before it is answered by it); the time it took.
    fn frame(&self, ctx: &egui::Context, app: &mut TrainlabApp) -> Duration {
        while self.asked.try_recv().is_ok() {}
        frame(ctx, app)
    }

    /// After a frame that took `dt`: waits out the rest of the 60 fps frame, then
    /// until a repaint is due (asked for now, or for later: the live run's wakes
    /// ask for one 1/40 s after the last drain, eframe honours the delay), true;
    /// or until `until` passes with none due, false (the paced kind's switch to
    /// full speed, which the caller makes as a user would, with a frame). Like
    /// eframe, it draws nothing while nothing asked for a frame (a minute with
    /// no request at all gives up waiting, so a stall cannot hang the bench).
    fn wait(&self, dt: Duration, until: Option<Instant>) -> bool {
        std::thread::sleep(FRAME.saturating_sub(dt));
        let stall = Instant::now() + Duration::from_secs(60);
        // The earliest repaint asked for so far.
        let mut due: Option<Instant> = None;
        loop {
            let limit = due.unwrap_or(stall).min(until.unwrap_or(stall));
            match self.asked.recv_deadline(limit) {
                Ok(delay) => {
                    let at = Instant::now() + delay;
                    due = Some(due.map_or(at, |d| d.min(at)));
                }
                Err(_) => {
                    let now = Instant::now();
                    if due.is_some_and(|d| now >= d) {
                        return true;
                    }
                    if until.is_some_and(|u| now >= u) {
                        return false;
                    }
                    if now >= stall {
                        return true;
                    }
                }
            }
        }
    }
}

/// One GUI-attached run: throughput, updates the open view showed per second,
/// frame times (ms).
struct Watched {
    throughput: f64,
    shown_per_sec: f64,
    frames_per_sec: f64,
    frame_ms: Vec<f64>,
}

/// The run started from the workbench with its tab open, frames drawn at 60 fps.
fn watched(kind: &Kind, root: &Path, past: &Path) -> Result<Watched, String> {
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.doc.exp = kind.exp.clone();
    if let Some(p) = kind.pace {
        app.pace.slow = true;
        app.pace.rate = p;
    }
    if kind.name == "image MLP" {
        app.views.compare_run(past, &ctx);
        while app.views.is_loading_overlays() {
            frame(&ctx, &mut app);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    app.tab = kind.tab;
    // Warm caches (font atlas), then draw until egui asks for nothing more, as a
    // window has before anyone presses Start: one frame left the editor's
    // scroll bar fading in over the run's first dozen frames.
    for _ in 0..120 {
        frame(&ctx, &mut app);
        if !ctx.has_requested_repaint() {
            break;
        }
    }
    app.start_run(&ctx);
    app.tab = kind.tab;
    let repaints = Repaints::new(&ctx);
    let began = Instant::now();
    let mut lifted = kind.pace.is_none();
    let mut last = (kind.shown)(&app);
    let mut updates = 0u64;
    let mut frame_ms = Vec::new();
    // TRAINLAB_BENCH_CAUSES=1: what asked for each frame drawn (egui's record of
    // the calls that requested it), counted, to find frames that carry no news.
    let mut causes =
        std::env::var_os("TRAINLAB_BENCH_CAUSES").map(|_| std::collections::HashMap::new());
    while app.is_running() {
        let dt = repaints.frame(&ctx, &mut app);
        frame_ms.push(dt.as_secs_f64() * 1e3);
        if let Some(causes) = &mut causes {
            for c in ctx.repaint_causes() {
                *causes.entry(format!("{c:?}")).or_insert(0u32) += 1;
            }
        }
        let now = (kind.shown)(&app);
        if now != last {
            updates += 1;
            last = now;
        }
        let until = (!lifted).then(|| began + PACED_FOR);
        if !repaints.wait(dt, until) {
            // The user's click on "full speed" (its frame is the next one).
            app.set_live_pace(None, &ctx);
            lifted = true;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    if let Some(causes) = causes {
        let mut causes: Vec<_> = causes.into_iter().collect();
        causes.sort_by_key(|c| std::cmp::Reverse(c.1));
        eprintln!(
            "    {}: {} frames in {secs:.2} s; asked by:",
            kind.name,
            frame_ms.len()
        );
        for (cause, n) in causes.iter().take(8) {
            eprintln!("      {n:5}  {cause}");
        }
    }
    frame(&ctx, &mut app);
    let summary = app
        .series
        .summary
        .as_ref()
        .ok_or_else(|| format!("no summary: {:?} {:?}", app.series.state, app.errors))?;
    Ok(Watched {
        throughput: throughput(summary),
        shown_per_sec: updates as f64 / secs,
        frames_per_sec: frame_ms.len() as f64 / secs,
        frame_ms,
    })
}

/// The two-trial study: its file and a fresh folder for it.
fn two_trials(root: &Path) -> Result<(trainlab::spec::LoadedStudy, std::path::PathBuf), String> {
    let file = root.join("two-trials.ron");
    if !file.exists() {
        let text = r#"(
    name: "two",
    base: Inline(name: "mlp", training: (epochs: 35)),
    space: { "optimizer.lr": Choice([1e-3, 3e-3]) },
    search: Grid,
    objectives: [Maximize(ValAccuracy)],
    parallel: Trials(2),
)"#;
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
    }
    let study = trainlab::spec::load_study(&file).map_err(|e| e.to_string())?;
    Ok((study, fresh(root, "study")))
}

/// Mean samples/s of a finished study's trials (from their summaries).
fn trial_throughput(dir: &Path) -> Result<f64, String> {
    let mut figures = Vec::new();
    for id in 0..2 {
        let path = trainlab::study::trial_dir(dir, id).join("summary.json");
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let s: trainlab::events::RunSummary =
            serde_json::from_slice(&text).map_err(|e| e.to_string())?;
        figures.push(s.samples_per_sec);
    }
    Ok(figures.iter().sum::<f64>() / figures.len() as f64)
}

fn study_headless(root: &Path) -> Result<f64, String> {
    let (study, dir) = two_trials(root)?;
    trainlab::study::create(&study, &dir).map_err(|e| e.to_string())?;
    trainlab::study::work(&dir, None, &|_| {}).map_err(|e| e.to_string())?;
    trial_throughput(&dir)
}

fn study_watched(root: &Path) -> Result<Watched, String> {
    let (study, dir) = two_trials(root)?;
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(root);
    app.tab = Tab::Study;
    frame(&ctx, &mut app);
    app.views
        .study
        .start(Some(study), &dir, &ctx)
        .map_err(|e| e.to_string())?;
    app.views.study.page = Page::Curves;
    let points = |app: &TrainlabApp| -> u64 {
        app.views.study.data.as_ref().map_or(0, |d| {
            d.curves
                .iter()
                .map(|c| (c.val_accuracy.points.len() + c.train_loss.points.len()) as u64)
                .sum()
        })
    };
    let repaints = Repaints::new(&ctx);
    let began = Instant::now();
    let mut last = points(&app);
    let mut updates = 0u64;
    let mut frame_ms = Vec::new();
    while app.views.study.is_working() {
        let dt = repaints.frame(&ctx, &mut app);
        frame_ms.push(dt.as_secs_f64() * 1e3);
        let now = points(&app);
        if now != last {
            updates += 1;
            last = now;
        }
        repaints.wait(dt, None);
    }
    let secs = began.elapsed().as_secs_f64();
    frame(&ctx, &mut app);
    Ok(Watched {
        throughput: trial_throughput(&dir)?,
        shown_per_sec: updates as f64 / secs,
        frames_per_sec: frame_ms.len() as f64 / secs,
        frame_ms,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Figures of one kind over the rounds.
#[derive(Default)]
struct Rounds {
    headless: Vec<f64>,
    unrecorded: Vec<f64>,
    gui: Vec<f64>,
    shown: Vec<f64>,
    fps: Vec<f64>,
    frame_ms: Vec<f64>,
    errors: Vec<String>,
}

impl Rounds {
    fn print(&self, name: &str, unit: &str) {
        for e in &self.errors {
            println!("{name}: {e}");
        }
        if self.gui.is_empty() || self.headless.is_empty() {
            return;
        }
        let (h, g) = (median(self.headless.clone()), median(self.gui.clone()));
        let scale = if h > 1e7 { 1e6 } else { 1.0 };
        // Each round's two runs ran back to back: their ratio is the fair one.
        let ratios: Vec<f64> = self
            .gui
            .iter()
            .zip(&self.headless)
            .map(|(g, h)| g / h)
            .collect();
        let per_round: Vec<String> = ratios
            .iter()
            .map(|r| format!("{:.1}%", 100.0 * r))
            .collect();
        let mut ms = self.frame_ms.clone();
        ms.sort_by(f64::total_cmp);
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{name}: headless {:.1}{} {unit}, GUI attached {:.1}{}; GUI/headless median {:.1}%, spread {:.1}-{:.1}%, middle half {:.1}-{:.1}% (rounds {}); view updated {:.1}/s ({:.0} frames/s); frame p95 {:.2} ms",
            h / scale,
            if scale > 1.0 { " M" } else { "" },
            g / scale,
            if scale > 1.0 { " M" } else { "" },
            100.0 * median(ratios.clone()),
            100.0 * percentile(&sorted, 0.0),
            100.0 * percentile(&sorted, 1.0),
            100.0 * percentile(&sorted, 0.25),
            100.0 * percentile(&sorted, 0.75),
            per_round.join(", "),
            median(self.shown.clone()),
            median(self.fps.clone()),
            percentile(&ms, 0.95),
        );
        if !self.unrecorded.is_empty() {
            println!(
                "    headless without a run folder: {:.1}{} {unit}",
                median(self.unrecorded.clone()) / scale,
                if scale > 1.0 { " M" } else { "" },
            );
        }
    }
}

/// Rounds of the watching comparison: `--rounds N`, else 5.
fn rounds() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1)
}

/// GUI attached vs headless for every kind, `--rounds` (5) rounds, the order of the two
/// alternating from round to round; medians per kind.
fn watching(root: &Path, past: &Path, only: &[String]) {
    let kinds = match kinds() {
        Ok(k) => k,
        Err(e) => return println!("watching: {e}"),
    };
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let mut figures: Vec<Rounds> = kinds.iter().map(|_| Rounds::default()).collect();
    let mut study = Rounds::default();
    for round in 0..rounds() {
        let gui_first = round % 2 == 1;
        for (kind, f) in kinds.iter().zip(figures.iter_mut()) {
            if !wanted(kind.name) {
                continue;
            }
            let mut go = |gui: bool| {
                if gui {
                    match watched(kind, root, past) {
                        Ok(w) => {
                            f.gui.push(w.throughput);
                            f.shown.push(w.shown_per_sec);
                            f.fps.push(w.frames_per_sec);
                            f.frame_ms.extend(w.frame_ms);
                        }
                        Err(e) => f.errors.push(format!("GUI round {round}: {e}")),
                    }
                } else {
                    match headless(kind, root, true) {
                        Ok(t) => f.headless.push(t),
                        Err(e) => f.errors.push(format!("headless round {round}: {e}")),
                    }
                }
            };
            go(gui_first);
            go(!gui_first);
            if kind.unrecorded {
                match headless(kind, root, false) {
                    Ok(t) => f.unrecorded.push(t),
                    Err(e) => f.errors.push(format!("unrecorded round {round}: {e}")),
                }
            }
        }
        if wanted("study") {
            let mut go = |gui: bool| {
                if gui {
                    match study_watched(root) {
                        Ok(w) => {
                            study.gui.push(w.throughput);
                            study.shown.push(w.shown_per_sec);
                            study.fps.push(w.frames_per_sec);
                            study.frame_ms.extend(w.frame_ms);
                        }
                        Err(e) => study.errors.push(format!("GUI round {round}: {e}")),
                    }
                } else {
                    match study_headless(root) {
                        Ok(t) => study.headless.push(t),
                        Err(e) => study.errors.push(format!("headless round {round}: {e}")),
                    }
                }
            };
            go(gui_first);
            go(!gui_first);
        }
    }
    println!(
        "watching: GUI attached (the run's tab open, a frame whenever the app asks for one, at most 60/s) vs headless (the CLI's way, recording a run folder), medians of {} alternating rounds",
        rounds()
    );
    for (kind, f) in kinds.iter().zip(&figures) {
        if wanted(kind.name) {
            println!("  ({}: {})", kind.name, kind.what);
            f.print(kind.name, kind.unit);
        }
    }
    if wanted("study") {
        println!(
            "  (study: two trials of the built-in MLP side by side, 35 epochs each, Study tab's curves; samples/s per trial)"
        );
        study.print("study, two trials", "samples/s");
    }
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
    if std::env::args().any(|a| a == "--watch-only") {
        // The kinds named after it (parts of their names), or all.
        let only: Vec<String> = std::env::args()
            .skip_while(|a| a != "--watch-only")
            .skip(1)
            .filter(|a| !a.starts_with('-') && a.parse::<usize>().is_err())
            .collect();
        return match write_past_run(root.path()) {
            Ok(past) => watching(root.path(), &past, &only),
            Err(e) => eprintln!("cannot write the 1M-point run: {e}"),
        };
    }
    match layers_round(root.path()) {
        Ok((ms, records, steps)) => {
            println!(
                "layers: a 784-16-10 MLP on 480 bundled digits, {steps} steps at full speed, layer statistics every 2 steps ({records} records)"
            );
            report("  Layers tab while it trains", ms);
        }
        Err(e) => println!("layers: {e}"),
    }
    if std::env::args().any(|a| a == "--layers-only") {
        return;
    }
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
    let gui = gui_run(root.path(), &past);
    let mut ms = gui.frame_ms.clone();
    ms.sort_by(f64::total_cmp);
    println!(
        "  {} frames while training, {} loss points plotted: frame time p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms.len(),
        gui.points,
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 1.0)
    );
    match gui.first_point {
        Some(t) => println!(
            "  Start to first loss point on screen: {:.0} ms",
            t.as_secs_f64() * 1e3
        ),
        None => println!("  no loss point arrived"),
    }
    watching(root.path(), &past, &[]);
}
