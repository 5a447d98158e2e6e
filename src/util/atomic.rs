//! Atomic file writes: write to a temporary name in the same folder, sync, then
//! rename, so a crash never leaves a half-written file under the real name.
//!
//! Contract: every file is created with the mode the user's umask gives a new
//! file (0666 minus the umask, like any other program's files), weight files
//! included; a failed write removes its temporary file and leaves the real name
//! as it was. [`probe_writable`] says before any work starts whether a folder can
//! be written at all, and [`os_words`] turns an I/O error into the words a
//! message quotes ("no space left on device").

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_name(path);
    let result = (|| {
        // File::create asks for 0666; the kernel takes the umask off.
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `tensors` (candle's, or any the safetensors library can view) as a
/// safetensors file at `path` atomically. (The safetensors library's own writer
/// goes through a private temporary file of mode 0600, which others on a shared
/// filesystem could not read.) Generic, so that util/ needs no candle and spec/
/// may use it.
pub fn write_safetensors<'a, T: 'a>(
    path: &Path,
    tensors: &'a HashMap<String, T>,
) -> std::io::Result<()>
where
    &'a T: safetensors::View,
{
    let bytes = safetensors::tensor::serialize(tensors, None).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

/// The temporary sibling name used while `path` is being written: unique to this
/// process and this call, so threads writing the same file never share one.
pub fn temp_name(path: &Path) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.tmp{}.{n}", std::process::id()))
}

/// Whether `name` is one of [`temp_name`]'s (a leftover of a killed process).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp")
}

/// An I/O error in the words a message quotes: the system's description without
/// its number, starting in lower case ("no space left on device").
pub fn os_words(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        // Keep acronyms ("I/O error") as they are.
        Some(c) if chars.clone().next().is_some_and(char::is_lowercase) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => text.to_string(),
    }
}

/// Why a folder cannot be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwritable {
    /// The folder (or the part of its path that could not be made).
    pub path: PathBuf,
    /// What went wrong, in words.
    pub reason: String,
    /// True when the disk (or quota) is full: an I/O failure, not bad input.
    pub no_space: bool,
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fix = if self.no_space {
            "free some space there (or choose another folder) and try again"
        } else {
            "choose another folder or make this one writable"
        };
        write!(
            f,
            "cannot write to {}: {}; {fix}",
            self.path.display(),
            self.reason
        )
    }
}

/// Checks that files can be written in `dir` before any work starts, touching
/// nothing: writes, syncs and removes one small probe file in `dir`, or in its
/// nearest existing ancestor when `dir` is still to be made (a path through a
/// file, or a folder that cannot be written, is refused either way).
pub fn probe_writable(dir: &Path) -> Result<(), Unwritable> {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    if !at.is_dir() {
        return Err(Unwritable {
            path: at.to_path_buf(),
            reason: "it is a file, not a folder".into(),
            no_space: false,
        });
    }
    let probe = at.join(format!(".trainlab-probe.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&probe)?;
        // One byte needs a whole block: a full disk says so here.
        f.write_all(b"x")?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    result.map_err(|e| Unwritable {
        path: at.to_path_buf(),
        reason: os_words(&e),
        no_space: is_no_space(&e),
    })
}

/// Whether `e` means the disk or the user's quota is full.
pub fn is_no_space(e: &std::io::Error) -> bool {
    // ENOSPC 28, EDQUOT 122 on Linux.
    matches!(e.raw_os_error(), Some(28 | 122))
        || e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("replace");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1, "no temp file left behind");
    }

    #[test]
    fn failure_leaves_nothing() {
        let p = Path::new("/no/such/dir/a.json");
        assert!(write_atomic(p, b"x").is_err());
    }

    /// Weight files get the same mode as any file this process creates (the
    /// safetensors library alone would make them 0600).
    #[test]
    fn weight_files_honour_the_umask_like_other_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).expect("create");
        let bytes: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &bytes)
            .expect("tensor");
        let weights = dir.path().join("model.safetensors");
        write_safetensors(&weights, &HashMap::from([("w".to_string(), t)])).expect("save");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&weights), mode(&plain), "weights vs a plain new file");
        let file = std::fs::read(&weights).expect("read");
        let back = safetensors::SafeTensors::deserialize(&file).expect("load");
        assert_eq!(back.tensor("w").expect("w").data(), bytes.as_slice());
    }

    #[test]
    fn os_words_drop_the_number_and_the_capital() {
        let e = std::io::Error::from_raw_os_error(28);
        assert_eq!(os_words(&e), "no space left on device");
        let e = std::io::Error::from_raw_os_error(30);
        assert_eq!(os_words(&e), "read-only file system");
        assert_eq!(os_words(&"I/O error"), "I/O error");
        assert!(is_no_space(&std::io::Error::from_raw_os_error(28)));
    }

    #[test]
    fn probe_refuses_a_file_and_a_folder_under_a_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        assert!(probe_writable(&file).is_err());
        let under = probe_writable(&file.join("run")).expect_err("under a file");
        assert!(!under.no_space, "{under}");
        let fresh = dir.path().join("a/b");
        probe_writable(&fresh).expect("writable");
        assert!(!dir.path().join("a").exists(), "nothing made");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
