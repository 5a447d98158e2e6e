//! The whole transformer block on the CPU as one candle op: `x [b, t, d]` and
//! the block's twelve parameters (flattened into one vector) -> `[b, t, d]`,
//! with a hand-written backward through the kernels of `attention_fused` and
//! `fused`. Run as separate ops, each of the block's eight intermediate
//! tensors cost an allocation, a dispatch and, in candle's autograd, a
//! zero-filled gradient plus an add, all on one thread between the parallel
//! kernels.
//!
//! Contract: f32, CPU, contiguous `x`; values and gradients equal the candle-op
//! block of attention.rs within float rounding (tested there, and by training
//! in tests/device_path.rs). The intermediate activations stay inside the op
//! from its forward pass to its backward pass (one backward per forward).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::attention_fused::{
    Dims, attention_backward, attention_forward, gelu_grad_into, gelu_into, norm_backward,
    norm_forward,
};
use super::cpu_data::{f32_slice, with_data};
use super::fused::{linear_grads, linear_into};
use super::scratch::Scratch;
use super::seq_layout::{rows_per_run, sum_parts};
use crate::util::simd::level;
use rayon::prelude::*;

/// The block's parameters, in the order of the flat vector: norm1 weight and
/// bias, attention qkv weight `[3d, d]` and bias, projection `[d, d]` and bias,
/// norm2 weight and bias, ff1 `[width, d]` and bias, ff2 `[d, width]` and bias.
pub(crate) type BlockParams<'a> = [&'a Tensor; 12];

/// `x + ff(norm2(x1))` with `x1 = x + proj(attention(qkv(norm1(x))))`, as one op.
pub(crate) fn transformer_block(x: &Tensor, params: BlockParams, heads: usize) -> Result<Tensor> {
    let d = x.dim(candle_core::D::Minus1)?;
    let width = params[9].elem_count();
    let sizes = Sizes { d, width, heads };
    if heads == 0 || d % heads != 0 {
        candle_core::bail!("transformer block: width {d} is not a multiple of {heads} heads");
    }
    for (p, len) in params.iter().zip(sizes.lengths()) {
        if p.elem_count() != len {
            candle_core::bail!(
                "transformer block: parameter of shape {:?} where {len} values belong",
                p.dims()
            );
        }
    }
    let flat = params
        .iter()
        .map(|p| p.flatten_all())
        .collect::<Result<Vec<_>>>()?;
    let flat = Tensor::cat(&flat, 0)?;
    let op = BlockOp {
        sizes,
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op2(&flat, op)
}

/// The block's widths.
#[derive(Clone, Copy)]
struct Sizes {
    d: usize,
    width: usize,
    heads: usize,
}

impl Sizes {
    /// Values of each parameter, in `BlockParams` order.
    fn lengths(self) -> [usize; 12] {
        let Self { d, width: w, .. } = self;
        [d, d, 3 * d * d, 3 * d, d * d, d, d, d, w * d, w, d * w, d]
    }

    /// The flat vector cut into the twelve parameters.
    fn split(self, mut flat: &[f32]) -> [&[f32]; 12] {
        self.lengths().map(|len| {
            let (head, rest) = flat.split_at(len.min(flat.len()));
            flat = rest;
            head
        })
    }

    fn dims(self, t: usize) -> Dims {
        Dims {
            t,
            heads: self.heads,
            dh: self.d / self.heads,
        }
    }
}

/// What the backward pass needs of the forward one for one run of sequences,
/// `[rows, ...]` each; pool buffers, so the next step's forward pass reuses
/// them without zero-filling.
struct Saved {
    norm1: Scratch,
    qkv: Scratch,
    att: Scratch,
    x1: Scratch,
    norm2: Scratch,
    pre: Scratch,
    hidden: Scratch,
}

struct BlockOp {
    sizes: Sizes,
    /// One entry per run of whole sequences, from the last forward pass.
    saved: Mutex<Option<Vec<Saved>>>,
}

/// `a += b`, elementwise.
fn add_into(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(a, &b)| *a += b);
}

/// The block's forward pass over one run of whole sequences `x [rows, d]` into
/// `out`, every step of it on this run's rows (so one parallel region per
/// pass, not one per kernel).
fn forward_run(sizes: Sizes, p: [&[f32]; 12], t: usize, x: &[f32], out: &mut [f32]) -> Saved {
    let [n1w, n1b, qw, qb, pw, pb, n2w, n2b, f1w, f1b, f2w, f2b] = p;
    let Sizes { d, width, .. } = sizes;
    let rows = x.len() / d;
    let mut norm1 = Scratch::uninit(rows * d);
    norm_forward(x, n1w, n1b, &mut norm1);
    let mut qkv = Scratch::uninit(rows * 3 * d);
    linear_into(&norm1, qw, qb, &mut qkv);
    let mut att = Scratch::uninit(rows * d);
    attention_forward(level(), &qkv, sizes.dims(t), &mut att);
    let mut x1 = Scratch::uninit(rows * d);
    linear_into(&att, pw, pb, &mut x1);
    add_into(&mut x1, x);
    let mut norm2 = Scratch::uninit(rows * d);
    norm_forward(&x1, n2w, n2b, &mut norm2);
    let mut pre = Scratch::uninit(rows * width);
    linear_into(&norm2, f1w, f1b, &mut pre);
    let mut hidden = Scratch::uninit(rows * width);
    gelu_into(&pre, &mut hidden);
    linear_into(&hidden, f2w, f2b, out);
    add_into(out, &x1);
    Saved {
        norm1,
        qkv,
        att,
        x1,
        norm2,
        pre,
        hidden,
    }
}

/// The backward pass of one run: `dx` of its rows into `dx`, and its share of
/// the parameters' gradient (flat, in `BlockParams` order) returned.
fn backward_run(
    sizes: Sizes,
    p: [&[f32]; 12],
    (t, x, g): (usize, &[f32], &[f32]),
    s: &Saved,
    dx: &mut [f32],
) -> Vec<f32> {
    let [n1w, _, qw, _, pw, _, n2w, _, f1w, _, f2w, _] = p;
    let Sizes { d, width, .. } = sizes;
    let rows = x.len() / d;
    let buffer = |len: usize| Scratch::uninit(rows * len);
    // Feed-forward half: out = x1 + ff2(gelu(ff1(norm2(x1)))).
    let mut dhidden = buffer(width);
    let (dw2, db2) = linear_grads(&s.hidden, f2w, g, (d, width), Some(&mut dhidden));
    let mut dpre = buffer(width);
    gelu_grad_into(&s.pre, &dhidden, &mut dpre);
    let mut dn2 = buffer(d);
    let (dw1, db1) = linear_grads(&s.norm2, f1w, &dpre, (width, d), Some(&mut dn2));
    let mut dx1 = buffer(d);
    let (dn2w, dn2b) = norm_backward(&s.x1, &dn2, n2w, &mut dx1);
    add_into(&mut dx1, g);
    // Attention half: x1 = x + proj(attention(qkv(norm1(x)))).
    let mut datt = buffer(d);
    let (dpw, dpb) = linear_grads(&s.att, pw, &dx1, (d, d), Some(&mut datt));
    let mut dqkv = buffer(3 * d);
    attention_backward(level(), &s.qkv, &datt, sizes.dims(t), &mut dqkv);
    let mut dn1 = buffer(d);
    let (dqw, dqb) = linear_grads(&s.norm1, qw, &dqkv, (3 * d, d), Some(&mut dn1));
    let (dn1w, dn1b) = norm_backward(x, &dn1, n1w, dx);
    add_into(dx, &dx1);
    [
        dn1w, dn1b, dqw, dqb, dpw, dpb, dn2w, dn2b, dw1, db1, dw2, db2,
    ]
    .concat()
}

impl CustomOp2 for BlockOp {
    fn name(&self) -> &'static str {
        "transformer-block"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "transformer-block")?;
        let flat = f32_slice(s2, l2, "transformer-block")?;
        let (b, t, d) = l1.shape().dims3()?;
        let sizes = self.sizes;
        if d != sizes.d || flat.len() != sizes.lengths().iter().sum::<usize>() {
            candle_core::bail!("transformer-block: input {:?} does not fit", l1.dims());
        }
        let p = sizes.split(flat);
        let mut out = vec![0f32; x.len()];
        let run = rows_per_run(b, 1) * t * d;
        let saved = if run == 0 {
            Vec::new()
        } else {
            out.par_chunks_mut(run)
                .zip(x.par_chunks(run))
                .map(|(out, x)| forward_run(sizes, p, t, x, out))
                .collect()
        };
        if let Ok(mut slot) = self.saved.lock() {
            *slot = Some(saved);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        flat: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(saved) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!(
                "transformer-block: backward called twice or without a forward pass"
            );
        };
        let (b, t, d) = x.dims3()?;
        let sizes = self.sizes;
        let total = sizes.lengths().iter().sum::<usize>();
        let run = rows_per_run(b, 1) * t * d;
        let op = "transformer-block backward";
        let mut dx = vec![0f32; x.elem_count()];
        let dflat = with_data(x, op, |xd| {
            with_data(flat, op, |flat| {
                with_data(grad, op, |g| {
                    let p = sizes.split(flat);
                    if run == 0 {
                        return Ok(vec![0f32; total]);
                    }
                    if saved.len() != xd.len().div_ceil(run) {
                        candle_core::bail!("{op}: the input changed since the forward pass");
                    }
                    let parts: Vec<Vec<f32>> = dx
                        .par_chunks_mut(run)
                        .zip(xd.par_chunks(run))
                        .zip(g.par_chunks(run))
                        .zip(saved.par_iter())
                        .map(|(((dx, x), g), s)| backward_run(sizes, p, (t, x, g), s, dx))
                        .collect();
                    Ok(sum_parts(parts, total))
                })
            })
        })?;
        let dx = if x.track_op() {
            Some(Tensor::from_vec(dx, x.shape(), x.device())?)
        } else {
            None
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dflat, flat.shape(), flat.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Parameters of the right sizes for width `d` and feed-forward `width`.
    fn params(d: usize, width: usize) -> Result<Vec<Tensor>> {
        let sizes = Sizes { d, width, heads: 1 };
        sizes
            .lengths()
            .iter()
            .map(|&len| Tensor::ones(len, DType::F32, &Device::Cpu))
            .collect()
    }

    #[test]
    fn widths_that_do_not_fit_are_refused() -> Result<()> {
        let x = Tensor::ones((1, 2, 10), DType::F32, &Device::Cpu)?;
        let p = params(10, 6)?;
        let refs: BlockParams = std::array::from_fn(|i| &p[i]);
        assert!(transformer_block(&x, refs, 4).is_err(), "10 wide, 4 heads");
        assert!(transformer_block(&x, refs, 2).is_ok());
        let wrong = params(8, 6)?;
        let refs: BlockParams = std::array::from_fn(|i| &wrong[i]);
        assert!(
            transformer_block(&x, refs, 2).is_err(),
            "parameters of width 8"
        );
        Ok(())
    }
}
