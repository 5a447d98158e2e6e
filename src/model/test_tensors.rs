//! Helpers for the kernels' tests: seeded random tensors and the largest
//! elementwise difference between two tensors.

use candle_core::{Device, Result, Tensor};

use crate::util::rng::Rng;

/// Values uniform in [-1, 1) from the seeded generator.
pub(crate) fn random(rng: &mut Rng, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// The largest `|a - b|` over all elements.
pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}
