//! The 2-D playground's editor rows: which shape, how many points, how noisy,
//! how many held out, and which input features the network sees; and switching
//! an experiment to the playground with a model that suits it.
//!
//! Contract: edits the `PointsSpec` in place and reports a change; the feature
//! checkboxes keep at least one feature ticked and keep [`Feature::ALL`]'s order.

use egui::{ComboBox, DragValue, Slider, Ui};

use crate::spec::{
    DatasetSpec, Experiment, Feature, LayerSpec, OptimizerSpec, PointsKind, PointsSpec,
};

/// Every shape with its picker label and help.
pub const KINDS: [(PointsKind, &str, &str); 7] = [
    (
        PointsKind::Circle,
        "circle",
        "Class 1 inside a disc, class 0 in a ring around it.",
    ),
    (
        PointsKind::Xor,
        "exclusive or",
        "Class 1 where x1 and x2 have the same sign.",
    ),
    (
        PointsKind::Gaussians,
        "two clouds",
        "Two round clouds, one per class: a straight line separates them.",
    ),
    (
        PointsKind::Spiral,
        "spiral",
        "Two arms winding around each other: the hard one.",
    ),
    (PointsKind::Moons, "moons", "Two interleaved half moons."),
    (
        PointsKind::Plane,
        "plane (regression)",
        "Fit a surface that rises evenly across the plane.",
    ),
    (
        PointsKind::TwoGaussians,
        "two bumps (regression)",
        "Fit a surface with a bump up at one place and a dip at another.",
    ),
];

/// The picker's name for `kind`.
pub fn kind_label(kind: PointsKind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or("points", |(_, l, _)| l)
}

/// The model a playground starts with: two hidden tanh layers of 8 units.
pub fn playground_model() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Linear { out: 8 },
        LayerSpec::Tanh,
        LayerSpec::Linear { out: 8 },
        LayerSpec::Tanh,
        LayerSpec::Linear { out: 1 },
    ]
}

/// Switches `exp` to the playground shape `kind`; coming from other data it also
/// gets the playground's model, Adam at 0.03 and batches of 10.
pub fn to_points(exp: &mut Experiment, kind: PointsKind) {
    if let DatasetSpec::Points(p) = &mut exp.dataset {
        p.kind = kind;
        return;
    }
    exp.dataset = DatasetSpec::Points(PointsSpec {
        kind,
        ..PointsSpec::default()
    });
    exp.model = playground_model();
    exp.optimizer = OptimizerSpec::Adam {
        lr: 0.03,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    exp.training.batch_size = 10;
    exp.training.epochs = exp.training.epochs.max(200);
    exp.training.log_every_steps = 25;
    // A playground runs hundreds of epochs of a few steps each: a checkpoint
    // every epoch spends far more on disk writes than on training.
    exp.training.checkpoint.every_epochs = Some(100);
}

/// Draws the rows.
pub fn points_rows(ui: &mut Ui, spec: &mut PointsSpec) -> bool {
    let mut changed = false;
    egui::Grid::new("points_grid")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label("Shape");
            ComboBox::from_id_salt("points_kind")
                .selected_text(kind_label(spec.kind))
                .show_ui(ui, |ui| {
                    for (kind, name, help) in KINDS {
                        changed |= ui
                            .selectable_value(&mut spec.kind, kind, name)
                            .on_hover_text(help)
                            .changed();
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

            let help = "Points in all, train and test together.";
            let label = ui.label("Samples").on_hover_text(help);
            changed |= ui
                .add(
                    DragValue::new(&mut spec.samples)
                        .clamp_existing_to_range(false)
                        .range(4..=100_000)
                        .speed(5.0),
                )
                .labelled_by(label.id)
                .on_hover_text(help)
                .changed();
            ui.end_row();

            let help = "How far each point is pushed at random (the plane spans 12): 0 is clean.";
            let label = ui.label("Noise").on_hover_text(help);
            changed |= ui
                .add(
                    Slider::new(&mut spec.noise, 0.0..=6.0)
                        .step_by(0.05)
                        .clamping(egui::SliderClamping::Edits),
                )
                .labelled_by(label.id)
                .on_hover_text(help)
                .changed();
            ui.end_row();

            let help = "Share of the points held out for testing (drawn outlined).";
            let label = ui.label("Test fraction").on_hover_text(help);
            changed |= ui
                .add(
                    Slider::new(&mut spec.test_fraction, 0.1..=0.9)
                        .step_by(0.05)
                        .clamping(egui::SliderClamping::Edits),
                )
                .labelled_by(label.id)
                .on_hover_text(help)
                .changed();
            ui.end_row();

            ui.label("Features")
                .on_hover_text("What the network is given of each point.");
            ui.horizontal_wrapped(|ui| {
                for f in Feature::ALL {
                    let mut on = spec.features.contains(&f);
                    let last = on && spec.features.len() == 1;
                    let r = ui
                        .add_enabled(!last, egui::Checkbox::new(&mut on, f.label()))
                        .on_disabled_hover_text("The network needs at least one input.");
                    if r.changed() {
                        set_feature(spec, f, on);
                        changed = true;
                    }
                }
            });
            ui.end_row();
        });
    changed
}

/// Ticks or unticks `f`, keeping `Feature::ALL`'s order.
fn set_feature(spec: &mut PointsSpec, f: Feature, on: bool) {
    let mut chosen: Vec<Feature> = Feature::ALL
        .into_iter()
        .filter(|g| {
            if *g == f {
                on
            } else {
                spec.features.contains(g)
            }
        })
        .collect();
    if chosen.is_empty() {
        chosen.push(f);
    }
    spec.features = chosen;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switching_to_points_gives_a_valid_playground() {
        for (kind, _, _) in KINDS {
            let mut exp = Experiment::default();
            to_points(&mut exp, kind);
            assert!(
                crate::spec::validate(&exp).is_ok(),
                "{kind:?}: {:?}",
                crate::spec::validate(&exp)
            );
            assert_eq!(exp.training.checkpoint.every_epochs, Some(100), "{kind:?}");
        }
    }

    #[test]
    fn features_keep_their_order_and_one_stays() {
        let mut spec = PointsSpec::default();
        set_feature(&mut spec, Feature::SinX1, true);
        set_feature(&mut spec, Feature::X1Squared, true);
        assert_eq!(
            spec.features,
            [Feature::X1, Feature::X2, Feature::X1Squared, Feature::SinX1]
        );
        for f in Feature::ALL {
            set_feature(&mut spec, f, false);
        }
        assert_eq!(spec.features.len(), 1);
    }
}
