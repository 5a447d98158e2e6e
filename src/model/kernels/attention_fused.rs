//! The transformer block's small operations as plain CPU kernels over f32
//! slices, each with its hand-written backward, for `block_fused`: causal
//! multi-head attention over all (batch, head) pairs, layer norm, and exact
//! GELU. candle's generic path spends most of a small block in strided copies
//! (the head split and merge), per-op overhead and a scalar f64 erf.
//!
//! Contract: results equal the candle-op block of attention.rs within float
//! rounding at every SIMD level (tested against candle's ops and autograd).
//! Every kernel writes each value of the output slice it is given, and its
//! backward writes each value of the gradient slice:
//! - `attention_forward(level, qkv [b, t, 3d], dims, out [b, t, d])`: the last
//!   axis of `qkv` is `(q | k | v)`, each `(heads, dh)`; head h's output lands
//!   at columns `h*dh..(h+1)*dh`, as the transpose-and-reshape merge puts it.
//!   Scores are `q k^T / sqrt(dh)`, step i sees steps j <= i.
//! - `norm_forward(x [rows, d], w [d], b [d], out [rows, d])`: biased variance,
//!   eps 1e-5.
//! - `gelu_into(x, y)`: `x/2 (1 + erf(x/sqrt 2))` with a polynomial erf (error
//!   ~2e-7), vectorised per `util::simd::level()`; within 2e-6 of candle's
//!   `gelu_erf`.

use rayon::prelude::*;

use super::activation::exp;
use super::seq_layout::sum_parts;
use crate::util::simd::{Level, level};

/// Layer norm's epsilon (as in the candle-op `Norm` and PyTorch's default).
const EPS: f32 = 1e-5;

/// Elements of GELU handed to one rayon task.
const GELU_CHUNK: usize = 16 * 1024;

// ---------------------------------------------------------------- attention

/// One batch element's shape: `t` steps, `heads` heads of `dh` values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub t: usize,
    pub heads: usize,
    pub dh: usize,
}

impl Dims {
    fn d(self) -> usize {
        self.heads * self.dh
    }

    /// `t` rounded up to whole 16-lane vectors: rows of scores are computed at
    /// this fixed length (the future masked afterwards), so their loops have no
    /// scalar remainder.
    fn padded(self) -> usize {
        self.t.next_multiple_of(16)
    }
}

/// Lanes of the fixed-size accumulators below: one AVX-512 vector, two AVX2.
const LANES: usize = 16;

/// `out[..n] = sum_c a[c] * rows[c * stride..][..n]` (`rows` has `a.len()` rows
/// `stride` apart): each 16-lane block of `out` is summed in registers over all
/// of `a`, instead of read and written back once per row.
#[inline(always)]
fn combine_rows(a: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    let n = out.len();
    let whole = n - n % LANES;
    for (b, o) in out[..whole].chunks_exact_mut(LANES).enumerate() {
        let mut acc = [0f32; LANES];
        for (c, &ac) in a.iter().enumerate() {
            let row: &[f32; LANES] = rows[c * stride + b * LANES..][..LANES]
                .try_into()
                .unwrap_or(&[0.0; LANES]);
            for (acc, &r) in acc.iter_mut().zip(row) {
                *acc += ac * r;
            }
        }
        o.copy_from_slice(&acc);
    }
    if whole < n {
        let tail = &mut out[whole..];
        tail.fill(0.0);
        for (c, &ac) in a.iter().enumerate() {
            let row = &rows[c * stride + whole..][..n - whole];
            tail.iter_mut().zip(row).for_each(|(o, &r)| *o += ac * r);
        }
    }
}

/// The largest of `x`, whose length is a multiple of 16 (lane-wise, so it
/// vectorises; `f32::max` in a fold stays scalar).
#[inline(always)]
fn lanes_max(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    for block in x.chunks_exact(LANES) {
        for (m, &v) in m.iter_mut().zip(block) {
            *m = if v > *m { v } else { *m };
        }
    }
    // Halve the lanes until one is left: four vector steps, not 16 serial compares.
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            m[l] = if m[l + half] > m[l] {
                m[l + half]
            } else {
                m[l]
            };
        }
        half /= 2;
    }
    m[0]
}

/// The sum of `x`, whose length is a multiple of 16, lane-wise.
#[inline(always)]
fn lanes_sum(x: &[f32]) -> f32 {
    let mut s = [0f32; LANES];
    for block in x.chunks_exact(LANES) {
        s.iter_mut().zip(block).for_each(|(s, &v)| *s += v);
    }
    // Pairwise, as in `lanes_max`.
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            s[l] += s[l + half];
        }
        half /= 2;
    }
    s[0]
}

/// One head of one batch element, copied out of `qkv` so that every inner loop
/// runs over contiguous memory: `q` (pre-scaled by 1/sqrt(dh)), `k` and `v` as
/// `[t, dh]`, `kt` and `vt` as `[dh, tp]` (`Dims::padded`, zeros past t).
struct Head {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    kt: Vec<f32>,
    vt: Vec<f32>,
}

impl Head {
    fn new(dims: Dims) -> Self {
        let (n, np) = (dims.t * dims.dh, dims.padded() * dims.dh);
        Self {
            q: vec![0.0; n],
            k: vec![0.0; n],
            v: vec![0.0; n],
            kt: vec![0.0; np],
            vt: vec![0.0; np],
        }
    }

    #[inline(always)]
    fn load(&mut self, qkv: &[f32], dims: Dims, h: usize) {
        let (t, d, dh, tp) = (dims.t, dims.d(), dims.dh, dims.padded());
        let scale = 1.0 / (dh as f32).sqrt();
        for i in 0..t {
            let base = i * 3 * d + h * dh;
            for c in 0..dh {
                let (q, k, v) = (qkv[base + c], qkv[base + d + c], qkv[base + 2 * d + c]);
                self.q[i * dh + c] = q * scale;
                self.k[i * dh + c] = k;
                self.v[i * dh + c] = v;
                self.kt[c * tp + i] = k;
                self.vt[c * tp + i] = v;
            }
        }
    }

    /// Row i's attention weights over steps 0..=i into `p[..=i]`, zeros in
    /// the rest of `p[..tp]`.
    #[inline(always)]
    fn weights(&self, dims: Dims, i: usize, p: &mut [f32]) {
        let (dh, tp) = (dims.dh, dims.padded());
        let p = &mut p[..tp];
        combine_rows(&self.q[i * dh..(i + 1) * dh], &self.kt, tp, p);
        p[i + 1..].fill(f32::NEG_INFINITY);
        let max = lanes_max(p);
        p.iter_mut().for_each(|pj| *pj = exp(*pj - max));
        p[i + 1..].fill(0.0);
        let inv = 1.0 / lanes_sum(p);
        p.iter_mut().for_each(|pj| *pj *= inv);
    }
}

/// One batch element: `qkv [t, 3d]` -> `out [t, d]`.
#[inline(always)]
fn attend_body(qkv: &[f32], dims: Dims, out: &mut [f32]) {
    let (d, dh) = (dims.d(), dims.dh);
    let mut head = Head::new(dims);
    let mut p = vec![0f32; dims.padded()];
    for h in 0..dims.heads {
        head.load(qkv, dims, h);
        for i in 0..dims.t {
            head.weights(dims, i, &mut p);
            let o = &mut out[i * d + h * dh..i * d + (h + 1) * dh];
            combine_rows(&p[..=i], &head.v, dh, o);
        }
    }
}

/// One batch element's gradient: `grad [t, d]` -> `dqkv [t, 3d]` (recomputing
/// the weights): with `ds = p (dp - sum_j p dp)`, `dq = ds k / sqrt(dh)`,
/// `dk = ds^T q / sqrt(dh)`, `dv = p^T grad`.
#[inline(always)]
fn attend_backward_body(qkv: &[f32], grad: &[f32], dims: Dims, dqkv: &mut [f32]) {
    let (t, d, dh, tp) = (dims.t, dims.d(), dims.dh, dims.padded());
    let scale = 1.0 / (dh as f32).sqrt();
    let mut head = Head::new(dims);
    let (mut p, mut dp) = (vec![0f32; tp], vec![0f32; tp]);
    let (mut dq, mut dk, mut dv) = (vec![0f32; dh], vec![0f32; t * dh], vec![0f32; t * dh]);
    for h in 0..dims.heads {
        head.load(qkv, dims, h);
        dk.fill(0.0);
        dv.fill(0.0);
        for i in 0..t {
            head.weights(dims, i, &mut p);
            let g = &grad[i * d + h * dh..i * d + (h + 1) * dh];
            // Whole padded rows (see `Dims::padded`); only 0..=i is used.
            combine_rows(g, &head.vt, tp, &mut dp);
            let dp = &dp[..=i];
            for (pj, dv) in p[..=i].iter().zip(dv.chunks_exact_mut(dh)) {
                dv.iter_mut().zip(g).for_each(|(dv, &g)| *dv += pj * g);
            }
            let row_dot: f32 = p[..=i].iter().zip(dp.iter()).map(|(p, dp)| p * dp).sum();
            // ds into p (the weights are not needed again for this row).
            p[..=i]
                .iter_mut()
                .zip(dp.iter())
                .for_each(|(p, &dp)| *p *= dp - row_dot);
            combine_rows(&p[..=i], &head.k, dh, &mut dq);
            let qi = &head.q[i * dh..(i + 1) * dh];
            for (&ds, dk) in p[..=i].iter().zip(dk.chunks_exact_mut(dh)) {
                // q is pre-scaled, so this is already ds q / sqrt(dh).
                dk.iter_mut().zip(qi).for_each(|(dk, &q)| *dk += ds * q);
            }
            let base = i * 3 * d + h * dh;
            dqkv[base..base + dh]
                .iter_mut()
                .zip(&dq)
                .for_each(|(o, &v)| *o = v * scale);
        }
        for i in 0..t {
            let base = i * 3 * d + h * dh;
            dqkv[base + d..base + d + dh].copy_from_slice(&dk[i * dh..(i + 1) * dh]);
            dqkv[base + 2 * d..base + 2 * d + dh].copy_from_slice(&dv[i * dh..(i + 1) * dh]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod attend_simd {
    use super::{Dims, attend_backward_body, attend_body};

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn fwd512(qkv: &[f32], dims: Dims, out: &mut [f32]) {
        attend_body(qkv, dims, out)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fwd256(qkv: &[f32], dims: Dims, out: &mut [f32]) {
        attend_body(qkv, dims, out)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn bwd512(qkv: &[f32], grad: &[f32], dims: Dims, dqkv: &mut [f32]) {
        attend_backward_body(qkv, grad, dims, dqkv)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn bwd256(qkv: &[f32], grad: &[f32], dims: Dims, dqkv: &mut [f32]) {
        attend_backward_body(qkv, grad, dims, dqkv)
    }
}

/// `attend_body` with `level`'s instructions (the CPU's best if it lacks them).
fn attend(level: Level, qkv: &[f32], dims: Dims, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match level.or_best() {
        // SAFETY: `or_best` gives Avx512 only where the CPU has AVX-512F, AVX2 and FMA.
        Level::Avx512 => return unsafe { attend_simd::fwd512(qkv, dims, out) },
        // SAFETY: `or_best` gives Avx2 only where the CPU has AVX2 and FMA.
        Level::Avx2 => return unsafe { attend_simd::fwd256(qkv, dims, out) },
        Level::Portable => {}
    }
    let _ = level;
    attend_body(qkv, dims, out)
}

/// `attend_backward_body` with `level`'s instructions.
fn attend_backward(level: Level, qkv: &[f32], grad: &[f32], dims: Dims, dqkv: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match level.or_best() {
        // SAFETY: as in `attend`.
        Level::Avx512 => return unsafe { attend_simd::bwd512(qkv, grad, dims, dqkv) },
        // SAFETY: as in `attend`.
        Level::Avx2 => return unsafe { attend_simd::bwd256(qkv, grad, dims, dqkv) },
        Level::Portable => {}
    }
    let _ = level;
    attend_backward_body(qkv, grad, dims, dqkv)
}

/// Causal self-attention of `qkv [b, t, 3d]` (every batch element `dims`) into
/// `out [b, t, d]` (every value written), batch elements spread over the rayon pool.
pub(crate) fn attention_forward(level: Level, qkv: &[f32], dims: Dims, out: &mut [f32]) {
    let (t, d) = (dims.t, dims.d());
    if t > 0 && d > 0 {
        out.par_chunks_mut(t * d)
            .zip(qkv.par_chunks(t * 3 * d))
            .for_each(|(out, qkv)| attend(level, qkv, dims, out));
    }
}

/// The gradient at `qkv [b, t, 3d]` of `attention_forward` into `dqkv` (every
/// value written) from the one at its output, `grad [b, t, d]`.
pub(crate) fn attention_backward(
    level: Level,
    qkv: &[f32],
    grad: &[f32],
    dims: Dims,
    dqkv: &mut [f32],
) {
    let (t, d) = (dims.t, dims.d());
    if t > 0 && d > 0 {
        dqkv.par_chunks_mut(t * 3 * d)
            .zip(qkv.par_chunks(t * 3 * d))
            .zip(grad.par_chunks(t * d))
            .for_each(|((dqkv, qkv), g)| attend_backward(level, qkv, g, dims, dqkv));
    }
}

// --------------------------------------------------------------- layer norm

/// Rows of layer norm handed to one rayon task.
const NORM_ROWS: usize = 64;

/// `sum f(x[i])` in 16 independent lanes: a plain f32 `sum()` is one serial
/// chain of adds (an add's latency each), this vectorises.
#[inline(always)]
pub(crate) fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut s = [0f32; LANES];
    let mut blocks = x.chunks_exact(LANES);
    for block in &mut blocks {
        s.iter_mut().zip(block).for_each(|(s, &v)| *s += f(v));
    }
    s.iter().sum::<f32>() + blocks.remainder().iter().map(|&v| f(v)).sum::<f32>()
}

/// `sum a[i] b[i]` in 16 independent lanes.
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0f32; LANES];
    let (mut ab, mut bb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ab).zip(&mut bb) {
        s.iter_mut()
            .zip(x)
            .zip(y)
            .for_each(|((s, &x), &y)| *s += x * y);
    }
    let tail: f32 = ab
        .remainder()
        .iter()
        .zip(bb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    s.iter().sum::<f32>() + tail
}

/// A row's mean and 1 / standard deviation.
#[inline(always)]
fn row_stats(row: &[f32]) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |v| v) / n;
    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + EPS).sqrt())
}

/// Layer norm's backward over whole rows `xd`, `g` into `dx`, adding each
/// row's share of the weight and bias gradients into `dw`, `db`.
fn norm_rows_backward(
    xd: &[f32],
    g: &[f32],
    wd: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
) {
    let d = wd.len();
    let (mut xh, mut dxh) = (vec![0f32; d], vec![0f32; d]);
    for ((row, g), dx) in xd
        .chunks_exact(d)
        .zip(g.chunks_exact(d))
        .zip(dx.chunks_exact_mut(d))
    {
        let (mean, rstd) = row_stats(row);
        xh.iter_mut()
            .zip(row)
            .for_each(|(h, &v)| *h = (v - mean) * rstd);
        dxh.iter_mut()
            .zip(g)
            .zip(wd)
            .for_each(|((o, &g), &w)| *o = g * w);
        let m1 = lane_sum(&dxh, |v| v) / d as f32;
        let m2 = lane_dot(&dxh, &xh) / d as f32;
        for c in 0..d {
            dx[c] = rstd * (dxh[c] - m1 - xh[c] * m2);
            dw[c] += g[c] * xh[c];
            db[c] += g[c];
        }
    }
}

/// Layer norm of the rows of `x` (width `w.len()`) into `out`: biased
/// variance, eps 1e-5, scaled by `w`, shifted by `b`; rows spread over the
/// rayon pool.
pub(crate) fn norm_forward(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let d = w.len();
    if d == 0 {
        return;
    }
    out.par_chunks_mut(NORM_ROWS * d)
        .zip(x.par_chunks(NORM_ROWS * d))
        .for_each(|(out, x)| {
            for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                let (mean, rstd) = row_stats(row);
                for (((o, &v), &w), &b) in o.iter_mut().zip(row).zip(w).zip(b) {
                    *o = (v - mean) * rstd * w + b;
                }
            }
        });
}

/// Layer norm's gradients from the one at its output, `g`: `dx` into `dx`
/// (every value written), `(dw, db)` returned. With `xh` the normalised row
/// and `dxh = g * w`, `dx = rstd (dxh - mean(dxh) - xh mean(dxh xh))`,
/// `dw = sum g xh`, `db = sum g`.
pub(crate) fn norm_backward(
    x: &[f32],
    g: &[f32],
    w: &[f32],
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let d = w.len();
    if d == 0 {
        return (Vec::new(), Vec::new());
    }
    // Each task sums its rows' share of dw and db; added up after.
    let parts: Vec<Vec<f32>> = dx
        .par_chunks_mut(NORM_ROWS * d)
        .zip(x.par_chunks(NORM_ROWS * d))
        .zip(g.par_chunks(NORM_ROWS * d))
        .map(|((dx, x), g)| {
            let mut dwb = vec![0f32; 2 * d];
            let (dw, db) = dwb.split_at_mut(d);
            norm_rows_backward(x, g, w, dx, dw, db);
            dwb
        })
        .collect();
    let mut dw = sum_parts(parts, 2 * d);
    let db = dw.split_off(d);
    (dw, db)
}

// --------------------------------------------------------------------- GELU

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi), for GELU's derivative.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// erf, vectorisable: Abramowitz & Stegun 7.1.26, a degree-5 polynomial in
/// `t = 1 / (1 + p |x|)` times `e^-x²` (absolute error below 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    erf_and_gauss(x).0
}

/// `(erf(x), e^-x²)`: the exponential erf needs is also GELU's density term,
/// so the backward pass computes it once.
#[inline(always)]
fn erf_and_gauss(x: f32) -> (f32, f32) {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let gauss = exp(-a * a);
    ((1.0 - poly * gauss).copysign(x), gauss)
}

#[inline(always)]
fn gelu_fwd_body(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
    }
}

#[inline(always)]
fn gelu_bwd_body(x: &[f32], g: &[f32], dx: &mut [f32]) {
    for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
        // erf at x / sqrt 2 comes with e^(-x^2 / 2), the density's exponential.
        let (erf, gauss) = erf_and_gauss(x * FRAC_1_SQRT_2);
        *dx = g * (0.5 * (1.0 + erf) + x * FRAC_1_SQRT_2PI * gauss);
    }
}

#[cfg(target_arch = "x86_64")]
mod gelu_simd {
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn fwd512(x: &[f32], y: &mut [f32]) {
        super::gelu_fwd_body(x, y)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fwd256(x: &[f32], y: &mut [f32]) {
        super::gelu_fwd_body(x, y)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn bwd512(x: &[f32], g: &[f32], dx: &mut [f32]) {
        super::gelu_bwd_body(x, g, dx)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn bwd256(x: &[f32], g: &[f32], dx: &mut [f32]) {
        super::gelu_bwd_body(x, g, dx)
    }
}

/// GELU of `x` into `y` with `level`'s instructions (the CPU's best if it lacks them).
fn gelu_forward(level: Level, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match level.or_best() {
        // SAFETY: `or_best` gives Avx512 only where the CPU has AVX-512F, AVX2 and FMA.
        Level::Avx512 => return unsafe { gelu_simd::fwd512(x, y) },
        // SAFETY: `or_best` gives Avx2 only where the CPU has AVX2 and FMA.
        Level::Avx2 => return unsafe { gelu_simd::fwd256(x, y) },
        Level::Portable => {}
    }
    let _ = level;
    gelu_fwd_body(x, y)
}

/// `g * gelu'(x)` into `dx` with `level`'s instructions.
fn gelu_backward(level: Level, x: &[f32], g: &[f32], dx: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match level.or_best() {
        // SAFETY: as in `gelu_forward`.
        Level::Avx512 => return unsafe { gelu_simd::bwd512(x, g, dx) },
        // SAFETY: as in `gelu_forward`.
        Level::Avx2 => return unsafe { gelu_simd::bwd256(x, g, dx) },
        Level::Portable => {}
    }
    let _ = level;
    gelu_bwd_body(x, g, dx)
}

/// `y = gelu(x)` elementwise, over the rayon pool.
pub(crate) fn gelu_into(x: &[f32], y: &mut [f32]) {
    let lv = level();
    y.par_chunks_mut(GELU_CHUNK)
        .zip(x.par_chunks(GELU_CHUNK))
        .for_each(|(y, x)| gelu_forward(lv, x, y));
}

/// `dx = g * gelu'(x)` elementwise, over the rayon pool.
pub(crate) fn gelu_grad_into(x: &[f32], g: &[f32], dx: &mut [f32]) {
    let lv = level();
    dx.par_chunks_mut(GELU_CHUNK)
        .zip(x.par_chunks(GELU_CHUNK))
        .zip(g.par_chunks(GELU_CHUNK))
        .for_each(|((dx, x), g)| gelu_backward(lv, x, g, dx));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::attention::attention_reference;
    use crate::model::kernels::cpu_data::{f32_slice, with_data};
    use crate::model::test_tensors::{max_diff, random};
    use crate::util::rng::Rng;
    use candle_core::{
        CpuStorage, CustomOp1, CustomOp3, D, Device, Layout, Result, Shape, Tensor, Var,
    };

    /// The attention kernels at one level as a candle op, so that candle's
    /// autograd can check their gradient.
    struct AttentionOp {
        heads: usize,
        level: Level,
    }

    impl AttentionOp {
        fn dims(&self, t: usize, d3: usize) -> Dims {
            Dims {
                t,
                heads: self.heads,
                dh: d3 / (3 * self.heads),
            }
        }
    }

    impl CustomOp1 for AttentionOp {
        fn name(&self) -> &'static str {
            "test-attention"
        }

        fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
            let (b, t, d3) = layout.shape().dims3()?;
            let qkv = f32_slice(storage, layout, "test-attention")?;
            let mut out = vec![0f32; b * t * d3 / 3];
            attention_forward(self.level, qkv, self.dims(t, d3), &mut out);
            Ok((CpuStorage::F32(out), Shape::from((b, t, d3 / 3))))
        }

        fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
            let (_, t, d3) = arg.dims3()?;
            let dqkv = with_data(arg, "test", |qkv| {
                with_data(grad, "test", |g| {
                    let mut dqkv = vec![0f32; qkv.len()];
                    attention_backward(self.level, qkv, g, self.dims(t, d3), &mut dqkv);
                    Ok(dqkv)
                })
            })?;
            Ok(Some(Tensor::from_vec(dqkv, arg.shape(), arg.device())?))
        }
    }

    fn attention_at(qkv: &Tensor, heads: usize, level: Level) -> Result<Tensor> {
        qkv.contiguous()?.apply_op1(AttentionOp { heads, level })
    }

    /// The layer norm kernels as a candle op.
    struct NormOp;

    impl CustomOp3 for NormOp {
        fn name(&self) -> &'static str {
            "test-norm"
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
            let (x, w, b) = (
                f32_slice(s1, l1, "t")?,
                f32_slice(s2, l2, "t")?,
                f32_slice(s3, l3, "t")?,
            );
            let mut out = vec![0f32; x.len()];
            norm_forward(x, w, b, &mut out);
            Ok((CpuStorage::F32(out), l1.shape().clone()))
        }

        fn bwd(
            &self,
            x: &Tensor,
            w: &Tensor,
            _b: &Tensor,
            _res: &Tensor,
            grad: &Tensor,
        ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
            let (dx, dw, db) = with_data(x, "t", |xd| {
                with_data(w, "t", |wd| {
                    with_data(grad, "t", |g| {
                        let mut dx = vec![0f32; xd.len()];
                        let (dw, db) = norm_backward(xd, g, wd, &mut dx);
                        Ok((dx, dw, db))
                    })
                })
            })?;
            let dev = x.device();
            Ok((
                Some(Tensor::from_vec(dx, x.shape(), dev)?),
                Some(Tensor::from_vec(dw, w.shape(), dev)?),
                Some(Tensor::from_vec(db, w.shape(), dev)?),
            ))
        }
    }

    fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op3(w, b, NormOp)
    }

    /// Forward and input gradient (against a random upstream gradient) of `f`.
    fn value_and_grad(
        x: &Tensor,
        up: &Tensor,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let v = Var::from_tensor(x)?;
        let y = f(v.as_tensor())?;
        let grads = (&y * up)?.sum_all()?.backward()?;
        let g = grads
            .get(&v)
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("no grad".into()))?;
        Ok((y, g))
    }

    #[test]
    fn attention_and_its_gradient_match_candle() -> Result<()> {
        let mut rng = Rng::new(11);
        for (b, t, heads, dh) in [
            (2, 5, 1, 3),
            (3, 7, 4, 5),
            (1, 1, 2, 4),
            (2, 32, 4, 16),
            (2, 21, 2, 8),
        ] {
            let qkv = random(&mut rng, &[b, t, 3 * heads * dh])?;
            let up = random(&mut rng, &[b, t, heads * dh])?;
            let (yr, gr) = value_and_grad(&qkv, &up, |x| attention_reference(x, heads))?;
            for lv in [Level::Avx512, Level::Avx2, Level::Portable] {
                let (y, g) = value_and_grad(&qkv, &up, |x| attention_at(x, heads, lv))?;
                let (dy, dg) = (max_diff(&y, &yr)?, max_diff(&g, &gr)?);
                assert!(
                    dy < 1e-5 && dg < 1e-5,
                    "{lv:?} {b}x{t} {heads}x{dh}: {dy} {dg}"
                );
            }
        }
        Ok(())
    }

    fn reference_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(w)?
            .broadcast_add(b)
    }

    #[test]
    fn layer_norm_and_its_gradients_match_candle() -> Result<()> {
        let mut rng = Rng::new(5);
        for shape in [[3, 4, 7], [1, 1, 1], [2, 32, 64], [3, 50, 37]] {
            let d = shape[2];
            let x = Var::from_tensor(&(random(&mut rng, &shape)? * 3.0)?)?;
            let w = Var::from_tensor(&random(&mut rng, &[d])?)?;
            let b = Var::from_tensor(&random(&mut rng, &[d])?)?;
            let up = random(&mut rng, &shape)?;
            let run = |f: &dyn Fn() -> Result<Tensor>| -> Result<Vec<Tensor>> {
                let y = f()?;
                let grads = (&y * &up)?.sum_all()?.backward()?;
                let mut out = vec![y];
                for v in [&x, &w, &b] {
                    out.push(
                        grads
                            .get(v)
                            .cloned()
                            .ok_or_else(|| candle_core::Error::Msg("no grad".into()))?,
                    );
                }
                Ok(out)
            };
            let fused = run(&|| layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor()))?;
            let reference = run(&|| reference_norm(x.as_tensor(), w.as_tensor(), b.as_tensor()))?;
            for (i, (f, r)) in fused.iter().zip(&reference).enumerate() {
                let diff = max_diff(f, r)?;
                assert!(diff < 1e-4, "{shape:?} output {i}: {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn gelu_and_its_gradient_match_candle_at_every_level() -> Result<()> {
        // Odd length (vector tails), and values out to where erf saturates.
        let n = 1001;
        let xs: Vec<f32> = (0..n).map(|i| (i as f32 - 500.0) * 0.02).collect();
        let gs: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
        let (yr, gr) = value_and_grad(
            &Tensor::new(xs.as_slice(), &Device::Cpu)?,
            &Tensor::new(gs.as_slice(), &Device::Cpu)?,
            |x| x.gelu_erf(),
        )?;
        let (yr, gr) = (yr.to_vec1::<f32>()?, gr.to_vec1::<f32>()?);
        for lv in [Level::Avx512, Level::Avx2, Level::Portable] {
            let mut y = vec![0f32; n];
            let mut dx = vec![0f32; n];
            gelu_forward(lv, &xs, &mut y);
            gelu_backward(lv, &xs, &gs, &mut dx);
            let worst = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max)
            };
            assert!(worst(&y, &yr) < 2e-6, "{lv:?} forward {}", worst(&y, &yr));
            assert!(
                worst(&dx, &gr) < 2e-6,
                "{lv:?} backward {}",
                worst(&dx, &gr)
            );
        }
        // The pooled versions (threads, chunking) agree with the kernel.
        let long: Vec<f32> = xs
            .iter()
            .cycle()
            .take(3 * GELU_CHUNK + 5)
            .copied()
            .collect();
        let g: Vec<f32> = gs.iter().cycle().take(long.len()).copied().collect();
        let (mut y, mut dx) = (vec![0f32; long.len()], vec![0f32; long.len()]);
        gelu_forward(level(), &long, &mut y);
        gelu_backward(level(), &long, &g, &mut dx);
        let (mut y2, mut dx2) = (vec![0f32; long.len()], vec![0f32; long.len()]);
        gelu_into(&long, &mut y2);
        gelu_grad_into(&long, &g, &mut dx2);
        assert_eq!(y2, y);
        assert_eq!(dx2, dx);
        Ok(())
    }
}
