//! Gradient clipping by global norm, shared by the supervised, text and DQN loops: the
//! factor every gradient is multiplied by so that their joint L2 norm is at most
//! `max_norm` (1 when it already is, or when clipping is off).
//!
//! Device contract: the squared sums of all gradients are added on the device and
//! never read back on a GPU: the factor stays a device scalar that the update
//! multiplies by; on the CPU (where a read costs nothing) it is a number.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

/// The factor every gradient is multiplied by before an update.
#[derive(Debug, Clone)]
pub enum GradScale {
    /// A number on the host (no clipping, or a CPU run where reading is free).
    Host(f64),
    /// An f32 scalar left on a GPU, so a step never waits for the device.
    Device(Tensor),
}

impl GradScale {
    /// No scaling.
    pub const ONE: GradScale = GradScale::Host(1.0);

    /// The factor as a number (reads a device scalar back).
    pub fn host(&self) -> Result<f64> {
        match self {
            Self::Host(s) => Ok(*s),
            Self::Device(t) => Ok(f64::from(t.to_scalar::<f32>()?)),
        }
    }
}

/// The scale for `grads` of `params` so that their joint norm is at most `max_norm`.
pub(crate) fn clip_scale<'a>(
    params: impl IntoIterator<Item = &'a Var>,
    grads: &GradStore,
    max_norm: Option<f64>,
) -> Result<GradScale> {
    let Some(max_norm) = max_norm else {
        return Ok(GradScale::ONE);
    };
    let mut sums = Vec::new();
    for var in params {
        if let Some(g) = grads.get(var.as_tensor()) {
            sums.push(g.sqr()?.sum_all()?.to_dtype(DType::F32)?);
        }
    }
    if sums.is_empty() {
        return Ok(GradScale::ONE);
    }
    let sq = Tensor::stack(&sums, 0)?.sum_all()?;
    if !sq.device().is_cpu() {
        return Ok(GradScale::Device(device_factor(&sq, max_norm)?));
    }
    let norm = f64::from(sq.to_scalar::<f32>()?).sqrt();
    Ok(GradScale::Host(if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }))
}

/// min(1, max_norm / (norm + eps)) for the squared norm `sq`, computed where the
/// gradients are (a device scalar; apart so its arithmetic is tested on the CPU).
fn device_factor(sq: &Tensor, max_norm: f64) -> Result<Tensor> {
    ((sq.sqrt()? + 1e-6)?.recip()? * max_norm)?.clamp(0f32, 1f32)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Two parameters whose gradients are exactly `[3, 4]` and `[12]`: joint
    /// norm sqrt(9 + 16 + 144) = 13, exact in f32.
    fn known_grads() -> (Vec<Var>, GradStore) {
        let dev = Device::Cpu;
        let a = Var::zeros(2, DType::F32, &dev).expect("var");
        let b = Var::zeros(1, DType::F32, &dev).expect("var");
        let ca = Tensor::new(&[3f32, 4.0], &dev).expect("tensor");
        let cb = Tensor::new(&[12f32], &dev).expect("tensor");
        let loss = (a.as_tensor().mul(&ca).expect("mul").sum_all().expect("sum")
            + b.as_tensor().mul(&cb).expect("mul").sum_all().expect("sum"))
        .expect("add");
        let grads = loss.backward().expect("backward");
        (vec![a, b], grads)
    }

    fn host_factor(max_norm: Option<f64>) -> f64 {
        let (vars, grads) = known_grads();
        match clip_scale(&vars, &grads, max_norm).expect("clip") {
            GradScale::Host(s) => s,
            GradScale::Device(_) => panic!("a CPU run keeps its factor on the host"),
        }
    }

    #[test]
    fn the_cpu_factor_is_max_norm_over_the_joint_norm() {
        // Norm 13 above the limit: every gradient is multiplied by max_norm / 13.
        assert_eq!(host_factor(Some(1.0)), 1.0 / (13.0 + 1e-6));
        assert_eq!(host_factor(Some(6.5)), 6.5 / (13.0 + 1e-6));
        let clipped: f64 = 6.5 / (13.0 + 1e-6) * 13.0;
        assert!(
            (clipped - 6.5).abs() < 1e-5,
            "the clipped norm is max_norm: {clipped}"
        );
        // At or under the limit, or with clipping off: untouched.
        assert_eq!(host_factor(Some(13.0)), 1.0, "exactly at the limit");
        assert_eq!(host_factor(Some(20.0)), 1.0);
        assert_eq!(host_factor(None), 1.0);
        // Parameters without gradients: nothing to clip.
        let lone = Var::zeros(1, DType::F32, &Device::Cpu).expect("var");
        let (_, grads) = known_grads();
        let s = clip_scale([&lone], &grads, Some(1.0)).expect("clip");
        assert_eq!(s.host().expect("host"), 1.0);
    }

    #[test]
    fn the_device_factor_is_max_norm_over_the_norm_capped_at_one() {
        let factor = |sq: f32, max_norm: f64| {
            let sq = Tensor::new(sq, &Device::Cpu).expect("tensor");
            let t = device_factor(&sq, max_norm).expect("factor");
            GradScale::Device(t).host().expect("read back")
        };
        for (sq, max_norm, want) in [
            (169.0, 1.0, 1.0 / 13.0),
            (169.0, 6.5, 0.5),
            (25.0, 1.0, 0.2),
            (169.0, 20.0, 1.0),
            (0.0, 1.0, 1.0),
        ] {
            let got = factor(sq, max_norm);
            assert!(
                (got - want).abs() <= 1e-6 * want,
                "squared norm {sq}, max_norm {max_norm}: factor {got}, want {want}"
            );
        }
    }
}
