//! The 2-D playground: the spiral example learns every training point with a
//! 2-8-8-1 tanh network; the live model answers field probes with its output and
//! every hidden unit over the plane; a surface is fitted; bad settings are
//! clear errors.

use std::process::Command;

use trainlab::spec::{
    DatasetSpec, Experiment, Feature, LayerSpec, OptimizerSpec, PointsKind, PointsSpec,
    TrainingSpec, load_file,
};
use trainlab::train::{Control, Probe, ProbeAnswer, StartOptions, TrainEvent, start};

mod common;
use common::{run_all, summary};

#[test]
fn the_spiral_example_learns_every_training_point() {
    let exp = load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/playground_spiral.ron"),
    )
    .expect("example");
    let events = run_all(exp, StartOptions::default());
    let s = summary(&events);
    assert_eq!(s.train_accuracy, Some(1.0), "{s:?}");
    assert!(s.test_accuracy.is_some_and(|a| a > 0.85), "{s:?}");
}

fn small(kind: PointsKind, model: Vec<LayerSpec>, epochs: usize) -> Experiment {
    Experiment {
        name: "points".into(),
        dataset: DatasetSpec::Points(PointsSpec {
            kind,
            samples: 200,
            ..PointsSpec::default()
        }),
        model,
        optimizer: OptimizerSpec::adam(0.03),
        training: TrainingSpec {
            epochs,
            batch_size: 10,
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

#[test]
fn the_live_model_draws_its_output_and_every_hidden_unit() {
    let model = vec![
        LayerSpec::Linear { out: 4 },
        LayerSpec::Tanh,
        LayerSpec::Linear { out: 3 },
        LayerSpec::Tanh,
        LayerSpec::Linear { out: 1 },
    ];
    let handle = start(
        small(PointsKind::Circle, model, 50),
        StartOptions::default(),
    );
    let mut maps = None;
    for e in handle.events().iter() {
        match e {
            TrainEvent::Started(_) => {
                handle.send(Control::Probe(Probe::Field {
                    id: 7,
                    resolution: 20,
                }));
                handle.send(Control::Probe(Probe::Field {
                    id: 8,
                    resolution: 1,
                }));
            }
            TrainEvent::Probed(ProbeAnswer::Field(m)) => maps = Some(m),
            TrainEvent::Probed(ProbeAnswer::Unavailable { reason }) => {
                assert!(reason.contains("2 to 200"), "{reason}");
            }
            _ => {}
        }
    }
    handle.join();
    let m = maps.expect("a field answer");
    assert_eq!((m.id, m.resolution, m.output.len()), (7, 20, 400));
    assert!(
        m.output.iter().all(|p| (0.0..=1.0).contains(p)),
        "probabilities"
    );
    let shapes: Vec<(usize, &str, usize, usize)> = m
        .layers
        .iter()
        .map(|l| (l.layer, l.kind.as_str(), l.units.len(), l.units[0].len()))
        .collect();
    assert_eq!(
        shapes,
        [
            (0, "Linear", 4, 400),
            (1, "Tanh", 4, 400),
            (2, "Linear", 3, 400),
            (3, "Tanh", 3, 400)
        ]
    );
    let w: Vec<(usize, usize, usize)> = m
        .weights
        .iter()
        .map(|w| (w.layer, w.outputs, w.inputs))
        .collect();
    assert_eq!(w, [(0, 4, 2), (2, 3, 4), (4, 1, 3)]);
    assert!(
        m.layers[1]
            .units
            .iter()
            .flatten()
            .all(|v| (-1.0..=1.0).contains(v)),
        "tanh outputs"
    );
}

#[test]
fn a_plane_is_fitted_and_two_scores_work_too() {
    let fit = run_all(
        small(PointsKind::Plane, vec![LayerSpec::Linear { out: 1 }], 30),
        StartOptions::default(),
    );
    let s = summary(&fit);
    assert!(s.test_loss.is_some_and(|l| l < 0.01), "{s:?}");
    assert!(
        s.test_accuracy.is_some_and(|a| a > 0.9),
        "within 0.1 of the target: {s:?}"
    );
    let mut two = small(
        PointsKind::Gaussians,
        vec![LayerSpec::Linear { out: 2 }],
        10,
    );
    if let DatasetSpec::Points(p) = &mut two.dataset {
        p.features = vec![Feature::X1, Feature::X2, Feature::X1X2];
    }
    let s2 = run_all(two, StartOptions::default());
    assert!(summary(&s2).test_accuracy.is_some_and(|a| a > 0.9));
}

#[test]
fn bad_settings_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        ("features: [X1, X3]", "p.ron:3:", "X3"),
        ("samples: 0", "dataset.samples", "between 4"),
        ("noise: -1.0", "dataset.noise", "between 0"),
        ("features: []", "dataset.features", "at least one"),
    ];
    for (setting, place, what) in cases {
        let file = dir.path().join("p.ron");
        std::fs::write(
            &file,
            format!(
                "(\n    dataset: Points(kind: Xor,\n        {setting}),\n    model: [Linear(out: 4), Tanh, Linear(out: 1)],\n)"
            ),
        )
        .expect("write");
        let o = Command::new(env!("CARGO_BIN_EXE_trainlab"))
            .arg("check")
            .arg(&file)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{setting}: {err}");
        assert!(
            err.contains(place) && err.contains(what),
            "{setting}: {err}"
        );
    }
    // A model that does not end in one output.
    let file = dir.path().join("p.ron");
    std::fs::write(
        &file,
        "(dataset: Points(kind: Plane), model: [Linear(out: 2)])",
    )
    .expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_trainlab"))
        .arg("check")
        .arg(&file)
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Linear(out: 1)"));
}

#[test]
fn l1_and_l2_penalties_shrink_the_weights() {
    use trainlab::spec::{Regularization, RegularizationKind};
    let dir = tempfile::tempdir().expect("tmp");
    let weights = |reg: Option<Regularization>, name: &str| {
        let model = vec![
            LayerSpec::Linear { out: 8 },
            LayerSpec::Tanh,
            LayerSpec::Linear { out: 8 },
            LayerSpec::Tanh,
            LayerSpec::Linear { out: 1 },
        ];
        // Plain SGD, as in TensorFlow Playground: with Adam every weight's step
        // has the same size, and the penalty's pull to zero wins too easily.
        let mut exp = small(PointsKind::Circle, model, 200);
        exp.optimizer = trainlab::spec::OptimizerSpec::Sgd {
            lr: 0.3,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        exp.training.regularization = reg;
        let run = dir.path().join(name);
        let events = run_all(
            exp,
            StartOptions {
                run_dir: Some(run.clone()),
                ..StartOptions::default()
            },
        );
        let acc = summary(&events).test_accuracy.expect("accuracy");
        let saved = trainlab::infer::load_saved_model(&run).expect("model");
        let w: Vec<f32> = saved
            .model
            .params()
            .iter()
            .filter(|(n, _)| n.ends_with("weight"))
            .flat_map(|(_, v)| {
                v.as_tensor()
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("values")
            })
            .collect();
        let l1: f32 = w.iter().map(|x| x.abs()).sum();
        let tiny = w.iter().filter(|x| x.abs() < 1e-2).count();
        (acc, l1, tiny)
    };
    let (acc0, l1_0, tiny0) = weights(None, "none");
    let (acc1, l1_1, tiny1) = weights(
        Some(Regularization {
            kind: RegularizationKind::L1,
            rate: 1e-3,
        }),
        "l1",
    );
    let (_, l1_2, _) = weights(
        Some(Regularization {
            kind: RegularizationKind::L2,
            rate: 3e-3,
        }),
        "l2",
    );
    assert!(
        l1_1 < 0.8 * l1_0 && l1_2 < 0.9 * l1_0,
        "sum |w|: none {l1_0}, L1 {l1_1}, L2 {l1_2}"
    );
    assert!(
        tiny1 > tiny0 + 10,
        "L1 drives weights to zero: {tiny0} -> {tiny1}"
    );
    assert!(
        acc0 > 0.9 && acc1 > 0.9,
        "both still separate the circle: {acc0} {acc1}"
    );
}
