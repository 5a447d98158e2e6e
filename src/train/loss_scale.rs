//! Dynamic loss scaling for F16 mixed precision, as a pure state machine.
//!
//! Contract: the loss is multiplied by [`LossScaler::scale`] before backward, the
//! gradients are divided by it before the update, and [`LossScaler::update`] is told
//! after every step whether all gradients were finite. A non-finite step is skipped
//! (no optimizer update) and halves the scale (never below [`MIN_SCALE`]); after
//! [`GROWTH_INTERVAL`] finite steps in a row the scale doubles (never above
//! [`MAX_SCALE`]). The state is plain numbers, saved in checkpoints so a resumed run
//! scales exactly as one that never stopped.

use serde::{Deserialize, Serialize};

/// First scale: PyTorch's `GradScaler(init_scale=2**16)`. Large enough that small
/// gradients stay above f16's smallest normal (6e-5); the first few steps overflow
/// and halve it to what the model can bear.
pub const INITIAL_SCALE: f64 = 65_536.0;

/// Finite steps in a row before the scale doubles: PyTorch's `growth_interval`
/// (2000). Rare enough that a scale that just overflowed is not retried at once.
pub const GROWTH_INTERVAL: u64 = 2000;

/// Floor of the scale. PyTorch has none, but a scale below 1 would shrink the
/// gradients further instead of protecting them; when the gradients overflow even
/// at 1 the model diverges, and the loss watch reports that.
pub const MIN_SCALE: f64 = 1.0;

/// Ceiling of the scale: 2^24 times f16's largest value is still a finite f32, so
/// a loss times the scale never becomes inf in f32 because of the scale alone.
pub const MAX_SCALE: f64 = 16_777_216.0;

/// The loss scale and what it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// What the loss is multiplied by now.
    pub scale: f64,
    /// Finite steps since the last overflow or growth.
    pub good_steps: u64,
    /// Steps skipped because a gradient overflowed, over the whole run.
    pub skipped: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self::new(INITIAL_SCALE)
    }
}

impl LossScaler {
    /// A scaler starting at `scale` (clamped to at least [`MIN_SCALE`]; tests start
    /// higher than [`MAX_SCALE`] to force overflows).
    pub fn new(scale: f64) -> Self {
        Self {
            scale: scale.max(MIN_SCALE),
            good_steps: 0,
            skipped: 0,
        }
    }

    /// Records one step; returns whether its update is to be applied (false: skip it).
    pub fn update(&mut self, grads_finite: bool) -> bool {
        if !grads_finite {
            self.skipped += 1;
            self.good_steps = 0;
            self.scale = (self.scale / 2.0).max(MIN_SCALE);
            return false;
        }
        self.good_steps += 1;
        if self.good_steps >= GROWTH_INTERVAL {
            self.good_steps = 0;
            self.scale = (self.scale * 2.0).min(MAX_SCALE.max(self.scale));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overflow_halves_the_scale_and_skips_the_step() {
        let mut s = LossScaler::default();
        assert_eq!(s.scale, 65_536.0);
        assert!(s.update(true), "a finite step is applied");
        assert!(!s.update(false), "an overflowing step is skipped");
        assert_eq!((s.scale, s.good_steps, s.skipped), (32_768.0, 0, 1));
        assert!(!s.update(false));
        assert_eq!((s.scale, s.skipped), (16_384.0, 2));
    }

    #[test]
    fn growth_interval_good_steps_double_it_and_an_overflow_restarts_the_count() {
        let mut s = LossScaler::new(1024.0);
        for _ in 0..GROWTH_INTERVAL - 1 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale, 1024.0, "not yet");
        s.update(true);
        assert_eq!((s.scale, s.good_steps), (2048.0, 0));
        for _ in 0..GROWTH_INTERVAL - 1 {
            s.update(true);
        }
        s.update(false);
        assert_eq!(s.scale, 1024.0);
        for _ in 0..GROWTH_INTERVAL - 1 {
            s.update(true);
        }
        assert_eq!(s.scale, 1024.0, "the count restarted at the overflow");
        s.update(true);
        assert_eq!(s.scale, 2048.0);
    }

    #[test]
    fn never_below_the_floor_nor_grown_above_the_ceiling() {
        let mut s = LossScaler::new(4.0);
        for _ in 0..10 {
            s.update(false);
        }
        assert_eq!((s.scale, s.skipped), (MIN_SCALE, 10));
        assert_eq!(LossScaler::new(0.01).scale, MIN_SCALE);
        let mut s = LossScaler::new(MAX_SCALE);
        for _ in 0..GROWTH_INTERVAL {
            s.update(true);
        }
        assert_eq!(s.scale, MAX_SCALE);
        // A test knob above the ceiling only comes down.
        let mut s = LossScaler::new(2f64.powi(40));
        for _ in 0..GROWTH_INTERVAL {
            s.update(true);
        }
        assert_eq!(s.scale, 2f64.powi(40));
        s.update(false);
        assert_eq!(s.scale, 2f64.powi(39));
    }
}
