//! The text tab: for a language model, the samples the run wrote as it learned and
//! a prompt box that continues text with the current weights (the live model while
//! training, the trained one after); for a classifier, a sentence box with the
//! class probabilities and the per-class precision, recall and F1.
//!
//! Contract: asks the live run through probes (answers matched by id, so a late
//! answer never overwrites a newer one) and otherwise the model loaded from the
//! last finished run, which loads on a background [`Job`].

use std::path::{Path, PathBuf};

use egui::{Color32, RichText, Sense, Ui, Vec2};

use crate::events::{Probe, ProbeAnswer};
use crate::gui::state::job::Job;
use crate::gui::state::run_state::RunSeries;
use crate::infer::{Classifier, Generator};
use crate::spec::{DatasetSpec, Experiment, TextTask};

/// A trained text model loaded from a run folder.
enum TrainedText {
    Writer(Generator),
    Reader(Classifier),
}

/// What the learner typed and what came back.
pub struct TextState {
    /// Text the language model continues.
    pub prompt: String,
    /// Sampling temperature: low = safe and repetitive, high = adventurous.
    pub temperature: f64,
    /// Draw only from the k likeliest tokens (0 = all).
    pub top_k: usize,
    /// Tokens to generate.
    pub length: usize,
    /// Generated texts, newest last, with who wrote them.
    pub generated: Vec<(String, String)>,
    /// Sentence to classify.
    pub sentence: String,
    /// Class probabilities of `sentence`, with their source.
    pub verdict: Option<(Vec<f32>, String)>,
    trained: Option<(PathBuf, TrainedText)>,
    loading: Option<Job<(PathBuf, TrainedText)>>,
    /// Why the trained model could not be loaded.
    pub load_error: Option<String>,
    outbox: Vec<Probe>,
    next_id: u64,
    awaiting: Option<u64>,
    seed: u64,
}

impl Default for TextState {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            temperature: 0.8,
            top_k: 0,
            length: 120,
            generated: Vec::new(),
            sentence: String::new(),
            verdict: None,
            trained: None,
            loading: None,
            load_error: None,
            outbox: Vec::new(),
            next_id: 0,
            awaiting: None,
            seed: 1,
        }
    }
}

impl TextState {
    /// Loads the model of a finished text run in the background.
    pub fn load_run(&mut self, run_dir: &Path, exp: &Experiment, ctx: &egui::Context) {
        let DatasetSpec::Text(t) = &exp.dataset else {
            return;
        };
        let lm = matches!(t.task, TextTask::LanguageModel(_));
        let dir = run_dir.to_path_buf();
        let ctx = ctx.clone();
        self.loading = Some(Job::spawn(
            "load-text-model",
            move || ctx.request_repaint(),
            move || {
                let model = if lm {
                    TrainedText::Writer(Generator::load(&dir)?)
                } else {
                    TrainedText::Reader(Classifier::load(&dir)?)
                };
                Ok((dir, model))
            },
        ));
    }

    /// Takes a finished load.
    pub fn poll(&mut self) {
        if let Some(job) = &mut self.loading
            && let Some(outcome) = job.poll()
        {
            self.loading = None;
            match outcome {
                Ok(t) => {
                    self.trained = Some(t);
                    self.load_error = None;
                }
                Err(e) => self.load_error = Some(e),
            }
        }
    }

    /// Probes waiting for the live run.
    pub fn take_probes(&mut self) -> Vec<Probe> {
        std::mem::take(&mut self.outbox)
    }

    /// An answer from the live run.
    pub fn on_answer(&mut self, answer: &ProbeAnswer) {
        match answer {
            ProbeAnswer::Generated { id, step, text } if self.awaiting == Some(*id) => {
                self.generated
                    .push((format!("live model, step {step}"), text.clone()));
                self.awaiting = None;
            }
            ProbeAnswer::Classified {
                id,
                step,
                probabilities,
            } if self.awaiting == Some(*id) => {
                self.verdict = Some((probabilities.clone(), format!("live model, step {step}")));
                self.awaiting = None;
            }
            _ => {}
        }
    }

    /// Whether a finished run's model is loaded.
    pub fn has_trained(&self) -> bool {
        self.trained.is_some()
    }

    fn trained_name(&self) -> String {
        self.trained
            .as_ref()
            .and_then(|(d, _)| d.file_name())
            .map_or_else(String::new, |n| {
                format!("trained run {}", n.to_string_lossy())
            })
    }

    fn generate(&mut self, live: bool) {
        let top_k = (self.top_k > 0).then_some(self.top_k);
        if live {
            self.next_id += 1;
            self.awaiting = Some(self.next_id);
            self.outbox.push(Probe::Generate {
                id: self.next_id,
                prompt: self.prompt.clone(),
                temperature: self.temperature,
                top_k,
                length: self.length,
            });
            return;
        }
        let who = self.trained_name();
        if let Some((_, TrainedText::Writer(g))) = &self.trained {
            self.seed += 1;
            let text = g
                .generate(
                    &self.prompt,
                    self.temperature,
                    top_k,
                    self.length,
                    self.seed,
                )
                .unwrap_or_else(|e| format!("(could not generate: {e})"));
            self.generated.push((who, text));
        }
    }

    fn classify(&mut self, live: bool) {
        if live {
            self.next_id += 1;
            self.awaiting = Some(self.next_id);
            self.outbox.push(Probe::ClassifyText {
                id: self.next_id,
                text: self.sentence.clone(),
            });
            return;
        }
        let who = self.trained_name();
        if let Some((_, TrainedText::Reader(c))) = &self.trained {
            self.verdict = c.probabilities(&self.sentence).ok().map(|p| (p, who));
        }
    }
}

/// Draws the tab.
pub fn text_tab(
    ui: &mut Ui,
    state: &mut TextState,
    exp: &Experiment,
    series: &RunSeries,
    live: bool,
) {
    state.poll();
    let DatasetSpec::Text(t) = &exp.dataset else {
        ui.label("This experiment is not about text.");
        return;
    };
    let has_model = live || state.trained.is_some();
    if !has_model {
        ui.label(match &state.load_error {
            Some(e) => format!("The trained model could not be loaded: {e}"),
            None => "No model yet: press ▶ Start. You can try it while it learns.".into(),
        });
    }
    match &t.task {
        TextTask::LanguageModel(_) => writer(ui, state, series, live, has_model),
        TextTask::Classification(_) => reader(ui, state, series, live, has_model),
    }
}

fn writer(ui: &mut Ui, state: &mut TextState, series: &RunSeries, live: bool, has_model: bool) {
    ui.horizontal(|ui| {
        let label = ui.label("Prompt");
        ui.add(egui::TextEdit::singleline(&mut state.prompt).desired_width(220.0))
            .labelled_by(label.id);
        let label = ui.label("Temperature").on_hover_text(
            "Low: the likeliest letters, safe and repetitive. High: surprising, then nonsense.",
        );
        ui.add(egui::Slider::new(&mut state.temperature, 0.1..=2.0))
            .labelled_by(label.id);
        let label = ui
            .label("Top-k")
            .on_hover_text("Draw only from the k likeliest tokens (0 = all).");
        ui.add(egui::DragValue::new(&mut state.top_k).range(0..=200))
            .labelled_by(label.id);
        let label = ui.label("Length");
        ui.add(egui::DragValue::new(&mut state.length).range(1..=2000))
            .labelled_by(label.id);
        if ui
            .add_enabled(has_model, egui::Button::new("Generate"))
            .on_hover_text("Continue the prompt with the model as it is now.")
            .clicked()
        {
            state.generate(live);
        }
    });
    ui.columns(2, |cols| {
        cols[0].strong("Your generations");
        egui::ScrollArea::vertical()
            .id_salt("generated")
            .stick_to_bottom(true)
            .show(&mut cols[0], |ui| {
                for (who, text) in &state.generated {
                    ui.weak(who);
                    ui.label(RichText::new(text).monospace());
                    ui.add_space(4.0);
                }
            });
        cols[1].strong("Samples written during training");
        egui::ScrollArea::vertical()
            .id_salt("samples")
            .stick_to_bottom(true)
            .show(&mut cols[1], |ui| {
                for s in &series.samples {
                    ui.weak(format!(
                        "step {} (temperature {:.2})",
                        s.step, s.temperature
                    ));
                    ui.label(RichText::new(format!("{}{}", s.prompt, s.text)).monospace());
                    ui.add_space(4.0);
                }
            });
    });
}

fn reader(ui: &mut Ui, state: &mut TextState, series: &RunSeries, live: bool, has_model: bool) {
    ui.horizontal(|ui| {
        let label = ui.label("Text");
        let edit = ui
            .add(egui::TextEdit::singleline(&mut state.sentence).desired_width(360.0))
            .labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui
            .add_enabled(has_model, egui::Button::new("Classify"))
            .clicked()
            || enter)
            && has_model
        {
            state.classify(live);
        }
    });
    let classes = series
        .info
        .as_ref()
        .map(|i| i.classes.clone())
        .unwrap_or_default();
    if let Some((p, who)) = &state.verdict {
        ui.weak(format!("answer of the {who}"));
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        for (i, &v) in p.iter().enumerate() {
            ui.horizontal(|ui| {
                let name = classes.get(i).cloned().unwrap_or_else(|| i.to_string());
                ui.add_sized(
                    [110.0, 18.0],
                    egui::Label::new(RichText::new(name).monospace()),
                );
                let (rect, _) = ui.allocate_exact_size(Vec2::new(220.0, 16.0), Sense::hover());
                let painter = ui.painter_at(rect);
                painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
                let mut bar = rect;
                bar.set_width(rect.width() * v.clamp(0.0, 1.0));
                let colour = if i == best {
                    Color32::from_rgb(80, 160, 255)
                } else {
                    Color32::from_gray(140)
                };
                painter.rect_filled(bar, 2.0, colour);
                ui.label(format!("{:5.1}%", v * 100.0));
            });
        }
    }
    if let Some(e) = series
        .latest_eval
        .as_ref()
        .filter(|e| !e.per_class.is_empty())
    {
        ui.separator();
        ui.strong(format!(
            "Per class, {} split at step {}",
            e.split.name(),
            e.step
        ));
        egui::Grid::new("per_class").striped(true).show(ui, |ui| {
            for h in ["class", "precision", "recall", "F1", "samples"] {
                ui.strong(h);
            }
            ui.end_row();
            for c in &e.per_class {
                ui.label(&c.class);
                ui.label(format!("{:.3}", c.precision));
                ui.label(format!("{:.3}", c.recall));
                ui.label(format!("{:.3}", c.f1));
                ui.label(c.support.to_string());
                ui.end_row();
            }
        });
    }
}
