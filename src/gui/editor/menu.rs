//! The top bar: File menu (open, save, save as, recent files), the Examples and
//! Lessons menus, and the file name with its unsaved marker.
//!
//! Contract: draws only; returns the [`MenuAction`] the user chose. Native dialogs
//! are opened by the app, not here, so tests can drive every action without them.

use std::path::{Path, PathBuf};

use egui::Ui;

use super::document::Document;

/// What the user picked in the top bar.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuAction {
    /// Ask for a file and open it.
    Open,
    /// Open this file (recent or example).
    OpenPath(PathBuf),
    /// Save to the current file (asks when there is none).
    Save,
    /// Ask for a file and save there.
    SaveAs,
    /// Start over from the built-in default experiment.
    New,
    /// Ask for a study folder and show it in the Study tab.
    OpenStudyFolder,
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Draws the menu bar.
pub fn top_bar(
    ui: &mut Ui,
    doc: &Document,
    examples: &[PathBuf],
    lessons: &[PathBuf],
) -> Option<MenuAction> {
    let mut action = None;
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("New (default MLP)").clicked() {
                action = Some(MenuAction::New);
            }
            if ui.button("Open…  (Ctrl+O)").clicked() {
                action = Some(MenuAction::Open);
            }
            if ui
                .button("Open study folder…")
                .on_hover_text(
                    "A folder made by `trainlab study run` (or the Study tab): its trials, live.",
                )
                .clicked()
            {
                action = Some(MenuAction::OpenStudyFolder);
            }
            if ui.button("Save  (Ctrl+S)").clicked() {
                action = Some(MenuAction::Save);
            }
            if ui.button("Save As…").clicked() {
                action = Some(MenuAction::SaveAs);
            }
            ui.separator();
            ui.menu_button("Recent files", |ui| {
                if doc.recent.is_empty() {
                    ui.weak("none yet");
                }
                for p in &doc.recent {
                    if ui
                        .button(file_label(p))
                        .on_hover_text(p.display().to_string())
                        .clicked()
                    {
                        action = Some(MenuAction::OpenPath(p.clone()));
                    }
                }
            });
        });
        ui.menu_button("Examples", |ui| {
            if examples.is_empty() {
                ui.weak("no experiments/ folder next to the working directory");
            }
            for p in examples {
                if ui
                    .button(file_label(p))
                    .on_hover_text(p.display().to_string())
                    .clicked()
                {
                    action = Some(MenuAction::OpenPath(p.clone()));
                }
            }
        });
        ui.menu_button("Lessons", |ui| {
            if lessons.is_empty() {
                ui.weak(
                    "no experiments/lessons/ folder in the working directory \
                     or in /usr/share/trainlab",
                );
            }
            for p in lessons {
                if ui
                    .button(file_label(p))
                    .on_hover_text("Opens the lesson; its notes show on the right.")
                    .clicked()
                {
                    action = Some(MenuAction::OpenPath(p.clone()));
                }
            }
        });
        ui.separator();
        let name = doc
            .path
            .as_deref()
            .map_or_else(|| "untitled experiment".to_string(), file_label);
        let star = if doc.is_dirty() { " *" } else { "" };
        ui.label(format!("{name}{star}"))
            .on_hover_text("* = changes not saved to the file yet (Ctrl+S saves)");
    });
    if action.is_some() {
        ui.close();
    }
    action
}
