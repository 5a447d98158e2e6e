//! The error types of `train`. [`RunFailure`] is why a run could not finish: the
//! worker turns it into the one `Failed` event (its kind, step and message); its
//! variants keep the underlying errors of the rooms training uses (dataset, text
//! corpus, layer shapes, checkpoint files, candle) as sources, and the ones made
//! here carry the sentence the user reads. [`DeviceError`] is a device this build
//! cannot open.

use std::path::PathBuf;

use crate::data::DataError;
use crate::data::text::TextDataError;
use crate::events::FailureKind;
use crate::runs::RunsError;
use crate::spec::ValidationError;

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunFailure {
    /// A problem with the user's setup, found before training; the message says
    /// what to change.
    #[error("{0}")]
    BadInput(String),
    /// The device named in the experiment cannot be opened.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The image dataset could not be found or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The text corpus or vocabulary could not be read.
    #[error(transparent)]
    Text(#[from] TextDataError),
    /// The layer list does not fit the data.
    #[error(transparent)]
    Shapes(#[from] ValidationError),
    /// `training.init_from` could not be applied.
    #[error(transparent)]
    InitFrom(#[from] InitFromError),
    /// The checkpoint to continue from could not be read.
    #[error("cannot resume from {}: {source}", dir.display())]
    Resume {
        /// The checkpoint folder.
        dir: PathBuf,
        /// Why it cannot be continued (boxed: large and rare).
        source: Box<ResumeError>,
    },
    /// candle failed (shapes, memory, a kernel) while doing `context`.
    #[error("{context}: {source}")]
    Candle {
        /// Steps done before the failure.
        step: u64,
        /// What was being done, e.g. "training error at step 40".
        context: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// Any other internal error at `step`.
    #[error("{message}")]
    Internal {
        /// Steps done before the failure.
        step: u64,
        /// What went wrong.
        message: String,
    },
    /// Something could not be written, said in words.
    #[error("{message}")]
    Storage {
        /// Steps done before the failure.
        step: u64,
        /// What was not written and why.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("{message}")]
    Diverged {
        /// The step at which it was seen.
        step: u64,
        /// The loss, the learning rate and what to try.
        message: String,
    },
}

impl RunFailure {
    /// An internal error (candle, shapes) at `step`.
    pub(crate) fn at(step: u64, message: impl Into<String>) -> Self {
        Self::Internal {
            step,
            message: message.into(),
        }
    }

    /// A candle error while doing `context` at `step`, for `map_err`.
    pub(crate) fn candle(
        step: u64,
        context: impl Into<String>,
    ) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| Self::Candle {
            step,
            context,
            source,
        }
    }

    /// A problem with the user's setup, found before training (any message,
    /// for `map_err`).
    pub(crate) fn input(message: impl std::fmt::Display) -> Self {
        Self::BadInput(message.to_string())
    }

    /// Something could not be written (disk full, read-only folder).
    pub(crate) fn storage(step: u64, message: impl Into<String>) -> Self {
        Self::Storage {
            step,
            message: message.into(),
        }
    }

    /// The loss became NaN or infinite.
    pub(crate) fn diverged(step: u64, message: impl Into<String>) -> Self {
        Self::Diverged {
            step,
            message: message.into(),
        }
    }

    /// Steps done before the failure (0 for problems found before training).
    pub(crate) fn step(&self) -> u64 {
        match self {
            Self::BadInput(_)
            | Self::Device(_)
            | Self::Data(_)
            | Self::Text(_)
            | Self::Shapes(_)
            | Self::InitFrom(_)
            | Self::Resume { .. } => 0,
            Self::Candle { step, .. }
            | Self::Internal { step, .. }
            | Self::Storage { step, .. }
            | Self::Diverged { step, .. } => *step,
        }
    }

    /// The broad cause, as the `Failed` event reports it.
    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            Self::BadInput(_)
            | Self::Device(_)
            | Self::Data(_)
            | Self::Text(_)
            | Self::Shapes(_)
            | Self::InitFrom(_)
            | Self::Resume { .. } => FailureKind::BadInput,
            Self::Candle { .. } | Self::Internal { .. } => FailureKind::Internal,
            Self::Storage { .. } => FailureKind::Storage,
            Self::Diverged { .. } => FailureKind::Diverged,
        }
    }
}

/// Why `training.init_from` could not load its weights.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitFromError {
    /// The path does not exist (usually: the run it names was never trained).
    #[error(
        "training.init_from: {} does not exist: train the run it names first \
         (`trainlab run EXPERIMENT --out {}`; a lesson's notes name the command), \
         or point init_from at a run folder that holds {}",
        from.display(),
        from.display(),
        crate::runs::files::WEIGHTS
    )]
    Missing {
        /// The path in the experiment.
        from: PathBuf,
    },
    /// The weights file could not be read.
    #[error("training.init_from: cannot read {}: {source}", path.display())]
    Read {
        /// The weights file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A matching tensor could not be copied into the model.
    #[error("{name}: {source}")]
    Copy {
        /// The tensor's name.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
}

/// Why a checkpoint cannot be continued by this run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResumeError {
    /// Its files could not be read.
    #[error(transparent)]
    Read(#[from] RunsError),
    /// Written by another version or for another kind of run.
    #[error(
        "it is a version {version} checkpoint of a {kind} run; this is a {this_kind} run \
         (version {this_version})"
    )]
    Kind {
        /// The checkpoint's state version.
        version: u32,
        /// The kind of run that wrote it.
        kind: String,
        /// This run's kind.
        this_kind: String,
        /// The state version this build writes.
        this_version: u32,
    },
    /// The batch size or the data changed.
    #[error(
        "an epoch had {then} steps then and has {now} now: training.batch_size or the \
         data changed since the checkpoint"
    )]
    StepsPerEpoch {
        /// Steps per epoch when written.
        then: u64,
        /// Steps per epoch now.
        now: u64,
    },
    /// Nothing is left to train.
    #[error(
        "the run already trained all {epochs} epochs ({steps} steps); to train more, raise \
         the epochs, e.g. --set training.epochs={}",
        epochs + 1
    )]
    AlreadyTrained {
        /// The experiment's epochs.
        epochs: usize,
        /// Steps in the checkpoint.
        steps: u64,
    },
    /// The model's tensors do not fit the experiment's layers.
    #[error("the checkpoint's model does not match this experiment's model: {0}")]
    Model(#[source] candle_core::Error),
    /// The optimizer's state does not fit.
    #[error("{0}")]
    Optimizer(#[source] candle_core::Error),
    /// The saved data order is for another training split.
    #[error("the checkpoint's data order covers {then} training {what}, this run has {now}")]
    Order {
        /// Items in the saved order.
        then: usize,
        /// What the items are ("images", "texts", "points").
        what: &'static str,
        /// Items now.
        now: usize,
    },
    /// A random stream is missing.
    #[error("the checkpoint has no random stream {name:?}")]
    Stream {
        /// The stream's name.
        name: String,
    },
    /// The run's record could not be reopened where the checkpoint left it.
    #[error("{0}")]
    Record(#[source] std::io::Error),
    /// A gridworld checkpoint of another version or method.
    #[error(
        "it is a version {version} checkpoint of a {method} {kind} run; this is a gridworld \
         {this_method} run"
    )]
    RlKind {
        /// The checkpoint's state version.
        version: u32,
        /// Its agent method.
        method: String,
        /// Its kind of run.
        kind: String,
        /// This run's agent method.
        this_method: String,
    },
    /// A gridworld run that played all its episodes.
    #[error(
        "the run already played all {episodes} episodes; to train more, raise them, \
         e.g. --set agent.episodes={}",
        episodes * 2
    )]
    AllEpisodesPlayed {
        /// The experiment's episodes.
        episodes: u64,
    },
    /// The checkpoint is of another kind of agent (table vs network).
    #[error("the checkpoint is of another kind of agent")]
    OtherAgent,
    /// A tensor the agent needs is missing.
    #[error("the checkpoint has no {name}")]
    NoTensor {
        /// What is missing ("Q-table", "replay.reward", ...).
        name: String,
    },
    /// A saved tensor could not be read.
    #[error("{name}: {source}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A tensor could not be read (no name to give).
    #[error("{0}")]
    Tensors(#[source] candle_core::Error),
    /// A Q-table row without 4 actions.
    #[error("the checkpoint's Q-table does not have 4 actions per state")]
    QTableWidth,
    /// A Q-table of another maze.
    #[error("the checkpoint's Q-table has {then} states, this maze has {now}")]
    QTableStates {
        /// States in the checkpoint.
        then: usize,
        /// States in this maze.
        now: usize,
    },
    /// A Q-network that does not fit the experiment's model.
    #[error("the checkpoint's network does not match this experiment's model: {0}")]
    Network(#[source] candle_core::Error),
    /// The replay buffer's parts disagree.
    #[error("the checkpoint's replay buffer is inconsistent")]
    Replay,
}

/// A compute device this build or machine cannot open.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The build lacks the backend.
    #[error(
        "device {name}: this build has no {backend} support; rebuild with \
         `cargo run --release --features {feature}`, or set `device: Cpu`"
    )]
    NotBuilt {
        /// "Cuda" or "Metal".
        name: &'static str,
        /// "CUDA" or "Metal".
        backend: &'static str,
        /// The cargo feature, "cuda" or "metal".
        feature: &'static str,
    },
    /// The backend is there but the device did not open.
    #[error("device {name}({index}): {source}")]
    Open {
        /// "Cuda" or "Metal".
        name: &'static str,
        /// The device index.
        index: usize,
        /// candle's error.
        source: candle_core::Error,
    },
}
