//! The row under each plot that saves it: "Save PNG", "Save SVG" and the PNG
//! scale (1x, 2x, 4x the on-screen size), plus a line saying where it went; and
//! the "Save PNG" button of pictures made from data (confusion matrix, weights).
//!
//! Contract: nothing is computed unless a button is clicked; the native dialog
//! proposes `<title>.png`/`.svg`; the outcome (path or error) stays beside the
//! buttons until the next save from that row. The scale is shared by every row.

use std::path::{Path, PathBuf};

use egui::{Id, Ui};

use super::{Figure, Format};

/// The PNG scale choice, shared by every save row (egui memory, not persisted).
fn scale_id() -> Id {
    Id::unique("trainlab_figure_png_scale")
}

/// What a save row last did, per row.
#[derive(Clone)]
enum Outcome {
    Saved(PathBuf),
    Failed(String),
}

/// Draws the save row for `figure` (built by the caller only when needed, e.g.
/// from the data it just plotted); `salt` tells rows apart.
pub fn save_row(ui: &mut Ui, salt: &str, figure: impl FnOnce() -> Figure) {
    let row = Id::unique("trainlab_figure_row").with(salt);
    let mut clicked = None;
    ui.horizontal(|ui| {
        if ui
            .small_button("Save PNG")
            .on_hover_text(
                "This plot as a PNG image, as shown (same ranges, legend), at the chosen scale.",
            )
            .clicked()
        {
            clicked = Some(Format::Png);
        }
        if ui
            .small_button("Save SVG")
            .on_hover_text("This plot as an SVG (vector) image, as shown.")
            .clicked()
        {
            clicked = Some(Format::Svg);
        }
        let mut scale: u32 = ui.data(|d| d.get_temp(scale_id())).unwrap_or(2);
        egui::ComboBox::from_id_salt(("png_scale", salt))
            .width(44.0)
            .selected_text(format!("{scale}x"))
            .show_ui(ui, |ui| {
                for s in [1, 2, 4] {
                    ui.selectable_value(&mut scale, s, format!("{s}x"));
                }
            })
            .response
            .on_hover_text("PNG size: the on-screen size times this.");
        ui.data_mut(|d| d.insert_temp(scale_id(), scale));
        show_outcome(ui, row);
    });
    let Some(format) = clicked else { return };
    let figure = figure();
    let scale: u32 = ui.data(|d| d.get_temp(scale_id())).unwrap_or(2);
    let Some(path) = rfd::FileDialog::new()
        .add_filter(format.extension(), &[format.extension()])
        .set_file_name(file_name(&figure.title, format))
        .save_file()
    else {
        return;
    };
    let outcome = match super::save(&figure, format, scale as f32, &path) {
        Ok(()) => Outcome::Saved(path),
        Err(e) => Outcome::Failed(format!("Not saved: {e}")),
    };
    ui.data_mut(|d| d.insert_temp(row, outcome));
}

/// A "Save PNG" button for a picture made from data (`make` runs only on a
/// click), with the outcome beside it; `name` is the file name proposed.
pub fn save_png_button(
    ui: &mut Ui,
    salt: &str,
    name: &str,
    make: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) {
    let row = Id::unique("trainlab_figure_row").with(salt);
    ui.horizontal(|ui| {
        let clicked = ui
            .small_button("Save PNG")
            .on_hover_text("Save this picture as a PNG image, drawn from its data.")
            .clicked();
        if clicked
            && let Some(path) = rfd::FileDialog::new()
                .add_filter("png", &["png"])
                .set_file_name(name)
                .save_file()
        {
            let outcome = match make().and_then(|bytes| {
                crate::util::atomic::write_atomic(&path, &bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }) {
                Ok(()) => Outcome::Saved(path),
                Err(e) => Outcome::Failed(format!("Not saved: {e}")),
            };
            ui.data_mut(|d| d.insert_temp(row, outcome));
        }
        show_outcome(ui, row);
    });
}

fn show_outcome(ui: &mut Ui, row: Id) {
    match ui.data(|d| d.get_temp::<Outcome>(row)) {
        Some(Outcome::Saved(p)) => {
            ui.weak(format!("saved {}", p.display()));
        }
        Some(Outcome::Failed(e)) => {
            ui.colored_label(egui::Color32::from_rgb(230, 90, 90), e);
        }
        None => {}
    }
}

/// A file name from a plot's title: letters, digits and dashes only.
pub fn file_name(title: &str, format: Format) -> String {
    let mut stem: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while stem.contains("--") {
        stem = stem.replace("--", "-");
    }
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "plot" } else { stem };
    Path::new(stem)
        .with_extension(format.extension())
        .to_string_lossy()
        .into_owned()
}
