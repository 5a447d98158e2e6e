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

    /// `rows` (each `inputs` values, already quantised and padded to `kp`)
    /// times the weights, rescaled: `[rows][outputs]` f32.
    fn product(&self, xq: &[i16], kernel: Int8Kernel) -> Vec<f32> {
        let kp = padded(self.inputs);
        let rows = xq.len() / kp.max(1);
        let mut acc = vec![0i32; rows * self.outputs];
        kernel::gemm(kernel, xq, &self.packed, &mut acc);
        let mut out = vec![0f32; acc.len()];
        for (o_row, a_row) in out.chunks_mut(self.outputs).zip(acc.chunks(self.outputs)) {
            for ((y, &a), (&s, &b)) in o_row
                .iter_mut()
                .zip(a_row)
                .zip(self.scales.iter().zip(&self.bias))
            {
                *y = a as f32 * self.input_scale * s + b;
            }
        }
        out
    }

    /// `src / input_scale` rounded half away from zero, clamped to ±127, into
    /// `dst`. Written so it vectorises (`f32::round` is a libm call on baseline
    /// x86-64 and took more time than the product): `max`/`min` send NaN to
    /// -127, so the value is finite and within ±127.5 before the conversion.
    fn quantise_into(&self, src: &[f32], dst: &mut [i16]) {
        let inv = 1.0 / self.input_scale;
        for (d, &x) in dst.iter_mut().zip(src) {
            // Not `clamp`: it keeps NaN, which the conversion below must not see.
            #[allow(clippy::manual_clamp)]
            let y = (x * inv).max(-127.0).min(127.0);
            // SAFETY: y is finite and |y + 0.5| <= 127.5 (see above).
            *d = unsafe { (y + 0.5f32.copysign(y)).to_int_unchecked::<i32>() } as i16;
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

/// A convolution as one int8 product over every sample's patches: rows are
/// (sample, output pixel), columns (channel, ky, kx) as the weights are laid out.
fn conv(w: &Int8Weights, g: &ConvGeom, x: &[f32], batch: usize, kernel: Int8Kernel) -> Vec<f32> {
    let &ConvGeom {
        channels,
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
    let mut xq = vec![0i16; x.len()];
    w.quantise_into(x, &mut xq);
    let mut patches = vec![0i16; batch * pixels * kp];
    for (b, sample) in xq.chunks(channels * plane).take(batch).enumerate() {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let row = &mut patches[(b * pixels + oy * out_w + ox) * kp..][..kp];
                let mut col = 0;
                for c in 0..channels {
                    for ky in 0..k {
                        // Padding shifts the window; rows outside stay 0.
                        let iy = (oy * stride + ky).wrapping_sub(padding);
                        for kx in 0..k {
                            let ix = (ox * stride + kx).wrapping_sub(padding);
                            if iy < height && ix < width {
                                row[col] = sample[c * plane + iy * width + ix];
                            }
                            col += 1;
                        }
                    }
                }
            }
        }
    }
    let per_pixel = w.product(&patches, kernel);
    // [sample][pixel][channel] -> [sample][channel][pixel].
    let mut out = vec![0f32; batch * w.outputs * pixels];
    for b in 0..batch {
        for p in 0..pixels {
            let src = &per_pixel[(b * pixels + p) * w.outputs..][..w.outputs];
            for (o, &v) in src.iter().enumerate() {
                out[(b * w.outputs + o) * pixels + p] = v;
            }
        }
    }
    out
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
