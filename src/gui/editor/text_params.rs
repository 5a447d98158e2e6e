//! The text side of the dataset picker: presets that start a text experiment
//! (the example files in experiments/, compiled in so they work from any folder)
//! and the rows that edit a text dataset — tokens, splits, window length, live
//! sample settings, or the classifier's document length and class weights.
//!
//! Contract: edits the experiment in place and returns whether it changed; a
//! preset replaces the name, dataset, model and training settings but keeps the
//! experiment's seed and device.

use std::sync::OnceLock;

use egui::{ComboBox, DragValue, TextEdit, Ui};

use super::hyperparams::row;
use crate::spec::{
    ClassWeights, ClassificationSpec, DatasetSpec, Experiment, LanguageModelSpec, TextDatasetSpec,
    TextSource, TextTask, Tokens, from_ron_str,
};

/// A ready-made text experiment.
pub struct TextPreset {
    pub label: &'static str,
    pub help: &'static str,
    /// The example file, parsed once (None if it failed to parse: not offered).
    exp: Option<Experiment>,
}

/// The text presets offered in the picker (parsed on first use, then kept).
pub fn presets() -> &'static [TextPreset] {
    static PRESETS: OnceLock<Vec<TextPreset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let preset = |label, help, ron: &str, file: &str| TextPreset {
            label,
            help,
            exp: from_ron_str(ron, file).ok(),
        };
        vec![
            preset(
                "Words: invent new words (char LSTM)",
                "A character language model on the bundled word lists of six languages; \
                 it streams made-up words as it learns. Works offline.",
                include_str!("../../../experiments/text_charlm_lstm.ron"),
                "experiments/text_charlm_lstm.ron",
            ),
            preset(
                "Words: which language? (classifier)",
                "Classify a word as English, German, French, Spanish, Italian or \
                 Portuguese from its letters. Works offline.",
                include_str!("../../../experiments/text_classify_bag.ron"),
                "experiments/text_classify_bag.ron",
            ),
            preset(
                "Fortunes by topic (classifier)",
                "Sort fortune-cookie sayings by topic. Needs Debian's `fortunes` package.",
                include_str!("../../../experiments/text_fortunes_topic.ron"),
                "experiments/text_fortunes_topic.ron",
            ),
        ]
    })
}

impl TextPreset {
    /// Whether the experiment's dataset is this preset's.
    pub fn is_current(&self, exp: &Experiment) -> bool {
        match (&exp.dataset, self.exp.as_ref().map(|e| &e.dataset)) {
            (DatasetSpec::Text(now), Some(DatasetSpec::Text(p))) => {
                p.source == now.source && same_task(&p.task, &now.task)
            }
            _ => false,
        }
    }

    /// Switches `exp` to this preset's dataset, model and training settings.
    pub fn apply(&self, exp: &mut Experiment) -> anyhow::Result<()> {
        let Some(preset) = &self.exp else {
            return Err(anyhow::anyhow!(
                "the preset {} could not be read",
                self.label
            ));
        };
        exp.name = preset.name.clone();
        exp.dataset = preset.dataset.clone();
        exp.model = preset.model.clone();
        exp.training = preset.training.clone();
        exp.optimizer = preset.optimizer.clone();
        exp.schedule = preset.schedule.clone();
        Ok(())
    }
}

fn same_task(a: &TextTask, b: &TextTask) -> bool {
    matches!(
        (a, b),
        (TextTask::LanguageModel(_), TextTask::LanguageModel(_))
            | (TextTask::Classification(_), TextTask::Classification(_))
    )
}

/// Where the text comes from, in words.
pub fn describe(spec: &TextDatasetSpec) -> String {
    let task = match spec.task {
        TextTask::LanguageModel(_) => "language model",
        TextTask::Classification(_) => "classifier",
    };
    let source = match &spec.source {
        TextSource::Bundled(b) => format!("bundled {b:?}"),
        TextSource::System(s) => format!("system {s:?}"),
        TextSource::File(p) | TextSource::Folder(p) | TextSource::Table { path: p, .. } => p
            .file_name()
            .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into()),
    };
    format!("Text: {source} ({task})")
}

/// The editable rows of a text dataset.
pub fn text_rows(ui: &mut Ui, spec: &mut TextDatasetSpec) -> bool {
    let mut changed = false;
    egui::Grid::new("text_dataset_grid")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            changed |= corpus_rows(ui, spec);
            changed |= match &mut spec.task {
                TextTask::LanguageModel(lm) => language_model_rows(ui, lm),
                TextTask::Classification(c) => classifier_rows(ui, c),
            };
        });
    changed
}

/// Rows every text dataset has: tokens, case, and the held-out fractions.
fn corpus_rows(ui: &mut Ui, spec: &mut TextDatasetSpec) -> bool {
    let mut changed = false;
    changed |= row(
        ui,
        "Tokens",
        "Characters: the model reads and writes one letter at a time. \
         Words: one whole word at a time (rare words become <unk>).",
        |ui| {
            let mut inner = false;
            let r = ComboBox::from_id_salt("text_tokens")
                .selected_text(match spec.tokens {
                    Tokens::Chars => "Characters",
                    Tokens::Words => "Words",
                })
                .show_ui(ui, |ui| {
                    inner |= ui
                        .selectable_value(&mut spec.tokens, Tokens::Chars, "Characters")
                        .changed();
                    inner |= ui
                        .selectable_value(&mut spec.tokens, Tokens::Words, "Words")
                        .changed();
                })
                .response;
            changed |= inner;
            r
        },
    );
    changed |= row(
        ui,
        "Lowercase",
        "Fold capitals to lower case: a smaller vocabulary, easier to learn.",
        |ui| ui.checkbox(&mut spec.lowercase, ""),
    );
    changed |= row(
        ui,
        "Validation fraction",
        "Part of the documents held out to watch generalisation while training.",
        |ui| {
            ui.add(
                DragValue::new(&mut spec.val_fraction)
                    .clamp_existing_to_range(false)
                    .range(0.0..=0.5)
                    .speed(0.01),
            )
        },
    );
    changed |= row(
        ui,
        "Test fraction",
        "Part of the documents kept apart for the final score.",
        |ui| {
            ui.add(
                DragValue::new(&mut spec.test_fraction)
                    .clamp_existing_to_range(false)
                    .range(0.0..=0.5)
                    .speed(0.01),
            )
        },
    );
    changed
}

/// A language model's rows: its window, and the live samples.
fn language_model_rows(ui: &mut Ui, lm: &mut LanguageModelSpec) -> bool {
    let mut changed = false;
    changed |= row(
        ui,
        "Window length",
        "Tokens per training window: how far back in time the gradient flows \
         (truncated backpropagation through time).",
        |ui| {
            ui.add(
                DragValue::new(&mut lm.seq_len)
                    .clamp_existing_to_range(false)
                    .range(2..=1024),
            )
        },
    );
    changed |= row(
        ui,
        "Sample every",
        "Steps between the live samples the model writes while it learns.",
        |ui| {
            let mut every = lm.sample_every_steps.unwrap_or(0);
            let r = ui.add(
                DragValue::new(&mut every)
                    .clamp_existing_to_range(false)
                    .range(0..=100_000)
                    .suffix(" steps (0: never)"),
            );
            if r.changed() {
                lm.sample_every_steps = (every > 0).then_some(every);
            }
            r
        },
    );
    changed |= row(
        ui,
        "Sample temperature",
        "Below 1: safer, more repetitive samples; above 1: wilder ones.",
        |ui| {
            ui.add(
                DragValue::new(&mut lm.sample.temperature)
                    .clamp_existing_to_range(false)
                    .range(0.05..=3.0)
                    .speed(0.01),
            )
        },
    );
    changed |= row(
        ui,
        "Sample prompt",
        "Text the live samples start from (empty: a fresh document).",
        |ui| ui.add(TextEdit::singleline(&mut lm.sample.prompt).desired_width(140.0)),
    );
    changed
}

/// A classifier's rows: the cut-off length and the class weights.
fn classifier_rows(ui: &mut Ui, c: &mut ClassificationSpec) -> bool {
    let mut changed = false;
    changed |= row(
        ui,
        "Max length",
        "Longer documents are cut to this many tokens; shorter ones are padded.",
        |ui| {
            ui.add(
                DragValue::new(&mut c.max_len)
                    .clamp_existing_to_range(false)
                    .range(1..=4096),
            )
        },
    );
    changed |= row(
        ui,
        "Class weights",
        "Balanced: rare classes count more in the loss, so the model cannot \
         win by always guessing the common one.",
        |ui| {
            let balanced = matches!(c.class_weights, ClassWeights::Balanced);
            let mut on = balanced;
            let r = ui.checkbox(&mut on, "balanced");
            if r.changed() {
                c.class_weights = if on {
                    ClassWeights::Balanced
                } else {
                    ClassWeights::None
                };
            }
            r
        },
    );
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate;

    #[test]
    fn every_preset_parses_validates_and_is_recognised() {
        assert_eq!(presets().len(), 3);
        for preset in presets() {
            assert!(preset.exp.is_some(), "{} parses", preset.label);
            let mut exp = Experiment::default();
            preset.apply(&mut exp).expect(preset.label);
            validate(&exp).unwrap_or_else(|e| panic!("{}: {e}", preset.label));
            assert!(preset.is_current(&exp), "{}", preset.label);
        }
    }
}
