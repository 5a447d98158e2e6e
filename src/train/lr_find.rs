//! The learning-rate range test (Smith 2015, "Cyclical Learning Rates for
//! Training Neural Networks"; fastai's `lr_find`): train a copy of the experiment
//! for a few steps while the learning rate rises exponentially, watch the loss.
//!
//! Contract: step `i` of `n` trains with `start * (end/start)^(i/(n-1))`
//! ([`lr_sequence`]); the run is the experiment's own (same data preparation,
//! model, optimizer and batches) driven by the one supervised engine through
//! `StartOptions::lr_sweep`, which replaces the schedule by this sequence and
//! evaluates, checkpoints and saves nothing. The loss of every step is smoothed by
//! an exponential moving average with bias correction (beta 0.98, [`Smoother`]);
//! the test stops once the smoothed loss is above 4x its minimum or not finite
//! (that last point is kept: it shows the blow-up). Suggestions
//! ([`Suggestions::of`]): the lr where the smoothed loss falls fastest per decade
//! of lr, and a tenth of the lr at its minimum. Gridworld experiments are refused
//! (reinforcement learning has no fixed dataset to sweep over).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::events::{Control, FailureKind, TrainEvent};
use crate::spec::{DatasetSpec, Experiment};

use super::handle::{StartOptions, start};

/// The smoothing factor of the loss average (fastai's and Smith's choice).
pub const BETA: f64 = 0.98;
/// The test stops once the smoothed loss exceeds this times its minimum.
pub const STOP_FACTOR: f64 = 4.0;
/// The CSV file the test writes.
pub const CSV: &str = "lr_find.csv";

/// The range to sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrRange {
    /// Learning rate of the first step.
    pub start: f64,
    /// Learning rate of the last step.
    pub end: f64,
    /// Steps at most.
    pub steps: usize,
}

impl Default for LrRange {
    fn default() -> Self {
        Self {
            start: 1e-7,
            end: 10.0,
            steps: 100,
        }
    }
}

impl LrRange {
    /// Refuses a range the test cannot sweep, saying why.
    pub fn check(&self) -> Result<(), LrFindError> {
        let Self { start, end, steps } = *self;
        if !(start.is_finite() && start > 0.0 && end.is_finite() && end > start) {
            return Err(LrFindError::BadInput(format!(
                "the lr range must rise from a positive start to a larger end (got {start:e} to {end:e})"
            )));
        }
        if steps < 3 {
            return Err(LrFindError::BadInput(format!(
                "the range test needs at least 3 steps (got {steps})"
            )));
        }
        Ok(())
    }
}

/// The learning rate of every step: `start * (end/start)^(i/(steps-1))`.
pub fn lr_sequence(range: &LrRange) -> Vec<f64> {
    let n = range.steps;
    let ratio = range.end / range.start;
    (0..n)
        .map(|i| match i {
            0 => range.start,
            _ if i + 1 == n => range.end,
            _ => range.start * ratio.powf(i as f64 / (n - 1) as f64),
        })
        .collect()
}

/// An exponential moving average with bias correction: after `k` values it is
/// `sum beta^(k-j) (1-beta) x_j / (1 - beta^k)`, so the first value is itself.
#[derive(Debug, Clone, Copy)]
pub struct Smoother {
    beta: f64,
    avg: f64,
    count: i32,
}

impl Smoother {
    /// A smoother with factor `beta` (0 = no smoothing).
    pub fn new(beta: f64) -> Self {
        Self {
            beta,
            avg: 0.0,
            count: 0,
        }
    }

    /// Adds `x` and returns the bias-corrected average.
    pub fn add(&mut self, x: f64) -> f64 {
        self.count = self.count.saturating_add(1);
        self.avg = self.beta * self.avg + (1.0 - self.beta) * x;
        self.avg / (1.0 - self.beta.powi(self.count))
    }
}

/// One step of the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrPoint {
    /// 1-based step.
    pub step: u64,
    pub lr: f64,
    /// The batch's training loss.
    pub loss: f64,
    /// [`Smoother`]'s average up to this step.
    pub smoothed: f64,
}

/// The stop rule: the smoothed loss is not finite or above 4x the lowest so far.
pub fn should_stop(smoothed: f64, lowest: f64) -> bool {
    !smoothed.is_finite() || smoothed > STOP_FACTOR * lowest
}

/// The two suggested learning rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestions {
    /// Where the smoothed loss falls fastest per decade of lr (None with fewer
    /// than 3 points, or when it never falls).
    pub steepest: Option<f64>,
    /// A tenth of the lr at the lowest smoothed loss.
    pub min_over_10: Option<f64>,
    /// The lr at the lowest smoothed loss, and that loss.
    pub minimum: Option<(f64, f64)>,
}

impl Suggestions {
    /// Reads the suggestions off the smoothed curve.
    pub fn of(points: &[LrPoint]) -> Self {
        let finite: Vec<&LrPoint> = points
            .iter()
            .filter(|p| p.smoothed.is_finite() && p.lr > 0.0)
            .collect();
        let minimum = finite
            .iter()
            .min_by(|a, b| a.smoothed.total_cmp(&b.smoothed))
            .map(|p| (p.lr, p.smoothed));
        // The slope at each inner point (central difference over log10 lr).
        let steepest = (1..finite.len().saturating_sub(1))
            .map(|i| {
                let (a, b) = (finite[i - 1], finite[i + 1]);
                let slope = (b.smoothed - a.smoothed) / (b.lr.log10() - a.lr.log10());
                (finite[i].lr, slope)
            })
            .filter(|(_, s)| s.is_finite() && *s < 0.0)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(lr, _)| lr);
        Self {
            steepest,
            min_over_10: minimum.map(|(lr, _)| lr / 10.0),
            minimum,
        }
    }
}

/// What the test found.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFindResult {
    /// Every step trained, in order.
    pub points: Vec<LrPoint>,
    /// Why it ended before the last planned step (None: it swept the range).
    pub stopped: Option<String>,
    pub suggestions: Suggestions,
}

/// Why the test could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LrFindError {
    /// Not for this kind of experiment, or a bad range or experiment.
    #[error("{0}")]
    BadInput(String),
    /// The run failed before a single step was measured.
    #[error("{0}")]
    Failed(String),
    /// Cancelled by the caller.
    #[error("the learning-rate finder was cancelled")]
    Cancelled,
}

/// Refuses experiments the test does not apply to.
pub fn supported(exp: &Experiment) -> Result<(), LrFindError> {
    match exp.dataset {
        DatasetSpec::Gridworld(_) => Err(LrFindError::BadInput(format!(
            "{}: the learning-rate finder works for supervised experiments (images, text, \
             points); a gridworld agent learns from episodes it plays, which have no fixed \
             loss to sweep the learning rate over",
            exp.name
        ))),
        _ => Ok(()),
    }
}

/// Runs the range test on a copy of `exp`, calling `on_point` after every step
/// (for a live plot); `cancel` set to true stops it with [`LrFindError::Cancelled`].
pub fn lr_find(
    exp: &Experiment,
    range: &LrRange,
    cancel: Option<&AtomicBool>,
    on_point: &mut dyn FnMut(&LrPoint),
) -> Result<LrFindResult, LrFindError> {
    supported(exp)?;
    range.check()?;
    crate::spec::validate(exp).map_err(|e| LrFindError::BadInput(e.to_string()))?;
    let lrs = lr_sequence(range);
    let planned = lrs.len();
    let mut copy = exp.clone();
    copy.training.save_weights = false;
    let handle = start(
        copy,
        StartOptions {
            lr_sweep: Some(lrs),
            // Room for every Step: none is merged with another.
            event_capacity: planned + 64,
            ..StartOptions::default()
        },
    );
    let mut smoother = Smoother::new(BETA);
    let mut lowest = f64::INFINITY;
    let mut points: Vec<LrPoint> = Vec::new();
    let mut stopped = None;
    let mut failure = None;
    let mut stop_sent = false;
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            handle.send(Control::Stop);
            return Err(LrFindError::Cancelled);
        }
        let event = match handle
            .events()
            .recv_timeout(std::time::Duration::from_millis(100))
        {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match event {
            TrainEvent::Step(s) if !stop_sent => {
                let smoothed = smoother.add(s.loss);
                let point = LrPoint {
                    step: s.step,
                    lr: s.lr,
                    loss: s.loss,
                    smoothed,
                };
                points.push(point);
                on_point(&point);
                if should_stop(smoothed, lowest) {
                    stopped = Some(format!(
                        "stopped at step {} (lr {:.3e}): the smoothed loss {smoothed:.4} passed \
                         {STOP_FACTOR}x its minimum {lowest:.4}",
                        s.step, s.lr
                    ));
                    handle.send(Control::Stop);
                    stop_sent = true;
                }
                lowest = lowest.min(smoothed);
            }
            TrainEvent::Failed {
                step,
                kind,
                message,
            } if !stop_sent => {
                failure = Some((step, kind, message));
            }
            TrainEvent::Finished(_) | TrainEvent::Failed { .. } => {}
            _ => {}
        }
    }
    handle.join();
    if let Some((step, kind, message)) = failure {
        if points.is_empty() {
            return Err(match kind {
                FailureKind::BadInput => LrFindError::BadInput(message),
                _ => LrFindError::Failed(message),
            });
        }
        // A loss that became NaN or infinite ends the run: the test's own stop.
        stopped = Some(format!("stopped at step {step}: {message}"));
    }
    let suggestions = Suggestions::of(&points);
    Ok(LrFindResult {
        points,
        stopped,
        suggestions,
    })
}

/// The points as CSV: `step,lr,loss,smoothed`.
pub fn to_csv(points: &[LrPoint]) -> String {
    let mut out = String::from("step,lr,loss,smoothed\n");
    for p in points {
        out.push_str(&format!(
            "{},{:e},{},{}\n",
            p.step, p.lr, p.loss, p.smoothed
        ));
    }
    out
}

/// Writes [`to_csv`] to `dir/lr_find.csv` (atomically); returns the path.
pub fn write_csv(dir: &Path, points: &[LrPoint]) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(CSV);
    crate::util::atomic::write_atomic(&path, to_csv(points).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_rises_exponentially_from_start_to_end() {
        let r = LrRange {
            start: 1e-4,
            end: 1.0,
            steps: 5,
        };
        let lrs = lr_sequence(&r);
        let want = [1e-4, 1e-3, 1e-2, 1e-1, 1.0];
        for (got, want) in lrs.iter().zip(want) {
            assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(lrs.len(), 5);
    }

    #[test]
    fn smoothing_is_bias_corrected() {
        let mut s = Smoother::new(0.98);
        assert!(
            (s.add(2.0) - 2.0).abs() < 1e-12,
            "the first value is itself"
        );
        assert!(
            (s.add(2.0) - 2.0).abs() < 1e-12,
            "a constant stays constant"
        );
        let mut s = Smoother::new(0.5);
        s.add(1.0);
        // (0.25*1 + 0.5*3) / 0.75
        assert!((s.add(3.0) - 1.75 / 0.75).abs() < 1e-12);
    }

    #[test]
    fn stops_above_four_times_the_minimum_or_when_not_finite() {
        assert!(!should_stop(3.9, 1.0));
        assert!(!should_stop(4.0, 1.0));
        assert!(should_stop(4.01, 1.0));
        assert!(should_stop(f64::NAN, 1.0));
        assert!(should_stop(f64::INFINITY, 1.0));
        assert!(
            !should_stop(1.0, f64::INFINITY),
            "the first point never stops"
        );
    }

    #[test]
    fn suggestions_read_the_smoothed_curve() {
        // Flat, a steep fall around lr 1e-3, a minimum at 1e-1, then a climb.
        let curve = [
            (1e-5, 2.3),
            (1e-4, 2.29),
            (1e-3, 1.5),
            (1e-2, 0.6),
            (1e-1, 0.4),
            (1.0, 3.0),
        ];
        let points: Vec<LrPoint> = curve
            .iter()
            .enumerate()
            .map(|(i, &(lr, l))| LrPoint {
                step: i as u64 + 1,
                lr,
                loss: l,
                smoothed: l,
            })
            .collect();
        let s = Suggestions::of(&points);
        assert_eq!(s.minimum, Some((1e-1, 0.4)));
        assert!((s.min_over_10.unwrap() - 1e-2).abs() < 1e-15);
        // Central slopes: 1e-4: -0.4, 1e-3: -0.845, 1e-2: -0.55, 1e-1: +1.2.
        assert_eq!(s.steepest, Some(1e-3));
        assert_eq!(Suggestions::of(&points[..2]).steepest, None);
    }
}
