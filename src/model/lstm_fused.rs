//! A whole-sequence LSTM layer as one candle custom op (CPU, f32), with its own
//! backward pass through time.
//!
//! Contract: `lstm_sequence(xproj [t, b, 4h], w_hh [4h, h]) -> hs [t, b, h]`, where
//! `xproj` already holds `x @ w_ih^T + bias` for every step (one large matmul done
//! by the caller), gates are ordered i, f, g, o as in PyTorch, and the state starts
//! at zero. Per step the forward does one GEMM (`h @ w_hh^T`) and one pass over the
//! gates; the backward does one GEMM per step plus a single GEMM over all steps
//! for `w_hh`'s gradient. Activated gates and cell states are kept from the forward
//! pass for the backward one. Matches `lstm_reference` (plain candle ops) within
//! float rounding; tested in `recurrent.rs`.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::im2col::f32_slice;

/// Runs the LSTM over all steps; differentiable in `xproj` and `w_hh`.
pub(crate) fn lstm_sequence(xproj: &Tensor, w_hh: &Tensor) -> Result<Tensor> {
    let op = LstmSequence {
        saved: Mutex::new(None),
    };
    xproj.contiguous()?.apply_op2(&w_hh.contiguous()?, op)
}

/// What the backward pass needs from the forward one.
struct Saved {
    /// Activated gates i, f, g, o per step: `[t, b, 4h]`.
    gates: Vec<f32>,
    /// Cell states: `[t, b, h]`.
    cells: Vec<f32>,
}

struct LstmSequence {
    saved: Mutex<Option<Saved>>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` with explicit row/column strides.
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    debug_assert!(dst.len() >= m * n);
    debug_assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    debug_assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 && m * n * k > 1 << 16 {
        ::gemm::Parallelism::Rayon(threads)
    } else {
        ::gemm::Parallelism::None
    };
    // SAFETY: the slices cover every element addressed by the given sizes and
    // strides (checked above in debug builds, and by construction in the callers).
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

impl CustomOp2 for LstmSequence {
    fn name(&self) -> &'static str {
        "lstm-sequence"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xproj = f32_slice(s1, l1, "lstm")?;
        let w_hh = f32_slice(s2, l2, "lstm")?;
        let (t, b, g4) = l1.shape().dims3()?;
        let h = g4 / 4;
        if l2.dims() != [g4, h] || g4 != 4 * h {
            candle_core::bail!("lstm: w_hh is {:?}, expected [{g4}, {h}]", l2.dims());
        }
        let mut gates = xproj.to_vec();
        let mut cells = vec![0f32; t * b * h];
        let mut hs = vec![0f32; t * b * h];
        for step in 0..t {
            let gs = &mut gates[step * b * g4..(step + 1) * b * g4];
            if step > 0 {
                let prev = &hs[(step - 1) * b * h..step * b * h];
                // gates += h_prev @ w_hh^T
                gemm((b, g4, h), gs, true, prev, (h, 1), w_hh, (1, h));
            }
            let (done, rest) = cells.split_at_mut(step * b * h);
            let c_prev = (step > 0).then(|| &done[(step - 1) * b * h..]);
            let c_now = &mut rest[..b * h];
            let h_now = &mut hs[step * b * h..(step + 1) * b * h];
            for r in 0..b {
                let row = &mut gs[r * g4..(r + 1) * g4];
                for j in 0..h {
                    let i = sigmoid(row[j]);
                    let f = sigmoid(row[h + j]);
                    let g = row[2 * h + j].tanh();
                    let o = sigmoid(row[3 * h + j]);
                    let cp = c_prev.map_or(0.0, |c| c[r * h + j]);
                    let c = f * cp + i * g;
                    c_now[r * h + j] = c;
                    h_now[r * h + j] = o * c.tanh();
                    row[j] = i;
                    row[h + j] = f;
                    row[2 * h + j] = g;
                    row[3 * h + j] = o;
                }
            }
        }
        if let Ok(mut saved) = self.saved.lock() {
            *saved = Some(Saved { gates, cells });
        }
        Ok((CpuStorage::F32(hs), Shape::from((t, b, h))))
    }

    fn bwd(
        &self,
        _xproj: &Tensor,
        w_hh: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(Saved { gates, cells }) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!("lstm: backward called twice or without a forward pass");
        };
        let (t, b, h) = res.dims3()?;
        let g4 = 4 * h;
        let hs = res.flatten_all()?.to_vec1::<f32>()?;
        let dhs = grad_res.flatten_all()?.to_vec1::<f32>()?;
        let w = w_hh.flatten_all()?.to_vec1::<f32>()?;
        let mut dgates = vec![0f32; t * b * g4];
        let mut dh_next = vec![0f32; b * h];
        let mut dc_next = vec![0f32; b * h];
        for step in (0..t).rev() {
            let gs = &gates[step * b * g4..(step + 1) * b * g4];
            let c_now = &cells[step * b * h..(step + 1) * b * h];
            let c_prev = (step > 0).then(|| &cells[(step - 1) * b * h..step * b * h]);
            let dh_out = &dhs[step * b * h..(step + 1) * b * h];
            let dg = &mut dgates[step * b * g4..(step + 1) * b * g4];
            for r in 0..b {
                let row = &gs[r * g4..(r + 1) * g4];
                let drow = &mut dg[r * g4..(r + 1) * g4];
                for j in 0..h {
                    let k = r * h + j;
                    let (i, f, g, o) = (row[j], row[h + j], row[2 * h + j], row[3 * h + j]);
                    let tc = c_now[k].tanh();
                    let dh = dh_out[k] + dh_next[k];
                    let dc = dc_next[k] + dh * o * (1.0 - tc * tc);
                    let cp = c_prev.map_or(0.0, |c| c[k]);
                    drow[j] = dc * g * i * (1.0 - i);
                    drow[h + j] = dc * cp * f * (1.0 - f);
                    drow[2 * h + j] = dc * i * (1.0 - g * g);
                    drow[3 * h + j] = dh * tc * o * (1.0 - o);
                    dc_next[k] = dc * f;
                }
            }
            if step > 0 {
                // dh_prev = dgates @ w_hh
                gemm((b, h, g4), &mut dh_next, false, dg, (g4, 1), &w, (h, 1));
            }
        }
        // dw_hh[4h, h] = sum over steps >= 1 of dgates_t^T @ h_{t-1}: one GEMM over all rows.
        let mut dw = vec![0f32; g4 * h];
        if t > 1 {
            let rows = (t - 1) * b;
            gemm(
                (g4, h, rows),
                &mut dw,
                false,
                &dgates[b * g4..],
                (1, g4),
                &hs[..rows * h],
                (h, 1),
            );
        }
        let device = res.device();
        let dx = Tensor::from_vec(dgates, (t, b, g4), device)?;
        let dw = Tensor::from_vec(dw, (g4, h), device)?;
        Ok((Some(dx), Some(dw)))
    }
}
