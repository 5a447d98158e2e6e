//! Working on a study from the GUI: creates the study folder (when starting a new
//! study) and runs `study::work` on a background thread, keeping its progress lines.
//!
//! Contract: never blocks the frame; `poll` yields the outcome once (a line saying
//! how the trials ended, or the error). The folder is the shared state: the Study
//! view reads it from disk like any other study, so it also shows what other
//! processes working on the same folder do.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::gui::state::job::Job;
use crate::spec::LoadedStudy;

/// How many progress lines are kept.
const KEEP: usize = 200;

/// A study being worked on by this process.
pub struct StudyRunner {
    lines: Arc<Mutex<Vec<String>>>,
    job: Job<String>,
}

impl StudyRunner {
    /// Creates `dir` for `study` (None: continue the study already there) and works
    /// on it until nothing is left.
    pub fn start(
        study: Option<LoadedStudy>,
        dir: &Path,
        repaint: impl Fn() + Send + Sync + Clone + 'static,
    ) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let folder = dir.to_path_buf();
        let wake = repaint.clone();
        let job = Job::spawn("study", repaint, move || {
            if let Some(s) = &study {
                crate::study::create(s, &folder)?;
            }
            let progress = move |line: String| {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                    let extra = l.len().saturating_sub(KEEP);
                    l.drain(..extra);
                }
                wake();
            };
            let trials = crate::study::work(&folder, None, &progress)?;
            let count = |name: &str| trials.iter().filter(|t| t.state.name() == name).count();
            Ok(format!(
                "{} trials: {} finished, {} stopped early, {} failed",
                trials.len(),
                count("finished"),
                count("stopped"),
                count("failed")
            ))
        });
        Self { lines, job }
    }

    /// The outcome, once (then never again); the error is the text shown
    /// (boundary: [`Job::poll`]).
    pub fn poll(&mut self) -> Option<Result<String, String>> {
        self.job.poll()
    }

    /// Whether the workers are still going.
    pub fn is_running(&self) -> bool {
        self.job.is_pending()
    }

    /// The newest progress lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
