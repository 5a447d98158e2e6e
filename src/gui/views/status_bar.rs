//! The bottom status bar: run state, epoch, step, samples/s and time left.
//!
//! Contract: reads a [`RunSeries`]; computes only O(1) figures per frame. While
//! a run goes the same widgets are drawn (a dash for a figure not known yet), so
//! news changes texts, never ids.

use egui::{Color32, Ui};

use crate::gui::state::run_state::{RunSeries, RunState};

/// What one training step of the run processes, as its worker announced it:
/// (count per step, throughput label). A language model's speeds are in tokens.
fn step_items(series: &RunSeries) -> (usize, &'static str) {
    let items = series
        .info
        .as_ref()
        .map(|i| i.step_items)
        .unwrap_or_default();
    (items.count, items.unit.rate())
}

/// "1 m 05 s", "42 s".
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} m {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} m", s / 3600, (s / 60) % 60),
    }
}

/// "1234 samples/s", or a dash before the first figure.
fn rate(last: Option<&f64>, unit: &str) -> String {
    last.map_or_else(|| format!("— {unit}"), |r| format!("{r:.0} {unit}"))
}

/// Draws the status line for `series` (`epochs`: the planned epochs, until the
/// run says how many steps it has; `pace`: the live run's slow-motion steps per
/// second, if any).
pub fn status_bar(ui: &mut Ui, series: &RunSeries, epochs: usize, pace: Option<f64>) {
    let (per_step, unit) = step_items(series);
    ui.horizontal(|ui| {
        let color = match series.state {
            RunState::Running => Color32::from_rgb(90, 200, 90),
            RunState::Paused => Color32::from_rgb(230, 180, 60),
            RunState::Failed(_) => Color32::from_rgb(230, 80, 80),
            _ => ui.visuals().text_color(),
        };
        ui.colored_label(color, format!("⏺ {}", series.state.label()));
        ui.separator();
        if series.state == RunState::Idle {
            ui.weak("press ▶ Start (Ctrl+Enter) to train the experiment on the left");
            return;
        }
        if series.is_rl() {
            rl_status(ui, series);
            return;
        }
        let total_epochs = series.info.as_ref().map_or(epochs as f64, |i| {
            (i.total_steps as f64 / i.steps_per_epoch.max(1) as f64).ceil()
        });
        ui.label(format!("epoch {:.2} / {total_epochs}", series.last_epoch()));
        ui.separator();
        let total = series.info.as_ref().map_or(0, |i| i.total_steps);
        ui.label(format!("step {} / {total}", series.last_step()));
        ui.separator();
        // Always there (a dash until the first Step): a separator that appeared
        // with the first Step was new to egui, which styles it a frame late.
        ui.label(rate(series.steps.samples_per_sec.last(), unit));
        ui.separator();
        if series.state.is_live() {
            let eta = series
                .eta_seconds(per_step, pace)
                .map_or("—".into(), format_duration);
            ui.label(format!("about {eta} left"));
        } else if let Some(s) = &series.summary {
            ui.label(format!("took {}", format_duration(s.wall_seconds)));
            if let Some(acc) = s.test_accuracy {
                ui.separator();
                ui.strong(format!("test accuracy {:.2} %", acc * 100.0));
            }
            // Mixed precision: F16's skipped (overflow) steps and final loss scale.
            if let Some(p) = &s.precision {
                ui.separator();
                ui.label(p.describe());
            }
        }
    });
}

/// Episodes, moves per second, success and the greedy path against the optimum.
fn rl_status(ui: &mut Ui, series: &RunSeries) {
    let total = series.env.as_ref().map_or(0, |e| e.episodes);
    let c = &series.episodes;
    ui.label(format!(
        "episode {} / {total}",
        c.episode.last().copied().unwrap_or(0.0)
    ));
    ui.separator();
    ui.label(format!("{} moves", series.env_steps));
    ui.separator();
    ui.label(rate(c.steps_per_sec.last(), "moves/s"));
    ui.separator();
    ui.label(c.success_rate.last().map_or("success —".into(), |s| {
        format!("success {:.0} %", s * 100.0)
    }));
    ui.separator();
    if let (Some(&g), Some(env)) = (c.greedy_len.last(), &series.env) {
        let best = env.optimal_path.len().saturating_sub(1);
        if g.is_finite() {
            ui.label(format!("greedy path {g:.0} moves (optimal {best})"));
        } else {
            ui.label(format!(
                "greedy path does not reach the goal yet (optimal {best})"
            ));
        }
    }
    if let Some(s) = &series.summary {
        ui.separator();
        ui.label(format!("took {}", format_duration(s.wall_seconds)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(42.2), "42 s");
        assert_eq!(format_duration(65.0), "1 m 05 s");
        assert_eq!(format_duration(7260.0), "2 h 01 m");
        assert_eq!(format_duration(f64::NAN), "—");
    }

    /// A language model reports tokens/s, so its time estimate must count tokens
    /// per step too (counting samples made it 32-64x too short): the bar takes
    /// both from the run's Started event, not from the (editable) experiment.
    #[test]
    fn the_unit_and_items_per_step_come_from_the_run() {
        use crate::events::{ItemUnit, RunInfo, StepItems, TrainEvent};
        let mut series = RunSeries::default();
        assert_eq!(step_items(&series), (0, "samples/s"));
        let info = RunInfo {
            name: "lm".into(),
            run_dir: None,
            device: "cpu".into(),
            parameters: 1,
            train_samples: 1,
            val_samples: 0,
            test_samples: 0,
            steps_per_epoch: 1,
            total_steps: 1,
            classes: Vec::new(),
            layers: Vec::new(),
            step_items: StepItems {
                count: 8 * 64,
                unit: ItemUnit::Tokens,
            },
        };
        series.apply(&TrainEvent::Started(info));
        assert_eq!(step_items(&series), (512, "tokens/s"));
    }
}
