//! A fast CPU convolution: im2col as a candle custom op (with col2im as its
//! backward), followed by one large matrix multiply that candle's GEMM and its
//! autograd already do well. candle's own conv2d backward is several times slower
//! on the CPU; its result is the reference these kernels are tested against.
//!
//! Layout: input `[b, c, h, w]` becomes columns `[b, oh*ow, c*k*k]` (one row per
//! output position, one column per kernel tap), so that
//! `output = columns @ weight[o, c*k*k]^T`.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvGeometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    pub(crate) fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.pad - self.k) / self.stride + 1,
            (self.w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }

    fn taps(&self) -> usize {
        self.c * self.k * self.k
    }
}

/// Largest column buffer built at once. Bigger buffers are mapped fresh from the
/// OS on every step (the allocator does not cache them), and zeroing new pages
/// then costs more than the arithmetic; batches are split to stay below this.
const MAX_COLUMN_BYTES: usize = 8 << 20;

/// Conv2d forward via im2col + matmul; differentiable in input, weight and bias.
pub(crate) fn conv2d_im2col(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> Result<Tensor> {
    let (b, c, h, w) = xs.dims4()?;
    let k = weight.dim(2)?;
    let g = ConvGeometry {
        c,
        h,
        w,
        k,
        stride,
        pad,
    };
    let (oh, ow) = g.out_hw();
    let per_image = oh * ow * g.taps() * std::mem::size_of::<f32>();
    let chunk = (MAX_COLUMN_BYTES / per_image.max(1)).max(1);
    if b <= chunk {
        return conv_chunk(xs, weight, bias, stride, pad);
    }
    let mut parts = Vec::with_capacity(b.div_ceil(chunk));
    let mut start = 0;
    while start < b {
        let n = chunk.min(b - start);
        parts.push(conv_chunk(
            &xs.narrow(0, start, n)?,
            weight,
            bias,
            stride,
            pad,
        )?);
        start += n;
    }
    Tensor::cat(&parts, 0)
}

fn conv_chunk(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> Result<Tensor> {
    let (b, c, h, w) = xs.dims4()?;
    let (o, _, k, _) = weight.dims4()?;
    let g = ConvGeometry {
        c,
        h,
        w,
        k,
        stride,
        pad,
    };
    let (oh, ow) = g.out_hw();
    let cols = xs.contiguous()?.apply_op1(Im2Col(g))?;
    let cols = cols.reshape((b * oh * ow, g.taps()))?;
    let mut ys = cols.matmul(&weight.reshape((o, g.taps()))?.t()?)?;
    if let Some(bias) = bias {
        ys = ys.broadcast_add(bias)?;
    }
    ys.reshape((b, oh * ow, o))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, o, oh, ow))
}

pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: only f32 is supported");
    };
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// `[b, c, h, w] -> [b, oh*ow, c*k*k]`.
struct Im2Col(ConvGeometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let src = f32_slice(storage, layout, "im2col")?;
        let b = layout.dims()[0];
        let (oh, ow) = g.out_hw();
        let taps = g.taps();
        let mut out = vec![0f32; b * oh * ow * taps];
        let per_image = oh * ow * taps;
        for (n, dst) in out.chunks_mut(per_image).enumerate() {
            let img = &src[n * g.c * g.h * g.w..(n + 1) * g.c * g.h * g.w];
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &mut dst[(oy * ow + ox) * taps..(oy * ow + ox + 1) * taps];
                    let mut t = 0;
                    for ci in 0..g.c {
                        let plane = &img[ci * g.h * g.w..(ci + 1) * g.h * g.w];
                        for ky in 0..g.k {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            for kx in 0..g.k {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w
                                {
                                    row[t] = plane[iy as usize * g.w + ix as usize];
                                }
                                t += 1;
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, oh * ow, taps))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let b = arg.dim(0)?;
        let grad = grad_res
            .contiguous()?
            .apply_op1_no_bwd(&Col2Im(self.0, b))?;
        Ok(Some(grad))
    }
}

/// The adjoint of `Im2Col`: sums each column entry back onto the pixel it came from.
struct Col2Im(ConvGeometry, usize);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, b) = (self.0, self.1);
        let cols = f32_slice(storage, layout, "col2im")?;
        let (oh, ow) = g.out_hw();
        let taps = g.taps();
        let per_image = g.c * g.h * g.w;
        let mut out = vec![0f32; b * per_image];
        for (n, img) in out.chunks_mut(per_image).enumerate() {
            let src = &cols[n * oh * ow * taps..(n + 1) * oh * ow * taps];
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &src[(oy * ow + ox) * taps..(oy * ow + ox + 1) * taps];
                    let mut t = 0;
                    for ci in 0..g.c {
                        for ky in 0..g.k {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            for kx in 0..g.k {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w
                                {
                                    img[ci * g.h * g.w + iy as usize * g.w + ix as usize] += row[t];
                                }
                                t += 1;
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, g.c, g.h, g.w))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;
    use candle_core::{Device, Var};

    fn random(rng: &mut Rng, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    /// Forward values and all three gradients agree with candle's conv2d.
    #[test]
    fn uncovered_border_gets_zero_gradient() -> Result<()> {
        // 5 wide, kernel 2, stride 2: the last column is never read.
        let x = Var::from_tensor(&Tensor::ones(
            (1, 1, 4, 5),
            candle_core::DType::F32,
            &Device::Cpu,
        )?)?;
        let w = Tensor::ones((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
        let y = conv2d_im2col(x.as_tensor(), &w, None, 2, 0)?;
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

    #[test]
    fn matches_candle_conv2d_on_random_shapes() -> Result<()> {
        let mut rng = Rng::new(11);
        // (batch, c_in, h, w, c_out, kernel, stride, pad)
        let cases = [
            (2, 1, 8, 8, 3, 3, 1, 0),
            (3, 2, 7, 9, 4, 3, 2, 1),
            (1, 3, 5, 5, 2, 5, 1, 2),
            (2, 4, 6, 6, 5, 2, 2, 0),
            (1, 2, 10, 7, 3, 3, 3, 1),
            // Large enough to be split into several chunks.
            (70, 8, 24, 24, 4, 3, 1, 1),
        ];
        // Only shapes where the stride tiles the padded input exactly: for the others
        // candle 0.11's conv2d input gradient comes back with the wrong shape (a
        // candle bug), so it cannot serve as the reference there.
        for (b, c, h, w, o, k, s, p) in cases {
            let x = Var::from_tensor(&random(&mut rng, &[b, c, h, w])?)?;
            let wt = Var::from_tensor(&random(&mut rng, &[o, c, k, k])?)?;
            let bias = Var::from_tensor(&random(&mut rng, &[o])?)?;
            let fast = conv2d_im2col(x.as_tensor(), wt.as_tensor(), Some(bias.as_tensor()), s, p)?;
            let reference = x
                .as_tensor()
                .conv2d(wt.as_tensor(), p, s, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, o, 1, 1))?)?;
            let case = format!("case b{b} c{c} {h}x{w} o{o} k{k} s{s} p{p}");
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
}
