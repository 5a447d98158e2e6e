//! Looking inside a network: the learning-rate range test (its lr sequence, its
//! stop rule, that it trains exactly as a real run does, every supervised kind,
//! the CLI and its CSV, gridworld refused), saliency on a trained run, the
//! projector on a trained run, the live model's saliency and projection (equal
//! to those of the weights the paused run saved), and the workbench's Find-lr
//! button, projector click (History and live run) and canvas heatmap (trained
//! and live model) driven through egui_kittest.

use egui::{Modifiers, PointerButton, Pos2, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use trainlab::gui::TrainlabApp;
use trainlab::spec::{DatasetSpec, Experiment, apply_override, load_file};
use trainlab::train::lr_find::{
    LrFindError, LrRange, STOP_FACTOR, Smoother, lr_find, lr_sequence, should_stop,
};
use trainlab::train::{StartOptions, TrainEvent};

mod common;

use common::workbench::{click_at, step_until};

fn harness(app: TrainlabApp) -> Harness<'static, TrainlabApp> {
    common::workbench::harness(app, 900.0)
}

fn example(name: &str) -> Experiment {
    let path = format!("{}/experiments/{name}", env!("CARGO_MANIFEST_DIR"));
    load_file(std::path::Path::new(&path)).expect("the example loads")
}

fn with(mut exp: Experiment, overrides: &[&str]) -> Experiment {
    for o in overrides {
        exp = apply_override(&exp, o).expect("a valid override");
    }
    exp
}

/// The bundled-digit MLP, cut down.
fn small_mlp() -> Experiment {
    with(
        example("mnist_mlp.ron"),
        &["dataset.train_limit=1200", "dataset.test_limit=200"],
    )
}

#[test]
fn the_range_test_follows_its_sequence_and_stops_by_its_rule() {
    let range = LrRange {
        start: 1e-5,
        end: 100.0,
        steps: 60,
    };
    let mut seen = Vec::new();
    let r = lr_find(&small_mlp(), &range, None, &mut |p| seen.push(*p)).expect("runs");
    assert_eq!(seen, r.points, "every point reached the callback, in order");
    let lrs = lr_sequence(&range);
    // lr 100 blows any MLP up: the test stops before the end.
    assert!(r.points.len() < 60, "{} points", r.points.len());
    let mut smoother = Smoother::new(0.98);
    let mut lowest = f64::INFINITY;
    for (i, p) in r.points.iter().enumerate() {
        assert_eq!(p.step, i as u64 + 1);
        let want = 1e-5 * (100.0f64 / 1e-5).powf(i as f64 / 59.0);
        assert!(
            (p.lr / want - 1.0).abs() < 1e-9,
            "step {}: lr {} vs {want}",
            p.step,
            p.lr
        );
        assert_eq!(p.lr, lrs[i]);
        let s = smoother.add(p.loss);
        assert!((s - p.smoothed).abs() < 1e-9 || !s.is_finite());
        let last = i + 1 == r.points.len();
        assert_eq!(
            should_stop(s, lowest),
            last,
            "the rule stops at the last point only"
        );
        lowest = lowest.min(s);
    }
    let why = r.stopped.as_deref().expect("a reason");
    assert!(why.contains("4x") || why.contains("diverged"), "{why}");
    let _ = STOP_FACTOR;
    let s = r.suggestions;
    let (at_min, _) = s.minimum.expect("a minimum");
    assert!((s.min_over_10.unwrap() - at_min / 10.0).abs() < 1e-15);
    let steep = s.steepest.expect("the loss fell somewhere");
    assert!(steep > 1e-5 && steep < 100.0);
}

#[test]
fn the_range_test_trains_exactly_as_a_run_does() {
    // The first loss is measured before any update: the same model, data
    // preparation and batch as a real run of the same file gives the same value.
    let exp = small_mlp();
    let range = LrRange {
        start: 1e-4,
        end: 1e-2,
        steps: 5,
    };
    let r = lr_find(&exp, &range, None, &mut |_| {}).expect("runs");
    assert_eq!(r.points.len(), 5, "a gentle range is swept to its end");
    assert_eq!(r.stopped, None);
    let run = with(exp, &["training.log_every_steps=1", "training.epochs=1"]);
    let options = StartOptions {
        halt_after_step: Some(1),
        ..StartOptions::default()
    };
    let events = common::run_all(run, options);
    let first = common::step_losses(&events)[0];
    assert_eq!(r.points[0].loss, first, "the same first batch and weights");
}

#[test]
fn every_supervised_kind_is_swept_and_gridworld_is_refused() {
    let range = LrRange {
        start: 1e-4,
        end: 1.0,
        steps: 8,
    };
    for name in [
        "text_classify_bag.ron",
        "playground_spiral.ron",
        "text_charlm_gru.ron",
    ] {
        let exp = example(name);
        let r = lr_find(&exp, &range, None, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!r.points.is_empty(), "{name}");
        assert!(
            r.points
                .iter()
                .all(|p| p.loss.is_finite() || r.stopped.is_some())
        );
    }
    let err = lr_find(
        &example("gridworld_qlearning.ron"),
        &range,
        None,
        &mut |_| {},
    );
    match err {
        Err(LrFindError::BadInput(m)) => assert!(m.contains("supervised"), "{m}"),
        other => panic!("gridworld must be refused, got {other:?}"),
    }
}

#[test]
fn the_cli_writes_the_csv_and_prints_suggestions() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("lr");
    let path = format!("{}/experiments/mnist_mlp.ron", env!("CARGO_MANIFEST_DIR"));
    let o = common::trainlab()
        .args([
            "lr-find",
            &path,
            "--steps",
            "30",
            "--set",
            "dataset.train_limit=1000",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("steepest descent: lr"), "{stdout}");
    assert!(stdout.contains("minimum / 10:"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("lr_find.csv")).expect("the CSV");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,lr,loss,smoothed"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().expect("a number")).collect())
        .collect();
    assert!(!rows.is_empty() && rows.len() <= 30);
    assert_eq!(rows[0][0], 1.0);
    assert!((rows[0][1] - 1e-7).abs() < 1e-18, "{:?}", rows[0]);
    // Refusals are bad input (exit 2) with a reason.
    let grid = format!(
        "{}/experiments/gridworld_qlearning.ron",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = common::trainlab()
        .args(["lr-find", &grid])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("supervised"));
    let o = common::trainlab()
        .args(["lr-find", &path, "--start", "1", "--end", "0.1"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
}

/// A short real run of the small MLP recorded into `dir`; returns its folder.
fn trained_run(dir: &std::path::Path) -> std::path::PathBuf {
    let run = dir.join("run");
    let exp = with(small_mlp(), &["training.epochs=1"]);
    let events = common::run_all(
        exp,
        StartOptions {
            run_dir: Some(run.clone()),
            ..StartOptions::default()
        },
    );
    assert!(
        matches!(events.last(), Some(TrainEvent::Finished(_))),
        "{:?}",
        events.last()
    );
    run
}

/// The workbench on `tab`, its runs folder holding one trained run (`trained_run`),
/// after its first frame.
fn workbench_after_a_run(
    runs: &std::path::Path,
    tab: trainlab::gui::Tab,
) -> Harness<'static, TrainlabApp> {
    trained_run(runs);
    let mut app = TrainlabApp::with_runs_root(runs);
    app.doc.exp = small_mlp();
    app.tab = tab;
    let mut h = harness(app);
    h.step();
    h
}

#[test]
fn saliency_and_the_projector_work_on_a_trained_run() {
    use trainlab::infer::Predictor;
    use trainlab::infer::saliency::SaliencyMethod;
    let dir = tempfile::tempdir().expect("tmp");
    let run = trained_run(dir.path());
    let p = Predictor::load(&run).expect("loads");
    let DatasetSpec::Images(spec) = &p.experiment.dataset else {
        unreachable!()
    };
    let data = trainlab::data::load_images(spec, p.experiment.seed).expect("data");
    let image = data.test.image(0);
    let g = p
        .saliency(image, 3, SaliencyMethod::Gradient)
        .expect("gradient");
    assert_eq!(g.values.len(), 784);
    assert!(g.values.iter().any(|v| *v != 0.0));
    let ig = p
        .saliency(image, 3, SaliencyMethod::IntegratedGradients { steps: 32 })
        .expect("integrated gradients");
    let total: f32 = ig.values.iter().sum();
    let want = ig.score - ig.baseline_score.expect("a baseline score");
    assert!(
        (total - want).abs() < 0.05 * want.abs().max(1.0),
        "completeness: {total} vs {want}"
    );
    let proj = trainlab::infer::projector::project_run(&run, None, 150).expect("projects");
    assert_eq!(proj.points.len(), 150);
    assert_eq!(proj.labels.len(), 150);
    assert!(proj.explained[0] >= proj.explained[1] && proj.explained[0] > 0.0);
    assert!(proj.what.contains("ReLU"), "{}", proj.what);
    let csv = proj.to_csv();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "index,x,y,label,predicted,probability,token");
    assert_eq!(rows.len(), 151);
    let first: Vec<&str> = rows[1].split(',').collect();
    assert_eq!(first[3], proj.labels[0].to_string());
    assert_eq!(first[1].parse::<f64>().unwrap(), proj.points[0][0]);
}

// ---- the workbench ----

#[test]
fn find_lr_plots_the_test_and_a_click_sets_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = TrainlabApp::with_runs_root(dir.path());
    app.doc.exp = small_mlp();
    let mut h = harness(app);
    h.run();
    h.get_by_label("Find lr").click();
    h.step();
    step_until(&mut h, "the range test", |a| a.lr_finder.result.is_some());
    h.run();
    let r = h.state().lr_finder.result.clone().expect("a result");
    assert!(r.points.len() > 10);
    // The suggestion on screen is the one computed.
    let steep = r.suggestions.steepest.expect("a steepest point");
    let text = format!("steepest {steep:.1e}");
    h.get_by_label(&text).click();
    h.run();
    let want: f64 = format!("{steep:.1e}").parse().unwrap();
    assert_eq!(h.state().doc.exp.optimizer.lr(), want);
    // A click on the plot at lr 0.02 sets the field to 2.0e-2.
    let t = h.state().lr_finder.transform.expect("the plot was drawn");
    let y = (t.bounds().min()[1] + t.bounds().max()[1]) / 2.0;
    let pos = t.position_from_point(&egui_plot::PlotPoint::new(0.02f64.log10(), y));
    click_at(&mut h, pos);
    h.run();
    let lr = h.state().doc.exp.optimizer.lr();
    assert!((lr / 0.02 - 1.0).abs() < 0.06, "the field holds {lr}");
}

#[test]
fn the_projector_shows_a_trained_run_and_a_click_shows_the_sample() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = workbench_after_a_run(dir.path(), trainlab::gui::Tab::Projector);
    step_until(&mut h, "the projection", |a| {
        a.views.projector.projection.is_some()
    });
    h.run();
    let p = h
        .state()
        .views
        .projector
        .projection
        .clone()
        .expect("a projection");
    assert_eq!(p.points.len(), 200, "the whole (limited) test split");
    // The variance line on screen is the projection's.
    let line = format!(
        "{:.1}% and {:.1}%",
        p.explained[0] * 100.0,
        p.explained[1] * 100.0
    );
    assert!(h.query_by_label_contains(&line).is_some(), "{line}");
    click_the_outermost_point(&mut h, &p);
}

/// Clicks the projected point farthest from the centre (no neighbour on top of
/// it) and checks the panel shows that sample: its number, true class and the
/// model's prediction, as the projection holds them.
fn click_the_outermost_point(
    h: &mut Harness<'static, TrainlabApp>,
    p: &trainlab::events::Projection,
) {
    let far = (0..p.points.len())
        .max_by(|&a, &b| {
            let n = |i: usize| p.points[i][0].hypot(p.points[i][1]);
            n(a).total_cmp(&n(b))
        })
        .expect("points");
    let t = h.state().views.projector.transform.expect("drawn");
    let pt = p.points[far];
    click_at(
        h,
        t.position_from_point(&egui_plot::PlotPoint::new(pt[0], pt[1])),
    );
    h.run();
    let chosen = h
        .state()
        .views
        .projector
        .selected
        .expect("a point was picked");
    let c = p.points[chosen];
    assert!((c[0] - pt[0]).hypot(c[1] - pt[1]) < 1e-9 || chosen == far);
    let name = |c: usize| p.classes[c].clone();
    h.get_by_label(&format!("test image #{chosen}"));
    h.get_by_label(&format!("true class: {}", name(p.labels[chosen])));
    let (pred, prob) = p.predicted[chosen];
    h.get_by_label(&format!("predicted: {} ({:.0}%)", name(pred), prob * 100.0));
}

#[test]
fn the_mistakes_view_draws_integrated_gradients_that_add_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = workbench_after_a_run(dir.path(), trainlab::gui::Tab::Mistakes);
    step_until(&mut h, "the analysis", |a| a.inspector.analysis.is_some());
    h.run();
    h.get_by_label("integrated gradients").click();
    h.run();
    let first = h
        .state()
        .inspector
        .analysis
        .as_ref()
        .expect("analysis")
        .confident_mistakes(1)[0];
    h.state_mut().views.saliency.selected = Some(first);
    h.run();
    h.get_by_label(&format!("test image #{first}, predicted class {}", {
        let a = h.state().inspector.analysis.as_ref().expect("analysis");
        a.classes[usize::from(a.predicted[first])].clone()
    }));
    // Two captions (predicted and true class): each sum matches its difference.
    let captions: Vec<String> = h
        .query_all_by_label_contains("attributions sum to")
        .filter_map(|n| {
            let n = n.accesskit_node();
            n.value().or_else(|| n.label())
        })
        .collect();
    assert_eq!(captions.len(), 2, "{captions:?}");
    for c in captions {
        let sum: f32 = between(&c, "sum to ", ";");
        let diff: f32 = c
            .rsplit("= ")
            .next()
            .and_then(|v| v.trim().parse().ok())
            .expect("diff");
        assert!((sum - diff).abs() < 0.05 * diff.abs().max(1.0), "{c}");
    }
}

fn between(s: &str, a: &str, b: &str) -> f32 {
    let from = s.find(a).expect("start") + a.len();
    let to = from + s[from..].find(b).expect("end");
    s[from..to].trim().parse().expect("a number")
}

/// Drags the mouse across the canvas (found just above its Clear button).
fn scribble(h: &mut Harness<'_, TrainlabApp>) {
    let clear = h.get_by_label("Clear").rect();
    let origin = Pos2::new(clear.min.x + 20.0, clear.min.y - 260.0);
    let points: Vec<Pos2> = (0..12)
        .map(|i| origin + Vec2::new(60.0 + 8.0 * i as f32, 30.0 + 15.0 * i as f32))
        .collect();
    h.event(egui::Event::PointerMoved(points[0]));
    for (k, &p) in points.iter().enumerate() {
        h.event(egui::Event::PointerMoved(p));
        if k == 0 || k + 1 == points.len() {
            h.event(egui::Event::PointerButton {
                pos: p,
                button: PointerButton::Primary,
                pressed: k == 0,
                modifiers: Modifiers::NONE,
            });
        }
        h.step();
    }
}

#[test]
fn the_canvas_shows_the_saliency_of_the_predicted_class() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = workbench_after_a_run(dir.path(), trainlab::gui::Tab::Draw);
    step_until(&mut h, "the trained model", |a| {
        a.inspector.predictor.is_some()
    });
    h.run();
    scribble(&mut h);
    h.run();
    let probs = h
        .state()
        .inspector
        .verdict
        .clone()
        .expect("a verdict")
        .probabilities;
    let best = trainlab::infer::argmax(&probs).0;
    let name = h
        .state()
        .inspector
        .predictor
        .as_ref()
        .expect("model")
        .classes[best]
        .clone();
    h.get_by_label("gradient").click();
    h.run();
    let caption = format!("gradient of the score for {name} (");
    assert!(h.query_by_label_contains(&caption).is_some(), "{caption}");
    h.get_by_label("integrated gradients").click();
    h.run();
    let node = h
        .query_by_label_contains("attributions sum to")
        .expect("the completeness caption");
    let text = {
        let n = node.accesskit_node();
        n.value().or_else(|| n.label()).unwrap_or_default()
    };
    assert!(text.contains(&format!("for {name}:")), "{text}");
    let sum = between(&text, "sum to ", ";");
    let diff: f32 = text
        .rsplit("= ")
        .next()
        .and_then(|v| v.trim().parse().ok())
        .expect("diff");
    assert!((sum - diff).abs() < 0.05 * diff.abs().max(1.0), "{text}");
}

// ---- the live model ----

/// Pauses a run at its start, asks the live model for saliency (both methods)
/// and a projection, stops it (the weights saved are the paused model's), and
/// returns the answers with the run folder.
fn probe_paused_run(
    dir: &std::path::Path,
) -> (std::path::PathBuf, Vec<trainlab::events::ProbeAnswer>) {
    use trainlab::events::{Probe, SaliencyMethod};
    use trainlab::train::{Control, start};
    let run = dir.join("live");
    let exp = with(small_mlp(), &["training.epochs=3"]);
    let DatasetSpec::Images(spec) = &exp.dataset else {
        unreachable!()
    };
    let data = trainlab::data::load_images(spec, exp.seed).expect("data");
    let image = data.test.image(5).to_vec();
    let handle = start(
        exp,
        StartOptions {
            run_dir: Some(run.clone()),
            ..StartOptions::default()
        },
    );
    assert!(handle.send(Control::Pause));
    let probes = [
        Probe::Saliency {
            id: 1,
            pixels: image.clone(),
            class: Some(3),
            method: SaliencyMethod::Gradient,
        },
        Probe::Saliency {
            id: 2,
            pixels: image.clone(),
            class: None,
            method: SaliencyMethod::IntegratedGradients { steps: 16 },
        },
        Probe::Project {
            id: 3,
            layer: None,
            limit: 150,
        },
        Probe::Project {
            id: 4,
            layer: Some(0),
            limit: 1000,
        },
    ];
    let mut answers = Vec::new();
    let mut asked = false;
    while let Ok(e) = handle
        .events()
        .recv_timeout(std::time::Duration::from_secs(120))
    {
        match e {
            TrainEvent::Paused { .. } if !asked => {
                asked = true;
                for p in &probes {
                    handle.send(Control::Probe(p.clone()));
                }
            }
            TrainEvent::Probed(a) => {
                answers.push(a);
                if answers.len() == probes.len() {
                    handle.send(Control::Stop);
                    handle.send(Control::Resume);
                }
            }
            TrainEvent::Finished(_) | TrainEvent::Failed { .. } => break,
            _ => {}
        }
    }
    handle.join();
    (run, answers)
}

#[test]
fn live_saliency_and_projection_equal_those_of_the_saved_weights() {
    use trainlab::events::{ProbeAnswer, SaliencyMethod};
    use trainlab::infer::Predictor;
    let dir = tempfile::tempdir().expect("tmp");
    let (run, answers) = probe_paused_run(dir.path());
    assert_eq!(answers.len(), 4, "{answers:?}");
    let p = Predictor::load(&run).expect("the stopped run saved its weights");
    let DatasetSpec::Images(spec) = &p.experiment.dataset else {
        unreachable!()
    };
    let data = trainlab::data::load_images(spec, p.experiment.seed).expect("data");
    let image = data.test.image(5);
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        let top = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * top.max(1.0),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    };
    for a in &answers {
        match a {
            ProbeAnswer::Attributed {
                id: 1, attribution, ..
            } => {
                let want = p
                    .saliency(image, 3, SaliencyMethod::Gradient)
                    .expect("gradient");
                assert_eq!((attribution.class, attribution.method), (3, want.method));
                close(&attribution.values, &want.values, "gradient");
                assert!((attribution.score - want.score).abs() < 1e-5);
                assert!(want.values.iter().any(|v| *v != 0.0));
            }
            ProbeAnswer::Attributed {
                id: 2, attribution, ..
            } => {
                // None asked for the predicted class: the saved model's argmax.
                let probs = p.probabilities(image, 1).expect("probabilities");
                let predicted = trainlab::infer::argmax(&probs[0]).0;
                assert_eq!(attribution.class, predicted);
                let method = SaliencyMethod::IntegratedGradients { steps: 16 };
                let want = p.saliency(image, predicted, method).expect("ig");
                close(&attribution.values, &want.values, "integrated gradients");
                assert!(attribution.baseline_score.is_some());
            }
            ProbeAnswer::Projected {
                id: 3, projection, ..
            } => {
                let want =
                    trainlab::infer::projector::project_run(&run, None, 150).expect("projects");
                assert_eq!(projection.points.len(), 150);
                assert_eq!(projection.labels, want.labels);
                assert_eq!(projection.images, want.images);
                assert_eq!(projection.what, want.what);
                for (a, b) in projection.predicted.iter().zip(&want.predicted) {
                    assert_eq!(a.0, b.0);
                    assert!((a.1 - b.1).abs() < 1e-5);
                }
                for (a, b) in projection.points.iter().zip(&want.points) {
                    assert!(
                        (a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4,
                        "{a:?} vs {b:?}"
                    );
                }
            }
            ProbeAnswer::Projected {
                id: 4, projection, ..
            } => {
                // Layer 0 (Flatten, 784 values an image) is wide: fewer images.
                let n = trainlab::infer::projector::LIVE_MAX_VALUES / 784;
                assert_eq!(projection.points.len(), n.min(200));
                assert!(
                    projection.what.contains("0: Flatten"),
                    "{}",
                    projection.what
                );
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

/// The workbench training a small MLP slowly (60 steps a second, 200 epochs), so
/// a test can look at the live model; returns once the run has started.
fn paced_live_run(runs: &std::path::Path) -> Harness<'static, TrainlabApp> {
    let mut app = TrainlabApp::with_runs_root(runs);
    app.doc.exp = with(small_mlp(), &["training.epochs=200"]);
    app.pace.slow = true;
    app.pace.rate = 60.0;
    let mut h = harness(app);
    h.run();
    h.get_by_label("▶ Start").click();
    step_until(&mut h, "the run to start", |a| a.is_running());
    h
}

#[test]
fn the_live_projector_shows_points_and_a_click_shows_the_sample() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = paced_live_run(dir.path());
    h.state_mut().tab = trainlab::gui::Tab::Projector;
    step_until(&mut h, "the live projection", |a| {
        a.views.projector.shown_live && a.views.projector.projection.is_some()
    });
    h.run();
    let p = h
        .state()
        .views
        .projector
        .projection
        .clone()
        .expect("a projection");
    assert_eq!(p.points.len(), 200, "the first (limited) test images");
    let source = h.state().views.projector.source.clone();
    assert!(source.starts_with("live model at step "), "{source}");
    let line = format!("({source}, 200 points)");
    assert!(h.query_by_label_contains(&line).is_some(), "{line}");
    assert!(h.query_by_value("live run").is_some() || h.query_by_label("live run").is_some());
    // Pause so the projection stays put while the point is clicked.
    h.get_by_label("⏸ Pause").click();
    step_until(&mut h, "the pause", |a| {
        matches!(a.series.state, trainlab::gui::RunState::Paused)
    });
    h.run();
    let p = h
        .state()
        .views
        .projector
        .projection
        .clone()
        .expect("a projection");
    click_the_outermost_point(&mut h, &p);
    h.get_by_label("⏹ Stop").click();
    step_until(&mut h, "the run to end", |a| !a.is_running());
}

#[test]
fn the_canvas_shows_the_live_models_saliency_while_a_run_trains() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = paced_live_run(dir.path());
    h.state_mut().tab = trainlab::gui::Tab::Draw;
    h.run();
    scribble(&mut h);
    h.run();
    h.get_by_label("integrated gradients").click();
    step_until(&mut h, "the live heatmap", |a| {
        a.views.saliency.live.is_some()
    });
    h.run();
    let (_, step, a) = h.state().views.saliency.live.clone().expect("an answer");
    // The caption is the answer's, and says which model gave it.
    let node = h
        .query_by_label_contains("attributions sum to")
        .expect("the completeness caption");
    let text = {
        let n = node.accesskit_node();
        n.value().or_else(|| n.label()).unwrap_or_default()
    };
    let sum: f32 = a.values.iter().sum();
    assert!(text.contains(&format!("sum to {sum:.3};")), "{text}");
    let diff = a.score - a.baseline_score.expect("a baseline");
    assert!((sum - diff).abs() < 0.05 * diff.abs().max(1.0), "{text}");
    assert!(
        h.query_by_label_contains("from the live model at step ")
            .is_some(),
        "step {step}"
    );
    h.get_by_label("⏹ Stop").click();
    step_until(&mut h, "the run to end", |a| !a.is_running());
}
