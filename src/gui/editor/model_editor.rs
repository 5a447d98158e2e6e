//! The layer list editor: add, remove, reorder and edit layers, with each layer's
//! output shape and parameter count underneath and the first broken layer in red.
//!
//! Contract: [`model_editor`] edits `layers` in place and reports whether anything
//! changed; shapes come from `spec::infer_shapes` (cheap: a walk over a few layers)
//! and whole-model problems from `spec::validate`, so the editor never disagrees
//! with what the worker would accept.

use egui::{Color32, DragValue, RichText, Ui};

use crate::spec::{
    DatasetSpec, Experiment, FieldValue, LayerField, LayerSpec, TextTask, ValidationError,
    dataset_io, infer_shapes, text_steps, validate,
};

/// Colour of errors.
pub const RED: Color32 = Color32::from_rgb(230, 80, 80);

/// What the editor did this frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EditorOutcome {
    /// The layer list changed.
    pub changed: bool,
}

/// The seed MLP: 784 -> 128 -> 10.
pub fn preset_mlp() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 128 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 10 },
    ]
}

/// A LeNet-style CNN: two conv + pool blocks, then two fully connected layers.
pub fn preset_lenet() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Conv2d {
            out: 6,
            kernel: 5,
            stride: 1,
            padding: 2,
        },
        LayerSpec::ReLU,
        LayerSpec::MaxPool2d {
            kernel: 2,
            stride: None,
        },
        LayerSpec::Conv2d {
            out: 16,
            kernel: 5,
            stride: 1,
            padding: 0,
        },
        LayerSpec::ReLU,
        LayerSpec::MaxPool2d {
            kernel: 2,
            stride: None,
        },
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 120 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 84 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 10 },
    ]
}

/// The presets that fit the dataset kind: (button, tooltip, layers).
fn presets(dataset: &DatasetSpec) -> Vec<(&'static str, &'static str, Vec<LayerSpec>)> {
    use LayerSpec::*;
    match dataset {
        DatasetSpec::Text(t) => match t.task {
            TextTask::LanguageModel(_) => vec![
                (
                    "LSTM",
                    "Embedding 64, LSTM 256: the classic character language model.",
                    vec![
                        Embedding { dim: 64 },
                        LSTM {
                            hidden: 256,
                            layers: 1,
                            dropout: 0.0,
                        },
                    ],
                ),
                (
                    "GRU",
                    "Embedding 64, GRU 256: three gates instead of four, fewer weights.",
                    vec![
                        Embedding { dim: 64 },
                        GRU {
                            hidden: 256,
                            layers: 1,
                            dropout: 0.0,
                        },
                    ],
                ),
                (
                    "Transformer",
                    "Embedding 64, positions, two causal attention blocks: each step looks \
                     back at the whole window at once.",
                    vec![
                        Embedding { dim: 64 },
                        PositionEmbedding {
                            context: text_steps(t),
                        },
                        Transformer {
                            heads: 4,
                            width: 256,
                        },
                        Transformer {
                            heads: 4,
                            width: 256,
                        },
                    ],
                ),
            ],
            TextTask::Classification(_) => vec![
                (
                    "Bag of characters",
                    "Embedding 32, mean over the steps: sees which tokens occur, not their order.",
                    vec![Embedding { dim: 32 }, MeanPool, Dropout { p: 0.1 }],
                ),
                (
                    "GRU encoder",
                    "Embedding 32, GRU 128, last step: reads the tokens in order.",
                    vec![
                        Embedding { dim: 32 },
                        GRU {
                            hidden: 128,
                            layers: 1,
                            dropout: 0.0,
                        },
                        LastStep,
                    ],
                ),
            ],
        },
        // Two numbers in, one score out: image networks do not fit.
        DatasetSpec::Points(_) => vec![
            (
                "Two tanh layers",
                "Linear 8, Tanh, Linear 8, Tanh, Linear 1: the playground's own network.",
                super::points_params::playground_model(),
            ),
            (
                "One tanh layer",
                "Linear 8, Tanh, Linear 1: a single bend of the plane.",
                vec![Linear { out: 8 }, Tanh, Linear { out: 1 }],
            ),
        ],
        // A DQN's network maps the agent's view to four action values.
        DatasetSpec::Gridworld(_) => vec![(
            "Q network",
            "Linear 128, ReLU, Linear 4: one value per move.",
            super::agent_params::seed_q_network(),
        )],
        _ => vec![
            (
                "MLP",
                "Flatten, Linear 128, ReLU, Linear 10: the classic first network.",
                preset_mlp(),
            ),
            (
                "LeNet CNN",
                "Two convolution + pooling blocks, then Linear 120, 84, 10 (LeCun 1998).",
                preset_lenet(),
            ),
        ],
    }
}

/// Index of the layer an error points at (`model[3] ...`), if any.
pub fn error_layer(error: &ValidationError) -> Option<usize> {
    let rest = error.field.strip_prefix("model[")?;
    rest.split(']').next()?.parse().ok()
}

/// Total trainable parameters of the layer list, or None when it does not chain.
pub fn total_params(exp: &Experiment) -> Option<usize> {
    let (input, _) = dataset_io(&exp.dataset, exp.seed);
    infer_shapes(&exp.model, &input)
        .ok()
        .map(|s| s.iter().map(|l| l.params).sum())
}

/// Formats 101770 as "101,770".
pub fn thousands(n: usize) -> String {
    crate::util::text::thousands(n as u64)
}

/// Draws the editor for `exp.model`.
pub fn model_editor(ui: &mut Ui, exp: &mut Experiment) -> EditorOutcome {
    let mut changed = false;
    ui.horizontal(|ui| {
        ui.label("Presets:");
        for (name, help, layers) in presets(&exp.dataset) {
            if ui.button(name).on_hover_text(help).clicked() {
                exp.model = layers;
                changed = true;
            }
        }
    });

    let (input, _) = dataset_io(&exp.dataset, exp.seed);
    let rows = layer_rows(&exp.model, &input);
    let problem = validate(exp).err();
    let bad_layer = problem.as_ref().and_then(error_layer);
    // Text: the vocabulary and the classes are counted when the data loads, so the
    // embedding and the output layer are sized then (the spec's shapes hold 0).
    let text = matches!(exp.dataset, DatasetSpec::Text(_));
    if text {
        ui.weak(format!(
            "input: {} tokens per sample; the vocabulary, the classes and the output \
             layer come from the data when it loads",
            input.first().copied().unwrap_or(0)
        ));
    } else {
        ui.weak(format!("input: {input:?}"));
    }

    let mut action: Option<(usize, RowAction)> = None;
    let count = exp.model.len();
    let embeddings: Vec<bool> = exp.model.iter().map(LayerSpec::takes_tokens).collect();
    for (i, layer) in exp.model.iter_mut().enumerate() {
        ui.push_id(i, |ui| {
            ui.horizontal(|ui| {
                let row = ui.label(format!("{i}."));
                changed |= kind_picker(ui, layer, row.id);
                changed |= layer_fields(ui, layer);
                if let Some(what) = row_buttons(ui, i, count) {
                    action = Some((i, what));
                }
            });
            let broken = problem.as_ref().filter(|_| bad_layer == Some(i));
            row_caption(ui, broken, rows.get(i), text && embeddings[i]);
        });
    }
    if let Some((i, what)) = action {
        match what {
            RowAction::Remove => {
                exp.model.remove(i);
            }
            RowAction::Up => exp.model.swap(i, i - 1),
            RowAction::Down => exp.model.swap(i, i + 1),
        }
        changed = true;
    }

    ui.horizontal(|ui| {
        ui.menu_button("➕ Add layer", |ui| {
            for template in LayerSpec::templates() {
                if ui
                    .button(template.kind())
                    .on_hover_text(template.help())
                    .clicked()
                {
                    exp.model.push(template);
                    changed = true;
                    ui.close();
                }
            }
        });
    });

    total_line(ui, exp, text);
    if let Some(p) = &problem
        && bad_layer.is_none()
    {
        ui.colored_label(RED, format!("✖ {p}"));
    }
    EditorOutcome { changed }
}

/// Output shape and parameters per layer; None from the first layer that breaks
/// (the layers before it still get their shapes).
fn layer_rows(layers: &[LayerSpec], input: &[usize]) -> Vec<Option<(Vec<usize>, usize)>> {
    let ok = match infer_shapes(layers, input) {
        Ok(all) => all,
        Err(e) => {
            let good = error_layer(&e).unwrap_or(0).min(layers.len());
            infer_shapes(&layers[..good], input).unwrap_or_default()
        }
    };
    (0..layers.len())
        .map(|i| ok.get(i).map(|l| (l.output.clone(), l.params)))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum RowAction {
    Remove,
    Up,
    Down,
}

/// Combo box to change a layer's kind (fields reset to the kind's defaults).
fn kind_picker(ui: &mut Ui, layer: &mut LayerSpec, row: egui::Id) -> bool {
    let mut changed = false;
    egui::ComboBox::from_id_salt("kind")
        .selected_text(layer.kind())
        .width(90.0)
        .show_ui(ui, |ui| {
            for template in LayerSpec::templates() {
                let same = template.kind() == layer.kind();
                if ui
                    .selectable_label(same, template.kind())
                    .on_hover_text(template.help())
                    .clicked()
                    && !same
                {
                    *layer = template;
                    changed = true;
                }
            }
        })
        .response
        .labelled_by(row)
        .on_hover_text(layer.help());
    changed
}

/// A layer row's remove and move buttons, right-aligned; the one clicked.
fn row_buttons(ui: &mut Ui, i: usize, count: usize) -> Option<RowAction> {
    let mut action = None;
    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
        if ui
            .small_button("✖")
            .on_hover_text("Remove this layer")
            .clicked()
        {
            action = Some(RowAction::Remove);
        }
        if ui
            .add_enabled(i + 1 < count, egui::Button::new("⏷").small())
            .on_hover_text("Move down")
            .clicked()
        {
            action = Some(RowAction::Down);
        }
        if ui
            .add_enabled(i > 0, egui::Button::new("⏶").small())
            .on_hover_text("Move up")
            .clicked()
        {
            action = Some(RowAction::Up);
        }
    });
    action
}

/// The line under a layer: its problem (when it is the broken one), else its
/// output shape and parameters (a text embedding's are sized by the data).
fn row_caption(
    ui: &mut Ui,
    problem: Option<&ValidationError>,
    row: Option<&Option<(Vec<usize>, usize)>>,
    sized_by_data: bool,
) {
    if let Some(p) = problem {
        ui.colored_label(RED, format!("   ✖ {}", p.message));
    } else if let Some(Some((output, params))) = row {
        if sized_by_data {
            ui.weak(format!("   output {output:?}   vocabulary × dim params"));
        } else {
            ui.weak(format!(
                "   output {output:?}   {} params",
                thousands(*params)
            ));
        }
    } else {
        ui.weak("   (comes after the broken layer)");
    }
}

/// The model's parameter count (text models: without the parts the data sizes).
fn total_line(ui: &mut Ui, exp: &Experiment, text: bool) {
    match total_params(exp) {
        Some(n) if text => {
            ui.label(
                RichText::new(format!(
                    "Total parameters: {} + embedding and output layer (sized by the data)",
                    thousands(n)
                ))
                .strong(),
            );
        }
        Some(n) => {
            ui.label(RichText::new(format!("Total parameters: {}", thousands(n))).strong());
        }
        None => {
            ui.colored_label(RED, "Total parameters: — (fix the red layer)");
        }
    }
}

/// The editable fields of one layer, as its kind lists them (`LayerSpec::fields`).
fn layer_fields(ui: &mut Ui, layer: &mut LayerSpec) -> bool {
    let mut changed = false;
    for LayerField { name, help, value } in layer.fields() {
        let label = ui.label(name);
        let widget = match value {
            FieldValue::Count { value, min, max } => DragValue::new(value).range(min..=max),
            FieldValue::Fraction {
                value,
                max,
                speed,
                decimals,
            } => {
                let widget = DragValue::new(value).range(0.0..=max).speed(speed);
                match decimals {
                    Some(d) => widget.max_decimals(d),
                    None => widget,
                }
            }
        };
        changed |= ui
            .add(widget.clamp_existing_to_range(false))
            .labelled_by(label.id)
            .on_hover_text(help)
            .changed();
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_counted() {
        let mut exp = Experiment {
            model: preset_mlp(),
            ..Experiment::default()
        };
        assert_eq!(total_params(&exp), Some(101_770));
        exp.model = preset_lenet();
        assert!(validate(&exp).is_ok(), "{:?}", validate(&exp));
        assert_eq!(thousands(101_770), "101,770");
        assert_eq!(thousands(7), "7");
    }

    #[test]
    fn a_broken_chain_names_its_layer() {
        let exp = Experiment {
            model: vec![LayerSpec::Linear { out: 10 }],
            ..Experiment::default()
        };
        let err = validate(&exp).expect_err("Linear on an image");
        assert_eq!(error_layer(&err), Some(0));
    }
}
