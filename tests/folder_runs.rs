//! Your own images (`source: Folder(...)`): real Fashion-MNIST images written as
//! PNG/JPEG/BMP/GIF/WebP files of several sizes and trained on through the CLI; a
//! generated colour set a small CNN must learn; the train/ + test/ layout; every
//! folder error with its message; skipping undecodable files; the PyTorch
//! exporter's refusal; and the book's snippet (docs/data.md) through `trainlab check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{DynamicImage, GrayImage, Rgb, RgbImage};
use trainlab::data::load_images;
use trainlab::spec::{
    Channels, DataSource, DatasetSpec, Experiment, ImageDataset, ImageDatasetSpec, LayerSpec,
    TrainingSpec,
};
use trainlab::train::{FailureKind, StartOptions, TrainEvent};
use trainlab::util::rng::Rng;

mod common;
use common::{run_all, summary};

fn trainlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainlab"))
}

/// Class names, and per class the pixels of each image.
type ByClass = (Vec<String>, Vec<Vec<Vec<u8>>>);

/// Real Fashion-MNIST images by class (`per_class` of each), or None when the
/// Debian package is not installed.
fn fashion(per_class: usize) -> Option<ByClass> {
    let spec = ImageDatasetSpec {
        name: ImageDataset::FashionMnist,
        source: DataSource::System,
        train_limit: Some(per_class * 14),
        ..ImageDatasetSpec::default()
    };
    let data = match load_images(&spec, 0) {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: Fashion-MNIST is not installed ({e})");
            return None;
        }
    };
    let mut by_class = vec![Vec::new(); data.classes.len()];
    for i in 0..data.train.len() {
        let c = usize::from(data.train.labels[i]);
        if by_class[c].len() < per_class {
            by_class[c].push(data.train.image(i).to_vec());
        }
    }
    Some((data.classes, by_class))
}

/// Writes image `k` of a class in a format and size that vary with `k`: mostly
/// 28x28 PNG, some enlarged PNG, JPEG, BMP, GIF and WebP.
fn write_varied(dir: &Path, k: usize, pixels: &[u8]) {
    let grey = GrayImage::from_raw(28, 28, pixels.to_vec()).expect("28x28");
    let img = DynamicImage::ImageLuma8(grey);
    let (name, img) = match k % 10 {
        1 => (
            format!("{k}.png"),
            img.resize_exact(40, 40, image::imageops::FilterType::Triangle),
        ),
        2 => (
            format!("{k}.png"),
            img.resize_exact(56, 36, image::imageops::FilterType::Nearest),
        ),
        3 => (format!("{k}.jpg"), img),
        4 => (format!("{k}.bmp"), img),
        5 if k < 40 => (format!("{k}.gif"), DynamicImage::ImageRgba8(img.to_rgba8())),
        6 if k < 40 => (format!("{k}.webp"), img),
        _ => (format!("{k}.png"), img),
    };
    img.save(dir.join(&name))
        .unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// A folder of Fashion-MNIST images: one subfolder per class ("/" in names
/// becomes "-"). Returns the folder names in label order.
fn fashion_folder(root: &Path, per_class: usize) -> Option<Vec<String>> {
    let (classes, by_class) = fashion(per_class)?;
    let names: Vec<String> = classes.iter().map(|c| c.replace('/', "-")).collect();
    for (name, images) in names.iter().zip(&by_class) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (k, px) in images.iter().enumerate() {
            write_varied(&dir, k, px);
        }
    }
    Some(names)
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[test]
fn mlp_learns_fashion_images_from_a_folder_through_the_cli() {
    let tmp = tempfile::tempdir().expect("tmp");
    let images = tmp.path().join("fashion");
    let Some(names) = fashion_folder(&images, 150) else {
        return;
    };
    let exp_file = tmp.path().join("exp.ron");
    write_file(
        &exp_file,
        &format!(
            r#"(
    name: "folder_mlp",
    dataset: Images(source: Folder("{}"), size: (28, 28), channels: Gray, test_fraction: 0.2),
    model: [Flatten, Linear(out: 64), ReLU, Linear(out: 10)],
    training: (epochs: 3, batch_size: 32),
)"#,
            images.display()
        ),
    );
    let out = tmp.path().join("run");
    let result = trainlab()
        .arg("run")
        .arg(&exp_file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        result.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary"))
            .expect("json");
    let acc = summary["test_accuracy"].as_f64().expect("test accuracy");
    // 1,500 images, 300 of them held out: chance is 10 %.
    println!("Fashion-MNIST folder, MLP: test accuracy {acc:.4}");
    assert!(acc > 0.6, "test accuracy {acc}");
    // The class names are the folder names, sorted, and recorded in the run.
    let events = trainlab::runs::read_events(&out).expect("metrics.jsonl");
    let Some(TrainEvent::Started(info)) = events.first() else {
        panic!("Started first");
    };
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(info.classes, sorted);
    assert_eq!(
        (info.train_samples + info.val_samples, info.test_samples),
        (1200, 300)
    );
    // The saved model reads its classes back from the record (History, inspectors).
    let saved = trainlab::infer::load_saved_model(&out).expect("saved model");
    assert_eq!(saved.classes, sorted);
}

/// `n` images of `side` pixels of class `c` in 0..4: red or blue, a filled square
/// or a cross, at a random place, on a noisy grey background.
fn colour_shape(rng: &mut Rng, c: usize, side: u32) -> RgbImage {
    let colour = if c.is_multiple_of(2) {
        [220, 40, 40]
    } else {
        [40, 60, 220]
    };
    let cross = c / 2 == 1;
    let size = side / 2;
    let x0 = rng.below((side - size) as usize) as u32;
    let y0 = rng.below((side - size) as usize) as u32;
    RgbImage::from_fn(side, side, |x, y| {
        let (dx, dy) = (x.wrapping_sub(x0), y.wrapping_sub(y0));
        let inside = dx < size && dy < size;
        let on = inside && (!cross || dx.abs_diff(size / 2) <= 1 || dy.abs_diff(size / 2) <= 1);
        let mut noise = |base: u8| {
            let n = rng.below(61) as i32 - 30;
            (i32::from(base) + n).clamp(0, 255) as u8
        };
        if on {
            Rgb(colour.map(&mut noise))
        } else {
            Rgb([noise(128), noise(128), noise(128)])
        }
    })
}

fn colour_folder(root: &Path, per_class: usize, seed: u64) {
    let names = ["blue_cross", "blue_square", "red_cross", "red_square"];
    let class_of = |name: &str| match name {
        "red_square" => 0,
        "blue_square" => 1,
        "red_cross" => 2,
        _ => 3,
    };
    let mut rng = Rng::new(seed);
    for name in names {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for k in 0..per_class {
            let side = if k % 3 == 0 { 32 } else { 24 };
            colour_shape(&mut rng, class_of(name), side)
                .save(dir.join(format!("{k}.png")))
                .expect("write png");
        }
    }
}

fn folder_experiment(
    dir: &Path,
    channels: Channels,
    size: usize,
    model: Vec<LayerSpec>,
) -> Experiment {
    Experiment {
        name: "folder_cnn".into(),
        dataset: DatasetSpec::Images(ImageDatasetSpec {
            source: DataSource::Folder(dir.to_path_buf()),
            size: Some((size, size)),
            channels,
            val_fraction: 0.1,
            ..ImageDatasetSpec::default()
        }),
        model,
        training: TrainingSpec {
            epochs: 4,
            batch_size: 16,
            log_every_steps: 5,
            checkpoint: trainlab::spec::CheckpointSpec {
                every_epochs: None,
                ..Default::default()
            },
            ..TrainingSpec::default()
        },
        ..Experiment::default()
    }
}

fn small_cnn(classes: usize) -> Vec<LayerSpec> {
    // Two of: an 8-filter 3x3 convolution keeping the size, ReLU, halving.
    let block = [
        LayerSpec::Conv2d {
            out: 8,
            kernel: 3,
            stride: 1,
            padding: 1,
        },
        LayerSpec::ReLU,
        LayerSpec::MaxPool2d {
            kernel: 2,
            stride: None,
        },
    ];
    let mut layers = [block.clone(), block].concat();
    layers.extend([LayerSpec::Flatten, LayerSpec::Linear { out: classes }]);
    layers
}

#[test]
fn cnn_learns_colour_and_shape_from_rgb_images() {
    let tmp = tempfile::tempdir().expect("tmp");
    colour_folder(tmp.path(), 100, 5);
    let mut exp = folder_experiment(tmp.path(), Channels::Rgb, 20, small_cnn(4));
    exp.training.epochs = 12;
    let events = run_all(exp, StartOptions::default());
    let Some(TrainEvent::Started(info)) = events.first() else {
        panic!("Started first: {:?}", events.first());
    };
    // Three input channels: the first conv has 8 x 3 x 3 x 3 weights + 8 biases.
    assert_eq!(
        info.parameters,
        (8 * 3 * 9 + 8) + (8 * 8 * 9 + 8) + (8 * 5 * 5 * 4 + 4)
    );
    assert_eq!(
        info.classes,
        ["blue_cross", "blue_square", "red_cross", "red_square"]
    );
    let s = summary(&events);
    let acc = s.test_accuracy.expect("test accuracy");
    println!("colour/shape folder, CNN: test accuracy {acc:.4}");
    assert!(acc > 0.9, "colour and shape must both be learnt: {acc}");
}

#[test]
fn train_and_test_subfolders_are_honoured() {
    let tmp = tempfile::tempdir().expect("tmp");
    colour_folder(&tmp.path().join("train"), 12, 1);
    colour_folder(&tmp.path().join("test"), 5, 2);
    let spec = ImageDatasetSpec {
        source: DataSource::Folder(tmp.path().to_path_buf()),
        size: Some((12, 10)),
        channels: Channels::Rgb,
        test_fraction: Some(0.5), // ignored: the folder says which images are test
        ..ImageDatasetSpec::default()
    };
    let data = load_images(&spec, 3).expect("loads");
    assert_eq!((data.train.len(), data.test.len()), (48, 20));
    assert_eq!(
        (data.train.channels, data.train.rows, data.train.cols),
        (3, 12, 10)
    );
    assert_eq!(data.train.image(0).len(), 3 * 12 * 10);
    assert_eq!(data.classes.len(), 4);
    assert_eq!(data.stats.len(), 3, "per-channel statistics");
    for c in 0..4u8 {
        assert_eq!(data.test.labels.iter().filter(|&&l| l == c).count(), 5);
    }
    // A grey view of the same folder: one channel.
    let grey = load_images(
        &ImageDatasetSpec {
            channels: Channels::Gray,
            ..spec.clone()
        },
        3,
    )
    .expect("loads");
    assert_eq!(grey.train.image(0).len(), 12 * 10);
    // The same seed gives the same data; the images are in a mixed order.
    assert_eq!(load_images(&spec, 3).expect("loads"), data);
    assert!(
        data.train.labels[..12]
            .iter()
            .any(|&l| l != data.train.labels[0])
    );
}

/// The loader's message for `dir`, which must fail.
fn load_error(dir: &Path, skip: bool) -> String {
    let spec = ImageDatasetSpec {
        source: DataSource::Folder(dir.to_path_buf()),
        skip_unreadable: skip,
        ..ImageDatasetSpec::default()
    };
    match load_images(&spec, 0) {
        Ok(_) => panic!("{} should not load", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn tiny_png(path: &Path) {
    GrayImage::from_pixel(6, 6, image::Luma([200]))
        .save(path)
        .expect("write png");
}

fn two_classes(root: &Path) {
    for c in ["a", "b"] {
        std::fs::create_dir_all(root.join(c)).expect("mkdir");
        for k in 0..3 {
            tiny_png(&root.join(c).join(format!("{k}.png")));
        }
    }
}

#[test]
fn folder_errors_say_what_is_wrong_and_where() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let check = |dir: PathBuf, needles: &[&str]| {
        let msg = load_error(&dir, false);
        for n in needles {
            assert!(msg.contains(n), "{n:?} missing in: {msg}");
        }
    };
    check(root.join("missing"), &["missing", "does not exist"]);

    let empty = root.join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    check(empty.clone(), &["empty", "no class subfolders"]);

    let one = root.join("one");
    std::fs::create_dir_all(one.join("cat")).expect("mkdir");
    tiny_png(&one.join("cat/1.png"));
    check(one, &["only the class \"cat\"", "at least 2 classes"]);

    let hollow = root.join("hollow");
    two_classes(&hollow);
    std::fs::create_dir(hollow.join("c")).expect("mkdir");
    write_file(&hollow.join("c/notes.txt"), "not an image");
    check(hollow, &["hollow/c", "holds no images"]);

    let split = root.join("split");
    two_classes(&split.join("train"));
    two_classes(&split.join("test"));
    std::fs::create_dir_all(split.join("test/z")).expect("mkdir");
    tiny_png(&split.join("test/z/1.png"));
    check(
        split.clone(),
        &["same class subfolders", "only in test/: [z]"],
    );
    std::fs::remove_dir_all(split.join("test")).expect("rm");
    check(split, &["train/ subfolder but no test/"]);

    let corrupt = root.join("corrupt");
    two_classes(&corrupt);
    write_file(&corrupt.join("b/broken.png"), "this is not a png");
    check(
        corrupt.clone(),
        &["b/broken.png", "cannot decode", "skip_unreadable"],
    );
}

#[test]
fn unreadable_files_are_skipped_and_listed_when_asked() {
    let tmp = tempfile::tempdir().expect("tmp");
    two_classes(tmp.path());
    write_file(&tmp.path().join("a/broken.jpg"), "garbage");
    let mut exp = folder_experiment(
        tmp.path(),
        Channels::Gray,
        6,
        vec![LayerSpec::Flatten, LayerSpec::Linear { out: 2 }],
    );
    if let DatasetSpec::Images(d) = &mut exp.dataset {
        d.skip_unreadable = true;
        d.val_fraction = 0.0;
    }
    exp.training.epochs = 1;
    let events = run_all(exp.clone(), StartOptions::default());
    let note = events.iter().find_map(|e| match e {
        TrainEvent::Note { message, .. } if message.contains("skipped") => Some(message.clone()),
        _ => None,
    });
    let note = note.expect("a Note lists the skipped file");
    assert!(note.contains("a/broken.jpg"), "{note}");
    summary(&events);

    // Without skipping, the run fails as bad input, naming the file.
    if let DatasetSpec::Images(d) = &mut exp.dataset {
        d.skip_unreadable = false;
    }
    let events = run_all(exp, StartOptions::default());
    match events.as_slice() {
        [TrainEvent::Failed { kind, message, .. }] => {
            assert_eq!(*kind, FailureKind::BadInput);
            assert!(message.contains("a/broken.jpg"), "{message}");
        }
        other => panic!("expected one Failed event, got {other:?}"),
    }
}

#[test]
fn the_output_width_must_match_the_class_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    two_classes(tmp.path());
    let exp = folder_experiment(
        tmp.path(),
        Channels::Gray,
        6,
        vec![LayerSpec::Flatten, LayerSpec::Linear { out: 10 }],
    );
    let events = run_all(exp, StartOptions::default());
    match events.as_slice() {
        [TrainEvent::Failed { kind, message, .. }] => {
            assert_eq!(*kind, FailureKind::BadInput);
            assert!(
                message.contains("2 classes (a, b)") && message.contains("Linear(out: 2)"),
                "{message}"
            );
        }
        other => panic!("expected one Failed event, got {other:?}"),
    }
}

#[test]
fn cli_exits_2_on_a_bad_folder_and_export_refuses_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let exp_file = tmp.path().join("exp.ron");
    write_file(
        &exp_file,
        r#"(dataset: Images(source: Folder("no/such/folder"), channels: Rgb, size: (32, 32)),
    model: [Conv2d(out: 4, kernel: 3), ReLU, Flatten, Linear(out: 3)])"#,
    );
    let check = trainlab()
        .arg("check")
        .arg(&exp_file)
        .output()
        .expect("runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("[4, 30, 30]"),
        "3-channel input shapes:\n{stdout}"
    );

    let run = trainlab()
        .arg("run")
        .arg(&exp_file)
        .arg("--out")
        .arg(tmp.path().join("run"))
        .output()
        .expect("runs");
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("no/such/folder") && err.contains("does not exist"),
        "{err}"
    );

    let script = tmp.path().join("train.py");
    let export = trainlab()
        .args(["export", "pytorch"])
        .arg(&exp_file)
        .arg("-o")
        .arg(&script)
        .output()
        .expect("runs");
    assert_eq!(export.status.code(), Some(2));
    let err = String::from_utf8_lossy(&export.stderr);
    assert!(
        err.contains("image folder") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!script.exists());
    assert!(!tmp.path().join("train.split.json").exists());
}

#[test]
fn folder_settings_are_refused_for_idx_datasets() {
    let err = trainlab::spec::from_ron_str("(dataset: Images(channels: Rgb))", "x.ron")
        .expect_err("IDX images are grey")
        .to_string();
    assert!(
        err.contains("dataset.channels") && err.contains("Folder"),
        "{err}"
    );
    // An IDX experiment's saved form has no folder fields.
    let text = trainlab::spec::to_ron_string(&Experiment::default());
    for field in [
        "size",
        "channels",
        "resize",
        "skip_unreadable",
        "test_fraction",
    ] {
        assert!(!text.contains(&format!(" {field}:")), "{field} in:\n{text}");
    }
}

#[test]
fn the_book_snippet_passes_check() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/data.md"))
        .expect("docs/data.md");
    let start = readme
        .find("## Your own images")
        .expect("docs/data.md has the section");
    let section = &readme[start..];
    let body = section
        .split("```ron\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("a ron block");
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("snippet.ron");
    write_file(&file, body);
    let out = trainlab().arg("check").arg(&file).output().expect("runs");
    assert!(
        out.status.success(),
        "{}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
}
