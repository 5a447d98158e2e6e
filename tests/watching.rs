//! Watching is free: a consumer that does not read (a hidden window draws no
//! frames, a script holds the handle and looks later) never holds the worker up.
//! No send waits for the consumer, so these runs finish while nobody reads; what
//! waits for the consumer afterwards is every rare event in order, the frequent
//! ones thinned to the channel's capacity, and the final policy in its slot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::Vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use trainlab::events::{PolicySnapshot, RunSummary, TrainEvent};
use trainlab::gui::{RunState, Tab, TrainlabApp};
use trainlab::spec::{
    AgentMethod, AgentSpec, DatasetSpec, EpsilonSpec, Experiment, GeneratedMaze, GridworldSpec,
    ImageDatasetSpec, LayoutSpec, TabularSpec, TrainingSpec,
};
use trainlab::train::{RunHandle, StartOptions, start};

/// Waits for the worker thread to end without reading a single event; a worker
/// that waited for its consumer would never get there.
fn finish_unread(handle: &RunHandle) {
    let began = Instant::now();
    while !handle.is_finished() {
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "the worker is waiting for a consumer that does not read"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A generated 15x15 maze, tabular Q-learning, an Episodes event every episode.
fn maze(episodes: usize) -> Experiment {
    Experiment {
        name: "unread_maze".into(),
        seed: 11,
        dataset: DatasetSpec::Gridworld(GridworldSpec {
            layout: LayoutSpec::Generated(GeneratedMaze {
                rows: 15,
                cols: 15,
                ..GeneratedMaze::default()
            }),
            ..GridworldSpec::default()
        }),
        agent: AgentSpec {
            method: AgentMethod::QLearning(TabularSpec::default()),
            episodes,
            epsilon: EpsilonSpec {
                start: 1.0,
                end: 0.05,
                decay_episodes: episodes / 2,
            },
            log_every_episodes: 1,
            snapshot_every_secs: 0.0,
            ..AgentSpec::default()
        },
        ..Experiment::default()
    }
}

fn last_summary(events: &[TrainEvent]) -> &RunSummary {
    match events.last() {
        Some(TrainEvent::Finished(s)) => s,
        other => panic!("the last event is not Finished: {other:?}"),
    }
}

#[test]
fn a_maze_nobody_reads_finishes_and_leaves_its_final_policy_in_the_slot() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let handle = start(
        maze(3_000),
        StartOptions {
            run_dir: Some(run_dir.clone()),
            event_capacity: 8,
            ..StartOptions::default()
        },
    );
    finish_unread(&handle);
    let events: Vec<TrainEvent> = handle.events().try_iter().collect();
    let s = last_summary(&events);
    let rl = s.rl.as_ref().expect("rl summary");
    assert_eq!(rl.episodes, 3_000);
    let recorded = trainlab::runs::read_events(&run_dir).expect("record");
    let count =
        |events: &[TrainEvent], f: fn(&TrainEvent) -> bool| events.iter().filter(|e| f(e)).count();
    let episodes = |e: &TrainEvent| matches!(e, TrainEvent::Episodes(_));
    assert_eq!(
        count(&recorded, episodes),
        3_000,
        "the record keeps every one"
    );
    assert!(
        count(&events, episodes) <= 8,
        "{} Episodes events waited for a capacity of 8",
        count(&events, episodes)
    );
    let covered: u64 = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Episodes(m) => Some(m.episodes_covered),
            _ => None,
        })
        .sum();
    assert_eq!(
        covered, 3_000,
        "the merged events still cover every episode"
    );
    let rare = |e: &TrainEvent| {
        matches!(
            e,
            TrainEvent::Started(_) | TrainEvent::Environment(_) | TrainEvent::Finished(_)
        )
    };
    assert_eq!(count(&events, rare), 3, "every rare event is there");
    // The slot: nobody asked, so only the final policy was put there.
    let final_policy = handle.policy().take().expect("the final policy");
    assert_eq!(
        handle.policy().counts().published,
        1,
        "built only at the end"
    );
    assert_eq!(final_policy.episode, 3_000);
    assert_eq!(final_policy.env_steps, rl.env_steps);
    let on_disk: PolicySnapshot =
        serde_json::from_slice(&std::fs::read(run_dir.join("qtable.json")).expect("qtable"))
            .expect("parses");
    assert_eq!(final_policy, on_disk);
    handle.join();
}

/// A viewer that takes the slot gets a snapshot per take, never a queue of them.
#[test]
fn a_viewer_that_takes_gets_one_snapshot_per_take() {
    let handle = start(maze(20_000), StartOptions::default());
    let mut taken = 0;
    while !handle.is_finished() {
        if handle.policy().take().is_some() {
            taken += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    taken += usize::from(handle.policy().take().is_some());
    let counts = handle.policy().counts();
    assert_eq!(counts.taken as usize, taken);
    // Each one built was asked for by a take, but the final one.
    assert!(
        counts.published <= counts.taken + 1,
        "{counts:?}: snapshots nobody asked for were built"
    );
    assert!(taken >= 1);
    handle.join();
}

#[test]
fn an_image_run_nobody_reads_keeps_every_evaluation() {
    let dir = tempfile::tempdir().expect("tmp");
    let exp = Experiment {
        name: "unread_mlp".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(1_000),
            test_limit: Some(200),
            val_fraction: 0.1,
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs: 2,
            batch_size: 20,
            log_every_steps: 1,
            eval_every_steps: Some(3),
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    let handle = start(
        exp,
        StartOptions {
            run_dir: Some(dir.path().join("run")),
            event_capacity: 2,
            ..StartOptions::default()
        },
    );
    finish_unread(&handle);
    let events: Vec<TrainEvent> = handle.events().try_iter().collect();
    let s = last_summary(&events);
    let recorded = trainlab::runs::read_events(&dir.path().join("run")).expect("record");
    let evals = |events: &[TrainEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Eval(m) => Some((m.step, m.split)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(evals(&recorded).len() > 20, "{}", evals(&recorded).len());
    assert_eq!(evals(&events), evals(&recorded), "no evaluation is lost");
    let steps: u64 = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(m) => Some(m.steps_covered),
            _ => None,
        })
        .sum();
    assert_eq!(steps, s.steps, "merged Step events cover every step");
    handle.join();
}

/// The one run folder under `root`, once its summary is written.
fn finished_run_dir(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("summary.json").is_file())
}

/// The window draws no frame while the maze trains (hidden), then shows the
/// final state: the run finished, the last Q-values (read off the maze tab).
#[test]
fn a_window_that_draws_nothing_while_it_trains_shows_the_final_state() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = TrainlabApp::with_runs_root(dir.path());
    app.doc.exp = maze(4_000);
    let mut h = Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .with_max_steps(12)
        .build_ui_state(|ui, app: &mut TrainlabApp| app.show(ui), app);
    h.run();
    h.get_by_label("▶ Start").click();
    h.step();
    assert!(h.state().is_running());
    // No frames: nothing drains the events or takes a snapshot meanwhile.
    let began = Instant::now();
    let run_dir = loop {
        if let Some(d) = finished_run_dir(dir.path()) {
            break d;
        }
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "the run did not finish while the window drew nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let began = Instant::now();
    while h.state().is_running() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the run never ended"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.state_mut().tab = Tab::Maze;
    h.run();
    let s = &h.state().series;
    assert!(matches!(s.state, RunState::Finished(_)), "{:?}", s.state);
    let summary: RunSummary =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).expect("summary"))
            .expect("parses");
    let moves = summary.rl.as_ref().expect("rl").env_steps;
    let shown = format!("Q-values after episode 4000 ({moves} moves)");
    assert!(
        h.query_by_label(&shown).is_some(),
        "the maze tab shows the final Q-values: {shown}"
    );
    let covered: f64 = s.episodes.episode.last().copied().unwrap_or(0.0);
    assert_eq!(covered, 4_000.0, "the curves reach the last episode");
}

/// The playground's field is a forward pass over a whole grid: however often a
/// viewer asks (here every 2 ms, a new id each time, far more than a window's
/// frames), the worker answers at most 25 a second (one asked sooner waits and
/// the newest replaces it), training never waits for it, and the last answer
/// is the final model's.
#[test]
fn field_probes_are_answered_at_a_bounded_rate_and_the_last_shows_the_final_model() {
    use trainlab::spec::{LayerSpec, OptimizerSpec, PointsKind, PointsSpec};
    use trainlab::train::{Control, Probe, ProbeAnswer};
    let exp = Experiment {
        name: "field-rate".into(),
        dataset: DatasetSpec::Points(PointsSpec {
            kind: PointsKind::Spiral,
            samples: 400,
            ..PointsSpec::default()
        }),
        model: vec![
            LayerSpec::Linear { out: 8 },
            LayerSpec::Tanh,
            LayerSpec::Linear { out: 1 },
        ],
        optimizer: OptimizerSpec::adam(0.03),
        training: TrainingSpec {
            epochs: 400,
            batch_size: 10,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    let handle = start(exp, StartOptions::default());
    let began = Instant::now();
    let (mut asked, mut answers, mut last) = (0u64, 0u64, None);
    let mut ended = None;
    while ended.is_none() {
        asked += 1;
        handle.send(Control::Probe(Probe::Field {
            id: asked,
            resolution: 50,
        }));
        std::thread::sleep(Duration::from_millis(2));
        for e in handle.events().try_iter() {
            match e {
                TrainEvent::Probed(ProbeAnswer::Field(m)) => {
                    answers += 1;
                    last = Some((m.id, m.step));
                }
                TrainEvent::Finished(s) => ended = Some((s, began.elapsed())),
                TrainEvent::Failed { message, .. } => panic!("{message}"),
                _ => {}
            }
        }
        assert!(began.elapsed() < Duration::from_secs(300), "never ended");
    }
    let (summary, secs) = ended.expect("ended");
    // The final answer comes after Finished's test evaluation, before the channel closes.
    for e in handle.events().iter() {
        if let TrainEvent::Probed(ProbeAnswer::Field(m)) = e {
            answers += 1;
            last = Some((m.id, m.step));
        }
    }
    handle.join();
    // Answers start at least 1/25 s apart, plus the final model's.
    let bound = (secs.as_secs_f64() * 25.0).floor() as u64 + 2;
    assert!(
        answers <= bound,
        "{answers} fields answered in {secs:?} ({asked} asked): more than 25 a second"
    );
    assert!(answers >= 2, "a live answer and the final one: {answers}");
    assert!(asked > answers, "the flood was thinned: {asked} asked");
    let (id, step) = last.expect("an answer");
    assert_eq!(step, summary.steps, "the last map is the final model's");
    assert!(id > 1, "it answers the newest question, {id}");
}

/// What the window shows of the run: the status bar, the curves, the
/// playground's field answers.
fn shown(app: &TrainlabApp) -> (String, u64, usize, usize, usize, bool, u64) {
    let s = &app.series;
    (
        s.state.label(),
        s.last_step(),
        s.steps.loss.len(),
        s.evals.len(),
        s.log.len(),
        s.summary.is_some(),
        app.views.playground.answers,
    )
}

/// The frames a watched run drew: how many, why each that showed nothing new
/// was asked for, and how many widgets egui restyled. egui styles a widget by
/// how it was in the frame before; one whose id it did not see there is styled
/// as idle and its theme asks for another frame "now" (egui's
/// `theme/mod.rs`), which egui draws twice: frames that show nothing new.
#[derive(Debug, Default)]
struct Frames {
    drawn: usize,
    idle: Vec<String>,
    restyled: usize,
}

impl Frames {
    /// Counts the requests from egui's theme among what asked for the frame just drawn.
    fn count_restyles(&mut self, ctx: &egui::Context) {
        self.restyled += (ctx.repaint_causes().iter())
            .filter(|c| c.file.replace('\\', "/").ends_with("theme/mod.rs"))
            .count();
    }
}

/// Frames drawn as eframe draws them: only when something asked for one (the
/// worker's wake, egui itself), when it is due; none in between. Until the
/// window has no run any more; the frames drawn, and why each of those that
/// showed nothing new was asked for.
fn frames_as_asked(
    h: &mut Harness<'_, TrainlabApp>,
    asked: &std::sync::mpsc::Receiver<Duration>,
) -> Frames {
    let mut frames = Frames::default();
    let began = Instant::now();
    while h.state().is_running() {
        assert!(began.elapsed() < Duration::from_secs(300), "never ended");
        // Wait for a frame to be asked for, then until it is due.
        let mut due: Option<Instant> = None;
        loop {
            let wait = due.map_or(Duration::from_secs(30), |d| {
                d.saturating_duration_since(Instant::now())
            });
            match asked.recv_timeout(wait) {
                Ok(delay) => {
                    let at = Instant::now() + delay;
                    due = Some(due.map_or(at, |d| d.min(at)));
                }
                Err(_) => {
                    assert!(
                        due.is_some(),
                        "the run goes on ({:?}) and nothing asked for a frame in 30 s: the window went stale",
                        h.state().series.state
                    );
                    break;
                }
            }
        }
        // What was asked until now is answered by this frame.
        while asked.try_recv().is_ok() {}
        let before = shown(h.state());
        h.step();
        frames.drawn += 1;
        frames.count_restyles(&h.ctx);
        if shown(h.state()) == before {
            // Why it was drawn (file:line of the requests), for the report.
            let mut causes: Vec<String> = (h.ctx.repaint_causes().iter())
                .map(|c| format!("{}:{}", c.file.rsplit('/').next().unwrap_or(""), c.line))
                .collect();
            causes.dedup();
            frames.idle.push(causes.join(" "));
        }
    }
    frames
}

/// Frames as asked (see [`frames_as_asked`]) until nothing asks for one for half a
/// second (at most 100).
fn settle(h: &mut Harness<'_, TrainlabApp>, asked: &std::sync::mpsc::Receiver<Duration>) -> Frames {
    let mut frames = Frames::default();
    while let Ok(delay) = asked.recv_timeout(Duration::from_millis(500)) {
        std::thread::sleep(delay.min(Duration::from_millis(500)));
        while asked.try_recv().is_ok() {}
        h.step();
        frames.drawn += 1;
        frames.count_restyles(&h.ctx);
        if frames.drawn > 100 {
            break;
        }
    }
    frames
}

/// The redraw policy: a run whose news comes slower than the window's frame cap
/// (here 12 steps a second, a Step event each) gets a frame per piece of news and
/// no frames that show nothing new (egui draws two for a repaint asked for "now";
/// the worker's wake asks for one); and after the run ends, and after input,
/// the window shows the final state: every step on the curve, the run finished.
#[test]
fn a_slow_run_draws_only_frames_with_news_and_ends_showing_its_final_state() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = TrainlabApp::with_runs_root(dir.path());
    app.doc.exp = Experiment {
        name: "slow_news".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            train_limit: Some(600),
            test_limit: Some(100),
            val_fraction: 0.2,
            ..ImageDatasetSpec::default()
        }),
        training: TrainingSpec {
            epochs: 2,
            batch_size: 32,
            log_every_steps: 1,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    };
    app.pace.slow = true;
    app.pace.rate = 12.0;
    let mut h = Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .with_max_steps(12)
        .build_ui_state(|ui, app: &mut TrainlabApp| app.show(ui), app);
    // egui's own animations (scroll bars fading in) are not what is measured.
    h.ctx.all_styles_mut(|s| s.animation_time = 0.0);
    let (tx, asked) = std::sync::mpsc::channel();
    h.ctx.set_request_repaint_callback(move |info| {
        let _ = tx.send(info.delay);
    });
    h.run();
    h.get_by_label("▶ Start").click();
    h.step();
    assert!(h.state().is_running());
    let Frames {
        drawn: frames,
        idle,
        ..
    } = frames_as_asked(&mut h, &asked);
    let s = &h.state().series;
    assert!(matches!(s.state, RunState::Finished(_)), "{:?}", s.state);
    let total = s.info.as_ref().expect("run info").total_steps;
    assert!(total >= 25, "{total} steps");
    assert_eq!(s.last_step(), total);
    assert_eq!(
        s.steps.loss.len() as u64,
        total,
        "every step is on the curve"
    );
    // Each step's news came alone (1/12 s apart), each drawn by one frame; the
    // few frames without news are egui's own (a widget seen for the first time
    // asks for another frame to style it: 6-9 here). A policy that let egui
    // draw twice per wake shows about one idle frame per step besides.
    let news = frames - idle.len();
    println!("{frames} frames, {news} with news, {total} steps; the others asked by {idle:?}");
    assert!(
        news as u64 >= total / 2,
        "{news} frames with news for {total} steps: the view was not kept live"
    );
    assert!(
        idle.len() <= 12,
        "{} of {frames} frames showed nothing new ({total} steps), asked by {idle:?}",
        idle.len()
    );
    // Once the run ended the window settles: what it loads afterwards (the run
    // list, the trained model for the other tabs) asks for a few frames, then
    // nothing asks for more.
    let settled = settle(&mut h, &asked).drawn;
    assert!(
        settled <= 20,
        "{settled} frames after the run ended: it keeps drawing"
    );
    let status = format!("step {total} / {total}");
    assert!(
        h.query_by_label(&status).is_some(),
        "the status bar: {status}"
    );
    assert!(
        h.query_by_label("⏺ finished").is_some(),
        "the status bar says finished"
    );
    // Input: another tab and back; the final state is still what it shows.
    h.get_by_label("Data").click();
    h.step();
    h.get_by_label("Curves").click();
    h.step();
    h.step();
    assert!(h.query_by_label(&status).is_some(), "after input: {status}");
    assert!(
        h.query_by_label("⏺ finished").is_some(),
        "after input: finished"
    );
    assert_eq!(h.state().series.steps.loss.len() as u64, total);
}

/// An example experiment from experiments/.
fn example(file: &str) -> Experiment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(file);
    trainlab::spec::load_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `exp` started from the workbench with `tab` open (settled first, as a window
/// is before anyone presses Start) in slow motion at `rate` steps a second, watched on
/// its tab with frames drawn as asked: the frames while it trained, those after
/// it ended, and the Step events it sent.
fn watch_paced(exp: Experiment, tab: Tab, rate: f64) -> (Frames, Frames, u64) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = TrainlabApp::with_runs_root(dir.path());
    let log_every = exp.training.log_every_steps.max(1) as u64;
    app.doc.exp = exp;
    app.tab = tab;
    app.pace.slow = true;
    app.pace.rate = rate;
    let mut h = Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .with_max_steps(200)
        .build_ui_state(|ui, app: &mut TrainlabApp| app.show(ui), app);
    h.run();
    let (tx, asked) = std::sync::mpsc::channel();
    h.ctx.set_request_repaint_callback(move |info| {
        let _ = tx.send(info.delay);
    });
    h.get_by_label("▶ Start").click();
    h.step();
    assert!(h.state().is_running());
    let training = frames_as_asked(&mut h, &asked);
    let after = settle(&mut h, &asked);
    let s = &h.state().series;
    assert!(matches!(s.state, RunState::Finished(_)), "{:?}", s.state);
    (training, after, s.last_step() / log_every)
}

/// Watching costs no frames that carry no news: starting or ending a run moves
/// and re-ids none of the widgets that were there (the live-rate row used to
/// appear above the whole editor when a run started and vanish when it ended,
/// giving every widget below it a new id: 35-45 restyles, egui's two extra
/// frames each time, and the editor's scroll bar fading in where it then
/// overflowed), so what egui restyles is only what the run adds (the status
/// bar's figures, the plots when the first Step arrives, the field). A text
/// classifier on the Curves tab and a playground run on its field, each paced
/// to about 10 Step events a second.
#[test]
fn a_watched_run_restyles_only_what_it_adds_and_draws_frames_for_news() {
    let mut classifier = example("text_classify_gru.ron");
    classifier.training.epochs = 1;
    classifier.training.log_every_steps = 10;
    let mut playground = example("playground_spiral.ron");
    playground.training.epochs = 30;
    for (name, exp, tab, rate, most) in [
        ("text classifier", classifier, Tab::Curves, 100.0, 14),
        ("playground", playground, Tab::Playground, 250.0, 8),
    ] {
        let (training, after, events) = watch_paced(exp, tab, rate);
        let news = training.drawn - training.idle.len();
        println!("{name}: {events} Step events; while it trained {training:?}; after {after:?}");
        assert!(
            news as u64 >= events / 2,
            "{name}: {news} frames with news for {events} Step events: the view was not kept live"
        );
        assert!(
            training.restyled <= most,
            "{name}: egui restyled {} widgets new to it while the run trained (the run adds at most {most}): widgets that were there changed ids",
            training.restyled
        );
        assert!(
            training.idle.len() <= 8,
            "{name}: {} of {} frames showed nothing new, asked by {:?}",
            training.idle.len(),
            training.drawn,
            training.idle
        );
        assert!(
            after.restyled <= 6,
            "{name}: ending the run restyled {} widgets: widgets that were there changed ids",
            after.restyled
        );
    }
}
