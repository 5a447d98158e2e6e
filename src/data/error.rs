//! The one error type of `data`. Every message says what was wrong, which file or
//! folders were involved, and what the user can do about it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong finding, fetching or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "create", "rename ... to").
        action: String,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file exists but its contents are not what its name promises.
    #[error(
        "{path} is not a valid IDX {kind} file: {problem}; \
         delete it and fetch the dataset again (or pick another source)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// "image" or "label".
        kind: &'static str,
        /// What exactly is wrong.
        problem: String,
    },
    /// An image file and its label file disagree on the number of samples.
    #[error(
        "{images} holds {n_images} images but {labels} holds {n_labels} labels; \
         the two files must come from the same dataset split"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its number of images.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Its number of labels.
        n_labels: usize,
    },
    /// The training and test images have different sizes.
    #[error(
        "training images in {train} are {train_rows}x{train_cols} but test images in \
         {test} are {test_rows}x{test_cols}; use the four files of one dataset"
    )]
    ShapeMismatch {
        /// The training image file.
        train: PathBuf,
        /// Its rows per image.
        train_rows: usize,
        /// Its columns per image.
        train_cols: usize,
        /// The test image file.
        test: PathBuf,
        /// Its rows per image.
        test_rows: usize,
        /// Its columns per image.
        test_cols: usize,
    },
    /// Some of the four IDX files are not where the source says they are.
    #[error("{dataset} ({source_name}): {} not found in {}; {hint}", .missing.join(", "), list_paths(.looked_in))]
    FilesNotFound {
        /// "MNIST" or "Fashion-MNIST".
        dataset: &'static str,
        /// The source as written in an experiment file, e.g. "source: System".
        source_name: String,
        /// The files that were not found (either `.gz` or raw was accepted).
        missing: Vec<String>,
        /// Every folder that was searched.
        looked_in: Vec<PathBuf>,
        /// What to do instead.
        hint: String,
    },
    /// Fashion-MNIST was asked for with `source: Bundled`.
    #[error(
        "Fashion-MNIST is not bundled with trainlab (only an MNIST sample is); use \
         `source: System` after installing the Debian package `dataset-fashion-mnist` \
         (files in /usr/share/datasets/fashion-mnist), or `source: Download`"
    )]
    FashionNotBundled,
    /// Neither `TRAINLAB_CACHE` nor a per-user cache folder is available.
    #[error(
        "no per-user cache folder is known on this system, so there is nowhere to \
         download to; set the environment variable TRAINLAB_CACHE to a writable folder"
    )]
    NoCacheDir,
    /// The HTTP request failed (network, DNS, TLS, HTTP status, size limit).
    #[error(
        "cannot download {url}: {reason}; check the network connection, or download the \
         file yourself and put it at {dest}"
    )]
    Download {
        /// What was requested.
        url: String,
        /// Where it was to be stored.
        dest: PathBuf,
        /// ureq's description of the failure.
        reason: String,
    },
    /// Downloaded bytes do not have the SHA-256 that trainlab knows for the file.
    #[error(
        "SHA-256 mismatch for {path}: expected {expected}, got {got}; the file was \
         deleted. The download was damaged or the server now serves different bytes: \
         try again, or use another source"
    )]
    Checksum {
        /// Where the file was to be stored.
        path: PathBuf,
        /// The known digest (lowercase hex).
        expected: String,
        /// The digest of what arrived (lowercase hex).
        got: String,
    },
    /// An image folder (`source: Folder`) that does not exist.
    #[error(
        "image folder {path} does not exist or is not a folder; give a folder holding \
         one subfolder of images per class (relative paths start from the folder \
         trainlab runs in)"
    )]
    FolderNotFound {
        /// The folder as given.
        path: PathBuf,
    },
    /// An image folder with no class subfolders.
    #[error(
        "{path} holds no class subfolders; put each class's images in a subfolder named \
         after the class, e.g. {path}/cat/1.png and {path}/dog/1.png"
    )]
    NoClassFolders {
        /// The folder.
        path: PathBuf,
    },
    /// An image folder with a single class.
    #[error(
        "{path} holds only the class {class:?}; a classifier needs at least 2 classes \
         (one subfolder each)"
    )]
    TooFewClasses {
        /// The folder.
        path: PathBuf,
        /// The one class found.
        class: String,
    },
    /// More classes than a label byte can hold.
    #[error("{path} holds {count} class subfolders; at most 256 are supported")]
    TooManyClasses {
        /// The folder.
        path: PathBuf,
        /// Subfolders found.
        count: usize,
    },
    /// A class subfolder without a single image file.
    #[error(
        "class folder {path} holds no images (.png, .jpg, .jpeg, .bmp, .gif, .webp); \
         add some or remove the folder"
    )]
    EmptyClass {
        /// The class folder.
        path: PathBuf,
    },
    /// Only one of `train/` and `test/` exists.
    #[error(
        "{path} has a {present}/ subfolder but no {missing}/; give both (each with the \
         same class subfolders), or neither and let `test_fraction` hold out the test set"
    )]
    HalfSplit {
        /// The folder.
        path: PathBuf,
        /// "train" or "test".
        present: &'static str,
        /// The other one.
        missing: &'static str,
    },
    /// `train/` and `test/` hold different class subfolders.
    #[error(
        "{train} and {test} must hold the same class subfolders; only in train/: [{}], \
         only in test/: [{}]",
        .only_train.join(", "), .only_test.join(", ")
    )]
    ClassMismatch {
        /// The train folder.
        train: PathBuf,
        /// The test folder.
        test: PathBuf,
        /// Classes missing from test/.
        only_train: Vec<String>,
        /// Classes missing from train/.
        only_test: Vec<String>,
    },
    /// An image file that cannot be decoded.
    #[error(
        "cannot decode the image {path}: {reason}; fix or delete the file, or set \
         `skip_unreadable: true` in the dataset to skip such files"
    )]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
}

impl DataError {
    /// An I/O error with the action and path that failed.
    pub(crate) fn io(action: &str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action: action.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Paths for a message: `a, b and c`.
fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    match shown.split_last() {
        None => "(no folders)".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_not_found_lists_every_folder_and_file() {
        let e = DataError::FilesNotFound {
            dataset: "MNIST",
            source_name: "source: System".into(),
            missing: vec!["a.gz".into(), "b.gz".into()],
            looked_in: vec!["/x".into(), "/y".into(), "/z".into()],
            hint: "use Bundled".into(),
        };
        assert_eq!(
            e.to_string(),
            "MNIST (source: System): a.gz, b.gz not found in /x, /y and /z; use Bundled"
        );
    }
}
