//! A whole LSTM layer — input projection and recurrence — as one candle custom op
//! (CPU, f32), with its own backward pass through time.
//!
//! Contract: `lstm_layer(x [b, t, d], w_ih [4h, d], b [4h], w_hh [4h, h]) -> hs
//! [b, t, h]`, batch-major like the layers around it. Gates are ordered i, f, g, o
//! as in PyTorch and the state starts at zero. Matches `lstm_reference` (plain
//! candle ops) within float rounding; tested in `recurrent.rs`.
//!
//! Sequences in a batch never interact, so the batch is cut into one run of rows
//! per core and each run goes through all its steps on its own core: one GEMM for
//! the input projection of all its steps, then per step one single-threaded GEMM
//! (`h @ w_hh^T`) and one vectorised pass over the gates, with no synchronisation
//! between steps. Inside a run the buffers are time-major, so that one step's rows
//! are one matrix. The backward pass does one GEMM per step for the state gradient
//! and one GEMM each over all steps for `w_hh`, `w_ih` and the input gradient.
//! Doing the projection inside the op keeps the `[b, t, 4h]` gate tensor (the
//! layer's largest) out of candle's autograd, which would copy and zero-fill it.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::{sigmoid, tanh, with_simd};
use super::cpu_data::{f32_slice, storage_f32};
use super::gemm::{Threads, matmul, row_major, transposed};
use super::seq_layout::{
    column_sums, recurrent_weight_gradient, rows_per_run, step_gradient, sum_parts, to_batch_major,
    to_time_major, transpose,
};

/// Runs the LSTM layer; differentiable in `x`, `w_ih`, `bias` and `w_hh`.
pub(crate) fn lstm_layer(
    x: &Tensor,
    w_ih: &Tensor,
    bias: &Tensor,
    w_hh: &Tensor,
) -> Result<Tensor> {
    // Custom ops take three inputs: the bias rides along as w_ih's last column
    // (a 4h x (d+1) copy, small next to the gates).
    let w_in = Tensor::cat(&[w_ih, &bias.unsqueeze(1)?], 1)?;
    let op = LstmLayer {
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op3(&w_in, &w_hh.contiguous()?, op)
}

/// What one run of rows keeps from the forward pass for the backward one; all
/// time-major over the run's `n` rows.
struct RunSaved {
    /// Activated gates i, f, g, o: `[t, n, 4h]`.
    gates: Vec<f32>,
    /// Cell states: `[t, n, h]`.
    cells: Vec<f32>,
    /// tanh of the cell states: `[t, n, h]`.
    tanh_cells: Vec<f32>,
    /// Hidden states: `[t, n, h]`.
    hs: Vec<f32>,
    /// The run's inputs, time-major: `[t, n, d]`.
    xs: Vec<f32>,
}

struct LstmLayer {
    saved: Mutex<Option<Vec<RunSaved>>>,
}

/// One step of the cell for `n` rows: activates `gates [n, 4h]` in place and
/// writes the new cell state, its tanh and the hidden state (`c_prev` is zeros
/// at the first step).
#[inline(always)]
fn cell_forward(
    h: usize,
    gates: &mut [f32],
    c_prev: &[f32],
    cells: &mut [f32],
    tanh_cells: &mut [f32],
    hs: &mut [f32],
) {
    for (r, row) in gates.chunks_mut(4 * h).enumerate() {
        let (ifg, o) = row.split_at_mut(3 * h);
        let (i_f, g) = ifg.split_at_mut(2 * h);
        i_f.iter_mut().for_each(|v| *v = sigmoid(*v));
        g.iter_mut().for_each(|v| *v = tanh(*v));
        o.iter_mut().for_each(|v| *v = sigmoid(*v));
        let (i, f) = i_f.split_at(h);
        let c = &mut cells[r * h..(r + 1) * h];
        let cp = &c_prev[r * h..(r + 1) * h];
        for j in 0..h {
            c[j] = f[j] * cp[j] + i[j] * g[j];
        }
        let tc = &mut tanh_cells[r * h..(r + 1) * h];
        let hr = &mut hs[r * h..(r + 1) * h];
        for j in 0..h {
            tc[j] = tanh(c[j]);
            hr[j] = o[j] * tc[j];
        }
    }
}

/// One step back through the cell for `n` rows: from the hidden-state gradient
/// `dh [n, h]` (output gradient plus the one from the next step) and the carried
/// cell gradient `dc [n, h]` (updated in place to the previous step's), writes
/// the pre-activation gate gradients `dgates [n, 4h]`.
#[inline(always)]
fn cell_backward(
    h: usize,
    gates: &[f32],
    c_prev: &[f32],
    tanh_cells: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dgates: &mut [f32],
) {
    for (r, (row, drow)) in gates
        .chunks(4 * h)
        .zip(dgates.chunks_mut(4 * h))
        .enumerate()
    {
        let (i, rest) = row.split_at(h);
        let (f, rest) = rest.split_at(h);
        let (g, o) = rest.split_at(h);
        let (di, drest) = drow.split_at_mut(h);
        let (df, drest) = drest.split_at_mut(h);
        let (dg, do_) = drest.split_at_mut(h);
        let tc = &tanh_cells[r * h..(r + 1) * h];
        let dh = &dh[r * h..(r + 1) * h];
        let dc = &mut dc[r * h..(r + 1) * h];
        let cp = &c_prev[r * h..(r + 1) * h];
        for j in 0..h {
            let dcj = dc[j] + dh[j] * o[j] * (1.0 - tc[j] * tc[j]);
            di[j] = dcj * g[j] * i[j] * (1.0 - i[j]);
            df[j] = dcj * cp[j] * f[j] * (1.0 - f[j]);
            dg[j] = dcj * i[j] * (1.0 - g[j] * g[j]);
            do_[j] = dh[j] * tc[j] * o[j] * (1.0 - o[j]);
            dc[j] = dcj * f[j];
        }
    }
}

impl CustomOp3 for LstmLayer {
    fn name(&self) -> &'static str {
        "lstm-layer"
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
        let x = f32_slice(s1, l1, "lstm")?;
        let w_in = f32_slice(s2, l2, "lstm")?;
        let w_hh = f32_slice(s3, l3, "lstm")?;
        let (b, t, d) = l1.shape().dims3()?;
        let (g4, h) = l3.shape().dims2()?;
        if g4 != 4 * h || l2.dims() != [g4, d + 1] {
            candle_core::bail!(
                "lstm: input {:?}, w_ih+bias {:?}, w_hh {:?} do not fit",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        // w_hh^T stored row-major [h, 4h]: the GEMM library then reads it in place
        // instead of repacking all of w_hh at every step (measured: a sixth of
        // the whole training step).
        let w_t = transpose(w_hh, g4, h);
        let bias: Vec<f32> = w_in.iter().skip(d).step_by(d + 1).copied().collect();
        let per = rows_per_run(b);
        let mut out = vec![0f32; b * t * h];
        let runs: Vec<RunSaved> = out
            .par_chunks_mut(per * t * h)
            .zip(x.par_chunks(per * t * d))
            .map(|(out, x)| {
                let n = out.len() / (t * h);
                let xs = to_time_major(x, n, t, d);
                // Every step's input projection at once: gates = bias + x @ w_ih^T,
                // w_ih read from the first d columns of w_in [4h, d+1].
                let mut gates = Vec::with_capacity(t * n * g4);
                for _ in 0..t * n {
                    gates.extend_from_slice(&bias);
                }
                matmul(
                    (t * n, g4, d),
                    &mut gates,
                    true,
                    &xs,
                    row_major(d),
                    w_in,
                    transposed(d + 1),
                    Threads::One,
                );
                let mut cells = vec![0f32; t * n * h];
                let mut tanh_cells = vec![0f32; t * n * h];
                let mut hs = vec![0f32; t * n * h];
                let step = n * h;
                let zeros = vec![0f32; step];
                for s in 0..t {
                    let gs = &mut gates[s * n * g4..(s + 1) * n * g4];
                    if s > 0 {
                        // gates += h_prev @ w_hh^T
                        let prev = &hs[(s - 1) * step..s * step];
                        matmul(
                            (n, g4, h),
                            gs,
                            true,
                            prev,
                            row_major(h),
                            &w_t,
                            row_major(g4),
                            Threads::One,
                        );
                    }
                    let (done, now) = cells.split_at_mut(s * step);
                    let c_prev = if s > 0 {
                        &done[(s - 1) * step..]
                    } else {
                        &zeros[..]
                    };
                    let tc = &mut tanh_cells[s * step..(s + 1) * step];
                    let hn = &mut hs[s * step..(s + 1) * step];
                    with_simd(|| cell_forward(h, gs, c_prev, &mut now[..step], tc, hn));
                }
                to_batch_major(&hs, n, t, h, out);
                RunSaved {
                    gates,
                    cells,
                    tanh_cells,
                    hs,
                    xs,
                }
            })
            .collect();
        if let Ok(mut saved) = self.saved.lock() {
            *saved = Some(runs);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, h))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w_in: &Tensor,
        w_hh: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(runs) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!("lstm: backward called twice or without a forward pass");
        };
        let (b, t, h) = res.dims3()?;
        let d = x.dim(2)?;
        let g4 = 4 * h;
        let (w_in, w_hh, grad) = (
            w_in.contiguous()?,
            w_hh.contiguous()?,
            grad_res.contiguous()?,
        );
        let (is, il) = w_in.storage_and_layout();
        let (ws, wl) = w_hh.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let wi = storage_f32(&is, il, "lstm backward")?;
        let w = storage_f32(&ws, wl, "lstm backward")?;
        let dhs = storage_f32(&gs, gl, "lstm backward")?;
        let per = rows_per_run(b);
        let input_grad = x.track_op();
        let mut dx = vec![0f32; b * t * d];
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(per * t * d)
            .zip(dhs.par_chunks(per * t * h))
            .zip(runs.par_iter())
            .map(|((dx, dhs), run)| {
                let n = dx.len() / (t * d);
                let step = n * h;
                let mut dgates = vec![0f32; t * n * g4];
                let mut dh = vec![0f32; step];
                let mut dh_next = vec![0f32; step];
                let mut dc = vec![0f32; step];
                let zeros = vec![0f32; step];
                for s in (0..t).rev() {
                    step_gradient(dhs, &dh_next, (s, n, t, h), &mut dh);
                    let gates = &run.gates[s * n * g4..(s + 1) * n * g4];
                    let c_prev = if s > 0 {
                        &run.cells[(s - 1) * step..s * step]
                    } else {
                        &zeros[..]
                    };
                    let tc = &run.tanh_cells[s * step..(s + 1) * step];
                    let dg = &mut dgates[s * n * g4..(s + 1) * n * g4];
                    with_simd(|| cell_backward(h, gates, c_prev, tc, &dh, &mut dc, dg));
                    if s > 0 {
                        // dh_prev = dgates @ w_hh
                        matmul(
                            (n, h, g4),
                            &mut dh_next,
                            false,
                            dg,
                            row_major(g4),
                            w,
                            row_major(h),
                            Threads::One,
                        );
                    }
                }
                let dw_hh = recurrent_weight_gradient(&dgates, &run.hs, (n, t), (g4, h));
                // d(w_ih | bias) [4h, d+1]: dgates^T @ x in the first d columns, the
                // column sums of dgates in the last.
                let mut dw_ih = vec![0f32; g4 * d];
                matmul(
                    (g4, d, t * n),
                    &mut dw_ih,
                    false,
                    &dgates,
                    transposed(g4),
                    &run.xs,
                    row_major(d),
                    Threads::One,
                );
                let db = column_sums(&dgates, g4);
                let mut dw_in = Vec::with_capacity(g4 * (d + 1));
                for (row, bias) in dw_ih.chunks(d).zip(&db) {
                    dw_in.extend_from_slice(row);
                    dw_in.push(*bias);
                }
                if input_grad {
                    // dx = dgates @ w_ih, w_ih the first d columns of w_in.
                    let mut dx_tm = vec![0f32; t * n * d];
                    matmul(
                        (t * n, d, g4),
                        &mut dx_tm,
                        false,
                        &dgates,
                        row_major(g4),
                        wi,
                        (d + 1, 1),
                        Threads::One,
                    );
                    to_batch_major(&dx_tm, n, t, d, dx);
                }
                (dw_in, dw_hh)
            })
            .collect();
        let (dw_ins, dw_hhs): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
        let device = res.device();
        let dx = if input_grad {
            Some(Tensor::from_vec(dx, (b, t, d), device)?)
        } else {
            None
        };
        let dw_in = Tensor::from_vec(sum_parts(dw_ins, g4 * (d + 1)), (g4, d + 1), device)?;
        let dw_hh = transpose(&sum_parts(dw_hhs, g4 * h), h, g4);
        let dw_hh = Tensor::from_vec(dw_hh, (g4, h), device)?;
        Ok((dx, Some(dw_in), Some(dw_hh)))
    }
}
