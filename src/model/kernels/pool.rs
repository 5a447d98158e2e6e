//! 2-D max pooling on the CPU as one candle custom op that remembers where each
//! maximum came from, so its backward is a single scatter. candle's own backward
//! rebuilds that from an upsample, a comparison and an average pool over the
//! whole input.
//!
//! Contract: f32, CPU, no padding; `[b, c, h, w] -> [b, c, oh, ow]` with
//! `oh = (h - k) / stride + 1`. On ties the first maximum (row-major within the
//! window) receives the gradient, as in PyTorch; NaN wins every comparison so a
//! diverging run stays visible. Same values as candle's `max_pool2d_with_stride`.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::leveled_kernel;
use super::cpu_data::{f32_slice, storage_f32};

/// Planes handed to one rayon task: small planes are cheap, so batch them.
const PLANES_PER_TASK: usize = 64;

/// Max pooling with window `k` and `stride`, differentiable in `xs`.
pub(crate) fn max_pool2d(xs: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if k == 0 || stride == 0 || h < k || w < k {
        candle_core::bail!("max_pool2d: window {k} stride {stride} does not fit {h}x{w}");
    }
    let op = MaxPool {
        k,
        stride,
        keep_argmax: xs.track_op(),
        argmax: Mutex::new(None),
    };
    xs.contiguous()?.apply_op1(op)
}

/// Max pooling for any device and dtype (GPUs, the reference kernels) built
/// from a reshape and two `max` reductions, whose backward sends each output's
/// gradient to its window's maximum (to each of tied ones): candle 0.11's own
/// `max_pool2d` backward scales the gradient by 1/k² instead. Non-overlapping
/// windows only (`stride == k`, which validation requires); rows and columns
/// past the last whole window are dropped, as pooling does.
pub(crate) fn max_pool2d_reshaped(xs: &Tensor, k: usize) -> Result<Tensor> {
    let (b, c, h, w) = xs.dims4()?;
    if k == 0 || h < k || w < k {
        candle_core::bail!("max_pool2d: window {k} does not fit {h}x{w}");
    }
    let (oh, ow) = (h / k, w / k);
    xs.narrow(2, 0, oh * k)?
        .narrow(3, 0, ow * k)?
        .contiguous()?
        .reshape((b, c, oh, k, ow, k))?
        .max(5)?
        .max(3)
}

struct MaxPool {
    k: usize,
    stride: usize,
    /// Whether a backward pass can follow (the input is tracked).
    keep_argmax: bool,
    /// Index within its input plane of each output's maximum, from the forward pass.
    argmax: Mutex<Option<Vec<u32>>>,
}

impl MaxPool {
    fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        pooled_hw((h, w), (self.k, self.stride))
    }
}

/// Output size of pooling an `(h, w)` plane with `(window, stride)` (no padding;
/// the window must fit).
pub(crate) fn pooled_hw((h, w): (usize, usize), (k, stride): (usize, usize)) -> (usize, usize) {
    ((h - k) / stride + 1, (w - k) / stride + 1)
}

/// Pools one `[h, w]` plane into `out [oh, ow]`, recording in `arg` the index
/// within the plane of each maximum (the first one on ties; NaN wins).
pub(crate) fn pool_plane(
    x: &[f32],
    (h, w): (usize, usize),
    (k, stride): (usize, usize),
    out: &mut [f32],
    arg: &mut [u32],
) {
    let (oh, ow) = pooled_hw((h, w), (k, stride));
    if (k, stride) == (2, 2) {
        return pool_plane_2x2(x, w, (oh, ow), out, arg);
    }
    pool_plane_general(x, (h, w), (k, stride), out, arg);
}

/// [`pool_plane`] for any window and stride, one window at a time.
fn pool_plane_general(
    x: &[f32],
    (h, w): (usize, usize),
    (k, stride): (usize, usize),
    out: &mut [f32],
    arg: &mut [u32],
) {
    let (oh, ow) = pooled_hw((h, w), (k, stride));
    for oy in 0..oh {
        for ox in 0..ow {
            let mut best = oy * stride * w + ox * stride;
            for ky in 0..k {
                let row = (oy * stride + ky) * w + ox * stride;
                for i in row..row + k {
                    if x[i] > x[best] || (x[i].is_nan() && !x[best].is_nan()) {
                        best = i;
                    }
                }
            }
            out[oy * ow + ox] = x[best];
            arg[oy * ow + ox] = best as u32;
        }
    }
}

/// The common 2x2, stride 2 window at the process's SIMD level.
fn pool_plane_2x2(x: &[f32], w: usize, (oh, ow): (usize, usize), out: &mut [f32], arg: &mut [u32]) {
    pool_2x2(crate::util::simd::level(), x, w, (oh, ow), out, arg);
}

/// Whether pooled value `v` replaces the window's `best` so far: larger, or NaN
/// over a number (so a diverging run stays visible); ties keep the first.
#[inline(always)]
pub(crate) fn takes(v: f32, best: f32) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

leveled_kernel! {
    /// The 2x2, stride 2 window without branches: the same choice as the
    /// general loop (first maximum on ties, NaN wins), as selects over whole
    /// rows of windows that vectorise (16 or 8 windows at a time).
    pub(crate) fn pool_2x2(x: &[f32], w: usize, ohow: (usize, usize), out: &mut [f32], arg: &mut [u32]) {
        let (oh, ow) = ohow;
        for oy in 0..oh {
            let r0 = 2 * oy * w;
            let top = &x[r0..r0 + 2 * ow];
            let bottom = &x[r0 + w..r0 + w + 2 * ow];
            let out = &mut out[oy * ow..(oy + 1) * ow];
            let arg = &mut arg[oy * ow..(oy + 1) * ow];
            let (r0, w) = (r0 as u32, w as u32);
            for (ox, (((o, a), t), b)) in out
                .iter_mut()
                .zip(arg.iter_mut())
                .zip(top.chunks_exact(2))
                .zip(bottom.chunks_exact(2))
                .enumerate()
            {
                let at0 = r0 + 2 * ox as u32;
                let (mut best, mut at) = (t[0], at0);
                let t1 = takes(t[1], best);
                best = if t1 { t[1] } else { best };
                at = if t1 { at0 + 1 } else { at };
                let b0 = takes(b[0], best);
                best = if b0 { b[0] } else { best };
                at = if b0 { at0 + w } else { at };
                let b1 = takes(b[1], best);
                best = if b1 { b[1] } else { best };
                at = if b1 { at0 + w + 1 } else { at };
                *o = best;
                *a = at;
            }
        }
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, "max_pool2d")?;
        let (b, c, h, w) = layout.shape().dims4()?;
        let (oh, ow) = self.out_hw(h, w);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let mut out = vec![0f32; b * c * plane_out];
        let mut arg = vec![0u32; b * c * plane_out];
        out.par_chunks_mut(plane_out * PLANES_PER_TASK)
            .zip(arg.par_chunks_mut(plane_out * PLANES_PER_TASK))
            .zip(x.par_chunks(plane_in * PLANES_PER_TASK))
            .for_each(|((out, arg), x)| {
                for ((out, arg), x) in out
                    .chunks_mut(plane_out)
                    .zip(arg.chunks_mut(plane_out))
                    .zip(x.chunks(plane_in))
                {
                    pool_plane(x, (h, w), (self.k, self.stride), out, arg);
                }
            });
        if self.keep_argmax
            && let Ok(mut saved) = self.argmax.lock()
        {
            *saved = Some(arg);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, c, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let Some(argmax) = self.argmax.lock().ok().and_then(|mut s| s.take()) else {
            candle_core::bail!("max_pool2d: backward without a recorded forward pass");
        };
        let (b, c, h, w) = arg.dims4()?;
        let (oh, ow) = self.out_hw(h, w);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let grad = grad.contiguous()?;
        let (gs, gl) = grad.storage_and_layout();
        let g = storage_f32(&gs, gl, "max_pool2d backward")?;
        let mut dx = vec![0f32; b * c * plane_in];
        dx.par_chunks_mut(plane_in * PLANES_PER_TASK)
            .zip(argmax.par_chunks(plane_out * PLANES_PER_TASK))
            .zip(g.par_chunks(plane_out * PLANES_PER_TASK))
            .for_each(|((dx, arg), g)| {
                for ((dx, arg), g) in dx
                    .chunks_mut(plane_in)
                    .zip(arg.chunks(plane_out))
                    .zip(g.chunks(plane_out))
                {
                    for (&i, &v) in arg.iter().zip(g) {
                        dx[i as usize] += v;
                    }
                }
            });
        Ok(Some(Tensor::from_vec(dx, (b, c, h, w), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_tensors::{max_diff, random};
    use crate::util::rng::Rng;
    use candle_core::{Device, Var};

    /// The input gradient by definition: each output's upstream value goes to the
    /// position of its window's maximum.
    fn naive_gradient(
        x: &[f32],
        (h, w): (usize, usize),
        k: usize,
        s: usize,
        up: &[f32],
    ) -> Vec<f32> {
        let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
        let mut dx = vec![0.0; x.len()];
        for plane in 0..x.len() / (h * w) {
            let base = plane * h * w;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best = base + oy * s * w + ox * s;
                    for ky in 0..k {
                        for kx in 0..k {
                            let i = base + (oy * s + ky) * w + ox * s + kx;
                            if x[i] > x[best] {
                                best = i;
                            }
                        }
                    }
                    dx[best] += up[plane * oh * ow + oy * ow + ox];
                }
            }
        }
        dx
    }

    /// Values agree with candle's pooling; gradients with the definition. (candle
    /// 0.11's own max-pool backward scales the gradient by 1/k^2 and refuses
    /// overlapping windows, so it cannot be the reference for gradients.)
    #[test]
    fn matches_candle_values_and_the_defined_gradient() -> Result<()> {
        let mut rng = Rng::new(5);
        // (b, c, h, w, k, stride): odd sizes, overlapping and gapped windows.
        for (b, c, h, w, k, s) in [
            (2, 3, 8, 8, 2, 2),
            (1, 2, 7, 9, 2, 2),
            (3, 1, 9, 9, 3, 2),
            (2, 2, 6, 5, 2, 3),
            (70, 3, 4, 4, 2, 1),
        ] {
            check_pool(&mut rng, [b, c, h, w], k, s, |x| max_pool2d(x, k, s))?;
        }
        Ok(())
    }

    /// `pool` (a k x k max pool, stride s) on a random `[b, c, h, w]` input gives
    /// candle's values exactly and the gradient of the definition.
    fn check_pool(
        rng: &mut Rng,
        [b, c, h, w]: [usize; 4],
        k: usize,
        s: usize,
        pool: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        let x = Var::from_tensor(&random(rng, &[b, c, h, w])?)?;
        let y = pool(x.as_tensor())?;
        let reference = x.as_tensor().max_pool2d_with_stride(k, s)?;
        let case = format!("b{b} c{c} {h}x{w} k{k} s{s}");
        assert_eq!(y.dims(), reference.dims(), "{case}");
        assert!(max_diff(&y, &reference)? == 0.0, "{case}: forward");
        let up = random(rng, y.dims())?;
        let grads = (&y * &up)?.sum_all()?.backward()?;
        let got: Vec<f32> = grads
            .get(x.as_tensor())
            .expect("input gradient")
            .flatten_all()?
            .to_vec1()?;
        let xv: Vec<f32> = x.as_tensor().flatten_all()?.to_vec1()?;
        let upv: Vec<f32> = up.flatten_all()?.to_vec1()?;
        let want = naive_gradient(&xv, (h, w), k, s, &upv);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-6, "{case}: gradient off by {worst}");
        Ok(())
    }

    /// The device-neutral version: candle's values, the defined gradient.
    #[test]
    fn the_reshaped_pool_gives_the_values_and_the_defined_gradient() -> Result<()> {
        let mut rng = Rng::new(6);
        for (b, c, h, w, k) in [(2, 3, 8, 8, 2), (1, 2, 7, 9, 2), (3, 1, 9, 9, 3)] {
            check_pool(&mut rng, [b, c, h, w], k, k, |x| max_pool2d_reshaped(x, k))?;
        }
        Ok(())
    }

    /// The vectorised 2x2 window at every SIMD level chooses what the general
    /// loop chooses (ties, NaN, odd sizes).
    #[test]
    fn the_2x2_window_matches_the_general_loop_at_every_level() {
        use crate::util::simd::Level;
        let mut rng = Rng::new(8);
        for (h, w) in [(2, 2), (5, 7), (24, 24), (9, 40), (4, 35)] {
            // Few distinct values, so ties are common; a NaN and a -inf.
            let mut x: Vec<f32> = (0..h * w)
                .map(|_| (rng.f32() * 5.0).floor() - 2.0)
                .collect();
            x[w + 1] = f32::NAN;
            x[h * w - 1] = f32::NEG_INFINITY;
            let (oh, ow) = (h / 2, w / 2);
            let (mut want, mut want_arg) = (vec![0f32; oh * ow], vec![0u32; oh * ow]);
            pool_plane_general(&x, (h, w), (2, 2), &mut want, &mut want_arg);
            for level in [Level::Avx512, Level::Avx2, Level::Portable] {
                let case = format!("{h}x{w} at {level:?}");
                let (mut got, mut arg) = (vec![7f32; oh * ow], vec![7u32; oh * ow]);
                pool_2x2(level, &x, w, (oh, ow), &mut got, &mut arg);
                assert_eq!(arg, want_arg, "{case}: argmax");
                let same = |a: &f32, b: &f32| a == b || (a.is_nan() && b.is_nan());
                assert!(got.iter().zip(&want).all(|(a, b)| same(a, b)), "{case}");
            }
        }
    }

    #[test]
    fn ties_go_to_the_first_maximum_and_nan_wins() -> Result<()> {
        let x = Var::from_tensor(&Tensor::new(
            &[[[[1f32, 1.0, f32::NAN, 0.0], [1.0, 0.0, 5.0, 2.0]]]],
            &Device::Cpu,
        )?)?;
        let y = max_pool2d(x.as_tensor(), 2, 2)?;
        let v: Vec<f32> = y.flatten_all()?.to_vec1()?;
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan());
        let g = y.sum_all()?.backward()?;
        let gx: Vec<f32> = g
            .get(x.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1()?;
        assert_eq!(gx[..2], [1.0, 0.0]);
        assert_eq!(gx[4], 0.0);
        Ok(())
    }
}
