//! im2col and its adjoint col2im: the data movement that turns a convolution
//! into one matrix product per image.
//!
//! Layout: one image `[c, h, w]` becomes columns `[c*k*k, oh*ow]` — one row per
//! kernel tap, one column per output position — so that the convolution of that
//! image is `weight[o, c*k*k] @ columns`, already in the `[o, oh*ow]` (NCHW) order
//! of the output. Taps that fall into the padding read as zero; col2im adds each
//! column entry back onto the pixel it was read from and drops padding entries.

use super::activation::{leveled_kernel, simd_kernel};

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
            (self.h + 2 * self.pad).saturating_sub(self.k) / self.stride + 1,
            (self.w + 2 * self.pad).saturating_sub(self.k) / self.stride + 1,
        )
    }

    /// Kernel taps per output value: `c*k*k`.
    pub(crate) fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output positions per image: `oh*ow`.
    pub(crate) fn positions(&self) -> usize {
        let (oh, ow) = self.out_hw();
        oh * ow
    }

    /// Values per input image: `c*h*w`.
    pub(crate) fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// For tap offset `kx` and output columns `0..ow`: the range of output columns
    /// whose input column lies inside the image (the rest read padding).
    fn valid_ox(&self, kx: usize, ow: usize) -> (usize, usize) {
        let s = self.stride;
        // ix = ox*s + kx - pad must satisfy 0 <= ix < w.
        let lo = self.pad.saturating_sub(kx).div_ceil(s);
        let hi = if self.w + self.pad > kx {
            ((self.w + self.pad - kx - 1) / s + 1).min(ow)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// Fills `cols [taps, oh*ow]` from one image `[c, h, w]`, at the process's
/// SIMD level.
pub(crate) fn im2col(g: &ConvGeometry, img: &[f32], cols: &mut [f32]) {
    im2col_at(crate::util::simd::level(), g, img, cols);
}

/// Copies `src` into `dst` (same length) in 8-value blocks the compiler keeps
/// inline: im2col's rows are short (24 values for the MNIST CNN), and a library
/// call per row cost as much as the copy.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let (db, dr) = dst.as_chunks_mut::<8>();
    let (sb, sr) = src.as_chunks::<8>();
    for (d, s) in db.iter_mut().zip(sb) {
        *d = *s;
    }
    for (d, s) in dr.iter_mut().zip(sr) {
        *d = *s;
    }
}

leveled_kernel! {
    /// [`im2col`] at a given SIMD level (tests force each one).
    pub(crate) fn im2col_at(g: &ConvGeometry, img: &[f32], cols: &mut [f32]) {
        let (oh, ow) = g.out_hw();
        let p = oh * ow;
        let mut t = 0;
        for ci in 0..g.c {
            let plane = &img[ci * g.h * g.w..(ci + 1) * g.h * g.w];
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let row = &mut cols[t * p..(t + 1) * p];
                    let (lo, hi) = g.valid_ox(kx, ow);
                    for oy in 0..oh {
                        let out = &mut row[oy * ow..(oy + 1) * ow];
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy as usize >= g.h {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                        // Only padded geometries have edges to clear.
                        if lo > 0 || hi < ow {
                            out[..lo].fill(0.0);
                            out[hi..].fill(0.0);
                        }
                        if g.stride == 1 {
                            let ix0 = lo + kx - g.pad;
                            copy_short(&mut out[lo..hi], &src[ix0..ix0 + hi - lo]);
                        } else {
                            for (ox, o) in out.iter_mut().enumerate().take(hi).skip(lo) {
                                *o = src[ox * g.stride + kx - g.pad];
                            }
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}

simd_kernel! {
    /// Adds `cols [taps, oh*ow]` back onto one image gradient `[c, h, w]` (not cleared).
    pub(crate) fn col2im(g: &ConvGeometry, cols: &[f32], img: &mut [f32]) {
        let (oh, ow) = g.out_hw();
        let p = oh * ow;
        let mut t = 0;
        for ci in 0..g.c {
            let plane = &mut img[ci * g.h * g.w..(ci + 1) * g.h * g.w];
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let row = &cols[t * p..(t + 1) * p];
                    let (lo, hi) = g.valid_ox(kx, ow);
                    for oy in 0..oh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy as usize >= g.h {
                            continue;
                        }
                        let src = &row[oy * ow..(oy + 1) * ow];
                        let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                        if g.stride == 1 {
                            // Contiguous on both sides: a vectorised add.
                            let ix0 = lo + kx - g.pad;
                            for (d, v) in dst[ix0..ix0 + hi - lo].iter_mut().zip(&src[lo..hi]) {
                                *d += v;
                            }
                        } else {
                            for ox in lo..hi {
                                dst[ox * g.stride + kx - g.pad] += src[ox];
                            }
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::simd::Level;

    /// The obvious definition, one value at a time.
    fn naive_im2col(g: &ConvGeometry, img: &[f32]) -> Vec<f32> {
        let (oh, ow) = g.out_hw();
        let mut cols = vec![0.0; g.taps() * oh * ow];
        for ci in 0..g.c {
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let t = (ci * g.k + ky) * g.k + kx;
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                cols[t * oh * ow + oy * ow + ox] =
                                    img[(ci * g.h + iy as usize) * g.w + ix as usize];
                            }
                        }
                    }
                }
            }
        }
        cols
    }

    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() {
        // (c, h, w, k, stride, pad): odd sizes, strides that do not tile, big padding.
        let cases = [
            (1, 5, 5, 3, 1, 0),
            (2, 7, 9, 3, 2, 1),
            (3, 5, 4, 5, 1, 2),
            (1, 6, 7, 2, 3, 0),
            (2, 4, 4, 3, 2, 2),
            (1, 3, 3, 3, 1, 0),
            // Wider rows: vectorised adds and their remainders.
            (2, 12, 30, 3, 1, 1),
            (1, 9, 20, 3, 1, 0),
            (1, 4, 10, 3, 1, 0),
            // The MNIST CNN's second layer: 8-value blocks and no remainder, and
            // an odd width with one.
            (3, 26, 26, 3, 1, 0),
            (2, 13, 29, 3, 1, 0),
        ];
        for (c, h, w, k, stride, pad) in cases {
            let g = ConvGeometry {
                c,
                h,
                w,
                k,
                stride,
                pad,
            };
            let img: Vec<f32> = (0..g.image_len()).map(|i| i as f32 + 1.0).collect();
            let mut cols = vec![f32::NAN; g.taps() * g.positions()];
            for level in [Level::Avx512, Level::Avx2, Level::Portable] {
                cols.fill(f32::NAN);
                im2col_at(level, &g, &img, &mut cols);
                assert_eq!(cols, naive_im2col(&g, &img), "im2col {g:?} at {level:?}");
            }
            // Adjoint: <im2col(x), y> == <x, col2im(y)> for any y.
            let y: Vec<f32> = (0..cols.len()).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut back = vec![0.0; g.image_len()];
            col2im(&g, &y, &mut back);
            let lhs: f32 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f32 = img.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!(
                (lhs - rhs).abs() < 1e-2 * lhs.abs().max(1.0),
                "adjoint {g:?}"
            );
        }
    }
}
