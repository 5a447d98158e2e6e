//! Hyperparameter knobs: optimizer and its fields, learning rate (log slider plus
//! exact value), weight penalty (L1/L2, supervised models), schedule, batch size, epochs, seed, augmentation, device
//! and compute precision (image and text models).
//!
//! Contract: edits `Experiment` in place and returns true when something changed.
//! Every knob carries a one-line tooltip that says what it does; the device list
//! offers only what this build can run (`train::available_devices`).

use egui::{ComboBox, DragValue, Ui};

use crate::spec::{
    AgentMethod, Augment, DatasetSpec, DeviceSpec, Experiment, LrDecay, OptimizerSpec, Precision,
    Regularization, RegularizationKind,
};
use crate::train::available_devices;

use super::lr_finder::LrFinder;
use super::numeric::log_knob;

/// What the exact learning-rate and penalty fields accept (the validator has the
/// final word; the slider's range follows the value).
pub(crate) const LR_LIMITS: std::ops::RangeInclusive<f64> = 1e-9..=1e3;

/// Draws the hyperparameter section (without the lr finder).
#[cfg(test)]
pub fn hyperparams(ui: &mut Ui, exp: &mut Experiment, devices: &[DeviceSpec]) -> bool {
    hyperparams_with(ui, exp, devices, None)
}

/// [`hyperparams`] with the "Find lr" button beside the learning rate.
pub fn hyperparams_with(
    ui: &mut Ui,
    exp: &mut Experiment,
    devices: &[DeviceSpec],
    mut finder: Option<&mut LrFinder>,
) -> bool {
    let refused = crate::train::lr_find::supported(exp)
        .err()
        .map(|e| e.to_string());
    let mut changed = false;
    egui::Grid::new("hyperparams")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            if matches!(exp.dataset, DatasetSpec::Gridworld(_)) {
                changed |= super::agent_params::agent_rows(ui, exp);
                if matches!(exp.agent.method, AgentMethod::Dqn(_)) {
                    changed |= optimizer_rows(ui, &mut exp.optimizer, None);
                }
                changed |= seed_row(ui, exp);
                changed |= device_row(ui, exp, devices);
            } else {
                let find = finder.as_deref_mut().map(|f| (f, refused.as_deref()));
                changed |= optimizer_rows(ui, &mut exp.optimizer, find);
                changed |= regularization_rows(ui, &mut exp.training.regularization);
                changed |= schedule_rows(ui, exp);
                changed |= training_rows(ui, exp, devices);
            }
        });
    if let Some(f) = finder {
        f.take_request(exp, ui.ctx());
    }
    changed
}

/// The devices to offer (CPU always first).
pub fn devices() -> Vec<DeviceSpec> {
    available_devices()
}

pub(crate) fn row(
    ui: &mut Ui,
    name: &str,
    help: &str,
    add: impl FnOnce(&mut Ui) -> egui::Response,
) -> bool {
    let label = ui.label(name).on_hover_text(help);
    let response = add(ui).labelled_by(label.id).on_hover_text(help);
    ui.end_row();
    response.changed()
}

fn optimizer_rows(
    ui: &mut Ui,
    opt: &mut OptimizerSpec,
    finder: Option<(&mut LrFinder, Option<&str>)>,
) -> bool {
    let mut changed = optimizer_kind_row(ui, opt);
    ui.end_row();

    let lr_help =
        "Learning rate: how big each weight update is. Too high diverges, too low crawls.";
    let label = ui.label("Learning rate").on_hover_text(lr_help);
    ui.horizontal(|ui| {
        let mut lr = opt.lr();
        if log_knob(ui, &mut lr, 1e-5..=1.0, LR_LIMITS, label.id, lr_help) {
            opt.set_lr(lr);
            changed = true;
        }
        if let Some((f, refused)) = finder {
            f.button(ui, refused);
        }
    });
    ui.end_row();

    changed |= optimizer_settings_rows(ui, opt);
    changed
}

/// The optimizer picker; a new kind keeps the lr within its usual range.
fn optimizer_kind_row(ui: &mut Ui, opt: &mut OptimizerSpec) -> bool {
    let mut changed = false;
    let kind = match opt {
        OptimizerSpec::Sgd { .. } => "SGD",
        OptimizerSpec::Adam { .. } => "Adam",
        OptimizerSpec::AdamW { .. } => "AdamW",
    };
    let label = ui
        .label("Optimizer")
        .on_hover_text("The rule that turns gradients into weight updates.");
    ComboBox::from_id_salt("optimizer")
        .selected_text(kind)
        .show_ui(ui, |ui| {
            let lr = opt.lr();
            let choices = [
                ("SGD", "Plain gradient descent (with optional momentum): simple, needs a larger lr (0.01-0.1)."),
                ("Adam", "Adapts the step size per weight; 1e-3 works for most small nets."),
                ("AdamW", "Adam with decoupled weight decay: the usual choice for bigger models."),
            ];
            for (name, help) in choices {
                if ui.selectable_label(kind == name, name).on_hover_text(help).clicked() && kind != name {
                    *opt = match name {
                        "SGD" => OptimizerSpec::Sgd { lr: lr.max(0.01), momentum: 0.9, nesterov: false, weight_decay: 0.0 },
                        "Adam" => OptimizerSpec::Adam { lr: lr.min(0.01), beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
                        _ => OptimizerSpec::AdamW { lr: lr.min(0.01), beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 },
                    };
                    changed = true;
                }
            }
        }).response.labelled_by(label.id);
    changed
}

/// The settings of the optimizer's kind (momentum, betas, weight decay).
fn optimizer_settings_rows(ui: &mut Ui, opt: &mut OptimizerSpec) -> bool {
    let mut changed = false;
    match opt {
        OptimizerSpec::Sgd {
            momentum,
            nesterov,
            weight_decay,
            ..
        } => {
            changed |= row(
                ui,
                "Momentum",
                "Keeps a running direction of updates; 0.9 smooths and speeds up SGD.",
                |ui| {
                    ui.add(
                        DragValue::new(momentum)
                            .clamp_existing_to_range(false)
                            .range(0.0..=0.999)
                            .speed(0.01),
                    )
                },
            );
            changed |= row(
                ui,
                "Nesterov",
                "Looks ahead along the momentum before computing the gradient.",
                |ui| ui.checkbox(nesterov, ""),
            );
            changed |= weight_decay_row(ui, weight_decay);
        }
        OptimizerSpec::Adam {
            beta1,
            beta2,
            weight_decay,
            ..
        }
        | OptimizerSpec::AdamW {
            beta1,
            beta2,
            weight_decay,
            ..
        } => {
            changed |= row(
                ui,
                "β1",
                "How much of the previous gradient direction Adam keeps (0.9).",
                |ui| {
                    ui.add(
                        DragValue::new(beta1)
                            .clamp_existing_to_range(false)
                            .range(0.0..=0.9999)
                            .speed(0.001),
                    )
                },
            );
            changed |= row(
                ui,
                "β2",
                "How slowly Adam's per-weight step size adapts (0.999).",
                |ui| {
                    ui.add(
                        DragValue::new(beta2)
                            .clamp_existing_to_range(false)
                            .range(0.0..=0.99999)
                            .speed(0.0001),
                    )
                },
            );
            changed |= weight_decay_row(ui, weight_decay);
        }
    }
    changed
}

fn weight_decay_row(ui: &mut Ui, weight_decay: &mut f64) -> bool {
    row(
        ui,
        "Weight decay",
        "Pulls weights towards zero each step; fights overfitting (0 = off, 1e-4..1e-2 usual).",
        |ui| {
            ui.add(
                DragValue::new(weight_decay)
                    .clamp_existing_to_range(false)
                    .range(0.0..=1.0)
                    .speed(0.0001)
                    .max_decimals(5),
            )
        },
    )
}

const REGULARIZATION_HELP: &str = "A penalty on the weights added to the loss. L1 (sum of |w|) drives \
     weights to exactly zero (sparse models); L2 (half the sum of w²) shrinks all of them a \
     little. With Adam, L1 is strong: its per-weight steps make the penalty push hard, so start \
     around 1e-5..1e-4 (TensorFlow Playground uses plain SGD, where 1e-3 is gentle).";

/// None / L1 / L2 and its rate (a log slider over 1e-5..1 plus the exact value).
fn regularization_rows(ui: &mut Ui, reg: &mut Option<Regularization>) -> bool {
    let mut changed = false;
    let name = match reg {
        None => "none",
        Some(Regularization {
            kind: RegularizationKind::L1,
            ..
        }) => "L1",
        Some(Regularization {
            kind: RegularizationKind::L2,
            ..
        }) => "L2",
    };
    let label = ui
        .label("Regularization")
        .on_hover_text(REGULARIZATION_HELP);
    ComboBox::from_id_salt("regularization")
        .selected_text(name)
        .show_ui(ui, |ui| {
            let rate = reg.map_or(1e-4, |r| r.rate);
            let choices = [
                ("none", None),
                ("L1", Some(RegularizationKind::L1)),
                ("L2", Some(RegularizationKind::L2)),
            ];
            for (label, kind) in choices {
                if ui.selectable_label(name == label, label).clicked() && name != label {
                    *reg = kind.map(|kind| Regularization { kind, rate });
                    changed = true;
                }
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text(REGULARIZATION_HELP);
    ui.end_row();
    if let Some(r) = reg {
        let label = ui
            .label("Reg. rate")
            .on_hover_text("The penalty's weight in the loss (1e-5..1, log scale).");
        ui.horizontal(|ui| {
            changed |= log_knob(
                ui,
                &mut r.rate,
                1e-5..=1.0,
                LR_LIMITS,
                label.id,
                "The penalty's weight in the loss (log scale; the field beside takes any value).",
            );
        });
        ui.end_row();
    }
    changed
}

fn schedule_rows(ui: &mut Ui, exp: &mut Experiment) -> bool {
    let mut changed = false;
    let s = &mut exp.schedule;
    changed |= row(
        ui,
        "Warmup steps",
        "Steps over which the lr rises from ~0 to its peak; steadies the first updates.",
        |ui| {
            ui.add(
                DragValue::new(&mut s.warmup_steps)
                    .clamp_existing_to_range(false)
                    .range(0..=100_000),
            )
        },
    );
    let name = match s.decay {
        LrDecay::Constant => "constant",
        LrDecay::Step { .. } => "step",
        LrDecay::Cosine { .. } => "cosine",
        LrDecay::Controlled { .. } => "controlled",
    };
    let label = ui
        .label("LR decay")
        .on_hover_text("How the learning rate shrinks after warmup.");
    ComboBox::from_id_salt("decay")
        .selected_text(name)
        .show_ui(ui, |ui| {
            let options = [
                (
                    "constant",
                    LrDecay::Constant,
                    "Keep the peak lr for the whole run.",
                ),
                (
                    "step",
                    LrDecay::Step {
                        every_epochs: 3,
                        gamma: 0.1,
                    },
                    "Multiply the lr by gamma every few epochs.",
                ),
                (
                    "cosine",
                    LrDecay::Cosine {
                        final_fraction: 0.0,
                    },
                    "Glide down along half a cosine to the end of the run.",
                ),
            ];
            for (label, value, help) in options {
                if ui
                    .selectable_label(name == label, label)
                    .on_hover_text(help)
                    .clicked()
                    && name != label
                {
                    s.decay = value;
                    changed = true;
                }
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    match &mut s.decay {
        LrDecay::Constant => {}
        LrDecay::Controlled { policy } => {
            ui.label("  policy");
            ui.label(policy.display().to_string())
                .on_hover_text("The learned controller's policy file that steers the lr.");
            ui.end_row();
        }
        LrDecay::Step {
            every_epochs,
            gamma,
        } => {
            changed |= row(ui, "  every epochs", "Epochs between lr drops.", |ui| {
                ui.add(
                    DragValue::new(every_epochs)
                        .clamp_existing_to_range(false)
                        .range(1..=1000),
                )
            });
            changed |= row(
                ui,
                "  gamma",
                "Factor applied at each drop (0.1 = ten times smaller).",
                |ui| {
                    ui.add(
                        DragValue::new(gamma)
                            .clamp_existing_to_range(false)
                            .range(0.001..=1.0)
                            .speed(0.01),
                    )
                },
            );
        }
        LrDecay::Cosine { final_fraction } => {
            changed |= row(
                ui,
                "  final fraction",
                "Where the curve ends, as a fraction of the peak lr.",
                |ui| {
                    ui.add(
                        DragValue::new(final_fraction)
                            .clamp_existing_to_range(false)
                            .range(0.0..=1.0)
                            .speed(0.01),
                    )
                },
            );
        }
    }
    changed
}

fn training_rows(ui: &mut Ui, exp: &mut Experiment, devices: &[DeviceSpec]) -> bool {
    let mut changed = false;
    let t = &mut exp.training;
    changed |= row(
        ui,
        "Batch size",
        "Images per gradient step: small = noisy but many updates, large = smooth but fewer.",
        |ui| {
            ui.add(
                DragValue::new(&mut t.batch_size)
                    .clamp_existing_to_range(false)
                    .range(1..=1_048_576),
            )
        },
    );
    changed |= row(ui, "Epochs", "Passes over the whole training set.", |ui| {
        ui.add(
            DragValue::new(&mut t.epochs)
                .clamp_existing_to_range(false)
                .range(1..=1_000_000),
        )
    });
    changed |= seed_row(ui, exp);
    if let DatasetSpec::Images(d) = &mut exp.dataset {
        let mut shift = d.augment.as_ref().map_or(0, |a| a.max_shift);
        if row(
            ui,
            "Augment shift",
            "Moves each training image by up to this many pixels; more variety, less memorising (0 = off).",
            |ui| {
                ui.add(
                    DragValue::new(&mut shift)
                        .clamp_existing_to_range(false)
                        .range(0..=8)
                        .suffix(" px"),
                )
            },
        ) {
            d.augment = (shift > 0).then_some(Augment { max_shift: shift });
            changed = true;
        }
    }
    changed |= device_row(ui, exp, devices);
    if matches!(exp.dataset, DatasetSpec::Images(_) | DatasetSpec::Text(_)) {
        changed |= precision_row(ui, &mut exp.training.precision);
    }
    changed
}

const PRECISION_HELP: &str = "Number format of the forward and backward passes: Bf16/F16 \
     are faster and lighter on a GPU (weights stay F32; F16 scales the loss, skipping \
     overflowing steps), slower on the CPU.";

fn precision_row(ui: &mut Ui, precision: &mut Precision) -> bool {
    let mut changed = false;
    let label = ui.label("Precision").on_hover_text(PRECISION_HELP);
    ComboBox::from_id_salt("precision")
        .selected_text(precision.name())
        .show_ui(ui, |ui| {
            for choice in [Precision::F32, Precision::Bf16, Precision::F16] {
                if ui
                    .selectable_label(*precision == choice, choice.name())
                    .clicked()
                    && *precision != choice
                {
                    *precision = choice;
                    changed = true;
                }
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text(PRECISION_HELP);
    ui.end_row();
    changed
}

fn seed_row(ui: &mut Ui, exp: &mut Experiment) -> bool {
    row(
        ui,
        "Seed",
        "Same seed = same initial weights, data order and exploration = same curves (on the CPU).",
        |ui| ui.add(DragValue::new(&mut exp.seed).clamp_existing_to_range(false)),
    )
}

fn device_row(ui: &mut Ui, exp: &mut Experiment, devices: &[DeviceSpec]) -> bool {
    let mut changed = false;
    let label = ui
        .label("Device")
        .on_hover_text("Where the maths runs. Only devices this build supports are listed.");
    ComboBox::from_id_salt("device")
        .selected_text(device_name(exp.device))
        .show_ui(ui, |ui| {
            for &d in devices {
                changed |= ui
                    .selectable_value(&mut exp.device, d, device_name(d))
                    .changed();
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    changed
}

/// "CPU", "CUDA 0", "Metal 0".
pub fn device_name(d: DeviceSpec) -> String {
    match d {
        DeviceSpec::Cpu => "CPU".into(),
        DeviceSpec::Cuda(n) => format!("CUDA {n}"),
        DeviceSpec::Metal(n) => format!("Metal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws the hyperparameters once in a headless context.
    fn draw(exp: &mut Experiment, ctx: &egui::Context) -> bool {
        let mut changed = false;
        let _ = ctx.run_ui(egui::RawInput::default(), |ui| {
            changed |= hyperparams(ui, exp, &[DeviceSpec::Cpu]);
        });
        changed
    }

    #[test]
    fn a_weight_penalty_is_offered_for_supervised_data_and_stays_valid() {
        let ctx = egui::Context::default();
        let mut exp = Experiment::default();
        assert!(!draw(&mut exp, &ctx), "drawing alone changes nothing");
        for kind in [RegularizationKind::L1, RegularizationKind::L2] {
            exp.training.regularization = Some(Regularization { kind, rate: 1e-4 });
            draw(&mut exp, &ctx);
            assert_eq!(
                exp.training.regularization,
                Some(Regularization { kind, rate: 1e-4 }),
                "the rows keep what they show"
            );
            assert!(crate::spec::validate(&exp).is_ok());
            let text = crate::spec::to_ron_string(&exp);
            assert!(text.contains("regularization"), "{text}");
        }
        // The slider's lowest value is still a valid rate.
        exp.training.regularization = Some(Regularization {
            kind: RegularizationKind::L1,
            rate: 1e-5,
        });
        assert!(crate::spec::validate(&exp).is_ok());
    }
}
