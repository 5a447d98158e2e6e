//! The experiment being edited: its value, the file it came from, whether it has
//! unsaved changes, and the recent-files list.
//!
//! Contract: `open` and `save_to` never panic; a bad file leaves the current
//! experiment untouched and returns a message naming the file, line and column.
//! "Unsaved" means the experiment differs from what was last opened or saved.

use std::path::{Path, PathBuf};

use crate::spec::{Experiment, from_ron_str, load_file, to_ron_string};
use crate::util::atomic::write_atomic;

/// How many recent files are remembered.
const MAX_RECENT: usize = 8;

/// The experiment under edit.
#[derive(Debug, Clone)]
pub struct Document {
    /// The current (possibly unsaved) experiment.
    pub exp: Experiment,
    /// The file it was opened from or saved to.
    pub path: Option<PathBuf>,
    /// The experiment as last opened or saved.
    saved: Experiment,
    /// Most recent first.
    pub recent: Vec<PathBuf>,
}

impl Default for Document {
    fn default() -> Self {
        Self::new(Experiment::default(), None)
    }
}

impl Document {
    /// A document holding `exp`, considered saved.
    pub fn new(exp: Experiment, path: Option<PathBuf>) -> Self {
        Self {
            saved: exp.clone(),
            exp,
            path,
            recent: Vec::new(),
        }
    }

    /// Restores a document from persisted RON text (last session); falls back to the
    /// default experiment when the text no longer parses.
    pub fn restore(text: &str, path: Option<PathBuf>, recent: Vec<PathBuf>) -> Self {
        let mut doc = match from_ron_str(text, "<last session>") {
            Ok(exp) => {
                // Compare with the file on disk so the unsaved marker survives a restart.
                let saved = path
                    .as_deref()
                    .and_then(|p| load_file(p).ok())
                    .unwrap_or_else(|| exp.clone());
                Self {
                    exp,
                    saved,
                    path,
                    recent: Vec::new(),
                }
            }
            Err(_) => Self::default(),
        };
        doc.recent = recent;
        doc
    }

    /// Whether the experiment has changes not written to a file.
    pub fn is_dirty(&self) -> bool {
        self.exp != self.saved
    }

    /// Window title: file name, `*` when unsaved.
    pub fn title(&self) -> String {
        let name = self.path.as_deref().and_then(Path::file_name).map_or_else(
            || "untitled".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let star = if self.is_dirty() { "*" } else { "" };
        format!("{name}{star} — trainlab")
    }

    /// Reads, parses and validates `path`; on success it becomes the document.
    pub fn open(&mut self, path: &Path) -> anyhow::Result<()> {
        let exp = load_file(path)?;
        self.saved = exp.clone();
        self.exp = exp;
        self.path = Some(path.to_path_buf());
        self.remember(path);
        Ok(())
    }

    /// Writes the experiment as RON to `path` and makes it the document's file.
    pub fn save_to(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = to_ron_string(&self.exp);
        // Temp file + rename: a crash mid-save never leaves half a file.
        write_atomic(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot save {}: {e}", path.display()))?;
        self.saved = self.exp.clone();
        self.path = Some(path.to_path_buf());
        self.remember(path);
        Ok(())
    }

    /// Replaces the experiment (preset, example) without touching the file name;
    /// the change shows as unsaved.
    pub fn replace(&mut self, exp: Experiment) {
        self.exp = exp;
    }

    /// Takes `exp` as a new, unsaved document (no file yet), e.g. a study trial's
    /// experiment: saving asks where.
    pub fn adopt(&mut self, exp: Experiment) {
        self.saved = Experiment {
            name: String::new(),
            ..exp.clone()
        };
        self.exp = exp;
        self.path = None;
    }

    fn remember(&mut self, path: &Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_path_buf());
        self.recent.truncate(MAX_RECENT);
    }
}

/// The example experiments shipped in `experiments/` (next to the working directory),
/// sorted by name.
pub fn example_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_marker_follows_edits_and_saves() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut doc = Document::default();
        assert!(!doc.is_dirty());
        doc.exp.training.epochs = 3;
        assert!(doc.is_dirty());
        assert!(doc.title().contains('*'));
        let path = dir.path().join("a.ron");
        doc.save_to(&path).expect("save");
        assert!(!doc.is_dirty());
        assert_eq!(doc.recent, vec![path.clone()]);
        let mut other = Document::default();
        other.open(&path).expect("open");
        assert_eq!(other.exp.training.epochs, 3);
    }

    #[test]
    fn a_bad_file_keeps_the_current_experiment() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("bad.ron");
        std::fs::write(&path, "(name: \"x\", trainig: ())").expect("write");
        let mut doc = Document::default();
        let err = doc.open(&path).expect_err("must fail").to_string();
        assert!(err.contains("bad.ron:1:"), "{err}");
        assert_eq!(doc.exp, Experiment::default());
    }
}
