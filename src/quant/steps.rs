//! The layers of a quantised model and how each runs over a batch held as one
//! flat f32 buffer (`batch` samples of `len` values, channels-first).
//!
//! Linear and Conv2d run on int8: the input is quantised per tensor with the
//! layer's calibrated scale (round(x / s), clamped to ±127) and widened to i16,
//! multiplied with the per-output-channel int8 weights in i32 ([`kernel::gemm`]),
//! then rescaled to f32 and the bias added. A convolution is the same product
//! over its patches (im2col of the quantised input; padding is a quantised 0).
//! Max pooling, batch norm (as its inference-time affine map) and activations
//! run in f32.
//!
//! [`Step::run`] is the reference, one layer at a time (calibration uses it);
//! the model's forward pass runs the same steps fused (`super::fused`), which
//! must give the same bits.

use rayon::prelude::*;

use super::kernel::{self, Int8Kernel, Packed, padded};

/// The int8 part of a Linear or Conv2d layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Int8Weights {
    /// Values per output (Linear: inputs; Conv2d: in_channels * kernel²).
    pub inputs: usize,
    pub outputs: usize,
    /// `[outputs][inputs]`, row-major.
    pub weights: Vec<i8>,
    /// One per output.
    pub scales: Vec<f32>,
    pub bias: Vec<f32>,
    /// The input's scale, calibrated.
    pub input_scale: f32,
    /// The weights packed for the kernels.
    pub packed: Packed,
}

impl Int8Weights {
    /// Quantises f32 weights `[outputs][inputs]` per output row (symmetric:
    /// scale = max |w| / 127).
    pub fn quantise(w: &[f32], inputs: usize, bias: Vec<f32>) -> Self {
        let mut weights = Vec::with_capacity(w.len());
        let mut scales = Vec::new();
        for row in w.chunks(inputs.max(1)) {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            weights.extend(
                row.iter()
                    .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
            );
            scales.push(scale);
        }
        Self::from_parts(inputs, weights, scales, bias, 1.0)
    }

    /// Assembles a layer from its stored parts.
    pub fn from_parts(
        inputs: usize,
        weights: Vec<i8>,
        scales: Vec<f32>,
        bias: Vec<f32>,
        input_scale: f32,
    ) -> Self {
        let outputs = scales.len();
        let packed = Packed::new(&weights, outputs, inputs);
        Self {
            inputs,
            outputs,
            weights,
            scales,
            bias,
            input_scale,
            packed,
        }
    }

    /// For a convolution over `channels` with a `k` x `k` window: packs the
    /// weights with their columns in (ky, kx, channel) order, to match patches
    /// taken from a channels-last input. `weights` keep the file's order.
    pub fn channels_last(mut self, channels: usize, k: usize) -> Self {
        let mut permuted = vec![0i8; self.weights.len()];
        for (dst, src) in permuted
            .chunks_mut(self.inputs.max(1))
            .zip(self.weights.chunks(self.inputs.max(1)))
        {
            for ch in 0..channels {
                for ky in 0..k {
                    for kx in 0..k {
                        dst[(ky * k + kx) * channels + ch] = src[(ch * k + ky) * k + kx];
                    }
                }
            }
        }
        self.packed = Packed::new(&permuted, self.outputs, self.inputs);
        self
    }

    /// `rows` (each `inputs` values, already quantised and padded to `kp`)
    /// times the weights, rescaled: `[rows][outputs]` f32.
    fn product(&self, xq: &[i16], kernel: Int8Kernel) -> Vec<f32> {
        let kp = padded(self.inputs);
        let rows = xq.len() / kp.max(1);
        let mut acc = vec![0i32; rows * self.outputs];
        kernel::gemm(kernel, xq, &self.packed, &mut acc);
        let mut out = vec![0f32; acc.len()];
        let n = self.outputs.max(1);
        // Rows in parallel: at batch 64 a convolution rescales millions of values.
        out.par_chunks_mut(n * 64)
            .zip(acc.par_chunks(n * 64))
            .for_each(|(o_rows, a_rows)| {
                for (o_row, a_row) in o_rows.chunks_mut(n).zip(a_rows.chunks(n)) {
                    for ((y, &a), (&s, &b)) in o_row
                        .iter_mut()
                        .zip(a_row)
                        .zip(self.scales.iter().zip(&self.bias))
                    {
                        *y = a as f32 * self.input_scale * s + b;
                    }
                }
            });
        out
    }

    /// `src / input_scale` rounded half away from zero, clamped to ±127, into
    /// `dst` ([`kernel::quantise`], which the fused path uses too).
    fn quantise_into(&self, src: &[f32], dst: &mut [i16]) {
        let inv = 1.0 / self.input_scale;
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = kernel::quantise(x, inv) as i16;
        }
    }
}

/// Where a convolution's windows fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// One layer of the quantised model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Linear(Int8Weights),
    Conv(Int8Weights, ConvGeom),
    /// Max over `kernel`² windows every `stride` pixels, per channel.
    MaxPool {
        channels: usize,
        height: usize,
        width: usize,
        kernel: usize,
        stride: usize,
        out_h: usize,
        out_w: usize,
    },
    /// Batch norm at inference: `x * scale[c] + shift[c]`, `per` values a channel.
    Affine {
        per: usize,
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
    /// Flatten and Dropout: nothing to do on flat rows.
    Identity,
}

impl Step {
    /// The int8 weights, if this step has any.
    pub fn int8(&self) -> Option<&Int8Weights> {
        match self {
            Self::Linear(w) | Self::Conv(w, _) => Some(w),
            _ => None,
        }
    }

    pub fn int8_mut(&mut self) -> Option<&mut Int8Weights> {
        match self {
            Self::Linear(w) | Self::Conv(w, _) => Some(w),
            _ => None,
        }
    }

    /// Runs over `batch` samples held in `x`.
    pub fn run(&self, x: &[f32], batch: usize, kernel: Int8Kernel) -> Vec<f32> {
        match self {
            Self::Linear(w) => {
                let kp = padded(w.inputs);
                let mut xq = vec![0i16; batch * kp];
                for (dst, src) in xq.chunks_mut(kp).zip(x.chunks(w.inputs.max(1))) {
                    w.quantise_into(src, dst);
                }
                w.product(&xq, kernel)
            }
            Self::Conv(w, g) => conv(w, g, x, batch, kernel),
            &Self::MaxPool {
                channels,
                height,
                width,
                kernel: k,
                stride,
                out_h,
                out_w,
            } => {
                let mut out = Vec::with_capacity(batch * channels * out_h * out_w);
                for plane in x.chunks(height * width).take(batch * channels) {
                    for oy in 0..out_h {
                        for ox in 0..out_w {
                            let mut m = f32::NEG_INFINITY;
                            for dy in 0..k {
                                let row = (oy * stride + dy) * width + ox * stride;
                                for &v in &plane[row..row + k] {
                                    m = m.max(v);
                                }
                            }
                            out.push(m);
                        }
                    }
                }
                out
            }
            Self::Affine { per, scale, shift } => {
                let channels = scale.len().max(1);
                x.chunks(*per.max(&1))
                    .enumerate()
                    .flat_map(|(i, c)| {
                        let (s, b) = (scale[i % channels], shift[i % channels]);
                        c.iter().map(move |v| v * s + b)
                    })
                    .collect()
            }
            Self::Relu => x.iter().map(|v| v.max(0.0)).collect(),
            Self::Tanh => x.iter().map(|v| v.tanh()).collect(),
            Self::Sigmoid => x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
            Self::Gelu => x
                .iter()
                .map(|&v| 0.5 * v * (1.0 + erf(v / std::f32::consts::SQRT_2)))
                .collect(),
            Self::Identity => x.to_vec(),
        }
    }
}

/// A convolution as an int8 product per sample over its patches: rows are
/// output pixels, columns (channel, ky, kx) as the weights are laid out. Each
/// sample's patches, sums and outputs stay in one thread's cache (samples in
/// parallel; at batch 1 the product itself is split over the threads).
fn conv(w: &Int8Weights, g: &ConvGeom, x: &[f32], batch: usize, kernel: Int8Kernel) -> Vec<f32> {
    let per_in = g.channels * g.height * g.width;
    let per_out = w.outputs * g.out_h * g.out_w;
    let mut out = vec![0f32; batch * per_out];
    if batch == 1 {
        conv_sample(w, g, &x[..per_in.min(x.len())], &mut out, kernel, true);
    } else {
        out.par_chunks_mut(per_out)
            .zip(x.par_chunks(per_in))
            .for_each(|(dst, sample)| conv_sample(w, g, sample, dst, kernel, false));
    }
    out
}

/// One sample: quantise into channels-last order, im2col, product, then
/// rescale into `dst` laid out `[channel][pixel]`. Channels-last makes each
/// window row (kx, c) one contiguous run, copied at once; the packed weights'
/// columns are in the same (ky, kx, c) order ([`Int8Weights::channels_last`]).
fn conv_sample(
    w: &Int8Weights,
    g: &ConvGeom,
    x: &[f32],
    dst: &mut [f32],
    kernel: Int8Kernel,
    parallel: bool,
) {
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
    let kp = padded(w.inputs);
    let plane = height * width;
    let pixels = out_h * out_w;
    let mut planar = vec![0i16; x.len()];
    w.quantise_into(x, &mut planar);
    let mut hwc = vec![0i16; plane * c];
    for (ch, src) in planar.chunks(plane).enumerate() {
        for (i, &v) in src.iter().enumerate() {
            hwc[i * c + ch] = v;
        }
    }
    let mut patches = vec![0i16; pixels * kp];
    for (i, row) in patches.chunks_mut(kp).enumerate() {
        let (oy, ox) = (i / out_w, i % out_w);
        let x0 = ox * stride;
        for ky in 0..k {
            // Padding shifts the window; what falls outside stays 0.
            let iy = (oy * stride + ky).wrapping_sub(padding);
            if iy >= height {
                continue;
            }
            let src = &hwc[iy * width * c..(iy + 1) * width * c];
            let dst = &mut row[ky * k * c..(ky + 1) * k * c];
            if x0 >= padding && x0 - padding + k <= width {
                dst.copy_from_slice(&src[(x0 - padding) * c..(x0 - padding + k) * c]);
            } else {
                for (kx, d) in dst.chunks_mut(c).enumerate() {
                    let ix = (x0 + kx).wrapping_sub(padding);
                    if ix < width {
                        d.copy_from_slice(&src[ix * c..(ix + 1) * c]);
                    }
                }
            }
        }
    }
    let mut acc = vec![0i32; pixels * w.outputs];
    if parallel {
        kernel::gemm(kernel, &patches, &w.packed, &mut acc);
    } else {
        kernel::gemm_serial(kernel, &patches, &w.packed, &mut acc);
    }
    for (p, sums) in acc.chunks(w.outputs).enumerate() {
        for (o, (&a, (&s, &b))) in sums.iter().zip(w.scales.iter().zip(&w.bias)).enumerate() {
            dst[o * pixels + p] = a as f32 * w.input_scale * s + b;
        }
    }
}

/// erf through a Chebyshev fit of erfc (fractional error below 1.2e-7).
fn erf(x: f32) -> f32 {
    let x = f64::from(x);
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = 1.0
        - t * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layer weights whose codes are known by hand: row 0 has max |w| = 127, so
    /// its scale is exactly 1 and each code is the weight rounded half away from
    /// zero; row 1 is the same row halved (scale 0.5); row 2 is all zeros.
    fn known() -> Int8Weights {
        let row = [127.0f32, 2.5, -2.5, 0.49, 0.51, -3.7, 100.2, -127.0];
        let half: Vec<f32> = row.iter().map(|v| v / 2.0).collect();
        let w: Vec<f32> = row.iter().chain(&half).chain(&[0.0; 8]).copied().collect();
        Int8Weights::quantise(&w, 8, vec![0.5, -1.0, 0.25])
    }

    #[test]
    fn weights_quantise_to_the_exact_rounded_codes() {
        let q = known();
        let codes = [127i8, 3, -3, 0, 1, -4, 100, -127];
        let want: Vec<i8> = codes.iter().chain(&codes).chain(&[0; 8]).copied().collect();
        assert_eq!(q.weights, want, "rounded half away from zero, per row");
        assert_eq!(q.scales, [1.0, 0.5, 1.0], "max |w| / 127; 1 for a zero row");
        assert_eq!((q.inputs, q.outputs), (8, 3));
        assert_eq!(q.bias, [0.5, -1.0, 0.25]);
        assert_eq!(q.input_scale, 1.0);
    }

    #[test]
    fn every_weight_is_within_half_a_scale_step_of_its_code() {
        // A fixed pseudo-random spread of weights, 7 rows of 33.
        let mut state = 12345u32;
        let w: Vec<f32> = (0..7 * 33)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 * 6.0 - 3.0
            })
            .collect();
        let q = Int8Weights::quantise(&w, 33, vec![0.0; 7]);
        for (r, (row, codes)) in w.chunks(33).zip(q.weights.chunks(33)).enumerate() {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = q.scales[r];
            assert_eq!(s, max / 127.0, "row {r}: scale");
            assert!(
                codes.iter().any(|&c| c.abs() == 127),
                "row {r}: the largest is ±127"
            );
            for (i, (&v, &c)) in row.iter().zip(codes).enumerate() {
                let err = (f32::from(c) * s - v).abs();
                assert!(
                    err <= s / 2.0 * (1.0 + 1e-5),
                    "row {r} weight {i}: {v} -> code {c} (scale {s}) is off by {err}, over half a step"
                );
            }
        }
    }

    #[test]
    fn inputs_quantise_rounded_half_away_from_zero_and_clamped() {
        let q = Int8Weights::from_parts(1, vec![1], vec![1.0], vec![0.0], 0.5);
        let src = [
            1.2f32,
            -1.3,
            0.25,
            -0.25,
            0.2,
            100.0,
            -100.0,
            f32::NAN,
            f32::INFINITY,
        ];
        let mut dst = [0i16; 9];
        q.quantise_into(&src, &mut dst);
        assert_eq!(dst, [2, -3, 1, -1, 0, 127, -127, -127, 127]);
    }

    /// Every kernel this CPU has, each sample of `x` through `step`.
    fn on_every_kernel(step: &Step, x: &[f32], batch: usize, want: &[f32]) {
        for kernel in Int8Kernel::available() {
            let got = step.run(x, batch, kernel);
            assert_eq!(got, want, "{kernel:?}");
        }
    }

    #[test]
    fn a_linear_step_is_the_integer_product_rescaled_plus_bias() {
        let mut q = known();
        q.input_scale = 0.25;
        let step = Step::Linear(q.clone());
        // Quantised with scale 0.25: codes 4, -2, 1, 0, 8, -1, 3, 2 (then 0..8 reversed).
        let x = [1.0f32, -0.5, 0.3, 0.1, 2.0, -0.2, 0.7, 0.5];
        let xs: Vec<f32> = x
            .iter()
            .chain(&[2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25])
            .copied()
            .collect();
        let xq: [[i32; 8]; 2] = [[4, -2, 1, 0, 8, -1, 3, 2], [8, 7, 6, 5, 4, 3, 2, 1]];
        let mut want = Vec::new();
        for row in &xq {
            for o in 0..3 {
                let acc: i32 = row
                    .iter()
                    .zip(&q.weights[o * 8..(o + 1) * 8])
                    .map(|(&a, &b)| a * i32::from(b))
                    .sum();
                want.push(acc as f32 * 0.25 * q.scales[o] + q.bias[o]);
            }
        }
        // 4*127 - 2*3 - 3 + 0 + 8 + 4 + 3*100 - 2*127 = 557, times 0.25 * 1, plus 0.5.
        assert_eq!(want[0], 139.75, "the hand sum of the first output");
        on_every_kernel(&step, &xs, 2, &want);
        assert_eq!(step.int8(), Some(&q));
    }

    #[test]
    fn a_padded_strided_convolution_matches_the_direct_sum() {
        // 2 channels of 3 x 4, 2 x 2 windows, stride 2, padding 1: 2 x 3 outputs.
        let (c, h, w, k, stride, pad) = (2, 3, 4, 2, 2, 1);
        let (oh, ow) = (
            (h + 2 * pad - k) / stride + 1,
            (w + 2 * pad - k) / stride + 1,
        );
        assert_eq!((oh, ow), (2, 3));
        let weights: Vec<f32> = (0..3 * c * k * k)
            .map(|i| (i as f32 - 11.0) * 0.1)
            .collect();
        let mut q = Int8Weights::quantise(&weights, c * k * k, vec![0.5, -0.25, 1.0]);
        q.input_scale = 0.5;
        let file_order = q.clone();
        let geom = ConvGeom {
            channels: c,
            height: h,
            width: w,
            kernel: k,
            stride,
            padding: pad,
            out_h: oh,
            out_w: ow,
        };
        let step = Step::Conv(q.channels_last(c, k), geom);
        // Integers times the input scale: each quantises to itself exactly.
        let x: Vec<f32> = (0..2 * c * h * w)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.5)
            .collect();
        let mut want = Vec::new();
        for sample in x.chunks(c * h * w) {
            for o in 0..3 {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0i32;
                        for ch in 0..c {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (iy, ix) = (
                                        (oy * stride + ky) as isize - pad as isize,
                                        (ox * stride + kx) as isize - pad as isize,
                                    );
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xq = (sample[ch * h * w + iy as usize * w + ix as usize]
                                        / 0.5) as i32;
                                    let wq =
                                        file_order.weights[o * c * k * k + (ch * k + ky) * k + kx];
                                    acc += xq * i32::from(wq);
                                }
                            }
                        }
                        want.push(acc as f32 * 0.5 * file_order.scales[o] + file_order.bias[o]);
                    }
                }
            }
        }
        // Batch 2 (samples in parallel) and batch 1 (one product split).
        on_every_kernel(&step, &x, 2, &want);
        on_every_kernel(&step, &x[..c * h * w], 1, &want[..3 * oh * ow]);
        assert!(step.int8().is_some());
    }

    #[test]
    fn pooling_affine_and_activations_give_their_exact_values() {
        // One channel of 4 x 4 (twice), 2 x 2 windows every 2: the max of each quarter.
        let plane: Vec<f32> = (0..16).map(|i| ((i * 5) % 16) as f32).collect();
        let pool = Step::MaxPool {
            channels: 1,
            height: 4,
            width: 4,
            kernel: 2,
            stride: 2,
            out_h: 2,
            out_w: 2,
        };
        let two: Vec<f32> = plane
            .iter()
            .chain(plane.iter().map(|v| -v).collect::<Vec<_>>().iter())
            .copied()
            .collect();
        // rows: [0 5 10 15] [4 9 14 3] [8 13 2 7] [12 1 6 11]
        assert_eq!(
            pool.run(&two, 2, Int8Kernel::Portable),
            [9.0, 15.0, 13.0, 11.0, 0.0, -3.0, -1.0, -2.0]
        );
        let affine = Step::Affine {
            per: 2,
            scale: vec![2.0, -1.0],
            shift: vec![0.5, 3.0],
        };
        assert_eq!(
            affine.run(
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                2,
                Int8Kernel::Portable
            ),
            [2.5, 4.5, 0.0, -1.0, 10.5, 12.5, -4.0, -5.0]
        );
        let x = [-2.0f32, -0.5, 0.0, 1.0];
        let close = |step: Step, want: [f32; 4]| {
            let got = step.run(&x, 1, Int8Kernel::Portable);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 2e-6, "{step:?}: got {got:?}, want {want:?}");
            }
        };
        close(Step::Relu, [0.0, 0.0, 0.0, 1.0]);
        close(Step::Tanh, [-0.964_027_6, -0.462_117_16, 0.0, 0.761_594_2]);
        close(
            Step::Sigmoid,
            [0.119_202_92, 0.377_540_67, 0.5, 0.731_058_6],
        );
        close(Step::Gelu, [-0.045_500_26, -0.154_268_5, 0.0, 0.841_344_8]);
        close(Step::Identity, x);
        for (v, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (-1.0, -0.842_700_8),
            (2.0, 0.995_322_3),
        ] {
            assert!(
                (erf(v) - want).abs() < 2e-7,
                "erf({v}) = {}, want {want}",
                erf(v)
            );
        }
        assert!(Step::Relu.int8().is_none());
        let mut lin = Step::Linear(known());
        lin.int8_mut().expect("int8").input_scale = 2.0;
        assert_eq!(lin.int8().map(|w| w.input_scale), Some(2.0));
        assert!(Step::Identity.int8_mut().is_none());
    }

    #[test]
    fn a_linear_batch_past_one_rescale_block_gives_each_sample_its_own_outputs() {
        // 70 samples x 3 outputs: the rescale runs in blocks of 64 rows (192
        // values), so this crosses a block boundary at sample 64.
        let mut q = known();
        q.input_scale = 0.25;
        let step = Step::Linear(q.clone());
        let batch = 70;
        // Codes (r * 5 + j * 3) % 17 - 8, times the input scale: exact.
        let code = |r: usize, j: usize| ((r * 5 + j * 3) % 17) as i32 - 8;
        let x: Vec<f32> = (0..batch * 8)
            .map(|i| code(i / 8, i % 8) as f32 * 0.25)
            .collect();
        let mut want = Vec::new();
        for r in 0..batch {
            for o in 0..3 {
                let acc: i32 = (0..8)
                    .map(|j| code(r, j) * i32::from(q.weights[o * 8 + j]))
                    .sum();
                want.push(acc as f32 * 0.25 * q.scales[o] + q.bias[o]);
            }
        }
        // Sample 0: codes -8 -5 -2 1 4 7 -7 -4 against row 0's codes
        // 127 3 -3 0 1 -4 100 -127: -1016 - 15 + 6 + 0 + 4 - 28 - 700 + 508
        // = -1241, times 0.25, plus 0.5.
        assert_eq!(want[0], -309.75, "the hand sum of sample 0");
        on_every_kernel(&step, &x, batch, &want);
    }

    #[test]
    fn max_pooling_covers_every_channel_of_every_sample() {
        // 3 samples x 2 channels of 2 x 4, 2 x 2 windows every 2: two maxima a plane.
        let pool = Step::MaxPool {
            channels: 2,
            height: 2,
            width: 4,
            kernel: 2,
            stride: 2,
            out_h: 1,
            out_w: 2,
        };
        // Plane p holds p * 10 + [0 7 1 2 / 3 4 6 5]: maxima p * 10 + 7 and p * 10 + 6.
        let x: Vec<f32> = (0..6)
            .flat_map(|p| [0, 7, 1, 2, 3, 4, 6, 5].map(move |v| (p * 10 + v) as f32))
            .collect();
        let want: Vec<f32> = (0..6)
            .flat_map(|p| [(p * 10 + 7) as f32, (p * 10 + 6) as f32])
            .collect();
        assert_eq!(pool.run(&x, 3, Int8Kernel::Portable), want);
    }

    /// The convolution of `x` (`batch` samples, channels-first) summed window
    /// by window from the file-order weights, each input an exact multiple of
    /// the input scale.
    fn direct_conv(w: &Int8Weights, g: &ConvGeom, x: &[f32], batch: usize) -> Vec<f32> {
        let (c, h, wd, k) = (g.channels, g.height, g.width, g.kernel);
        let mut want = Vec::new();
        for sample in x.chunks(c * h * wd).take(batch) {
            for o in 0..w.outputs {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        let mut acc = 0i32;
                        for ch in 0..c {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let v = sample[ch * h * wd + iy as usize * wd + ix as usize];
                                    let wq = w.weights[o * c * k * k + (ch * k + ky) * k + kx];
                                    acc += (v / w.input_scale) as i32 * i32::from(wq);
                                }
                            }
                        }
                        want.push(acc as f32 * w.input_scale * w.scales[o] + w.bias[o]);
                    }
                }
            }
        }
        want
    }

    #[test]
    fn same_size_and_unpadded_convolutions_match_the_direct_sum() {
        // (channels, height, width, kernel, stride, padding): a 3 x 3 window with
        // padding 1 over 3 x 3 (the window's right edge passes the input's at
        // the last column), and windows with no padding at all.
        for (c, h, w, k, stride, pad) in [(3, 3, 3, 3, 1, 1), (2, 4, 5, 2, 1, 0)] {
            let (oh, ow) = (
                (h + 2 * pad - k) / stride + 1,
                (w + 2 * pad - k) / stride + 1,
            );
            let weights: Vec<f32> = (0..2 * c * k * k)
                .map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.05)
                .collect();
            let mut q = Int8Weights::quantise(&weights, c * k * k, vec![0.25, -0.5]);
            q.input_scale = 0.5;
            let geom = ConvGeom {
                channels: c,
                height: h,
                width: w,
                kernel: k,
                stride,
                padding: pad,
                out_h: oh,
                out_w: ow,
            };
            let x: Vec<f32> = (0..2 * c * h * w)
                .map(|i| ((i * 11 % 19) as f32 - 9.0) * 0.5)
                .collect();
            let want = direct_conv(&q, &geom, &x, 2);
            assert_eq!(want.len(), 2 * 2 * oh * ow);
            let step = Step::Conv(q.channels_last(c, k), geom);
            on_every_kernel(&step, &x, 2, &want);
            on_every_kernel(&step, &x[..c * h * w], 1, &want[..2 * oh * ow]);
        }
    }

    #[test]
    fn overlapping_pooling_over_odd_planes_takes_each_windows_own_maximum() {
        // 3 samples x 3 channels of 5 x 7, 3 x 3 windows every 2 pixels (as
        // `MaxPool2d(kernel: 3, stride: Some(2))`): 2 x 3 maxima a plane. Each
        // window shares a row or a column with the next, so one read as wide as
        // the stride instead of the kernel shows (the tests above all have
        // kernel == stride).
        let (batch, c, h, w, k, stride) = (3, 3, 5, 7, 3, 2);
        let (oh, ow) = ((h - k) / stride + 1, (w - k) / stride + 1);
        assert_eq!((oh, ow), (2, 3));
        let pool = Step::MaxPool {
            channels: c,
            height: h,
            width: w,
            kernel: k,
            stride,
            out_h: oh,
            out_w: ow,
        };
        // 315 distinct values (37 is a unit mod the prime 317), so each window's
        // maximum sits at one pixel only and a window read off by one shows.
        let x: Vec<f32> = (0..batch * c * h * w)
            .map(|i| ((i * 37) % 317) as f32 - 158.0)
            .collect();
        let mut want = Vec::new();
        for plane in x.chunks(h * w) {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut m = f32::NEG_INFINITY;
                    for dy in 0..k {
                        for dx in 0..k {
                            m = m.max(plane[(oy * stride + dy) * w + ox * stride + dx]);
                        }
                    }
                    want.push(m);
                }
            }
        }
        assert_eq!(want.len(), 54);
        // Plane 0, window (0, 0): rows 0-2, columns 0-2 hold i = 0-2, 7-9, 14-16;
        // the largest i * 37 mod 317 among them is 8 * 37 = 296.
        assert_eq!(
            want[0],
            296.0 - 158.0,
            "the hand maximum of the first window"
        );
        assert_eq!(pool.run(&x, batch, Int8Kernel::Portable), want);
    }
}
