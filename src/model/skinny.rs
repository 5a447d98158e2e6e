//! Products with few rows against a right-hand side that stays fixed for many
//! of them: one time step of a recurrent layer, `[n, k] @ [k, cols]` with n the
//! sequences one core handles (16 for a batch of 32 on two cores).
//!
//! Contract: `PackedRhs::new` copies a `[k, cols]` matrix once (any strides);
//! `PackedRhs::matmul` then computes `dst[m, cols] = start + lhs[m, k] @ rhs`
//! (`start`: zero, `dst` itself, or one bias row) for a row-major `lhs` on the
//! calling thread, as often as needed. Results equal the `gemm` crate's within
//! float rounding (tested below, every edge size).
//!
//! Why not the general GEMM: with 16 rows it repacks or re-reads the whole
//! right-hand side at every call and reaches under half of one core's peak.
//! Here the weights are packed once per layer pass into 32-column panels, k-major,
//! 64-byte aligned; an AVX-512 tile of 8 rows x 32 columns keeps 16 accumulators
//! in registers, each step reading two panel vectors and broadcasting eight `lhs`
//! values (a panel of up to ~350 rows stays in L1 between the row tiles). Without AVX-512 the
//! packed copy is a plain row-major matrix handed to the `gemm` crate.

use rayon::prelude::*;

use super::gemm::{Strides, Threads, matmul, row_major};

/// Columns per panel: two AVX-512 vectors.
const PANEL: usize = 32;
/// Rows per register tile.
const TILE_ROWS: usize = 8;
/// f32s per 64-byte line: the packed panels start on a cache line.
const LINE: usize = 16;

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
    layout: Packing,
}

enum Packing {
    /// 32-column panels, each `k` rows of 32 values (zero past `cols`), starting
    /// at `offset` in `data` so the first panel is 64-byte aligned.
    #[cfg(target_arch = "x86_64")]
    Panels { data: Vec<f32>, offset: usize },
    /// Row-major `[k, cols]` for the `gemm` crate.
    RowMajor(Vec<f32>),
}

impl PackedRhs {
    /// Packs `rhs`, a `[k, cols]` matrix read through `strides`.
    pub(crate) fn new(rhs: &[f32], (k, cols): (usize, usize), strides: Strides) -> Self {
        Self::from_fn((k, cols), |r, c| rhs[r * strides.0 + c * strides.1])
    }

    /// Packs the `[k, cols]` matrix whose element (r, c) is `at(r, c)`.
    pub(crate) fn from_fn(
        (k, cols): (usize, usize),
        at: impl Fn(usize, usize) -> f32 + Sync,
    ) -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let panels = cols.div_ceil(PANEL);
            let mut data = vec![0f32; panels * k * PANEL + LINE];
            let offset = data.as_ptr().align_offset(64).min(LINE);
            // Panels are independent: packed on every core (a layer's weights
            // are packed once per pass, on the training step's critical path).
            data[offset..offset + panels * k * PANEL]
                .par_chunks_mut(k * PANEL)
                .enumerate()
                .for_each(|(p, panel)| {
                    let width = PANEL.min(cols - p * PANEL);
                    for (r, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                        for (j, v) in row[..width].iter_mut().enumerate() {
                            *v = at(r, p * PANEL + j);
                        }
                    }
                });
            let layout = Packing::Panels { data, offset };
            return Self { k, cols, layout };
        }
        Self::row_major((k, cols), at)
    }

    /// The plain row-major copy (what CPUs without AVX-512 get).
    fn row_major((k, cols): (usize, usize), at: impl Fn(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(k * cols);
        for r in 0..k {
            data.extend((0..cols).map(|c| at(r, c)));
        }
        let layout = Packing::RowMajor(data);
        Self { k, cols, layout }
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
        if m == 0 || cols == 0 {
            return;
        }
        match &self.layout {
            Packing::RowMajor(rhs) => {
                let accumulate = match start {
                    Start::Zero => false,
                    Start::Dst => true,
                    Start::Bias(bias) => {
                        for row in dst[..m * cols].chunks_mut(cols) {
                            row.copy_from_slice(&bias[..cols]);
                        }
                        true
                    }
                };
                matmul(
                    (m, cols, k),
                    dst,
                    accumulate,
                    lhs,
                    (lhs_row, 1),
                    rhs,
                    row_major(cols),
                    Threads::One,
                );
            }
            #[cfg(target_arch = "x86_64")]
            Packing::Panels { data, offset } => {
                let panels = &data[*offset..];
                for p in 0..cols.div_ceil(PANEL) {
                    let width = PANEL.min(cols - p * PANEL);
                    let panel = &panels[p * k * PANEL..(p + 1) * k * PANEL];
                    let start = match start {
                        Start::Bias(bias) => Start::Bias(&bias[p * PANEL..p * PANEL + width]),
                        other => other,
                    };
                    for r0 in (0..m).step_by(TILE_ROWS) {
                        let tile = Tile {
                            k,
                            lhs: &lhs[r0 * lhs_row..],
                            lhs_row,
                            panel,
                            dst: &mut dst[r0 * cols + p * PANEL..],
                            dst_row: cols,
                            width,
                            start,
                        };
                        // SAFETY: `Panels` is only built when the CPU has AVX-512F
                        // (`from_fn`), and `Tile` checks its own bounds.
                        unsafe { avx512_tile(tile, TILE_ROWS.min(m - r0)) };
                    }
                }
            }
        }
    }
}

/// One register tile's operands: up to 8 rows of `lhs` against one panel,
/// into `width` (1..=32) columns of `dst`.
#[cfg(target_arch = "x86_64")]
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

/// Runs `tile` for its first `rows` (1..=8) rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512_tile(tile: Tile, rows: usize) {
    match rows {
        8 => tile_rows::<8>(tile),
        7 => tile_rows::<7>(tile),
        6 => tile_rows::<6>(tile),
        5 => tile_rows::<5>(tile),
        4 => tile_rows::<4>(tile),
        3 => tile_rows::<3>(tile),
        2 => tile_rows::<2>(tile),
        _ => tile_rows::<1>(tile),
    }
}

/// The register tile for `R` rows: `2R` accumulators of 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn tile_rows<const R: usize>(tile: Tile) {
    use std::arch::x86_64::*;
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
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    match start {
        Start::Zero => {}
        Start::Dst => {
            for (r, acc) in acc.iter_mut().enumerate() {
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
            acc.iter_mut().for_each(|a| *a = row);
        }
    }
    let (a, b) = (lhs.as_ptr(), panel.as_ptr());
    for p in 0..k {
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * PANEL));
            let b1 = _mm512_loadu_ps(b.add(p * PANEL + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * lhs_row + p));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, (&sum, &mask)) in acc.iter().zip(&masks).enumerate() {
            unsafe { _mm512_mask_storeu_ps(c.add(r * dst_row + v * 16), mask, sum) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gemm::transposed;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Every row count of a tile and its remainder, full and partial panels, both
    /// stored orientations and the non-AVX-512 fallback, from zero, from `dst` and
    /// from a bias, against the `gemm` crate.
    #[test]
    fn matches_the_general_gemm_at_every_edge() {
        for &(m, k, cols) in &[
            (16, 256, 1024),
            (1, 3, 1),
            (7, 5, 33),
            (9, 17, 47),
            (13, 64, 16),
            (32, 40, 80),
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
                let plain = PackedRhs::row_major((k, cols), |r, c| rhs[r * cols + c]);
                for (name, packed) in [
                    ("fallback", plain),
                    (
                        "row-major",
                        PackedRhs::new(&rhs, (k, cols), row_major(cols)),
                    ),
                    (
                        "transposed",
                        PackedRhs::new(&rhs_t, (k, cols), transposed(k)),
                    ),
                ] {
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
                        "{m}x{k}x{cols} {name} from {how}: off by {worst}"
                    );
                }
            }
        }
    }
}
