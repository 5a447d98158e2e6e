//! The PyTorch tab: the standalone PyTorch script `trainlab export pytorch` would
//! write for the experiment under edit, with Copy and Save…; or, for an
//! experiment the exporter does not cover, its reason.
//!
//! Contract: the script is made by [`crate::export::pytorch::render`] only when
//! the experiment differs from the one it was last made from (an edit, an
//! opened file), never every frame; the colouring is computed with it. Saving
//! goes through [`save_script`] (the exporter's own writer: sidecars, then the
//! script, each to a temporary name and renamed).

use std::path::{Path, PathBuf};

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, Ui};

use crate::export::ExportError;
use crate::export::pytorch::{Exported, Rendered, export, render};
use crate::spec::Experiment;

/// The tab's state: the experiment the script was made from, and the result.
#[derive(Default)]
pub struct PytorchState {
    made_from: Option<Experiment>,
    /// The script (and its coloured layout), or why there is none.
    /// Boundary: the script, or the reason there is none as the tab shows it.
    script: Option<Result<(String, LayoutJob), String>>,
    /// How many times the script was made (tests check it is not every frame).
    pub renders: usize,
    /// Boundary: where the last save went, or why it failed, as shown.
    saved: Option<Result<PathBuf, String>>,
    /// When Copy was last pressed, to say so for a few seconds.
    copied_at: Option<std::time::Instant>,
}

impl PytorchState {
    /// Remakes the script if `exp` changed since it was last made.
    pub fn update(&mut self, exp: &Experiment) {
        if self.made_from.as_ref() == Some(exp) {
            return;
        }
        self.renders += 1;
        self.made_from = Some(exp.clone());
        self.copied_at = None;
        self.script = Some(
            render(exp, None, false, Path::new("train.py"))
                .map(|Rendered { script, .. }| {
                    let job = highlight(&script);
                    (script, job)
                })
                .map_err(|e| e.to_string()),
        );
    }

    /// The script shown, or the reason there is none (None before the first frame).
    pub fn script(&self) -> Option<Result<&str, &str>> {
        self.script.as_ref().map(|r| match r {
            Ok((s, _)) => Ok(s.as_str()),
            Err(e) => Err(e.as_str()),
        })
    }

    /// Draws the tab for the experiment under edit.
    pub fn show(&mut self, ui: &mut Ui, exp: &Experiment) {
        self.update(exp);
        match &self.script {
            Some(Ok((script, job))) => {
                ui.horizontal(|ui| {
                    if ui
                        .button("Copy")
                        .on_hover_text("Copy the script to the clipboard.")
                        .clicked()
                    {
                        ui.ctx().copy_text(script.clone());
                        self.copied_at = Some(std::time::Instant::now());
                    }
                    // Copying is silent otherwise: say it happened.
                    if let Some(at) = self.copied_at {
                        let shown = std::time::Duration::from_secs(4);
                        if at.elapsed() < shown {
                            ui.label(format!("✔ copied ({} lines)", script.lines().count()));
                            ui.ctx().request_repaint_after(shown - at.elapsed());
                        } else {
                            self.copied_at = None;
                        }
                    }
                    if ui
                        .button("Save…")
                        .on_hover_text(
                            "Write the script, and the validation split it reads beside it.",
                        )
                        .clicked()
                        && let Some(path) = rfd::FileDialog::new()
                            .add_filter("Python", &["py"])
                            .set_file_name(format!("{}.py", file_stem(&exp.name)))
                            .save_file()
                    {
                        self.saved = Some(
                            save_script(exp, &path)
                                .map(|e| e.script)
                                .map_err(|e| e.to_string()),
                        );
                    }
                    match &self.saved {
                        Some(Ok(p)) => {
                            ui.weak(format!("saved {}", p.display()));
                        }
                        Some(Err(e)) => {
                            ui.colored_label(
                                Color32::from_rgb(230, 90, 90),
                                format!("Not saved: {e}"),
                            );
                        }
                        None => {}
                    }
                });
                ui.weak(
                    "The same model, data, split and training in PyTorch (torch, numpy, safetensors). \
                     It follows your edits.",
                );
                ui.separator();
                egui::ScrollArea::both()
                    .id_salt("pytorch_script")
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        ui.add(egui::Label::new(job.clone()).selectable(true).extend());
                    });
            }
            Some(Err(reason)) => {
                ui.label("No PyTorch script for this experiment:");
                ui.colored_label(Color32::from_rgb(230, 160, 60), reason);
            }
            None => {}
        }
    }
}

/// Writes the script for `exp` to `path` and its validation split beside it.
pub fn save_script(exp: &Experiment, path: &Path) -> Result<Exported, ExportError> {
    export(exp, None, false, path)
}

fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "train".into()
    } else {
        stem
    }
}

const KEYWORDS: [&str; 30] = [
    "False", "None", "True", "and", "as", "assert", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "for", "from", "if", "import", "in", "is", "lambda", "not", "or",
    "pass", "raise", "return", "try", "while", "with", "yield",
];

/// Python source coloured by a small scanner: comments, strings, keywords,
/// numbers. Not a parser: an unusual construct is at worst coloured plainly.
fn highlight(src: &str) -> LayoutJob {
    let font = FontId::monospace(12.0);
    let plain = Color32::from_rgb(210, 210, 210);
    let comment = Color32::from_rgb(120, 150, 120);
    let string = Color32::from_rgb(220, 170, 110);
    let keyword = Color32::from_rgb(110, 160, 240);
    let number = Color32::from_rgb(180, 200, 140);
    let mut job = LayoutJob::default();
    let mut push = |text: &str, colour: Color32| {
        job.append(text, 0.0, TextFormat::simple(font.clone(), colour));
    };
    let mut rest = src;
    while let Some(c) = rest.chars().next() {
        let len = if c == '#' {
            let n = rest.find('\n').unwrap_or(rest.len());
            push(&rest[..n], comment);
            n
        } else if c == '"' || c == '\'' {
            let n = string_len(rest);
            push(&rest[..n], string);
            n
        } else if c.is_alphabetic() || c == '_' {
            let n = rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..n];
            push(
                word,
                if KEYWORDS.contains(&word) {
                    keyword
                } else {
                    plain
                },
            );
            n
        } else if c.is_ascii_digit() {
            let n = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.' || ch == '_'))
                .unwrap_or(rest.len());
            push(&rest[..n], number);
            n
        } else {
            let n = rest
                .find(|ch: char| {
                    ch == '#' || ch == '"' || ch == '\'' || ch.is_alphanumeric() || ch == '_'
                })
                .unwrap_or(rest.len())
                .max(c.len_utf8());
            push(&rest[..n], plain);
            n
        };
        rest = &rest[len..];
    }
    job
}

/// The length of the string literal `s` starts with (triple-quoted or not, up
/// to the end of the line for an unclosed one).
fn string_len(s: &str) -> usize {
    for quote in ["\"\"\"", "'''"] {
        if let Some(body) = s.strip_prefix(quote) {
            return body.find(quote).map_or(s.len(), |i| i + 6);
        }
    }
    let q = s.as_bytes()[0];
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            b if b == q => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(job: &LayoutJob) -> Vec<(&str, Color32)> {
        job.sections
            .iter()
            .map(|s| {
                (
                    &job.text[s.byte_range.start.0..s.byte_range.end.0],
                    s.format.color,
                )
            })
            .collect()
    }

    #[test]
    fn highlighting_keeps_the_text_and_colours_the_parts() {
        let src = "import torch  # the library\nx = \"a # not a comment\" + 'b\\'c'\ndef f(n=12):\n    return None\n\"\"\"doc\nstring\"\"\"\n";
        let job = highlight(src);
        assert_eq!(job.text, src, "every character kept, in order");
        let p = pieces(&job);
        let colour_of = |t: &str| p.iter().find(|(s, _)| *s == t).map(|(_, c)| *c);
        assert_eq!(colour_of("import"), colour_of("def"));
        assert_eq!(colour_of("return"), colour_of("None"));
        assert_ne!(colour_of("import"), colour_of("torch"));
        assert_eq!(
            colour_of("\"a # not a comment\""),
            colour_of("'b\\'c'"),
            "strings with escapes"
        );
        assert!(
            colour_of("# the library").is_some(),
            "comment to the end of the line"
        );
        assert!(
            colour_of("\"\"\"doc\nstring\"\"\"").is_some(),
            "triple-quoted string"
        );
        assert!(colour_of("12").is_some());
    }

    #[test]
    fn an_unclosed_string_ends_with_its_line() {
        let job = highlight("s = 'open\nx = 1\n");
        assert_eq!(job.text, "s = 'open\nx = 1\n");
        assert!(pieces(&job).iter().any(|(s, _)| *s == "'open"));
    }

    #[test]
    fn the_script_is_made_again_only_when_the_experiment_changes() {
        let mut state = PytorchState::default();
        let mut exp = Experiment::default();
        state.update(&exp);
        state.update(&exp);
        assert_eq!(state.renders, 1);
        exp.training.epochs += 1;
        state.update(&exp);
        assert_eq!(state.renders, 2);
        assert!(state.script().is_some());
    }
}
