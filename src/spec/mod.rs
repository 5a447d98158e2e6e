//! What to run: the experiment file as plain serde data, how it is read (with
//! file:line:col errors), overridden from the command line, and validated.
//!
//! Nothing here knows about candle: a spec can be checked, edited and saved without
//! touching a device.

mod agent;
mod changes;
pub(crate) mod controller;
mod error;
mod experiment;
mod gridworld;
mod layers;
mod lesson;
mod load;
pub(crate) mod maze;
mod overrides;
mod points;
mod splice;
mod study;
mod text;
mod validate;
mod validate_rl;

pub use agent::{AgentMethod, AgentSpec, DqnLoss, DqnSpec, EpsilonSpec, TabularSpec, TargetUpdate};
pub use changes::{ChangeAt, scheduled_optimizers};
pub use controller::{
    ControllerError, ControllerMethod, ControllerSpec, Decision, EpisodeLog, Observation, Policy,
    PolicyKind, Reward, StateFeature, check_spec as check_controller, load_policy, policy_to_ron,
    state_index, state_label,
};
pub use error::in_plain_words;
pub use experiment::{
    Augment, CheckpointSpec, DataSource, DatasetSpec, DeviceSpec, EarlyStopping, Experiment,
    ImageDataset, ImageDatasetSpec, LrDecay, OptimizerSpec, Precision, PruneScope, PruneSpec,
    Regularization, RegularizationKind, ScheduleSpec, ScheduledChange, TrainingSpec,
};
pub use experiment::{Channels, DEFAULT_FOLDER_SIZE, DEFAULT_TEST_FRACTION, ResizeFilter};
pub use gridworld::{
    EncodingSpec, GeneratedMaze, GridworldSpec, LayoutSpec, MazeAlgorithm, RewardSpec,
};
pub use layers::{Elementwise, Inference, KINDS, LayerKind, Scripts, kind_names};
pub use layers::{FieldValue, LayerField, LayerShapeInfo, LayerSpec, Shape, infer_shapes};
pub use lesson::{Check, Expect, LessonFigure, LessonStep, OtherRun, claim_text};
pub use load::{SpecError, from_ron_str, load_file, to_ron_string};
pub use overrides::{apply_override, keep_decay_plan};
pub use points::{Feature, PointsKind, PointsSpec};
pub use study::{
    BaseSpec, Figure, LoadedStudy, Objective, Parallel, Param, Search, StudySpec, TrialWeights,
    json_text, load_study, setting_text, study_to_ron,
};
pub use text::{
    BundledText, ClassWeights, ClassificationSpec, Language, LanguageModelSpec, SampleSpec,
    SystemText, TextDatasetSpec, TextSource, TextTask, Tokens,
};
pub use validate::{GRID_ACTIONS, ValidationError, dataset_io, text_steps, uses_model, validate};
