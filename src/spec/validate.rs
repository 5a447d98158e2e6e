//! Semantic checks that serde cannot do: shapes that chain, positive rates, sane
//! sizes. Each error names the field (or layer index) and says how to fix it.

use super::agent::AgentMethod;
use super::experiment::{
    Channels, DatasetSpec, DeviceSpec, Experiment, ImageDatasetSpec, LrDecay, OptimizerSpec,
    Precision, ResizeFilter,
};
use super::layers::{LayerShapeInfo, LayerSpec, Shape, infer_shapes, kind_names};
use super::validate_rl::{gridworld_input_size, validate_gridworld};

/// Number of actions in a gridworld: up, right, down, left.
pub const GRID_ACTIONS: usize = 4;
use super::text::{TextDatasetSpec, TextTask};

/// A problem found in a parsed experiment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the offending field, e.g. `model[2]` or `optimizer.lr`.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl ValidationError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Shape of one input sample and number of outputs (classes, or actions) for the
/// experiment's dataset. A generated maze without its own seed uses `seed`.
///
/// Text input is `[steps, vocab]` (token ids, thought of as one-hot rows). The
/// vocabulary and the classes come from the corpus, so before it is read both are
/// reported as 0 here; the worker adds the output layer once they are known.
/// An image folder's classes are its subfolders, also unknown (0) until it is read:
/// the worker checks the model's output width against them.
pub fn dataset_io(dataset: &DatasetSpec, seed: u64) -> (Shape, usize) {
    match dataset {
        DatasetSpec::Images(d) if d.is_folder() => (d.input_shape().to_vec(), 0),
        DatasetSpec::Images(_) => (vec![1, 28, 28], 10),
        DatasetSpec::Gridworld(g) => (vec![gridworld_input_size(g, seed)], GRID_ACTIONS),
        DatasetSpec::Text(t) => (vec![text_steps(t), 0], 0),
        // One output: a class-1 logit or the fitted value; two: class scores.
        DatasetSpec::Points(p) => (vec![p.features.len()], 1),
    }
}

/// Tokens per sample of a text dataset: the window of a language model, the
/// cut-off of a classifier.
pub fn text_steps(t: &TextDatasetSpec) -> usize {
    match &t.task {
        TextTask::LanguageModel(lm) => lm.seq_len,
        TextTask::Classification(c) => c.max_len,
    }
}

/// Whether the experiment trains the `model` layer list (supervised, text or DQN).
pub fn uses_model(exp: &Experiment) -> bool {
    match &exp.dataset {
        DatasetSpec::Images(_) | DatasetSpec::Text(_) | DatasetSpec::Points(_) => true,
        DatasetSpec::Gridworld(_) => matches!(exp.agent.method, AgentMethod::Dqn(_)),
    }
}

/// Checks everything serde could not; returns the first problem.
pub fn validate(exp: &Experiment) -> Result<(), ValidationError> {
    let t = &exp.training;
    validate_training(exp)?;
    validate_optimizer(&exp.optimizer)?;
    for (_, opt) in super::changes::scheduled_optimizers(exp)? {
        validate_optimizer(&opt)?;
    }
    validate_for_device(exp)?;
    validate_schedule(exp)?;
    match &exp.dataset {
        DatasetSpec::Images(d) => validate_images(d)?,
        DatasetSpec::Gridworld(g) => validate_gridworld(g, &exp.agent, exp.seed)?,
        DatasetSpec::Text(d) => validate_text(d)?,
        DatasetSpec::Points(p) => validate_points(p)?,
    }
    if uses_model(exp) {
        validate_model(exp)
    } else if t.init_from.is_some() || !t.init_exclude.is_empty() || !t.freeze.is_empty() {
        Err(ValidationError::new(
            "training.init_from",
            "init_from, init_exclude and freeze apply to runs that train a network \
             (images, text, DQN); a tabular agent has none: remove them",
        ))
    } else {
        Ok(())
    }
}

/// `training`: counts, cadences, clipping, the weight penalty, precision and
/// pruning, and which of them the dataset's kind of run takes.
fn validate_training(exp: &Experiment) -> Result<(), ValidationError> {
    let t = &exp.training;
    if t.epochs == 0 {
        return Err(ValidationError::new(
            "training.epochs",
            "must be at least 1",
        ));
    }
    if t.batch_size == 0 {
        return Err(ValidationError::new(
            "training.batch_size",
            "must be at least 1 (64 is a good start)",
        ));
    }
    if t.log_every_steps == 0 {
        return Err(ValidationError::new(
            "training.log_every_steps",
            "must be at least 1",
        ));
    }
    let c = &t.checkpoint;
    if c.every_epochs == Some(0) || c.every_steps == Some(0) {
        return Err(ValidationError::new(
            "training.checkpoint",
            "every_epochs and every_steps must be at least 1, or None",
        ));
    }
    if t.eval_every_steps == Some(0) {
        return Err(ValidationError::new(
            "training.eval_every_steps",
            "must be at least 1, or None to evaluate once per epoch",
        ));
    }
    if let Some(clip) = t.grad_clip_norm
        && !(clip > 0.0 && clip.is_finite())
    {
        return Err(ValidationError::new(
            "training.grad_clip_norm",
            format!("{clip} must be a positive number, or None to disable clipping"),
        ));
    }
    if let Some(r) = &t.regularization {
        if !(r.rate > 0.0 && r.rate.is_finite()) {
            return Err(ValidationError::new(
                "training.regularization.rate",
                format!(
                    "{} must be a positive number (1e-3 is a good start)",
                    r.rate
                ),
            ));
        }
        if matches!(exp.dataset, DatasetSpec::Gridworld(_)) {
            return Err(ValidationError::new(
                "training.regularization",
                "a weight penalty applies to supervised models (images, text, points)",
            ));
        }
    }
    if t.precision != Precision::F32 {
        let what = match &exp.dataset {
            DatasetSpec::Gridworld(_) => Some("the gridworld agents (tabular and DQN)"),
            DatasetSpec::Points(_) => Some("the 2-D playground"),
            DatasetSpec::Images(_) | DatasetSpec::Text(_) => None,
        };
        if let Some(what) = what {
            return Err(ValidationError::new(
                "training.precision",
                format!(
                    "{} applies to image and text models; {what} train in F32 only: \
                     remove it or set F32",
                    t.precision.name()
                ),
            ));
        }
    }
    if let Some(p) = &t.prune {
        if !(0.0..1.0).contains(&p.sparsity) {
            return Err(ValidationError::new(
                "training.prune.sparsity",
                format!(
                    "{} must be in [0, 1) (0.9 zeroes nine weights in ten)",
                    p.sparsity
                ),
            ));
        }
        if matches!(exp.dataset, DatasetSpec::Gridworld(_)) {
            return Err(ValidationError::new(
                "training.prune",
                "pruning applies to supervised models (images, text, points), not maze agents",
            ));
        }
        if !exp.model.iter().any(LayerSpec::prunable) {
            return Err(ValidationError::new(
                "training.prune",
                format!(
                    "the model has no prunable layer ({})",
                    kind_names(|k| k.prunable)
                ),
            ));
        }
    }
    Ok(())
}

/// `schedule`: the decay's settings and how long it runs.
fn validate_schedule(exp: &Experiment) -> Result<(), ValidationError> {
    if let LrDecay::Step {
        every_epochs,
        gamma,
    } = &exp.schedule.decay
    {
        if *every_epochs == 0 {
            return Err(ValidationError::new(
                "schedule.decay.every_epochs",
                "must be at least 1",
            ));
        }
        if !(*gamma > 0.0 && *gamma <= 1.0) {
            return Err(ValidationError::new(
                "schedule.decay.gamma",
                format!("{gamma} must be in (0, 1]"),
            ));
        }
    }
    if let LrDecay::Cosine { final_fraction } = &exp.schedule.decay
        && !(0.0..=1.0).contains(final_fraction)
    {
        return Err(ValidationError::new(
            "schedule.decay.final_fraction",
            format!("{final_fraction} must be in [0, 1]"),
        ));
    }
    if let LrDecay::Controlled { policy } = &exp.schedule.decay {
        if policy.as_os_str().is_empty() {
            return Err(ValidationError::new(
                "schedule.decay.policy",
                "name the policy file, e.g. Controlled(policy: \"studies/x/controller/policy.ron\")",
            ));
        }
        if !exp.schedule.changes.is_empty() {
            return Err(ValidationError::new(
                "schedule.changes",
                "a Controlled lr is steered by its policy; leave changes empty",
            ));
        }
    }
    if exp.schedule.decay_epochs == Some(0) {
        return Err(ValidationError::new(
            "schedule.decay_epochs",
            "must be at least 1 (or None: the decay spans training.epochs)",
        ));
    }
    Ok(())
}

/// An image dataset: splits, augmentation, limits and folder settings.
fn validate_images(d: &ImageDatasetSpec) -> Result<(), ValidationError> {
    if !(0.0..1.0).contains(&d.val_fraction) {
        return Err(ValidationError::new(
            "dataset.val_fraction",
            format!("{} must be in [0, 1)", d.val_fraction),
        ));
    }
    if let Some(a) = &d.augment
        && a.max_shift > 8
    {
        return Err(ValidationError::new(
            "dataset.augment.max_shift",
            format!(
                "{} pixels would push digits off a 28x28 image; use 1-4",
                a.max_shift
            ),
        ));
    }
    if d.train_limit == Some(0) || d.test_limit == Some(0) {
        return Err(ValidationError::new(
            "dataset.train_limit",
            "limits must be at least 1, or None for all samples",
        ));
    }
    validate_image_folder(d)
}

/// The settings of `source: Folder(...)`, and that IDX sources leave them alone.
fn validate_image_folder(d: &ImageDatasetSpec) -> Result<(), ValidationError> {
    if !d.is_folder() {
        let folder_only = [
            ("size", d.size.is_some()),
            ("channels", d.channels != Channels::Gray),
            ("resize", d.resize != ResizeFilter::default()),
            ("skip_unreadable", d.skip_unreadable),
            ("test_fraction", d.test_fraction.is_some()),
        ];
        if let Some((field, _)) = folder_only.iter().find(|(_, set)| *set) {
            return Err(ValidationError::new(
                format!("dataset.{field}"),
                "applies to `source: Folder(\"path\")` only (MNIST and Fashion-MNIST are \
                 28x28 grey images); remove it",
            ));
        }
        return Ok(());
    }
    if let Some((h, w)) = d.size
        && !((1..=MAX_IMAGE_SIDE).contains(&h) && (1..=MAX_IMAGE_SIDE).contains(&w))
    {
        return Err(ValidationError::new(
            "dataset.size",
            format!(
                "({h}, {w}) must be (height, width) with sides from 1 to {MAX_IMAGE_SIDE} \
                 (28 to 64 is usual)"
            ),
        ));
    }
    if let Some(f) = d.test_fraction
        && !(0.0..1.0).contains(&f)
    {
        return Err(ValidationError::new(
            "dataset.test_fraction",
            format!("{f} must be in [0, 1) (0.2 holds out a fifth of each class)"),
        ));
    }
    Ok(())
}

/// Largest side of a folder image after resizing.
const MAX_IMAGE_SIDE: usize = 1024;

/// Settings a GPU's backward pass cannot train: candle's max-pool gradient on CUDA
/// and Metal assumes windows that do not overlap (stride == kernel).
fn validate_for_device(exp: &Experiment) -> Result<(), ValidationError> {
    if exp.device == DeviceSpec::Cpu {
        return Ok(());
    }
    for (i, layer) in exp.model.iter().enumerate() {
        if let LayerSpec::MaxPool2d {
            kernel,
            stride: Some(stride),
        } = layer
            && stride != kernel
        {
            return Err(ValidationError::new(
                format!("model[{i}] (MaxPool2d)"),
                format!(
                    "stride {stride} with kernel {kernel} cannot train on {:?}: the GPU backward \
                     needs stride == kernel; drop the stride or use device: Cpu",
                    exp.device
                ),
            ));
        }
    }
    Ok(())
}

fn validate_text(d: &TextDatasetSpec) -> Result<(), ValidationError> {
    let held_out = d.val_fraction + d.test_fraction;
    if d.val_fraction < 0.0 || d.test_fraction < 0.0 || held_out >= 1.0 {
        return Err(ValidationError::new(
            "dataset.val_fraction",
            format!("val_fraction + test_fraction = {held_out} must be in [0, 1)"),
        ));
    }
    if d.limit == Some(0) {
        return Err(ValidationError::new(
            "dataset.limit",
            "must be at least 1, or None for everything",
        ));
    }
    match &d.task {
        TextTask::LanguageModel(lm) => {
            if lm.seq_len < 2 {
                return Err(ValidationError::new(
                    "dataset.task.seq_len",
                    "must be at least 2 (32-128 is usual)",
                ));
            }
            if lm.sample_every_steps == Some(0) {
                return Err(ValidationError::new(
                    "dataset.task.sample_every_steps",
                    "must be at least 1, or None for no live samples",
                ));
            }
            if !(lm.sample.temperature > 0.0 && lm.sample.temperature.is_finite()) {
                return Err(ValidationError::new(
                    "dataset.task.sample.temperature",
                    "must be > 0 (0.5-1.0 is usual)",
                ));
            }
            if lm.sample.top_k == Some(0) {
                return Err(ValidationError::new(
                    "dataset.task.sample.top_k",
                    "must be at least 1, or None for the whole vocabulary",
                ));
            }
        }
        TextTask::Classification(c) => {
            if c.max_len == 0 {
                return Err(ValidationError::new(
                    "dataset.task.max_len",
                    "must be at least 1",
                ));
            }
        }
    }
    Ok(())
}

fn validate_points(p: &super::points::PointsSpec) -> Result<(), ValidationError> {
    if p.samples < 4 || p.samples > 100_000 {
        return Err(ValidationError::new(
            "dataset.samples",
            format!(
                "{} must be between 4 and 100000 (500 is a good start)",
                p.samples
            ),
        ));
    }
    if !(p.noise >= 0.0 && p.noise <= 6.0) {
        return Err(ValidationError::new(
            "dataset.noise",
            format!("{} must be between 0 (clean) and 6", p.noise),
        ));
    }
    if !(0.1..=0.9).contains(&p.test_fraction) {
        return Err(ValidationError::new(
            "dataset.test_fraction",
            format!("{} must be between 0.1 and 0.9", p.test_fraction),
        ));
    }
    if p.features.is_empty() {
        return Err(ValidationError::new(
            "dataset.features",
            "pick at least one input feature, e.g. [X1, X2]",
        ));
    }
    let mut seen = p.features.clone();
    seen.sort_by_key(|f| *f as u8);
    seen.dedup();
    if seen.len() != p.features.len() {
        return Err(ValidationError::new(
            "dataset.features",
            "each feature may appear once",
        ));
    }
    Ok(())
}

fn validate_optimizer(opt: &OptimizerSpec) -> Result<(), ValidationError> {
    let lr = opt.lr();
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(ValidationError::new(
            "optimizer.lr",
            format!("{lr} must be > 0 (try 1e-3 for Adam, 0.01-0.1 for SGD)"),
        ));
    }
    match opt {
        OptimizerSpec::Sgd {
            momentum,
            nesterov,
            weight_decay,
            ..
        } => {
            if !(0.0..1.0).contains(momentum) {
                return Err(ValidationError::new(
                    "optimizer.momentum",
                    format!("{momentum} must be in [0, 1) (0.9 is usual)"),
                ));
            }
            if *nesterov && *momentum == 0.0 {
                return Err(ValidationError::new(
                    "optimizer.nesterov",
                    "Nesterov needs momentum > 0",
                ));
            }
            check_decay(*weight_decay)
        }
        OptimizerSpec::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        }
        | OptimizerSpec::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } => {
            for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                if !(0.0..1.0).contains(b) {
                    return Err(ValidationError::new(
                        format!("optimizer.{name}"),
                        format!("{b} must be in [0, 1)"),
                    ));
                }
            }
            if *eps <= 0.0 {
                return Err(ValidationError::new("optimizer.eps", "must be > 0"));
            }
            check_decay(*weight_decay)
        }
    }
}

fn check_decay(wd: f64) -> Result<(), ValidationError> {
    if wd < 0.0 || !wd.is_finite() {
        return Err(ValidationError::new(
            "optimizer.weight_decay",
            format!("{wd} must be >= 0"),
        ));
    }
    Ok(())
}

fn validate_model(exp: &Experiment) -> Result<(), ValidationError> {
    if exp.model.is_empty() {
        return Err(ValidationError::new(
            "model",
            "the layer list is empty; start from [Flatten, Linear(out: 128), ReLU, Linear(out: 10)]",
        ));
    }
    let (input, classes) = dataset_io(&exp.dataset, exp.seed);
    let shapes = infer_shapes(&exp.model, &input)?;
    if let DatasetSpec::Text(t) = &exp.dataset {
        return validate_text_model(exp, t, &shapes);
    }
    let last = shapes.last().map(|s| s.output.clone()).unwrap_or_default();
    if last != [classes] && matches!(exp.dataset, DatasetSpec::Gridworld(_)) {
        return Err(ValidationError::new(
            format!("model[{}]", exp.model.len() - 1),
            format!(
                "the Q-network ends with shape {last:?} but a maze has {classes} actions; \
                 end with Linear(out: {classes}), e.g. [Linear(out: 128), ReLU, Linear(out: {classes})]"
            ),
        ));
    }
    if let DatasetSpec::Points(p) = &exp.dataset
        && !(last == [1] || (last == [2] && !p.kind.is_regression()))
    {
        return Err(ValidationError::new(
            format!("model[{}]", exp.model.len() - 1),
            format!(
                "the model ends with shape {last:?}; a {:?} playground needs Linear(out: 1) \
                 at the end{}",
                p.kind,
                if p.kind.is_regression() {
                    " (the fitted value)"
                } else {
                    " (one score for class 1; out: 2 gives a score per class)"
                }
            ),
        ));
    }
    if let DatasetSpec::Images(d) = &exp.dataset
        && d.is_folder()
    {
        // The class count is the folder's to say (checked when it is read).
        if !matches!(last.as_slice(), [n] if *n >= 2) {
            return Err(ValidationError::new(
                format!("model[{}]", exp.model.len() - 1),
                format!(
                    "the model ends with shape {last:?}; end with Flatten (if needed) and \
                     Linear(out: N), N = the number of class subfolders"
                ),
            ));
        }
    } else if last != [classes] && !matches!(exp.dataset, DatasetSpec::Points(_)) {
        return Err(ValidationError::new(
            format!("model[{}]", exp.model.len() - 1),
            format!(
                "the model ends with shape {last:?} but the dataset has {classes} classes; \
                 end with Flatten (if needed) and Linear(out: {classes})"
            ),
        ));
    }
    if !exp.model.iter().any(LayerSpec::has_params) {
        return Err(ValidationError::new(
            "model",
            "no layer has weights to train; add a Linear or Conv2d layer",
        ));
    }
    Ok(())
}

/// A text model starts with Embedding and ends in a sequence (language model) or
/// a vector (classifier); the output layer is added by the worker.
fn validate_text_model(
    exp: &Experiment,
    t: &TextDatasetSpec,
    shapes: &[LayerShapeInfo],
) -> Result<(), ValidationError> {
    if !exp.model.first().is_some_and(LayerSpec::takes_tokens) {
        return Err(ValidationError::new(
            "model[0]",
            "a text model starts with Embedding(dim: 64)",
        ));
    }
    let last = shapes.last().map(|s| s.output.len()).unwrap_or_default();
    let last_field = format!("model[{}]", exp.model.len() - 1);
    match &t.task {
        TextTask::LanguageModel(_) if last != 2 => Err(ValidationError::new(
            last_field,
            "a language model predicts at every step, so the model must end in a sequence; \
             remove MeanPool/LastStep (the output layer over the vocabulary is added for you)",
        )),
        TextTask::Classification(_) if last != 1 => Err(ValidationError::new(
            last_field,
            "a classifier needs one vector per text; end with MeanPool or LastStep \
             (the output layer over the classes is added for you)",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::from_ron_str;

    fn invalid(text: &str) -> ValidationError {
        match from_ron_str(text, "t.ron") {
            Err(crate::spec::SpecError::Invalid { error, .. }) => error,
            other => panic!("expected a validation error for {text}, got {other:?}"),
        }
    }

    #[test]
    fn mlp_shapes_and_params() {
        let exp = Experiment::default();
        let shapes = infer_shapes(&exp.model, &[1, 28, 28]).expect("chains");
        let total: usize = shapes.iter().map(|s| s.params).sum();
        assert_eq!(total, 784 * 128 + 128 + 128 * 10 + 10);
        assert_eq!(shapes.last().map(|s| s.output.clone()), Some(vec![10]));
    }

    #[test]
    fn cnn_shapes() {
        let layers = vec![
            LayerSpec::Conv2d {
                out: 32,
                kernel: 3,
                stride: 1,
                padding: 0,
            },
            LayerSpec::ReLU,
            LayerSpec::Conv2d {
                out: 64,
                kernel: 3,
                stride: 1,
                padding: 0,
            },
            LayerSpec::MaxPool2d {
                kernel: 2,
                stride: None,
            },
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 128 },
            LayerSpec::Linear { out: 10 },
        ];
        let s = infer_shapes(&layers, &[1, 28, 28]).expect("chains");
        assert_eq!(s[0].output, vec![32, 26, 26]);
        assert_eq!(s[2].output, vec![64, 24, 24]);
        assert_eq!(s[3].output, vec![64, 12, 12]);
        assert_eq!(s[4].output, vec![9216]);
        let total: usize = s.iter().map(|l| l.params).sum();
        assert_eq!(
            total, 1_199_882,
            "PyTorch's MNIST example CNN has 1,199,882 parameters"
        );
    }

    #[test]
    fn linear_without_flatten_names_the_layer() {
        let e = invalid("(model: [Linear(out: 10)])");
        assert_eq!(e.field, "model[0] (Linear)");
        assert!(e.message.contains("Flatten"), "{e}");
    }

    #[test]
    fn conv_after_flatten_is_rejected() {
        let e = invalid("(model: [Flatten, Conv2d(out: 4, kernel: 3), Flatten, Linear(out: 10)])");
        assert_eq!(e.field, "model[1] (Conv2d)");
    }

    #[test]
    fn wrong_class_count_is_rejected() {
        let e = invalid("(model: [Flatten, Linear(out: 7)])");
        assert!(e.message.contains("10 classes"), "{e}");
    }

    #[test]
    fn bad_numbers_are_rejected_with_field_names() {
        let cases = [
            ("(optimizer: Adam(lr: 0.0))", "optimizer.lr"),
            ("(optimizer: Sgd(lr: -1.0))", "optimizer.lr"),
            ("(training: (batch_size: 0))", "training.batch_size"),
            ("(training: (epochs: 0))", "training.epochs"),
            (
                "(training: (checkpoint: (every_steps: Some(0))))",
                "training.checkpoint",
            ),
            (
                "(device: Cuda(0), model: [Conv2d(out: 4, kernel: 3), MaxPool2d(kernel: 3, stride: Some(2)), Flatten, Linear(out: 10)])",
                "model[1] (MaxPool2d)",
            ),
            (
                "(dataset: Gridworld(), agent: (method: QLearning(alpha: 0.5)), training: (init_from: Some(\"runs/x\")))",
                "training.init_from",
            ),
            (
                "(training: (grad_clip_norm: Some(-1.0)))",
                "training.grad_clip_norm",
            ),
            (
                "(optimizer: Sgd(lr: 0.1, momentum: 1.5))",
                "optimizer.momentum",
            ),
            (
                "(optimizer: Sgd(lr: 0.1, nesterov: true))",
                "optimizer.nesterov",
            ),
            (
                "(model: [Flatten, Dropout(p: 1.0), Linear(out: 10)])",
                "model[1] (Dropout)",
            ),
            (
                "(dataset: Images(val_fraction: 1.0))",
                "dataset.val_fraction",
            ),
            (
                "(schedule: (decay: Step(every_epochs: 0, gamma: 0.5)))",
                "schedule.decay.every_epochs",
            ),
            ("(model: [])", "model"),
            ("(model: [Flatten, ReLU])", "model[1]"),
        ];
        for (text, field) in cases {
            let e = invalid(text);
            assert_eq!(e.field, field, "case {text}: {e}");
        }
    }

    #[test]
    fn image_folders_take_their_shape_from_the_spec_and_any_class_count() {
        let ok = from_ron_str(
            r#"(dataset: Images(source: Folder("x"), size: (20, 30), channels: Rgb),
                model: [Conv2d(out: 4, kernel: 3), Flatten, Linear(out: 7)])"#,
            "t.ron",
        )
        .expect("the class count is the folder's, checked when it is read");
        assert_eq!(dataset_io(&ok.dataset, 0), (vec![3, 20, 30], 0));
        let grey = from_ron_str(r#"(dataset: Images(source: Folder("x")))"#, "t.ron")
            .expect("28x28 grey by default; the default MLP fits");
        assert_eq!(dataset_io(&grey.dataset, 0).0, vec![1, 28, 28]);
        for (text, field) in [
            (
                r#"(dataset: Images(source: Folder("x")), model: [Flatten, Linear(out: 1)])"#,
                "model[1]",
            ),
            (
                r#"(dataset: Images(source: Folder("x"), size: (0, 28)))"#,
                "dataset.size",
            ),
            (
                r#"(dataset: Images(source: Folder("x"), test_fraction: 1.0))"#,
                "dataset.test_fraction",
            ),
            ("(dataset: Images(size: (32, 32)))", "dataset.size"),
            ("(dataset: Images(resize: Nearest))", "dataset.resize"),
            (
                "(dataset: Images(skip_unreadable: true))",
                "dataset.skip_unreadable",
            ),
            (
                "(dataset: Images(test_fraction: 0.3))",
                "dataset.test_fraction",
            ),
        ] {
            let e = invalid(text);
            assert_eq!(e.field, field, "case {text}: {e}");
        }
    }

    /// A language model on the bundled words; `{..}` holds its dataset settings.
    const LM: &str = "dataset: Text(source: Bundled(Words), tokens: Chars, \
        task: LanguageModel(seq_len: 32, sample_every_steps: Some(100), \
        sample: (prompt: \"\", temperature: 0.8, top_k: None, length: 60)), \
        val_fraction: 0.1, test_fraction: 0.1), model: [Embedding(dim: 8), GRU(hidden: 8)]";
    /// A text classifier.
    const CLASSIFIER: &str = "dataset: Text(source: Bundled(WordLanguages), tokens: Chars, \
        task: Classification(max_len: 16, class_weights: None), val_fraction: 0.1, \
        test_fraction: 0.1), model: [Embedding(dim: 8), MeanPool]";
    /// A DQN maze.
    const DQN: &str = "dataset: Gridworld(), agent: (method: Dqn()), \
        model: [Linear(out: 8), ReLU, Linear(out: 4)]";
    /// A tabular maze.
    const TABLE: &str = "dataset: Gridworld(), agent: (method: QLearning(alpha: 0.5))";

    /// The playground with these dataset settings and model.
    fn points(settings: &str, model: &str) -> String {
        let mut fields = [
            ("kind", "Spiral"),
            ("samples", "500"),
            ("noise", "0.0"),
            ("test_fraction", "0.5"),
            ("features", "[X1, X2]"),
        ];
        for set in settings.split(';').filter(|s| !s.is_empty()) {
            let (key, value) = set.split_once(':').expect("key: value");
            let at = fields
                .iter()
                .position(|(k, _)| *k == key.trim())
                .expect("a field");
            fields[at].1 = value.trim();
        }
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("(dataset: Points({}), model: [{model}])", fields.join(", "))
    }

    /// Text with one setting changed: `key` replaced by `with` in `base`.
    fn text(base: &str, key: &str, with: &str) -> String {
        assert!(base.contains(key), "{key}");
        format!("({})", base.replacen(key, with, 1))
    }

    /// Every check rejects the value just past its bound, naming the field (the
    /// values on the bound are accepted: `accepted_at_every_bound`).
    #[test]
    fn rejected_just_past_every_bound_with_the_field() {
        let mut cases: Vec<(String, &str)> = [
            (
                "(training: (log_every_steps: 0))",
                "training.log_every_steps",
            ),
            (
                "(training: (checkpoint: (every_epochs: Some(0))))",
                "training.checkpoint",
            ),
            (
                "(training: (eval_every_steps: Some(0)))",
                "training.eval_every_steps",
            ),
            (
                "(training: (grad_clip_norm: Some(0.0)))",
                "training.grad_clip_norm",
            ),
            (
                "(training: (grad_clip_norm: Some(inf)))",
                "training.grad_clip_norm",
            ),
            (
                "(training: (regularization: (kind: L2, rate: 0.0)))",
                "training.regularization.rate",
            ),
            (
                "(training: (regularization: (kind: L2, rate: inf)))",
                "training.regularization.rate",
            ),
            (
                "(training: (prune: (sparsity: 1.0)))",
                "training.prune.sparsity",
            ),
            (
                "(training: (prune: (sparsity: -0.1)))",
                "training.prune.sparsity",
            ),
            (
                "(model: [Flatten], training: (prune: (sparsity: 0.5)))",
                "training.prune",
            ),
            (
                "(schedule: (decay: Step(every_epochs: 1, gamma: 0.0)))",
                "schedule.decay.gamma",
            ),
            (
                "(schedule: (decay: Step(every_epochs: 1, gamma: 1.01)))",
                "schedule.decay.gamma",
            ),
            (
                "(schedule: (decay: Cosine(final_fraction: 1.01)))",
                "schedule.decay.final_fraction",
            ),
            (
                "(schedule: (decay: Cosine(final_fraction: -0.01)))",
                "schedule.decay.final_fraction",
            ),
            (
                "(schedule: (decay: Controlled(policy: \"\")))",
                "schedule.decay.policy",
            ),
            (
                "(schedule: (decay_epochs: Some(0)))",
                "schedule.decay_epochs",
            ),
            (
                "(dataset: Images(augment: (max_shift: 9)))",
                "dataset.augment.max_shift",
            ),
            (
                "(dataset: Images(train_limit: Some(0)))",
                "dataset.train_limit",
            ),
            (
                "(dataset: Images(test_limit: Some(0)))",
                "dataset.train_limit",
            ),
            ("(dataset: Images(channels: Rgb))", "dataset.channels"),
            (
                "(dataset: Images(source: Folder(\"x\"), size: (1025, 28)))",
                "dataset.size",
            ),
            (
                "(dataset: Images(source: Folder(\"x\"), size: (28, 0)))",
                "dataset.size",
            ),
            ("(optimizer: Adam(lr: inf))", "optimizer.lr"),
            (
                "(optimizer: Sgd(lr: 0.1, momentum: -0.1))",
                "optimizer.momentum",
            ),
            ("(optimizer: Adam(lr: 0.1, beta1: 1.0))", "optimizer.beta1"),
            ("(optimizer: AdamW(lr: 0.1, beta2: 1.0))", "optimizer.beta2"),
            ("(optimizer: Adam(lr: 0.1, eps: 0.0))", "optimizer.eps"),
            (
                "(optimizer: Sgd(lr: 0.1, weight_decay: -0.1))",
                "optimizer.weight_decay",
            ),
            (
                "(optimizer: AdamW(lr: 0.1, weight_decay: inf))",
                "optimizer.weight_decay",
            ),
        ]
        .into_iter()
        .map(|(t, f)| (t.to_string(), f))
        .collect();
        let tab = |tail: &str| format!("({TABLE}, {tail})");
        cases.extend([
            (
                tab("training: (init_exclude: [\"0\"])"),
                "training.init_from",
            ),
            (tab("training: (freeze: [\"0\"])"), "training.init_from"),
            (tab("training: (precision: Bf16)"), "training.precision"),
            (tab("training: (prune: (sparsity: 0.5))"), "training.prune"),
            (
                format!("({DQN}, training: (regularization: (kind: L1, rate: 0.1)))"),
                "training.regularization",
            ),
            (
                format!(
                    "({}, model: [Linear(out: 8), ReLU, Linear(out: 3)])",
                    &DQN[..DQN.find(", model").expect("model")]
                ),
                "model[2]",
            ),
            (
                points("", "Linear(out: 1)").replacen(
                    ", model",
                    ", training: (precision: Bf16), model",
                    1,
                ),
                "training.precision",
            ),
            (
                text(
                    LM,
                    "val_fraction: 0.1, test_fraction: 0.1",
                    "val_fraction: 0.5, test_fraction: 0.5",
                ),
                "dataset.val_fraction",
            ),
            (
                text(
                    LM,
                    "val_fraction: 0.1, test_fraction: 0.1",
                    "val_fraction: 0.6, test_fraction: 0.5",
                ),
                "dataset.val_fraction",
            ),
            (
                text(LM, "val_fraction: 0.1", "val_fraction: -0.05"),
                "dataset.val_fraction",
            ),
            (
                text(LM, "test_fraction: 0.1", "test_fraction: -0.05"),
                "dataset.val_fraction",
            ),
            (
                text(LM, "tokens: Chars", "tokens: Chars, limit: Some(0)"),
                "dataset.limit",
            ),
            (
                text(LM, "seq_len: 32", "seq_len: 1"),
                "dataset.task.seq_len",
            ),
            (
                text(LM, "Some(100)", "Some(0)"),
                "dataset.task.sample_every_steps",
            ),
            (
                text(LM, "temperature: 0.8", "temperature: 0.0"),
                "dataset.task.sample.temperature",
            ),
            (
                text(LM, "temperature: 0.8", "temperature: inf"),
                "dataset.task.sample.temperature",
            ),
            (
                text(LM, "top_k: None", "top_k: Some(0)"),
                "dataset.task.sample.top_k",
            ),
            (
                text(CLASSIFIER, "max_len: 16", "max_len: 0"),
                "dataset.task.max_len",
            ),
            (text(LM, "[Embedding(dim: 8), ", "["), "model[0]"),
            (text(LM, "GRU(hidden: 8)", "MeanPool"), "model[1]"),
            (text(CLASSIFIER, "MeanPool", "GRU(hidden: 8)"), "model[1]"),
            (points("samples: 3", "Linear(out: 1)"), "dataset.samples"),
            (
                points("samples: 100001", "Linear(out: 1)"),
                "dataset.samples",
            ),
            (points("noise: -0.5", "Linear(out: 1)"), "dataset.noise"),
            (points("noise: 6.5", "Linear(out: 1)"), "dataset.noise"),
            (
                points("test_fraction: 0.05", "Linear(out: 1)"),
                "dataset.test_fraction",
            ),
            (
                points("test_fraction: 0.95", "Linear(out: 1)"),
                "dataset.test_fraction",
            ),
            (points("features: []", "Linear(out: 1)"), "dataset.features"),
            (
                points("features: [X2, X1, X2]", "Linear(out: 1)"),
                "dataset.features",
            ),
            (
                points("", "Linear(out: 8), Tanh, Linear(out: 3)"),
                "model[2]",
            ),
            (points("kind: Plane", "Linear(out: 2)"), "model[0]"),
        ]);
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, field)| match from_ron_str(text, "t.ron") {
                Err(crate::spec::SpecError::Invalid { error, .. }) if error.field == *field => None,
                other => Some(format!("{text}: want {field}, got {other:?}")),
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// The values on each bound, and the settings that only some runs refuse,
    /// are accepted where they apply.
    #[test]
    fn accepted_at_every_bound() {
        let mut cases: Vec<String> = [
            "(training: (grad_clip_norm: Some(1e-9)))",
            "(training: (regularization: (kind: L1, rate: 1e-9)))",
            "(training: (prune: (sparsity: 0.0)))",
            "(schedule: (decay: Step(every_epochs: 1, gamma: 1.0)))",
            "(schedule: (decay: Cosine(final_fraction: 1.0)))",
            "(schedule: (decay: Cosine(final_fraction: 0.0)))",
            "(dataset: Images(augment: (max_shift: 8), train_limit: Some(1), test_limit: Some(1)))",
            "(dataset: Images(source: Folder(\"x\"), size: (1024, 1), test_fraction: Some(0.0)))",
            "(dataset: Images(source: Folder(\"x\"), size: (1, 1024)))",
            "(device: Cuda(0), model: [Conv2d(out: 4, kernel: 2), MaxPool2d(kernel: 2, stride: Some(2)), Flatten, Linear(out: 10)])",
            "(model: [Conv2d(out: 4, kernel: 3), MaxPool2d(kernel: 3, stride: Some(2)), Flatten, Linear(out: 10)])",
            "(optimizer: Sgd(lr: 1e-9, momentum: 0.0, weight_decay: 0.0))",
            "(optimizer: Adam(lr: 0.1, beta1: 0.0, beta2: 0.0, eps: 1e-12))",
            "(model: [Flatten, Linear(out: 10)])",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        cases.extend([
            format!("({DQN})"),
            format!("({DQN}, training: (init_exclude: [\"2\"], freeze: [\"0\"]))"),
            format!("({TABLE})"),
            format!("({LM})"),
            format!("({CLASSIFIER})"),
            text(
                LM,
                "val_fraction: 0.1, test_fraction: 0.1",
                "val_fraction: 0.0, test_fraction: 0.0",
            ),
            text(
                LM,
                "val_fraction: 0.1, test_fraction: 0.1",
                "val_fraction: 0.5, test_fraction: 0.49",
            ),
            text(LM, "seq_len: 32", "seq_len: 2"),
            text(LM, "temperature: 0.8", "temperature: 1e-9"),
            text(LM, "tokens: Chars", "tokens: Chars, limit: Some(1)"),
            points(
                "samples: 4; noise: 6.0; test_fraction: 0.1",
                "Linear(out: 1)",
            ),
            points(
                "samples: 100000; noise: 0.0; test_fraction: 0.9",
                "Linear(out: 2)",
            ),
            points("kind: Plane; features: [X2, X1]", "Linear(out: 1)"),
        ]);
        let refused: Vec<String> = cases
            .iter()
            .filter_map(|text| {
                from_ron_str(text, "t.ron")
                    .err()
                    .map(|e| format!("{text}: {e}"))
            })
            .collect();
        assert!(refused.is_empty(), "{refused:#?}");
    }

    /// A text sample is as many steps as the language model's window
    /// (`seq_len`) or the classifier's cut-off (`max_len`): the shapes the
    /// model is checked against start there, so a PositionEmbedding one step
    /// shorter is refused and one exactly as long accepted.
    #[test]
    fn text_samples_are_as_long_as_the_window_or_the_cut_off() {
        for (base, steps) in [(LM, 32), (CLASSIFIER, 16)] {
            let exp = from_ron_str(&format!("({base})"), "t.ron").expect("valid");
            let DatasetSpec::Text(t) = &exp.dataset else {
                panic!("{:?}", exp.dataset);
            };
            assert_eq!(text_steps(t), steps);
            assert_eq!(dataset_io(&exp.dataset, 0), (vec![steps, 0], 0));
            let with_context = |context: usize| {
                text(
                    base,
                    "[Embedding(dim: 8), ",
                    &format!("[Embedding(dim: 8), PositionEmbedding(context: {context}), "),
                )
            };
            let e = invalid(&with_context(steps - 1));
            assert_eq!(e.field, "model[1] (PositionEmbedding)", "{e}");
            assert!(e.message.contains(&format!("{steps} steps")), "{e}");
            from_ron_str(&with_context(steps), "t.ron").expect("a context as long as a sample");
        }
    }

    /// A Controlled decay names its policy file and takes no scheduled changes
    /// (the policy steers the lr); with a policy and no changes it is accepted.
    #[test]
    fn a_controlled_lr_needs_a_policy_and_no_changes() {
        let policy = "schedule: (decay: Controlled(policy: \"p.ron\")";
        from_ron_str(&format!("({policy}))"), "t.ron").expect("a policy, no changes");
        let e = invalid(&format!(
            "(training: (epochs: 5), {policy}, changes: [(epoch: 2, set: {{\"optimizer.lr\": \"0.01\"}})]))"
        ));
        assert_eq!(e.field, "schedule.changes", "{e}");
        // The same change without the policy is accepted: the refusal is the policy's.
        from_ron_str(
            "(training: (epochs: 5), schedule: (changes: [(epoch: 2, set: {\"optimizer.lr\": \"0.01\"})]))",
            "t.ron",
        )
        .expect("a scheduled change alone");
    }
}
