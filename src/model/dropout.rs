//! Inverted dropout with masks from the run's seeded RNG (candle's own dropout
//! uses an unseeded RNG, which would make runs irreproducible).

use candle_core::{Result, Tensor};

use crate::util::rng::Rng;

/// Zeroes each element with probability `p` and scales the rest by 1/(1-p).
pub fn dropout(xs: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    let keep = 1.0 - p as f32;
    let scale = 1.0 / keep;
    let n = xs.elem_count();
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.f32() < keep { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
    xs.mul(&mask)
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
