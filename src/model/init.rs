//! Initial weights drawn from the run's seed, matching PyTorch's defaults for
//! Linear and Conv2d (uniform in ±1/sqrt(fan_in) for weights and biases), so
//! results are comparable with the PyTorch reference and reproducible.

use candle_core::{Device, Result, Tensor};

use crate::util::rng::Rng;

/// PyTorch's default bound for a layer with `fan_in` inputs per output.
pub fn uniform_bound(fan_in: usize) -> f32 {
    1.0 / (fan_in.max(1) as f32).sqrt()
}

/// A tensor of `shape` with values uniform in ±`bound`.
pub fn uniform(rng: &mut Rng, shape: &[usize], bound: f32, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (rng.f32() * 2.0 - 1.0) * bound).collect();
    Tensor::from_vec(values, shape, device)
}
