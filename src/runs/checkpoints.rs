//! Checkpoints on disk: `checkpoints/step-<N>/` in a run folder, each holding
//! `model.safetensors` (the run's weights, same names as the final weight file),
//! `training.safetensors` (the other tensors training reads: optimizer moments,
//! a DQN's target network and replay buffer; absent when there are none) and
//! `state.json` (everything else a loop needs to continue exactly).
//!
//! Contract: a checkpoint folder exists under its real name only once every file
//! in it is complete (written into a hidden temporary folder, synced, then the
//! folder is renamed), so the newest `step-<N>` is always whole. What is kept is
//! decided by the caller (`prune`, after a newer checkpoint is whole; `remove_all`,
//! once a run has ended and will not be continued), never here on write; a checkpoint that cannot be written removes its temporary folder and
//! leaves the older ones as they were. Files get the mode the user's umask gives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::RunsError;
use crate::util::atomic::{write_atomic, write_safetensors};

/// The checkpoints folder inside a run folder.
pub const DIR: &str = "checkpoints";
/// The weights of a checkpoint.
pub const MODEL: &str = "model.safetensors";
/// The other tensors of a checkpoint (optimizer moments, DQN target and replay).
pub const TRAINING: &str = "training.safetensors";
/// The loop's position, random streams and bookkeeping.
pub const STATE: &str = "state.json";

/// Tensors by name, as safetensors files hold them.
pub type NamedTensors = HashMap<String, Tensor>;

/// What goes into one checkpoint.
pub struct CheckpointFiles<'a> {
    /// Model tensors by name.
    pub model: &'a NamedTensors,
    /// Other training tensors by name (empty: no file).
    pub training: &'a NamedTensors,
    /// The serialised loop state.
    pub state_json: &'a [u8],
}

/// One checkpoint read back (its `state.json` is returned beside it, parsed).
pub struct LoadedCheckpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// Model tensors by name.
    pub model: NamedTensors,
    /// Other training tensors by name.
    pub training: NamedTensors,
}

/// Folder name of the checkpoint after `step` steps (zero-padded so names sort).
pub fn name_for(step: u64) -> String {
    format!("step-{step:010}")
}

fn step_of(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?.parse().ok()
}

/// Writes a checkpoint of `run_dir` at `step`. A whole checkpoint of the same
/// step already there is kept as it is (same weights, same position; its record
/// length is a prefix of the record, so a resume from it stays exact): replacing
/// it would leave a moment with no checkpoint of that step on disk.
pub fn write(run_dir: &Path, step: u64, files: &CheckpointFiles<'_>) -> std::io::Result<PathBuf> {
    let root = run_dir.join(DIR);
    std::fs::create_dir_all(&root)?;
    let final_dir = root.join(name_for(step));
    if final_dir.is_dir() {
        return Ok(final_dir);
    }
    // Half-written folders of killed processes only take space (a full disk is
    // often why they were left).
    remove_leftovers(&root);
    let tmp = root.join(format!(".{}.tmp{}", name_for(step), std::process::id()));
    let result = (|| {
        std::fs::create_dir(&tmp)?;
        write_safetensors(&tmp.join(MODEL), files.model)?;
        if !files.training.is_empty() {
            write_safetensors(&tmp.join(TRAINING), files.training)?;
        }
        write_atomic(&tmp.join(STATE), files.state_json)?;
        std::fs::rename(&tmp, &final_dir)?;
        // The rename itself reaches the disk with the folder's own sync.
        if let Ok(d) = std::fs::File::open(&root) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| final_dir)
}

/// Removes hidden temporary folders and files in a checkpoints folder.
fn remove_leftovers(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            let path = e.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// The complete checkpoints of `run_dir`, oldest first, as (step, folder).
pub fn list(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let step = step_of(name.to_str()?)?;
            e.path().is_dir().then(|| (step, e.path()))
        })
        .collect();
    out.sort_by_key(|(s, _)| *s);
    out
}

/// The newest checkpoint of `run_dir`, if any.
pub fn latest(run_dir: &Path) -> Option<(u64, PathBuf)> {
    list(run_dir).pop()
}

/// Deletes all but the newest `keep` checkpoints; returns the steps deleted.
pub fn prune(run_dir: &Path, keep: usize) -> std::io::Result<Vec<u64>> {
    let all = list(run_dir);
    let excess = all.len().saturating_sub(keep.max(1));
    let mut deleted = Vec::new();
    for (step, dir) in all.into_iter().take(excess) {
        // Out of sight first: a kill halfway through deleting must not leave a
        // folder that looks like a checkpoint but misses files.
        let aside = dir.with_file_name(format!(".{}.old{}", name_for(step), std::process::id()));
        std::fs::rename(&dir, &aside)?;
        std::fs::remove_dir_all(&aside)?;
        deleted.push(step);
    }
    Ok(deleted)
}

/// Deletes every checkpoint of `run_dir` and then its empty checkpoints folder
/// (a run that has ended and will not be continued: its final weights and
/// summary are what stays). Each is moved out of sight before it is deleted, as
/// in [`prune`]. Returns the steps deleted; none there is not an error.
pub fn remove_all(run_dir: &Path) -> std::io::Result<Vec<u64>> {
    let root = run_dir.join(DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut deleted = Vec::new();
    for (step, dir) in list(run_dir) {
        let aside = dir.with_file_name(format!(".{}.old{}", name_for(step), std::process::id()));
        std::fs::rename(&dir, &aside)?;
        std::fs::remove_dir_all(&aside)?;
        deleted.push(step);
    }
    remove_leftovers(&root);
    // Another process may have started a checkpoint here meanwhile: then the
    // folder is not empty and stays.
    let _ = std::fs::remove_dir(&root);
    Ok(deleted)
}

/// How many bytes of the run's `metrics.jsonl` were recorded when the checkpoint
/// in `dir` was taken (its `state.json` says so).
pub fn record_length(dir: &Path) -> std::io::Result<u64> {
    let path = dir.join(STATE);
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    state["metrics_bytes"]
        .as_u64()
        .ok_or_else(|| std::io::Error::other(format!("{} has no metrics_bytes", path.display())))
}

/// Reads the checkpoint in `dir` onto `device` and parses its state as `S`;
/// errors name the file and what is wrong with it.
pub fn read<S: serde::de::DeserializeOwned>(
    dir: &Path,
    device: &Device,
) -> Result<(LoadedCheckpoint, S), RunsError> {
    let state_path = dir.join(STATE);
    let state_json = std::fs::read(&state_path).map_err(|source| RunsError::StateUnreadable {
        path: state_path.clone(),
        source,
    })?;
    let state = serde_json::from_slice(&state_json).map_err(|source| RunsError::StateDamaged {
        path: state_path.clone(),
        source,
    })?;
    let load = |path: PathBuf| {
        candle_core::safetensors::load(&path, device)
            .map_err(|source| RunsError::TensorsDamaged { path, source })
    };
    let model = load(dir.join(MODEL))?;
    let training_path = dir.join(TRAINING);
    let training = if training_path.is_file() {
        load(training_path)?
    } else {
        HashMap::new()
    };
    let loaded = LoadedCheckpoint {
        dir: dir.to_path_buf(),
        model,
        training,
    };
    Ok((loaded, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_at(dir: &Path, step: u64) -> PathBuf {
        let t = Tensor::new(&[1.0f32, 2.0, 3.0], &Device::Cpu).expect("tensor");
        let model = HashMap::from([("w".to_string(), t)]);
        let training = HashMap::new();
        write(
            dir,
            step,
            &CheckpointFiles {
                model: &model,
                training: &training,
                state_json: format!("{{\"step\":{step}}}").as_bytes(),
            },
        )
        .expect("write")
    }

    #[test]
    fn written_checkpoints_list_in_order_and_prune_keeps_the_newest() {
        let run = tempfile::tempdir().expect("tmp");
        for step in [30, 5, 120] {
            files_at(run.path(), step);
        }
        let steps: Vec<u64> = list(run.path()).iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, vec![5, 30, 120]);
        assert_eq!(prune(run.path(), 2).expect("prune"), vec![5]);
        assert_eq!(latest(run.path()).map(|(s, _)| s), Some(120));
        // Same step again keeps the whole one, no temporary folder is left.
        files_at(run.path(), 120);
        let names: Vec<String> = std::fs::read_dir(run.path().join(DIR))
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let (back, state): (_, serde_json::Value) =
            read(&run.path().join(DIR).join(name_for(120)), &Device::Cpu).expect("read");
        assert_eq!(state["step"], 120);
        assert_eq!(
            back.model["w"].to_vec1::<f32>().expect("vec"),
            vec![1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn remove_all_leaves_no_checkpoint_and_no_folder() {
        let run = tempfile::tempdir().expect("tmp");
        assert!(remove_all(run.path()).expect("none").is_empty());
        for step in [3, 6] {
            files_at(run.path(), step);
        }
        assert_eq!(remove_all(run.path()).expect("remove"), vec![3, 6]);
        assert!(list(run.path()).is_empty());
        assert!(!run.path().join(DIR).exists());
    }

    #[test]
    fn a_truncated_weight_file_is_named_in_the_error() {
        let run = tempfile::tempdir().expect("tmp");
        let dir = files_at(run.path(), 7);
        let path = dir.join(MODEL);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        let err = read::<serde_json::Value>(&dir, &Device::Cpu)
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains("model.safetensors"), "{err}");
        assert!(list(Path::new("/no/such/run")).is_empty());
    }
}
