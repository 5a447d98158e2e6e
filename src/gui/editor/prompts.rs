//! The two questions the workbench asks before it acts: "save your unsaved
//! edits first?" and "which path?" when no native file dialog could be shown.
//!
//! Contract: each is a modal drawn over the window that returns the learner's
//! answer and does nothing else; the app opens, saves or cancels. Nothing under
//! edit is replaced while the unsaved-edits question is open.

use std::path::PathBuf;

use egui::{Id, Modal, Ui};

/// The answer to "your edits are not saved".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsavedChoice {
    /// Save them (to the document's file, or ask where), then go on.
    Save,
    /// Drop them and go on.
    Discard,
    /// Go back to editing; nothing happens.
    Cancel,
}

/// Asks whether to save `name`'s edits before `what` replaces it.
pub fn unsaved_modal(ui: &mut Ui, name: &str, what: &str, has_file: bool) -> Option<UnsavedChoice> {
    let mut choice = None;
    let modal = Modal::new(Id::unique("unsaved_changes")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading("Unsaved changes");
        ui.add_space(4.0);
        ui.label(format!(
            "{name} has changes that are not saved. Save them before {what}?"
        ));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let save = if has_file { "Save" } else { "Save As…" };
            if ui
                .button(save)
                .on_hover_text("Write the edits to the file, then go on.")
                .clicked()
            {
                choice = Some(UnsavedChoice::Save);
            }
            if ui
                .button("Discard")
                .on_hover_text("Drop the edits and go on.")
                .clicked()
            {
                choice = Some(UnsavedChoice::Discard);
            }
            if ui
                .button("Cancel")
                .on_hover_text("Keep editing; nothing is opened.")
                .clicked()
            {
                choice = Some(UnsavedChoice::Cancel);
            }
        });
    });
    if choice.is_none() && modal.should_close() {
        // Escape or a click outside: the safe answer.
        choice = Some(UnsavedChoice::Cancel);
    }
    choice
}

/// What a typed path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPurpose {
    /// An experiment or study file to open.
    OpenFile,
    /// A study folder to open.
    OpenStudyFolder,
    /// Where to save the experiment.
    SaveAs,
}

impl PathPurpose {
    fn title(self) -> &'static str {
        match self {
            Self::OpenFile => "Open a file",
            Self::OpenStudyFolder => "Open a study folder",
            Self::SaveAs => "Save the experiment as",
        }
    }

    fn button(self) -> &'static str {
        match self {
            Self::OpenFile | Self::OpenStudyFolder => "Open",
            Self::SaveAs => "Save",
        }
    }
}

/// A path typed by hand: shown when the native dialog returned nothing (it was
/// cancelled, or this system has no dialog program to show one).
#[derive(Debug, Clone, PartialEq)]
pub struct PathPrompt {
    /// What the path is for.
    pub purpose: PathPurpose,
    /// The text typed so far.
    pub text: String,
}

/// What the learner did in the path prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum PathAnswer {
    /// Use this path.
    Go(PathBuf),
    /// Give up.
    Cancel,
}

/// Draws the path prompt.
pub fn path_modal(ui: &mut Ui, prompt: &mut PathPrompt) -> Option<PathAnswer> {
    let mut answer = None;
    let modal = Modal::new(Id::unique("path_prompt")).show(ui.ctx(), |ui| {
        ui.set_max_width(520.0);
        ui.heading(prompt.purpose.title());
        ui.add_space(4.0);
        ui.label(
            "No file dialog came back with a path. If none appeared, this system has no \
             dialog program (xdg-desktop-portal or zenity): type the path here instead.",
        );
        ui.add_space(4.0);
        let label = ui.label("Path");
        let field = ui.add(
            egui::TextEdit::singleline(&mut prompt.text)
                .desired_width(480.0)
                .hint_text("e.g. runs/studies/my_study"),
        );
        let field = field.labelled_by(label.id);
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let ok = !prompt.text.trim().is_empty();
            if (ui
                .add_enabled(ok, egui::Button::new(prompt.purpose.button()))
                .clicked()
                || (entered && ok))
                && answer.is_none()
            {
                answer = Some(PathAnswer::Go(PathBuf::from(prompt.text.trim())));
            }
            if ui.button("Cancel").clicked() {
                answer = Some(PathAnswer::Cancel);
            }
        });
    });
    if answer.is_none() && modal.should_close() {
        answer = Some(PathAnswer::Cancel);
    }
    answer
}
