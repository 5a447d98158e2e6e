//! Products with few rows against a right-hand side that stays fixed for many
//! of them: one time step of a recurrent layer, `[n, k] @ [k, cols]` with n the
//! sequences one core handles (16 for a batch of 32 on two cores).
//!
//! Contract: `PackedRhs::new` copies a `[k, cols]` matrix once (any strides);
//! `PackedRhs::matmul` then computes `dst[m, cols] = start + lhs[m, k] @ rhs`
//! (`start`: zero, `dst` itself, or one bias row) for a row-major `lhs` on the
//! calling thread, as often as needed. Results equal the `gemm` crate's within
//! float rounding at every level (AVX-512, AVX2, portable; tested below, every
//! edge size). The level is `util::simd::level()` unless a test picks one.
//!
//! Why not the general GEMM: with 16 rows it repacks or re-reads the whole
//! right-hand side at every call and reaches under half of one core's peak.
//! Here the weights are packed once per layer pass into column panels, k-major,
//! 64-byte aligned, and a register tile of rows x panel columns stays in
//! registers while it walks down k, each step reading the panel's row once and
//! broadcasting one `lhs` value per tile row (a panel of up to ~350 rows stays in
//! L1 between the row tiles):
//! - AVX-512: panels of 32 columns (two zmm), tiles of 8 rows: 16 accumulators.
//! - AVX2+FMA: panels of 16 columns (two ymm), tiles of 6 rows: 12 accumulators,
//!   2 panel vectors and 1 broadcast of the 16 ymm registers.
//! - portable: panels of 16 columns, tiles of 4 rows held as `[[f32; 16]; 4]`,
//!   plain Rust that LLVM turns into NEON on aarch64 (16 of its 32 q registers);
//!   2 rows on other targets (SSE on x86_64: 16 xmm registers).

use rayon::prelude::*;

use crate::util::simd::{Level, level};

use super::gemm::Strides;

/// f32s per 64-byte line: the packed panels start on a cache line.
const LINE: usize = 16;

/// Columns per panel at `level`: two AVX-512 or AVX2 vectors; four 128-bit
/// NEON or SSE ones for the portable kernel.
const fn panel_width(level: Level) -> usize {
    match level {
        Level::Avx512 => 32,
        Level::Avx2 | Level::Portable => 16,
    }
}

/// Rows per register tile at `level` (what its register file holds; see the
/// module comment).
const fn tile_rows(level: Level) -> usize {
    match level {
        Level::Avx512 => 8,
        Level::Avx2 => 6,
        // 4 rows x 4 q registers fill half of NEON's 32; SSE has only 16 xmm
        // registers, so 2 rows there (measured: 4 rows spill every step).
        Level::Portable if cfg!(target_arch = "aarch64") => 4,
        Level::Portable => 2,
    }
}

/// What a product adds to.
#[derive(Clone, Copy)]
pub(crate) enum Start<'a> {
    /// `dst = lhs @ rhs`.
    Zero,
    /// `dst += lhs @ rhs`.
    Dst,
    /// `dst = bias + lhs @ rhs`, `bias` one value per column, the same for every row.
    Bias(&'a [f32]),
}

/// A right-hand side `[k, cols]` packed for repeated skinny products.
pub(crate) struct PackedRhs {
    k: usize,
    cols: usize,
    /// Which kernel runs the products; the CPU has it (`Level::or_best`).
    level: Level,
    /// Panels of `panel_width(level)` columns, each `k` rows of that many values
    /// (zero past `cols`), starting at `offset` so the first panel is 64-byte aligned.
    data: Vec<f32>,
    offset: usize,
}

impl PackedRhs {
    /// Packs `rhs`, a `[k, cols]` matrix read through `strides`.
    pub(crate) fn new(rhs: &[f32], (k, cols): (usize, usize), strides: Strides) -> Self {
        if strides.0 == 1 {
            // Stored transposed (a weight matrix `[cols, k]`): copy whole columns.
            let col = |c: usize, out: &mut [f32]| out.copy_from_slice(&rhs[c * strides.1..][..k]);
            return Self::from_columns((k, cols), col);
        }
        Self::from_fn((k, cols), |r, c| rhs[r * strides.0 + c * strides.1])
    }

    /// Packs the `[k, cols]` matrix whose column c `column(c, out)` writes into
    /// `out` (k values), for the process's SIMD level. For weights stored
    /// `[cols, k]`, where reading element by element would stride through memory.
    pub(crate) fn from_columns(
        (k, cols): (usize, usize),
        column: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Self {
        let level = level().or_best();
        let width = panel_width(level);
        let mut packed = Self::zeroed(level, (k, cols));
        if k > 0 {
            packed.data[packed.offset..packed.offset + cols.div_ceil(width) * k * width]
                .par_chunks_mut(k * width)
                .enumerate()
                .for_each(|(p, panel)| {
                    let mut col = vec![0f32; k];
                    for j in 0..width.min(cols - p * width) {
                        column(p * width + j, &mut col);
                        for (dst, &v) in panel[j..].iter_mut().step_by(width).zip(&col) {
                            *dst = v;
                        }
                    }
                });
        }
        packed
    }

    /// Zero panels for a `[k, cols]` matrix at `level` (which the CPU has).
    fn zeroed(level: Level, (k, cols): (usize, usize)) -> Self {
        let width = panel_width(level);
        let data = vec![0f32; cols.div_ceil(width) * k * width + LINE];
        let offset = data.as_ptr().align_offset(64).min(LINE);
        Self {
            k,
            cols,
            level,
            data,
            offset,
        }
    }

    /// Packs the `[k, cols]` matrix whose element (r, c) is `at(r, c)`, for the
    /// process's SIMD level.
    pub(crate) fn from_fn(
        (k, cols): (usize, usize),
        at: impl Fn(usize, usize) -> f32 + Sync,
    ) -> Self {
        Self::for_level(level(), (k, cols), at)
    }

    /// Packs for the kernel of `level` (or the best the CPU has, if it lacks it).
    pub(crate) fn for_level(
        level: Level,
        (k, cols): (usize, usize),
        at: impl Fn(usize, usize) -> f32 + Sync,
    ) -> Self {
        let level = level.or_best();
        let width = panel_width(level);
        let mut packed = Self::zeroed(level, (k, cols));
        if k > 0 {
            // Panels are independent: packed on every core (a layer's weights
            // are packed once per pass, on the training step's critical path).
            packed.data[packed.offset..packed.offset + cols.div_ceil(width) * k * width]
                .par_chunks_mut(k * width)
                .enumerate()
                .for_each(|(p, panel)| {
                    let real = width.min(cols - p * width);
                    for (r, row) in panel.chunks_exact_mut(width).enumerate() {
                        for (j, v) in row[..real].iter_mut().enumerate() {
                            *v = at(r, p * width + j);
                        }
                    }
                });
        }
        packed
    }

    /// `dst[m, cols] = start + lhs[m, k] @ rhs`, `lhs` row-major with rows
    /// `lhs_row` apart, `dst` row-major and dense.
    pub(crate) fn matmul(
        &self,
        m: usize,
        dst: &mut [f32],
        start: Start,
        lhs: &[f32],
        lhs_row: usize,
    ) {
        if self.check(m, dst, start, lhs, lhs_row) {
            let panels = self.cols.div_ceil(panel_width(self.level));
            self.panels(0..panels, m, dst, self.cols, start, lhs, lhs_row);
        }
    }

    /// Checks a product's operands (panics on a caller's bug); false when there
    /// is nothing to compute.
    fn check(&self, m: usize, dst: &[f32], start: Start, lhs: &[f32], lhs_row: usize) -> bool {
        let (k, cols) = (self.k, self.cols);
        assert!(dst.len() >= m * cols, "skinny: destination too small");
        assert!(
            m == 0 || lhs.len() >= (m - 1) * lhs_row + k,
            "skinny: lhs too small"
        );
        assert!(lhs_row >= k, "skinny: lhs rows overlap");
        if let Start::Bias(bias) = start {
            assert!(bias.len() >= cols, "skinny: bias too short");
        }
        m > 0 && cols > 0
    }

    /// The product's columns of panels `range` into `dst`, whose rows are
    /// `dst_row` apart and whose first column is the range's first; a `Bias`
    /// start holds the range's columns only.
    #[allow(clippy::too_many_arguments)]
    fn panels(
        &self,
        range: std::ops::Range<usize>,
        m: usize,
        dst: &mut [f32],
        dst_row: usize,
        start: Start,
        lhs: &[f32],
        lhs_row: usize,
    ) {
        let k = self.k;
        let (pw, rows) = (panel_width(self.level), tile_rows(self.level));
        let panels = &self.data[self.offset..];
        let first = range.start;
        for p in range {
            let width = pw.min(self.cols - p * pw);
            let panel = &panels[p * k * pw..(p + 1) * k * pw];
            let col = (p - first) * pw;
            let start = match start {
                Start::Bias(bias) => Start::Bias(&bias[col..col + width]),
                other => other,
            };
            for r0 in (0..m).step_by(rows) {
                let tile = Tile {
                    k,
                    lhs: &lhs[r0 * lhs_row..],
                    lhs_row,
                    panel,
                    dst: &mut dst[r0 * dst_row + col..],
                    dst_row,
                    width,
                    start,
                };
                let n = rows.min(m - r0);
                match self.level {
                    // SAFETY: `self.level` went through `or_best`, so the CPU
                    // has AVX-512F; `Tile` checks its own bounds.
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx512 => unsafe { avx512_tile(tile, n) },
                    // SAFETY: as above, the CPU has AVX2 and FMA.
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx2 => unsafe { avx2_tile(tile, n) },
                    _ => portable_tile(tile, n),
                }
            }
        }
    }
}

/// One register tile's operands: up to `tile_rows` rows of `lhs` against one
/// panel, into `width` (1..=panel width) columns of `dst`.
struct Tile<'a> {
    k: usize,
    lhs: &'a [f32],
    lhs_row: usize,
    panel: &'a [f32],
    dst: &'a mut [f32],
    dst_row: usize,
    width: usize,
    /// For `Bias`, the panel's `width` bias values.
    start: Start<'a>,
}

/// Runs `tile` for its first `rows` (1..=8) rows with AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512_tile(tile: Tile, rows: usize) {
    match rows {
        8 => avx512_rows::<8, 1>(tile),
        7 => avx512_rows::<7, 1>(tile),
        6 => avx512_rows::<6, 1>(tile),
        5 => avx512_rows::<5, 1>(tile),
        4 => avx512_rows::<4, 1>(tile),
        3 => avx512_rows::<3, 2>(tile),
        2 => avx512_rows::<2, 2>(tile),
        _ => avx512_rows::<1, 4>(tile),
    }
}

/// The AVX-512 register tile for `R` rows: `2RU` accumulators of 16 lanes, the
/// k steps dealt round-robin to `U` sets and summed at the end. An FMA waits ~4
/// cycles for its accumulator and two issue per cycle, so a tile needs about 8
/// independent chains: one or two rows (batch-1 inference) use `U` > 1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn avx512_rows<const R: usize, const U: usize>(tile: Tile) {
    use std::arch::x86_64::*;
    const PANEL: usize = panel_width(Level::Avx512);
    let Tile {
        k,
        lhs,
        lhs_row,
        panel,
        dst,
        dst_row,
        width,
        start,
    } = tile;
    assert!(lhs.len() >= (R - 1) * lhs_row + k && panel.len() >= k * PANEL);
    assert!(dst.len() >= (R - 1) * dst_row + width && width <= PANEL);
    // Lanes of the two vectors that hold real columns.
    let lanes = |w: usize| -> __mmask16 {
        if w >= 16 {
            0xffff
        } else {
            ((1u32 << w) - 1) as __mmask16
        }
    };
    let masks = [lanes(width), lanes(width.saturating_sub(16))];
    let c = dst.as_mut_ptr();
    // SAFETY (all loads and stores below): `p < k` keeps `b + p * 32 + 31`
    // inside the panel and `a + r * lhs_row + p` inside `lhs` for r < R; the
    // masks keep every `dst` and `bias` access to the `width` columns (asserted above).
    let mut acc = [[[_mm512_setzero_ps(); 2]; R]; U];
    match start {
        Start::Zero => {}
        Start::Dst => {
            for (r, acc) in acc[0].iter_mut().enumerate() {
                for (v, (a, &mask)) in acc.iter_mut().zip(&masks).enumerate() {
                    *a = unsafe { _mm512_maskz_loadu_ps(mask, c.add(r * dst_row + v * 16)) };
                }
            }
        }
        Start::Bias(bias) => {
            assert!(bias.len() >= width);
            let b = bias.as_ptr();
            let row = unsafe {
                [
                    _mm512_maskz_loadu_ps(masks[0], b),
                    _mm512_maskz_loadu_ps(masks[1], b.add(16)),
                ]
            };
            acc[0].iter_mut().for_each(|a| *a = row);
        }
    }
    let (a, b) = (lhs.as_ptr(), panel.as_ptr());
    let main = k - k % U;
    for p in (0..main).step_by(U) {
        for (u, acc) in acc.iter_mut().enumerate() {
            unsafe {
                let b0 = _mm512_loadu_ps(b.add((p + u) * PANEL));
                let b1 = _mm512_loadu_ps(b.add((p + u) * PANEL + 16));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(r * lhs_row + p + u));
                    acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
                }
            }
        }
    }
    for p in main..k {
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * PANEL));
            let b1 = _mm512_loadu_ps(b.add(p * PANEL + 16));
            for (r, acc) in acc[0].iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * lhs_row + p));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    let (first, rest) = acc.split_at_mut(1);
    for set in rest.iter() {
        for (sum, part) in first[0].iter_mut().zip(set) {
            sum[0] = _mm512_add_ps(sum[0], part[0]);
            sum[1] = _mm512_add_ps(sum[1], part[1]);
        }
    }
    for (r, acc) in first[0].iter().enumerate() {
        for (v, (&sum, &mask)) in acc.iter().zip(&masks).enumerate() {
            unsafe { _mm512_mask_storeu_ps(c.add(r * dst_row + v * 16), mask, sum) };
        }
    }
}

/// Runs `tile` for its first `rows` (1..=6) rows with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2_tile(tile: Tile, rows: usize) {
    match rows {
        6 => avx2_rows::<6, 1>(tile),
        5 => avx2_rows::<5, 1>(tile),
        4 => avx2_rows::<4, 1>(tile),
        3 => avx2_rows::<3, 1>(tile),
        2 => avx2_rows::<2, 2>(tile),
        _ => avx2_rows::<1, 4>(tile),
    }
}

/// A row's `width` starting values (zero past them) as one panel row.
fn padded<const W: usize>(src: &[f32], width: usize) -> [f32; W] {
    let mut row = [0f32; W];
    row[..width].copy_from_slice(&src[..width]);
    row
}

/// The starting value of each of the tile's `R` rows, one panel row each.
fn tile_start<const R: usize, const W: usize>(tile: &Tile) -> [[f32; W]; R] {
    let width = tile.width;
    match tile.start {
        Start::Zero => [[0.0; W]; R],
        Start::Dst => std::array::from_fn(|r| padded(&tile.dst[r * tile.dst_row..], width)),
        Start::Bias(bias) => [padded(bias, width); R],
    }
}

/// Writes the tile's `R` finished rows' `width` real columns into `dst`.
fn tile_store<const R: usize, const W: usize>(sums: &[[f32; W]; R], tile: &mut Tile) {
    for (r, row) in sums.iter().enumerate() {
        tile.dst[r * tile.dst_row..][..tile.width].copy_from_slice(&row[..tile.width]);
    }
}

/// The AVX2 register tile for `R` rows: `2RU` accumulators of 8 lanes (`U` as
/// in `avx512_rows`). Edge columns go through a padded copy of the row
/// (`tile_start`, `tile_store`): once per tile, not per step of k.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn avx2_rows<const R: usize, const U: usize>(mut tile: Tile) {
    use std::arch::x86_64::*;
    const PANEL: usize = panel_width(Level::Avx2);
    let (k, lhs_row) = (tile.k, tile.lhs_row);
    assert!(tile.lhs.len() >= (R - 1) * lhs_row + k && tile.panel.len() >= k * PANEL);
    assert!(tile.dst.len() >= (R - 1) * tile.dst_row + tile.width && tile.width <= PANEL);
    let start = tile_start::<R, PANEL>(&tile);
    // SAFETY (all loads and stores below): each `[f32; 16]` row holds two 8-lane
    // vectors; `p < k` keeps `b + p * 16 + 15` inside the panel and
    // `a + r * lhs_row + p` inside `lhs` for r < R (asserted above).
    let mut acc = [[[_mm256_setzero_ps(); 2]; R]; U];
    for (acc, row) in acc[0].iter_mut().zip(&start) {
        unsafe {
            *acc = [
                _mm256_loadu_ps(row.as_ptr()),
                _mm256_loadu_ps(row.as_ptr().add(8)),
            ]
        };
    }
    let (a, b) = (tile.lhs.as_ptr(), tile.panel.as_ptr());
    let main = k - k % U;
    for p in (0..main).step_by(U) {
        for (u, acc) in acc.iter_mut().enumerate() {
            unsafe {
                let b0 = _mm256_loadu_ps(b.add((p + u) * PANEL));
                let b1 = _mm256_loadu_ps(b.add((p + u) * PANEL + 8));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*a.add(r * lhs_row + p + u));
                    acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
                }
            }
        }
    }
    for p in main..k {
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * PANEL));
            let b1 = _mm256_loadu_ps(b.add(p * PANEL + 8));
            for (r, acc) in acc[0].iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add(r * lhs_row + p));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    let (first, rest) = acc.split_at_mut(1);
    for set in rest.iter() {
        for (sum, part) in first[0].iter_mut().zip(set) {
            sum[0] = _mm256_add_ps(sum[0], part[0]);
            sum[1] = _mm256_add_ps(sum[1], part[1]);
        }
    }
    let acc = &first[0];
    let mut sums = [[0f32; PANEL]; R];
    for (row, acc) in sums.iter_mut().zip(acc) {
        unsafe {
            _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
        }
    }
    tile_store(&sums, &mut tile);
}

/// Runs `tile` for its first `rows` (1..=4) rows in plain Rust.
fn portable_tile(tile: Tile, rows: usize) {
    // One row has too few accumulators to hide the add latency: split its k.
    match rows {
        4 => portable_rows::<4, 1>(tile),
        3 => portable_rows::<3, 1>(tile),
        2 if cfg!(target_arch = "aarch64") => portable_rows::<2, 2>(tile),
        2 => portable_rows::<2, 1>(tile),
        _ if cfg!(target_arch = "aarch64") => portable_rows::<1, 4>(tile),
        _ => portable_rows::<1, 2>(tile),
    }
}

/// `acc + a * b`: one fused instruction on aarch64 (NEON always has FMA); a
/// multiply and an add elsewhere, where `mul_add` without FMA in the baseline
/// would be a slow library call.
#[inline(always)]
fn madd(acc: f32, a: f32, b: f32) -> f32 {
    #[cfg(target_arch = "aarch64")]
    {
        a.mul_add(b, acc)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        acc + a * b
    }
}

/// The portable register tile for `R` rows: fixed-size accumulator arrays that
/// LLVM keeps in vector registers, the inner loop over the 16 columns of a
/// panel row unrolled into 4-lane (NEON, SSE) operations; k dealt to `U` sets
/// of accumulators as in `avx512_rows`.
#[inline(always)]
fn portable_rows<const R: usize, const U: usize>(mut tile: Tile) {
    const PANEL: usize = panel_width(Level::Portable);
    let (k, lhs_row) = (tile.k, tile.lhs_row);
    assert!(tile.lhs.len() >= (R - 1) * lhs_row + k && tile.panel.len() >= k * PANEL);
    assert!(tile.dst.len() >= (R - 1) * tile.dst_row + tile.width && tile.width <= PANEL);
    let mut acc = [[[0f32; PANEL]; R]; U];
    acc[0] = tile_start::<R, PANEL>(&tile);
    // Each row's k values as its own slice, so the loop below needs no bounds checks.
    let rows: [&[f32]; R] = std::array::from_fn(|r| &tile.lhs[r * lhs_row..r * lhs_row + k]);
    // `U` panel rows at a time, one to each set (constant indices, so the sets
    // stay in registers), then the k % U left to the first set.
    let main = k - k % U;
    let step = |acc: &mut [[f32; PANEL]; R], p: usize, b: &[f32]| {
        let b: &[f32; PANEL] = b.try_into().unwrap_or(&[0.0; PANEL]);
        for (acc, row) in acc.iter_mut().zip(&rows) {
            let a = row[p];
            for (c, &bv) in acc.iter_mut().zip(b) {
                *c = madd(*c, a, bv);
            }
        }
    };
    for (q, group) in tile.panel[..main * PANEL]
        .chunks_exact(U * PANEL)
        .enumerate()
    {
        for (u, (acc, b)) in acc.iter_mut().zip(group.chunks_exact(PANEL)).enumerate() {
            step(acc, q * U + u, b);
        }
    }
    for p in main..k {
        step(&mut acc[0], p, &tile.panel[p * PANEL..(p + 1) * PANEL]);
    }
    let (first, rest) = acc.split_at_mut(1);
    for set in rest.iter() {
        for (sum, part) in first[0].iter_mut().zip(set) {
            sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
        }
    }
    tile_store(&first[0], &mut tile);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::gemm::{Threads, matmul, row_major, transposed};

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Every kernel level (each forced, whatever `TRAINLAB_SIMD` says; a level the
    /// CPU lacks runs its best instead), every row count of a tile and its
    /// remainder, full and partial panels, both stored orientations, from zero,
    /// from `dst` and from a bias, against the `gemm` crate.
    #[test]
    fn every_level_matches_the_general_gemm_at_every_edge() {
        for &(m, k, cols) in &[
            (16, 256, 1024),
            (1, 3, 1),
            (7, 5, 33),
            (9, 17, 47),
            (13, 64, 16),
            (32, 40, 80),
            (11, 1, 15),
            (5, 0, 9),
            // One to three rows split k into sets: lengths that do not divide.
            (1, 321, 70),
            (2, 99, 40),
            (3, 131, 47),
            (1, 2, 33),
        ] {
            let lhs_row = k + 3;
            let lhs = values(m * lhs_row, 7);
            let rhs = values(k * cols, 11);
            let rhs_t: Vec<f32> = (0..cols * k).map(|x| rhs[(x % k) * cols + x / k]).collect();
            let bias = values(cols, 17);
            for how in ["zero", "dst", "bias"] {
                let start = values(m * cols, 13);
                let mut expected = start.clone();
                if how == "bias" {
                    for row in expected.chunks_mut(cols) {
                        row.copy_from_slice(&bias);
                    }
                }
                matmul(
                    (m, cols, k),
                    &mut expected,
                    how != "zero",
                    &lhs,
                    (lhs_row, 1),
                    &rhs,
                    row_major(cols),
                    Threads::One,
                );
                for level in [Level::Avx512, Level::Avx2, Level::Portable] {
                    for (name, strides, stored) in [
                        ("row-major", row_major(cols), &rhs),
                        ("transposed", transposed(k), &rhs_t),
                    ] {
                        let packed = PackedRhs::for_level(level, (k, cols), |r, c| {
                            stored[r * strides.0 + c * strides.1]
                        });
                        let mut out = start.clone();
                        let from = match how {
                            "zero" => Start::Zero,
                            "dst" => Start::Dst,
                            _ => Start::Bias(&bias),
                        };
                        packed.matmul(m, &mut out, from, &lhs, lhs_row);
                        let worst = out
                            .iter()
                            .zip(&expected)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(
                            worst < 1e-3,
                            "{m}x{k}x{cols} {level:?} {name} from {how}: off by {worst}"
                        );
                    }
                }
            }
        }
    }

    /// Whole columns pack to the same panels as single elements.
    #[test]
    fn packing_by_columns_changes_nothing() {
        for &(k, cols) in &[(321, 1024), (5, 33), (17, 47), (1, 15), (0, 9), (4, 200)] {
            let stored = values(cols * k, 3); // `[cols, k]`, as weights are kept
            let by_element = PackedRhs::from_fn((k, cols), |r, c| stored[c * k + r]);
            let by_column = PackedRhs::new(&stored, (k, cols), transposed(k));
            let width = panel_width(by_column.level);
            let len = cols.div_ceil(width) * k * width;
            assert_eq!(
                by_element.data[by_element.offset..][..len],
                by_column.data[by_column.offset..][..len],
                "{k}x{cols}"
            );
        }
    }

    /// `new` packs for the process's level, and a level the CPU lacks falls back.
    #[test]
    fn packing_follows_the_process_level() {
        let packed = PackedRhs::new(&[1.0, 2.0], (1, 2), row_major(2));
        assert_eq!(packed.level, level());
        for asked in [Level::Avx512, Level::Avx2, Level::Portable] {
            let packed = PackedRhs::for_level(asked, (1, 1), |_, _| 1.0);
            assert!(
                packed.level <= asked && packed.level.available(),
                "{asked:?}"
            );
        }
    }
}
