//! The gallery of the test images the trained model got wrong with the most
//! confidence: where it is surest and still wrong says most about what it learned.
//!
//! Contract: draws from the inspector's analysis only (after a run ends). A click
//! on an image selects it: it is shown large with the saliency heatmaps (see
//! `saliency`) of the class predicted and the true class, side by side.

use egui::{Color32, Ui};

use super::saliency::{Choice, SaliencyState, caption, heatmap};
use super::thumbnails::{Thumbnails, Tile, tile_grid};
use crate::gui::state::inspect::Inspector;

/// How many mistakes are shown.
const SHOWN: usize = 60;

/// Draws the gallery.
pub fn mistakes_view(
    ui: &mut Ui,
    inspector: &Inspector,
    thumbs: &mut Thumbnails,
    saliency: &mut SaliencyState,
) {
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
    saliency.controls(ui, None);
    if let Some(i) = saliency.selected.filter(|i| *i < a.test.len()) {
        selected_detail(ui, inspector, saliency, i);
    } else if saliency.choice != Choice::Off {
        ui.weak("Click an image to see which pixels the model looked at.");
    }
    let clicked = egui::ScrollArea::vertical()
        .id_salt("mistakes")
        .show(ui, |ui| {
            tile_grid(ui, thumbs, [a.test.cols, a.test.rows], 64.0, &tiles)
        })
        .inner;
    if let Some(k) = clicked {
        saliency.selected = wrong.get(k).copied();
        if saliency.choice == Choice::Off {
            saliency.choice = Choice::Gradient;
        }
    }
}

/// Test image `i` large, with the heatmaps of the predicted and the true class.
fn selected_detail(ui: &mut Ui, inspector: &Inspector, saliency: &mut SaliencyState, i: usize) {
    let (Some(a), Some(p)) = (&inspector.analysis, &inspector.predictor) else {
        return;
    };
    let name = |c: usize| a.classes.get(c).cloned().unwrap_or_else(|| c.to_string());
    let pixels = a.test.image(i);
    let size = [a.test.cols, a.test.rows];
    let (predicted, truth) = (usize::from(a.predicted[i]), usize::from(a.test.labels[i]));
    ui.horizontal(|ui| {
        for (what, class) in [("predicted", predicted), ("true", truth)] {
            ui.vertical(|ui| {
                ui.label(format!("test image #{i}, {what} class {}", name(class)));
                match saliency.attribution(p, inspector.generation, pixels, class) {
                    Some(Ok(att)) => {
                        heatmap(ui, pixels, size, Some(&att.heat()), 168.0);
                        ui.set_max_width(260.0);
                        caption(ui, att, &name(class));
                    }
                    Some(Err(e)) => {
                        ui.label(format!("No saliency: {e}"));
                    }
                    None => heatmap(ui, pixels, size, None, 168.0),
                }
            });
        }
    });
    if ui.small_button("close").clicked() {
        saliency.selected = None;
    }
    ui.separator();
}
