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
        // min(1, max_norm / (norm + eps)), computed where the gradients are.
        let scale = ((sq.sqrt()? + 1e-6)?.recip()? * max_norm)?.clamp(0f32, 1f32)?;
        return Ok(GradScale::Device(scale));
    }
    let norm = f64::from(sq.to_scalar::<f32>()?).sqrt();
    Ok(GradScale::Host(if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }))
}
