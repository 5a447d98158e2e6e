//! Direct convolution over channel-last rows: the products of a stride-1
//! unpadded convolution (`conv_rows.rs` layout) computed straight from the image
//! and the weight in registers, with neither im2col columns nor the GEMM
//! library's per-call packing of both operands.
//!
//! Both kernels work on "shifted rows": `a [rows, m]` is read at `offsets.len()`
//! row shifts, and `b [(s, q), j]` holds one `[m, n]` matrix per shift `s`:
//! - [`shifted_product`]: `out[p, j] += sum_s sum_q a[p + offsets[s], q] * b[s, q, j]`
//!   for each position `p` of `runs`. The forward pass is this with `a` the image
//!   `[h*w, c]`, the shifts `ky*w + kx`, `b` the weight packed `[(ky, kx, c), o]`
//!   and `out` the full-width rows; the input gradient is this with `a` the output
//!   gradient padded with zero rows, the shifts reversed, and `b` the weight packed
//!   `[(ky, kx), o, c]` ([`pack_weight_t`]).
//! - [`shifted_weight_grad`]: `db[s, q, j] += sum_p a[p + offsets[s], q] * g[p, j]`
//!   over the positions of `runs` only (the weight gradient, `g` the output
//!   gradient as full-width rows).
//!
//! Contract: the same sums as the definition within float rounding (the order of
//! the additions differs), NaN and infinity propagated, at every SIMD level
//! (tested below against plain loops). AVX-512 and AVX2 hold a tile of outputs in
//! registers: for the product 6 positions x 64 columns, or 12 x 32 or 12 x 16
//! (AVX2, with 16 registers: 6 x 16 or 12 x 8); for the weight gradient 4 taps x
//! 64 columns (AVX2: 4 x 16), over two runs of positions at a time. Widths that
//! are not a multiple of the vector take the portable loops, which are also the
//! aarch64 path.

use super::activation::leveled_kernel;
use crate::util::simd::Level;

/// Output positions: `count` runs of `len` consecutive rows, `stride` rows apart
/// (for a convolution's full-width rows: `oh` runs of `ow`, `w` apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Runs {
    pub count: usize,
    pub len: usize,
    pub stride: usize,
}

impl Runs {
    /// One past the last position (0 when there is none).
    fn end(&self) -> usize {
        if self.count == 0 || self.len == 0 {
            0
        } else {
            (self.count - 1) * self.stride + self.len
        }
    }

    fn check(&self, offsets: &[usize], a: usize, m: usize, rows_n: usize, n: usize) {
        let end = self.end();
        assert!(self.count <= 1 || self.len <= self.stride, "runs overlap");
        if end == 0 || offsets.is_empty() {
            return;
        }
        let reach = offsets.iter().max().copied().unwrap_or(0) + end;
        assert!(a >= reach * m, "shifted rows: a too short");
        assert!(rows_n >= end * n, "shifted rows: rows too short");
    }
}

/// `[(ky, kx, c), o]` (as `conv_rows::pack_weight` packs it) -> `[(ky, kx), o, c]`,
/// the `b` of the input gradient's [`shifted_product`].
pub(crate) fn pack_weight_t(wp: &[f32], kk: usize, c: usize, o: usize) -> Vec<f32> {
    let mut out = vec![0f32; wp.len()];
    for s in 0..kk {
        for ci in 0..c {
            for oi in 0..o {
                out[(s * o + oi) * c + ci] = wp[(s * c + ci) * o + oi];
            }
        }
    }
    out
}

/// `out[p, j] += sum_s sum_q a[(p + offsets[s])*m + q] * b[(s*m + q)*n + j]` for
/// every position `p` of `runs` (`out [rows, n]`; other rows untouched).
pub(crate) fn shifted_product(
    runs: Runs,
    offsets: &[usize],
    (a, m): (&[f32], usize),
    b: &[f32],
    (out, n): (&mut [f32], usize),
) {
    shifted_product_at(
        crate::util::simd::level(),
        runs,
        offsets,
        (a, m),
        b,
        (out, n),
    );
}

/// [`shifted_product`] at a given SIMD level (tests force each one).
pub(crate) fn shifted_product_at(
    level: Level,
    runs: Runs,
    offsets: &[usize],
    (a, m): (&[f32], usize),
    b: &[f32],
    (out, n): (&mut [f32], usize),
) {
    runs.check(offsets, a.len(), m, out.len(), n);
    assert!(
        b.len() >= offsets.len() * m * n,
        "shifted rows: b too short"
    );
    if runs.end() == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (ap, bp, op) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        match level.or_best() {
            // SAFETY (all four): `or_best` gives a level only where the CPU has
            // its features; `check` and the assert above bound every row read
            // and written, and the column blocks divide `n`.
            Level::Avx512 if n % 64 == 0 => {
                return unsafe { avx512::product::<6, 4>(runs, offsets, (ap, m), bp, (op, n)) };
            }
            Level::Avx512 if n % 32 == 0 => {
                return unsafe { avx512::product::<12, 2>(runs, offsets, (ap, m), bp, (op, n)) };
            }
            Level::Avx512 if n % 16 == 0 => {
                return unsafe { avx512::product::<12, 1>(runs, offsets, (ap, m), bp, (op, n)) };
            }
            Level::Avx2 if n % 16 == 0 => {
                return unsafe { avx2::product::<6, 2>(runs, offsets, (ap, m), bp, (op, n)) };
            }
            Level::Avx2 if n % 8 == 0 => {
                return unsafe { avx2::product::<12, 1>(runs, offsets, (ap, m), bp, (op, n)) };
            }
            _ => {}
        }
    }
    product_loops(level, runs, offsets, (a, m), b, (out, n));
}

leveled_kernel! {
    /// [`shifted_product`] as plain loops (vectorised over `j` by the compiler).
    fn product_loops(
        runs: Runs,
        offsets: &[usize],
        am: (&[f32], usize),
        b: &[f32],
        outn: (&mut [f32], usize),
    ) {
        let ((a, m), (out, n)) = (am, outn);
        for run in 0..runs.count {
            for p in run * runs.stride..run * runs.stride + runs.len {
                let row = &mut out[p * n..(p + 1) * n];
                for (s, &off) in offsets.iter().enumerate() {
                    let ar = &a[(p + off) * m..(p + off + 1) * m];
                    for (q, &x) in ar.iter().enumerate() {
                        let br = &b[(s * m + q) * n..(s * m + q + 1) * n];
                        for (o, &w) in row.iter_mut().zip(br) {
                            *o += x * w;
                        }
                    }
                }
            }
        }
    }
}

/// `db[(s*m + q)*n + j] += sum_p a[(p + offsets[s])*m + q] * g[p*n + j]` over the
/// positions `p` of `runs` (rows of `g` outside them are never read).
pub(crate) fn shifted_weight_grad(
    runs: Runs,
    offsets: &[usize],
    (a, m): (&[f32], usize),
    (g, n): (&[f32], usize),
    db: &mut [f32],
) {
    shifted_weight_grad_at(
        crate::util::simd::level(),
        runs,
        offsets,
        (a, m),
        (g, n),
        db,
    );
}

/// [`shifted_weight_grad`] at a given SIMD level (tests force each one).
pub(crate) fn shifted_weight_grad_at(
    level: Level,
    runs: Runs,
    offsets: &[usize],
    (a, m): (&[f32], usize),
    (g, n): (&[f32], usize),
    db: &mut [f32],
) {
    runs.check(offsets, a.len(), m, g.len(), n);
    assert!(
        db.len() >= offsets.len() * m * n,
        "shifted rows: db too short"
    );
    if runs.end() == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (ap, gp, dp) = (a.as_ptr(), g.as_ptr(), db.as_mut_ptr());
        match level.or_best() {
            // SAFETY (all four): as in `shifted_product_at`.
            Level::Avx512 if n % 64 == 0 => {
                return unsafe { avx512::weight_grad::<4>(runs, offsets, (ap, m), (gp, n), dp) };
            }
            Level::Avx512 if n % 32 == 0 => {
                return unsafe { avx512::weight_grad::<2>(runs, offsets, (ap, m), (gp, n), dp) };
            }
            Level::Avx512 if n % 16 == 0 => {
                return unsafe { avx512::weight_grad::<1>(runs, offsets, (ap, m), (gp, n), dp) };
            }
            Level::Avx2 if n % 16 == 0 => {
                return unsafe { avx2::weight_grad::<2>(runs, offsets, (ap, m), (gp, n), dp) };
            }
            Level::Avx2 if n % 8 == 0 => {
                return unsafe { avx2::weight_grad::<1>(runs, offsets, (ap, m), (gp, n), dp) };
            }
            _ => {}
        }
    }
    weight_grad_loops(level, runs, offsets, (a, m), (g, n), db);
}

leveled_kernel! {
    /// [`shifted_weight_grad`] as plain loops.
    fn weight_grad_loops(
        runs: Runs,
        offsets: &[usize],
        am: (&[f32], usize),
        gn: (&[f32], usize),
        db: &mut [f32],
    ) {
        let ((a, m), (g, n)) = (am, gn);
        for run in 0..runs.count {
            for p in run * runs.stride..run * runs.stride + runs.len {
                let gr = &g[p * n..(p + 1) * n];
                for (s, &off) in offsets.iter().enumerate() {
                    let ar = &a[(p + off) * m..(p + off + 1) * m];
                    for (q, &x) in ar.iter().enumerate() {
                        let dr = &mut db[(s * m + q) * n..(s * m + q + 1) * n];
                        for (d, &v) in dr.iter_mut().zip(gr) {
                            *d += x * v;
                        }
                    }
                }
            }
        }
    }
}

/// Runs of output rows the weight gradient covers per pass, so that their
/// gradient rows (and the image rows they read) stay in L1 while every tile of
/// the weight gradient goes over them.
#[cfg(target_arch = "x86_64")]
const RUNS_PER_PASS: usize = 2;

/// Taps (values of `q`) per weight-gradient tile.
#[cfg(target_arch = "x86_64")]
const TAPS: usize = 4;

/// The register-tiled kernels for one x86 vector width; `$v` is the vector
/// type, `$lanes` its f32 lanes, then its load, store, broadcast and FMA.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_kernels {
    ($isa:ident, $feat:literal, $v:ty, $lanes:literal, $load:ident, $store:ident, $set1:ident, $fma:ident) => {
        mod $isa {
            use super::{RUNS_PER_PASS, Runs, TAPS};
            use std::arch::x86_64::*;

            const L: usize = $lanes;

            /// `out` rows `p0..p0 + NP`, columns `j0..j0 + NV*L` of the product.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn product_tile<const NP: usize, const NV: usize>(
                offsets: &[usize],
                (a, m): (*const f32, usize),
                b: *const f32,
                (out, n): (*mut f32, usize),
                (p0, j0): (usize, usize),
            ) {
                // SAFETY: the caller keeps rows p0..p0 + NP + max offset of `a`,
                // rows p0..p0 + NP of `out` and all of `b` in bounds.
                unsafe {
                    let mut acc: [[$v; NV]; NP] = [[$set1(0.0); NV]; NP];
                    for (i, row) in acc.iter_mut().enumerate() {
                        for (v, x) in row.iter_mut().enumerate() {
                            *x = $load(out.add((p0 + i) * n + j0 + v * L));
                        }
                    }
                    for (s, &off) in offsets.iter().enumerate() {
                        let ar = a.add((p0 + off) * m);
                        let br = b.add(s * m * n + j0);
                        for q in 0..m {
                            let mut bv: [$v; NV] = [$set1(0.0); NV];
                            for (v, x) in bv.iter_mut().enumerate() {
                                *x = $load(br.add(q * n + v * L));
                            }
                            for (i, row) in acc.iter_mut().enumerate() {
                                let x = $set1(*ar.add(i * m + q));
                                for (r, &w) in row.iter_mut().zip(&bv) {
                                    *r = $fma(x, w, *r);
                                }
                            }
                        }
                    }
                    for (i, row) in acc.iter().enumerate() {
                        for (v, &x) in row.iter().enumerate() {
                            $store(out.add((p0 + i) * n + j0 + v * L), x);
                        }
                    }
                }
            }

            /// `shifted_product` in tiles of `NP` positions by `NV` vectors.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn product<const NP: usize, const NV: usize>(
                runs: Runs,
                offsets: &[usize],
                a: (*const f32, usize),
                b: *const f32,
                out: (*mut f32, usize),
            ) {
                let n = out.1;
                for run in 0..runs.count {
                    let base = run * runs.stride;
                    let mut p = 0;
                    // SAFETY (both): positions stay inside the run, columns
                    // inside `n` (a multiple of NV*L); see `product_tile`.
                    while p + NP <= runs.len {
                        for j0 in (0..n).step_by(NV * L) {
                            unsafe { product_tile::<NP, NV>(offsets, a, b, out, (base + p, j0)) };
                        }
                        p += NP;
                    }
                    while p < runs.len {
                        for j0 in (0..n).step_by(NV * L) {
                            unsafe { product_tile::<1, NV>(offsets, a, b, out, (base + p, j0)) };
                        }
                        p += 1;
                    }
                }
            }

            /// `db` rows `s*m + q0 .. + T`, columns `j0..j0 + NV*L`, summed over
            /// the positions of runs `r0..r1`.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn grad_tile<const T: usize, const NV: usize>(
                runs: Runs,
                (r0, r1): (usize, usize),
                (off, s, q0): (usize, usize, usize),
                (a, m): (*const f32, usize),
                (g, n): (*const f32, usize),
                db: *mut f32,
                j0: usize,
            ) {
                // SAFETY: the caller keeps every position of the runs (shifted by
                // `off` in `a`) and the tile of `db` in bounds.
                unsafe {
                    let mut acc: [[$v; NV]; T] = [[$set1(0.0); NV]; T];
                    let at = |t: usize, v: usize| db.add((s * m + q0 + t) * n + j0 + v * L);
                    for (t, row) in acc.iter_mut().enumerate() {
                        for (v, x) in row.iter_mut().enumerate() {
                            *x = $load(at(t, v));
                        }
                    }
                    for run in r0..r1 {
                        let p0 = run * runs.stride;
                        let mut ar = a.add((p0 + off) * m + q0);
                        let mut gr = g.add(p0 * n + j0);
                        for _ in 0..runs.len {
                            let mut gv: [$v; NV] = [$set1(0.0); NV];
                            for (v, x) in gv.iter_mut().enumerate() {
                                *x = $load(gr.add(v * L));
                            }
                            for (t, row) in acc.iter_mut().enumerate() {
                                let x = $set1(*ar.add(t));
                                for (r, &d) in row.iter_mut().zip(&gv) {
                                    *r = $fma(x, d, *r);
                                }
                            }
                            ar = ar.add(m);
                            gr = gr.add(n);
                        }
                    }
                    for (t, row) in acc.iter().enumerate() {
                        for (v, &x) in row.iter().enumerate() {
                            $store(at(t, v), x);
                        }
                    }
                }
            }

            /// `shifted_weight_grad` in tiles of `TAPS` rows of `db` by `NV` vectors,
            /// a few runs of positions at a time.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn weight_grad<const NV: usize>(
                runs: Runs,
                offsets: &[usize],
                a: (*const f32, usize),
                g: (*const f32, usize),
                db: *mut f32,
            ) {
                let (m, n) = (a.1, g.1);
                for r0 in (0..runs.count).step_by(RUNS_PER_PASS) {
                    let rr = (r0, (r0 + RUNS_PER_PASS).min(runs.count));
                    for (s, &off) in offsets.iter().enumerate() {
                        let mut q0 = 0;
                        // SAFETY (both): taps inside `m`, columns inside `n`;
                        // see `grad_tile`.
                        while q0 + TAPS <= m {
                            for j0 in (0..n).step_by(NV * L) {
                                unsafe {
                                    grad_tile::<TAPS, NV>(runs, rr, (off, s, q0), a, g, db, j0)
                                };
                            }
                            q0 += TAPS;
                        }
                        while q0 < m {
                            for j0 in (0..n).step_by(NV * L) {
                                unsafe { grad_tile::<1, NV>(runs, rr, (off, s, q0), a, g, db, j0) };
                            }
                            q0 += 1;
                        }
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    avx512,
    "avx512f,avx2,fma",
    __m512,
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps
);

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    avx2,
    "avx2,fma",
    __m256,
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps
);

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [Level; 3] = [Level::Avx512, Level::Avx2, Level::Portable];

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Each case: runs, offsets, m, n. Odd widths take the portable loops at
    /// every level; multiples of 8, 16 and 64 the tiles (with position tails).
    fn cases() -> Vec<(Runs, Vec<usize>, usize, usize)> {
        let conv = |h: usize, w: usize, k: usize| {
            let (oh, ow) = (h - k + 1, w - k + 1);
            let offsets = (0..k * k).map(|t| (t / k) * w + t % k).collect::<Vec<_>>();
            (
                Runs {
                    count: oh,
                    len: ow,
                    stride: w,
                },
                offsets,
            )
        };
        let mut out = Vec::new();
        for (h, w, k, m, n) in [
            (26, 26, 3, 32, 64),
            (9, 11, 3, 5, 64),
            (7, 8, 2, 3, 16),
            (6, 5, 3, 4, 32),
            (5, 9, 3, 7, 24),
            (3, 3, 3, 2, 8),
            (4, 4, 1, 3, 5),
            (5, 7, 3, 6, 48),
        ] {
            let (runs, offsets) = conv(h, w, k);
            out.push((runs, offsets, m, n));
        }
        // One long run (the input gradient's shape), with a tail of positions.
        out.push((
            Runs {
                count: 1,
                len: 31,
                stride: 0,
            },
            vec![9, 4, 0],
            8,
            32,
        ));
        out
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            let ok = (a - b).abs() <= 1e-4 * (1.0 + b.abs()) || (a.is_nan() && b.is_nan());
            assert!(ok, "{what}: value {i}: {a} vs {b}");
        }
    }

    fn positions(runs: Runs) -> Vec<usize> {
        (0..runs.count)
            .flat_map(|r| r * runs.stride..r * runs.stride + runs.len)
            .collect()
    }

    /// The product equals the sum written out, on every position of the runs,
    /// leaves the rows between runs as they were, and adds to what `out` held.
    #[test]
    fn shifted_product_matches_the_definition() {
        for (ci, (runs, offsets, m, n)) in cases().into_iter().enumerate() {
            let rows = runs.end() + offsets.iter().max().unwrap();
            let a = values(rows * m, 1 + ci as u64);
            let b = values(offsets.len() * m * n, 100 + ci as u64);
            let start = values(runs.end() * n, 200 + ci as u64);
            let mut want = start.clone();
            for p in positions(runs) {
                for j in 0..n {
                    let mut sum = 0f32;
                    for (s, off) in offsets.iter().enumerate() {
                        for q in 0..m {
                            sum += a[(p + off) * m + q] * b[(s * m + q) * n + j];
                        }
                    }
                    want[p * n + j] += sum;
                }
            }
            for level in LEVELS {
                let mut got = start.clone();
                shifted_product_at(level, runs, &offsets, (&a, m), &b, (&mut got, n));
                close(&got, &want, &format!("{runs:?} m{m} n{n} at {level:?}"));
            }
        }
    }

    #[test]
    fn shifted_weight_grad_matches_the_definition() {
        for (ci, (runs, offsets, m, n)) in cases().into_iter().enumerate() {
            let rows = runs.end() + offsets.iter().max().unwrap();
            let a = values(rows * m, 7 + ci as u64);
            let mut g = values(runs.end() * n, 70 + ci as u64);
            // Rows between the runs are not positions: never read.
            let on: std::collections::HashSet<usize> = positions(runs).into_iter().collect();
            for p in 0..runs.end() {
                if !on.contains(&p) {
                    g[p * n..(p + 1) * n].fill(f32::NAN);
                }
            }
            let start = values(offsets.len() * m * n, 300 + ci as u64);
            let mut want = start.clone();
            for (s, off) in offsets.iter().enumerate() {
                for q in 0..m {
                    for j in 0..n {
                        let mut sum = 0f32;
                        for &p in &on {
                            sum += a[(p + off) * m + q] * g[p * n + j];
                        }
                        want[(s * m + q) * n + j] += sum;
                    }
                }
            }
            for level in LEVELS {
                let mut got = start.clone();
                shifted_weight_grad_at(level, runs, &offsets, (&a, m), (&g, n), &mut got);
                close(&got, &want, &format!("{runs:?} m{m} n{n} at {level:?}"));
            }
        }
    }

    /// A NaN in `a` reaches exactly the outputs whose sums read it, at every level.
    #[test]
    fn nan_reaches_what_reads_it() {
        let runs = Runs {
            count: 4,
            len: 4,
            stride: 6,
        };
        let offsets: Vec<usize> = (0..9).map(|t| (t / 3) * 6 + t % 3).collect();
        let (m, n) = (4, 64);
        let rows = runs.end() + offsets.iter().max().unwrap();
        let mut a = values(rows * m, 5);
        let bad = 14; // pixel (2, 2)
        a[bad * m + 1] = f32::NAN;
        let b = values(offsets.len() * m * n, 6);
        let g = values(runs.end() * n, 8);
        for level in LEVELS {
            let mut out = vec![0f32; runs.end() * n];
            shifted_product_at(level, runs, &offsets, (&a, m), &b, (&mut out, n));
            for p in positions(runs) {
                let reads = offsets.iter().any(|off| p + off == bad);
                assert_eq!(out[p * n].is_nan(), reads, "product row {p} at {level:?}");
            }
            let mut db = vec![0f32; offsets.len() * m * n];
            shifted_weight_grad_at(level, runs, &offsets, (&a, m), (&g, n), &mut db);
            for (s, off) in offsets.iter().enumerate() {
                let reads = positions(runs).iter().any(|p| p + off == bad);
                for q in 0..m {
                    let nan = db[(s * m + q) * n].is_nan();
                    assert_eq!(nan, reads && q == 1, "grad shift {s} tap {q} at {level:?}");
                }
            }
        }
    }

    #[test]
    fn transposed_weight_packing() {
        let (kk, c, o) = (2, 3, 4);
        let wp: Vec<f32> = (0..kk * c * o).map(|i| i as f32).collect();
        let wt = pack_weight_t(&wp, kk, c, o);
        assert_eq!(wt[(o + 2) * c + 1], wp[(c + 1) * o + 2]);
    }
}
