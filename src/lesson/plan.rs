//! Which runs a lesson needs, in order, and whether its steps and checks make
//! sense before anything trains (file:line:col errors).

use std::path::{Component, Path, PathBuf};

use super::BadLesson;
use crate::spec::{
    Check, Expect, Experiment, LessonStep, OtherRun, apply_override, claim_text, load_file,
};

/// Which run a figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunKey {
    /// The lesson's own run.
    Lesson,
    /// A step, by name.
    Step(String),
    /// An experiment file a check compares with (as written in the lesson).
    File(PathBuf),
}

impl RunKey {
    /// The run in words, e.g. `step "mlp"`.
    pub fn describe(&self) -> String {
        match self {
            Self::Lesson => "the lesson".into(),
            Self::Step(name) => format!("step \"{name}\""),
            Self::File(path) => format!("{}", path.display()),
        }
    }

    pub(crate) fn from_other(other: &OtherRun) -> Self {
        match other {
            OtherRun::Step(name) => Self::Step(name.clone()),
            OtherRun::File(path) => Self::File(path.clone()),
        }
    }
}

/// One run to train.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Which one.
    pub key: RunKey,
    /// The experiment, overrides applied.
    pub experiment: Experiment,
    /// Where it comes from, for progress lines (a file, with its overrides).
    pub source: String,
    /// The folder the lesson reads it from (`LessonStep::out`).
    pub out: Option<PathBuf>,
}

impl Run {
    /// Its folder name inside the scratch folder.
    pub fn folder_name(&self) -> String {
        let raw = match &self.key {
            RunKey::Lesson => "lesson".to_string(),
            RunKey::Step(name) => format!("step-{name}"),
            RunKey::File(path) => format!("file-{}", path.display()),
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Reads the lesson, checks its steps and checks, and lists the runs to train:
/// the steps in file order, the files checks compare with, then the lesson.
pub fn plan_runs(file: &Path, overrides: &[String]) -> Result<Vec<Run>, BadLesson> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| BadLesson(format!("cannot read {}: {e}", file.display())))?;
    let mut lesson = load_file(file).map_err(|e| BadLesson(e.to_string()))?;
    let at = |needle: &str| locate(file, &text, needle);
    check_structure(&lesson, file, &at)?;
    for o in overrides {
        lesson = apply_override(&lesson, o).map_err(|e| BadLesson(e.to_string()))?;
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut runs = Vec::new();
    for step in &lesson.steps {
        let (experiment, source) = step_experiment(&lesson, step, dir, file, &at)?;
        runs.push(Run {
            key: RunKey::Step(step.name.clone()),
            experiment,
            source,
            out: step.out.clone(),
        });
    }
    for check in &lesson.checks {
        if let Expect::LessThan(OtherRun::File(path)) | Expect::GreaterThan(OtherRun::File(path)) =
            &check.is
        {
            let key = RunKey::File(path.clone());
            if runs.iter().any(|r| r.key == key) {
                continue;
            }
            let full = dir.join(path);
            let experiment = load_file(&full).map_err(|e| {
                BadLesson(format!(
                    "{}: the file a check compares with: {e}",
                    at(&path.display().to_string())
                ))
            })?;
            runs.push(Run {
                key,
                experiment,
                source: normalise(&full).display().to_string(),
                out: None,
            });
        }
    }
    let mut source = file.display().to_string();
    for o in overrides {
        source.push_str(&format!(" --set '{o}'"));
    }
    runs.push(Run {
        key: RunKey::Lesson,
        experiment: lesson,
        source,
        out: None,
    });
    Ok(runs)
}

/// The experiment of one step and where it comes from.
fn step_experiment(
    lesson: &Experiment,
    step: &LessonStep,
    dir: &Path,
    file: &Path,
    at: &dyn Fn(&str) -> String,
) -> Result<(Experiment, String), BadLesson> {
    let (mut exp, mut source) = match &step.file {
        // The lesson itself, the reader's --set included.
        None => (lesson.clone(), file.display().to_string()),
        Some(path) => {
            let full = dir.join(path);
            let exp = load_file(&full).map_err(|e| {
                BadLesson(format!("{}: step \"{}\": {e}", at(&step.name), step.name))
            })?;
            (exp, normalise(&full).display().to_string())
        }
    };
    for o in &step.set {
        exp = apply_override(&exp, o)
            .map_err(|e| BadLesson(format!("{}: step \"{}\": {e}", at(o), step.name)))?;
        source.push_str(&format!(" --set '{o}'"));
    }
    // A step's own steps and checks belong to it as a lesson, not to this one.
    exp.steps.clear();
    exp.checks.clear();
    Ok((exp, source))
}

/// Refuses steps and checks that cannot be measured, naming where they are.
fn check_structure(
    lesson: &Experiment,
    file: &Path,
    at: &dyn Fn(&str) -> String,
) -> Result<(), BadLesson> {
    if lesson.checks.is_empty() {
        return Err(BadLesson(format!(
            "{}: this file has no checks: a lesson lists the figures its notes claim, e.g. \
             `checks: [(claim: \"accuracy stays near 10 %\", figure: TestAccuracy, is: AtMost(0.2))]`",
            file.display()
        )));
    }
    let names: Vec<&str> = lesson.steps.iter().map(|s| s.name.as_str()).collect();
    for (i, step) in lesson.steps.iter().enumerate() {
        if step.name.trim().is_empty() || names[..i].contains(&step.name.as_str()) {
            return Err(BadLesson(format!(
                "{}: step {} needs a name of its own (names so far: {})",
                at("steps"),
                i + 1,
                names[..i].join(", ")
            )));
        }
    }
    let known = |name: &str, check: &Check| {
        if names.contains(&name) {
            Ok(())
        } else {
            Err(BadLesson(format!(
                "{}: the check \"{}\" names step \"{name}\", but the steps are: {}",
                at(&format!("\"{name}\"")),
                check.claim,
                if names.is_empty() {
                    "none (add `steps: [(name: ..., file: ...)]`)".to_string()
                } else {
                    names.join(", ")
                }
            )))
        }
    };
    let notes = claim_text(&lesson.notes);
    for check in &lesson.checks {
        let here = || at(&check.claim);
        if check.claim.trim().is_empty() || !notes.contains(&claim_text(&check.claim)) {
            return Err(BadLesson(format!(
                "{}: the claim \"{}\" is not in the notes: quote the words of the notes \
                 that this check backs",
                here(),
                check.claim
            )));
        }
        if let Some(step) = &check.of {
            known(step, check)?;
        }
        match &check.is {
            Expect::LessThan(OtherRun::Step(s)) | Expect::GreaterThan(OtherRun::Step(s)) => {
                known(s, check)?;
            }
            _ => {}
        }
        let yes_no = matches!(check.is, Expect::Yes | Expect::No);
        if yes_no != check.figure.is_yes_no() {
            return Err(BadLesson(format!(
                "{}: the check \"{}\": {} is {}; use {}",
                here(),
                check.claim,
                check.figure.label(),
                if check.figure.is_yes_no() {
                    "yes or no"
                } else {
                    "a number"
                },
                if check.figure.is_yes_no() {
                    "`is: Yes` or `is: No`"
                } else {
                    "AtMost, AtLeast, Between, Exactly, LessThan or GreaterThan"
                }
            )));
        }
        if let Expect::Between(lo, hi) = check.is
            && (lo > hi || lo.is_nan() || hi.is_nan())
        {
            return Err(BadLesson(format!(
                "{}: the check \"{}\": Between({lo}, {hi}) is empty; put the smaller bound first",
                here(),
                check.claim
            )));
        }
    }
    Ok(())
}

/// `file:line:col` of the first `needle` in the lesson's text (after `checks:`
/// or `steps:` when it is there too), or just the file.
fn locate(file: &Path, text: &str, needle: &str) -> String {
    let from = text
        .find("steps:")
        .into_iter()
        .chain(text.find("checks:"))
        .min();
    let hit = from
        .and_then(|f| text[f..].find(needle).map(|i| f + i))
        .or_else(|| text.find(needle));
    match hit {
        Some(i) => {
            let before = &text[..i];
            let line = before.matches('\n').count() + 1;
            let col = i - before.rfind('\n').map_or(0, |n| n + 1) + 1;
            format!("{}:{line}:{col}", file.display())
        }
        None => file.display().to_string(),
    }
}

/// `a/b/../c` as `a/c`, without touching the disk (for the commands we print).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// When the lesson in `file` starts from a step's run folder (`init_from` is the
/// step's `out`) that does not exist yet: what to run first, as a message.
pub fn unmet_step(exp: &Experiment, file: &Path) -> Option<String> {
    let from = exp.training.init_from.as_ref()?;
    if from.exists() {
        return None;
    }
    let (i, step) = exp
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.out.as_ref() == Some(from))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let step_file = step
        .file
        .as_ref()
        .map_or_else(|| file.to_path_buf(), |f| normalise(&dir.join(f)));
    let mut command = format!(
        "trainlab run {} --out {}",
        step_file.display(),
        from.display()
    );
    for o in &step.set {
        command.push_str(&format!(" --set '{o}'"));
    }
    Some(format!(
        "{}: training.init_from: {} does not exist yet: this lesson starts from its step {} \
         (\"{}\"). Run step {} first:\n  {command}\nthen run this file again \
         (`trainlab lesson verify {}` runs the steps it needs and checks its claims).",
        file.display(),
        from.display(),
        i + 1,
        step.name,
        i + 1,
        file.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_drops_parent_steps() {
        assert_eq!(
            normalise(Path::new("experiments/lessons/../mnist_pretrain_cnn.ron")),
            PathBuf::from("experiments/mnist_pretrain_cnn.ron")
        );
        assert_eq!(normalise(Path::new("../x.ron")), PathBuf::from("../x.ron"));
    }

    #[test]
    fn locate_finds_line_and_column() {
        let text = "(\n  notes: \"abc\",\n  checks: [(claim: \"abc\")],\n)";
        assert_eq!(locate(Path::new("l.ron"), text, "\"abc\""), "l.ron:3:20");
        assert_eq!(locate(Path::new("l.ron"), text, "zzz"), "l.ron");
    }

    #[test]
    fn unmet_step_names_the_command() {
        let exp = Experiment {
            training: crate::spec::TrainingSpec {
                init_from: Some("/no/such/run".into()),
                ..Default::default()
            },
            steps: vec![LessonStep {
                name: "pretrain".into(),
                file: Some("../pre.ron".into()),
                set: vec![],
                out: Some("/no/such/run".into()),
            }],
            ..Experiment::default()
        };
        let msg = unmet_step(&exp, Path::new("experiments/lessons/07.ron")).expect("unmet");
        assert!(
            msg.contains("trainlab run experiments/pre.ron --out /no/such/run"),
            "{msg}"
        );
        assert!(msg.contains("step 1"), "{msg}");
    }
}
