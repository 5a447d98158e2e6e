//! `source: Download`: fetch the four `.gz` files once into a per-user cache and check
//! every byte against SHA-256 digests compiled into trainlab.
//!
//! Cache folder: `$TRAINLAB_CACHE/<dataset>/` if that variable is set, else
//! `<user cache dir>/trainlab/<dataset>/` (`~/.cache/trainlab/mnist/` on Linux), with
//! `<dataset>` = `mnist` or `fashion-mnist`. A cached file is re-hashed before every
//! use; one that does not match is deleted and downloaded again. A download goes to a
//! temporary name in the cache folder, is verified, and only then renamed into place,
//! so a file under its real name is always a verified one.
//!
//! Where the digests come from:
//! - MNIST: TensorFlow Datasets, `tensorflow_datasets/url_checksums/mnist.txt` (URL,
//!   size, SHA-256 for each file on storage.googleapis.com/cvdf-datasets/mnist/);
//!   the same four values appear in torchvision-style prototype dataset code
//!   (`_CHECKSUMS` for yann.lecun.com/exdb/mnist) and several independent
//!   downloader scripts, with the same sizes.
//! - Fashion-MNIST: TensorFlow Datasets, `tensorflow_datasets/url_checksums/fashion_mnist.txt`,
//!   cross-checked on a machine with Debian's `dataset-fashion-mnist`
//!   (0.0~git20200523.55506a9-1). Debian's `.gz` files are the upstream ones with the
//!   gzip header's file name and time stamp stripped (each is 23-24 bytes shorter);
//!   putting the name and the original time stamp (2017-08-31) back gives files whose
//!   MD5 equals the digests published in Zalando's README and whose SHA-256 equals
//!   the values below.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::spec::ImageDataset;
use crate::util::atomic::temp_name;

use super::error::DataError;

/// One file of a dataset on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, both on the server and in the cache.
    pub name: &'static str,
    /// Size in bytes, used as the download limit.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: &'static str,
}

/// Where MNIST is downloaded from (Google's mirror of Yann LeCun's files).
pub const MNIST_URL: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";
/// Where Fashion-MNIST is downloaded from (Zalando Research's bucket).
pub const FASHION_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// The MNIST files; see the module comment for where the digests come from.
pub const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        size: 9_912_422,
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        size: 28_881,
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        size: 1_648_877,
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        size: 4_542,
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
];

/// The Fashion-MNIST files; see the module comment for where the digests come from.
pub const FASHION_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        size: 26_421_880,
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        size: 29_515,
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        size: 4_422_102,
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        size: 5_148,
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
];

/// Base URL, files and cache folder name of a dataset.
pub fn remote(dataset: ImageDataset) -> (&'static str, &'static [RemoteFile; 4], &'static str) {
    match dataset {
        ImageDataset::Mnist => (MNIST_URL, &MNIST_FILES, "mnist"),
        ImageDataset::FashionMnist => (FASHION_URL, &FASHION_FILES, "fashion-mnist"),
    }
}

/// The cache root: `TRAINLAB_CACHE` if given and non-empty, else `<user cache>/trainlab`.
pub fn cache_root(
    env_override: Option<std::ffi::OsString>,
    user_cache: Option<PathBuf>,
) -> Option<PathBuf> {
    match env_override {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => user_cache.map(|c| c.join("trainlab")),
    }
}

/// Makes sure the dataset's four files are in the cache, verified, downloading what is
/// missing or damaged; returns the cache folder.
pub fn ensure_downloaded(dataset: ImageDataset) -> Result<PathBuf, DataError> {
    let root = cache_root(std::env::var_os("TRAINLAB_CACHE"), dirs::cache_dir())
        .ok_or(DataError::NoCacheDir)?;
    let (base, files, folder) = remote(dataset);
    let dir = root.join(folder);
    ensure_files(&dir, base, files, http_get)?;
    Ok(dir)
}

/// [`ensure_downloaded`] with the folder, URL and fetcher given, so it can be tested
/// without a network. `fetch(url, dest, max_bytes)` returns the body.
pub fn ensure_files(
    dir: &Path,
    base_url: &str,
    files: &[RemoteFile],
    fetch: impl Fn(&str, &Path, u64) -> Result<Vec<u8>, DataError>,
) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io("create the cache folder", dir, e))?;
    for file in files {
        let dest = dir.join(file.name);
        if cached_file_ok(&dest, file.sha256)? {
            continue;
        }
        let url = format!("{base_url}{}", file.name);
        let bytes = fetch(&url, &dest, file.size)?;
        store_verified(&bytes, file.sha256, &dest)?;
    }
    Ok(())
}

/// True if `path` exists and has digest `expected_sha`. A file with another digest is
/// deleted (it is a damaged or foreign file) and reported as absent.
pub fn cached_file_ok(path: &Path, expected_sha: &str) -> Result<bool, DataError> {
    let got = match sha256_file(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(DataError::io("read", path, e)),
    };
    if got == expected_sha {
        return Ok(true);
    }
    std::fs::remove_file(path)
        .map_err(|e| DataError::io("delete the damaged cached file", path, e))?;
    Ok(false)
}

/// Writes `bytes` to a temporary sibling of `dest`, checks the SHA-256 of what was
/// written against `expected_sha`, and renames it to `dest` only if they match. On a
/// mismatch (or any failure) the temporary file is deleted and `dest` is untouched.
pub fn store_verified(bytes: &[u8], expected_sha: &str, dest: &Path) -> Result<(), DataError> {
    let tmp = temp_name(dest);
    let result = write_check_rename(bytes, expected_sha, &tmp, dest);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_check_rename(
    bytes: &[u8],
    expected_sha: &str,
    tmp: &Path,
    dest: &Path,
) -> Result<(), DataError> {
    let mut f = std::fs::File::create(tmp).map_err(|e| DataError::io("create", tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| DataError::io("write", tmp, e))?;
    drop(f);
    // Hash what is on disk, not what is in memory: that is what later runs will read.
    let got = sha256_file(tmp).map_err(|e| DataError::io("read back", tmp, e))?;
    if got != expected_sha {
        return Err(DataError::Checksum {
            path: dest.to_path_buf(),
            expected: expected_sha.to_string(),
            got,
        });
    }
    std::fs::rename(tmp, dest)
        .map_err(|e| DataError::io(&format!("rename {} to", tmp.display()), dest, e))
}

/// Lowercase hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// GETs `url` and returns the body, refusing more than `max_bytes`. Asks the server
/// not to re-encode, since the checksum is of the `.gz` file as published.
fn http_get(url: &str, dest: &Path, max_bytes: u64) -> Result<Vec<u8>, DataError> {
    let fail = |e: ureq::Error| DataError::Download {
        url: url.to_string(),
        dest: dest.to_path_buf(),
        reason: e.to_string(),
    };
    let response = ureq::get(url)
        .config()
        .accept_encoding("")
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build()
        .call()
        .map_err(fail)?;
    response
        .into_body()
        .into_with_config()
        .limit(max_bytes)
        .read_to_vec()
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn store_verified_good_file_lands_under_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("hello.gz");
        store_verified(b"hello", HELLO_SHA, &dest).expect("matching digest");
        assert_eq!(std::fs::read(&dest).expect("read"), b"hello");
        assert_eq!(names(dir.path()), vec!["hello.gz"], "no temp file left");
    }

    #[test]
    fn store_verified_bad_checksum_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("hello.gz");
        let err = store_verified(b"hellO", HELLO_SHA, &dest).expect_err("mismatch");
        let msg = err.to_string();
        assert!(msg.contains(HELLO_SHA) && msg.contains("hello.gz"), "{msg}");
        assert!(msg.contains(&sha256_of(b"hellO")), "{msg}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn store_verified_keeps_the_old_file_on_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("hello.gz");
        std::fs::write(&dest, b"hello").expect("write");
        assert!(store_verified(b"junk", HELLO_SHA, &dest).is_err());
        assert_eq!(std::fs::read(&dest).expect("read"), b"hello");
    }

    fn sha256_of(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[test]
    fn cache_lookup_accepts_good_and_deletes_bad() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        assert!(!cached_file_ok(&p, HELLO_SHA).expect("absent is fine"));
        std::fs::write(&p, b"hello").expect("write");
        assert!(cached_file_ok(&p, HELLO_SHA).expect("verified"));
        std::fs::write(&p, b"hell").expect("write");
        assert!(!cached_file_ok(&p, HELLO_SHA).expect("damaged"));
        assert!(!p.exists(), "damaged cache file removed");
    }

    #[test]
    fn ensure_files_fetches_only_what_is_missing_or_bad() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("mnist");
        let files = [
            RemoteFile {
                name: "a.gz",
                size: 5,
                sha256: HELLO_SHA,
            },
            RemoteFile {
                name: "b.gz",
                size: 5,
                sha256: HELLO_SHA,
            },
        ];
        let calls = RefCell::new(Vec::new());
        let fetch = |url: &str, _: &Path, max: u64| {
            assert_eq!(max, 5);
            calls.borrow_mut().push(url.to_string());
            Ok(b"hello".to_vec())
        };
        ensure_files(&cache, "https://h/x/", &files, fetch).expect("first fill");
        assert_eq!(
            *calls.borrow(),
            vec!["https://h/x/a.gz", "https://h/x/b.gz"]
        );
        calls.borrow_mut().clear();
        std::fs::write(cache.join("b.gz"), b"oops").expect("damage");
        ensure_files(&cache, "https://h/x/", &files, fetch).expect("repair");
        assert_eq!(*calls.borrow(), vec!["https://h/x/b.gz"]);
        assert_eq!(names(&cache), vec!["a.gz", "b.gz"]);
    }

    #[test]
    fn ensure_files_reports_a_bad_download() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [RemoteFile {
            name: "a.gz",
            size: 5,
            sha256: HELLO_SHA,
        }];
        let err = ensure_files(dir.path(), "u/", &files, |_, _, _| Ok(b"HELLO".to_vec()))
            .expect_err("bad bytes");
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn cache_root_prefers_the_env_override() {
        let user = Some(PathBuf::from("/home/u/.cache"));
        assert_eq!(
            cache_root(Some("/tmp/c".into()), user.clone()),
            Some(PathBuf::from("/tmp/c"))
        );
        assert_eq!(
            cache_root(Some("".into()), user.clone()),
            Some(PathBuf::from("/home/u/.cache/trainlab"))
        );
        assert_eq!(
            cache_root(None, user),
            Some(PathBuf::from("/home/u/.cache/trainlab"))
        );
        assert_eq!(cache_root(None, None), None);
    }

    #[test]
    fn digest_tables_are_well_formed() {
        for f in MNIST_FILES.iter().chain(&FASHION_FILES) {
            assert_eq!(f.sha256.len(), 64, "{}", f.name);
            assert!(
                f.sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
}
