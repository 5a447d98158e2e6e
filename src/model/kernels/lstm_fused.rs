//! A whole LSTM layer — input projection and recurrence — as one candle custom op
//! (CPU, f32), with its own backward pass through time.
//!
//! Contract: `lstm_layer(x [b, t, d], w_ih [4h, d], b [4h], w_hh [4h, h]) -> hs
//! [b, t, h]`, batch-major like the layers around it. `lstm_from_table(table
//! [v, 4h], tokens [b, t] u32, w_hh) -> hs` is the same layer fed by an
//! embedding: row `i` of the table is vocabulary entry i's input projection plus
//! bias (`recurrent.rs` builds it with candle ops, so the embedding and `w_ih`
//! get their gradients through it); a token id of `v` or more is an error. Gates
//! are ordered i, f, g, o as in PyTorch and the state starts at zero. Both match
//! `lstm_reference` (plain candle ops) within float rounding; tested in
//! `recurrent.rs`.
//!
//! Sequences in a batch never interact, so the batch is cut into one run of rows
//! per core and each run goes through all its steps on its own core, with no
//! synchronisation between steps. Inside a run, step s reads one time-major
//! matrix `z_s = [x_s | 1 | h_{s-1}]` (`[n, d + 1 + h]`; just `h_{s-1}` when fed
//! by a table), so a step is one skinny product `gates = z_s @ [w_ih | bias |
//! w_hh]^T` (`skinny.rs`, weights packed once per pass; added to the tokens'
//! table rows) and one vectorised pass over the gates, which writes `h_s`
//! straight into `z_{s+1}`. Backward: one skinny product per step for the state
//! gradient, then one GEMM over all steps for every weight and bias gradient
//! (`z^T @ dgates`) and one for the input gradient (for a table: the gate
//! gradients added into their tokens' rows). Doing the projection inside the op
//! keeps the `[b, t, 4h]` gate tensor (the layer's largest) out of candle's
//! autograd, which would copy and zero-fill it.
//!
//! Why the table: a character vocabulary (~90 entries) is far smaller than a
//! batch's tokens (2048 for 32 windows of 64), so projecting each entry once
//! and looking rows up removes the per-token projection and its two gradient
//! GEMMs: about a fifth of a char-LSTM step's multiply-adds.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::{sigmoid, simd_kernel, tanh};
use super::cpu_data::{f32_slice, storage_f32, storage_u32, u32_slice};
use super::gemm::{Threads, matmul, row_major, transposed};
use super::scratch::Scratch;
use super::seq_layout::{
    MIN_RECURRENT_ROWS, rows_per_run, step_gradient, sum_parts, to_batch_major, transpose,
};
use super::skinny::{PackedRhs, Start};

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
        feed: Feed::Vectors,
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op3(&w_in, &w_hh.contiguous()?, op)
}

/// Runs the LSTM layer on token ids through its input table (see the module
/// comment); differentiable in `table` and `w_hh`.
pub(crate) fn lstm_from_table(table: &Tensor, tokens: &Tensor, w_hh: &Tensor) -> Result<Tensor> {
    let op = LstmLayer {
        feed: Feed::Table,
        saved: Mutex::new(None),
    };
    table
        .contiguous()?
        .apply_op3(&tokens.contiguous()?, &w_hh.contiguous()?, op)
}

/// What the op's first two inputs are.
#[derive(Clone, Copy)]
enum Feed {
    /// `x [b, t, d]` and `[w_ih | bias] [4h, d + 1]`.
    Vectors,
    /// `table [v, 4h]` and `tokens [b, t]` (u32).
    Table,
}

/// What one run of rows keeps from the forward pass for the backward one; all
/// time-major over the run's `n` rows.
struct RunSaved {
    /// Activated gates i, f, g, o: `[t, n, 4h]`.
    gates: Scratch,
    /// Cell states: `[t, n, h]`.
    cells: Scratch,
    /// tanh of the cell states: `[t, n, h]`.
    tanh_cells: Scratch,
    /// Each step's product input `[x_s | 1 | h_{s-1}]` (or `h_{s-1}`): `[t + 1,
    /// n, zw]` (the h part of the last block is the final hidden state).
    z: Scratch,
}

struct LstmLayer {
    feed: Feed,
    saved: Mutex<Option<Vec<RunSaved>>>,
}

simd_kernel! {
    /// One step of the cell for `n` rows: activates `gates [n, 4h]` in place and
    /// writes the new cell state, its tanh and the hidden state (`c_prev` is zeros
    /// at the first step); row r's hidden state goes to `hs[r * hs_row..][..h]`.
    fn cell_forward(
        h: usize,
        gates: &mut [f32],
        c_prev: &[f32],
        cells: &mut [f32],
        tanh_cells: &mut [f32],
        hs: &mut [f32],
        hs_row: usize,
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
            let hr = &mut hs[r * hs_row..r * hs_row + h];
            for j in 0..h {
                tc[j] = tanh(c[j]);
                hr[j] = o[j] * tc[j];
            }
        }
    }
}

simd_kernel! {
    /// One step back through the cell for `n` rows: from the hidden-state gradient
    /// `dh [n, h]` (output gradient plus the one from the next step) and the carried
    /// cell gradient `dc [n, h]` (updated in place to the previous step's), writes
    /// the pre-activation gate gradients `dgates [n, 4h]`.
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
        let w_hh = f32_slice(s3, l3, "lstm")?;
        let (g4, h) = l3.shape().dims2()?;
        if g4 != 4 * h {
            candle_core::bail!("lstm: w_hh {:?} is not [4h, h]", l3.dims());
        }
        match self.feed {
            Feed::Vectors => {
                let x = f32_slice(s1, l1, "lstm")?;
                let w_in = f32_slice(s2, l2, "lstm")?;
                let (b, t, d) = l1.shape().dims3()?;
                if l2.dims() != [g4, d + 1] {
                    candle_core::bail!(
                        "lstm: input {:?}, w_ih+bias {:?}, w_hh {:?} do not fit",
                        l1.dims(),
                        l2.dims(),
                        l3.dims()
                    );
                }
                // [w_ih | bias | w_hh]^T, [d + 1 + h, 4h], packed once for every
                // step's product (the bias meets a column of ones in z).
                let w_cat = PackedRhs::from_columns((d + 1 + h, g4), |c, col| {
                    col[..=d].copy_from_slice(&w_in[c * (d + 1)..][..d + 1]);
                    col[d + 1..].copy_from_slice(&w_hh[c * h..][..h]);
                });
                let zw = d + 1 + h;
                let inputs = |r0: usize, n: usize, z: &mut [f32]| {
                    for s in 0..t {
                        for r in 0..n {
                            let row = &mut z[(s * n + r) * zw..][..=d];
                            row[..d].copy_from_slice(&x[((r0 + r) * t + s) * d..][..d]);
                            row[d] = 1.0;
                        }
                    }
                };
                Ok(self.forward_runs((b, t, h), &w_cat, d + 1, inputs, |_, _, _, _| Start::Zero))
            }
            Feed::Table => {
                let table = f32_slice(s1, l1, "lstm")?;
                let tokens = u32_slice(s2, l2, "lstm")?;
                let (v, width) = l1.shape().dims2()?;
                let (b, t) = l2.shape().dims2()?;
                if width != g4 {
                    candle_core::bail!(
                        "lstm: table {:?} and w_hh {:?} do not fit",
                        l1.dims(),
                        l3.dims()
                    );
                }
                if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= v) {
                    candle_core::bail!("lstm: token id {bad} is outside the table's {v} rows");
                }
                let w_hh_t = PackedRhs::new(w_hh, (h, g4), (1, h));
                // Each step's gates start from its tokens' table rows.
                let rows = |r0: usize, n: usize, s: usize, gates: &mut [f32]| {
                    for (r, row) in gates.chunks_exact_mut(g4).take(n).enumerate() {
                        let id = tokens[(r0 + r) * t + s] as usize;
                        row.copy_from_slice(&table[id * g4..][..g4]);
                    }
                    Start::Dst
                };
                Ok(self.forward_runs((b, t, h), &w_hh_t, 0, |_, _, _| {}, rows))
            }
        }
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        w_hh: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(runs) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!("lstm: backward called twice or without a forward pass");
        };
        let (b, t, h) = res.dims3()?;
        if b * t * h == 0 {
            let arg2_grad = match self.feed {
                Feed::Vectors => Some(arg2.zeros_like()?),
                Feed::Table => None,
            };
            return Ok((
                Some(arg1.zeros_like()?),
                arg2_grad,
                Some(w_hh.zeros_like()?),
            ));
        }
        let g4 = 4 * h;
        let (w_hh, grad) = (w_hh.contiguous()?, grad_res.contiguous()?);
        let (ws, wl) = w_hh.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let w = storage_f32(&ws, wl, "lstm backward")?;
        let dhs = storage_f32(&gs, gl, "lstm backward")?;
        // w_hh [4h, h] packed once for the per-step state gradients.
        let w_packed = PackedRhs::new(w, (g4, h), row_major(h));
        let per = rows_per_run(b, MIN_RECURRENT_ROWS);
        let device = res.device();
        match self.feed {
            Feed::Vectors => {
                let (x, w_in) = (arg1, arg2.contiguous()?);
                let d = x.dim(2)?;
                let zw = d + 1 + h;
                let (is, il) = w_in.storage_and_layout();
                let wi = storage_f32(&is, il, "lstm backward")?;
                let input_grad = x.track_op();
                let mut dx = vec![0f32; b * t * d];
                let partials: Vec<Scratch> = dx
                    .par_chunks_mut((per * t * d).max(1))
                    .zip(dhs.par_chunks(per * t * h))
                    .zip(runs.par_iter())
                    .map(|((dx, dhs), run)| {
                        let n = dhs.len() / (t * h);
                        let (dgates, dw_t) = backward_run(&w_packed, run, dhs, (n, t, h, zw));
                        if input_grad {
                            // dx = dgates @ w_ih, w_ih the first d columns of w_in.
                            let mut dx_tm = Scratch::uninit(t * n * d);
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
                        dw_t
                    })
                    .collect();
                let dw_t = sum_parts(
                    partials.into_iter().map(Scratch::into_vec).collect(),
                    zw * g4,
                );
                // Back to the parameters' layout: row c of the transpose is gate
                // column c, [d input weights | bias | h recurrent weights].
                let dw = transpose(&dw_t, zw, g4);
                let mut dw_in = Vec::with_capacity(g4 * (d + 1));
                let mut dw_hh = Vec::with_capacity(g4 * h);
                for row in dw.chunks(zw) {
                    dw_in.extend_from_slice(&row[..=d]);
                    dw_hh.extend_from_slice(&row[d + 1..]);
                }
                let dx = if input_grad {
                    Some(Tensor::from_vec(dx, (b, t, d), device)?)
                } else {
                    None
                };
                let dw_in = Tensor::from_vec(dw_in, (g4, d + 1), device)?;
                let dw_hh = Tensor::from_vec(dw_hh, (g4, h), device)?;
                Ok((dx, Some(dw_in), Some(dw_hh)))
            }
            Feed::Table => {
                let v = arg1.dim(0)?;
                let tokens = arg2.contiguous()?;
                let (ts, tl) = tokens.storage_and_layout();
                let tokens = storage_u32(&ts, tl, "lstm backward")?;
                let partials: Vec<(Vec<f32>, Vec<f32>)> = dhs
                    .par_chunks(per * t * h)
                    .zip(runs.par_iter())
                    .enumerate()
                    .map(|(i, (dhs, run))| {
                        let n = dhs.len() / (t * h);
                        let (dgates, dw_t) = backward_run(&w_packed, run, dhs, (n, t, h, h));
                        // Each token's gate gradients go to its table row.
                        let mut dtable = vec![0f32; v * g4];
                        for s in 0..t {
                            for r in 0..n {
                                let id = tokens[(i * per + r) * t + s] as usize;
                                add_into(
                                    &mut dtable[id * g4..][..g4],
                                    &dgates[(s * n + r) * g4..][..g4],
                                );
                            }
                        }
                        (dtable, dw_t.into_vec())
                    })
                    .collect();
                let (dtables, dw_ts): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
                let dtable = sum_parts(dtables, v * g4);
                let dw_hh = transpose(&sum_parts(dw_ts, h * g4), h, g4);
                Ok((
                    Some(Tensor::from_vec(dtable, (v, g4), device)?),
                    None,
                    Some(Tensor::from_vec(dw_hh, (g4, h), device)?),
                ))
            }
        }
    }
}

impl LstmLayer {
    /// The forward pass over runs of rows, `zw = lead + h` values a product
    /// input row: `inputs(first_row, n, z)` fills the lead part of every step's
    /// block (the `t` blocks of `[n, zw]` at the start of `z`), and
    /// `start(first_row, n, s, gates)` prepares step s's gates and says what
    /// the product adds to. Keeps each run's values for the backward pass.
    fn forward_runs(
        &self,
        (b, t, h): (usize, usize, usize),
        w: &PackedRhs,
        lead: usize,
        inputs: impl Fn(usize, usize, &mut [f32]) + Sync,
        start: impl Fn(usize, usize, usize, &mut [f32]) -> Start<'static> + Sync,
    ) -> (CpuStorage, Shape) {
        let (g4, zw) = (4 * h, lead + h);
        let mut out = vec![0f32; b * t * h];
        let runs: Vec<RunSaved> = if out.is_empty() {
            Vec::new()
        } else {
            let per = rows_per_run(b, MIN_RECURRENT_ROWS);
            out.par_chunks_mut(per * t * h)
                .enumerate()
                .map(|(i, out)| {
                    let (r0, n) = (i * per, out.len() / (t * h));
                    let (step, block) = (n * h, n * zw);
                    let mut z = Scratch::uninit((t + 1) * block);
                    inputs(r0, n, &mut z);
                    z[..block]
                        .chunks_exact_mut(zw)
                        .for_each(|row| row[lead..].fill(0.0));
                    let mut gates = Scratch::uninit(t * n * g4);
                    let mut cells = Scratch::uninit(t * step);
                    let mut tanh_cells = Scratch::uninit(t * step);
                    let zeros = vec![0f32; step];
                    for s in 0..t {
                        let gs = &mut gates[s * n * g4..(s + 1) * n * g4];
                        let (z_now, z_next) = z.split_at_mut((s + 1) * block);
                        let begin = start(r0, n, s, gs);
                        w.matmul(n, gs, begin, &z_now[s * block..], zw);
                        let (done, now) = cells.split_at_mut(s * step);
                        let c_prev = if s > 0 {
                            &done[(s - 1) * step..]
                        } else {
                            &zeros[..]
                        };
                        let tc = &mut tanh_cells[s * step..(s + 1) * step];
                        let h_out = &mut z_next[lead..block];
                        cell_forward(h, gs, c_prev, &mut now[..step], tc, h_out, zw);
                    }
                    // The hidden states sit in the h parts of blocks 1..=t.
                    for r in 0..n {
                        for s in 0..t {
                            out[(r * t + s) * h..][..h]
                                .copy_from_slice(&z[(s + 1) * block + r * zw + lead..][..h]);
                        }
                    }
                    RunSaved {
                        gates,
                        cells,
                        tanh_cells,
                        z,
                    }
                })
                .collect()
        };
        if let Ok(mut saved) = self.saved.lock() {
            *saved = Some(runs);
        }
        (CpuStorage::F32(out), Shape::from((b, t, h)))
    }
}

/// One run's pass back through time from its output gradient `dhs [n, t, h]`
/// (batch-major): every step's pre-activation gate gradients `[t, n, 4h]`, and
/// `z^T @ dgates` (`[zw, 4h]`), the transposed gradient of the weights the
/// steps' products used.
fn backward_run(
    w_hh: &PackedRhs,
    run: &RunSaved,
    dhs: &[f32],
    (n, t, h, zw): (usize, usize, usize, usize),
) -> (Scratch, Scratch) {
    let (g4, step) = (4 * h, n * h);
    let mut dgates = Scratch::uninit(t * n * g4);
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
        cell_backward(h, gates, c_prev, tc, &dh, &mut dc, dg);
        if s > 0 {
            // dh_prev = dgates @ w_hh
            w_hh.matmul(n, &mut dh_next, Start::Zero, dg, g4);
        }
    }
    // Over every step at once (the GEMM library repacks z, the smaller operand).
    let mut dw_t = Scratch::uninit(zw * g4);
    matmul(
        (zw, g4, t * n),
        &mut dw_t,
        false,
        &run.z,
        transposed(zw),
        &dgates,
        row_major(g4),
        Threads::One,
    );
    (dgates, dw_t)
}

simd_kernel! {
    /// `dst += src`, element by element.
    fn add_into(dst: &mut [f32], src: &[f32]) {
        dst.iter_mut().zip(src).for_each(|(a, v)| *a += v);
    }
}
