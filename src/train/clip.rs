//! Gradient clipping by global norm, shared by the supervised, text and DQN loops: the
//! factor every gradient is multiplied by so that their joint L2 norm is at most
//! `max_norm` (1 when it already is, or when clipping is off).

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Var};

/// The scale for `grads` of `params`; reads one scalar per parameter back from
/// the device, so it costs a synchronisation only when clipping is on.
pub(crate) fn clip_scale<'a>(
    params: impl IntoIterator<Item = &'a Var>,
    grads: &GradStore,
    max_norm: Option<f64>,
) -> Result<f64> {
    let Some(max_norm) = max_norm else {
        return Ok(1.0);
    };
    let mut sq = 0.0f64;
    for var in params {
        if let Some(g) = grads.get(var.as_tensor()) {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    let norm = sq.sqrt();
    Ok(if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    })
}
