//! What a lesson claims, as data: the runs it needs (`steps`) and the figures its
//! notes quote (`checks`), which `trainlab lesson verify` trains and measures.
//!
//! ```ron
//! steps: [(name: "mlp", file: "../fashion_mlp.ron")],
//! checks: [
//!     (claim: "the CNN has fewer", figure: Parameters, is: LessThan(Step("mlp"))),
//!     (claim: "about 90-91 %", figure: TestAccuracy, is: Between(0.89, 0.92)),
//! ],
//! ```
//!
//! Plain serde data like the rest of the spec; the runner lives in `crate::lesson`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Another run a lesson needs: one its run starts from (`out`, read by
/// `training.init_from`) or one its checks compare with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonStep {
    /// How checks refer to it (`of: "mlp"`, `LessThan(Step("mlp"))`).
    pub name: String,
    /// The experiment file, relative to the lesson file's folder; None: the
    /// lesson itself (with `set` applied), e.g. the same maze with another method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// `--set` overrides applied to it, e.g. `["agent.method=Sarsa(alpha: 0.5)"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    /// The run folder a reader of the lesson makes with
    /// `trainlab run FILE --out OUT` (relative to where trainlab runs). A run
    /// whose `training.init_from` is this folder starts from this step:
    /// `lesson verify` trains it into a temporary folder and points there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
}

/// One claim of the notes and how to measure it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The words of the notes this check backs, quoted exactly (spacing, `*`
    /// and backticks aside): `lesson verify` refuses a claim the notes do not make.
    pub claim: String,
    /// What is measured.
    pub figure: LessonFigure,
    /// Whose figure: a step's name; None: the lesson's own run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
    /// What it must be.
    pub is: Expect,
}

/// The figures a check can measure. Accuracies and rates are fractions (0.2 is
/// 20 %), as in summary.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LessonFigure {
    /// Test accuracy at the end.
    TestAccuracy,
    /// Test loss at the end.
    TestLoss,
    /// Last validation accuracy.
    ValAccuracy,
    /// Last validation loss.
    ValLoss,
    /// How far the last validation loss is above the lowest one of the run (0
    /// when it ended at its lowest): the val loss turning upwards.
    ValLossRise,
    /// Training accuracy over the last epoch's logged steps.
    TrainAccuracy,
    /// Training loss over the last epoch's logged steps.
    TrainLoss,
    /// The highest training loss logged (mean over a log interval).
    PeakTrainLoss,
    /// Trainable parameters.
    Parameters,
    /// Language models: bits per token (per character for `Chars`), test split
    /// (else validation).
    BitsPerToken,
    /// Language models: perplexity, test split (else validation).
    Perplexity,
    /// The learning rate in effect at the last logged step.
    FinalLr,
    /// Optimizer steps done.
    Steps,
    /// Whether the loss became NaN or infinite (a yes/no figure).
    Diverged,
    /// Mazes: share of the last `agent.success_window` episodes that reached a goal.
    SuccessRate,
    /// Mazes: mean return of the episodes of the last log interval.
    MeanReturn,
    /// Mazes: mean moves of the episodes of the last log interval.
    MeanEpisodeLength,
    /// Mazes: moves of the final greedy path (it must reach a goal).
    GreedyPathLength,
    /// Mazes: moves of the optimal path.
    OptimalPathLength,
    /// Mazes: whether the final greedy path is optimal (a yes/no figure).
    GreedyOptimal,
    /// Mazes: the episode at whose end the greedy path was first optimal.
    FirstOptimalEpisode,
    /// The gradient L2 norm of the first layer with parameters divided by that
    /// of the last one, in the run's first layer statistics (the first eval
    /// point): far below 1 when the early layers' gradients vanish.
    GradientRatio,
}

impl LessonFigure {
    /// The figure in words, for the verify report.
    pub fn label(self) -> &'static str {
        match self {
            Self::TestAccuracy => "test accuracy",
            Self::TestLoss => "test loss",
            Self::ValAccuracy => "val accuracy",
            Self::ValLoss => "val loss",
            Self::ValLossRise => "val loss rise from its lowest",
            Self::TrainAccuracy => "train accuracy",
            Self::TrainLoss => "train loss",
            Self::PeakTrainLoss => "peak train loss",
            Self::Parameters => "parameters",
            Self::BitsPerToken => "bits per token",
            Self::Perplexity => "perplexity",
            Self::FinalLr => "final lr",
            Self::Steps => "steps",
            Self::Diverged => "diverged",
            Self::SuccessRate => "success rate",
            Self::MeanReturn => "mean return",
            Self::MeanEpisodeLength => "mean episode length",
            Self::GreedyPathLength => "greedy path length",
            Self::OptimalPathLength => "optimal path length",
            Self::GreedyOptimal => "greedy path optimal",
            Self::FirstOptimalEpisode => "first optimal episode",
            Self::GradientRatio => "first/last layer gradient norm",
        }
    }

    /// Whether the figure is yes/no (checked with `Yes` or `No`).
    pub fn is_yes_no(self) -> bool {
        matches!(self, Self::Diverged | Self::GreedyOptimal)
    }

    /// Whether the figure is a fraction shown as a percentage.
    pub fn is_fraction(self) -> bool {
        matches!(
            self,
            Self::TestAccuracy | Self::ValAccuracy | Self::TrainAccuracy | Self::SuccessRate
        )
    }
}

/// What a figure must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expect {
    /// At most this value.
    AtMost(f64),
    /// At least this value.
    AtLeast(f64),
    /// In `[low, high]`.
    Between(f64, f64),
    /// Exactly this value (counts such as `Parameters`).
    Exactly(f64),
    /// Below the same figure of another run.
    LessThan(OtherRun),
    /// Above the same figure of another run.
    GreaterThan(OtherRun),
    /// A yes/no figure that must be yes.
    Yes,
    /// A yes/no figure that must be no.
    No,
}

/// The run a comparison is made against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OtherRun {
    /// A step of the lesson, by name.
    Step(String),
    /// An experiment file (relative to the lesson file's folder), run as it is.
    File(PathBuf),
}

/// Text compared for "the notes make this claim": `*` and backticks dropped,
/// runs of white space made one space, lower case.
pub fn claim_text(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '*' && *c != '`')
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_text_ignores_spacing_and_emphasis() {
        assert_eq!(
            claim_text("the **val loss**\n  curve `turns`"),
            "the val loss curve turns"
        );
    }

    #[test]
    fn checks_read_from_ron() {
        let text = r#"[
            (claim: "a", figure: TestAccuracy, is: AtMost(0.2)),
            (claim: "b", figure: Parameters, is: LessThan(Step("mlp"))),
            (claim: "c", figure: Diverged, of: "big", is: No),
            (claim: "d", figure: TestLoss, is: Between(0.1, 0.5)),
            (claim: "e", figure: TestLoss, is: GreaterThan(File("../x.ron"))),
        ]"#;
        let checks: Vec<Check> = crate::spec::load::ron_options()
            .from_str(text)
            .expect("checks");
        assert_eq!(checks.len(), 5);
        assert_eq!(checks[1].is, Expect::LessThan(OtherRun::Step("mlp".into())));
        assert_eq!(checks[2].of.as_deref(), Some("big"));
    }
}
