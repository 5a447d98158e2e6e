//! `trainlab compress`: a trained run made smaller by magnitude pruning, one
//! variant per sparsity, each optionally fine-tuned with its mask held. Every
//! variant is a normal run (its own folder, started from the run's weights with
//! `training.prune`), so it loads like any run; this adds what the table needs:
//! test figures, size on disk, and inference speed at batch 1 and 64.
//!
//! Contract: the original run is never written to; variants go to `out`.

mod error;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

pub use error::CompressError;

use crate::events::{RunSummary, TrainEvent};
use crate::infer::{SavedModel, load_saved_model};
use crate::model::Mode;
use crate::runs::files;
use crate::spec::{DatasetSpec, LayerSpec, PruneScope, PruneSpec};
use crate::train::prune::prunable;
use crate::train::{StartOptions, start};

/// What to make.
#[derive(Debug, Clone)]
pub struct CompressPlan {
    /// Target sparsities, each in [0, 1).
    pub sparsities: Vec<f64>,
    /// Epochs of fine-tuning after pruning (0: none).
    pub finetune_epochs: usize,
    /// Global or per-layer thresholds.
    pub scope: PruneScope,
    /// Also an int8 quantised copy of the original (image MLPs and CNNs).
    pub int8: bool,
}

/// One row of `compress.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// "original", or e.g. "sparsity-0.80-ft2".
    pub name: String,
    /// Its run folder.
    pub dir: String,
    /// Share of the prunable weights that are zero.
    pub sparsity: f64,
    /// Epochs of fine-tuning with the mask held.
    pub finetune_epochs: usize,
    /// Test accuracy, when the run has one.
    pub test_accuracy: Option<f64>,
    /// Language models: bits per token.
    pub bits_per_token: Option<f64>,
    /// `model.safetensors` on disk (dense: zeros take their room).
    pub size_bytes: u64,
    /// The same weights with each prunable tensor stored as its nonzero values
    /// and their u32 positions (what a sparse format would take).
    pub sparse_bytes: u64,
    /// Forward passes at batch 1, samples per second (this machine, CPU).
    pub samples_per_sec_batch1: f64,
    /// The same at batch 64.
    pub samples_per_sec_batch64: f64,
    /// Whether the weights are int8 (with f32 scales).
    #[serde(default)]
    pub int8: bool,
}

/// Makes the variants of `run_dir` in `out` (created), the original first.
pub fn compress(
    run_dir: &Path,
    plan: &CompressPlan,
    out: &Path,
    progress: &dyn Fn(String),
) -> Result<Vec<Variant>, CompressError> {
    if let Some(&value) = plan.sparsities.iter().find(|s| !(0.0..1.0).contains(*s)) {
        return Err(CompressError::Sparsity { value });
    }
    if !run_dir.join(files::WEIGHTS).is_file() {
        return Err(CompressError::NoWeights {
            dir: run_dir.to_path_buf(),
        });
    }
    let saved = load_saved_model(run_dir)?;
    let exp = saved.experiment.clone();
    if matches!(exp.dataset, DatasetSpec::Gridworld(_)) {
        return Err(CompressError::Maze);
    }
    if !exp.model.iter().any(LayerSpec::prunable) {
        return Err(CompressError::NothingPrunable);
    }
    let summary: Option<RunSummary> = std::fs::read_to_string(run_dir.join(files::SUMMARY))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    std::fs::create_dir_all(out).map_err(CompressError::io(out))?;
    let mut rows = vec![measure("original", run_dir, 0, summary.as_ref())?];
    for &sparsity in &plan.sparsities {
        let name = if plan.finetune_epochs > 0 {
            format!("sparsity-{sparsity:.2}-ft{}", plan.finetune_epochs)
        } else {
            format!("sparsity-{sparsity:.2}")
        };
        progress(format!(
            "{name}: pruning{}",
            if plan.finetune_epochs > 0 {
                " and fine-tuning"
            } else {
                ""
            }
        ));
        let dir = out.join(&name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(CompressError::io(&dir))?;
        }
        let mut v = exp.clone();
        v.name = format!("{}-{name}", exp.name);
        let t = &mut v.training;
        t.init_from = Some(run_dir.to_path_buf());
        t.init_exclude.clear();
        t.freeze.clear();
        t.early_stopping = None;
        t.prune = Some(PruneSpec {
            sparsity,
            scope: plan.scope,
        });
        t.epochs = plan.finetune_epochs.max(1);
        let handle = start(
            v,
            StartOptions {
                run_dir: Some(dir.clone()),
                // No fine-tuning: stop before the first step (the test pass,
                // weights and summary are still written).
                halt_after_step: (plan.finetune_epochs == 0).then_some(0),
                ..StartOptions::default()
            },
        );
        let mut result = Err(CompressError::VariantUnfinished { name: name.clone() });
        for e in handle.events().iter() {
            match e {
                TrainEvent::Finished(s) => result = Ok(s),
                TrainEvent::Failed { message, .. } => {
                    result = Err(CompressError::VariantFailed {
                        name: name.clone(),
                        message,
                    });
                }
                _ => {}
            }
        }
        handle.join();
        let s = result?;
        rows.push(measure(&name, &dir, plan.finetune_epochs, Some(&s))?);
    }
    if plan.int8 {
        progress("int8: quantising and calibrating".into());
        rows.push(int8_variant(run_dir, &out.join("int8"))?);
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({ "variants": rows }))?;
    let file = out.join("compress.json");
    crate::util::atomic::write_atomic(&file, json.as_bytes()).map_err(CompressError::io(&file))?;
    Ok(rows)
}

/// The figures of the run in `dir`.
fn measure(
    name: &str,
    dir: &Path,
    finetune_epochs: usize,
    summary: Option<&RunSummary>,
) -> Result<Variant, CompressError> {
    let saved = load_saved_model(dir)?;
    let size_bytes = std::fs::metadata(dir.join(files::WEIGHTS))
        .map(|m| m.len())
        .map_err(CompressError::io(dir))?;
    let params = prunable(&saved.model, &saved.experiment.model);
    let mut zero = 0usize;
    let mut total = 0usize;
    let mut dense_prunable = 0u64;
    for (_, var) in &params {
        let values: Vec<f32> = var.as_tensor().flatten_all().and_then(|t| t.to_vec1())?;
        zero += values.iter().filter(|v| **v == 0.0).count();
        total += values.len();
        dense_prunable += 4 * values.len() as u64;
    }
    let nonzero = (total - zero) as u64;
    let sparse_bytes = size_bytes - dense_prunable.min(size_bytes) + 8 * nonzero;
    let (b1, b64) = (speed(&saved, 1)?, speed(&saved, 64)?);
    Ok(Variant {
        name: name.to_string(),
        dir: dir.display().to_string(),
        sparsity: zero as f64 / total.max(1) as f64,
        finetune_epochs,
        test_accuracy: summary.and_then(|s| s.test_accuracy),
        bits_per_token: summary.and_then(|s| s.language.map(|l| l.bits_per_token)),
        size_bytes,
        sparse_bytes,
        samples_per_sec_batch1: b1,
        samples_per_sec_batch64: b64,
        int8: false,
    })
}

/// Calibration rows taken from the training images.
const CALIBRATION: usize = 256;

/// The standardised images of `set` (the first `n`), rows as the model reads them.
fn image_rows(
    data: &crate::data::ImageData,
    set: &crate::data::ImageSet,
    n: usize,
) -> Vec<Vec<f32>> {
    (0..set.len().min(n))
        .map(|i| crate::data::standardise(set.image(i), &data.stats, set.rows * set.cols))
        .collect()
}

/// A saved image model quantised to int8, calibrated on its first
/// [`CALIBRATION`] training images (deterministic: `export onnx --int8` gets
/// the same model as `compress --int8`); with the data it loaded.
pub fn quantise_saved(
    saved: &SavedModel,
) -> Result<(crate::quant::Int8Model, crate::data::ImageData), CompressError> {
    let exp = &saved.experiment;
    let DatasetSpec::Images(spec) = &exp.dataset else {
        return Err(CompressError::Int8NotImages { flag: "" });
    };
    let data = crate::data::load_images(spec, exp.seed)?;
    let calibration = image_rows(&data, &data.train, CALIBRATION);
    let q = crate::quant::Int8Model::quantise(&saved.model, &exp.model, &calibration)?;
    Ok((q, data))
}

/// The original model quantised to int8, saved in `dir`, measured on its test set.
fn int8_variant(run_dir: &Path, dir: &Path) -> Result<Variant, CompressError> {
    let saved = load_saved_model(run_dir)?;
    let exp = &saved.experiment;
    if !matches!(exp.dataset, DatasetSpec::Images(_)) {
        return Err(CompressError::Int8NotImages { flag: "--" });
    }
    let (q, data) = quantise_saved(&saved)?;
    let rows = |set: &crate::data::ImageSet, n: usize| image_rows(&data, set, n);
    std::fs::create_dir_all(dir).map_err(CompressError::io(dir))?;
    let file = dir.join("model_int8.safetensors");
    q.save(&file)?;
    std::fs::copy(run_dir.join(files::EXPERIMENT), dir.join(files::EXPERIMENT))
        .map_err(CompressError::io(dir))?;
    // Test accuracy of the file as written, read back.
    let back = crate::quant::Int8Model::load(&file, &exp.model, &q.input_shape)?;
    let test = rows(&data.test, usize::MAX);
    let right = back
        .forward(&test)
        .iter()
        .zip(&data.test.labels)
        .filter(|(out, label)| {
            out.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .is_some_and(|(i, _)| i == usize::from(**label))
        })
        .count();
    let speed = |batch: usize| {
        let x = vec![vec![0f32; back.inputs]; batch];
        back.forward(&x);
        let began = Instant::now();
        let mut passes = 0u64;
        while began.elapsed() < Duration::from_millis(300) || passes < 3 {
            back.forward(&x);
            passes += 1;
        }
        (passes * batch as u64) as f64 / began.elapsed().as_secs_f64()
    };
    let size_bytes = std::fs::metadata(&file)
        .map(|m| m.len())
        .map_err(CompressError::io(&file))?;
    Ok(Variant {
        name: format!("int8 ({:?})", back.kernel()).to_lowercase(),
        dir: dir.display().to_string(),
        sparsity: 0.0,
        finetune_epochs: 0,
        test_accuracy: Some(right as f64 / data.test.len().max(1) as f64),
        bits_per_token: None,
        size_bytes,
        sparse_bytes: size_bytes,
        samples_per_sec_batch1: speed(1),
        samples_per_sec_batch64: speed(64),
        int8: true,
    })
}

/// Samples per second of forward passes at `batch` (inputs of zeros; the
/// arithmetic does not depend on the values), timed for about 0.3 s after a
/// warm-up pass.
fn speed(saved: &SavedModel, batch: usize) -> Result<f64, CompressError> {
    let model = &saved.model;
    let mut shape = vec![batch];
    let input = if saved.vocab.is_some() {
        // Token models read ids [batch, steps]; id 1 is a real token.
        let steps = model.input_shape().first().copied().unwrap_or(1);
        Tensor::ones((batch, steps), DType::U32, &Device::Cpu)
    } else {
        shape.extend_from_slice(model.input_shape());
        Tensor::zeros(shape, DType::F32, &Device::Cpu)
    }?;
    let pass = || model.forward(&input, Mode::Eval).map(|_| ());
    pass()?;
    let began = Instant::now();
    let mut passes = 0u64;
    while began.elapsed() < Duration::from_millis(300) || passes < 3 {
        pass()?;
        passes += 1;
    }
    Ok((passes * batch as u64) as f64 / began.elapsed().as_secs_f64())
}

/// Where variants go by default: `RUN_DIR/compressed`.
pub fn default_out(run_dir: &Path) -> PathBuf {
    run_dir.join("compressed")
}
