//! The int8 model's forward pass with quantisation and rescaling fused into
//! the products. An int8 layer's epilogue ([`kernel::Epilogue`]) rescales each
//! tile of sums, adds the bias, applies a ReLU that follows the layer and, when
//! the next int8 layer is reached through monotone steps only (ReLU, max
//! pooling, Flatten, Dropout), quantises straight into that layer's input
//! codes: one byte a value, stored as the next kernel reads it. Activations
//! stay int8 between layers; a convolution is an int8 product over im2col
//! patches built block by block (channels-last codes, blocks of output pixels
//! across the whole batch, blocks in parallel); a Linear layer's rows are
//! quantised by the thread that multiplies them.
//!
//! Contract: [`forward`] gives bit for bit what running each [`Step`] in turn
//! gives ([`Step::run`], the reference path): the epilogue does the same f32
//! operations in the same order, and quantisation is monotone, so pooling and
//! ReLU on codes equal quantising after them (`q(max(a, b)) = max(q(a), q(b))`).
//! Steps that are not monotone (batch norm, tanh, sigmoid, GELU) run in f32 as
//! the reference does.

use rayon::prelude::*;

use super::kernel::{self, Dest, Epilogue, Int8Kernel, code_stride};
use super::steps::{ConvGeom, Int8Weights, Step};

/// Output pixels per im2col block of a convolution (a block's patches and the
/// layer's packed weights fit in L1/L2 together).
const CONV_BLOCK: usize = 64;
/// Below this many multiply-adds a Linear product stays on the calling thread.
const PARALLEL_WORK: usize = 1 << 20;

/// Activations between steps.
enum Acts<'a> {
    /// The caller's input, f32 channels-first.
    Input(&'a [f32]),
    /// f32, channels-first per sample (what [`Step::run`] reads).
    F32(Vec<f32>),
    /// Codes for the next int8 step, XORed with the kernel's code bias:
    /// channels-last samples (`height x width x channels`) before a Conv,
    /// rows of [`code_stride`] bytes before a Linear.
    Codes(Vec<u8>),
}

impl Acts<'_> {
    fn f32(&self) -> &[f32] {
        match self {
            Self::Input(x) => x,
            Self::F32(v) => v,
            Self::Codes(_) => unreachable!("codes are only made for an int8 step"),
        }
    }
}

/// What follows an int8 step, as far as its epilogue can take it.
struct Plan<'s> {
    /// A ReLU directly after the step (Flatten/Dropout between allowed).
    relu: bool,
    /// Index of the first step the epilogue did not take.
    after_relu: usize,
    /// The next int8 step, reached through monotone steps only, with its
    /// index; `None`: the epilogue writes f32.
    next: Option<(usize, &'s Int8Weights)>,
}

fn plan(steps: &[Step], i: usize) -> Plan<'_> {
    let mut j = i + 1;
    let mut relu = false;
    while let Some(s @ (Step::Relu | Step::Identity)) = steps.get(j) {
        relu |= matches!(s, Step::Relu);
        j += 1;
    }
    let conv = matches!(steps[i], Step::Conv(..));
    let mut k = j;
    // After a Linear only ReLU/Identity can follow (pooling needs an image).
    while conv
        && matches!(
            steps.get(k),
            Some(Step::MaxPool { .. } | Step::Relu | Step::Identity)
        )
    {
        k += 1;
    }
    let next = match steps.get(k) {
        Some(Step::Conv(w, _)) if conv => Some((k, w)),
        Some(Step::Linear(w)) => Some((k, w)),
        _ => None,
    };
    Plan {
        relu,
        after_relu: j,
        next,
    }
}

/// Runs `steps` over `batch` samples of `x` (flat, channels-first), fused.
pub(crate) fn forward(steps: &[Step], x: &[f32], batch: usize, kernel: Int8Kernel) -> Vec<f32> {
    let bias = kernel.code_bias();
    let mut acts = Acts::Input(x);
    // The current activations' image shape (height, width, channels), while
    // they are channels-last codes.
    let mut hwc = (0, 0, 0);
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        let (w, geom) = match step {
            Step::Linear(w) => (w, None),
            Step::Conv(w, g) => (w, Some(g)),
            _ => {
                acts = Acts::F32(step.run(acts.f32(), batch, kernel));
                i += 1;
                continue;
            }
        };
        let p = plan(steps, i);
        let out = p.next.map(|(_, n)| 1.0 / n.input_scale);
        acts = match geom {
            Some(g) => {
                let codes = match acts {
                    Acts::Codes(c) => c,
                    other => quantise_hwc(other.f32(), batch, g, w.input_scale, bias),
                };
                hwc = (g.out_h, g.out_w, w.outputs);
                conv(w, g, &codes, batch, kernel, p.relu, out)
            }
            None => linear(w, &acts, batch, kernel, p.relu, out),
        };
        let Some((k, next)) = p.next else {
            i = p.after_relu;
            continue;
        };
        // Monotone steps on the codes, then the layout the next step reads.
        if let Acts::Codes(codes) = &mut acts {
            for s in &steps[p.after_relu..k] {
                on_codes(s, codes, batch, &mut hwc, bias);
            }
            if geom.is_some() && matches!(steps[k], Step::Linear(_)) {
                *codes = hwc_to_rows(codes, batch, hwc, code_stride(next.inputs), bias);
            }
        }
        i = k;
    }
    match acts {
        Acts::Input(x) => x.to_vec(),
        Acts::F32(v) => v,
        Acts::Codes(_) => unreachable!("the last int8 step writes f32"),
    }
}

/// A monotone step applied to channels-last codes.
fn on_codes(
    step: &Step,
    codes: &mut Vec<u8>,
    batch: usize,
    hwc: &mut (usize, usize, usize),
    bias: u8,
) {
    match *step {
        Step::Relu => {
            for b in codes.iter_mut() {
                *b = (((*b ^ bias) as i8).max(0) as u8) ^ bias;
            }
        }
        Step::MaxPool {
            kernel: k,
            stride,
            out_h,
            out_w,
            ..
        } => {
            *codes = pool_codes(codes, batch, *hwc, k, stride, (out_h, out_w), bias);
            hwc.0 = out_h;
            hwc.1 = out_w;
        }
        _ => {}
    }
}

/// A Linear layer over all rows: row blocks in parallel, each quantised (from
/// f32) by the thread that multiplies it; the epilogue writes f32 rows, or the
/// next Linear's code rows when `next_inv` is given.
fn linear(
    w: &Int8Weights,
    acts: &Acts<'_>,
    batch: usize,
    kernel: Int8Kernel,
    relu: bool,
    next_inv: Option<f32>,
) -> Acts<'static> {
    let (n, kq, bias) = (w.outputs, code_stride(w.inputs), kernel.code_bias());
    let threads = rayon::current_num_threads().max(1);
    let per = if batch * n * kq < PARALLEL_WORK || threads == 1 {
        batch.max(1)
    } else {
        batch
            .div_ceil(threads)
            .max(8)
            .next_multiple_of(kernel::TILE_ROWS)
    };
    let inv = 1.0 / w.input_scale;
    let block = |b: usize, dest: Dest<'_>| {
        let r0 = b * per;
        let nr = per.min(batch - r0);
        let mut own: Vec<u8>;
        let codes: &[u8] = match acts {
            Acts::Codes(c) => &c[r0 * kq..(r0 + nr) * kq],
            other => {
                own = vec![bias; nr * kq];
                let x = &other.f32()[r0 * w.inputs..(r0 + nr) * w.inputs];
                for (dst, src) in own.chunks_mut(kq).zip(x.chunks(w.inputs.max(1))) {
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = (kernel::quantise(v, inv) as i8 as u8) ^ bias;
                    }
                }
                &own
            }
        };
        let mut epi = Epilogue {
            in_scale: w.input_scale,
            scales: &w.scales,
            bias: &w.bias,
            relu,
            dest,
        };
        kernel::gemm_codes(kernel, codes, kq, nr, &w.packed, &mut epi);
    };
    match next_inv {
        Some(inv) => {
            let row = code_stride(n);
            let mut out = vec![bias; batch * row];
            in_blocks(&mut out, per * row, |b, dst| {
                block(
                    b,
                    Dest::Codes {
                        dst,
                        row,
                        inv,
                        bias,
                    },
                );
            });
            Acts::Codes(out)
        }
        None => {
            let mut out = vec![0f32; batch * n];
            in_blocks(&mut out, per * n, |b, dst| {
                block(b, Dest::F32 { dst, row: n })
            });
            Acts::F32(out)
        }
    }
}

/// `f(block index, block)` over `out` cut in blocks of `len`: on the calling
/// thread when there is one block, else in parallel.
fn in_blocks<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let len = len.max(1);
    if out.len() <= len {
        f(0, out);
    } else {
        out.par_chunks_mut(len)
            .enumerate()
            .for_each(|(b, o)| f(b, o));
    }
}

/// A convolution as one int8 product with `batch x out_h x out_w` rows over
/// channels-last codes, im2col'd in blocks of [`CONV_BLOCK`] rows. Writes
/// channels-last codes for the next int8 step (`next_inv`), else f32 put back
/// channels-first.
fn conv(
    w: &Int8Weights,
    g: &ConvGeom,
    x: &[u8],
    batch: usize,
    kernel: Int8Kernel,
    relu: bool,
    next_inv: Option<f32>,
) -> Acts<'static> {
    let (n, kq, bias) = (w.outputs, code_stride(w.inputs), kernel.code_bias());
    let pixels = g.out_h * g.out_w;
    let rows = batch * pixels;
    let block = |b: usize, dest: Dest<'_>| {
        let r0 = b * CONV_BLOCK;
        let nr = CONV_BLOCK.min(rows - r0);
        let mut patches = vec![bias; nr * kq];
        im2col(x, g, r0, kq, bias, &mut patches);
        let mut epi = Epilogue {
            in_scale: w.input_scale,
            scales: &w.scales,
            bias: &w.bias,
            relu,
            dest,
        };
        kernel::gemm_codes(kernel, &patches, kq, nr, &w.packed, &mut epi);
    };
    if let Some(inv) = next_inv {
        let mut out = vec![0u8; rows * n];
        in_blocks(&mut out, CONV_BLOCK * n, |b, dst| {
            block(
                b,
                Dest::Codes {
                    dst,
                    row: n,
                    inv,
                    bias,
                },
            );
        });
        return Acts::Codes(out);
    }
    let mut pixel_major = vec![0f32; rows * n];
    in_blocks(&mut pixel_major, CONV_BLOCK * n, |b, dst| {
        block(b, Dest::F32 { dst, row: n });
    });
    let mut out = vec![0f32; rows * n];
    out.par_chunks_mut(pixels * n)
        .zip(pixel_major.par_chunks(pixels * n))
        .for_each(|(dst, src)| {
            for (p, sums) in src.chunks(n).enumerate() {
                for (o, &v) in sums.iter().enumerate() {
                    dst[o * pixels + p] = v;
                }
            }
        });
    Acts::F32(out)
}

/// The patches of output rows `r0..` (as many as `patches` holds, `kq` bytes
/// each, columns in (ky, kx, channel) order) from channels-last codes; what
/// falls outside the image, and the row's tail, is the code 0.
fn im2col(x: &[u8], g: &ConvGeom, r0: usize, kq: usize, bias: u8, patches: &mut [u8]) {
    let &ConvGeom {
        channels: c,
        height,
        width,
        kernel: k,
        stride,
        padding,
        out_h,
        out_w,
    } = g;
    let (per_in, pixels, run) = (height * width * c, out_h * out_w, k * c);
    for (i, row) in patches.chunks_mut(kq).enumerate() {
        let (s, p) = ((r0 + i) / pixels, (r0 + i) % pixels);
        let (oy, ox) = (p / out_w, p % out_w);
        let sample = &x[s * per_in..(s + 1) * per_in];
        let x0 = ox * stride;
        let inside = x0 >= padding && x0 - padding + k <= width;
        for ky in 0..k {
            let dst = &mut row[ky * run..(ky + 1) * run];
            let iy = (oy * stride + ky).wrapping_sub(padding);
            if iy >= height {
                dst.fill(bias);
                continue;
            }
            let src = &sample[iy * width * c..(iy + 1) * width * c];
            if inside {
                dst.copy_from_slice(&src[(x0 - padding) * c..][..run]);
            } else {
                for (kx, d) in dst.chunks_mut(c.max(1)).enumerate() {
                    let ix = (x0 + kx).wrapping_sub(padding);
                    if ix < width {
                        d.copy_from_slice(&src[ix * c..(ix + 1) * c]);
                    } else {
                        d.fill(bias);
                    }
                }
            }
        }
        row[k * run..].fill(bias);
    }
}

/// f32 channels-first samples quantised with `scale` into channels-last codes.
fn quantise_hwc(x: &[f32], batch: usize, g: &ConvGeom, scale: f32, bias: u8) -> Vec<u8> {
    let (c, plane) = (g.channels, g.height * g.width);
    let inv = 1.0 / scale;
    let mut out = vec![0u8; batch * c * plane];
    let code = |v: f32| (kernel::quantise(v, inv) as i8 as u8) ^ bias;
    out.par_chunks_mut(c * plane)
        .zip(x.par_chunks(c * plane))
        .for_each(|(dst, src)| {
            if c == 1 {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = code(v);
                }
                return;
            }
            for (ch, plane_src) in src.chunks(plane).enumerate() {
                for (p, &v) in plane_src.iter().enumerate() {
                    dst[p * c + ch] = code(v);
                }
            }
        });
    out
}

/// Max pooling on channels-last codes (the max of codes is the code of the
/// max: quantisation is monotone).
fn pool_codes(
    x: &[u8],
    batch: usize,
    (h, w, c): (usize, usize, usize),
    k: usize,
    stride: usize,
    (oh, ow): (usize, usize),
    bias: u8,
) -> Vec<u8> {
    let mut out = vec![0u8; batch * oh * ow * c];
    let per_in = h * w * c;
    if per_in == 0 || c == 0 {
        return out;
    }
    out.par_chunks_mut(oh * ow * c)
        .zip(x.par_chunks(per_in))
        .for_each(|(dst, src)| {
            let mut m = vec![i8::MIN; c];
            for (p, d) in dst.chunks_mut(c).enumerate() {
                let (oy, ox) = (p / ow, p % ow);
                m.fill(i8::MIN);
                for dy in 0..k {
                    for dx in 0..k {
                        let at = ((oy * stride + dy) * w + ox * stride + dx) * c;
                        for (m, &b) in m.iter_mut().zip(&src[at..at + c]) {
                            *m = (*m).max((b ^ bias) as i8);
                        }
                    }
                }
                for (d, &m) in d.iter_mut().zip(&m) {
                    *d = (m as u8) ^ bias;
                }
            }
        });
    out
}

/// Channels-last samples as channels-first rows of `stride` bytes (what a
/// Linear after Flatten reads), the tail the code 0.
fn hwc_to_rows(
    x: &[u8],
    batch: usize,
    (h, w, c): (usize, usize, usize),
    stride: usize,
    bias: u8,
) -> Vec<u8> {
    let plane = h * w;
    let mut out = vec![bias; batch * stride];
    if plane * c == 0 {
        return out;
    }
    out.par_chunks_mut(stride)
        .zip(x.par_chunks(plane * c))
        .for_each(|(dst, src)| {
            for (p, px) in src.chunks(c).enumerate() {
                for (ch, &b) in px.iter().enumerate() {
                    dst[ch * plane + p] = b;
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    fn int8(rng: &mut Rng, inputs: usize, outputs: usize, input_scale: f32) -> Int8Weights {
        let w: Vec<f32> = (0..inputs * outputs).map(|_| rng.normal() as f32).collect();
        let bias = (0..outputs).map(|_| rng.normal() as f32 * 0.1).collect();
        let mut q = Int8Weights::quantise(&w, inputs, bias);
        q.input_scale = input_scale;
        q
    }

    fn conv(
        rng: &mut Rng,
        (c, h, w): (usize, usize, usize),
        out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        scale: f32,
    ) -> Step {
        let geom = ConvGeom {
            channels: c,
            height: h,
            width: w,
            kernel: k,
            stride,
            padding,
            out_h: (h + 2 * padding - k) / stride + 1,
            out_w: (w + 2 * padding - k) / stride + 1,
        };
        Step::Conv(int8(rng, c * k * k, out, scale).channels_last(c, k), geom)
    }

    fn pool(c: usize, h: usize, w: usize) -> Step {
        Step::MaxPool {
            channels: c,
            height: h,
            width: w,
            kernel: 2,
            stride: 2,
            out_h: h / 2,
            out_w: w / 2,
        }
    }

    /// The fused pass against the steps one by one, on every kernel here,
    /// bit for bit; also in a pool of three threads (other block splits).
    fn same_as_reference(steps: &[Step], x: &[f32], batch: usize) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        for kernel in Int8Kernel::available() {
            let mut want = x.to_vec();
            for s in steps {
                want = s.run(&want, batch, kernel);
            }
            assert_eq!(
                forward(steps, x, batch, kernel),
                want,
                "{kernel:?}, batch {batch}"
            );
            let three = pool.install(|| forward(steps, x, batch, kernel));
            assert_eq!(three, want, "{kernel:?}, batch {batch}, 3 threads");
        }
    }

    fn input(rng: &mut Rng, n: usize) -> Vec<f32> {
        let mut x: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        // Values past the clamp and not numbers at all quantise alike on both paths.
        x[0] = f32::NAN;
        x[1] = f32::INFINITY;
        x[2] = -1e9;
        x
    }

    #[test]
    fn a_cnn_fused_end_to_end_gives_the_reference_bits() {
        let mut rng = Rng::new(11);
        // 2 x 9 x 9 -> conv 3x3 pad 1 (6) -> relu -> conv 3x3 stride 2 (8): 4 x 4
        // -> relu -> pool: 2 x 2 -> flatten -> linear 32 -> 40 -> relu -> linear 7.
        let steps = vec![
            conv(&mut rng, (2, 9, 9), 6, 3, 1, 1, 0.02),
            Step::Relu,
            conv(&mut rng, (6, 9, 9), 8, 3, 2, 0, 0.03),
            Step::Relu,
            pool(8, 4, 4),
            Step::Identity,
            Step::Linear(int8(&mut rng, 32, 40, 0.05)),
            Step::Relu,
            Step::Identity,
            Step::Linear(int8(&mut rng, 40, 7, 0.1)),
        ];
        for batch in [1, 3, 9] {
            let x = input(&mut rng, batch * 2 * 81);
            same_as_reference(&steps, &x, batch);
        }
    }

    #[test]
    fn steps_that_are_not_monotone_break_the_fusion_and_still_match() {
        let mut rng = Rng::new(12);
        let affine = Step::Affine {
            per: 16,
            scale: vec![1.5, -0.5, 2.0, -1.0],
            shift: vec![0.1, 0.2, -0.3, 0.0],
        };
        let steps = vec![
            conv(&mut rng, (1, 6, 6), 4, 3, 1, 0, 0.03),
            affine,
            Step::Tanh,
            // Pooled codes then a ReLU on codes, no Flatten before the Linear.
            conv(&mut rng, (4, 4, 4), 5, 1, 1, 0, 0.01),
            pool(5, 4, 4),
            Step::Relu,
            Step::Linear(int8(&mut rng, 20, 9, 0.02)),
            Step::Sigmoid,
            Step::Linear(int8(&mut rng, 9, 6, 0.01)),
            Step::Gelu,
            Step::Linear(int8(&mut rng, 6, 3, 0.02)),
            Step::Relu,
        ];
        for batch in [1, 5] {
            let x = input(&mut rng, batch * 36);
            same_as_reference(&steps, &x, batch);
        }
        // A convolution last: f32 back channels-first.
        let last = vec![conv(&mut rng, (3, 5, 7), 33, 2, 1, 1, 0.05), Step::Relu];
        let x = input(&mut rng, 2 * 105);
        same_as_reference(&last, &x, 2);
    }

    #[test]
    fn large_products_cut_in_blocks_give_the_reference_bits() {
        let mut rng = Rng::new(13);
        // Linear blocks over threads (70 x 70 x 300 multiply-adds, over the
        // threshold) and more convolution rows than one block.
        let steps = vec![
            Step::Identity,
            Step::Linear(int8(&mut rng, 300, 70, 0.02)),
            Step::Relu,
            Step::Linear(int8(&mut rng, 70, 33, 0.05)),
        ];
        let x = input(&mut rng, 70 * 300);
        same_as_reference(&steps, &x, 70);
        let steps = vec![
            conv(&mut rng, (3, 12, 12), 16, 3, 1, 1, 0.02),
            Step::Relu,
            conv(&mut rng, (16, 12, 12), 40, 5, 1, 2, 0.03),
        ];
        let x = input(&mut rng, 3 * 3 * 144);
        same_as_reference(&steps, &x, 3);
    }

    #[test]
    fn no_steps_and_no_samples_are_handled() {
        let x = [1.0f32, 2.0];
        assert_eq!(forward(&[], &x, 1, Int8Kernel::Portable), x);
        let mut rng = Rng::new(14);
        let steps = vec![
            conv(&mut rng, (1, 4, 4), 2, 3, 1, 0, 0.1),
            Step::Relu,
            Step::Identity,
            Step::Linear(int8(&mut rng, 8, 3, 0.1)),
        ];
        for kernel in Int8Kernel::available() {
            assert!(forward(&steps, &[], 0, kernel).is_empty(), "{kernel:?}");
        }
    }

    #[test]
    fn the_plan_fuses_through_monotone_steps_up_to_the_next_int8_step() {
        let mut rng = Rng::new(15);
        // 1 x 6 x 6 -> conv 3x3 (2): 4 x 4 -> pool: 2 x 2 -> conv 1x1 (3) ->
        // pool: 1 x 1 -> Linear 3 -> 4 -> 2 -> 5. The plan decides what each
        // epilogue writes (the next step's codes or f32): a plan that stops
        // early still gives the reference bits, only slower, so it is pinned here.
        let cnn = vec![
            conv(&mut rng, (1, 6, 6), 2, 3, 1, 0, 0.1),
            Step::Relu,
            Step::Identity,
            pool(2, 4, 4),
            Step::Relu,
            conv(&mut rng, (2, 2, 2), 3, 1, 1, 0, 0.1),
            pool(3, 2, 2),
            Step::Linear(int8(&mut rng, 3, 4, 0.1)),
            Step::Relu,
            Step::Linear(int8(&mut rng, 4, 2, 0.1)),
            Step::Tanh,
            Step::Linear(int8(&mut rng, 2, 5, 0.1)),
        ];
        // (relu, after_relu, next step's index and inputs) for each int8 step.
        let summary = |steps: &[Step], i: usize| {
            let p = plan(steps, i);
            (p.relu, p.after_relu, p.next.map(|(k, w)| (k, w.inputs)))
        };
        // A conv's ReLU and Identity are taken; pooling and a ReLU after it run
        // on the codes up to the next conv.
        assert_eq!(summary(&cnn, 0), (true, 3, Some((5, 2))));
        // Pooling straight to a Linear (no ReLU).
        assert_eq!(summary(&cnn, 5), (false, 6, Some((7, 3))));
        assert_eq!(summary(&cnn, 7), (true, 9, Some((9, 4))));
        // A Tanh runs in f32 (it changes values, not only their order): f32 out.
        assert_eq!(summary(&cnn, 9), (false, 10, None));
        assert_eq!(summary(&cnn, 11), (false, 12, None));
        // After a Linear neither pooling nor a conv is fused (no image).
        let rows = vec![
            Step::Linear(int8(&mut rng, 4, 8, 0.1)),
            Step::Relu,
            pool(2, 2, 2),
            Step::Linear(int8(&mut rng, 2, 2, 0.1)),
            Step::Identity,
            conv(&mut rng, (2, 1, 1), 2, 1, 1, 0, 0.1),
        ];
        assert_eq!(summary(&rows, 0), (true, 2, None));
        assert_eq!(summary(&rows, 3), (false, 5, None));
    }

    #[test]
    fn a_linear_split_over_threads_reads_each_blocks_own_rows_of_codes() {
        let mut rng = Rng::new(16);
        // The second Linear reads the first one's codes and is large enough to
        // split (70 x 70 x 300 multiply-adds): in the pool of three threads,
        // blocks of 24 rows from rows 0, 24 and 48. (In
        // `large_products_cut_in_blocks_give_the_reference_bits` the split
        // Linear reads f32, and the one reading codes is too small to split.)
        let steps = vec![
            Step::Linear(int8(&mut rng, 20, 300, 0.05)),
            Step::Relu,
            Step::Linear(int8(&mut rng, 300, 70, 0.05)),
        ];
        let x = input(&mut rng, 70 * 20);
        same_as_reference(&steps, &x, 70);
    }

    #[test]
    fn pooling_planes_with_no_pixels_gives_no_codes() {
        // Two samples of 0 x 4 pixels (3 channels) or of 2 x 2 pixels with no
        // channels: nothing to pool, and no chunk of size zero to cut.
        let none: Vec<u8> = Vec::new();
        assert_eq!(pool_codes(&[], 2, (0, 4, 3), 2, 2, (0, 2), 0), none);
        assert_eq!(pool_codes(&[], 2, (2, 2, 0), 2, 2, (1, 1), 0x80), none);
    }

    #[test]
    fn channels_last_codes_become_channels_first_rows_with_a_code_zero_tail() {
        // 2 samples of 2 x 3 pixels x 3 channels (planes of 6, not 4: the
        // tests above only flatten 2 x 2 planes, where h + w = h * w) into rows
        // of 20 bytes, the last 2 the code 0 (the bias).
        let (batch, (h, w, c), stride) = (2, (2, 3, 3), 20);
        let x: Vec<u8> = (0..batch * h * w * c).map(|i| i as u8).collect();
        for bias in [0u8, 0x80] {
            let mut want = vec![bias; batch * stride];
            for s in 0..batch {
                for p in 0..h * w {
                    for ch in 0..c {
                        want[s * stride + ch * h * w + p] = x[s * h * w * c + p * c + ch];
                    }
                }
            }
            // Sample 0's row: channel 0 of pixels 0-5 is bytes 0, 3, .., 15.
            assert_eq!(want[..6], [0, 3, 6, 9, 12, 15]);
            assert_eq!(want[18..20], [bias, bias]);
            assert_eq!(hwc_to_rows(&x, batch, (h, w, c), stride, bias), want);
        }
        // No pixels or no channels: rows of the code 0 only.
        assert_eq!(hwc_to_rows(&[], 2, (0, 3, 2), 4, 0x80), [0x80; 8]);
        assert_eq!(hwc_to_rows(&[], 2, (2, 2, 0), 4, 0), [0; 8]);
    }

    #[test]
    fn overlapping_pooling_on_codes_takes_each_windows_own_maximum() {
        // 3 samples x 3 channels of 5 x 7, channels-last, 3 x 3 windows every 2
        // pixels: 2 x 3 maxima a plane. Each window shares a row or a column with
        // the next, so a window read as wide as the stride shows (the tests above
        // pool only with kernel == stride).
        let (batch, (h, w, c), k, stride) = (3, (5, 7, 3), 3, 2);
        let (oh, ow) = ((h - k) / stride + 1, (w - k) / stride + 1);
        assert_eq!((oh, ow), (2, 3));
        // 315 values, distinct within a sample (37 is a unit mod 255), so each
        // window's maximum sits at one pixel only.
        let v: Vec<i8> = (0..batch * h * w * c)
            .map(|i| (((i * 37) % 255) as i32 - 127) as i8)
            .collect();
        let mut want = Vec::new();
        for sample in v.chunks(h * w * c) {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let mut m = i8::MIN;
                        for dy in 0..k {
                            for dx in 0..k {
                                let at = ((oy * stride + dy) * w + ox * stride + dx) * c + ch;
                                m = m.max(sample[at]);
                            }
                        }
                        want.push(m);
                    }
                }
            }
        }
        assert_eq!(want.len(), 54);
        // Sample 0, channel 0, window (0, 0): pixels (0-2, 0-2) at i = 0, 3, 6,
        // 21, 24, 27, 42, 45, 48; the largest i * 37 mod 255 is 246, at i = 48.
        assert_eq!(want[0], 119, "the hand maximum of the first window");
        // Both code biases: the codes as stored, and shifted by 128 for VNNI.
        for bias in [0u8, 0x80] {
            let x: Vec<u8> = v.iter().map(|&q| (q as u8) ^ bias).collect();
            let got: Vec<i8> = pool_codes(&x, batch, (h, w, c), k, stride, (oh, ow), bias)
                .iter()
                .map(|&b| (b ^ bias) as i8)
                .collect();
            assert_eq!(got, want, "bias {bias:#x}");
        }
    }
}
