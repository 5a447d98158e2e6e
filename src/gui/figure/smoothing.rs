//! TensorBoard-style smoothing of a noisy curve: a debiased exponential moving average.
//!
//! Contract: `weight` in [0, 1) (0 = no smoothing). The first value is not pulled
//! towards 0 (debiasing divides by `1 - weight^k`). Non-finite values pass through
//! unchanged and do not disturb the average, so a NaN stays visible on the plot.
//! [`Ema`] extends incrementally: pushing new values costs O(new), never O(all).

/// Incremental smoother; `values` holds one smoothed value per input value.
#[derive(Debug, Clone, Default)]
pub struct Ema {
    weight: f64,
    last: f64,
    finite_seen: i32,
    /// Smoothed values, aligned with the inputs pushed so far.
    pub values: Vec<f64>,
}

impl Ema {
    /// An empty smoother with `weight` clamped to [0, 0.999].
    pub fn new(weight: f64) -> Self {
        Self {
            weight: weight.clamp(0.0, 0.999),
            ..Self::default()
        }
    }

    /// The weight this smoother uses.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// Smooths `ys` beyond the values already pushed (so callers can pass the whole
    /// growing series each time).
    pub fn extend_to(&mut self, ys: &[f64]) {
        if ys.len() < self.values.len() {
            *self = Self::new(self.weight);
        }
        for &y in &ys[self.values.len()..] {
            if !y.is_finite() {
                self.values.push(y);
                continue;
            }
            self.last = self.last * self.weight + (1.0 - self.weight) * y;
            self.finite_seen = self.finite_seen.saturating_add(1);
            let debias = 1.0 - self.weight.powi(self.finite_seen);
            self.values
                .push(if debias > 0.0 { self.last / debias } else { y });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_weight_is_identity() {
        let mut e = Ema::new(0.0);
        e.extend_to(&[3.0, 1.0, 2.0]);
        assert_eq!(e.values, vec![3.0, 1.0, 2.0]);
    }

    #[test]
    fn first_value_is_not_biased_and_constant_stays_constant() {
        let mut e = Ema::new(0.9);
        e.extend_to(&[5.0, 5.0, 5.0]);
        for v in &e.values {
            assert!((v - 5.0).abs() < 1e-12, "{v}");
        }
    }

    #[test]
    fn incremental_equals_all_at_once_and_nan_passes_through() {
        let ys = [1.0, 2.0, f64::NAN, 4.0, 0.5];
        let mut all = Ema::new(0.6);
        all.extend_to(&ys);
        let mut step = Ema::new(0.6);
        for n in 1..=ys.len() {
            step.extend_to(&ys[..n]);
        }
        assert_eq!(all.values.len(), 5);
        assert!(all.values[2].is_nan());
        for (a, b) in all.values.iter().zip(&step.values) {
            assert!(a == b || (a.is_nan() && b.is_nan()));
        }
    }
}
