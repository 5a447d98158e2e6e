//! Inverted dropout. On the CPU the masks come from the run's seeded RNG (candle's
//! CPU RNG cannot be seeded, which would make runs irreproducible); on a GPU they
//! are drawn on the device (seeded once per run with `seed_device`), so no mask is
//! made on the host and uploaded every step.

use candle_core::{Result, Tensor};

use crate::util::rng::Rng;

/// Zeroes each element with probability `p` and scales the rest by 1/(1-p).
pub fn dropout(xs: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    let keep = 1.0 - p as f32;
    let scale = 1.0 / keep;
    if !xs.device().is_cpu() {
        let u = Tensor::rand(0f32, 1f32, xs.shape(), xs.device())?;
        let mask = (u.lt(keep)?.to_dtype(xs.dtype())? * f64::from(scale))?;
        return xs.mul(&mask);
    }
    let n = xs.elem_count();
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.f32() < keep { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
    xs.mul(&mask)
}

/// Seeds a GPU's random generator from the run's seed (the CPU needs nothing:
/// its masks come from the run's own RNG).
pub fn seed_device(device: &candle_core::Device, seed: u64) -> Result<()> {
    if device.is_cpu() {
        return Ok(());
    }
    device.set_seed(Rng::derive(seed, "device-dropout").next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn keeps_expected_fraction_and_mean() -> Result<()> {
        let xs = Tensor::ones(10_000, candle_core::DType::F32, &Device::Cpu)?;
        let out = dropout(&xs, 0.25, &mut Rng::new(1))?.to_vec1::<f32>()?;
        let zeros = out.iter().filter(|v| **v == 0.0).count();
        assert!((2_300..2_700).contains(&zeros), "{zeros} zeros");
        let mean: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!(
            (mean - 1.0).abs() < 0.05,
            "inverted dropout keeps the mean: {mean}"
        );
        Ok(())
    }
}
