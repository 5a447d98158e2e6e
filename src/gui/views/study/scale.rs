//! Scales shared by the study views: the colour scale over the first objective
//! (every view colours a trial the same way) and the axes of parallel coordinates
//! and scatter plots (linear, log for log-uniform params, categories for choices).
//!
//! Contract: pure functions; a value outside an axis's range is clamped to its
//! ends, an unparsable or non-finite one has no position (None), and a degenerate
//! range (one value) puts everything in the middle. Nothing here panics.

use egui::Color32;

use crate::spec::{Objective, Param, json_text};
use crate::study::Trial;

/// Colour of trials that have no value yet (pending, running, failed).
pub const NO_VALUE: Color32 = Color32::from_rgb(140, 140, 140);
/// Colour of failed trials.
pub const FAILED: Color32 = Color32::from_rgb(230, 70, 70);

/// Maps the first objective's values to colours: dark purple (worst) to yellow (best).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ColorScale {
    /// The objective (None: no values yet).
    pub objective: Option<Objective>,
    /// Smallest and largest value seen.
    pub range: Option<(f64, f64)>,
}

/// viridis, sampled at five stops (the darkest lifted so it shows on a dark panel).
const STOPS: [[f32; 3]; 5] = [
    [120.0, 60.0, 170.0],
    [59.0, 100.0, 170.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

/// The colour at `t` in 0..=1 along the scale.
pub fn ramp(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

impl ColorScale {
    /// A scale over `values` of `objective`.
    pub fn over(objective: Option<Objective>, values: impl Iterator<Item = f64>) -> Self {
        let range = values
            .filter(|v| v.is_finite())
            .fold(None, |r: Option<(f64, f64)>, v| {
                Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            });
        Self { objective, range }
    }

    /// Where `value` sits, 0 = worst seen, 1 = best seen.
    pub fn t(&self, value: f64) -> Option<f32> {
        let (lo, hi) = self.range?;
        let o = self.objective?;
        if !value.is_finite() {
            return None;
        }
        let (a, b) = (o.score(lo), o.score(hi));
        let (worst, best) = if a <= b { (a, b) } else { (b, a) };
        if best - worst <= f64::EPSILON * best.abs().max(1.0) {
            return Some(1.0);
        }
        Some((((o.score(value) - worst) / (best - worst)) as f32).clamp(0.0, 1.0))
    }

    /// The colour of a trial: by its first value, grey without one, red if failed.
    pub fn trial_color(&self, t: &Trial) -> Color32 {
        if t.state.name() == "failed" {
            return FAILED;
        }
        t.values
            .first()
            .copied()
            .flatten()
            .and_then(|v| self.t(v))
            .map_or(NO_VALUE, ramp)
    }
}

/// How an axis places values.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisKind {
    /// Linear between two numbers.
    Linear(f64, f64),
    /// Log10 between two positive numbers.
    Log(f64, f64),
    /// Evenly spaced names, in this order.
    Categories(Vec<String>),
}

/// One axis: its name and how it places values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The path or objective label.
    pub label: String,
    /// The scale.
    pub kind: AxisKind,
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |r: Option<(f64, f64)>, v| {
            Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
}

impl Axis {
    /// The axis of an explored path: the param's range, widened to the values seen.
    pub fn for_param(path: &str, param: &Param, trials: &[Trial]) -> Self {
        let seen = || {
            trials
                .iter()
                .filter_map(|t| t.params.get(path))
                .filter_map(|v| v.trim().parse::<f64>().ok())
        };
        let widen = |lo: f64, hi: f64| bounds(seen().chain([lo, hi])).unwrap_or((lo, hi));
        let kind = match param {
            Param::Uniform(lo, hi) => {
                let (a, b) = widen(*lo, *hi);
                AxisKind::Linear(a, b)
            }
            Param::IntUniform(lo, hi) => {
                let (a, b) = widen(*lo as f64, *hi as f64);
                AxisKind::Linear(a, b)
            }
            Param::Range { low, high, .. } => {
                let (a, b) = widen(*low, *high);
                AxisKind::Linear(a, b)
            }
            Param::LogUniform(lo, hi) => {
                let (a, b) = widen(*lo, *hi);
                AxisKind::Log(a, b)
            }
            Param::IntLogUniform(lo, hi) => {
                let (a, b) = widen(*lo as f64, *hi as f64);
                AxisKind::Log(a, b)
            }
            Param::Choice(values) => {
                // Always categorical, evenly spaced in the choice's order, even for
                // numbers: [0, 1e-5, 1e-4, 1e-3] on a linear axis would put three
                // of the four at the bottom.
                let mut names: Vec<String> =
                    values.iter().filter_map(|v| json_text(v).ok()).collect();
                for t in trials {
                    if let Some(v) = t.params.get(path)
                        && category_index(&names, v).is_none()
                    {
                        names.push(v.clone());
                    }
                }
                AxisKind::Categories(names)
            }
        };
        Self {
            label: path.to_string(),
            kind,
        }
    }

    /// A linear axis over measured values.
    pub fn for_values(label: &str, values: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = bounds(values).unwrap_or((0.0, 1.0));
        Self {
            label: label.to_string(),
            kind: AxisKind::Linear(lo, hi),
        }
    }

    /// Where the value written `text` sits, 0..=1.
    pub fn position(&self, text: &str) -> Option<f32> {
        if let AxisKind::Categories(names) = &self.kind {
            let i = category_index(names, text)?;
            return Some(if names.len() < 2 {
                0.5
            } else {
                i as f32 / (names.len() - 1) as f32
            });
        }
        self.position_of(text.trim().parse().ok()?)
    }

    /// Where the number `v` sits, 0..=1 (categories: by its text).
    pub fn position_of(&self, v: f64) -> Option<f32> {
        if !v.is_finite() {
            return None;
        }
        let (lo, hi, x) = match &self.kind {
            AxisKind::Linear(lo, hi) => (*lo, *hi, v),
            AxisKind::Log(lo, hi) if *lo > 0.0 && v > 0.0 => (lo.log10(), hi.log10(), v.log10()),
            AxisKind::Log(..) => return None,
            AxisKind::Categories(_) => return self.position(&format!("{v}")),
        };
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            return Some(0.5);
        }
        Some((((x - lo) / (hi - lo)) as f32).clamp(0.0, 1.0))
    }

    /// The number a scatter plot puts on x for `text` (log10 on log axes, the
    /// index for categories).
    pub fn plot_x(&self, text: &str) -> Option<f64> {
        match &self.kind {
            AxisKind::Categories(names) => category_index(names, text).map(|i| i as f64),
            AxisKind::Log(..) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0)
                .map(f64::log10),
            AxisKind::Linear(..) => text.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        }
    }

    /// Text for the ends of the axis (bottom, top), or the category names.
    pub fn tick_labels(&self) -> Vec<(f32, String)> {
        match &self.kind {
            AxisKind::Linear(lo, hi) | AxisKind::Log(lo, hi) => {
                vec![(0.0, short(*lo)), (1.0, short(*hi))]
            }
            AxisKind::Categories(names) => names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let at = if names.len() < 2 {
                        0.5
                    } else {
                        i as f32 / (names.len() - 1) as f32
                    };
                    (at, n.trim_matches('"').to_string())
                })
                .collect(),
        }
    }
}

/// Which of `names` the value written `text` is: the same text, or the same
/// number written another way (1e-5 and 0.00001).
fn category_index(names: &[String], text: &str) -> Option<usize> {
    names.iter().position(|n| n == text).or_else(|| {
        let v = text.trim().parse::<f64>().ok()?;
        names
            .iter()
            .position(|n| n.trim().parse::<f64>().is_ok_and(|n| n == v))
    })
}

/// A number in at most about 5 characters: 0.001, 1e-5, 128, 0.9731.
pub fn short(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Figure;

    #[test]
    fn a_numeric_choice_is_an_evenly_spaced_categorical_axis() {
        let values: Vec<ron::Value> = ["0.0", "1e-5", "1e-4", "1e-3"]
            .iter()
            .filter_map(|t| ron::from_str(t).ok())
            .collect();
        assert_eq!(values.len(), 4);
        let axis = Axis::for_param("optimizer.weight_decay", &Param::Choice(values), &[]);
        let AxisKind::Categories(names) = &axis.kind else {
            panic!("numbers in a choice are categories: {:?}", axis.kind)
        };
        assert_eq!(names.len(), 4, "{names:?}");
        let at = |t: &str| axis.position(t);
        assert_eq!(at("0.0"), Some(0.0), "{names:?}");
        assert_eq!(
            at("0.00001"),
            Some(1.0 / 3.0),
            "the same number written otherwise"
        );
        assert_eq!(at("1e-4"), Some(2.0 / 3.0));
        assert_eq!(at("0.001"), Some(1.0));
        assert_eq!(axis.plot_x("0.0001"), Some(2.0));
        assert_eq!(at("0.5"), None, "not a choice");
        assert_eq!(axis.tick_labels().len(), 4);
    }

    #[test]
    fn axes_place_values_and_never_fail_on_odd_input() {
        let cases: Vec<(Axis, &str, Option<f32>)> = vec![
            (
                Axis {
                    label: "a".into(),
                    kind: AxisKind::Linear(0.0, 10.0),
                },
                "5",
                Some(0.5),
            ),
            (
                Axis {
                    label: "a".into(),
                    kind: AxisKind::Linear(0.0, 10.0),
                },
                "50",
                Some(1.0),
            ),
            (
                Axis {
                    label: "a".into(),
                    kind: AxisKind::Linear(0.0, 10.0),
                },
                "x",
                None,
            ),
            (
                Axis {
                    label: "a".into(),
                    kind: AxisKind::Linear(3.0, 3.0),
                },
                "3",
                Some(0.5),
            ),
            (
                Axis {
                    label: "l".into(),
                    kind: AxisKind::Log(1e-4, 1e-2),
                },
                "0.001",
                Some(0.5),
            ),
            (
                Axis {
                    label: "l".into(),
                    kind: AxisKind::Log(1e-4, 1e-2),
                },
                "-1",
                None,
            ),
            (
                Axis {
                    label: "l".into(),
                    kind: AxisKind::Log(1e-4, 1e-2),
                },
                "NaN",
                None,
            ),
            (
                Axis {
                    label: "c".into(),
                    kind: AxisKind::Categories(vec![
                        "\"A\"".into(),
                        "\"B\"".into(),
                        "\"C\"".into(),
                    ]),
                },
                "\"B\"",
                Some(0.5),
            ),
            (
                Axis {
                    label: "c".into(),
                    kind: AxisKind::Categories(vec![]),
                },
                "\"B\"",
                None,
            ),
        ];
        for (axis, text, want) in cases {
            let got = axis.position(text);
            assert!(
                match (got, want) {
                    (Some(g), Some(w)) => (g - w).abs() < 1e-5,
                    (None, None) => true,
                    _ => false,
                },
                "{:?} placing {text}: got {got:?}, want {want:?}",
                axis.kind
            );
        }
    }

    #[test]
    fn the_colour_scale_puts_the_best_at_the_top_either_way() {
        let max = ColorScale::over(
            Some(Objective::Maximize(Figure::ValAccuracy)),
            [0.5, 0.9].into_iter(),
        );
        assert_eq!(max.t(0.9), Some(1.0));
        assert_eq!(max.t(0.5), Some(0.0));
        let min = ColorScale::over(
            Some(Objective::Minimize(Figure::ValLoss)),
            [0.5, 0.9].into_iter(),
        );
        assert_eq!(min.t(0.5), Some(1.0));
        assert_eq!(min.t(f64::NAN), None);
        assert_eq!(ColorScale::default().t(1.0), None);
        assert_eq!(ramp(f32::NAN), ramp(0.0));
    }

    #[test]
    fn minimising_the_scale_runs_from_the_largest_value_to_the_smallest() {
        let min = ColorScale::over(
            Some(Objective::Minimize(Figure::ValLoss)),
            [0.9, 0.5, 0.7].into_iter(),
        );
        assert_eq!(min.range, Some((0.5, 0.9)));
        let at = |v: f64| min.t(v).expect("placed");
        assert_eq!(at(0.5), 1.0, "smallest loss: best");
        assert_eq!(at(0.9), 0.0, "largest loss: worst");
        assert!(
            (at(0.6) - 0.75).abs() < 1e-6,
            "a quarter of the way from the best: {}",
            at(0.6)
        );
        assert_eq!(at(2.0), 0.0, "beyond the worst: clamped");
        let trial = |id: usize, loss: f64| Trial {
            id,
            params: Default::default(),
            state: crate::study::TrialState::Finished,
            values: vec![Some(loss)],
            epochs: 1.0,
            wall_seconds: 1.0,
            rungs: Default::default(),
            lineage: Vec::new(),
            generations: Vec::new(),
        };
        assert_eq!(
            min.trial_color(&trial(0, 0.5)),
            ramp(1.0),
            "best trial in yellow"
        );
        assert_eq!(
            min.trial_color(&trial(1, 0.9)),
            ramp(0.0),
            "worst in purple"
        );
    }
}
