//! Conv2d on the CPU as one candle custom op with its own backward: per image,
//! im2col then one GEMM (`weight @ columns`), images spread over the rayon pool.
//! The ReLU and the max pooling that usually follow can be fused in: the full-size
//! activation then never leaves the per-image buffer, and neither it nor its
//! gradient becomes a tensor in the autograd graph (for the MNIST CNN, the
//! largest tensors of the whole step).
//!
//! Contract: f32, CPU; input `[b, c, h, w]`, weight `[o, c, k, k]`, bias `[o]` ->
//! `[b, o, oh, ow]` (pooled: `[b, o, ph, pw]`); same values and gradients as
//! candle's `conv2d` (+ `relu`, + max pooling as in `pool.rs`) within float
//! tolerance (tested below on random shapes). The input gradient is
//! skipped when the input is data rather than a variable (the first layer).
//! The backward pass recomputes the columns instead of keeping them: for the
//! MNIST CNN they would be larger than every activation together.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::simd_kernel;
use super::attention_fused::lane_sum;
use super::cpu_data::{f32_slice, storage_f32};
use super::gemm::{Threads, matmul, row_major, transposed};
use super::im2col::{ConvGeometry, col2im, im2col};
use super::pool::{pool_plane, pooled_hw};
use super::seq_layout::{rows_per_run, sum_parts, transpose};

/// What runs after the convolution inside the same kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fusion {
    pub relu: bool,
    /// Max pooling `(window, stride)`.
    pub pool: Option<(usize, usize)>,
}

/// `pool?(relu?(conv2d(xs, weight) + bias))`, differentiable in all three.
pub(crate) fn conv2d(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: usize,
    fusion: Fusion,
) -> Result<Tensor> {
    let (_, c, h, w) = xs.dims4()?;
    let (o, c2, k, k2) = weight.dims4()?;
    if c != c2 || k != k2 || bias.dims() != [o] || stride == 0 || h + 2 * pad < k || w + 2 * pad < k
    {
        candle_core::bail!(
            "conv2d: input {:?}, weight {:?}, bias {:?}, stride {stride}, padding {pad} do not fit",
            xs.dims(),
            weight.dims(),
            bias.dims()
        );
    }
    let g = ConvGeometry {
        c,
        h,
        w,
        k,
        stride,
        pad,
    };
    if let Some((pk, ps)) = fusion.pool {
        let (oh, ow) = g.out_hw();
        if pk == 0 || ps == 0 || oh < pk || ow < pk {
            candle_core::bail!("max_pool2d: window {pk} stride {ps} does not fit {oh}x{ow}");
        }
    }
    let op = Conv2dOp {
        g,
        fusion,
        input_grad: xs.track_op(),
        argmax: Mutex::new(None),
    };
    xs.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
}

struct Conv2dOp {
    g: ConvGeometry,
    fusion: Fusion,
    /// Whether the input needs a gradient (false for data).
    input_grad: bool,
    /// With pooling: where each pooled value came from in its `[oh, ow]` plane.
    argmax: Mutex<Option<Vec<u32>>>,
}

impl Conv2dOp {
    /// Output plane `(height, width)` after the optional pooling.
    fn out_plane(&self) -> (usize, usize) {
        let (oh, ow) = self.g.out_hw();
        match self.fusion.pool {
            Some(window) => pooled_hw((oh, ow), window),
            None => (oh, ow),
        }
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
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
        let g = self.g;
        let x = f32_slice(s1, l1, "conv2d")?;
        let w = f32_slice(s2, l2, "conv2d")?;
        let bias = f32_slice(s3, l3, "conv2d")?;
        let b = l1.dims()[0];
        let o = bias.len();
        let (oh, ow) = g.out_hw();
        let (p, taps) = (g.positions(), g.taps());
        let (ph, pw) = self.out_plane();
        let q = ph * pw;
        let pool = self.fusion.pool;
        let mut out = vec![0f32; b * o * q];
        // One argmax chunk per image (a placeholder of one when not pooling, so
        // that the images zip up the same way either way).
        let arg_chunk = if pool.is_some() { o * q } else { 1 };
        let mut argmax = vec![0u32; b * arg_chunk];
        out.par_chunks_mut(o * q)
            .zip(argmax.par_chunks_mut(arg_chunk))
            .zip(x.par_chunks(g.image_len()))
            .for_each_init(
                || {
                    (
                        vec![0f32; taps * p],
                        vec![0f32; if pool.is_some() { o * p } else { 0 }],
                    )
                },
                |(cols, full), ((out, arg), img)| {
                    // Without pooling the convolution writes straight into the output.
                    let y: &mut [f32] = if pool.is_some() {
                        &mut full[..]
                    } else {
                        &mut out[..]
                    };
                    im2col(&g, img, cols);
                    for (row, &bv) in y.chunks_mut(p).zip(bias) {
                        row.fill(bv);
                    }
                    matmul(
                        (o, p, taps),
                        y,
                        true,
                        w,
                        row_major(taps),
                        cols,
                        row_major(p),
                        Threads::One,
                    );
                    match pool {
                        Some(window) => {
                            for ((plane, pooled), arg) in
                                full.chunks(p).zip(out.chunks_mut(q)).zip(arg.chunks_mut(q))
                            {
                                pool_plane(plane, (oh, ow), window, pooled, arg);
                            }
                            // max then ReLU equals ReLU then max, on a quarter of the values.
                            if self.fusion.relu {
                                relu_in_place(out);
                            }
                        }
                        None if self.fusion.relu => relu_in_place(y),
                        None => {}
                    }
                },
            );
        if pool.is_some()
            && let Ok(mut saved) = self.argmax.lock()
        {
            *saved = Some(argmax);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, o, ph, pw))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        let (x, w, res, grad) = (
            x.contiguous()?,
            w.contiguous()?,
            res.contiguous()?,
            grad.contiguous()?,
        );
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (rs, rl) = res.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let xd = storage_f32(&xs, xl, "conv2d backward")?;
        let wd = storage_f32(&ws, wl, "conv2d backward")?;
        let yd = storage_f32(&rs, rl, "conv2d backward")?;
        let gd = storage_f32(&gs, gl, "conv2d backward")?;
        let b = x.dim(0)?;
        let o = w.dim(0)?;
        let (p, taps, img_len) = (g.positions(), g.taps(), g.image_len());
        let (ph, pw) = self.out_plane();
        let q = ph * pw;
        let argmax = match self.fusion.pool {
            Some(_) => match self.argmax.lock().ok().and_then(|mut a| a.take()) {
                Some(a) => a,
                None => candle_core::bail!("conv2d: backward without a recorded forward pass"),
            },
            None => Vec::new(),
        };

        // Images are split into one contiguous run per pool thread; each run sums
        // its own weight and bias gradients, added up at the end.
        // One image is work enough for a run of its own (an im2col and a GEMM).
        let per = rows_per_run(b, 1);
        let runs = b.div_ceil(per);
        let work = |first: usize, mut dx: Option<&mut [f32]>| {
            let mut dw_t = vec![0f32; taps * o];
            let mut db = vec![0f32; o];
            let mut cols = vec![0f32; taps * p];
            let mut dy = vec![0f32; o * p];
            let mut dcols = vec![0f32; if dx.is_some() { taps * p } else { 0 }];
            for n in first..(first + per).min(b) {
                // The gradient at the convolution's (pre-ReLU) output.
                let up = &gd[n * o * q..(n + 1) * o * q];
                let y = &yd[n * o * q..(n + 1) * o * q];
                let passes = |v: f32| !self.fusion.relu || v > 0.0;
                if self.fusion.pool.is_some() {
                    // Each pooled gradient goes back to where its maximum was; the
                    // ReLU let it through iff that maximum was positive.
                    dy.fill(0.0);
                    let arg = &argmax[n * o * q..(n + 1) * o * q];
                    // The bias gradient sums the same values, a quarter as many
                    // as the plane they land in.
                    for ((oi, plane), acc) in dy.chunks_mut(p).enumerate().zip(db.iter_mut()) {
                        let mut sum = 0f32;
                        for j in oi * q..(oi + 1) * q {
                            if passes(y[j]) {
                                plane[arg[j] as usize] += up[j];
                                sum += up[j];
                            }
                        }
                        *acc += sum;
                    }
                } else {
                    for ((d, &u), &v) in dy.iter_mut().zip(up).zip(y) {
                        *d = if passes(v) { u } else { 0.0 };
                    }
                    add_row_sums(p, &dy, &mut db);
                }
                im2col(&g, &xd[n * img_len..(n + 1) * img_len], &mut cols);
                // dw^T[taps, o] += cols @ dy^T: in this orientation the GEMM
                // library repacks dy rather than the 4.5x larger columns.
                matmul(
                    (taps, o, p),
                    &mut dw_t,
                    true,
                    &cols,
                    row_major(p),
                    &dy,
                    transposed(p),
                    Threads::One,
                );
                if let Some(dx) = dx.as_deref_mut() {
                    // dcols[taps, p] = w^T @ dy, then back onto the pixels.
                    matmul(
                        (taps, p, o),
                        &mut dcols,
                        false,
                        wd,
                        transposed(taps),
                        &dy,
                        row_major(p),
                        Threads::One,
                    );
                    let local = n - first;
                    col2im(&g, &dcols, &mut dx[local * img_len..(local + 1) * img_len]);
                }
            }
            (dw_t, db)
        };
        let mut dx = if self.input_grad {
            vec![0f32; b * img_len]
        } else {
            Vec::new()
        };
        let partials: Vec<(Vec<f32>, Vec<f32>)> = if self.input_grad {
            dx.par_chunks_mut(per * img_len)
                .enumerate()
                .map(|(r, chunk)| work(r * per, Some(chunk)))
                .collect()
        } else {
            (0..runs)
                .into_par_iter()
                .map(|r| work(r * per, None))
                .collect()
        };
        let (dws, dbs): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
        let dw = transpose(&sum_parts(dws, taps * o), taps, o);
        let db = sum_parts(dbs, o);
        let device = x.device();
        let dx = if self.input_grad {
            Some(Tensor::from_vec(dx, (b, g.c, g.h, g.w), device)?)
        } else {
            None
        };
        let dw = Tensor::from_vec(dw, (o, g.c, g.k, g.k), device)?;
        let db = Tensor::from_vec(db, o, device)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

simd_kernel! {
    /// `sums[i] += sum of row i of rows [sums.len(), p]`, each row in 16 lanes
    /// (one chain of adds waits on each add).
    fn add_row_sums(p: usize, rows: &[f32], sums: &mut [f32]) {
        for (acc, row) in sums.iter_mut().zip(rows.chunks_exact(p.max(1))) {
            *acc += lane_sum(row, |v| v);
        }
    }
}

/// ReLU that keeps NaN visible (a diverging run must not look healthy).
fn relu_in_place(ys: &mut [f32]) {
    for v in ys {
        // A select rather than a conditional store, so that it vectorises.
        *v = if *v < 0.0 { 0.0 } else { *v };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_tensors::{max_diff, random};
    use crate::util::rng::Rng;
    use candle_core::{DType, Device, Var};

    #[test]
    fn uncovered_border_gets_zero_gradient() -> Result<()> {
        // 5 wide, kernel 2, stride 2: the last column is never read.
        let x = Var::from_tensor(&Tensor::ones((1, 1, 4, 5), DType::F32, &Device::Cpu)?)?;
        let w = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu)?;
        let bias = Tensor::zeros(1, DType::F32, &Device::Cpu)?;
        let y = conv2d(x.as_tensor(), &w, &bias, 2, 0, Fusion::default())?;
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        let g = y.sum_all()?.backward()?;
        let gx = g
            .get(x.as_tensor())
            .expect("input gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(&gx[..5], &[1.0, 1.0, 1.0, 1.0, 0.0]);
        Ok(())
    }

    /// Forward values and all three gradients agree with candle's conv2d (+ relu).
    #[test]
    fn matches_candle_conv2d_on_random_shapes() -> Result<()> {
        let mut rng = Rng::new(11);
        // (batch, c_in, h, w, c_out, kernel, stride, pad, relu)
        let cases = [
            (2, 1, 8, 8, 3, 3, 1, 0, false),
            (3, 2, 7, 9, 4, 3, 2, 1, true),
            (1, 3, 5, 5, 2, 5, 1, 2, false),
            (2, 4, 6, 6, 5, 2, 2, 0, true),
            (1, 2, 10, 7, 3, 3, 3, 1, false),
            (5, 3, 9, 9, 4, 3, 1, 1, true),
            (70, 8, 12, 12, 4, 3, 1, 1, true),
        ];
        // Only shapes where the stride tiles the padded input exactly: for the others
        // candle 0.11's conv2d input gradient comes back with the wrong shape (a
        // candle bug), so it cannot serve as the reference there; im2col.rs checks
        // those geometries against the definition instead.
        for (b, c, h, w, o, k, s, p, relu) in cases {
            let x = Var::from_tensor(&random(&mut rng, &[b, c, h, w])?)?;
            let wt = Var::from_tensor(&random(&mut rng, &[o, c, k, k])?)?;
            let bias = Var::from_tensor(&random(&mut rng, &[o])?)?;
            let fusion = Fusion { relu, pool: None };
            let fast = conv2d(
                x.as_tensor(),
                wt.as_tensor(),
                bias.as_tensor(),
                s,
                p,
                fusion,
            )?;
            let mut reference = x
                .as_tensor()
                .conv2d(wt.as_tensor(), p, s, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, o, 1, 1))?)?;
            if relu {
                reference = reference.relu()?;
            }
            let case = format!("case b{b} c{c} {h}x{w} o{o} k{k} s{s} p{p} relu {relu}");
            assert_eq!(fast.dims(), reference.dims(), "{case}");
            assert!(max_diff(&fast, &reference)? < 1e-4, "{case}: forward");
            // Same upstream gradient through both paths.
            let up = random(&mut rng, fast.dims())?;
            let gf = (&fast * &up)?.sum_all()?.backward()?;
            let gr = (&reference * &up)?.sum_all()?.backward()?;
            for (name, v) in [("input", &x), ("weight", &wt), ("bias", &bias)] {
                let (Some(a), Some(b)) = (gf.get(v.as_tensor()), gr.get(v.as_tensor())) else {
                    panic!("{case}: missing {name} gradient");
                };
                assert!(max_diff(a, b)? < 1e-3, "{case}: {name} gradient");
            }
        }
        Ok(())
    }

    #[test]
    fn data_input_gets_no_gradient_and_nan_stays_visible() -> Result<()> {
        let mut rng = Rng::new(3);
        let x = random(&mut rng, &[2, 1, 5, 5])?;
        let w = Var::from_tensor(&random(&mut rng, &[2, 1, 3, 3])?)?;
        let bias = Var::from_tensor(&Tensor::new(&[f32::NAN, 0.0], &Device::Cpu)?)?;
        let relu = Fusion {
            relu: true,
            pool: None,
        };
        let y = conv2d(&x, w.as_tensor(), bias.as_tensor(), 1, 0, relu)?;
        let first: Vec<f32> = y.get(0)?.get(0)?.flatten_all()?.to_vec1()?;
        assert!(first.iter().all(|v| v.is_nan()), "relu must not hide NaN");
        let g = y.get(0)?.get(1)?.sum_all()?.backward()?;
        assert!(g.get(&x).is_none());
        assert!(g.get(w.as_tensor()).is_some());
        Ok(())
    }

    /// Convolution, ReLU and pooling in one kernel equal the three kernels in a
    /// row (each tested against its reference above and in pool.rs).
    #[test]
    fn fused_pooling_matches_the_unfused_chain() -> Result<()> {
        let mut rng = Rng::new(21);
        // (batch, c_in, h, w, c_out, kernel, stride, pad, relu, pool window, pool stride)
        let cases = [
            (3, 2, 10, 10, 4, 3, 1, 0, true, 2, 2),
            (2, 1, 9, 8, 3, 3, 1, 1, false, 2, 2),
            (5, 3, 11, 11, 2, 3, 2, 1, true, 3, 2),
            (4, 2, 8, 8, 3, 2, 1, 0, true, 2, 1),
        ];
        for (b, c, h, w, o, k, s, p, relu, pk, ps) in cases {
            let x = Var::from_tensor(&random(&mut rng, &[b, c, h, w])?)?;
            let wt = Var::from_tensor(&random(&mut rng, &[o, c, k, k])?)?;
            let bias = Var::from_tensor(&random(&mut rng, &[o])?)?;
            let (xt, wtt, bt) = (x.as_tensor(), wt.as_tensor(), bias.as_tensor());
            let fused = Fusion {
                relu,
                pool: Some((pk, ps)),
            };
            let fast = conv2d(xt, wtt, bt, s, p, fused)?;
            let chain = super::super::pool::max_pool2d(
                &conv2d(xt, wtt, bt, s, p, Fusion { relu, pool: None })?,
                pk,
                ps,
            )?;
            let case =
                format!("case b{b} c{c} {h}x{w} o{o} k{k} s{s} p{p} relu {relu} pool {pk}/{ps}");
            assert_eq!(fast.dims(), chain.dims(), "{case}");
            assert!(max_diff(&fast, &chain)? < 1e-5, "{case}: forward");
            let up = random(&mut rng, fast.dims())?;
            let gf = (&fast * &up)?.sum_all()?.backward()?;
            let gc = (&chain * &up)?.sum_all()?.backward()?;
            for (name, v) in [("input", &x), ("weight", &wt), ("bias", &bias)] {
                let (Some(a), Some(b)) = (gf.get(v.as_tensor()), gc.get(v.as_tensor())) else {
                    panic!("{case}: missing {name} gradient");
                };
                assert!(max_diff(a, b)? < 1e-4, "{case}: {name} gradient");
            }
        }
        Ok(())
    }
}
