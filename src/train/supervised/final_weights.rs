//! The run's final weights (`model.safetensors`), written on a thread of their own
//! while the test pass runs.
//!
//! Contract: the file is the one `Model::save` writes (the same tensors, written
//! to a temporary name, synced and renamed), and a failure reads the same:
//! [`WeightsWrite::finish`] returns `Model::save`'s error, which the engine reports
//! where it used to save. Models off the CPU (and a system with no thread to
//! give) are saved on the calling thread, by `Model::save` itself. The weights
//! must not change between `start` and `finish`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::Tensor;

use crate::model::Model;

/// A write of the final weights, under way or done.
pub(crate) struct WeightsWrite {
    path: PathBuf,
    job: Job,
}

enum Job {
    Thread(JoinHandle<candle_core::Result<()>>),
    Done(candle_core::Result<()>),
}

impl WeightsWrite {
    /// Starts writing `model`'s weights to `path`.
    pub(crate) fn start(model: &Model, path: PathBuf) -> Self {
        let state = model.state();
        // The thread touches no device: tensors elsewhere are saved here.
        if !state.values().all(|t| t.device().is_cpu()) {
            let done = model.save(&path);
            return Self {
                path,
                job: Job::Done(done),
            };
        }
        let state = Arc::new(state);
        let (to, tensors) = (path.clone(), Arc::clone(&state));
        let job = match std::thread::Builder::new()
            .name("weights writer".into())
            .spawn(move || write(&to, &tensors))
        {
            Ok(thread) => Job::Thread(thread),
            Err(_) => Job::Done(write(&path, &state)),
        };
        Self { path, job }
    }

    /// Waits for the write; on failure, the path and `Model::save`'s error.
    pub(crate) fn finish(mut self) -> Result<(), (PathBuf, candle_core::Error)> {
        let done = match std::mem::replace(&mut self.job, Job::Done(Ok(()))) {
            Job::Thread(thread) => thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Job::Done(done) => done,
        };
        done.map_err(|e| (std::mem::take(&mut self.path), e))
    }
}

impl Drop for WeightsWrite {
    /// A run that fails before `finish` still leaves no write going on behind it.
    fn drop(&mut self) {
        if let Job::Thread(thread) = std::mem::replace(&mut self.job, Job::Done(Ok(()))) {
            let _ = thread.join();
        }
    }
}

/// What `Model::save` does with the model's state.
fn write(path: &Path, state: &HashMap<String, Tensor>) -> candle_core::Result<()> {
    crate::util::atomic::write_safetensors(path, state).map_err(candle_core::Error::wrap)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::spec::LayerSpec;

    fn model() -> Model {
        let layers = [LayerSpec::Linear { out: 5 }, LayerSpec::ReLU];
        Model::build(&layers, &[4], 7, &Device::Cpu).expect("model")
    }

    #[test]
    fn writes_the_file_model_save_writes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let m = model();
        let (ours, theirs) = (tmp.path().join("a"), tmp.path().join("b"));
        let w = WeightsWrite::start(&m, ours.clone());
        assert!(matches!(w.job, Job::Thread(_)), "written on a thread");
        w.finish().expect("written");
        m.save(&theirs).expect("saved");
        let bytes = std::fs::read(&ours).expect("read");
        assert!(!bytes.is_empty());
        assert_eq!(bytes, std::fs::read(&theirs).expect("read"));
    }

    #[test]
    fn a_failed_write_says_what_model_save_says() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let m = model();
        let path = tmp.path().join("no such folder").join("model.safetensors");
        let (at, e) = WeightsWrite::start(&m, path.clone())
            .finish()
            .expect_err("no folder to write into");
        assert_eq!(at, path);
        let direct = m.save(&path).expect_err("no folder");
        // What the run reports (a backtrace, when enabled, follows on other lines).
        let said = |e: &candle_core::Error| {
            let fault = crate::runs::WriteFault::text("the model", &path, e).to_string();
            fault.lines().next().map(str::to_string)
        };
        assert_eq!(said(&e), said(&direct));
        assert!(said(&e).is_some_and(|s| s.contains("no such file")), "{e}");
        assert!(!path.exists());
    }
}
