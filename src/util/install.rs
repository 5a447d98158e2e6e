//! Where an installed trainlab finds its bundled files. The .deb (`cargo deb`,
//! see README "Install") puts the example experiments, the lessons and the data
//! samples under [`SHARE_DIR`]; a source checkout keeps them in `experiments/`
//! and `assets/`.
//!
//! Contract: a folder in the working directory (or the source tree the binary
//! was built from, for assets) wins over the installed one, so running from a
//! checkout always shows the checkout's files.

use std::path::{Path, PathBuf};

/// The installed data folder: `experiments/` (with `lessons/` and `studies/`)
/// and `assets/` (`mnist/`, `words/`).
pub const SHARE_DIR: &str = "/usr/share/trainlab";

/// The installed assets folder, `/usr/share/trainlab/assets`.
pub fn share_assets() -> PathBuf {
    Path::new(SHARE_DIR).join("assets")
}

/// The example experiments: `experiments/` in the working directory when there
/// is one, else the installed `/usr/share/trainlab/experiments` when that
/// exists, else `experiments` (which lists nothing).
pub fn experiments_dir() -> PathBuf {
    pick_experiments(
        Path::new("experiments"),
        &Path::new(SHARE_DIR).join("experiments"),
    )
}

/// `local` when it is a folder, else `installed` when that is, else `local`.
fn pick_experiments(local: &Path, installed: &Path) -> PathBuf {
    if !local.is_dir() && installed.is_dir() {
        installed.to_path_buf()
    } else {
        local.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_folder_wins_over_the_installed_one() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (local, installed) = (tmp.path().join("local"), tmp.path().join("share"));
        // Neither exists: the local name, which lists nothing.
        assert_eq!(pick_experiments(&local, &installed), local);
        std::fs::create_dir(&installed).expect("mkdir");
        assert_eq!(pick_experiments(&local, &installed), installed);
        std::fs::create_dir(&local).expect("mkdir");
        assert_eq!(pick_experiments(&local, &installed), local);
    }
}
