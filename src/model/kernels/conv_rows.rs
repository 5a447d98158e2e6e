//! Channel-last ("rows") layouts for a convolution stack: a stride-1, unpadded
//! convolution whose input is stored `[h*w, c]` (one row of `c` channels per
//! pixel) is a sum of `k` products over overlapping row windows, with no im2col
//! matrix (`conv.rs` uses it for such a stage fed by an unpooled one).
//!
//! Layout: for input `[h, w, c]` and kernel `k` the product's rows are the
//! "full-width" output positions `r = oy*w + ox`, `ox < w`, of which only
//! `ox < ow = w - k + 1` are outputs; `rows = (oh - 1)*w + ow` of them, so no row
//! reads past the image. Row `r`'s taps for kernel row `ky` are the `k*c`
//! contiguous values from `(r + ky*w)*c`, in `(kx, c)` order; the weight is
//! packed `[(ky, kx, c), o]` to match ([`pack_weight`]). Each kernel here is
//! tested against the planar (`[c, h, w]`) definition at every SIMD level.

use super::activation::leveled_kernel;
use super::im2col::ConvGeometry;
use super::pool::{pooled_hw, takes};

/// Full-width rows of a stride-1, unpadded convolution: `(oh - 1)*w + ow`.
pub(crate) fn full_rows(g: &ConvGeometry) -> usize {
    let (oh, ow) = g.out_hw();
    (oh - 1) * g.w + ow
}

/// `[o, c, k, k]` -> `[(ky, kx, c), o]`.
pub(crate) fn pack_weight(w: &[f32], o: usize, c: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for oi in 0..o {
        for ci in 0..c {
            for t in 0..k * k {
                out[(t * c + ci) * o + oi] = w[(oi * c + ci) * k * k + t];
            }
        }
    }
    out
}

/// The inverse of [`pack_weight`]: `[(ky, kx, c), o]` -> `[o, c, k, k]`.
pub(crate) fn unpack_weight(wp: &[f32], o: usize, c: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; wp.len()];
    for oi in 0..o {
        for ci in 0..c {
            for t in 0..k * k {
                out[(oi * c + ci) * k * k + t] = wp[(t * c + ci) * o + oi];
            }
        }
    }
    out
}

/// Pools full-width rows `y [rows, o]` (plane `[oh, ow]`, rows `w` apart) with
/// `(window, stride)` into planes `out [o, ph, pw]`, recording in `arg` the row
/// of each maximum; the same choice as `pool::pool_plane` (first maximum in
/// row-major window order, NaN wins).
pub(crate) fn pool_rows(
    y: &[f32],
    o: usize,
    (oh, ow): (usize, usize),
    w: usize,
    window: (usize, usize),
    out: &mut [f32],
    arg: &mut [u32],
) {
    pool_rows_at(
        crate::util::simd::level(),
        y,
        o,
        (oh, ow, w),
        window,
        out,
        arg,
    );
}

leveled_kernel! {
    /// [`pool_rows`] at a given SIMD level (tests force each one); `ohw` is
    /// `(oh, ow, w)`. Vectorised over the channels.
    pub(crate) fn pool_rows_at(
        y: &[f32],
        o: usize,
        ohw: (usize, usize, usize),
        window: (usize, usize),
        out: &mut [f32],
        arg: &mut [u32],
    ) {
        let (oh, ow, w) = ohw;
        let (k, s) = window;
        let (ph, pw) = pooled_hw((oh, ow), window);
        let pp = ph * pw;
        let mut best = vec![0f32; o];
        let mut at = vec![0u32; o];
        for py in 0..ph {
            for px in 0..pw {
                let r0 = py * s * w + px * s;
                best.copy_from_slice(&y[r0 * o..(r0 + 1) * o]);
                at.fill(r0 as u32);
                for ky in 0..k {
                    for kx in 0..k {
                        let r = r0 + ky * w + kx;
                        if r == r0 {
                            continue;
                        }
                        let row = &y[r * o..(r + 1) * o];
                        for ((b, a), &v) in best.iter_mut().zip(at.iter_mut()).zip(row) {
                            let t = takes(v, *b);
                            *b = if t { v } else { *b };
                            *a = if t { r as u32 } else { *a };
                        }
                    }
                }
                let j = py * pw + px;
                for (ch, (&b, &a)) in best.iter().zip(&at).enumerate() {
                    out[ch * pp + j] = b;
                    arg[ch * pp + j] = a;
                }
            }
        }
    }
}

leveled_kernel! {
    /// Full-width rows `y [rows, o]` (plane `[oh, ow]`, rows `w` apart) as planes
    /// `out [o, oh, ow]`; `ohw` is `(oh, ow, w)`.
    pub(crate) fn rows_to_planes_at(y: &[f32], o: usize, ohw: (usize, usize, usize), out: &mut [f32]) {
        let (oh, ow, w) = ohw;
        let p = oh * ow;
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &y[(oy * w + ox) * o..(oy * w + ox + 1) * o];
                for (ch, &v) in row.iter().enumerate() {
                    out[ch * p + oy * ow + ox] = v;
                }
            }
        }
    }
}

/// [`rows_to_planes_at`] at the process's SIMD level.
pub(crate) fn rows_to_planes(y: &[f32], o: usize, ohw: (usize, usize, usize), out: &mut [f32]) {
    rows_to_planes_at(crate::util::simd::level(), y, o, ohw, out);
}

leveled_kernel! {
    /// Adds the column gradient `dcols [rows, (ky, kx, c)]` back onto the
    /// image gradient `dx [h*w, c]` (not cleared); rows past `ow` in each
    /// output row are not outputs and are skipped.
    pub(crate) fn col2im_rows_at(g: &ConvGeometry, dcols: &[f32], dx: &mut [f32]) {
        let (oh, ow) = g.out_hw();
        let kc = g.k * g.c;
        let taps = g.k * kc;
        for oy in 0..oh {
            for ox in 0..ow {
                let r = oy * g.w + ox;
                let src = &dcols[r * taps..(r + 1) * taps];
                for ky in 0..g.k {
                    let at = (r + ky * g.w) * g.c;
                    for (d, &v) in dx[at..at + kc].iter_mut().zip(&src[ky * kc..(ky + 1) * kc]) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// [`col2im_rows_at`] at the process's SIMD level.
pub(crate) fn col2im_rows(g: &ConvGeometry, dcols: &[f32], dx: &mut [f32]) {
    col2im_rows_at(crate::util::simd::level(), g, dcols, dx);
}

leveled_kernel! {
    /// `sums[j] += sum over rows of m[row, j]`, `m [rows, sums.len()]`.
    pub(crate) fn add_col_sums_at(m: &[f32], sums: &mut [f32]) {
        let n = sums.len().max(1);
        for row in m.chunks_exact(n) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
}

/// [`add_col_sums_at`] at the process's SIMD level.
pub(crate) fn add_col_sums(m: &[f32], sums: &mut [f32]) {
    add_col_sums_at(crate::util::simd::level(), m, sums);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::pool::pool_plane;
    use crate::util::simd::Level;

    const LEVELS: [Level; 3] = [Level::Avx512, Level::Avx2, Level::Portable];

    /// Planes `[o, oh, ow]` stored as full-width rows `[rows, o]` (rows `w`
    /// apart; the columns past `ow` hold NaN, which no kernel may read).
    fn as_rows(planes: &[f32], o: usize, (oh, ow): (usize, usize), w: usize) -> Vec<f32> {
        let rows = (oh - 1) * w + ow;
        let mut y = vec![f32::NAN; rows * o];
        for ch in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    y[(oy * w + ox) * o + ch] = planes[ch * oh * ow + oy * ow + ox];
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // Few distinct values, so windows hold ties.
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 27) as f32 - 8.0)
            .collect()
    }

    /// Each pooled value and its maximum's position equal `pool_plane`'s on the
    /// same planes (ties, NaN, overlapping and odd windows), at every level.
    #[test]
    fn pool_rows_matches_pool_plane() {
        // (o, oh, ow, w, window, stride)
        let cases = [
            (3, 6, 6, 8, 2, 2),
            (17, 5, 7, 9, 2, 2),
            (1, 4, 4, 4, 2, 2),
            (5, 7, 6, 7, 3, 2),
            (4, 5, 5, 6, 2, 1),
            (64, 24, 24, 26, 2, 2),
        ];
        for (o, oh, ow, w, k, s) in cases {
            let mut planes = values(o * oh * ow, 7);
            planes[3] = f32::NAN;
            let y = as_rows(&planes, o, (oh, ow), w);
            let (ph, pw) = pooled_hw((oh, ow), (k, s));
            let (mut want, mut want_arg) = (vec![0f32; o * ph * pw], vec![0u32; o * ph * pw]);
            for ch in 0..o {
                let q = ph * pw;
                pool_plane(
                    &planes[ch * oh * ow..(ch + 1) * oh * ow],
                    (oh, ow),
                    (k, s),
                    &mut want[ch * q..(ch + 1) * q],
                    &mut want_arg[ch * q..(ch + 1) * q],
                );
            }
            for level in LEVELS {
                let case = format!("o{o} {oh}x{ow} in {w} window {k}/{s} at {level:?}");
                let (mut got, mut arg) = (vec![0f32; want.len()], vec![0u32; want.len()]);
                pool_rows_at(level, &y, o, (oh, ow, w), (k, s), &mut got, &mut arg);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(a == b || (a.is_nan() && b.is_nan()), "{case}: value {i}");
                }
                // The row of each maximum is the plane position pool_plane found.
                let rows: Vec<u32> = want_arg
                    .iter()
                    .map(|&a| ((a as usize / ow) * w + a as usize % ow) as u32)
                    .collect();
                assert_eq!(arg, rows, "{case}: argmax");
            }
        }
    }

    #[test]
    fn rows_to_planes_and_col_sums_match_the_definition() {
        for (o, oh, ow, w) in [(3, 4, 5, 7), (1, 1, 1, 1), (33, 6, 6, 8)] {
            let planes = values(o * oh * ow, 3);
            let y = as_rows(&planes, o, (oh, ow), w);
            for level in LEVELS {
                let mut back = vec![0f32; planes.len()];
                rows_to_planes_at(level, &y, o, (oh, ow, w), &mut back);
                assert_eq!(back, planes, "o{o} {oh}x{ow} in {w} at {level:?}");
                let dense = as_rows(&planes, o, (oh, ow), ow);
                let mut sums = vec![1f32; o];
                add_col_sums_at(level, &dense, &mut sums);
                for (ch, s) in sums.iter().enumerate() {
                    let want: f32 =
                        1.0 + planes[ch * oh * ow..(ch + 1) * oh * ow].iter().sum::<f32>();
                    assert!((s - want).abs() < 1e-4, "o{o} channel {ch} at {level:?}");
                }
            }
        }
    }

    /// col2im over rows adds every tap's gradient onto the pixel the tap read,
    /// as the planar definition does (odd sizes, k 1 to 3, one output row).
    #[test]
    fn col2im_rows_matches_the_definition() {
        // (c, h, w, k)
        for (c, h, w, k) in [
            (2, 5, 6, 3),
            (1, 3, 3, 3),
            (3, 4, 7, 2),
            (5, 3, 9, 1),
            (32, 26, 26, 3),
        ] {
            let g = ConvGeometry {
                c,
                h,
                w,
                k,
                stride: 1,
                pad: 0,
            };
            let (oh, ow) = g.out_hw();
            let rows = full_rows(&g);
            let taps = g.taps();
            let mut dcols = values(rows * taps, 5);
            // Rows that are not outputs must not be read.
            for oy in 0..oh {
                for ox in ow..w {
                    let r = oy * w + ox;
                    if r < rows {
                        dcols[r * taps..(r + 1) * taps].fill(f32::NAN);
                    }
                }
            }
            let mut want = vec![0.5f32; h * w * c];
            for oy in 0..oh {
                for ox in 0..ow {
                    let r = oy * w + ox;
                    for ky in 0..k {
                        for kx in 0..k {
                            for ci in 0..c {
                                let pix = (oy + ky) * w + ox + kx;
                                want[pix * c + ci] += dcols[r * taps + (ky * k + kx) * c + ci];
                            }
                        }
                    }
                }
            }
            for level in LEVELS {
                let mut got = vec![0.5f32; h * w * c];
                col2im_rows_at(level, &g, &dcols, &mut got);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() < 1e-4, "{g:?} at {level:?}: value {i}");
                }
            }
        }
    }

    #[test]
    fn packed_weight_round_trips() {
        let (o, c, k) = (3, 2, 3);
        let w: Vec<f32> = (0..o * c * k * k).map(|i| i as f32).collect();
        let wp = pack_weight(&w, o, c, k);
        // Tap (ky 1, kx 2) of input channel 1 for output 2.
        assert_eq!(
            wp[((3 + 2) * c + 1) * o + 2],
            w[((2 * c + 1) * k + 1) * k + 2]
        );
        assert_eq!(unpack_weight(&wp, o, c, k), w);
    }
}
