//! Fused CPU kernels for the dense part of a model: a Linear layer as one GEMM
//! that starts from the bias, and softmax cross-entropy as one pass — each a candle
//! custom op with its own backward. candle's generic path runs a transpose, a
//! matmul and a broadcast add per Linear (and about ten small ops for the loss),
//! and its autograd allocates and adds a zero gradient per op; for small models
//! that bookkeeping costs more than the arithmetic.
//!
//! Contract: f32, CPU, contiguous inputs; same results as candle's ops within float
//! tolerance (tested against them). Callers fall back to candle's ops otherwise.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::activation::{exp, simd_kernel};

use super::cpu_data::{f32_slice, fast_cpu, with_data};
use super::gemm::{Threads, matmul, row_major, transposed};
use super::seq_layout::column_sums;

/// `x [..., in] @ w[out, in]^T + bias[out]` -> `[..., out]`, differentiable in all
/// three. Every leading dimension is one more row of the same GEMM, so sequence
/// models need no reshape (each reshape would add a copy of its gradient).
pub(crate) fn linear(x: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op3(w, bias, LinearOp)
}

/// Multiply-adds of one Linear product from which its two backward products
/// run side by side: below it, handing one to another core costs more than it
/// saves (measured: the MLP's 128x10 layer, 82 K, 8 % slower joined; the
/// Transformer's Linear layers, 4-17 M, ~5 % faster, measured before its block
/// ran one batch run per core, where they now join inside each run).
const JOIN_MIN_WORK: usize = 1 << 20;

/// `out [rows, n] (= or +=) x [rows, k] @ w [n, k]^T`, `n = w.len() / k`.
fn product(x: &[f32], w: &[f32], k: usize, out: &mut [f32], accumulate: bool) {
    let n = w.len().checked_div(k).unwrap_or(0);
    let rows = x.len().checked_div(k).unwrap_or(0);
    matmul(
        (rows, n, k),
        out,
        accumulate,
        x,
        row_major(k),
        w,
        transposed(k),
        Threads::Pool,
    );
}

/// `out [rows, n] = x [rows, k] @ w [n, k]^T + bias [n]`, `n = bias.len()`
/// (every value of `out` written).
pub(crate) fn linear_into(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) {
    let k = w.len().checked_div(bias.len()).unwrap_or(0);
    // Start every output row from the bias, then accumulate x @ w^T onto it.
    for row in out.chunks_exact_mut(bias.len().max(1)) {
        row.copy_from_slice(bias);
    }
    product(x, w, k, out, true);
}

/// The gradients of a Linear layer `x [rows, k] -> [rows, n]` from the one at
/// its output, `g [rows, n]`: `dx` into `dx` when given (every value written;
/// the first layer's input is data, and skipping it saves a quarter of an MLP's
/// backward arithmetic), `(dw, db)` returned.
pub(crate) fn linear_grads(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    (n, k): (usize, usize),
    dx: Option<&mut [f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len().checked_div(k).unwrap_or(0);
    // The two products are independent: one per core when there are two (each
    // may still split further when it is large).
    let input = |dx: &mut [f32]| {
        // dx[rows, k] = g[rows, n] @ w[n, k]
        matmul(
            (rows, k, n),
            dx,
            false,
            g,
            row_major(n),
            w,
            row_major(k),
            Threads::Pool,
        );
    };
    let weights = || {
        // dw[n, k] = g^T @ x
        let mut dw = vec![0f32; n * k];
        matmul(
            (n, k, rows),
            &mut dw,
            false,
            g,
            transposed(n),
            x,
            row_major(k),
            Threads::Pool,
        );
        (dw, column_sums(g, n))
    };
    match dx {
        Some(dx) if rows * n * k >= JOIN_MIN_WORK => rayon::join(|| input(dx), weights).1,
        Some(dx) => {
            input(dx);
            weights()
        }
        None => weights(),
    }
}

struct LinearOp;

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
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
        let x = f32_slice(s1, l1, "fused-linear")?;
        let w = f32_slice(s2, l2, "fused-linear")?;
        let bias = f32_slice(s3, l3, "fused-linear")?;
        let dims = l1.dims();
        let k = dims.last().copied().unwrap_or(0);
        let (n, k2) = l2.shape().dims2()?;
        if dims.len() < 2 || k != k2 || bias.len() != n {
            candle_core::bail!(
                "fused-linear: shapes {:?} {:?} {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let mut out_dims = dims.to_vec();
        out_dims[dims.len() - 1] = n;
        // Every row starts as the bias (no zero-filled buffer first).
        let mut out = bias.repeat(x.len() / k.max(1));
        product(x, w, k, &mut out, true);
        Ok((CpuStorage::F32(out), Shape::from(out_dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = w.dims2()?;
        let op = "fused-linear backward";
        let mut dx = vec![0f32; if x.track_op() { x.elem_count() } else { 0 }];
        let (dw, db) = with_data(x, op, |xd| {
            with_data(w, op, |wd| {
                with_data(grad, op, |g| {
                    let dx = x.track_op().then_some(&mut dx[..]);
                    Ok(linear_grads(xd, wd, g, (n, k), dx))
                })
            })
        })?;
        let device = x.device();
        Ok((
            x.track_op()
                .then(|| Tensor::from_vec(dx, x.shape(), device))
                .transpose()?,
            Some(Tensor::from_vec(dw, (n, k), device)?),
            Some(Tensor::from_vec(db, n, device)?),
        ))
    }
}

/// Mean softmax cross-entropy of `logits [b, c]` against `targets [b]` (u32): the
/// fused kernel with `Kernels::Fast` on the CPU, candle's ops otherwise.
pub fn classification_loss(
    logits: &Tensor,
    targets: &Tensor,
    kernels: crate::model::Kernels,
) -> Result<Tensor> {
    if fast_cpu(logits, kernels) && targets.dtype() == DType::U32 {
        cross_entropy(logits, targets)
    } else {
        candle_nn::loss::cross_entropy(logits, targets)
    }
}

/// Mean softmax cross-entropy of `logits [b, c]` against `targets [b]` (u32).
pub(crate) fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let op = CrossEntropy {
        probs: Mutex::new(None),
    };
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, op)?
        .squeeze(0)
}

/// The forward pass keeps the softmax for the backward one, so each logit's
/// exp is computed once.
struct CrossEntropy {
    probs: Mutex<Option<Vec<f32>>>,
}

fn targets_u32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [u32]> {
    let CpuStorage::U32(data) = storage else {
        candle_core::bail!("cross-entropy: targets must be u32");
    };
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("cross-entropy: targets must be contiguous"),
    }
}

/// Lanes of the partial sums and maxima below: the reductions vectorise only
/// when written as this many independent accumulators.
const LANES: usize = 16;

simd_kernel! {
    /// The softmax of each row of `logits [b, c]` into `probs`, and each row's
    /// log-sum-exp into `lse [b]`. A NaN logit makes its row's values NaN.
    fn softmax_rows(c: usize, logits: &[f32], probs: &mut [f32], lse: &mut [f32]) {
        for ((row, p), l) in logits
            .chunks_exact(c)
            .zip(probs.chunks_exact_mut(c))
            .zip(lse.iter_mut())
        {
            let mut m = [f32::NEG_INFINITY; LANES];
            let (body, tail) = row.split_at(c - c % LANES);
            for chunk in body.chunks_exact(LANES) {
                m.iter_mut().zip(chunk).for_each(|(m, &v)| *m = m.max(v));
            }
            let max = m
                .iter()
                .chain(tail)
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sums = [0f32; LANES];
            let (pb, pt) = p.split_at_mut(c - c % LANES);
            for (dst, chunk) in pb.chunks_exact_mut(LANES).zip(body.chunks_exact(LANES)) {
                for ((d, s), &v) in dst.iter_mut().zip(sums.iter_mut()).zip(chunk) {
                    *d = exp(v - max);
                    *s += *d;
                }
            }
            for (d, &v) in pt.iter_mut().zip(tail) {
                *d = exp(v - max);
                sums[0] += *d;
            }
            let sum: f32 = sums.iter().sum();
            let inv = 1.0 / sum;
            p.iter_mut().for_each(|d| *d *= inv);
            *l = max + sum.ln();
        }
    }
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let logits = f32_slice(s1, l1, "cross-entropy")?;
        let targets = targets_u32(s2, l2)?;
        let (b, c) = l1.shape().dims2()?;
        if targets.len() != b {
            candle_core::bail!("cross-entropy: {} targets for {b} rows", targets.len());
        }
        if let Some(&t) = targets.iter().find(|&&t| t as usize >= c) {
            candle_core::bail!("cross-entropy: target {t} out of range for {c} classes");
        }
        let mut probs = vec![0f32; b * c];
        let mut lse = vec![0f32; b];
        softmax_rows(c, logits, &mut probs, &mut lse);
        let total: f64 = (0..b)
            .map(|i| f64::from(lse[i] - logits[i * c + targets[i] as usize]))
            .sum();
        if let Ok(mut saved) = self.probs.lock() {
            *saved = Some(probs);
        }
        Ok((
            CpuStorage::F32(vec![(total / b.max(1) as f64) as f32]),
            Shape::from(1),
        ))
    }

    /// `g * (softmax(logits) - onehot(targets)) / b`.
    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(mut probs) = self.probs.lock().ok().and_then(|mut p| p.take()) else {
            candle_core::bail!("cross-entropy: backward called twice or without a forward pass");
        };
        let g = grad
            .flatten_all()?
            .to_vec1::<f32>()?
            .first()
            .copied()
            .unwrap_or(0.0);
        let (b, c) = logits.dims2()?;
        let scale = g / b.max(1) as f32;
        let targets = targets.to_vec1::<u32>()?;
        probs.iter_mut().for_each(|p| *p *= scale);
        for (row, &t) in probs.chunks_exact_mut(c).zip(&targets) {
            row[t as usize] -= scale;
        }
        Ok((
            Some(Tensor::from_vec(probs, (b, c), logits.device())?),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_tensors::max_diff;
    use candle_core::{Device, Var};

    /// `linear` on batches of rows and on a `[b, t, k]` sequence against candle's
    /// matmul + broadcast add.
    #[test]
    fn linear_and_its_gradients_match_candle() {
        let dev = Device::Cpu;
        let shapes: [&[usize]; 5] = [&[1, 1], &[5, 7], &[64, 784], &[33, 128], &[4, 9, 64]];
        for (dims, n) in shapes.into_iter().zip([1, 3, 128, 10, 256]) {
            let case = format!("{dims:?} -> {n}");
            let k = dims[dims.len() - 1];
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1., dims, &dev).expect("x")).expect("var");
            let w =
                Var::from_tensor(&Tensor::randn(0f32, 1., (n, k), &dev).expect("w")).expect("var");
            let bias =
                Var::from_tensor(&Tensor::randn(0f32, 1., n, &dev).expect("b")).expect("var");
            let mut out_dims = dims.to_vec();
            out_dims[dims.len() - 1] = n;
            let up = Tensor::randn(0f32, 1., out_dims, &dev).expect("up");
            let fused = linear(&x, &w, &bias).expect("fused");
            let reference = x
                .broadcast_matmul(&w.t().expect("t"))
                .and_then(|y| y.broadcast_add(&bias))
                .expect("ref");
            assert!(
                max_diff(&fused, &reference).expect("diff") < 1e-3,
                "forward {case}"
            );
            let gf = (fused * &up)
                .and_then(|t| t.sum_all())
                .and_then(|t| t.backward())
                .expect("bwd");
            let gr = (reference * &up)
                .and_then(|t| t.sum_all())
                .and_then(|t| t.backward())
                .expect("bwd");
            for v in [&x, &w, &bias] {
                let (a, r) = (gf.get(v).expect("grad"), gr.get(v).expect("grad"));
                assert!(max_diff(a, r).expect("diff") < 1e-3, "gradient {case}");
            }
        }
    }

    #[test]
    fn linear_on_a_sequence_equals_linear_on_its_rows() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 5, 7), &dev).expect("x")).expect("v");
        let w = Var::from_tensor(&Tensor::randn(0f32, 1., (4, 7), &dev).expect("w")).expect("v");
        let bias = Var::from_tensor(&Tensor::randn(0f32, 1., 4, &dev).expect("b")).expect("v");
        let up = Tensor::randn(0f32, 1., (3, 5, 4), &dev).expect("up");
        let seq = linear(&x, &w, &bias).expect("seq");
        assert_eq!(seq.dims(), &[3, 5, 4]);
        let rows = linear(&x.reshape((15, 7)).expect("r"), &w, &bias)
            .and_then(|y| y.reshape((3, 5, 4)))
            .expect("rows");
        assert!(max_diff(&seq, &rows).expect("diff") < 1e-6);
        let gs = (seq * &up)
            .and_then(|t| t.sum_all())
            .and_then(|t| t.backward())
            .expect("b");
        let gr = (rows * &up)
            .and_then(|t| t.sum_all())
            .and_then(|t| t.backward())
            .expect("b");
        for v in [&x, &w, &bias] {
            let (a, r) = (gs.get(v).expect("grad"), gr.get(v).expect("grad"));
            assert_eq!(a.dims(), r.dims());
            assert!(max_diff(a, r).expect("diff") < 1e-5);
        }
    }

    #[test]
    fn cross_entropy_and_its_gradient_match_candle() {
        let dev = Device::Cpu;
        let logits =
            Var::from_tensor(&(Tensor::randn(0f32, 3., (17, 10), &dev).expect("x"))).expect("var");
        let targets = Tensor::from_vec(
            (0..17u32).map(|i| (i * 7) % 10).collect::<Vec<_>>(),
            17,
            &dev,
        )
        .expect("t");
        let fused = cross_entropy(&logits, &targets).expect("fused");
        let reference = candle_nn::loss::cross_entropy(&logits, &targets).expect("ref");
        assert_eq!(fused.dims(), reference.dims());
        assert!(max_diff(&fused, &reference).expect("diff") < 1e-5);
        let gf = (fused * 2.0).and_then(|t| t.backward()).expect("bwd");
        let gr = (reference * 2.0).and_then(|t| t.backward()).expect("bwd");
        assert!(
            max_diff(gf.get(&logits).expect("g"), gr.get(&logits).expect("g")).expect("diff")
                < 1e-6
        );
        let bad = Tensor::from_vec(vec![10u32; 17], 17, &dev).expect("t");
        assert!(
            cross_entropy(&logits, &bad).is_err(),
            "an out-of-range label is an error"
        );
    }
}
