//! `trainlab export pytorch`: an image experiment as one readable PyTorch script
//! (torch, numpy, safetensors only) that builds the same model with the same
//! parameter names and layouts (so a run's `model.safetensors` loads with
//! `load_state_dict`), reads the same IDX files with the same limits,
//! normalisation and validation split (the split's indices go in a JSON file
//! beside the script: trainlab's seeded generator is not Python's), and trains
//! with the same optimizer, schedule, clipping, augmentation, epochs, evaluation
//! and early stopping. It prints its figures as trainlab's CLI does.
//!
//! Text experiments are written by [`super::pytorch_text`], DQN on a gridworld
//! by [`super::pytorch_dqn`]; this file holds the image script and what they share.
//!
//! Contract: only what has an exact PyTorch equivalent is written; anything else
//! (tabular agents, playground data, pruning, regularization, frozen layers,
//! scheduled optimizer changes) is an error naming it, and no file is written.

use std::path::{Path, PathBuf};

use super::ExportError;
use crate::data::sources::resolve;
use crate::data::{read_idx_labels, val_indices};
use crate::spec::{DatasetSpec, Experiment, LrDecay, OptimizerSpec, infer_shapes, kind_names};

/// What was written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The script.
    pub script: PathBuf,
    /// The files it reads beside it (the image split, the encoded text), if any.
    pub sidecars: Vec<PathBuf>,
}

/// The script and the files it reads beside it, made but not yet written.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The script's text.
    pub script: String,
    /// Sidecar files (path, contents) the script reads, e.g. the split.
    pub sidecars: Vec<(PathBuf, Vec<u8>)>,
}

/// Writes the script for `exp` to `out` (and its sidecars beside it); with
/// `weights`, the script evaluates those trained weights when run with
/// `--eval-only` (the default when `eval_only`). Sidecars are written first and
/// the script last, each to a temp name and renamed: on any error no script exists.
pub fn export(
    exp: &Experiment,
    weights: Option<&Path>,
    eval_only: bool,
    out: &Path,
) -> Result<Exported, ExportError> {
    let Rendered { script, sidecars } = render(exp, weights, eval_only, out)?;
    // The sidecars are whole before the script that names them appears.
    for (path, bytes) in &sidecars {
        crate::util::atomic::write_atomic(path, bytes).map_err(ExportError::io(path))?;
    }
    crate::util::atomic::write_atomic(out, script.as_bytes()).map_err(ExportError::io(out))?;
    Ok(Exported {
        script: out.to_path_buf(),
        sidecars: sidecars.into_iter().map(|(p, _)| p).collect(),
    })
}

/// The script for `exp` as it would be written to `out` (paths inside it point
/// beside `out`), without touching the disk: what the GUI's PyTorch tab shows.
/// Sidecars are computed here: images read the training labels (for the split),
/// text reads its corpus (bundled word lists: milliseconds), DQN reads nothing.
pub fn render(
    exp: &Experiment,
    weights: Option<&Path>,
    eval_only: bool,
    out: &Path,
) -> Result<Rendered, ExportError> {
    if eval_only && weights.is_none() {
        return Err(ExportError::EvalOnlyNeedsWeights);
    }
    let data = match &exp.dataset {
        DatasetSpec::Images(data) => data,
        DatasetSpec::Text(spec) => {
            return super::pytorch_text::render(exp, spec, weights, eval_only, out);
        }
        DatasetSpec::Gridworld(world) => {
            return super::pytorch_dqn::render(exp, world, weights, eval_only, out);
        }
        DatasetSpec::Points(_) => {
            return Err(ExportError::PointsNotExported);
        }
    };
    if data.is_folder() {
        // The script may use only torch, numpy and safetensors: none decodes PNG/JPEG.
        return Err(ExportError::ImageFolder);
    }
    if !eval_only {
        unsupported(exp)?;
    }
    let model = model_code(exp, &[1, 28, 28])?;
    let files = resolve(data.name, &data.source)?;
    // The split: trainlab's, computed here, over the images kept by train_limit.
    let mut labels = read_idx_labels(&files.train_labels)?;
    if let Some(n) = data.train_limit {
        labels.truncate(n);
    }
    let val = val_indices(&labels, data.val_fraction, exp.seed);
    let split = out.with_extension("split.json");
    let split_json = serde_json::json!({
        "about": "indices (into the first train_limit training images) that trainlab holds out for validation",
        "val": val,
    });
    let (mean, std) = crate::data::normalisation(data.name);
    let classes = crate::data::class_names(data.name);
    let script = TEMPLATE
        .replace("{{NAME}}", &exp.name)
        .replace("{{SOURCE}}", &files.origin)
        .replace(
            "{{SOURCE_KIND}}",
            &format!("{:?}", data.source).replace('"', "'"),
        )
        .replace("{{TRAIN_IMAGES}}", &py_path(&files.train_images))
        .replace("{{TRAIN_LABELS}}", &py_path(&files.train_labels))
        .replace("{{TEST_IMAGES}}", &py_path(&files.test_images))
        .replace("{{TEST_LABELS}}", &py_path(&files.test_labels))
        .replace("{{SPLIT}}", &py_path(&split))
        .replace("{{TRAIN_LIMIT}}", &py_opt(data.train_limit))
        .replace("{{TEST_LIMIT}}", &py_opt(data.test_limit))
        .replace("{{MEAN}}", &format!("{mean}"))
        .replace("{{STD}}", &format!("{std}"))
        .replace(
            "{{MAX_SHIFT}}",
            &data.augment.as_ref().map_or(0, |a| a.max_shift).to_string(),
        )
        .replace("{{CLASSES}}", &format!("{classes:?}"))
        .replace("{{MODEL}}", &model);
    let script = filled(fill_training(script, exp, weights, eval_only))?;
    let split_text = serde_json::to_string(&split_json)?;
    Ok(Rendered {
        script,
        sidecars: vec![(split, split_text.into_bytes())],
    })
}

/// Training features with no equivalent in the exported scripts, named.
pub(super) fn unsupported(exp: &Experiment) -> Result<(), ExportError> {
    let t = &exp.training;
    let found = [
        (t.prune.is_some(), "training.prune"),
        (t.regularization.is_some(), "training.regularization"),
        (!t.freeze.is_empty(), "training.freeze"),
        (t.init_from.is_some(), "training.init_from"),
        (!exp.schedule.changes.is_empty(), "schedule.changes"),
        (
            matches!(exp.schedule.decay, crate::spec::LrDecay::Controlled { .. }),
            "schedule.decay: Controlled",
        ),
        (
            t.precision != crate::spec::Precision::F32,
            "training.precision other than F32",
        ),
    ];
    match found.iter().find(|(on, _)| *on) {
        Some(&(_, what)) => Err(ExportError::FeatureNotExported { what }),
        None => Ok(()),
    }
}

/// Fills the fields the image and text templates share: seed, optimizer,
/// schedule, the training loop's settings, early stopping, weights, eval-only.
pub(super) fn fill_training(
    script: String,
    exp: &Experiment,
    weights: Option<&Path>,
    eval_only: bool,
) -> String {
    let t = &exp.training;
    script
        .replace("{{SEED}}", &exp.seed.to_string())
        .replace("{{OPTIMIZER}}", &optimizer_code(&exp.optimizer))
        .replace("{{SCHEDULE}}", &schedule_code(exp))
        .replace("{{EPOCHS}}", &t.epochs.to_string())
        .replace("{{BATCH}}", &t.batch_size.to_string())
        .replace("{{LOG_EVERY}}", &t.log_every_steps.to_string())
        .replace("{{EVAL_EVERY}}", &py_opt(t.eval_every_steps))
        .replace(
            "{{CLIP}}",
            &t.grad_clip_norm.map_or("None".into(), |c| format!("{c}")),
        )
        .replace(
            "{{PATIENCE}}",
            &t.early_stopping
                .as_ref()
                .map_or("None".into(), |e| e.patience.to_string()),
        )
        .replace(
            "{{MIN_DELTA}}",
            &t.early_stopping
                .as_ref()
                .map_or("0.0".into(), |e| format!("{}", e.min_delta)),
        )
        .replace("{{WEIGHTS}}", &weights.map_or("None".into(), py_path))
        .replace("{{EVAL_ONLY}}", py_bool(eval_only))
}

/// `script`, or an error if a template field was left unfilled (a bug here).
pub(super) fn filled(script: String) -> Result<String, ExportError> {
    if script.contains("{{") {
        return Err(ExportError::UnfilledTemplate);
    }
    Ok(script)
}

pub(super) fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

pub(super) fn py_path(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    format!("{:?}", abs.display().to_string())
}

pub(super) fn py_opt(v: Option<usize>) -> String {
    v.map_or("None".into(), |n| n.to_string())
}

/// `nn.Sequential` entries, index for index with trainlab's `layers.{i}`, for
/// one-sample input shape `input` (`[1, 28, 28]` images, `[n]` maze states).
pub(super) fn model_code(exp: &Experiment, input: &[usize]) -> Result<String, ExportError> {
    let shapes = infer_shapes(&exp.model, input)?;
    let mut lines = Vec::new();
    let mut shape: Vec<usize> = input.to_vec();
    for (i, layer) in exp.model.iter().enumerate() {
        let kind = layer.descriptor();
        if !kind.pytorch_scripts.images() {
            return Err(ExportError::Layer {
                index: i,
                kind: kind.name,
                problem: format!(
                    " has no exported PyTorch equivalent yet: export pytorch covers {}",
                    kind_names(|k| k.pytorch_scripts.images())
                ),
            });
        }
        let code = (kind.pytorch)(layer, &shape);
        lines.push(format!(
            "            {code},  # layers.{i}: output {:?}",
            shapes[i].output
        ));
        shape.clone_from(&shapes[i].output);
    }
    Ok(lines.join("\n"))
}

pub(super) fn optimizer_code(opt: &OptimizerSpec) -> String {
    match opt {
        OptimizerSpec::Sgd {
            lr,
            momentum,
            nesterov,
            weight_decay,
        } => format!(
            "torch.optim.SGD(model.parameters(), lr={lr}, momentum={momentum}, \
             nesterov={}, weight_decay={weight_decay})",
            if *nesterov { "True" } else { "False" }
        ),
        // The same fields; PyTorch's Adam also adds weight decay to the gradient,
        // its AdamW decouples it, as trainlab's do.
        OptimizerSpec::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        }
        | OptimizerSpec::AdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => format!(
            "torch.optim.{}(model.parameters(), lr={lr}, betas=({beta1}, {beta2}), \
             eps={eps}, weight_decay={weight_decay})",
            if matches!(opt, OptimizerSpec::Adam { .. }) {
                "Adam"
            } else {
                "AdamW"
            }
        ),
    }
}

/// The learning-rate factor (of the peak) at a 0-based step, as trainlab computes it.
pub(super) fn schedule_code(exp: &Experiment) -> String {
    let s = &exp.schedule;
    let warmup = s.warmup_steps;
    // An extended run keeps the decay it was planned with (schedule.decay_epochs).
    let plan = s.decay_epochs.map_or(String::new(), |e| {
        format!("total_steps = steps_per_epoch * {e}  # schedule.decay_epochs\n    ")
    });
    let decay = match &s.decay {
        // Controlled is refused by `unsupported` before any script is written.
        LrDecay::Constant | LrDecay::Controlled { .. } => "    return 1.0".to_string(),
        LrDecay::Step {
            every_epochs,
            gamma,
        } => format!(
            "    drops = (step // max(steps_per_epoch, 1)) // {every_epochs}\n    return {gamma} ** drops"
        ),
        LrDecay::Cosine { final_fraction } => format!(
            "    # The last step of the planned decay lands exactly on the floor.\n    \
             {plan}span = max(total_steps - ({warmup} + 1), 1)\n    \
             progress = min((step - {warmup}) / span, 1.0)\n    \
             return {final_fraction} + (1.0 - {final_fraction}) * 0.5 * (1.0 + math.cos(math.pi * progress))"
        ),
    };
    format!(
        "def lr_factor(step, steps_per_epoch, total_steps):\n    \
         \"\"\"Learning rate at a 0-based step, as a fraction of the peak.\"\"\"\n    \
         if step < {warmup}:\n        return (step + 1) / {warmup}\n{decay}\n"
    )
}

const TEMPLATE: &str = include_str!("pytorch_template.py");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LayerSpec;

    #[test]
    fn the_mlp_becomes_a_sequential_with_trainlabs_indices() {
        let exp = Experiment::default();
        let code = model_code(&exp, &[1, 28, 28]).expect("exports");
        assert!(code.contains("nn.Flatten(),  # layers.0"), "{code}");
        assert!(code.contains("nn.Linear(784, 128),  # layers.1"), "{code}");
        assert!(code.contains("nn.Linear(128, 10),  # layers.3"), "{code}");
        let mut lstm = exp.clone();
        lstm.model.insert(1, LayerSpec::MeanPool);
        assert!(model_code(&lstm, &[1, 28, 28]).is_err());
    }
}
