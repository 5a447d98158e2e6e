//! Per-layer statistics of a supervised run at its eval points: the distribution
//! of each layer's activations and of its parameters' gradient on one fixed small
//! batch, as quantile bands (not every value), the fraction of dead ReLU units
//! and the gradient's L2 norm (TensorBoard's distributions view, in numbers).
//!
//! Contract: recorded as `TrainEvent::LayerStats` in `metrics.jsonl`; a run
//! recorded before the event existed simply has none. Quantiles are at
//! [`QUANTILE_LEVELS`] of the sorted values, linearly interpolated between the
//! two nearest ranks (NumPy's default "linear" method), so the first is the
//! minimum and the last the maximum; of more than [`QUANTILE_SAMPLE`] values the
//! inner ones come from an evenly strided sample (the extremes stay exact).

use serde::{Deserialize, Serialize};

/// The fractions the quantiles of a [`Distribution`] are taken at: minimum, 5 %,
/// 25 %, median, 75 %, 95 %, maximum.
pub const QUANTILE_LEVELS: [f64; 7] = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0];

/// Above this many values, the quantiles between the minimum and the maximum are
/// those of an evenly strided sample of this many (a convolution's outputs over
/// a batch run to millions); count, mean, RMS, minimum and maximum always use
/// every value.
pub const QUANTILE_SAMPLE: usize = 1 << 16;

/// Every layer's statistics at one eval point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Optimizer steps done when measured.
    pub step: u64,
    /// Samples in the fixed batch they were measured on.
    pub samples: usize,
    /// One entry per layer of the model, in order (text models: the head last).
    pub layers: Vec<LayerStat>,
}

/// One layer's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStat {
    /// Index in the layer list (the head of a text model: one past the list).
    pub index: usize,
    /// Layer kind, e.g. "Linear", "ReLU".
    pub kind: String,
    /// The layer's output values over the batch (evaluation mode).
    pub activation: Distribution,
    /// The gradient of the batch's mean loss with respect to the layer's
    /// parameters (weights and biases together); None for layers without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient: Option<Distribution>,
    /// L2 norm of that gradient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// ReLU layers: the fraction of output units that are zero for every sample
    /// of the batch ("dead").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_fraction: Option<f64>,
}

/// A set of values summarised by its quantiles, mean and root mean square.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// How many values.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Their root mean square (sqrt of the mean of the squares).
    pub rms: f64,
    /// The quantiles at [`QUANTILE_LEVELS`].
    pub quantiles: [f64; 7],
}

impl Distribution {
    /// Summarises `values` (reordered in place: quantiles are found by selection,
    /// not a full sort). Non-finite values are left out; None when none is left.
    pub fn of(values: &mut [f32]) -> Option<Self> {
        let n = values.len();
        if n > QUANTILE_SAMPLE {
            let stride = n / QUANTILE_SAMPLE;
            let mut sample: Vec<f32> = values.iter().step_by(stride).copied().collect();
            let mut d = Self::exact(&mut sample)?;
            let (mut sum, mut squares, mut count) = (0f64, 0f64, 0u64);
            let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
            for &v in values.iter().filter(|v| v.is_finite()) {
                sum += f64::from(v);
                squares += f64::from(v) * f64::from(v);
                count += 1;
                min = min.min(v);
                max = max.max(v);
            }
            d.count = count;
            d.mean = sum / count as f64;
            d.rms = (squares / count as f64).sqrt();
            d.quantiles[0] = f64::from(min);
            d.quantiles[6] = f64::from(max);
            return Some(d);
        }
        Self::exact(values)
    }

    /// The summary from every value, by selection.
    fn exact(values: &mut [f32]) -> Option<Self> {
        let mut n = 0;
        for i in 0..values.len() {
            if values[i].is_finite() {
                values.swap(n, i);
                n += 1;
            }
        }
        let values = &mut values[..n];
        if values.is_empty() {
            return None;
        }
        let (mut sum, mut squares) = (0f64, 0f64);
        for &v in values.iter() {
            sum += f64::from(v);
            squares += f64::from(v) * f64::from(v);
        }
        let count = values.len() as f64;
        let mut quantiles = [0f64; 7];
        // Ranks ascend with the levels, so each selection only searches the part
        // above the previous one.
        let mut from = 0;
        for (q, level) in quantiles.iter_mut().zip(QUANTILE_LEVELS) {
            let pos = level * (count - 1.0);
            let lo = pos.floor() as usize;
            let low = select(values, from, lo);
            // The next rank up is the smallest of the values above `lo`.
            let high = if pos > lo as f64 {
                values[lo + 1..]
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min)
                    .into()
            } else {
                low
            };
            *q = low + (high - low) * (pos - lo as f64);
            from = lo;
        }
        Some(Self {
            count: values.len() as u64,
            mean: sum / count,
            rms: (squares / count).sqrt(),
            quantiles,
        })
    }

    /// The minimum.
    pub fn min(&self) -> f64 {
        self.quantiles[0]
    }

    /// The maximum.
    pub fn max(&self) -> f64 {
        self.quantiles[6]
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.quantiles[3]
    }
}

/// The value of rank `k` of `values`, given that the ranks below `from` are
/// already in place (every value at or after `from` is at least as large).
fn select(values: &mut [f32], from: usize, k: usize) -> f64 {
    let part = &mut values[from..];
    let (_, v, _) = part.select_nth_unstable_by(k - from, f32::total_cmp);
    f64::from(*v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quantile by its definition: sort, then interpolate between ranks.
    fn direct(values: &[f32], level: f64) -> f64 {
        let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        sorted.sort_by(f64::total_cmp);
        let pos = level * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    }

    #[test]
    fn quantiles_match_a_direct_computation() {
        let mut rng = crate::util::rng::Rng::new(7);
        for n in [1usize, 2, 3, 7, 20, 101, 1000, 4097] {
            let values: Vec<f32> = (0..n)
                .map(|i| (rng.f32() - 0.3) * 10.0 + (i % 3) as f32)
                .collect();
            let d = Distribution::of(&mut values.clone()).expect("values");
            for (q, level) in d.quantiles.iter().zip(QUANTILE_LEVELS) {
                let want = direct(&values, level);
                assert!(
                    (q - want).abs() < 1e-5,
                    "n={n} level={level}: {q} vs {want}"
                );
            }
            let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            assert!((d.mean - mean).abs() < 1e-5);
            assert_eq!(d.count, n as u64);
        }
    }

    #[test]
    fn a_large_set_keeps_exact_extremes_and_close_quantiles() {
        let mut rng = crate::util::rng::Rng::new(3);
        let n = QUANTILE_SAMPLE * 5 + 17;
        let values: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let d = Distribution::of(&mut values.clone()).expect("values");
        assert_eq!(d.count, n as u64);
        assert_eq!(d.min(), direct(&values, 0.0));
        assert_eq!(d.max(), direct(&values, 1.0));
        // Inner quantiles of a standard normal sample: within 0.02 of the exact.
        for (q, level) in d.quantiles.iter().zip(QUANTILE_LEVELS).skip(1).take(5) {
            let want = direct(&values, level);
            assert!((q - want).abs() < 0.02, "level {level}: {q} vs {want}");
        }
    }

    #[test]
    fn known_small_set_and_non_finite_values() {
        let mut v = [4.0, f32::NAN, 1.0, 3.0, 2.0, f32::INFINITY];
        let d = Distribution::of(&mut v).expect("values");
        assert_eq!(d.count, 4);
        assert_eq!(d.quantiles[0], 1.0);
        assert_eq!(d.quantiles[3], 2.5);
        assert_eq!(d.quantiles[6], 4.0);
        assert!((d.quantiles[2] - 1.75).abs() < 1e-12);
        assert!((d.rms - 7.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(Distribution::of(&mut [f32::NAN]), None);
        assert_eq!(Distribution::of(&mut []), None);
    }
}
