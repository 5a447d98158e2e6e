//! Turning a [`DataSource`] into the paths of the four IDX files.
//!
//! Every source ends in a folder holding the standard names
//! (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte`), each as `.gz` or raw; `.gz` wins when both exist.
//! - `Bundled`: `<assets>/mnist/`, where `<assets>` is `$TRAINLAB_ASSETS` if set, else
//!   the crate's `assets/` if it exists, else `assets/` next to the executable.
//!   MNIST only.
//! - `System`: `/usr/share/datasets/<name>/`, then `/usr/local/share/datasets/<name>/`,
//!   with `<name>` = `mnist` or `fashion-mnist` (Debian's `dataset-fashion-mnist` uses
//!   the first).
//! - `Dir(path)`: that folder.
//! - `Download`: the verified cache of [`super::download`].
//!
//! Nothing here reads the files; a missing file is an error that lists every folder
//! searched and suggests another source.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::spec::{DataSource, ImageDataset};

use super::download;
use super::error::DataError;

/// The standard file names without `.gz`, in the order of [`IdxFiles`]' fields.
pub const STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The four files of one dataset, and where they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxFiles {
    /// Training images.
    pub train_images: PathBuf,
    /// Training labels.
    pub train_labels: PathBuf,
    /// Test images.
    pub test_images: PathBuf,
    /// Test labels.
    pub test_labels: PathBuf,
    /// For people: which source and folder, e.g. "bundled sample in /x/assets/mnist".
    pub origin: String,
}

/// Human name of a dataset for messages.
pub fn dataset_name(dataset: ImageDataset) -> &'static str {
    match dataset {
        ImageDataset::Mnist => "MNIST",
        ImageDataset::FashionMnist => "Fashion-MNIST",
    }
}

/// Finds the four files of `dataset` for `source`, downloading them for `Download`.
pub fn resolve(dataset: ImageDataset, source: &DataSource) -> Result<IdxFiles, DataError> {
    let name = dataset_name(dataset);
    match source {
        DataSource::Bundled => {
            if dataset == ImageDataset::FashionMnist {
                return Err(DataError::FashionNotBundled);
            }
            let manifest_assets = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets"));
            let exe_dir = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf));
            let roots = asset_roots(
                std::env::var_os("TRAINLAB_ASSETS"),
                manifest_assets,
                exe_dir,
            );
            let dirs: Vec<PathBuf> = roots.iter().map(|r| r.join("mnist")).collect();
            let hint = "set TRAINLAB_ASSETS to trainlab's assets folder (the one holding \
                        mnist/), or use `source: Download`";
            search(name, "source: Bundled", &dirs, hint, |dir| {
                format!("bundled MNIST sample in {}", dir.display())
            })
        }
        DataSource::System => {
            let dirs = system_dirs(dataset);
            let hint = match dataset {
                ImageDataset::Mnist => {
                    "no system package for MNIST is known; use `source: Bundled` \
                                        (a 10,000-digit sample) or `source: Download`"
                        .to_string()
                }
                ImageDataset::FashionMnist => {
                    "install it with `sudo apt install dataset-fashion-mnist` \
                                               (Debian/Ubuntu), or use `source: Download`"
                        .to_string()
                }
            };
            search(name, "source: System", &dirs, &hint, |dir| {
                format!("{name} from the system, {}", dir.display())
            })
        }
        DataSource::Dir(dir) => {
            let hint = "put the four files there (`.gz` or uncompressed), or use \
                        `source: Download`";
            search(
                name,
                &format!("source: Dir({})", dir.display()),
                std::slice::from_ref(dir),
                hint,
                |d| format!("{name} from {}", d.display()),
            )
        }
        // A folder of image files has no IDX files to find (`load_images` reads it).
        DataSource::Folder(dir) => Err(DataError::FilesNotFound {
            dataset: name,
            source_name: format!("source: Folder({})", dir.display()),
            missing: STEMS.iter().map(|s| format!("{s}[.gz]")).collect(),
            looked_in: vec![dir.clone()],
            hint: "a Folder source holds image files, not IDX files; only IDX sources \
                   work here"
                .to_string(),
        }),
        DataSource::Download => {
            let dir = download::ensure_downloaded(dataset)?;
            search(
                name,
                "source: Download",
                std::slice::from_ref(&dir),
                "delete the cache folder and retry",
                |d| format!("{name} downloaded, cached in {}", d.display()),
            )
        }
    }
}

/// Where bundled assets may be: only `env_override` when it is set (non-empty), else
/// the crate's `assets/` if it exists, else `assets/` beside the executable, then
/// the installed `/usr/share/trainlab/assets` (the .deb's).
pub fn asset_roots(
    env_override: Option<OsString>,
    manifest_assets: &Path,
    exe_dir: Option<PathBuf>,
) -> Vec<PathBuf> {
    if let Some(v) = env_override.filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(v)];
    }
    if manifest_assets.is_dir() {
        return vec![manifest_assets.to_path_buf()];
    }
    // Listed even when the build tree is gone, so the error shows both places.
    let mut roots = vec![manifest_assets.to_path_buf()];
    roots.extend(exe_dir.map(|d| d.join("assets")));
    roots.push(crate::util::install::share_assets());
    roots
}

/// The folders `source: System` searches for `dataset`, in order.
pub fn system_dirs(dataset: ImageDataset) -> Vec<PathBuf> {
    let name = match dataset {
        ImageDataset::Mnist => "mnist",
        ImageDataset::FashionMnist => "fashion-mnist",
    };
    ["/usr/share/datasets", "/usr/local/share/datasets"]
        .iter()
        .map(|root| Path::new(root).join(name))
        .collect()
}

/// The first folder of `dirs` that holds all four files; otherwise an error listing
/// the files missing from the most complete folder and every folder searched.
pub fn search(
    dataset: &'static str,
    source_name: &str,
    dirs: &[PathBuf],
    hint: &str,
    origin: impl Fn(&Path) -> String,
) -> Result<IdxFiles, DataError> {
    let mut fewest_missing: Option<Vec<String>> = None;
    for dir in dirs {
        match files_in(dir) {
            Ok([train_images, train_labels, test_images, test_labels]) => {
                return Ok(IdxFiles {
                    train_images,
                    train_labels,
                    test_images,
                    test_labels,
                    origin: origin(dir),
                });
            }
            Err(missing) => {
                if fewest_missing
                    .as_ref()
                    .is_none_or(|m| missing.len() < m.len())
                {
                    fewest_missing = Some(missing);
                }
            }
        }
    }
    Err(DataError::FilesNotFound {
        dataset,
        source_name: source_name.to_string(),
        missing: fewest_missing
            .unwrap_or_else(|| STEMS.iter().map(|s| format!("{s}[.gz]")).collect()),
        looked_in: dirs.to_vec(),
        hint: hint.to_string(),
    })
}

/// The four files in `dir` (`.gz` preferred), or the names missing there.
fn files_in(dir: &Path) -> Result<[PathBuf; 4], Vec<String>> {
    let mut found = Vec::with_capacity(4);
    let mut missing = Vec::new();
    for stem in STEMS {
        let gz = dir.join(format!("{stem}.gz"));
        let raw = dir.join(stem);
        if gz.is_file() {
            found.push(gz);
        } else if raw.is_file() {
            found.push(raw);
        } else {
            missing.push(format!("{stem}[.gz]"));
        }
    }
    match <[PathBuf; 4]>::try_from(found) {
        Ok(files) if missing.is_empty() => Ok(files),
        _ => Err(missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) {
        for n in names {
            std::fs::write(dir.join(n), b"x").expect("write");
        }
    }

    #[test]
    fn dir_accepts_gz_raw_and_mixed_preferring_gz() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        touch(
            d,
            &[
                "train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte",
            ],
        );
        let f = resolve(ImageDataset::Mnist, &DataSource::Dir(d.to_path_buf()))
            .expect("all four present");
        assert_eq!(f.train_images, d.join("train-images-idx3-ubyte.gz"));
        assert_eq!(f.train_labels, d.join("train-labels-idx1-ubyte"));
        assert_eq!(f.test_images, d.join("t10k-images-idx3-ubyte.gz"));
        assert!(f.origin.contains(&d.display().to_string()), "{}", f.origin);
    }

    #[test]
    fn dir_error_names_the_folder_and_missing_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        touch(
            tmp.path(),
            &["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
        );
        let msg = resolve(
            ImageDataset::FashionMnist,
            &DataSource::Dir(tmp.path().to_path_buf()),
        )
        .expect_err("two missing")
        .to_string();
        let dir = tmp.path().display().to_string();
        for needle in [
            dir.as_str(),
            "t10k-images-idx3-ubyte[.gz]",
            "t10k-labels-idx1-ubyte[.gz]",
            "Fashion-MNIST",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
        assert!(!msg.contains("train-images"), "{msg}");
    }

    #[test]
    fn search_takes_the_first_complete_folder_and_lists_all_on_failure() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        touch(b.path(), &STEMS);
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let f = search("MNIST", "source: System", &dirs, "h", |d| {
            d.display().to_string()
        })
        .expect("b is complete");
        assert_eq!(f.origin, b.path().display().to_string());

        let c = tempfile::tempdir().expect("tempdir");
        let dirs = vec![a.path().to_path_buf(), c.path().to_path_buf()];
        let msg = search(
            "MNIST",
            "source: System",
            &dirs,
            "use `source: Bundled`",
            |_| String::new(),
        )
        .expect_err("none complete")
        .to_string();
        for needle in [
            a.path().display().to_string(),
            c.path().display().to_string(),
            "source: Bundled".into(),
        ] {
            assert!(msg.contains(&needle), "{needle:?} missing in: {msg}");
        }
    }

    #[test]
    fn system_mnist_error_suggests_bundled_or_download() {
        let dirs = system_dirs(ImageDataset::Mnist);
        assert_eq!(dirs[0], Path::new("/usr/share/datasets/mnist"));
        if dirs.iter().any(|d| d.is_dir()) {
            return; // This machine has a system MNIST; the error cannot be provoked.
        }
        let msg = resolve(ImageDataset::Mnist, &DataSource::System)
            .expect_err("no MNIST package")
            .to_string();
        for needle in [
            "/usr/share/datasets/mnist",
            "/usr/local/share/datasets/mnist",
            "Bundled",
            "Download",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
    }

    #[test]
    fn fashion_is_not_bundled() {
        let msg = resolve(ImageDataset::FashionMnist, &DataSource::Bundled)
            .expect_err("not bundled")
            .to_string();
        for needle in ["source: System", "dataset-fashion-mnist", "Download"] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
    }

    #[test]
    fn asset_roots_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let here = tmp.path().join("assets");
        let exe = Some(PathBuf::from("/opt/trainlab/bin"));
        let gone = Path::new("/no/such/build/assets");
        assert_eq!(
            asset_roots(Some("/env/a".into()), &here, exe.clone()),
            vec![PathBuf::from("/env/a")]
        );
        assert_eq!(
            asset_roots(None, gone, exe.clone()),
            vec![
                gone.to_path_buf(),
                PathBuf::from("/opt/trainlab/bin/assets"),
                PathBuf::from("/usr/share/trainlab/assets")
            ]
        );
        std::fs::create_dir(&here).expect("mkdir");
        assert_eq!(asset_roots(Some("".into()), &here, exe), vec![here.clone()]);
    }
}
