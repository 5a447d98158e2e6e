//! The gallery of the test images the trained model got wrong with the most
//! confidence: where it is surest and still wrong says most about what it learned.
//!
//! Contract: draws from the inspector's analysis only (after a run ends).

use egui::{Color32, Ui};

use super::thumbnails::{Thumbnails, Tile, tile_grid};
use crate::gui::state::inspect::Inspector;

/// How many mistakes are shown.
const SHOWN: usize = 60;

/// Draws the gallery.
pub fn mistakes_view(ui: &mut Ui, inspector: &Inspector, thumbs: &mut Thumbnails) {
    let Some(a) = &inspector.analysis else {
        ui.label(match &inspector.analysis_error {
            Some(e) => format!("The test set could not be analysed: {e}"),
            None if inspector.is_loading() => "Analysing the test set…".into(),
            None => "No trained model yet: the gallery appears when a run finishes.".into(),
        });
        return;
    };
    let wrong = a.confident_mistakes(SHOWN);
    let total_wrong = a
        .test
        .labels
        .iter()
        .zip(&a.predicted)
        .filter(|(t, p)| t != p)
        .count();
    ui.label(format!(
        "{total_wrong} of {} test images are misclassified; the {} the model was surest about, surest first. Caption: predicted (confidence) / true.",
        a.test.len(),
        wrong.len()
    ));
    let name = |i: u8| {
        a.classes
            .get(usize::from(i))
            .cloned()
            .unwrap_or_else(|| i.to_string())
    };
    let tiles: Vec<Tile<'_>> = wrong
        .iter()
        .map(|&i| Tile {
            id: format!("test{i}"),
            pixels: a.test.image(i),
            caption: format!(
                "{} ({:.0}%)\n/ {}",
                name(a.predicted[i]),
                a.confidence[i] * 100.0,
                name(a.test.labels[i])
            ),
            color: Some(Color32::from_rgb(240, 120, 100)),
            hover: format!(
                "test image #{i}: true {}, predicted {}",
                name(a.test.labels[i]),
                name(a.predicted[i])
            ),
        })
        .collect();
    egui::ScrollArea::vertical()
        .id_salt("mistakes")
        .show(ui, |ui| {
            tile_grid(ui, thumbs, [a.test.cols, a.test.rows], 64.0, &tiles);
        });
}
