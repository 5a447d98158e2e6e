//! Access to the raw f32 data (and u32 token ids) of CPU tensors, for the
//! custom ops' kernels.
//!
//! Contract: only contiguous CPU data of the expected type is handed out; anything else is an
//! error naming the op, so a caller's fallback to candle's ops can never be
//! silently skipped.

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor};

use crate::model::Kernels;

/// The contiguous f32 data behind a custom op's input.
pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: only f32 is supported");
    };
    contiguous(data, layout, op)
}

/// The contiguous token ids behind a custom op's input.
pub(crate) fn u32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [u32]> {
    let CpuStorage::U32(data) = storage else {
        candle_core::bail!("{op}: token ids must be u32");
    };
    contiguous(data, layout, op)
}

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// The f32 data of a contiguous CPU tensor's storage (for backward passes, which
/// receive tensors rather than storages).
pub(crate) fn storage_f32<'a>(
    storage: &'a Storage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    f32_slice(cpu_storage(storage, op)?, layout, op)
}

/// The token ids of a contiguous CPU tensor's storage, as `storage_f32`.
pub(crate) fn storage_u32<'a>(
    storage: &'a Storage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [u32]> {
    u32_slice(cpu_storage(storage, op)?, layout, op)
}

fn cpu_storage<'a>(storage: &'a Storage, op: &str) -> Result<&'a CpuStorage> {
    match storage {
        Storage::Cpu(cpu) => Ok(cpu),
        _ => candle_core::bail!("{op}: only the CPU is supported"),
    }
}

/// Runs `f` on the data of `t` as contiguous f32 (copied first if strided).
pub(crate) fn with_data<T>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<T>) -> Result<T> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    f(storage_f32(&s, l, op)?)
}

/// Whether trainlab's own CPU kernels run on this tensor: `Kernels::Fast`, on the
/// CPU, in f32. Everything else takes candle's ops.
pub(crate) fn fast_cpu(t: &Tensor, kernels: Kernels) -> bool {
    kernels == Kernels::Fast && t.device().is_cpu() && t.dtype() == DType::F32
}
