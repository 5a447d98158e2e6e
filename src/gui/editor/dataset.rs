//! The dataset picker: which images (MNIST or Fashion-MNIST), from where (bundled,
//! system package, download, a folder), the validation fraction and quick limits,
//! or your own images (a folder of class subfolders: size, channels, resizing);
//! or a text preset (`text_params.rs`), a gridworld maze, or a 2-D playground
//! shape (`points_params.rs`).
//!
//! Contract: edits the experiment's dataset in place and returns what the user
//! did; picking a folder opens a native dialog only when the app sees
//! `pick_folder` (IDX files) or `pick_image_folder` (your own images).

use egui::{ComboBox, DragValue, Ui};

use super::agent_params::seed_q_network;
use crate::spec::{
    AgentSpec, Channels, DEFAULT_FOLDER_SIZE, DEFAULT_TEST_FRACTION, DataSource, DatasetSpec,
    Experiment, GridworldSpec, ImageDataset, ImageDatasetSpec, LayerSpec, ResizeFilter, validate,
};

/// What the user did in the picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatasetOutcome {
    /// The spec changed.
    pub changed: bool,
    /// The user wants to choose a folder with the four IDX files.
    pub pick_folder: bool,
    /// The user wants to choose a folder of their own images (class subfolders).
    pub pick_image_folder: bool,
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
        DataSource::Folder(p) => format!("Images from {}", p.display()),
        other => format!("{name} ({other:?})"),
    }
}

/// Draws the picker.
pub fn dataset_picker(ui: &mut Ui, exp: &mut Experiment) -> DatasetOutcome {
    let mut out = DatasetOutcome::default();
    let shown = match &exp.dataset {
        DatasetSpec::Images(spec) => describe(spec),
        DatasetSpec::Gridworld(_) => "Gridworld maze".to_string(),
        DatasetSpec::Points(p) => format!(
            "2-D playground: {}",
            super::points_params::kind_label(p.kind)
        ),
        DatasetSpec::Text(spec) => super::text_params::presets()
            .iter()
            .find(|p| p.is_current(exp))
            .map_or_else(
                || super::text_params::describe(spec),
                |p| p.label.to_string(),
            ),
    };
    ui.horizontal(|ui| {
        let label = ui.label("Learn from");
        ComboBox::from_id_salt("dataset")
            .selected_text(shown)
            .width(230.0)
            .height(800.0)
            .show_ui(ui, |ui| {
                for (name, source, label, help) in choices() {
                    let selected = matches!(&exp.dataset, DatasetSpec::Images(s) if s.name == name && s.source == source);
                    if ui.selectable_label(selected, label).on_hover_text(help).clicked() && !selected {
                        to_images(exp, name, source);
                        out.changed = true;
                    }
                }
                if ui
                    .selectable_label(false, "MNIST-format folder…")
                    .on_hover_text("A folder with the four MNIST-format IDX files (.gz or raw).")
                    .clicked()
                {
                    out.pick_folder = true;
                }
                let own = matches!(&exp.dataset, DatasetSpec::Images(s) if s.is_folder());
                if ui
                    .selectable_label(own, "Your own images (folder)…")
                    .on_hover_text(
                        "A folder with one subfolder of images per class (PNG, JPEG, BMP, GIF, \
                         WebP; any sizes): the subfolder names are the classes.",
                    )
                    .clicked()
                {
                    out.pick_image_folder = true;
                }
                for preset in super::text_params::presets() {
                    let current = preset.is_current(exp);
                    if ui
                        .selectable_label(current, preset.label)
                        .on_hover_text(preset.help)
                        .clicked()
                        && !current
                    {
                        out.changed |= preset.apply(exp).is_ok();
                    }
                }
                let maze = matches!(exp.dataset, DatasetSpec::Gridworld(_));
                if ui
                    .selectable_label(maze, "Gridworld maze")
                    .on_hover_text("Reinforcement learning: an agent learns to walk from S to G; Q-learning, SARSA or DQN.")
                    .clicked()
                    && !maze
                {
                    exp.dataset = DatasetSpec::Gridworld(GridworldSpec::default());
                    exp.agent = AgentSpec::default();
                    exp.model = seed_q_network();
                    out.changed = true;
                }
                for (kind, name, help) in super::points_params::KINDS {
                    let current =
                        matches!(&exp.dataset, DatasetSpec::Points(p) if p.kind == kind);
                    if ui
                        .selectable_label(current, format!("2-D playground: {name}"))
                        .on_hover_text(help)
                        .clicked()
                        && !current
                    {
                        super::points_params::to_points(exp, kind);
                        out.changed = true;
                    }
                }
            })
            .response
            .labelled_by(label.id);
    });
    match &mut exp.dataset {
        DatasetSpec::Images(spec) => out.changed |= image_rows(ui, spec),
        DatasetSpec::Gridworld(g) => out.changed |= super::maze_params::maze_rows(ui, g),
        DatasetSpec::Text(spec) => out.changed |= super::text_params::text_rows(ui, spec),
        DatasetSpec::Points(p) => out.changed |= super::points_params::points_rows(ui, p),
    }
    out
}

/// Reads images from the IDX files in `dir` (keeping MNIST or Fashion-MNIST).
pub fn use_folder(exp: &mut Experiment, dir: std::path::PathBuf) {
    let name = match &exp.dataset {
        DatasetSpec::Images(spec) => spec.name,
        DatasetSpec::Gridworld(_) | DatasetSpec::Text(_) | DatasetSpec::Points(_) => {
            ImageDataset::Mnist
        }
    };
    to_images(exp, name, DataSource::Dir(dir));
}

/// Learns from your own images in `dir` (one subfolder per class). The model's
/// last Linear layer is resized to the number of class subfolders found.
pub fn use_image_folder(exp: &mut Experiment, dir: std::path::PathBuf) {
    let classes = crate::data::folder_classes(&dir).map(|c| c.len()).ok();
    to_images(exp, ImageDataset::Mnist, DataSource::Folder(dir));
    if let (Some(n), Some(LayerSpec::Linear { out })) = (classes, exp.model.last_mut()) {
        *out = n;
    }
}

/// Switches to an image dataset, with the MLP preset when the layer list no
/// longer fits (e.g. coming from a maze).
fn to_images(exp: &mut Experiment, name: ImageDataset, source: DataSource) {
    match &mut exp.dataset {
        DatasetSpec::Images(spec) => {
            if !matches!(source, DataSource::Folder(_)) {
                // Size, channels and the rest belong to folders of your own images.
                let defaults = ImageDatasetSpec::default();
                spec.size = defaults.size;
                spec.channels = defaults.channels;
                spec.resize = defaults.resize;
                spec.skip_unreadable = defaults.skip_unreadable;
                spec.test_fraction = defaults.test_fraction;
            }
            spec.name = name;
            spec.source = source;
        }
        other => {
            *other = DatasetSpec::Images(ImageDatasetSpec {
                name,
                source,
                ..ImageDatasetSpec::default()
            });
        }
    }
    if validate(exp).is_err() {
        exp.model = super::model_editor::preset_mlp();
    }
}

fn image_rows(ui: &mut Ui, spec: &mut ImageDatasetSpec) -> bool {
    let mut changed = false;
    egui::Grid::new("dataset_grid")
        .num_columns(2)
        .show(ui, |ui| {
            if spec.is_folder() {
                changed |= folder_rows(ui, spec);
            }
            let help =
                "Part of the training images held out to check generalisation during training.";
            ui.label("Validation fraction").on_hover_text(help);
            changed |= ui
                .add(
                    DragValue::new(&mut spec.val_fraction)
                        .clamp_existing_to_range(false)
                        .range(0.0..=0.5)
                        .speed(0.01),
                )
                .on_hover_text(help)
                .changed();
            ui.end_row();
            changed |= limit_row(
                ui,
                "Train limit",
                "Use only the first N training images: quick experiments.",
                &mut spec.train_limit,
            );
            changed |= limit_row(
                ui,
                "Test limit",
                "Use only the first N test images.",
                &mut spec.test_limit,
            );
        });
    changed
}

/// The settings of a folder of your own images.
fn folder_rows(ui: &mut Ui, spec: &mut ImageDatasetSpec) -> bool {
    let mut changed = false;
    let help = "Every image is resized to this many pixels (height x width).";
    ui.label("Image size").on_hover_text(help);
    ui.horizontal(|ui| {
        let (mut h, mut w) = spec.size.unwrap_or(DEFAULT_FOLDER_SIZE);
        let a = ui
            .add(
                DragValue::new(&mut h)
                    .clamp_existing_to_range(false)
                    .range(4..=256),
            )
            .on_hover_text(help);
        ui.label("x");
        let b = ui
            .add(
                DragValue::new(&mut w)
                    .clamp_existing_to_range(false)
                    .range(4..=256),
            )
            .on_hover_text(help);
        if a.changed() || b.changed() {
            spec.size = Some((h, w));
            changed = true;
        }
    });
    ui.end_row();
    let help = "Grey: one channel (colour images are converted). RGB: three channels.";
    ui.label("Channels").on_hover_text(help);
    ui.horizontal(|ui| {
        for (value, label) in [(Channels::Gray, "Grey"), (Channels::Rgb, "RGB")] {
            changed |= ui
                .radio_value(&mut spec.channels, value, label)
                .on_hover_text(help)
                .changed();
        }
    });
    ui.end_row();
    let help = "How images are resized: Triangle (bilinear) is smooth; Nearest keeps hard \
                pixels; CatmullRom and Lanczos3 are sharper; Gaussian is softest.";
    ui.label("Resize").on_hover_text(help);
    ComboBox::from_id_salt("resize_filter")
        .selected_text(format!("{:?}", spec.resize))
        .show_ui(ui, |ui| {
            for f in [
                ResizeFilter::Nearest,
                ResizeFilter::Triangle,
                ResizeFilter::CatmullRom,
                ResizeFilter::Gaussian,
                ResizeFilter::Lanczos3,
            ] {
                changed |= ui
                    .selectable_value(&mut spec.resize, f, format!("{f:?}"))
                    .changed();
            }
        })
        .response
        .on_hover_text(help);
    ui.end_row();
    let help = "Share of each class held out as the test set (unless the folder has \
                train/ and test/ subfolders).";
    ui.label("Test fraction").on_hover_text(help);
    let mut f = spec.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION);
    if ui
        .add(
            DragValue::new(&mut f)
                .clamp_existing_to_range(false)
                .range(0.0..=0.5)
                .speed(0.01),
        )
        .on_hover_text(help)
        .changed()
    {
        spec.test_fraction = Some(f);
        changed = true;
    }
    ui.end_row();
    let help = "Skip files that cannot be decoded (they are listed) instead of stopping.";
    ui.label("Unreadable files").on_hover_text(help);
    changed |= ui
        .checkbox(&mut spec.skip_unreadable, "skip")
        .on_hover_text(help)
        .changed();
    ui.end_row();
    changed
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
                .add(
                    DragValue::new(n)
                        .clamp_existing_to_range(false)
                        .range(1..=1_000_000)
                        .speed(10.0),
                )
                .on_hover_text(help)
                .changed();
        } else {
            ui.weak("all");
        }
    });
    ui.end_row();
    changed
}
