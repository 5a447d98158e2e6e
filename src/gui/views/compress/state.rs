//! The Compress view's state: one finished run, its pruned variants (rows of
//! `compress.json`) and the weight histograms of the original and the selected
//! variant.
//!
//! Contract: every prune, fine-tune and measurement runs on one background
//! [`Job`] at a time (a request made while one runs waits its turn, the newest
//! replacing an older waiting one); `poll` never blocks. Variants go to
//! `runs_root/<run folder>-compressed/`, where the History lists them; the
//! original run is never written to. Rows from earlier sessions are read back
//! from that folder's `compress.json`, which this rewrites with every row it
//! knows after each job. Histograms are computed once per model, on load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::compress::{CompressPlan, Variant, compress};
use crate::gui::state::job::{Job, take_finished};
use crate::infer::load_saved_model;
use crate::runs::files;
use crate::train::prune::prunable;

/// Bins of each weight histogram.
pub const BINS: usize = 60;

/// A histogram of weights: `counts[i]` weights in `[lo + i*width, lo + (i+1)*width)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Width of each bin.
    pub width: f64,
    /// Weights per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// `values` in [`BINS`] bins over `[lo, hi]` (a degenerate range gets width 1).
    pub fn of(values: impl Iterator<Item = f64> + Clone, lo: f64, hi: f64) -> Self {
        let span = hi - lo;
        let width = if span.is_finite() && span > 0.0 {
            span / BINS as f64
        } else {
            1.0
        };
        let mut counts = vec![0u64; BINS];
        for v in values.filter(|v| v.is_finite()) {
            let i = (((v - lo) / width).floor().max(0.0) as usize).min(BINS - 1);
            counts[i] += 1;
        }
        Self { lo, width, counts }
    }

    /// Bin centres with their counts.
    pub fn bars(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (self.lo + (i as f64 + 0.5) * self.width, c))
    }
}

/// The prunable weights of one saved model, summarised.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeightHistograms {
    /// Nonzero weights by value.
    pub value: Histogram,
    /// Nonzero weights by magnitude.
    pub magnitude: Histogram,
    /// Weights that are exactly zero.
    pub zeros: u64,
    /// All prunable weights.
    pub total: u64,
}

impl WeightHistograms {
    /// Summarises `weights` (zeros are counted apart: they are what pruning made).
    pub fn of(weights: &[f32]) -> Self {
        let nonzero = weights.iter().filter(|w| **w != 0.0).map(|w| f64::from(*w));
        let max = nonzero
            .clone()
            .filter(|w| w.is_finite())
            .fold(0.0f64, |m, w| m.max(w.abs()));
        Self {
            value: Histogram::of(nonzero.clone(), -max, max),
            magnitude: Histogram::of(nonzero.clone().map(f64::abs), 0.0, max),
            zeros: (weights.len() - nonzero.count()) as u64,
            total: weights.len() as u64,
        }
    }
}

/// Reads the model in `dir` and summarises its prunable weights.
fn load_histograms(dir: &Path) -> anyhow::Result<WeightHistograms> {
    let saved = load_saved_model(dir)?;
    let mut all = Vec::new();
    for (_, var) in prunable(&saved.model, &saved.experiment.model) {
        let values: Vec<f32> = var
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        all.extend(values);
    }
    Ok(WeightHistograms::of(&all))
}

/// What the accuracy curve plots: test accuracy, or bits per token for
/// language models (where lower is better).
pub fn quality(v: &Variant) -> Option<f64> {
    v.test_accuracy.or(v.bits_per_token)
}

/// `known` with `new` folded in (a row of the same name is replaced), the
/// original first and the variants by fine-tuning, then sparsity.
pub fn merge(known: &[Variant], new: Vec<Variant>) -> Vec<Variant> {
    let mut rows: Vec<Variant> = known
        .iter()
        .filter(|k| !new.iter().any(|n| n.name == k.name))
        .cloned()
        .collect();
    rows.extend(new);
    rows.sort_by(|a, b| {
        let key = |v: &Variant| (v.name != "original", v.finetune_epochs);
        key(a).cmp(&key(b)).then(a.sparsity.total_cmp(&b.sparsity))
    });
    rows
}

/// The Compress view's state.
pub struct CompressState {
    /// The run being compressed.
    pub run: Option<PathBuf>,
    /// Where its variants go.
    pub out: PathBuf,
    /// The slider's sparsity.
    pub sparsity: f64,
    /// Fine-tuning epochs for the sweep.
    pub finetune_epochs: usize,
    /// Global or per-layer thresholds.
    pub scope: crate::spec::PruneScope,
    /// Whether the sweep also makes an int8 copy.
    pub int8: bool,
    /// The original and every variant made so far.
    pub rows: Vec<Variant>,
    /// The variant whose weights are compared with the original's (its name).
    pub selected: Option<String>,
    /// Histograms by magnitude (else by value).
    pub by_magnitude: bool,
    /// Errors for the banner (taken by the app).
    pub errors: Vec<String>,
    /// Set when a job wrote new variants (the app rescans the History and clears it).
    pub wrote_runs: bool,
    job: Option<Job<Vec<Variant>>>,
    waiting: Option<CompressPlan>,
    progress: Arc<Mutex<String>>,
    histograms: BTreeMap<PathBuf, WeightHistograms>,
    loading: Vec<(PathBuf, Job<WeightHistograms>)>,
}

impl Default for CompressState {
    fn default() -> Self {
        Self {
            run: None,
            out: PathBuf::new(),
            sparsity: 0.8,
            finetune_epochs: 0,
            scope: crate::spec::PruneScope::Global,
            int8: false,
            rows: Vec::new(),
            selected: None,
            by_magnitude: true,
            errors: Vec::new(),
            wrote_runs: false,
            job: None,
            waiting: None,
            progress: Arc::new(Mutex::new(String::new())),
            histograms: BTreeMap::new(),
            loading: Vec::new(),
        }
    }
}

/// Where the variants of the run in `run` go: `runs_root/<run folder>-compressed`.
pub fn out_dir(runs_root: &Path, run: &Path) -> PathBuf {
    let name = run
        .file_name()
        .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned());
    runs_root.join(format!("{name}-compressed"))
}

impl CompressState {
    /// Opens the run in `run` (its earlier variants are read back); an error
    /// (no trained model) goes to `errors` and leaves the previous run open.
    pub fn open(&mut self, run: &Path, runs_root: &Path, ctx: &egui::Context) {
        if !run.join(files::WEIGHTS).is_file() {
            self.errors.push(format!(
                "Cannot compress {}: it has no trained model ({}).",
                run.display(),
                files::WEIGHTS
            ));
            return;
        }
        if self.run.as_deref() == Some(run) {
            return;
        }
        let out = out_dir(runs_root, run);
        let known: Vec<Variant> = std::fs::read_to_string(out.join("compress.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| serde_json::from_value(v.get("variants")?.clone()).ok())
            .unwrap_or_default();
        *self = Self {
            run: Some(run.to_path_buf()),
            out,
            rows: merge(&[], known),
            sparsity: self.sparsity,
            finetune_epochs: self.finetune_epochs,
            scope: self.scope,
            int8: self.int8,
            by_magnitude: self.by_magnitude,
            ..Self::default()
        };
        self.selected = self
            .rows
            .iter()
            .find(|r| r.name != "original")
            .map(|r| r.name.clone());
        self.load_histograms(run, ctx);
    }

    /// Prunes and tests `plan` (after the job in progress, if any).
    pub fn request(&mut self, plan: CompressPlan, ctx: &egui::Context) {
        if self.run.is_none() {
            self.errors
                .push("Pick a run to compress first (History, compress).".into());
            return;
        }
        if self.job.is_some() {
            self.waiting = Some(plan);
        } else {
            self.start(plan, ctx);
        }
    }

    fn start(&mut self, plan: CompressPlan, ctx: &egui::Context) {
        let Some(run) = self.run.clone() else { return };
        let out = self.out.clone();
        let known = self.rows.clone();
        let progress = Arc::clone(&self.progress);
        if let Ok(mut p) = progress.lock() {
            *p = "loading the model".into();
        }
        let repaint = ctx.clone();
        self.job = Some(Job::spawn(
            "compress",
            move || repaint.request_repaint(),
            move || {
                let report = |m: String| {
                    if let Ok(mut p) = progress.lock() {
                        *p = m;
                    }
                };
                let rows = merge(&known, compress(&run, &plan, &out, &report)?);
                let json = serde_json::to_string_pretty(&serde_json::json!({ "variants": rows }))?;
                std::fs::write(out.join("compress.json"), json)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", out.join("compress.json").display()))?;
                Ok(rows)
            },
        ));
    }

    /// Whether a job is running, with what it is doing.
    pub fn busy(&self) -> Option<String> {
        self.job.as_ref()?;
        let doing = self.progress.lock().map(|p| p.clone()).unwrap_or_default();
        Some(match &self.waiting {
            Some(_) => format!("{doing} (then one more request)"),
            None => doing,
        })
    }

    /// Takes finished jobs; starts the waiting one; loads missing histograms.
    pub fn poll(&mut self, ctx: &egui::Context) {
        if let Some(outcome) = self.job.as_mut().and_then(Job::poll) {
            self.job = None;
            match outcome {
                Ok(rows) => {
                    self.rows = rows;
                    self.wrote_runs = true;
                    // Weights may have changed under the same name: read them afresh.
                    self.histograms
                        .retain(|d, _| Some(d.as_path()) == self.run.as_deref());
                    let chosen = self.selected.clone();
                    if chosen.is_none_or(|n| !self.rows.iter().any(|r| r.name == n)) {
                        self.selected = self
                            .rows
                            .iter()
                            .rfind(|r| r.name != "original")
                            .map(|r| r.name.clone());
                    }
                }
                Err(e) => self.errors.push(format!("Compress failed: {e}")),
            }
            if let Some(plan) = self.waiting.take() {
                self.start(plan, ctx);
            }
        }
        for (dir, outcome) in take_finished(&mut self.loading) {
            match outcome {
                Ok(h) => {
                    self.histograms.insert(dir, h);
                }
                Err(e) => self.errors.push(format!("Cannot read the weights: {e}")),
            }
        }
        if let Some(dir) = self.selected_row().map(|r| PathBuf::from(&r.dir)) {
            self.load_histograms(&dir, ctx);
        }
    }

    /// Starts reading `dir`'s histograms unless known or on the way.
    fn load_histograms(&mut self, dir: &Path, ctx: &egui::Context) {
        if self.histograms.contains_key(dir) || self.loading.iter().any(|(d, _)| d == dir) {
            return;
        }
        let path = dir.to_path_buf();
        let repaint = ctx.clone();
        let job = Job::spawn(
            "histograms",
            move || repaint.request_repaint(),
            move || load_histograms(&path),
        );
        self.loading.push((dir.to_path_buf(), job));
    }

    /// The selected variant's row.
    pub fn selected_row(&self) -> Option<&Variant> {
        let name = self.selected.as_ref()?;
        self.rows.iter().find(|r| &r.name == name)
    }

    /// Histograms of the model in `dir`, once read.
    pub fn histograms(&self, dir: &Path) -> Option<&WeightHistograms> {
        self.histograms.get(dir)
    }

    /// The quality-vs-sparsity curve for variants fine-tuned `finetune_epochs`
    /// epochs: the original at sparsity 0, then each pruned variant (not the
    /// int8 copy, which is in the table), by sparsity.
    pub fn curve(&self, finetune_epochs: usize) -> Vec<[f64; 2]> {
        let mut pts: Vec<[f64; 2]> = self
            .rows
            .iter()
            .filter(|r| r.name == "original" || (r.finetune_epochs == finetune_epochs && !r.int8))
            .filter_map(|r| {
                let x = if r.name == "original" {
                    0.0
                } else {
                    r.sparsity
                };
                Some([x, quality(r)?])
            })
            .collect();
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        pts
    }

    /// The fine-tuning epochs the variants were made with (each its own curve).
    pub fn finetune_groups(&self) -> Vec<usize> {
        let mut g: Vec<usize> = self
            .rows
            .iter()
            .filter(|r| r.name != "original" && !r.int8)
            .map(|r| r.finetune_epochs)
            .collect();
        g.sort_unstable();
        g.dedup();
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, sparsity: f64, ft: usize, acc: f64) -> Variant {
        Variant {
            name: name.into(),
            dir: format!("/x/{name}"),
            sparsity,
            finetune_epochs: ft,
            test_accuracy: Some(acc),
            bits_per_token: None,
            size_bytes: 100,
            sparse_bytes: 50,
            samples_per_sec_batch1: 1.0,
            samples_per_sec_batch64: 10.0,
            int8: false,
        }
    }

    #[test]
    fn merge_replaces_same_names_and_orders_original_first() {
        let known = vec![row("original", 0.0, 0, 0.9), row("s-0.9", 0.9, 0, 0.5)];
        let new = vec![
            row("original", 0.0, 0, 0.91),
            row("s-0.5", 0.5, 0, 0.88),
            row("s-0.9", 0.9, 0, 0.6),
            row("s-0.5-ft1", 0.5, 1, 0.9),
        ];
        let rows = merge(&known, new);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["original", "s-0.5", "s-0.9", "s-0.5-ft1"]);
        assert_eq!(rows[0].test_accuracy, Some(0.91), "the newer original wins");
        assert_eq!(rows[2].test_accuracy, Some(0.6));
    }

    #[test]
    fn curves_start_at_the_original() {
        let s = CompressState {
            rows: merge(
                &[],
                vec![
                    row("original", 0.01, 0, 0.9),
                    row("a", 0.8, 0, 0.7),
                    row("b", 0.8, 2, 0.85),
                ],
            ),
            ..CompressState::default()
        };
        assert_eq!(s.curve(0), vec![[0.0, 0.9], [0.8, 0.7]]);
        assert_eq!(s.curve(2), vec![[0.0, 0.9], [0.8, 0.85]]);
        assert_eq!(s.finetune_groups(), vec![0, 2]);
    }

    #[test]
    fn histograms_count_zeros_apart_and_survive_odd_input() {
        let h = WeightHistograms::of(&[0.0, 0.5, -0.5, 1.0, 0.0, f32::NAN]);
        assert_eq!(h.zeros, 2);
        assert_eq!(h.total, 6);
        assert_eq!(h.value.counts.iter().sum::<u64>(), 3, "NaN is left out");
        assert_eq!(h.magnitude.counts.iter().sum::<u64>(), 3);
        let empty = WeightHistograms::of(&[]);
        assert_eq!(empty.value.counts.iter().sum::<u64>(), 0);
        let zeros = WeightHistograms::of(&[0.0; 4]);
        assert_eq!(zeros.zeros, 4);
    }
}
