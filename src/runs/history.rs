//! Reading past runs back: the run history list and their recorded events.

use std::path::{Path, PathBuf};

use super::files;
use crate::train::{RunSummary, TrainEvent};

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
    let text = std::fs::read_to_string(dir.join(files::METRICS))?;
    Ok(parse_events(&text))
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
