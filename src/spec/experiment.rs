//! The experiment tree. Every struct denies unknown fields and has defaults, so a
//! minimal file is short and a typo is an error instead of being ignored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::agent::AgentSpec;
use super::gridworld::GridworldSpec;
use super::layers::LayerSpec;
use super::lesson::{Check, LessonStep};
use super::text::TextDatasetSpec;

/// One whole run: data, model, optimizer, schedule and training loop settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Experiment {
    /// Human name, used for run folder names and plot legends.
    pub name: String,
    /// What this experiment is for, what to try and what to look for (lessons):
    /// a few paragraphs of plain text with simple markdown (`#` headings, `-`
    /// lists, `code`), shown beside the experiment in the workbench.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Seed for weight init, shuffling, dropout and the train/val split.
    pub seed: u64,
    /// Where tensors live.
    pub device: DeviceSpec,
    /// Where samples come from.
    pub dataset: DatasetSpec,
    /// The layer list, applied in order to one sample.
    pub model: Vec<LayerSpec>,
    /// How gradients update the weights.
    pub optimizer: OptimizerSpec,
    /// How the learning rate changes over the run.
    pub schedule: ScheduleSpec,
    /// Epochs, batch size, evaluation and stopping rules.
    pub training: TrainingSpec,
    /// The reinforcement-learning agent (gridworld datasets only).
    pub agent: AgentSpec,
    /// Lessons: other runs `trainlab lesson verify` trains first, in order (the
    /// run this lesson starts from, runs its checks compare with).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<LessonStep>,
    /// Lessons: the figures the notes claim, measured by `trainlab lesson verify`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

impl Default for Experiment {
    fn default() -> Self {
        Self {
            name: "mnist_mlp".into(),
            notes: String::new(),
            seed: 42,
            device: DeviceSpec::Cpu,
            // The same as experiments/mnist_mlp.ron: bundled digits, shifted a little.
            dataset: DatasetSpec::Images(ImageDatasetSpec {
                augment: Some(Augment::default()),
                ..ImageDatasetSpec::default()
            }),
            model: vec![
                LayerSpec::Flatten,
                LayerSpec::Linear { out: 128 },
                LayerSpec::ReLU,
                LayerSpec::Linear { out: 10 },
            ],
            optimizer: OptimizerSpec::default(),
            schedule: ScheduleSpec::default(),
            training: TrainingSpec::default(),
            agent: AgentSpec::default(),
            steps: Vec::new(),
            checks: Vec::new(),
        }
    }
}

/// Compute device. Backends not compiled in are rejected with a message that names
/// the cargo feature to enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeviceSpec {
    /// The CPU; always available.
    #[default]
    Cpu,
    /// NVIDIA GPU with this ordinal (needs `--features cuda`).
    Cuda(usize),
    /// Apple GPU with this ordinal (needs `--features metal`).
    Metal(usize),
}

/// The kind of data a run learns from. Each variant carries its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DatasetSpec {
    /// 28x28 grey images with 10 classes (MNIST digits, Fashion-MNIST clothes), or
    /// a folder of your own images (one subfolder per class).
    Images(ImageDatasetSpec),
    /// A maze the agent learns to solve (reinforcement learning; see `agent`).
    Gridworld(GridworldSpec),
    /// Text: a character/word language model or text classification.
    Text(TextDatasetSpec),
    /// Points in the plane (the 2-D playground): two classes or a surface.
    Points(super::points::PointsSpec),
}

impl Default for DatasetSpec {
    fn default() -> Self {
        Self::Images(ImageDatasetSpec::default())
    }
}

/// Settings for an image classification dataset in IDX format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageDatasetSpec {
    /// Which dataset.
    pub name: ImageDataset,
    /// Where its files come from.
    pub source: DataSource,
    /// Fraction of the training set held out for validation (0 disables validation).
    pub val_fraction: f64,
    /// Use at most this many training samples (before the val split); handy for quick runs.
    pub train_limit: Option<usize>,
    /// Use at most this many test samples.
    pub test_limit: Option<usize>,
    /// Random changes to training images (never to val/test), e.g. shifts.
    pub augment: Option<Augment>,
    /// `Folder` sources: every image is resized to `(height, width)` (default 28x28).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<(usize, usize)>,
    /// `Folder` sources: grey (one channel) or colour (three).
    #[serde(skip_serializing_if = "Channels::is_gray")]
    pub channels: Channels,
    /// `Folder` sources: how images are resized to `size`.
    #[serde(skip_serializing_if = "ResizeFilter::is_default")]
    pub resize: ResizeFilter,
    /// `Folder` sources: files that cannot be decoded are skipped (and listed in a
    /// Note) instead of stopping the run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_unreadable: bool,
    /// `Folder` sources without `train/` and `test/` subfolders: the share of each
    /// class held out as the test set (seeded, stratified). None: 0.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
}

/// Colour channels of the images of a `Folder` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Channels {
    /// One channel, `[1, h, w]` (colour images are converted to grey).
    #[default]
    Gray,
    /// Red, green, blue: `[3, h, w]`.
    Rgb,
}

impl Channels {
    /// Channels per pixel.
    pub fn count(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb => 3,
        }
    }

    fn is_gray(&self) -> bool {
        *self == Self::Gray
    }
}

/// How images are resized (the `image` crate's filters, by their usual names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ResizeFilter {
    /// The nearest source pixel: fast, blocky.
    Nearest,
    /// Linear interpolation (bilinear): smooth, the usual choice.
    #[default]
    Triangle,
    /// Cubic interpolation (Catmull-Rom): sharper than Triangle.
    CatmullRom,
    /// Gaussian: softest.
    Gaussian,
    /// Lanczos with 3 lobes: sharpest, slowest.
    Lanczos3,
}

impl ResizeFilter {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Test share of a `Folder` source without `train/` and `test/` subfolders, when
/// `test_fraction` is not given.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// Image side of a `Folder` source when `size` is not given.
pub const DEFAULT_FOLDER_SIZE: (usize, usize) = (28, 28);

/// Training-time image augmentation: each time a training image is used it is
/// moved by a random offset, so the model sees more variety than the files hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Largest shift in pixels, in each direction (0 disables).
    pub max_shift: usize,
}

impl Default for Augment {
    fn default() -> Self {
        Self { max_shift: 2 }
    }
}

impl Default for ImageDatasetSpec {
    fn default() -> Self {
        Self {
            name: ImageDataset::Mnist,
            source: DataSource::Bundled,
            val_fraction: 0.1,
            train_limit: None,
            test_limit: None,
            augment: None,
            size: None,
            channels: Channels::Gray,
            resize: ResizeFilter::Triangle,
            skip_unreadable: false,
            test_fraction: None,
        }
    }
}

/// The image datasets trainlab knows how to find and verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ImageDataset {
    /// Handwritten digits 0-9.
    #[default]
    Mnist,
    /// Zalando's clothing images, same format as MNIST.
    FashionMnist,
}

/// Where dataset files are read from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DataSource {
    /// The sample shipped in `assets/` (MNIST only: 10,000 real digits).
    #[default]
    Bundled,
    /// A system package, e.g. Debian's `dataset-fashion-mnist`.
    System,
    /// A folder holding the four IDX files (`.gz` or raw).
    Dir(PathBuf),
    /// Download once into the per-user cache, verified by SHA-256.
    Download,
    /// Your own images: one subfolder per class (PNG, JPEG, BMP, GIF, WebP), or
    /// `train/` and `test/` each holding the class subfolders. `name` is ignored.
    Folder(PathBuf),
}

impl ImageDatasetSpec {
    /// Whether the images come from a folder of image files (not IDX files).
    pub fn is_folder(&self) -> bool {
        matches!(self.source, DataSource::Folder(_))
    }

    /// One sample's shape, `[channels, height, width]`.
    pub fn input_shape(&self) -> [usize; 3] {
        if self.is_folder() {
            let (h, w) = self.size.unwrap_or(DEFAULT_FOLDER_SIZE);
            [self.channels.count(), h, w]
        } else {
            [1, 28, 28]
        }
    }
}

/// Optimizer and its hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OptimizerSpec {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum.
    Sgd {
        /// Peak learning rate.
        lr: f64,
        /// Momentum factor (0 = plain SGD).
        #[serde(default)]
        momentum: f64,
        /// Use Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam; `weight_decay` is added to the gradient (L2), as in PyTorch's Adam.
    Adam {
        /// Peak learning rate.
        lr: f64,
        /// Decay of the first moment estimate.
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// Decay of the second moment estimate.
        #[serde(default = "default_beta2")]
        beta2: f64,
        /// Added to the denominator for stability.
        #[serde(default = "default_eps")]
        eps: f64,
        /// L2 penalty added to the gradient.
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        /// Peak learning rate.
        lr: f64,
        /// Decay of the first moment estimate.
        #[serde(default = "default_beta1")]
        beta1: f64,
        /// Decay of the second moment estimate.
        #[serde(default = "default_beta2")]
        beta2: f64,
        /// Added to the denominator for stability.
        #[serde(default = "default_eps")]
        eps: f64,
        /// Decoupled decay: weights shrink by lr * weight_decay each step.
        #[serde(default = "default_adamw_decay")]
        weight_decay: f64,
    },
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adamw_decay() -> f64 {
    0.01
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        Self::adam(1e-3)
    }
}

impl OptimizerSpec {
    /// Adam at `lr` with its usual betas and epsilon and no weight decay: what
    /// `Adam(lr: ...)` in an experiment file reads as.
    pub fn adam(lr: f64) -> Self {
        Self::Adam {
            lr,
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: 0.0,
        }
    }

    /// The configured (peak) learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd { lr, .. } | Self::Adam { lr, .. } | Self::AdamW { lr, .. } => *lr,
        }
    }

    /// Sets the configured (peak) learning rate.
    pub fn set_lr(&mut self, value: f64) {
        match self {
            Self::Sgd { lr, .. } | Self::Adam { lr, .. } | Self::AdamW { lr, .. } => *lr = value,
        }
    }
}

/// Learning-rate schedule: optional linear warmup, then a decay rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Steps over which the lr rises linearly from ~0 to its peak.
    pub warmup_steps: usize,
    /// What happens after warmup.
    pub decay: LrDecay,
    /// Optimizer settings that change at the start of an epoch (population-based
    /// training records its hyperparameter schedule here), in epoch order.
    pub changes: Vec<ScheduledChange>,
    /// The epochs the decay is planned over (a cosine reaches its floor at the end
    /// of them, then stays there); None: `training.epochs`. Extending a run
    /// (`trainlab resume DIR --set training.epochs=N`) sets it to the epochs the
    /// run was planned with, so the lr goes on from where it was instead of
    /// jumping back up a re-stretched curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay_epochs: Option<usize>,
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        Self {
            warmup_steps: 0,
            decay: LrDecay::Constant,
            changes: Vec::new(),
            decay_epochs: None,
        }
    }
}

/// From the start of epoch `epoch` (counted from 0) on, these `optimizer.*`
/// settings hold, e.g. `(epoch: 4, set: {"optimizer.lr": "0.0021"})`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledChange {
    /// The epoch whose first step uses the new settings (>= 1); 0 when `step`
    /// says when instead.
    #[serde(default)]
    pub epoch: usize,
    /// The optimizer step (>= 1, counted from 0) that first uses the new
    /// settings: a learned controller records its lr changes so. A file's
    /// changes are all by epoch or all by step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// `--set` path -> value text; only `optimizer.*` paths.
    pub set: std::collections::BTreeMap<String, String>,
}

/// How the learning rate decays after warmup.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LrDecay {
    /// Keep the peak lr.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between drops.
        every_epochs: usize,
        /// Factor applied at each drop.
        gamma: f64,
    },
    /// Half a cosine from the peak down to `peak * final_fraction` at the last step.
    Cosine {
        /// Where the curve ends, as a fraction of the peak.
        #[serde(default)]
        final_fraction: f64,
    },
    /// A learned controller's greedy policy (a study's `controller/policy.ron`)
    /// multiplies the lr at its decision steps; constant in between.
    Controlled {
        /// The policy file (relative to the working folder).
        policy: std::path::PathBuf,
    },
}

/// The training loop's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSpec {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per gradient step.
    pub batch_size: usize,
    /// Evaluate on the validation split every N steps (None: at the end of each epoch).
    pub eval_every_steps: Option<usize>,
    /// Emit a Step event (and read the loss back from the device) every N steps.
    pub log_every_steps: usize,
    /// Stop when the validation loss has not improved for a while.
    pub early_stopping: Option<EarlyStopping>,
    /// Rescale gradients so their global L2 norm is at most this.
    pub grad_clip_norm: Option<f64>,
    /// Save model.safetensors in the run folder at the end.
    pub save_weights: bool,
    /// Start from a previous run's weights (its folder or a `.safetensors` file):
    /// layers whose names and shapes match are loaded, mismatches are listed.
    pub init_from: Option<PathBuf>,
    /// Layers `init_from` leaves at their fresh values (same forms as `freeze`),
    /// e.g. a new output layer for a new task with the same number of classes.
    pub init_exclude: Vec<String>,
    /// Layers whose weights do not train: indices into `model` as text (`"0"`) or
    /// parameter-name prefixes (`"layers.1"`, `"head"`).
    pub freeze: Vec<String>,
    /// When to write checkpoints (everything needed to continue the run exactly);
    /// one is also written when a run is stopped or paused.
    pub checkpoint: CheckpointSpec,
    /// Magnitude pruning: at the start the smallest weights of the Linear, Conv2d,
    /// LSTM, GRU and Transformer layers are set to zero, and they stay zero after
    /// every step (the mask is held). Used with `init_from` to prune a trained
    /// model and fine-tune what is left (`trainlab compress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSpec>,
    /// A penalty on the size of the weights (not biases) added to the loss that
    /// is minimised: L1 (`rate * sum |w|`, drives weights to exactly zero) or L2
    /// (`rate * sum w^2 / 2`, shrinks them all, like `weight_decay`). The loss
    /// recorded is the data loss alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regularization: Option<Regularization>,
    /// Number format of the forward and backward compute (mixed precision):
    /// the weights, the optimizer state and every saved file stay F32.
    pub precision: Precision,
    /// Write TensorBoard event files into `RUN_DIR/tb/` as the run records
    /// (written out only when turned off).
    #[serde(skip_serializing_if = "is_true")]
    pub tensorboard: bool,
    /// Record per-layer activation and gradient statistics (quantiles, dead
    /// ReLUs, gradient norms) on a fixed batch of 64 training samples at every
    /// evaluation: the Layers tab and TensorBoard's histograms (written out only
    /// when turned off).
    #[serde(skip_serializing_if = "is_true")]
    pub layer_stats: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The compute precision of supervised training (`training.precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Precision {
    /// 32-bit floats throughout (trainlab's fast CPU kernels apply).
    #[default]
    F32,
    /// bfloat16 compute: f32's range with 8 bits of mantissa; needs no loss scaling.
    Bf16,
    /// IEEE half compute: 5 exponent bits, so the loss is scaled dynamically to keep
    /// small gradients from flushing to zero; overflowing steps are skipped.
    F16,
}

impl Precision {
    /// The name used in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::Bf16 => "Bf16",
            Self::F16 => "F16",
        }
    }
}

/// A weight penalty (`training.regularization`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regularization {
    /// L1 or L2.
    pub kind: RegularizationKind,
    /// Its weight in the loss (> 0; 1e-3 is a good start for the playground).
    pub rate: f64,
}

/// Which penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegularizationKind {
    /// Sum of absolute values.
    L1,
    /// Half the sum of squares.
    L2,
}

/// How much to prune, and whether the smallest weights are chosen over the
/// whole model or layer by layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    /// Share of the prunable weights set to zero, in [0, 1).
    pub sparsity: f64,
    /// Whole model (default) or every layer to the same sparsity.
    #[serde(default)]
    pub scope: PruneScope,
}

/// Where the smallest weights are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PruneScope {
    /// One threshold for all prunable weights: layers lose different shares.
    #[default]
    Global,
    /// Each layer loses the same share.
    PerLayer,
}

/// When a run writes checkpoints into `checkpoints/` of its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Every N epochs (None: not by epoch).
    pub every_epochs: Option<usize>,
    /// Every N steps (None: not by step).
    pub every_steps: Option<usize>,
    /// How many checkpoints to keep; older ones are deleted. 0: one while the
    /// run trains (a killed run resumes from it), none once it has ended on its
    /// own (completed, early-stopped, solved); a run stopped by hand or halted
    /// by a study keeps its newest, so it can be continued.
    pub keep_last: usize,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self {
            every_epochs: Some(1),
            every_steps: None,
            keep_last: 2,
        }
    }
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            eval_every_steps: None,
            log_every_steps: 10,
            early_stopping: None,
            grad_clip_norm: None,
            save_weights: true,
            init_from: None,
            init_exclude: Vec::new(),
            freeze: Vec::new(),
            checkpoint: CheckpointSpec::default(),
            prune: None,
            regularization: None,
            precision: Precision::F32,
            tensorboard: true,
            layer_stats: true,
        }
    }
}

/// Early stopping on validation loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStopping {
    /// Evaluations without improvement before stopping.
    pub patience: usize,
    /// An improvement smaller than this does not count.
    pub min_delta: f64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            patience: 3,
            min_delta: 0.0,
        }
    }
}
