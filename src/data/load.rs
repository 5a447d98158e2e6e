//! `load_images`: from an [`ImageDatasetSpec`] to train and test sets in memory.
//!
//! Finds the four files (see `sources`), reads and checks them (see `idx`), checks that
//! train and test images have the same size, then keeps the first `train_limit` /
//! `test_limit` images. `source: Folder` reads image files instead (see `folder`;
//! the seed draws its test split). The validation split is left to the caller
//! (`split_train_val`), after the limit, so limits and splits compose the same way for
//! every source.

use crate::spec::{DataSource, ImageDataset, ImageDatasetSpec};

use super::error::DataError;
use super::folder::load_folder;
use super::idx::read_idx_pair;
use super::image_set::ImageData;
use super::sources;

/// Fashion-MNIST's class names, by label.
const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The class names of a dataset, by label.
pub fn class_names(dataset: ImageDataset) -> Vec<String> {
    match dataset {
        ImageDataset::Mnist => (0..10).map(|d| d.to_string()).collect(),
        ImageDataset::FashionMnist => FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

/// Mean and standard deviation of the training pixels (in [0, 1]) of a dataset's
/// published training file.
pub fn published_stats(name: ImageDataset) -> (f32, f32) {
    match name {
        ImageDataset::Mnist => (0.1307, 0.3081),
        ImageDataset::FashionMnist => (0.2860, 0.3530),
    }
}

/// Loads the dataset `spec` names from its source and applies `train_limit` and
/// `test_limit` (the first N images of each file). `seed` draws a folder's test
/// split and order (IDX files come split and ignore it).
pub fn load_images(spec: &ImageDatasetSpec, seed: u64) -> Result<ImageData, DataError> {
    if let DataSource::Folder(dir) = &spec.source {
        return load_folder(dir, spec, seed);
    }
    let ImageDatasetSpec {
        name,
        source,
        val_fraction: _, // applied by the caller with `split_train_val`
        train_limit,
        augment: _, // applied per batch by the training loop
        test_limit,
        // Folder settings; validation keeps them at their defaults here.
        size: _,
        channels: _,
        resize: _,
        skip_unreadable: _,
        test_fraction: _,
    } = spec;
    let files = sources::resolve(*name, source)?;
    // The test files are read on a second thread while the training files are:
    // nothing else runs yet, and decompressing is most of a run's start.
    let (train, test) = std::thread::scope(|s| {
        let test = s.spawn(|| read_idx_pair(&files.test_images, &files.test_labels));
        let train = read_idx_pair(&files.train_images, &files.train_labels);
        let test = test.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (train, test)
    });
    let (mut train, mut test) = (train?, test?);
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(DataError::ShapeMismatch {
            train: files.train_images,
            train_rows: train.rows,
            train_cols: train.cols,
            test: files.test_images,
            test_rows: test.rows,
            test_cols: test.cols,
        });
    }
    if let Some(n) = *train_limit {
        train.truncate(n);
    }
    if let Some(n) = *test_limit {
        test.truncate(n);
    }
    Ok(ImageData {
        train,
        test,
        classes: class_names(*name),
        origin: files.origin,
        stats: vec![published_stats(*name)],
        skipped: Vec::new(),
    })
}

/// An image dataset being read on a thread of its own, so that a run can create its
/// folder meanwhile; [`ImageLoad::wait`] hands over what [`load_images`] returns.
///
/// Only IDX files already on this machine (`Bundled`, `System`, `Dir`) are read
/// ahead: a download and a folder (whose decoding runs on the caller's rayon pool)
/// are read by `wait`, on the caller's thread, as `load_images` would.
pub struct ImageLoad {
    spec: ImageDatasetSpec,
    seed: u64,
    thread: Option<std::thread::JoinHandle<Result<ImageData, DataError>>>,
}

impl ImageLoad {
    /// Starts reading the dataset `spec` names (see the type for which sources).
    pub fn start(spec: &ImageDatasetSpec, seed: u64) -> Self {
        let ahead = matches!(
            spec.source,
            DataSource::Bundled | DataSource::System | DataSource::Dir(_)
        );
        let thread = ahead
            .then(|| {
                let spec = spec.clone();
                std::thread::Builder::new()
                    .name("image data".into())
                    .spawn(move || load_images(&spec, seed))
                    // No thread to be had: `wait` reads it instead.
                    .ok()
            })
            .flatten();
        Self {
            spec: spec.clone(),
            seed,
            thread,
        }
    }

    /// The dataset, or why it could not be read (a panic while reading goes on
    /// in the caller).
    pub fn wait(self) -> Result<ImageData, DataError> {
        match self.thread {
            Some(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => load_images(&self.spec, self.seed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::idx::tests::{gz, image_bytes, label_bytes};
    use crate::spec::DataSource;

    fn write_dataset(dir: &Path, train: (u32, u32), test: (u32, u32)) {
        let files = [
            (
                "train-images-idx3-ubyte.gz",
                gz(&image_bytes(train.0, train.1, train.1)),
            ),
            (
                "train-labels-idx1-ubyte",
                label_bytes(&vec![3; train.0 as usize]),
            ),
            (
                "t10k-images-idx3-ubyte",
                image_bytes(test.0, test.1, test.1),
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                gz(&label_bytes(&vec![7; test.0 as usize])),
            ),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).expect("write");
        }
    }

    fn spec(dir: &Path, train_limit: Option<usize>, test_limit: Option<usize>) -> ImageDatasetSpec {
        ImageDatasetSpec {
            name: ImageDataset::FashionMnist,
            source: DataSource::Dir(dir.to_path_buf()),
            val_fraction: 0.5,
            train_limit,
            test_limit,
            augment: None,
            ..ImageDatasetSpec::default()
        }
    }

    #[test]
    fn loads_a_folder_and_applies_limits() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_dataset(tmp.path(), (20, 4), (6, 4));
        let d = load_images(&spec(tmp.path(), Some(5), Some(100)), 0).expect("valid folder");
        assert_eq!((d.train.len(), d.test.len()), (5, 6));
        assert_eq!(d.train.images.len(), 5 * 16);
        assert_eq!(
            d.train.image(4),
            image_bytes(20, 4, 4)[16 + 4 * 16..16 + 5 * 16].to_vec()
        );
        assert_eq!(d.test.labels, vec![7; 6]);
        assert_eq!(d.classes.len(), 10);
        assert_eq!(d.classes[0], "T-shirt/top");
        assert!(
            d.origin.contains(&tmp.path().display().to_string()),
            "{}",
            d.origin
        );
    }

    #[test]
    fn train_and_test_sizes_must_agree() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_dataset(tmp.path(), (2, 4), (2, 5));
        let msg = load_images(&spec(tmp.path(), None, None), 0)
            .expect_err("4x4 vs 5x5")
            .to_string();
        assert!(
            msg.contains("4x4") && msg.contains("5x5") && msg.contains("t10k-images"),
            "{msg}"
        );
    }

    #[test]
    fn reading_ahead_gives_what_load_images_gives() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_dataset(tmp.path(), (20, 4), (6, 4));
        let spec = spec(tmp.path(), Some(7), None);
        let ahead = ImageLoad::start(&spec, 3);
        assert!(ahead.thread.is_some(), "a Dir source is read on a thread");
        assert_eq!(
            ahead.wait().expect("valid folder"),
            load_images(&spec, 3).expect("valid folder")
        );
        // A damaged file fails the same way, naming the file.
        std::fs::write(tmp.path().join("t10k-images-idx3-ubyte"), [0u8, 0, 8, 3, 0])
            .expect("write");
        let direct = load_images(&spec, 3).expect_err("damaged").to_string();
        let ahead = ImageLoad::start(&spec, 3).wait().expect_err("damaged");
        assert_eq!(ahead.to_string(), direct);
        assert!(direct.contains("t10k-images"), "{direct}");
    }

    #[test]
    fn downloads_and_folders_are_not_read_ahead() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for source in [
            DataSource::Download,
            DataSource::Folder(tmp.path().to_path_buf()),
        ] {
            let spec = ImageDatasetSpec {
                source,
                ..ImageDatasetSpec::default()
            };
            assert!(ImageLoad::start(&spec, 0).thread.is_none(), "{spec:?}");
        }
    }

    #[test]
    fn mnist_classes_are_digits() {
        assert_eq!(class_names(ImageDataset::Mnist).join(""), "0123456789");
    }
}
