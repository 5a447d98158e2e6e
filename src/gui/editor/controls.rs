//! Run controls: Start, Pause/Resume, Stop, the live learning-rate change and the
//! pace (slow motion).
//!
//! Contract: draws buttons enabled for the run's state and returns the
//! [`RunAction`] chosen; the app turns it into `events::Control` messages.
//! The same widgets are drawn whatever the state (those that do not apply are
//! disabled), so starting or ending a run moves nothing and re-ids nothing.
//! `blocker` is why Start is not possible (invalid experiment), shown on hover.

use egui::{Button, Slider, Ui};

use crate::gui::state::run_state::RunState;

/// What the user asked the run to do.
#[derive(Debug, Clone, PartialEq)]
pub enum RunAction {
    /// Start a new run with the current experiment.
    Start,
    /// Pause the live run.
    Pause,
    /// Resume the paused run.
    Resume,
    /// Stop the live run (it still evaluates on test and saves weights).
    Stop,
    /// Change the live run's peak learning rate.
    SetLearningRate(f64),
    /// Change the live run's pace: steps (mazes: episodes) per second, None = full speed.
    SetPace(Option<f64>),
}

/// The step size a live run can change, as the run's method names it: the
/// optimizer's learning rate, or a Q-table's step size α (what
/// `Control::SetLearningRate` changes for tabular methods).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveRate {
    /// Its current value.
    pub value: f64,
    /// Tabular Q-learning / SARSA: the value is α.
    pub tabular: bool,
}

impl LiveRate {
    /// The rate `exp` starts with.
    pub fn of(exp: &crate::spec::Experiment) -> Self {
        use crate::spec::{AgentMethod, DatasetSpec};
        match (&exp.dataset, &exp.agent.method) {
            (DatasetSpec::Gridworld(_), AgentMethod::QLearning(t) | AgentMethod::Sarsa(t)) => {
                Self {
                    value: t.alpha,
                    tabular: true,
                }
            }
            _ => Self {
                value: exp.optimizer.lr(),
                tabular: false,
            },
        }
    }

    /// The row's label and tooltip.
    pub fn describe(&self) -> (&'static str, &'static str) {
        if self.tabular {
            (
                "Live α",
                "Change the step size α of the running Q-table updates; recorded in the run.",
            )
        } else {
            (
                "Live lr",
                "Change the learning rate of the running training; recorded in the run.",
            )
        }
    }
}

/// The pace the learner chose: full speed, or slow motion at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Slow motion on.
    pub slow: bool,
    /// Steps (mazes: episodes) per second when slow.
    pub rate: f64,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            slow: false,
            rate: 10.0,
        }
    }
}

impl Pace {
    /// What `StartOptions::pace` and `Control::SetPace` take.
    pub fn value(self) -> Option<f64> {
        (self.slow && self.rate.is_finite() && self.rate > 0.0).then_some(self.rate)
    }
}

/// The pace row: a full-speed checkbox and a logarithmic rate; `unit` is "steps"
/// or "episodes". Returns true when the learner changed it.
pub fn pace_control(ui: &mut Ui, pace: &mut Pace, unit: &str) -> bool {
    let mut changed = false;
    ui.horizontal(|ui| {
        let help = format!(
            "Slow motion: at most this many {unit} per second, to watch each one; full speed by default. Changes apply to a running run at once."
        );
        let label = ui.label("Pace").on_hover_text(&help);
        let mut full = !pace.slow;
        if ui
            .checkbox(&mut full, "full speed")
            .on_hover_text(&help)
            .changed()
        {
            pace.slow = !full;
            changed = true;
        }
        if pace.slow {
            changed |= ui
                .add(
                    Slider::new(&mut pace.rate, 0.5..=1000.0)
                        .logarithmic(true)
                        .max_decimals(1)
                        .suffix(format!(" {unit}/s")),
                )
                .labelled_by(label.id)
                .on_hover_text(&help)
                .changed();
        }
    });
    changed
}

/// Draws the controls.
pub fn run_controls(
    ui: &mut Ui,
    state: &RunState,
    blocker: Option<&str>,
    live_rate: &mut LiveRate,
) -> Option<RunAction> {
    let mut action = None;
    ui.horizontal(|ui| {
        let can_start = !state.is_live() && blocker.is_none();
        let start = ui
            .add_enabled(can_start, Button::new("▶ Start"))
            .on_hover_text(
                "Train with these settings; the run is recorded under runs/ (Ctrl+Enter).",
            );
        let start = match blocker {
            Some(why) => start.on_disabled_hover_text(format!("Fix this first: {why}")),
            None => start.on_disabled_hover_text("A run is already going: stop it first."),
        };
        if start.clicked() {
            action = Some(RunAction::Start);
        }
        match state {
            RunState::Paused => {
                if ui
                    .button("⏵ Resume")
                    .on_hover_text("Continue training (Space).")
                    .clicked()
                {
                    action = Some(RunAction::Resume);
                }
            }
            _ => {
                if ui
                    .add_enabled(matches!(state, RunState::Running), Button::new("⏸ Pause"))
                    .on_hover_text("Hold training between steps (Space).")
                    .clicked()
                {
                    action = Some(RunAction::Pause);
                }
            }
        }
        if ui
            .add_enabled(state.is_live(), Button::new("⏹ Stop"))
            .on_hover_text("End the run now; it is still tested and its weights saved.")
            .clicked()
        {
            action = Some(RunAction::Stop);
        }
    });
    // The row is there whether a run is live or not (disabled without one): a
    // row that came and went with the run moved everything below it and gave it
    // new ids, which egui styles a frame late (two frames that show nothing new,
    // and the editor's scroll bar fading in where it then overflowed).
    ui.horizontal(|ui| {
        ui.add_enabled_ui(state.is_live(), |ui| {
            let (name, help) = live_rate.describe();
            let label = ui
                .label(name)
                .on_hover_text(help)
                .on_disabled_hover_text(help);
            super::numeric::log_knob(
                ui,
                &mut live_rate.value,
                1e-5..=1.0,
                super::hyperparams::LR_LIMITS,
                label.id,
                help,
            );
            if ui
                .button("Apply")
                .on_hover_text(help)
                .on_disabled_hover_text("Start a run first: this changes a running one.")
                .clicked()
            {
                action = Some(RunAction::SetLearningRate(live_rate.value));
            }
        });
    });
    action
}
