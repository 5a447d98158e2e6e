//! Data layout helpers shared by the fused kernels (mostly the recurrent ones),
//! and the one gradient the recurrent kernels compute the same way.
//!
//! The layers around a recurrent layer are batch-major (`[b, t, width]`); inside,
//! the kernels split the batch into one run of rows per core and keep each run
//! time-major (`[t, n, width]`) so that one step's rows form one matrix.

use super::gemm::{Threads, matmul, row_major, transposed};

/// Fewest sequences worth a run of their own in a recurrent layer: one full
/// AVX-512 register tile of the skinny product (`skinny.rs`; over one AVX2
/// tile). Every run streams the whole packed weight matrix through its core at
/// every step, whatever its row count, so a run of 2 rows (batch 32 on 16
/// cores) pays the full weight traffic for a quarter-filled tile; fewer, fuller
/// runs then finish sooner.
pub(crate) const MIN_RECURRENT_ROWS: usize = 8;

/// Rows per run: `b` rows split evenly over the pool's threads, each run at
/// least `min_rows` long (fewer runs, so fewer threads, for small batches).
pub(crate) fn rows_per_run(b: usize, min_rows: usize) -> usize {
    split_rows(b, rayon::current_num_threads(), min_rows)
}

/// Rows per run for `b` rows on `threads` threads: at least `min_rows` (or all
/// of `b` when it is smaller), always at least 1. Runs are cut in this size, so
/// only the last may be shorter (33 rows at 9 a run: 9, 9, 9, 6).
pub(crate) fn split_rows(b: usize, threads: usize, min_rows: usize) -> usize {
    let most_runs = (b / min_rows.max(1)).clamp(1, threads.max(1));
    b.div_ceil(most_runs).max(1)
}

/// A run's rows `[n, t, width]` (batch-major) reordered to `[t, n, width]`.
pub(crate) fn to_time_major(src: &[f32], n: usize, t: usize, width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * t * width);
    for s in 0..t {
        for r in 0..n {
            out.extend_from_slice(&src[(r * t + s) * width..(r * t + s + 1) * width]);
        }
    }
    out
}

/// Writes a run's time-major `[t, n, width]` values into batch-major `dst [n, t, width]`.
pub(crate) fn to_batch_major(src: &[f32], n: usize, t: usize, width: usize, dst: &mut [f32]) {
    for r in 0..n {
        for s in 0..t {
            dst[(r * t + s) * width..(r * t + s + 1) * width]
                .copy_from_slice(&src[(s * n + r) * width..(s * n + r + 1) * width]);
        }
    }
}

/// Step `s` of a run's batch-major output gradient `dhs [n, t, h]`, plus the
/// gradient carried back from step `s + 1`, into `dh [n, h]`.
pub(crate) fn step_gradient(
    dhs: &[f32],
    carried: &[f32],
    (s, n, t, h): (usize, usize, usize, usize),
    dh: &mut [f32],
) {
    for r in 0..n {
        let out = &dhs[(r * t + s) * h..(r * t + s + 1) * h];
        let next = &carried[r * h..(r + 1) * h];
        for ((d, &a), &b) in dh[r * h..(r + 1) * h].iter_mut().zip(out).zip(next) {
            *d = a + b;
        }
    }
}

/// The sum of every row of a row-major matrix with `cols` columns: a bias gradient.
pub(crate) fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0f32; cols];
    for row in m.chunks(cols) {
        sums.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    sums
}

/// A row-major `[rows, cols]` matrix transposed to row-major `[cols, rows]`, in
/// 32x32 tiles so that reads and writes both stay within a few cache lines.
pub(crate) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; rows * cols];
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                let row = &m[i * cols..(i + 1) * cols];
                for j in j0..(j0 + TILE).min(cols) {
                    out[j * rows + i] = row[j];
                }
            }
        }
    }
    out
}

/// Adds each partial sum into the first one: per-run weight gradients.
pub(crate) fn sum_parts(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut iter = parts.into_iter();
    let mut total = iter.next().unwrap_or_else(|| vec![0f32; len]);
    for part in iter {
        total.iter_mut().zip(&part).for_each(|(a, v)| *a += v);
    }
    total
}

/// The recurrent weight gradient of one run, transposed: `sum over steps s >= 1
/// of h_{s-1}^T @ dpre_s`, `[h, g]`, as one GEMM over all the run's rows, from the
/// time-major gate gradients `dpre [t, n, g]` and hidden states `hs [t, n, h]`.
/// Callers add up the runs' parts and transpose once.
pub(crate) fn recurrent_weight_gradient(
    dpre: &[f32],
    hs: &[f32],
    (n, t): (usize, usize),
    (g, h): (usize, usize),
) -> Vec<f32> {
    if t < 2 {
        return vec![0f32; g * h];
    }
    // In this orientation the GEMM library repacks the hidden states rather than
    // the g/h times larger gate gradients.
    let rows = (t - 1) * n;
    let mut dw_t = vec![0f32; h * g];
    matmul(
        (h, g, rows),
        &mut dw_t,
        false,
        &hs[..rows * h],
        transposed(h),
        &dpre[n * g..],
        row_major(g),
        Threads::One,
    );
    dw_t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rows, threads, minimum) -> rows per run, and the runs it gives.
    #[test]
    fn the_split_keeps_every_run_at_its_minimum() {
        for (b, threads, min, per, runs) in [
            (32, 2, 8, 16, 2),
            (32, 16, 8, 8, 4),
            (32, 16, 1, 2, 16),
            (33, 16, 8, 9, 4),
            (7, 16, 8, 7, 1),
            (64, 4, 8, 16, 4),
            (1, 1, 8, 1, 1),
            (0, 4, 8, 1, 0),
            (5, 0, 0, 5, 1),
        ] {
            let got = split_rows(b, threads, min);
            assert_eq!(
                (got, b.div_ceil(got)),
                (per, runs),
                "{b} rows, {threads} threads, min {min}"
            );
            if b >= min {
                assert!(got >= min, "{b} rows, {threads} threads, min {min}");
            }
        }
    }

    #[test]
    fn layouts_round_trip_and_transpose_is_exact() {
        let (n, t, w) = (3, 4, 2);
        let batch: Vec<f32> = (0..n * t * w).map(|i| i as f32).collect();
        let time = to_time_major(&batch, n, t, w);
        // Row r = 1 at step s = 2 sits at (s * n + r) time-major.
        assert_eq!(time[(2 * n + 1) * w], batch[(t + 2) * w]);
        let mut back = vec![0.0; batch.len()];
        to_batch_major(&time, n, t, w, &mut back);
        assert_eq!(back, batch);
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(transpose(&m, 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(
            sum_parts(vec![vec![1.0, 2.0], vec![3.0, 4.0]], 2),
            vec![4.0, 6.0]
        );
        assert_eq!(sum_parts(Vec::new(), 2), vec![0.0, 0.0]);
        assert_eq!(column_sums(&m, 3), vec![5.0, 7.0, 9.0]);
        // Step 2 of row 1 of a [2, 3, 1] gradient, plus what step 3 carried back.
        let mut dh = [0.0; 2];
        step_gradient(
            &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            &[10.0, 20.0],
            (2, 2, 3, 1),
            &mut dh,
        );
        assert_eq!(dh, [12.0, 25.0]);
    }
}
