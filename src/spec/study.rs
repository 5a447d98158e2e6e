//! Study files: a base experiment, a search space over its `--set` paths, a search
//! method, objectives and how many trials run at once. Read like experiment files
//! (RON, file:line:col for syntax and type errors); every path of the space is
//! checked against the base experiment, and an error there names the place in the
//! file where the path is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::controller::ControllerError;
use super::error::in_plain_words;
use super::experiment::Experiment;
use super::load::{SpecError, load_file, pretty_ron, ron_options};
use super::overrides::set_field;

/// A whole study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudySpec {
    /// Names the study folder.
    pub name: String,
    /// The experiment every trial starts from.
    pub base: BaseSpec,
    /// `--set` path -> the values it may take.
    pub space: BTreeMap<String, Param>,
    /// How trials are chosen (and stopped).
    pub search: Search,
    /// What is measured; the first drives the search, all form the Pareto front.
    pub objectives: Vec<Objective>,
    /// Trials at once on this machine.
    #[serde(default)]
    pub parallel: Parallel,
    /// Seeds the sampler (each trial keeps its experiment's own seed).
    #[serde(default)]
    pub seed: u64,
    /// How a trial keeps its final weights (`model.safetensors`) once it will not
    /// train again: in half the bytes (`F16`, the default) or as trained (`F32`).
    /// Always written into a study folder's `study.ron`, so the folder says which.
    #[serde(default)]
    pub trial_weights: TrialWeights,
}

/// The number format a finished trial's `model.safetensors` is kept in.
///
/// `F16`, the default, is a fidelity change: each weight is rounded to the
/// nearest half-precision value (about 3 significant digits) when the trial ends
/// (finished, stopped, failed); the trial's summary, journal and leaderboard
/// figures were measured before, with the weights it trained, and its
/// `experiment.ron` trains those weights again exactly (`trainlab run`). It is
/// the default because a study keeps every trial's model: at f32, 100 trials of
/// a 784-128-10 MLP keep 40.7 MB of weights, at f16 half that (the footprint
/// target in `benches/README.md`). Loading such a file (export, `compress`,
/// `init_from`) widens it back to f32. Checkpoints, which a resume needs exactly,
/// are never converted; a `Controller` study's episodes keep their weights as
/// trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TrialWeights {
    /// As trained: 4 bytes a weight.
    F32,
    /// Rounded to half precision: 2 bytes a weight.
    #[default]
    F16,
}

/// Where the base experiment comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BaseSpec {
    /// An experiment file, relative to the study file.
    File(PathBuf),
    /// The experiment written out in the study file.
    Inline(Box<Experiment>),
}

/// The values one path may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Param {
    /// Uniform in [low, high].
    Uniform(f64, f64),
    /// Uniform in log space between low and high (both > 0).
    LogUniform(f64, f64),
    /// Whole numbers in [low, high], uniform.
    IntUniform(i64, i64),
    /// Whole numbers in [low, high], uniform in log space (low >= 1).
    IntLogUniform(i64, i64),
    /// One of these values (numbers, text, names), uniform.
    Choice(Vec<ron::Value>),
    /// low, low + step, ... up to high (grid search steps through it).
    Range {
        /// First value.
        low: f64,
        /// Last value (included when a step lands on it).
        high: f64,
        /// Step between values (> 0).
        step: f64,
    },
}

/// How trials are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Search {
    /// Every combination of the space's Choices and Ranges.
    Grid,
    /// `trials` random points of the space.
    Random {
        /// Points to try.
        trials: usize,
    },
    /// Asynchronous successive halving: `trials` random points start with
    /// `min_epochs`; the best 1/eta of each rung go on to eta times as many epochs
    /// (continuing from their checkpoint), up to `max_epochs`.
    Asha {
        /// Points to try.
        trials: usize,
        /// Epochs of the first rung.
        min_epochs: usize,
        /// Epochs of a trial that is never stopped.
        max_epochs: usize,
        /// Reduction factor (>= 2).
        eta: usize,
    },
    /// Population-based training: `population` random points train side by
    /// side; every `interval_epochs` the worst `quantile` of them copy the
    /// weights and settings of one of the best `quantile`, multiply each setting
    /// by one of `perturb` (a choice moves to a neighbour) and go on, up to
    /// `max_epochs`. Only `optimizer.*` settings can be explored: they change
    /// mid-run (a one-value Choice fixes any other setting). Each member's history is in its experiment's `schedule.changes`.
    Pbt {
        /// Members training at once.
        population: usize,
        /// Epochs between exploit/explore steps.
        interval_epochs: usize,
        /// Epochs of the whole run.
        max_epochs: usize,
        /// Share of the population replaced (and copied from) at each step.
        #[serde(default = "default_quantile")]
        quantile: f64,
        /// Factors a copied setting is multiplied by (one drawn at random).
        #[serde(default = "default_perturb")]
        perturb: (f64, f64),
    },
    /// A learned lr controller: `episodes` runs of the base experiment one
    /// after the other, each steered by the agent, which learns between them
    /// (the space stays empty). See docs/controller.md.
    Controller(super::controller::ControllerSpec),
}

fn default_quantile() -> f64 {
    0.25
}

fn default_perturb() -> (f64, f64) {
    (0.8, 1.2)
}

/// A summary figure to maximise or minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    /// Larger is better.
    Maximize(Figure),
    /// Smaller is better.
    Minimize(Figure),
}

impl Objective {
    /// The figure measured.
    pub fn figure(self) -> Figure {
        match self {
            Self::Maximize(f) | Self::Minimize(f) => f,
        }
    }

    /// `value` turned so that larger is always better.
    pub fn score(self, value: f64) -> f64 {
        match self {
            Self::Maximize(_) => value,
            Self::Minimize(_) => -value,
        }
    }

    /// Column name, e.g. `max ValAccuracy`.
    pub fn label(self) -> String {
        match self {
            Self::Maximize(f) => format!("max {f:?}"),
            Self::Minimize(f) => format!("min {f:?}"),
        }
    }
}

/// The figures of a run summary a study can optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Figure {
    /// Last validation accuracy.
    ValAccuracy,
    /// Last validation loss.
    ValLoss,
    /// Test accuracy.
    TestAccuracy,
    /// Test loss.
    TestLoss,
    /// Training loss of the last epoch.
    TrainLoss,
    /// Language models: bits per token (test, else validation).
    BitsPerToken,
    /// Trainable parameters.
    Parameters,
    /// Training seconds.
    TrainSeconds,
    /// Samples (or tokens) per second.
    SamplesPerSec,
    /// Gridworld: share of recent episodes that reached a goal.
    SuccessRate,
    /// Gridworld: greedy path length over the optimal one (1 = optimal; none
    /// when the greedy path does not reach a goal).
    PathRatio,
}

impl Figure {
    /// The figure as a person reads it: accuracies and rates as percentages (as
    /// in run summaries), counts as whole numbers, small values in scientific
    /// notation instead of rounding to 0.0000.
    pub fn value_text(self, v: f64) -> String {
        match self {
            Self::ValAccuracy | Self::TestAccuracy | Self::SuccessRate => {
                format!("{:.2} %", v * 100.0)
            }
            Self::Parameters => format!("{}", v.round() as i64),
            Self::TrainSeconds => format!("{v:.1} s"),
            Self::SamplesPerSec => format!("{v:.0}/s"),
            Self::ValLoss | Self::TestLoss | Self::TrainLoss | Self::BitsPerToken => {
                setting_text(v)
            }
            Self::PathRatio => format!("{v:.3}"),
        }
    }
}

/// A number for a table: whole numbers as they are, very small or large ones in
/// scientific notation (a learning rate of 1.18e-5 does not round to 0.0000),
/// others to 4 significant digits.
pub fn setting_text(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.3e}");
    }
    // 4 significant digits, trailing zeros dropped.
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// How many trials run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Parallel {
    /// One trial per core, at most the number of trials.
    #[default]
    Auto,
    /// This many.
    Trials(usize),
}

/// A study file read and checked, with its base experiment.
#[derive(Debug, Clone)]
pub struct LoadedStudy {
    /// The study as written.
    pub spec: StudySpec,
    /// The base experiment, resolved.
    pub base: Experiment,
}

/// Reads a study file and its base experiment and checks every path and range,
/// and that every value of the space fits the type of its field.
///
/// `base` is `File("exp.ron")`, `Inline(...)` or a plain path string
/// (`base: "../exp.ron"`, the same as `File`); paths are relative to the study file.
pub fn load_study(path: &Path) -> Result<LoadedStudy, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let base_at = base_value(&text);
    let at_base = |message: String| {
        let (line, col) = base_at.map_or((1, 1), |(key, _)| line_col(&text, key));
        SpecError::Parse {
            file: file.clone(),
            line,
            col,
            message,
        }
    };
    // `base: "x.ron"` is read as `base: File("x.ron")`.
    let parsed_text = match base_at {
        Some((_, value)) if text[value..].starts_with('"') => {
            let end = value + string_len(&text[value..]);
            format!(
                "{}File({}){}",
                &text[..value],
                &text[value..end],
                &text[end..]
            )
        }
        _ => text.clone(),
    };
    let spec: StudySpec = ron_options()
        .from_str(&parsed_text)
        .map_err(|e| SpecError::Parse {
            file: file.clone(),
            line: e.span.start.line,
            col: e.span.start.col,
            message: study_words(&e.code.to_string()),
        })?;
    let base = match &spec.base {
        BaseSpec::File(p) => {
            let folder = path.parent().unwrap_or(Path::new("."));
            let p = folder.join(p);
            match load_file(&p) {
                Ok(exp) => exp,
                Err(SpecError::Io { source, .. }) => {
                    return Err(at_base(format!(
                        "base: cannot read the experiment {} ({source}); the path is \
                         relative to the study file's folder{}",
                        p.display(),
                        if folder.as_os_str().is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", folder.display())
                        }
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        BaseSpec::Inline(exp) => (**exp).clone(),
    };
    check(&spec, &base).map_err(|(key, message)| {
        // Point at the key where it is written (its first occurrence).
        let (line, col) = key
            .and_then(|k| text.find(&format!("\"{k}\"")))
            .map_or((1, 1), |at| line_col(&text, at));
        SpecError::Parse {
            file: file.clone(),
            line,
            col,
            message,
        }
    })?;
    Ok(LoadedStudy { spec, base })
}

/// RON's message about a study file in plain words; a file that is not a study
/// at all says what one looks like.
fn study_words(message: &str) -> String {
    let plain = in_plain_words(message);
    if message.contains("StudySpec") || message.starts_with("Expected opening `(`") {
        format!(
            "{plain}: a study file is one `( ... )` group with the fields name, base, \
             space, search and objectives, e.g. (name: \"lr\", base: \"../mnist_mlp.ron\", \
             space: {{\"optimizer.lr\": LogUniform(1e-4, 1e-1)}}, search: Random(trials: 8), \
             objectives: [Maximize(ValAccuracy)])"
        )
    } else {
        plain
    }
}

/// Where the top-level `base` field is written: (offset of the name, offset of
/// its value). Strings and comments are skipped, so `base:` inside them or
/// inside nested groups does not count.
fn base_value(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += string_len(&text[i..]);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'b' if depth == 1
                && text[i..].starts_with("base")
                && (i == 0 || !is_ident(bytes[i - 1]))
                && !bytes.get(i + 4).copied().is_some_and(is_ident) =>
            {
                let after = &text[i + 4..];
                let colon = after.len() - after.trim_start().len();
                if after[colon..].starts_with(':') {
                    let value = &after[colon + 1..];
                    let gap = value.len() - value.trim_start().len();
                    return Some((i, i + 4 + colon + 1 + gap));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length in bytes of the string literal `text` starts with (quotes included;
/// the rest of the text when it is not closed).
fn string_len(text: &str) -> usize {
    let mut escaped = false;
    for (at, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return at + 1,
            _ => {}
        }
    }
    text.len()
}

/// The study as RON that [`load_study`] reads back.
pub fn study_to_ron(spec: &StudySpec) -> String {
    pretty_ron(spec, 6)
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Problems with a controller study.
fn check_controller(
    spec: &StudySpec,
    c: &super::controller::ControllerSpec,
    base: &Experiment,
) -> Result<(), ControllerError> {
    super::controller::check_spec(c)?;
    if !spec.space.is_empty() {
        return Err(ControllerError::Study(
            "space: a Controller study trains the base experiment in every episode; leave \
             it empty (space: {}) and set the base's settings in its file",
        ));
    }
    if spec.objectives.is_empty() {
        return Err(ControllerError::Study(
            "objectives: give at least one, e.g. [Maximize(ValAccuracy)]",
        ));
    }
    if matches!(base.dataset, super::DatasetSpec::Gridworld(_)) {
        return Err(ControllerError::Study(
            "search: Controller steers an optimizer's lr; gridworld runs have none",
        ));
    }
    if matches!(base.schedule.decay, super::LrDecay::Controlled { .. })
        || !base.schedule.changes.is_empty()
    {
        return Err(ControllerError::Study(
            "search: Controller: the base experiment's lr must not be steered already \
             (no Controlled decay, no schedule.changes)",
        ));
    }
    Ok(())
}

/// Problems with the study, as (the space key it concerns, message).
fn check(spec: &StudySpec, base: &Experiment) -> Result<(), (Option<String>, String)> {
    let whole = |m: String| (None, m);
    if let Search::Controller(c) = &spec.search {
        return check_controller(spec, c, base).map_err(|e| whole(e.to_string()));
    }
    if spec.space.is_empty() {
        return Err(whole("space: give at least one path to explore".into()));
    }
    if spec.objectives.is_empty() {
        return Err(whole(
            "objectives: give at least one, e.g. [Maximize(ValAccuracy)]".into(),
        ));
    }
    match spec.search {
        Search::Pbt {
            population,
            interval_epochs,
            max_epochs,
            quantile,
            perturb: (down, up),
        } => {
            if population < 2 || interval_epochs == 0 || max_epochs <= interval_epochs {
                return Err(whole(
                    "search: Pbt needs population >= 2 and 1 <= interval_epochs < max_epochs"
                        .into(),
                ));
            }
            if !(quantile > 0.0 && quantile <= 0.5) {
                return Err(whole(format!(
                    "search: Pbt quantile {quantile} must be in (0, 0.5]"
                )));
            }
            if !(down > 0.0 && down.is_finite() && up > 0.0 && up.is_finite()) {
                return Err(whole(format!(
                    "search: Pbt perturb factors ({down}, {up}) must be positive"
                )));
            }
            // A Choice of one value is a fixed setting, not explored: allowed anywhere.
            let fixed = |p: &Param| matches!(p, Param::Choice(v) if v.len() == 1);
            if let Some(path) = spec
                .space
                .iter()
                .find(|(p, param)| !p.starts_with("optimizer.") && !fixed(param))
                .map(|(p, _)| p)
            {
                return Err((
                    Some(path.clone()),
                    format!(
                        "space \"{path}\": Pbt changes settings during a run, which only \
                         optimizer.* settings can do; explore this one with Random or Asha"
                    ),
                ));
            }
        }
        Search::Random { trials: 0 } | Search::Asha { trials: 0, .. } => {
            return Err(whole("search: trials must be at least 1".into()));
        }
        Search::Asha {
            min_epochs,
            max_epochs,
            eta,
            ..
        } if min_epochs == 0 || max_epochs < min_epochs || eta < 2 => {
            return Err(whole(
                "search: Asha needs 1 <= min_epochs <= max_epochs and eta >= 2".into(),
            ));
        }
        _ => {}
    }
    if spec.parallel == Parallel::Trials(0) {
        return Err(whole("parallel: at least 1 trial at once".into()));
    }
    for (path, param) in &spec.space {
        let at = |m: String| (Some(path.clone()), format!("space \"{path}\": {m}"));
        let values = param.check().map_err(at)?;
        if spec.search == Search::Grid && values.is_none() {
            return Err(at(
                "Grid search needs Choice([...]) or Range(low, high, step) here".into(),
            ));
        }
        // The path must exist in the base experiment, and every value a trial
        // may get must fit its field, or every such trial would fail.
        for probe in param.probes() {
            if let Err(e) = set_field(base, &format!("{path}={probe}")) {
                let message = match e {
                    // Without the hint on writing `--set` values: this is a study file.
                    SpecError::Override { message, .. } => message
                        .split("; write VALUE")
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    other => other.to_string(),
                };
                if message.contains("has no field") {
                    return Err(at(message));
                }
                let hint = match param {
                    Param::Uniform(..) | Param::LogUniform(..) | Param::Range { .. } => {
                        "; for a whole-number field use IntUniform(low, high), \
                         IntLogUniform(low, high) or Choice([...])"
                    }
                    _ => "",
                };
                return Err(at(format!(
                    "the value {probe} does not fit this field: {message}{hint}"
                )));
            }
        }
    }
    Ok(())
}

impl Param {
    /// Checks the range; the grid values, for Choice and Range.
    /// Boundary: the text is the message of the `SpecError` (or the study
    /// error) its callers make, which adds the parameter's path.
    pub fn check(&self) -> Result<Option<Vec<String>>, String> {
        let ordered = |lo: f64, hi: f64| {
            if lo.is_finite() && hi.is_finite() && lo < hi {
                Ok(())
            } else {
                Err(format!("low {lo} must be below high {hi}"))
            }
        };
        match self {
            Self::Uniform(lo, hi) => ordered(*lo, *hi).map(|()| None),
            Self::LogUniform(lo, hi) => {
                ordered(*lo, *hi)?;
                if *lo <= 0.0 {
                    return Err(format!("a log range must stay above 0 (low is {lo})"));
                }
                Ok(None)
            }
            Self::IntUniform(lo, hi) => ordered(*lo as f64, *hi as f64).map(|()| None),
            Self::IntLogUniform(lo, hi) => {
                ordered(*lo as f64, *hi as f64)?;
                if *lo < 1 {
                    return Err(format!("a log range must stay above 0 (low is {lo})"));
                }
                Ok(None)
            }
            Self::Choice(v) if v.is_empty() => Err("Choice([]) offers nothing to try".into()),
            Self::Choice(v) => v
                .iter()
                .map(json_text)
                .collect::<Result<_, _>>()
                .map(Some)
                .map_err(|e| e.to_string()),
            Self::Range { low, high, step } => {
                ordered(*low, *high)?;
                if step.is_nan() || *step <= 0.0 {
                    return Err(format!("step {step} must be above 0"));
                }
                let n = ((high - low) / step + 1e-9).floor() as usize + 1;
                if n > 10_000 {
                    return Err(format!("{n} values is too many for a grid"));
                }
                // Rounded to 9 decimals so 0.1 + 2 * 0.1 reads 0.3.
                Ok(Some(
                    (0..n)
                        .map(|i| format!("{}", ((low + i as f64 * step) * 1e9).round() / 1e9))
                        .collect(),
                ))
            }
        }
    }

    /// Values of the space that stand for all a trial may get, as `--set` value
    /// text: every choice and grid value, the ends of an integer range, and a
    /// fractional point of a real range (what its draws look like).
    fn probes(&self) -> Vec<String> {
        match self {
            Self::Uniform(lo, hi) | Self::LogUniform(lo, hi) => {
                let x = lo + (hi - lo) * 0.37;
                // A draw is practically never whole; make the probe look like one.
                let x = if x.fract() == 0.0 {
                    x + (hi - lo) * 0.01
                } else {
                    x
                };
                vec![format!("{x:?}")]
            }
            Self::IntUniform(lo, hi) | Self::IntLogUniform(lo, hi) => {
                vec![lo.to_string(), hi.to_string()]
            }
            Self::Choice(_) | Self::Range { .. } => {
                let values = self.check().ok().flatten().unwrap_or_default();
                // A long grid: its ends and a few between stand for it.
                let step = (values.len() / 50).max(1);
                let mut picked: Vec<String> = values.iter().step_by(step).cloned().collect();
                if let Some(last) = values.last()
                    && picked.last() != Some(last)
                {
                    picked.push(last.clone());
                }
                picked
            }
        }
    }
}

/// A `Choice` value that has no JSON form for `--set`.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {value} as a value: {source}")]
pub struct NotAValue {
    /// The RON value, as Rust's debug form writes it.
    value: String,
    /// Why it does not convert.
    source: ron::Error,
}

/// A RON value as the JSON text `--set` reads (names become strings).
pub fn json_text(v: &ron::Value) -> Result<String, NotAValue> {
    let json: serde_json::Value = v.clone().into_rust().map_err(|source| NotAValue {
        value: format!("{v:?}"),
        source,
    })?;
    Ok(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("s.ron");
        std::fs::write(&p, text).expect("write");
        p
    }

    const GOOD: &str = r#"(
    name: "t",
    base: Inline(name: "base"),
    space: {
        "optimizer.lr": LogUniform(1e-4, 3e-2),
        "model.1.Linear.out": Choice([64, 128]),
        "training.batch_size": Choice([32, 64]),
    },
    search: Random(trials: 4),
    objectives: [Maximize(ValAccuracy), Minimize(Parameters)],
    seed: 1,
)"#;

    #[test]
    fn a_good_study_loads_and_bad_ones_name_the_place() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = load_study(&write(dir.path(), GOOD)).expect("loads");
        assert_eq!(s.spec.space.len(), 3);
        assert_eq!(s.spec.parallel, Parallel::Auto);
        let cases = [
            (
                GOOD.replace("\"optimizer.lr\"", "\"optimizer.lrr\""),
                "s.ron:5:9",
                "no field `lrr`",
            ),
            (
                GOOD.replace("[64, 128]", "[]"),
                "s.ron:6:9",
                "offers nothing",
            ),
            (GOOD.replace("3e-2", "1e-5"), "s.ron:5:9", "below high"),
            (GOOD.replace("1e-4", "0.0"), "s.ron:5:9", "above 0"),
            (
                GOOD.replace("Random(trials: 4)", "Grid"),
                "s.ron:5:9",
                "Grid search needs",
            ),
            (GOOD.replace("seed: 1", "sed: 1"), "s.ron:11:", "sed"),
            (
                GOOD.replace(
                    "Random(trials: 4)",
                    "Pbt(population: 4, interval_epochs: 1, max_epochs: 3)",
                ),
                "s.ron:6:9",
                "only optimizer.* settings",
            ),
            (
                GOOD.replace(
                    "Random(trials: 4)",
                    "Pbt(population: 1, interval_epochs: 1, max_epochs: 3)",
                ),
                "s.ron:1:1",
                "population >= 2",
            ),
        ];
        for (text, place, what) in cases {
            let err = load_study(&write(dir.path(), &text))
                .expect_err(what)
                .to_string();
            assert!(err.contains(place) && err.contains(what), "{what}: {err}");
        }
    }

    #[test]
    fn base_may_be_a_plain_path_relative_to_the_study_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let sub = dir.path().join("studies");
        std::fs::create_dir(&sub).expect("mkdir");
        let exp = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fashion_mlp.ron");
        std::fs::copy(&exp, dir.path().join("fashion_mlp.ron")).expect("copy");
        let text = GOOD.replace(r#"Inline(name: "base")"#, r#""../fashion_mlp.ron""#);
        let s = load_study(&write(&sub, &text)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.spec.base, BaseSpec::File("../fashion_mlp.ron".into()));
        assert_eq!(s.base.name, "fashion_mlp");
        // The File form still reads the same.
        let text = GOOD.replace(r#"Inline(name: "base")"#, r#"File("../fashion_mlp.ron")"#);
        let s = load_study(&write(&sub, &text)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.base.name, "fashion_mlp");
        // `base:` in a comment or a string is not the field.
        let text = GOOD.replace(
            "    name: \"t\",",
            "    // base: \"nothing.ron\"\n    name: \"base: x\",",
        );
        load_study(&write(&sub, &text)).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_missing_base_names_the_study_file_and_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = GOOD.replace(r#"Inline(name: "base")"#, r#""no_such.ron""#);
        let err = load_study(&write(dir.path(), &text))
            .expect_err("no base")
            .to_string();
        assert!(err.contains("s.ron:3:5"), "the study file and line: {err}");
        assert!(err.contains("no_such.ron"), "the base path: {err}");
        assert!(err.contains("relative to the study file"), "{err}");
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_before_any_trial() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = GOOD.replace("[64, 128]", r#"[12.5, "wide"]"#);
        let err = load_study(&write(dir.path(), &text))
            .expect_err("a width must be whole")
            .to_string();
        assert!(err.contains("s.ron:6:9"), "{err}");
        assert!(err.contains("model.1.Linear.out"), "names the knob: {err}");
        assert!(err.contains("whole number"), "says what it needs: {err}");
        assert!(!err.contains("usize") && !err.contains("u64"), "{err}");
        let text = GOOD.replace("Choice([64, 128])", "Uniform(16.0, 64.0)");
        let err = load_study(&write(dir.path(), &text))
            .expect_err("a real range for a whole number")
            .to_string();
        assert!(
            err.contains("IntUniform"),
            "suggests the integer form: {err}"
        );
        let text = GOOD.replace("Choice([64, 128])", "IntUniform(16, 64)");
        load_study(&write(dir.path(), &text)).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_file_that_is_not_a_study_says_what_one_looks_like() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = load_study(&write(dir.path(), "just some words"))
            .expect_err("not RON")
            .to_string();
        assert!(!err.contains("StudySpec"), "{err}");
        assert!(err.contains("a study file is"), "{err}");
    }

    #[test]
    fn every_example_study_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/studies");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("experiments/studies") {
            let path = entry.expect("entry").path();
            load_study(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
        assert!(seen >= 5, "{seen} example studies");
    }

    #[test]
    fn figures_read_as_in_run_summaries() {
        assert_eq!(Figure::ValAccuracy.value_text(0.9712), "97.12 %");
        assert_eq!(Figure::Parameters.value_text(203530.0), "203530");
        assert_eq!(Figure::ValLoss.value_text(0.123456), "0.1235");
        assert_eq!(setting_text(1.18e-5), "1.180e-5");
        assert_eq!(setting_text(0.0021), "0.0021");
        assert_eq!(setting_text(64.0), "64");
        assert_eq!(setting_text(0.5), "0.5");
        assert_eq!(setting_text(2.5e7), "25000000", "whole: as it is");
        assert_eq!(setting_text(123456.5), "1.235e5");
    }

    #[test]
    fn ranges_step_through_their_values() {
        let r = Param::Range {
            low: 0.1,
            high: 0.5,
            step: 0.2,
        };
        assert_eq!(
            r.check().expect("ok"),
            Some(vec!["0.1".into(), "0.3".into(), "0.5".into()])
        );
        let c = Param::Choice(vec![ron::Value::String("Mnist".into())]);
        assert_eq!(c.check().expect("ok"), Some(vec!["\"Mnist\"".into()]));
    }
}
