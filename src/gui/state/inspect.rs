//! What the "understand the model" views look at: the trained model of the last
//! finished run (loaded back from its folder) with its verdict on the test set,
//! and — while a run trains — answers from the live model through probes.
//!
//! Contract: loading happens on a background [`Job`]; views read the results and
//! queue [`Probe`]s, which the app sends to the live run ([`Inspector::take_probes`])
//! and whose answers come back through [`Inspector::on_answer`]. Answers to an
//! older canvas drawing are ignored (ids), so the bars always match the ink.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::job::Job;
use crate::events::{Probe, ProbeAnswer};
use crate::infer::{Analysis, InferError, Predictor, latest_trained_run};
use crate::spec::Experiment;

/// How often the live model is asked again while the canvas or weights are shown.
const LIVE_REFRESH: Duration = Duration::from_millis(500);

/// Probabilities shown next to the canvas, and which model gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// One per class.
    pub probabilities: Vec<f32>,
    /// "live model, step 1200" or the run folder name.
    pub source: String,
}

/// A weight tensor to draw: plain data the Weights view reads (its textures,
/// the view's own state, are `views::weights::WeightsState`).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    /// Parameter name.
    pub name: String,
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
    /// Where it came from (live step or run).
    pub source: String,
}

type Loaded = (Predictor, Result<Analysis, InferError>);

/// State of the trained-model views.
#[derive(Default)]
pub struct Inspector {
    /// The model of the last finished (or chosen) run.
    pub predictor: Option<Predictor>,
    /// Its verdict on every test image.
    pub analysis: Option<Analysis>,
    /// Why the analysis is missing, when it failed.
    pub analysis_error: Option<String>,
    loading: Option<Job<Loaded>>,
    /// The drawing the models are asked about, as model input (28x28 grey,
    /// prepared like MNIST); None while the Draw tab's canvas is empty.
    pub ink: Option<Vec<u8>>,
    /// The latest probabilities for the canvas.
    pub verdict: Option<Verdict>,
    /// First-layer weights from the live run (newest snapshot).
    pub live_weights: Option<WeightTensor>,
    /// First-layer weights of the loaded model.
    pub trained_weights: Option<WeightTensor>,
    /// Bumped whenever a new model is loaded (image caches key on it).
    pub generation: u64,
    outbox: Vec<Probe>,
    next_id: u64,
    awaiting: Option<u64>,
    last_classify: Option<Instant>,
    last_weights: Option<Instant>,
}

impl Inspector {
    /// Whether a model is being loaded.
    pub fn is_loading(&self) -> bool {
        self.loading.as_ref().is_some_and(Job::is_pending)
    }

    /// Loads the newest run under `root` that saved weights (at startup).
    pub fn load_latest(&mut self, root: &Path, ctx: Option<&egui::Context>) {
        if let Some(dir) = latest_trained_run(root) {
            self.spawn(dir, None, ctx);
        }
    }

    /// Loads the weights of `run_dir`, built from `exp`.
    pub fn load_run(&mut self, run_dir: &Path, exp: Experiment, ctx: &egui::Context) {
        // Only image classifiers have views here (mazes have their own tab).
        if !matches!(exp.dataset, crate::spec::DatasetSpec::Images(_)) {
            return;
        }
        self.spawn(run_dir.to_path_buf(), Some(exp), Some(ctx));
    }

    fn spawn(&mut self, dir: PathBuf, exp: Option<Experiment>, ctx: Option<&egui::Context>) {
        let ctx = ctx.cloned();
        let repaint = move || {
            if let Some(c) = &ctx {
                c.request_repaint();
            }
        };
        self.loading = Some(Job::spawn("load-model", repaint, move || {
            let predictor = match exp {
                Some(exp) => Predictor::load_with(&dir, exp)?,
                None => Predictor::load(&dir)?,
            };
            let analysis = Analysis::run(&predictor);
            Ok((predictor, analysis))
        }));
    }

    /// Takes a finished load; errors go to `errors`.
    pub fn poll(&mut self, _ctx: &egui::Context, errors: &mut Vec<String>) {
        let Some(job) = &mut self.loading else { return };
        match job.poll() {
            None => {}
            Some(Ok((predictor, analysis))) => {
                self.loading = None;
                match analysis {
                    Ok(a) => {
                        self.analysis = Some(a);
                        self.analysis_error = None;
                    }
                    Err(e) => {
                        self.analysis = None;
                        self.analysis_error = Some(e.to_string());
                    }
                }
                self.trained_weights = weights_of(&predictor);
                self.generation += 1;
                self.predictor = Some(predictor);
                self.classify_offline();
            }
            Some(Err(e)) => {
                self.loading = None;
                errors.push(format!("Could not load the trained model: {e}"));
            }
        }
    }

    /// The canvas ink changed to `ink` (None: wiped): ask the live model, or the
    /// loaded one right away.
    pub fn canvas_changed(&mut self, ink: Option<Vec<u8>>, live: bool) {
        self.ink = ink;
        if self.ink.is_none() {
            self.verdict = None;
            self.awaiting = None;
        } else if live {
            self.ask_live_classify();
        } else {
            self.classify_offline();
        }
    }

    fn ask_live_classify(&mut self) {
        let Some(pixels) = self.ink.clone() else {
            return;
        };
        self.next_id += 1;
        self.awaiting = Some(self.next_id);
        self.last_classify = Some(Instant::now());
        self.outbox.push(Probe::Classify {
            id: self.next_id,
            pixels,
        });
    }

    fn classify_offline(&mut self) {
        let (Some(p), Some(ink)) = (&self.predictor, &self.ink) else {
            return;
        };
        let source = p.run_dir.file_name().map_or_else(String::new, |n| {
            format!("trained run {}", n.to_string_lossy())
        });
        self.verdict = match p.probabilities(ink, 1) {
            Ok(mut v) => v.pop().map(|probabilities| Verdict {
                probabilities,
                source,
            }),
            Err(_) => None,
        };
    }

    /// Called every frame while a run is live with the open views: keeps the live
    /// answers fresh as the model learns.
    pub fn refresh_live(&mut self, canvas_shown: bool, weights_shown: bool) {
        let due = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= LIVE_REFRESH);
        if canvas_shown && self.ink.is_some() && due(self.last_classify) {
            self.ask_live_classify();
        }
        if weights_shown && due(self.last_weights) {
            self.last_weights = Some(Instant::now());
            self.outbox.push(Probe::FirstLayer);
        }
    }

    /// Probes waiting to be sent to the live run.
    pub fn take_probes(&mut self) -> Vec<Probe> {
        std::mem::take(&mut self.outbox)
    }

    /// An answer from the live run.
    pub fn on_answer(&mut self, answer: &ProbeAnswer) {
        match answer {
            ProbeAnswer::Classified {
                id,
                step,
                probabilities,
            } => {
                if self.awaiting == Some(*id) && self.ink.is_some() {
                    self.verdict = Some(Verdict {
                        probabilities: probabilities.clone(),
                        source: format!("live model at step {step}"),
                    });
                }
            }
            ProbeAnswer::FirstLayer {
                step,
                name,
                shape,
                values,
            } => {
                self.live_weights = Some(WeightTensor {
                    name: name.clone(),
                    shape: shape.clone(),
                    values: values.clone(),
                    source: format!("live model at step {step}"),
                });
            }
            ProbeAnswer::Unavailable { .. }
            | ProbeAnswer::Generated { .. }
            | ProbeAnswer::Field(_)
            | ProbeAnswer::Projected { .. }
            | ProbeAnswer::Attributed { .. } => {}
        }
    }
}

/// The first trainable tensor of `p`, for the weights view.
fn weights_of(p: &Predictor) -> Option<WeightTensor> {
    let (name, var) = p.params().first()?;
    let values = var.as_tensor().flatten_all().ok()?.to_vec1::<f32>().ok()?;
    Some(WeightTensor {
        name: name.clone(),
        shape: var.as_tensor().dims().to_vec(),
        values,
        source: p.run_dir.file_name().map_or_else(String::new, |n| {
            format!("trained run {}", n.to_string_lossy())
        }),
    })
}
