//! Mixed precision in the supervised engine: which dtype the model computes in,
//! and F16's loss scaling around one step (scale the loss, check the gradients,
//! unscale them inside the update's factor).
//!
//! Contract: the parameters, their gradients (the cast to the compute dtype has a
//! backward that returns f32) and the optimizer state are f32 in every precision;
//! only the forward and backward compute is low precision. F32 and Bf16 steps read
//! nothing back from the device beyond what the engine already reads; an F16 step
//! reads one flag per step (see [`grads_finite`]).

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

use super::clip::GradScale;
use super::loss_scale::LossScaler;
use crate::events::PrecisionSummary;
use crate::spec::Precision;

/// The candle dtype a model computes in for `precision`.
pub(crate) fn compute_dtype(precision: Precision) -> DType {
    match precision {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
        Precision::F16 => DType::F16,
    }
}

/// Whether every gradient of `vars` in `grads` is finite.
///
/// One f32 scalar is formed on the device (each gradient's sum times 0 is 0 when
/// it is finite and NaN when any element is inf or NaN) and read back: one
/// synchronisation per F16 step. That read cannot wait for the next logged loss,
/// because whether to apply this step's update depends on it; PyTorch's
/// `GradScaler.step` syncs once per step for the same reason. Bf16 and F32 never call it.
pub(crate) fn grads_finite(vars: &[Var], grads: &GradStore) -> Result<bool> {
    let mut parts = Vec::new();
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            parts.push((g.sum_all()?.to_dtype(DType::F32)? * 0.0)?);
        }
    }
    if parts.is_empty() {
        return Ok(true);
    }
    let flag = Tensor::stack(&parts, 0)?.sum_all()?.to_scalar::<f32>()?;
    Ok(flag == 0.0)
}

/// `scale` divided by the loss scale: the factor the optimizer multiplies the
/// (scaled) gradients by, so the update sees the true gradients. A loss scale of
/// 1 (no scaling) adds no op on the device.
pub(crate) fn unscaled(scale: GradScale, loss_scale: f64) -> Result<GradScale> {
    if loss_scale == 1.0 {
        return Ok(scale);
    }
    Ok(match scale {
        GradScale::Host(s) => GradScale::Host(s / loss_scale),
        GradScale::Device(t) => GradScale::Device((t * (1.0 / loss_scale))?),
    })
}

/// The run's precision as the summary reports it (None for F32).
pub(crate) fn summary(
    precision: Precision,
    scaler: Option<&LossScaler>,
) -> Option<PrecisionSummary> {
    (precision != Precision::F32).then(|| PrecisionSummary {
        precision: precision.name().to_string(),
        skipped_steps: scaler.map_or(0, |s| s.skipped),
        loss_scale: scaler.map(|s| s.scale),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn one_non_finite_gradient_element_is_found() -> Result<()> {
        let a = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu)?)?;
        let b = Var::from_tensor(&Tensor::new(&[3f32, 4.0, 5.0], &Device::Cpu)?)?;
        let vars = [a.clone(), b.clone()];
        let loss = (a.as_tensor().sum_all()? + b.as_tensor().sqr()?.sum_all()?)?;
        assert!(grads_finite(&vars, &loss.backward()?)?);
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let weights = Tensor::new(&[1f32, bad, 1.0], &Device::Cpu)?;
            let loss = (a.as_tensor().sum_all()? + (b.as_tensor() * &weights)?.sum_all()?)?;
            assert!(!grads_finite(&vars, &loss.backward()?)?, "{bad} is caught");
        }
        Ok(())
    }

    #[test]
    fn unscaling_divides_host_and_device_factors() -> Result<()> {
        let GradScale::Host(h) = unscaled(GradScale::Host(0.5), 1024.0)? else {
            panic!("stays on the host");
        };
        assert_eq!(h, 0.5 / 1024.0);
        let t = Tensor::new(2f32, &Device::Cpu)?;
        let d = unscaled(GradScale::Device(t), 4.0)?.host()?;
        assert_eq!(d, 0.5);
        Ok(())
    }
}
