//! The dataset picker: which images (MNIST or Fashion-MNIST), from where (bundled,
//! system package, download, a folder), the validation fraction and quick limits.
//!
//! Contract: edits the experiment's [`ImageDatasetSpec`] in place and returns what
//! the user did; picking a folder opens a native dialog only when `pick_folder` is
//! called by the app ([`DatasetAction::PickFolder`]).

use egui::{ComboBox, DragValue, Ui};

use crate::spec::{DataSource, DatasetSpec, Experiment, ImageDataset, ImageDatasetSpec};

/// What the user did in the picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatasetOutcome {
    /// The spec changed.
    pub changed: bool,
    /// The user wants to choose a folder with the four IDX files.
    pub pick_folder: bool,
}

/// The sources offered, with their names and one-line help.
fn choices() -> [(ImageDataset, DataSource, &'static str, &'static str); 4] {
    [
        (
            ImageDataset::Mnist,
            DataSource::Bundled,
            "MNIST (bundled sample)",
            "10,000 real handwritten digits shipped with trainlab: works offline.",
        ),
        (
            ImageDataset::Mnist,
            DataSource::Download,
            "MNIST (download full)",
            "All 70,000 digits, downloaded once into your cache and checked.",
        ),
        (
            ImageDataset::FashionMnist,
            DataSource::System,
            "Fashion-MNIST (system package)",
            "Clothing images from Debian's dataset-fashion-mnist package.",
        ),
        (
            ImageDataset::FashionMnist,
            DataSource::Download,
            "Fashion-MNIST (download)",
            "70,000 clothing images, downloaded once into your cache.",
        ),
    ]
}

fn describe(spec: &ImageDatasetSpec) -> String {
    for (name, source, label, _) in choices() {
        if spec.name == name && spec.source == source {
            return label.to_string();
        }
    }
    let name = match spec.name {
        ImageDataset::Mnist => "MNIST",
        ImageDataset::FashionMnist => "Fashion-MNIST",
    };
    match &spec.source {
        DataSource::Dir(p) => format!("{name} from {}", p.display()),
        other => format!("{name} ({other:?})"),
    }
}

/// Draws the picker.
pub fn dataset_picker(ui: &mut Ui, exp: &mut Experiment) -> DatasetOutcome {
    let mut out = DatasetOutcome::default();
    // Text datasets are edited in the file for now; the picker lists images only.
    let DatasetSpec::Images(spec) = &mut exp.dataset else {
        ui.label("Text dataset (edit it in the experiment file)");
        return out;
    };
    ui.horizontal(|ui| {
        let label = ui.label("Images");
        ComboBox::from_id_salt("dataset")
            .selected_text(describe(spec))
            .width(230.0)
            .show_ui(ui, |ui| {
                for (name, source, label, help) in choices() {
                    let selected = spec.name == name && spec.source == source;
                    if ui
                        .selectable_label(selected, label)
                        .on_hover_text(help)
                        .clicked()
                        && !selected
                    {
                        spec.name = name;
                        spec.source = source;
                        out.changed = true;
                    }
                }
                if ui
                    .selectable_label(matches!(spec.source, DataSource::Dir(_)), "From a folder…")
                    .on_hover_text("A folder with the four MNIST-format IDX files (.gz or raw).")
                    .clicked()
                {
                    out.pick_folder = true;
                }
            })
            .response
            .labelled_by(label.id);
    });
    egui::Grid::new("dataset_grid")
        .num_columns(2)
        .show(ui, |ui| {
            let help =
                "Part of the training images held out to check generalisation during training.";
            ui.label("Validation fraction").on_hover_text(help);
            out.changed |= ui
                .add(
                    DragValue::new(&mut spec.val_fraction)
                        .range(0.0..=0.5)
                        .speed(0.01),
                )
                .on_hover_text(help)
                .changed();
            ui.end_row();
            out.changed |= limit_row(
                ui,
                "Train limit",
                "Use only the first N training images: quick experiments.",
                &mut spec.train_limit,
            );
            out.changed |= limit_row(
                ui,
                "Test limit",
                "Use only the first N test images.",
                &mut spec.test_limit,
            );
        });
    out
}

fn limit_row(ui: &mut Ui, name: &str, help: &str, value: &mut Option<usize>) -> bool {
    ui.label(name).on_hover_text(help);
    let mut changed = false;
    ui.horizontal(|ui| {
        let mut on = value.is_some();
        if ui.checkbox(&mut on, "").on_hover_text(help).changed() {
            *value = on.then_some(1000);
            changed = true;
        }
        if let Some(n) = value {
            changed |= ui
                .add(DragValue::new(n).range(1..=1_000_000).speed(10.0))
                .on_hover_text(help)
                .changed();
        } else {
            ui.weak("all");
        }
    });
    ui.end_row();
    changed
}
