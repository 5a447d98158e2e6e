//! Per-layer statistics (the Layers tab's data): a run records one LayerStats
//! event per validation pass, the same on the channel and in `metrics.jsonl`;
//! turning them off changes nothing the run trains; a record written before the
//! event existed, or without its optional fields, still reads back; text runs
//! (language model, classifier) record every layer and the head. The Layers
//! tab, driven through egui_kittest, shows the newest record's figures for the
//! current run and for a History run, as the record on disk has them.

mod common;

use common::workbench::{step_until, train_cleanly};

use std::path::Path;
use std::time::{Duration, Instant};

use egui::Vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use trainlab::events::{LayerStats, TrainEvent};
use trainlab::gui::{Tab, TrainlabApp};
use trainlab::spec::Experiment;
use trainlab::train::StartOptions;

fn harness(app: TrainlabApp) -> Harness<'static, TrainlabApp> {
    common::workbench::harness(app, 1000.0)
}

fn experiment(layer_stats: bool) -> Experiment {
    trainlab::spec::from_ron_str(
        &format!(
            "(name: \"layers\", dataset: Images(name: Mnist, source: Bundled, train_limit: Some(600), \
             test_limit: Some(100), val_fraction: 0.2), \
             model: [Flatten, Linear(out: 16), ReLU, Linear(out: 10)], \
             training: (epochs: 2, batch_size: 32, log_every_steps: 3, eval_every_steps: Some(5), \
             layer_stats: {layer_stats}))"
        ),
        "inline",
    )
    .expect("experiment")
}

fn layer_stats(events: &[TrainEvent]) -> Vec<LayerStats> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::LayerStats(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn layer_stats_are_recorded_at_every_validation_and_read_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = dir.path().join("on");
    let events = common::run_all(
        experiment(true),
        StartOptions {
            run_dir: Some(run.clone()),
            ..StartOptions::default()
        },
    );
    let live = layer_stats(&events);
    let val_steps: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Eval(m) if m.split == trainlab::events::Split::Val => Some(m.step),
            _ => None,
        })
        .collect();
    assert!(val_steps.len() >= 4, "{val_steps:?}");
    assert_eq!(live.iter().map(|l| l.step).collect::<Vec<_>>(), val_steps);
    let recorded = layer_stats(&trainlab::runs::read_events(&run).expect("record"));
    assert_eq!(
        recorded, live,
        "metrics.jsonl holds what the channel carried"
    );

    let first = &live[0];
    assert_eq!(first.samples, 64);
    let kinds: Vec<&str> = first.layers.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["Flatten", "Linear", "ReLU", "Linear"]);
    // Counts: outputs over the batch; gradients over the layer's parameters.
    let counts: Vec<u64> = first.layers.iter().map(|l| l.activation.count).collect();
    assert_eq!(counts, [64 * 784, 64 * 16, 64 * 16, 64 * 10]);
    assert_eq!(
        first.layers[1].gradient.as_ref().map(|g| g.count),
        Some(784 * 16 + 16)
    );
    assert_eq!(first.layers[2].gradient, None);
    assert!(
        first.layers[2]
            .dead_fraction
            .is_some_and(|d| (0.0..=1.0).contains(&d))
    );
    assert!(first.layers[1].dead_fraction.is_none());
    // A ReLU's outputs are never negative; the quantiles ascend.
    assert!(first.layers[2].activation.min() >= 0.0);
    for l in &first.layers {
        let q = l.activation.quantiles;
        assert!(q.windows(2).all(|w| w[0] <= w[1]), "{q:?}");
        assert!(l.grad_norm.is_none_or(|n| n > 0.0));
    }

    // Off: no record, and training itself is the same.
    let off = common::run_all(experiment(false), StartOptions::default());
    assert!(layer_stats(&off).is_empty());
    assert_eq!(common::step_losses(&off), common::step_losses(&events));
}

#[test]
fn records_without_layer_stats_or_their_optional_fields_still_load() {
    let dir = tempfile::tempdir().expect("tmp");
    // A line as written before the event existed, then a LayerStats line whose
    // layer has no gradient, norm or dead fraction (a layer without parameters).
    let text = concat!(
        r#"{"event":"Note","step":0,"message":"older run"}"#,
        "\n",
        r#"{"event":"LayerStats","step":5,"samples":2,"layers":[{"index":0,"kind":"Flatten","#,
        r#""activation":{"count":4,"mean":0.5,"rms":0.7,"quantiles":[0,0.1,0.2,0.5,0.8,0.9,1]}}]}"#,
        "\n"
    );
    std::fs::write(dir.path().join("metrics.jsonl"), text).expect("write");
    let (events, note) = trainlab::runs::read_record(dir.path()).expect("read");
    assert_eq!(note, None);
    assert_eq!(events.len(), 2);
    let stats = layer_stats(&events);
    assert_eq!(stats[0].layers[0].activation.median(), 0.5);
    assert_eq!(stats[0].layers[0].gradient, None);
}

#[test]
fn a_points_run_records_layer_stats_too() {
    let exp = trainlab::spec::from_ron_str(
        "(name: \"p\", dataset: Points(kind: Spiral, samples: 100), \
         model: [Linear(out: 8), Tanh, Linear(out: 1)], training: (epochs: 3, batch_size: 10))",
        "inline",
    )
    .expect("experiment");
    let events = common::run_all(exp, StartOptions::default());
    let stats = layer_stats(&events);
    assert_eq!(stats.len(), 3, "one per epoch");
    assert_eq!(stats[0].layers.len(), 3);
    assert!(stats[0].layers[0].grad_norm.is_some_and(|n| n > 0.0));
}

/// A small character language model (Embedding, LSTM, then the head) and a
/// small word-language classifier (Embedding, GRU, LastStep, then the head).
fn text_experiments() -> Vec<(Experiment, Vec<&'static str>)> {
    let lm = trainlab::spec::from_ron_str(
        "(name: \"lm\", dataset: Text(source: Bundled(Words), tokens: Chars, limit: Some(1500), \
         task: LanguageModel(seq_len: 16, sample_every_steps: None)), \
         model: [Embedding(dim: 8), LSTM(hidden: 24)], \
         training: (epochs: 1, batch_size: 16, log_every_steps: 10, eval_every_steps: Some(30)))",
        "inline",
    )
    .expect("lm");
    let classifier = trainlab::spec::from_ron_str(
        "(name: \"cls\", dataset: Text(source: Bundled(WordLanguages), limit: Some(900), \
         task: Classification(max_len: 12)), \
         model: [Embedding(dim: 8), GRU(hidden: 16), LastStep], \
         training: (epochs: 2, batch_size: 32, log_every_steps: 10))",
        "inline",
    )
    .expect("classifier");
    vec![
        (lm, vec!["Embedding", "LSTM", "Linear"]),
        (classifier, vec!["Embedding", "GRU", "LastStep", "Linear"]),
    ]
}

/// Quantiles that ascend, figures that are numbers, counts that match.
fn check_plausible(stats: &LayerStats) {
    for l in &stats.layers {
        for d in std::iter::once(&l.activation).chain(l.gradient.as_ref()) {
            let q = d.quantiles;
            assert!(q.iter().all(|v| v.is_finite()), "layer {}: {q:?}", l.index);
            assert!(
                q.windows(2).all(|w| w[0] <= w[1]),
                "layer {}: {q:?}",
                l.index
            );
            assert!(d.mean.is_finite() && d.rms.is_finite() && d.rms >= d.mean.abs() - 1e-9);
            assert!(d.count > 0);
        }
        assert!(l.grad_norm.is_none_or(|n| n.is_finite() && n > 0.0));
    }
}

#[test]
fn text_runs_record_layer_stats_for_every_layer_and_the_head() {
    for (exp, kinds) in text_experiments() {
        let dir = tempfile::tempdir().expect("tmp");
        let run = dir.path().join("run");
        let events = common::run_all(
            exp.clone(),
            StartOptions {
                run_dir: Some(run.clone()),
                ..StartOptions::default()
            },
        );
        assert!(
            matches!(events.last(), Some(TrainEvent::Finished(_))),
            "{}: {:?}",
            exp.name,
            events.last()
        );
        let live = layer_stats(&events);
        let val_evals = events
            .iter()
            .filter(|e| matches!(e, TrainEvent::Eval(m) if m.split == trainlab::events::Split::Val))
            .count();
        assert!(val_evals >= 1);
        assert_eq!(
            live.len(),
            val_evals,
            "{}: one record per validation",
            exp.name
        );
        assert_eq!(
            layer_stats(&trainlab::runs::read_events(&run).expect("record")),
            live,
            "metrics.jsonl holds what the channel carried"
        );
        let first = &live[0];
        let got: Vec<&str> = first.layers.iter().map(|l| l.kind.as_str()).collect();
        assert_eq!(got, kinds, "{}", exp.name);
        assert_eq!(first.samples, 64, "{}: the stats batch", exp.name);
        // Every layer with parameters has a gradient; LastStep has none.
        for l in &first.layers {
            assert_eq!(
                l.gradient.is_some(),
                l.kind != "LastStep",
                "{} {}",
                exp.name,
                l.kind
            );
        }
        live.iter().for_each(check_plausible);
        // The head's outputs: one score per vocabulary entry or class, per sample
        // (per position for the language model).
        let head = first.layers.last().expect("head");
        assert_eq!(head.index, kinds.len() - 1);
        assert_eq!(head.activation.count % 64, 0);
    }
}

// ---- The Layers tab -------------------------------------------------------------

/// A figure as the Layers table writes it.
fn text(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{}", (v * 1e4).round() / 1e4)
    } else {
        format!("{v:.3e}")
    }
}

/// The cells of the table row that starts with `label` (same height on screen).
fn row(h: &Harness<'_, TrainlabApp>, label: &str) -> Vec<String> {
    // The table is under the plots, whose legends may name the layer too; the
    // editor's panel on the left is no part of it.
    let (y, x) = h
        .get_all_by_label(label)
        .map(|n| (f64::from(n.rect().center().y), n.rect().min.x))
        .fold((f64::MIN, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    let mut cells: Vec<(f32, String)> = h
        .query_all_by(|n| n.role() == egui::accesskit::Role::Label)
        .filter(|n| (f64::from(n.rect().center().y) - y).abs() < 3.0)
        .filter(|n| n.rect().min.x >= x - 1.0)
        .map(|n| {
            let text = n.accesskit_node().value().unwrap_or_default();
            (n.rect().center().x, text)
        })
        .collect();
    cells.sort_by(|a, b| a.0.total_cmp(&b.0));
    cells.into_iter().map(|(_, t)| t).collect()
}

/// The row the table should show for each layer of `record`.
fn expected_rows(record: &LayerStats) -> Vec<Vec<String>> {
    record
        .layers
        .iter()
        .map(|l| {
            let a = &l.activation;
            vec![
                format!("{} {}", l.index, l.kind),
                text(a.median()),
                text(a.quantiles[1]),
                text(a.quantiles[5]),
                l.grad_norm.map_or("-".into(), text),
                l.dead_fraction
                    .map_or("-".into(), |d| format!("{:.1} %", d * 100.0)),
            ]
        })
        .collect()
}

fn check_table(h: &Harness<'_, TrainlabApp>, run_dir: &Path) {
    let recorded = layer_stats(&trainlab::runs::read_events(run_dir).expect("record"));
    let last = recorded.last().expect("a LayerStats record");
    assert!(
        h.query_by_label(&format!(
            "At step {} ({} samples, the same at every record)",
            last.step, last.samples
        ))
        .is_some(),
        "the table is of the newest record"
    );
    for want in expected_rows(last) {
        assert_eq!(row(h, &want[0]), want, "row of layer {}", want[0]);
    }
}

#[test]
fn the_layers_tab_shows_the_record_of_the_current_and_a_history_run() {
    let dir = tempfile::tempdir().expect("tmp");
    // A History run, recorded beforehand with another seed.
    let past = dir.path().join("past");
    let mut other = experiment(true);
    other.seed = 7;
    other.name = "past".into();
    common::run_all(
        other,
        StartOptions {
            run_dir: Some(past.clone()),
            ..StartOptions::default()
        },
    );

    let mut app = TrainlabApp::with_runs_root(dir.path());
    app.doc.exp = experiment(true);
    let mut h = harness(app);
    h.run();
    h.state_mut().tab = Tab::Layers;
    h.run();
    assert!(
        h.query_by_label_contains("No layer statistics in this run")
            .is_some(),
        "before a run, the tab says what it will show"
    );
    train_cleanly(&mut h);
    // Start shows the curves; back to the Layers tab.
    h.state_mut().tab = Tab::Layers;
    h.run();
    let run_dir = trainlab::runs::list_runs(dir.path())
        .into_iter()
        .find(|r| r.dir != past)
        .expect("the GUI's run")
        .dir;
    check_table(&h, &run_dir);
    // The first layer with parameters is shown first, with all four plots.
    for title in [
        "activation distribution, layer 1 Linear",
        "gradient distribution, layer 1 Linear",
        "gradient L2 norm per layer",
        "dead ReLU units",
    ] {
        assert!(h.query_by_label(title).is_some(), "{title}");
    }
    assert_eq!(h.query_all_by_label("Save PNG").count(), 4, "one per plot");
    assert_eq!(h.query_all_by_label("Save SVG").count(), 4, "one per plot");
    assert!(h.query_by_label("Save CSV").is_some());

    // Layer 0 (Flatten) has no parameters: no gradient plot, a line instead.
    h.get_by_value("layer 1 Linear").click();
    h.run();
    h.get_by_label("layer 0 Flatten").click();
    h.run();
    assert!(
        h.query_by_label("activation distribution, layer 0 Flatten")
            .is_some()
    );
    assert_eq!(h.query_all_by_label("Save PNG").count(), 3);
    assert!(h.query_by_label_contains("has no parameters").is_some());

    // The History run, ticked for comparison, then chosen in the Run list.
    let ctx = h.ctx.clone();
    h.state_mut().views.compare_run(&past, &ctx);
    step_until(&mut h, "the overlay to load", |a| {
        !a.views.is_loading_overlays() && a.views.overlay_runs().count() == 1
    });
    let label = h
        .state()
        .views
        .overlay_runs()
        .next()
        .expect("overlay")
        .label
        .clone();
    h.get_by(|n| n.value().is_some_and(|v| v.starts_with("current run (")))
        .click();
    h.run();
    h.get_by_label(&label).click();
    h.run();
    check_table(&h, &past);
}

/// Frame time with the Layers tab open while a run trains and records layer
/// statistics every 2 steps (hundreds of records): UI pass and tessellation, as
/// benches/gui.rs measures them. A measurement, not a check:
/// `cargo test --release --test layers -- --ignored --nocapture`.
#[test]
#[ignore]
fn layers_tab_frame_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let ctx = egui::Context::default();
    let mut app = TrainlabApp::with_runs_root(dir.path());
    let mut exp = experiment(true);
    exp.training.eval_every_steps = Some(2);
    exp.training.epochs = 60;
    app.doc.exp = exp;
    app.tab = Tab::Layers;
    let frame = |app: &mut TrainlabApp| {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                Vec2::new(1600.0, 1000.0),
            )),
            ..Default::default()
        };
        let began = Instant::now();
        let out = ctx.run_ui(input, |ui| app.show(ui));
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
        began.elapsed()
    };
    frame(&mut app);
    app.start_run(&ctx);
    let mut ms = Vec::new();
    while app.is_running() {
        let dt = frame(&mut app);
        ms.push(dt.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(16).saturating_sub(dt));
    }
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
    eprintln!(
        "Layers tab while training: {} frames, {} records; median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms.len(),
        app.series.layer_stats.len(),
        p(0.5),
        p(0.95),
        p(1.0)
    );
}

#[test]
fn the_layers_tab_shows_a_text_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let (exp, _) = text_experiments().remove(1);
    let mut app = TrainlabApp::with_runs_root(dir.path());
    app.doc.exp = exp;
    let mut h = harness(app);
    h.run();
    train_cleanly(&mut h);
    h.state_mut().tab = Tab::Layers;
    h.run();
    let run_dir = trainlab::runs::list_runs(dir.path())
        .into_iter()
        .next()
        .expect("the GUI's run")
        .dir;
    check_table(&h, &run_dir);
    for title in [
        "activation distribution, layer 0 Embedding",
        "gradient distribution, layer 0 Embedding",
        "gradient L2 norm per layer",
    ] {
        assert!(h.query_by_label(title).is_some(), "{title}");
    }
}
