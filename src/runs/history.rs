//! Reading past runs back: the run history list and their recorded events.

use std::path::{Path, PathBuf};

use super::files;
use crate::events::{RunSummary, TrainEvent};

/// One past run found on disk.
#[derive(Debug, Clone)]
pub struct RunListing {
    /// The run folder.
    pub dir: PathBuf,
    /// Folder name (experiment name and start time).
    pub label: String,
    /// Final figures, when the run got that far.
    pub summary: Option<RunSummary>,
    /// Step of the newest checkpoint, if the run can be resumed or extended.
    pub checkpoint_step: Option<u64>,
}

/// Run folders directly under `root` (those with a metrics.jsonl), newest first.
pub fn list_runs(root: &Path) -> Vec<RunListing> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<(std::time::SystemTime, RunListing)> = entries
        .flatten()
        .filter(|e| e.path().join(files::METRICS).is_file())
        .map(|e| {
            let dir = e.path();
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            let summary = std::fs::read(dir.join(files::SUMMARY))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let label = e.file_name().to_string_lossy().into_owned();
            let checkpoint_step = super::checkpoints::latest(&dir).map(|(s, _)| s);
            (
                modified,
                RunListing {
                    dir,
                    label,
                    summary,
                    checkpoint_step,
                },
            )
        })
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.0));
    runs.into_iter().map(|(_, r)| r).collect()
}

/// Every event recorded in a run folder; a torn last line (killed run) is skipped.
pub fn read_events(dir: &Path) -> std::io::Result<Vec<TrainEvent>> {
    Ok(read_record(dir)?.0)
}

/// Every event recorded in a run folder, and a line for the user when some of
/// the file could not be read: a torn last line (a run killed while writing it,
/// or a copy cut short) or lines that are not events. Neither stops the reading.
pub fn read_record(dir: &Path) -> std::io::Result<(Vec<TrainEvent>, Option<String>)> {
    let path = dir.join(files::METRICS);
    let bytes = std::fs::read(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    let torn = !text.is_empty() && !text.ends_with('\n');
    let mut events = Vec::new();
    let mut bad = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(e) => events.push(e),
            Err(_) => bad += 1,
        }
    }
    let note = match (torn, bad) {
        (_, 0) => None,
        (true, 1) => Some(format!(
            "{} ends in an incomplete line (the run was killed while writing it); it is skipped",
            path.display()
        )),
        (_, n) => Some(format!(
            "{}: {n} line(s) could not be read and are skipped",
            path.display()
        )),
    };
    Ok((events, note))
}

/// The events recorded before `checkpoint` (a folder of `dir/checkpoints/`) was
/// taken: what a run resumed from it keeps of its record.
pub fn read_events_before(dir: &Path, checkpoint: &Path) -> std::io::Result<Vec<TrainEvent>> {
    let bytes = super::checkpoints::record_length(checkpoint)?;
    let text = std::fs::read(dir.join(files::METRICS))?;
    let end = (bytes as usize).min(text.len());
    Ok(parse_events(&String::from_utf8_lossy(&text[..end])))
}

fn parse_events(text: &str) -> Vec<TrainEvent> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_skipped_and_said() {
        let dir = tempfile::tempdir().expect("tmp");
        let note = TrainEvent::Note {
            step: 3,
            message: "hello".into(),
        };
        let mut text = serde_json::to_string(&note).expect("json");
        text.push('\n');
        std::fs::write(dir.path().join(files::METRICS), &text).expect("write");
        let (events, said) = read_record(dir.path()).expect("read");
        assert_eq!((events.len(), said), (1, None));
        text.push_str("{\"Note\":{\"step\":4,\"mess");
        std::fs::write(dir.path().join(files::METRICS), &text).expect("write");
        let (events, said) = read_record(dir.path()).expect("read");
        assert_eq!(events, vec![note]);
        assert!(said.is_some_and(|s| s.contains("incomplete line")));
    }
}
