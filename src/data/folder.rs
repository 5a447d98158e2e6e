//! `source: Folder(path)`: a classification dataset from a folder of image files.
//!
//! Contract:
//! - Layout: one subfolder per class (the class name is the subfolder's name;
//!   classes are sorted by name, so labels do not depend on the file system), or
//!   `train/` and `test/` each holding the same class subfolders. Hidden entries
//!   (`.name`) and files that are not `.png`, `.jpg`, `.jpeg`, `.bmp`, `.gif` or
//!   `.webp` (any case) are ignored; subfolders of class folders are not read.
//! - Every image is converted to grey or RGB, then resized to `size` (height,
//!   width) with the spec's filter; pixels are stored channels-first.
//! - Without `train/` and `test/`, `test_fraction` of each class is held out as
//!   the test set (seeded: `Rng::derive(seed, "test-split")`, stratified). Both
//!   sets are then put in a seeded random order (like the IDX files, whose first N
//!   images are a fair sample), so `train_limit` / `test_limit` keep a mix of classes.
//! - `stats` is the per-channel mean and standard deviation of the training
//!   images' pixels in [0, 1] (a flat channel gets 1.0 so nothing divides by 0).
//! - Errors name the folder or file: missing folder, no classes, one class, a
//!   class without images, `train/` without `test/`, different class sets, a file
//!   that cannot be decoded. With `skip_unreadable` such files are left out and
//!   listed in `ImageData::skipped` instead.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;

use crate::spec::{
    Channels, DEFAULT_FOLDER_SIZE, DEFAULT_TEST_FRACTION, ImageDatasetSpec, ResizeFilter,
};
use crate::util::rng::Rng;

use super::error::DataError;
use super::image_set::{ImageData, ImageSet};
use super::split::stratified_indices;

/// File extensions read as images (compared in lower case).
const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// How every image is turned into bytes.
#[derive(Debug, Clone, Copy)]
struct Decode {
    channels: Channels,
    height: u32,
    width: u32,
    filter: FilterType,
}

/// One class folder: its name and its image files, sorted.
struct ClassFiles {
    name: String,
    files: Vec<PathBuf>,
}

/// Loads the folder `dir` as `spec` says (size, channels, filter, test split).
pub(crate) fn load_folder(
    dir: &Path,
    spec: &ImageDatasetSpec,
    seed: u64,
) -> Result<ImageData, DataError> {
    let ImageDatasetSpec {
        name: _, // the folder names its classes
        source: _,
        val_fraction: _, // applied by the caller with `split_train_val`
        train_limit,
        test_limit,
        augment: _, // applied per batch by the training loop
        size,
        channels,
        resize,
        skip_unreadable,
        test_fraction,
    } = spec;
    if !dir.is_dir() {
        return Err(DataError::FolderNotFound {
            path: dir.to_path_buf(),
        });
    }
    let (height, width) = size.unwrap_or(DEFAULT_FOLDER_SIZE);
    let decode = Decode {
        channels: *channels,
        height: u32::try_from(height).unwrap_or(u32::MAX),
        width: u32::try_from(width).unwrap_or(u32::MAX),
        filter: filter_type(*resize),
    };
    let mut skipped = Vec::new();
    let (mut train, mut test, classes) = match split_folders(dir)? {
        Some((train_dir, test_dir)) => {
            let train_classes = class_files(&train_dir)?;
            let test_classes = class_files(&test_dir)?;
            let names = |c: &[ClassFiles]| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            let (a, b) = (names(&train_classes), names(&test_classes));
            if a != b {
                return Err(DataError::ClassMismatch {
                    train: train_dir,
                    test: test_dir,
                    only_train: a.iter().filter(|n| !b.contains(n)).cloned().collect(),
                    only_test: b.iter().filter(|n| !a.contains(n)).cloned().collect(),
                });
            }
            let train = decode_classes(&train_classes, decode, *skip_unreadable, &mut skipped)?;
            let test = decode_classes(&test_classes, decode, *skip_unreadable, &mut skipped)?;
            (train, test, a)
        }
        None => {
            let classes = class_files(dir)?;
            let all = decode_classes(&classes, decode, *skip_unreadable, &mut skipped)?;
            let fraction = test_fraction.unwrap_or(DEFAULT_TEST_FRACTION);
            let (train, test) = split_off(all, fraction, seed);
            (train, test, classes.into_iter().map(|c| c.name).collect())
        }
    };
    let mut order = Rng::derive(seed, "folder-order");
    for set in [&mut train, &mut test] {
        let mut idx: Vec<usize> = (0..set.len()).collect();
        order.shuffle(&mut idx);
        *set = set.subset(&idx);
    }
    if let Some(n) = *train_limit {
        train.truncate(n);
    }
    if let Some(n) = *test_limit {
        test.truncate(n);
    }
    Ok(ImageData {
        stats: channel_stats(&train),
        train,
        test,
        classes,
        origin: format!("image folder {}", dir.display()),
        skipped,
    })
}

/// The `image` crate's filter for a spec's resize method.
fn filter_type(resize: ResizeFilter) -> FilterType {
    match resize {
        ResizeFilter::Nearest => FilterType::Nearest,
        ResizeFilter::Triangle => FilterType::Triangle,
        ResizeFilter::CatmullRom => FilterType::CatmullRom,
        ResizeFilter::Gaussian => FilterType::Gaussian,
        ResizeFilter::Lanczos3 => FilterType::Lanczos3,
    }
}

/// The class names of the image folder `dir` (its subfolders, or those of its
/// `train/`), without decoding any image: for pickers that size the output layer.
pub fn folder_classes(dir: &Path) -> Result<Vec<String>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::FolderNotFound {
            path: dir.to_path_buf(),
        });
    }
    let root = match split_folders(dir)? {
        Some((train, _)) => train,
        None => dir.to_path_buf(),
    };
    Ok(class_files(&root)?.into_iter().map(|c| c.name).collect())
}

/// `Some((train, test))` when `dir` has both subfolders, None when it has neither.
fn split_folders(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>, DataError> {
    let (train, test) = (dir.join("train"), dir.join("test"));
    match (train.is_dir(), test.is_dir()) {
        (true, true) => Ok(Some((train, test))),
        (false, false) => Ok(None),
        (true, false) => Err(DataError::HalfSplit {
            path: dir.to_path_buf(),
            present: "train",
            missing: "test",
        }),
        (false, true) => Err(DataError::HalfSplit {
            path: dir.to_path_buf(),
            present: "test",
            missing: "train",
        }),
    }
}

/// The class subfolders of `dir` with their image files, sorted by name.
fn class_files(dir: &Path) -> Result<Vec<ClassFiles>, DataError> {
    let mut classes = Vec::new();
    for entry in visible_entries(dir)? {
        if entry.is_dir() {
            let files = visible_entries(&entry)?
                .into_iter()
                .filter(|p| p.is_file() && is_image_file(p))
                .collect::<Vec<_>>();
            if files.is_empty() {
                return Err(DataError::EmptyClass { path: entry });
            }
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            classes.push(ClassFiles { name, files });
        }
    }
    match classes.as_slice() {
        [] => Err(DataError::NoClassFolders {
            path: dir.to_path_buf(),
        }),
        [one] => Err(DataError::TooFewClasses {
            path: dir.to_path_buf(),
            class: one.name.clone(),
        }),
        _ if classes.len() > 256 => Err(DataError::TooManyClasses {
            path: dir.to_path_buf(),
            count: classes.len(),
        }),
        _ => Ok(classes),
    }
}

/// The entries of `dir` whose names do not start with a dot, sorted by name.
fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|e| DataError::io("read the folder", dir, e))?;
    let mut paths = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DataError::io("read the folder", dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Decodes every class's files (in parallel) into one set labelled by class
/// index. Undecodable files fail the load, or are listed in `skipped`.
fn decode_classes(
    classes: &[ClassFiles],
    decode: Decode,
    skip_unreadable: bool,
    skipped: &mut Vec<String>,
) -> Result<ImageSet, DataError> {
    let jobs: Vec<(u8, &PathBuf)> = classes
        .iter()
        .enumerate()
        .flat_map(|(label, c)| c.files.iter().map(move |f| (label as u8, f)))
        .collect();
    let decoded: Vec<Result<Vec<u8>, DataError>> = jobs
        .par_iter()
        .map(|(_, path)| decode_file(path, decode))
        .collect();
    let mut set = ImageSet {
        channels: decode.channels.count(),
        rows: decode.height as usize,
        cols: decode.width as usize,
        images: Vec::new(),
        labels: Vec::new(),
    };
    for ((label, _), result) in jobs.iter().zip(decoded) {
        match result {
            Ok(pixels) => {
                set.images.extend_from_slice(&pixels);
                set.labels.push(*label);
            }
            Err(e) if skip_unreadable => skipped.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    if let Some(empty) = (0..classes.len()).find(|&c| !set.labels.contains(&(c as u8))) {
        // Every file of this class was skipped.
        let path = classes[empty]
            .files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        return Err(DataError::EmptyClass { path });
    }
    Ok(set)
}

/// One file decoded, converted and resized; channels-first bytes.
fn decode_file(path: &Path, decode: Decode) -> Result<Vec<u8>, DataError> {
    let undecodable = |reason: String| DataError::Undecodable {
        path: path.to_path_buf(),
        reason,
    };
    let image = image::ImageReader::open(path)
        .map_err(|e| DataError::io("read", path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io("read", path, e))?
        .decode()
        .map_err(|e| undecodable(e.to_string()))?;
    Ok(to_pixels(&image, decode))
}

/// Converts and resizes a decoded image to `decode`'s channels and size.
fn to_pixels(image: &image::DynamicImage, decode: Decode) -> Vec<u8> {
    let Decode {
        channels,
        height,
        width,
        filter,
    } = decode;
    let same_size = image.width() == width && image.height() == height;
    match channels {
        Channels::Gray => {
            let grey = image.to_luma8();
            if same_size {
                grey.into_raw()
            } else {
                image::imageops::resize(&grey, width, height, filter).into_raw()
            }
        }
        Channels::Rgb => {
            let rgb = image.to_rgb8();
            let rgb = if same_size {
                rgb
            } else {
                image::imageops::resize(&rgb, width, height, filter)
            };
            planes(&rgb.into_raw(), 3)
        }
    }
}

/// Interleaved pixels (`rgbrgb...`) to channel planes (`rr..gg..bb..`).
fn planes(interleaved: &[u8], channels: usize) -> Vec<u8> {
    let n = interleaved.len() / channels;
    let mut out = vec![0u8; interleaved.len()];
    for (i, px) in interleaved.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * n + i] = v;
        }
    }
    out
}

/// Holds out `fraction` of each class as the test set (stratified, seeded).
fn split_off(all: ImageSet, fraction: f64, seed: u64) -> (ImageSet, ImageSet) {
    let test_idx = stratified_indices(&all.labels, fraction, seed, "test-split");
    let mut in_test = vec![false; all.len()];
    for &i in &test_idx {
        in_test[i] = true;
    }
    let train_idx: Vec<usize> = (0..all.len()).filter(|&i| !in_test[i]).collect();
    (all.subset(&train_idx), all.subset(&test_idx))
}

/// Per channel: mean and standard deviation of the pixels in [0, 1].
fn channel_stats(set: &ImageSet) -> Vec<(f32, f32)> {
    let plane = set.rows * set.cols;
    (0..set.channels)
        .map(|c| {
            let (mut sum, mut sq, mut n) = (0.0f64, 0.0f64, 0usize);
            for i in 0..set.len() {
                let px = &set.image(i)[c * plane..(c + 1) * plane];
                for &p in px {
                    let v = f64::from(p) / 255.0;
                    sum += v;
                    sq += v * v;
                }
                n += plane;
            }
            if n == 0 {
                return (0.0, 1.0);
            }
            let mean = sum / n as f64;
            let std = (sq / n as f64 - mean * mean).max(0.0).sqrt();
            let std = if std > 1e-6 { std } else { 1.0 };
            (mean as f32, std as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `counts[c]` images of class `c`, 1x1 grey, pixel = running index.
    fn labelled(counts: &[usize]) -> ImageSet {
        let mut set = ImageSet {
            channels: 1,
            rows: 1,
            cols: 1,
            ..ImageSet::default()
        };
        for (c, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                set.images.push(set.labels.len() as u8);
                set.labels.push(c as u8);
            }
        }
        set
    }

    #[test]
    fn test_split_is_stratified_and_seeded() {
        let all = labelled(&[20, 10, 5]);
        let (train, test) = split_off(all.clone(), 0.2, 4);
        assert_eq!((train.len(), test.len()), (28, 7));
        for (class, expected) in [(0u8, 4), (1, 2), (2, 1)] {
            let n = test.labels.iter().filter(|&&l| l == class).count();
            assert_eq!(n, expected, "class {class} in test");
            assert!(train.labels.contains(&class), "class {class} in train");
        }
        assert_eq!(
            split_off(all.clone(), 0.2, 4),
            (train.clone(), test.clone())
        );
        let (_, other) = split_off(all.clone(), 0.2, 5);
        assert_ne!(other.images, test.images, "another seed, another split");
        let mut ids: Vec<u8> = train.images.iter().chain(&test.images).copied().collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..35).collect::<Vec<u8>>(), "disjoint and complete");
        // The validation split draws from another stream than the test split.
        assert_ne!(
            stratified_indices(&all.labels, 0.2, 4, "val-split"),
            stratified_indices(&all.labels, 0.2, 4, "test-split")
        );
    }

    #[test]
    fn every_class_reaches_both_parts_when_it_can() {
        let all = labelled(&[2, 3, 7, 2]);
        for seed in 0..20 {
            let (train, test) = split_off(all.clone(), 0.3, seed);
            for class in 0..4u8 {
                assert!(train.labels.contains(&class), "seed {seed} class {class}");
            }
            for class in [1u8, 2] {
                assert!(test.labels.contains(&class), "seed {seed} class {class}");
            }
        }
    }

    fn decode(channels: Channels, height: u32, width: u32, filter: FilterType) -> Decode {
        Decode {
            channels,
            height,
            width,
            filter,
        }
    }

    #[test]
    fn resizing_gives_the_asked_size_and_keeps_colours_apart() {
        // 8 wide, 4 high: left half red, right half blue.
        let rgb = image::RgbImage::from_fn(8, 4, |x, _| {
            if x < 4 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let img = image::DynamicImage::ImageRgb8(rgb);
        let px = to_pixels(&img, decode(Channels::Rgb, 2, 2, FilterType::Nearest));
        // Planes: red [255, 0, 255, 0], green zeros, blue [0, 255, 0, 255].
        assert_eq!(px, vec![255, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 255]);
        for filter in [
            FilterType::Triangle,
            FilterType::CatmullRom,
            FilterType::Gaussian,
            FilterType::Lanczos3,
        ] {
            let px = to_pixels(&img, decode(Channels::Rgb, 3, 5, filter));
            assert_eq!(px.len(), 3 * 3 * 5, "{filter:?}");
            // The left column stays red, the right one blue.
            assert!(px[0] > 200 && px[4] < 60, "{filter:?}: {px:?}");
            assert!(px[30] < 60 && px[34] > 200, "{filter:?}: {px:?}");
        }
        // Grey: luminance, and an up-scaled constant image stays constant.
        let white = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            3,
            3,
            image::Rgb([255, 255, 255]),
        ));
        let px = to_pixels(&white, decode(Channels::Gray, 7, 6, FilterType::Triangle));
        assert_eq!(px, vec![255; 42]);
    }

    #[test]
    fn stats_are_per_channel() {
        let set = ImageSet {
            channels: 2,
            rows: 1,
            cols: 2,
            images: vec![0, 255, 51, 51, 255, 0, 51, 51],
            labels: vec![0, 1],
        };
        let stats = channel_stats(&set);
        assert!((stats[0].0 - 0.5).abs() < 1e-6 && (stats[0].1 - 0.5).abs() < 1e-6);
        // A flat channel is not scaled (std 1), only centred.
        assert!((stats[1].0 - 0.2).abs() < 1e-6 && stats[1].1 == 1.0);
    }
}
