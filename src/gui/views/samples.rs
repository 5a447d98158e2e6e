//! The dataset preview: where the images come from, how many go to train, val and
//! test, the class balance, and a grid of real samples with their labels — before
//! anything trains.
//!
//! Contract: loads on a background [`Job`] whenever the dataset settings differ from
//! the ones last loaded; a missing source shows the loader's message (naming where
//! it looked) instead of a grid.

use egui::Ui;

use super::thumbnails::{Thumbnails, Tile, tile_grid};
use crate::data::{ImageData, load_images};
use crate::gui::state::job::Job;
use crate::spec::{DatasetSpec, ImageDatasetSpec};

/// Samples shown.
const SHOWN: usize = 80;

/// Loaded preview state.
#[derive(Default)]
pub struct SamplesState {
    spec: Option<ImageDatasetSpec>,
    seed: u64,
    job: Option<Job<ImageData>>,
    data: Option<ImageData>,
    error: Option<String>,
    thumbs: Thumbnails,
}

impl SamplesState {
    /// Starts loading when the dataset settings (or the seed, which draws a
    /// folder's test split) changed; takes a finished load.
    pub fn poll(&mut self, ctx: &egui::Context, dataset: &DatasetSpec, seed: u64) {
        let DatasetSpec::Images(spec) = dataset else {
            return;
        };
        if self.spec.as_ref() != Some(spec) || self.seed != seed {
            self.spec = Some(spec.clone());
            self.seed = seed;
            let spec = spec.clone();
            let ctx = ctx.clone();
            self.job = Some(Job::spawn(
                "preview",
                move || ctx.request_repaint(),
                move || Ok(load_images(&spec, seed)?),
            ));
        }
        if let Some(job) = &mut self.job
            && let Some(outcome) = job.poll()
        {
            self.job = None;
            self.thumbs.clear();
            match outcome {
                Ok(d) => {
                    self.data = Some(d);
                    self.error = None;
                }
                Err(e) => {
                    self.data = None;
                    self.error = Some(e);
                }
            }
        }
    }

    /// Draws the preview.
    pub fn show(&mut self, ui: &mut Ui) {
        if let Some(e) = &self.error {
            ui.colored_label(
                crate::gui::editor::model_editor::RED,
                format!("The dataset could not be loaded: {e}"),
            );
            return;
        }
        let Some(d) = &self.data else {
            ui.label("Loading the dataset…");
            return;
        };
        let fraction = self.spec.as_ref().map_or(0.0, |s| s.val_fraction);
        let val = (d.train.len() as f64 * fraction).round() as usize;
        ui.label(format!("Source: {}", d.origin));
        ui.label(format!(
            "{} training images: {} train + {} validation (held out for early stopping); {} test images (scored once, at the end).",
            d.train.len(),
            d.train.len() - val,
            val,
            d.test.len()
        ));
        let mut counts = vec![0usize; d.classes.len()];
        for &l in &d.train.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        if !d.skipped.is_empty() {
            ui.colored_label(
                crate::gui::editor::model_editor::RED,
                format!(
                    "{} file(s) could not be decoded and are skipped:",
                    d.skipped.len()
                ),
            );
            for s in d.skipped.iter().take(5) {
                ui.weak(s);
            }
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("Training images per class:");
            for (name, n) in d.classes.iter().zip(&counts) {
                ui.weak(format!("{name}: {n}"));
            }
        });
        ui.separator();
        let tiles: Vec<Tile<'_>> = (0..d.train.len().min(SHOWN))
            .map(|i| Tile {
                id: format!("sample{i}"),
                pixels: d.train.image(i),
                caption: d
                    .classes
                    .get(usize::from(d.train.labels[i]))
                    .cloned()
                    .unwrap_or_default(),
                color: None,
                hover: format!("training image #{i}"),
            })
            .collect();
        let size = [d.train.cols, d.train.rows];
        egui::ScrollArea::vertical()
            .id_salt("samples")
            .show(ui, |ui| {
                tile_grid(ui, &mut self.thumbs, size, 56.0, &tiles);
            });
    }
}
