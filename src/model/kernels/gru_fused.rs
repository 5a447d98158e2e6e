//! A whole-sequence GRU layer as one candle custom op (CPU, f32), with its own
//! backward pass through time; the GRU counterpart of `lstm_fused.rs`, built the
//! same way (one run of batch rows per core, time-major buffers inside a run,
//! one GEMM per step each way and one GEMM over all steps for `w_hh`).
//!
//! Contract: `gru_sequence(xproj [b, t, 3h], w_hh [3h, h], b_hh [3h]) -> [b, t, h]`
//! where `xproj = x @ w_ih^T + b_ih`; gates r, z, n in PyTorch's order and
//! formula (`n = tanh(x_n + r * (h W_hn^T + b_hn))`, `h = (1 - z) n + z h_prev`);
//! the state starts at zero. Matches the candle-ops GRU in `recurrent.rs` within
//! float rounding (tested there).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::{sigmoid, simd_kernel, tanh};
use super::cpu_data::{f32_slice, storage_f32};
use super::gemm::{row_major, transposed};
use super::scratch::Scratch;
use super::seq_layout::{
    MIN_RECURRENT_ROWS, column_sums, recurrent_weight_gradient, rows_per_run, step_gradient,
    sum_parts, to_batch_major, to_time_major, transpose,
};
use super::skinny::{PackedRhs, Start};

/// Runs the GRU over all steps; differentiable in all three inputs.
pub(crate) fn gru_sequence(xproj: &Tensor, w_hh: &Tensor, b_hh: &Tensor) -> Result<Tensor> {
    let op = GruSequence {
        saved: Mutex::new(None),
    };
    xproj
        .contiguous()?
        .apply_op3(&w_hh.contiguous()?, &b_hh.contiguous()?, op)
}

/// What one run of `n` rows keeps for the backward pass, time-major.
struct RunSaved {
    /// Activated r, z, n per step: `[t, n, 3h]`.
    gates: Vec<f32>,
    /// The recurrent projections `h_prev @ w_hh^T + b_hh`: `[t, n, 3h]`.
    hproj: Scratch,
    /// Hidden states: `[t, n, h]`.
    hs: Scratch,
}

struct GruSequence {
    saved: Mutex<Option<Vec<RunSaved>>>,
}

simd_kernel! {
    /// One step for `n` rows: `gates [n, 3h]` holds the input projections and
    /// becomes the activated r, z, n; writes the new hidden state.
    fn cell_forward(h: usize, gates: &mut [f32], hproj: &[f32], h_prev: &[f32], hs: &mut [f32]) {
        for (r, (row, hp)) in gates.chunks_mut(3 * h).zip(hproj.chunks(3 * h)).enumerate() {
            let (rg, rest) = row.split_at_mut(h);
            let (zg, ng) = rest.split_at_mut(h);
            let hp_prev = &h_prev[r * h..(r + 1) * h];
            let out = &mut hs[r * h..(r + 1) * h];
            for j in 0..h {
                let rv = sigmoid(rg[j] + hp[j]);
                let zv = sigmoid(zg[j] + hp[h + j]);
                let nv = tanh(ng[j] + rv * hp[2 * h + j]);
                rg[j] = rv;
                zg[j] = zv;
                ng[j] = nv;
                out[j] = nv + zv * (hp_prev[j] - nv);
            }
        }
    }
}

simd_kernel! {
    /// One step back for `n` rows. `dh [n, h]` is the full hidden-state gradient;
    /// writes the gradients of the input projections `dx [n, 3h]` and of the
    /// recurrent projections `dhp [n, 3h]`, and the direct part of the previous
    /// state's gradient `dh_prev [n, h]` (the GEMM through `w_hh` is added after).
    fn cell_backward(
        h: usize,
        gates: &[f32],
        hproj: &[f32],
        h_prev: &[f32],
        dh: &[f32],
        dx: &mut [f32],
        dhp: &mut [f32],
        dh_prev: &mut [f32],
    ) {
        for (r, ((row, hp), (dxr, dhr))) in gates
            .chunks(3 * h)
            .zip(hproj.chunks(3 * h))
            .zip(dx.chunks_mut(3 * h).zip(dhp.chunks_mut(3 * h)))
            .enumerate()
        {
            let hp_prev = &h_prev[r * h..(r + 1) * h];
            let dh = &dh[r * h..(r + 1) * h];
            let dprev = &mut dh_prev[r * h..(r + 1) * h];
            for j in 0..h {
                let (rv, zv, nv) = (row[j], row[h + j], row[2 * h + j]);
                let dn = dh[j] * (1.0 - zv) * (1.0 - nv * nv);
                let dz = dh[j] * (hp_prev[j] - nv) * zv * (1.0 - zv);
                let dr = dn * hp[2 * h + j] * rv * (1.0 - rv);
                dxr[j] = dr;
                dxr[h + j] = dz;
                dxr[2 * h + j] = dn;
                dhr[j] = dr;
                dhr[h + j] = dz;
                dhr[2 * h + j] = dn * rv;
                dprev[j] = dh[j] * zv;
            }
        }
    }
}

impl CustomOp3 for GruSequence {
    fn name(&self) -> &'static str {
        "gru-sequence"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xproj = f32_slice(s1, l1, "gru")?;
        let w_hh = f32_slice(s2, l2, "gru")?;
        let b_hh = f32_slice(s3, l3, "gru")?;
        let (b, t, g3) = l1.shape().dims3()?;
        let h = g3 / 3;
        if l2.dims() != [g3, h] || g3 != 3 * h || b_hh.len() != g3 {
            candle_core::bail!(
                "gru: w_hh {:?} and b_hh {:?} do not fit {g3} gate values",
                l2.dims(),
                l3.dims()
            );
        }
        // w_hh^T [h, 3h] packed once for the per-step products.
        let w_t = PackedRhs::new(w_hh, (h, g3), transposed(h));
        let per = rows_per_run(b, MIN_RECURRENT_ROWS);
        let mut out = vec![0f32; b * t * h];
        let runs: Vec<RunSaved> = out
            .par_chunks_mut(per * t * h)
            .zip(xproj.par_chunks(per * t * g3))
            .map(|(out, xproj)| {
                let n = out.len() / (t * h);
                let step = n * h;
                let mut gates = to_time_major(xproj, n, t, g3);
                let mut hproj = Scratch::uninit(t * n * g3);
                let mut hs = Scratch::uninit(t * step);
                let zeros = vec![0f32; step];
                for s in 0..t {
                    let hp = &mut hproj[s * n * g3..(s + 1) * n * g3];
                    let (done, now) = hs.split_at_mut(s * step);
                    let h_prev = if s > 0 {
                        &done[(s - 1) * step..]
                    } else {
                        &zeros[..]
                    };
                    if s > 0 {
                        // hproj = b_hh + h_prev @ w_hh^T
                        w_t.matmul(n, hp, Start::Bias(b_hh), h_prev, h);
                    } else {
                        hp.chunks_mut(g3).for_each(|row| row.copy_from_slice(b_hh));
                    }
                    let gs = &mut gates[s * n * g3..(s + 1) * n * g3];
                    cell_forward(h, gs, hp, h_prev, &mut now[..step]);
                }
                to_batch_major(&hs, n, t, h, out);
                RunSaved { gates, hproj, hs }
            })
            .collect();
        if let Ok(mut saved) = self.saved.lock() {
            *saved = Some(runs);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, h))))
    }

    fn bwd(
        &self,
        _xproj: &Tensor,
        w_hh: &Tensor,
        _b_hh: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(runs) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!("gru: backward called twice or without a forward pass");
        };
        let (b, t, h) = res.dims3()?;
        let g3 = 3 * h;
        let (w_hh, grad) = (w_hh.contiguous()?, grad_res.contiguous()?);
        let (ws, wl) = w_hh.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let w = storage_f32(&ws, wl, "gru backward")?;
        let dhs = storage_f32(&gs, gl, "gru backward")?;
        let w_packed = PackedRhs::new(w, (g3, h), row_major(h));
        let per = rows_per_run(b, MIN_RECURRENT_ROWS);
        let mut dx = vec![0f32; b * t * g3];
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(per * t * g3)
            .zip(dhs.par_chunks(per * t * h))
            .zip(runs.par_iter())
            .map(|((dx, dhs), run)| {
                let n = dx.len() / (t * g3);
                let step = n * h;
                let mut dx_tm = Scratch::uninit(t * n * g3);
                let mut dhp = Scratch::uninit(t * n * g3);
                let mut dh = vec![0f32; step];
                let mut dh_next = vec![0f32; step];
                let zeros = vec![0f32; step];
                for s in (0..t).rev() {
                    step_gradient(dhs, &dh_next, (s, n, t, h), &mut dh);
                    let gates = &run.gates[s * n * g3..(s + 1) * n * g3];
                    let hp = &run.hproj[s * n * g3..(s + 1) * n * g3];
                    let h_prev = if s > 0 {
                        &run.hs[(s - 1) * step..s * step]
                    } else {
                        &zeros[..]
                    };
                    let dxs = &mut dx_tm[s * n * g3..(s + 1) * n * g3];
                    let dhps = &mut dhp[s * n * g3..(s + 1) * n * g3];
                    cell_backward(h, gates, hp, h_prev, &dh, dxs, dhps, &mut dh_next);
                    if s > 0 {
                        // dh_prev += dhp @ w_hh
                        w_packed.matmul(n, &mut dh_next, Start::Dst, dhps, g3);
                    }
                }
                // db_hh sums dhp over every step, dw_hh pairs it with h_{s-1}.
                let dw = recurrent_weight_gradient(&dhp, &run.hs, (n, t), (g3, h));
                let db = column_sums(&dhp, g3);
                to_batch_major(&dx_tm, n, t, g3, dx);
                (dw, db)
            })
            .collect();
        let (dws, dbs): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
        let (dw, db) = (
            transpose(&sum_parts(dws, g3 * h), h, g3),
            sum_parts(dbs, g3),
        );
        let device = res.device();
        Ok((
            Some(Tensor::from_vec(dx, (b, t, g3), device)?),
            Some(Tensor::from_vec(dw, (g3, h), device)?),
            Some(Tensor::from_vec(db, g3, device)?),
        ))
    }
}
