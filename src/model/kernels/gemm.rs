//! One safe-to-call wrapper over the `gemm` crate for the fused CPU kernels.
//!
//! Contract: `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] @ rhs[k, n]`, every
//! operand addressed by explicit (row, column) strides so transposed views need no
//! copy. `dst` is row-major and dense. Panics are impossible by construction: the
//! sizes are checked against the slice lengths before the unsafe call.

use rayon::prelude::*;

use super::scratch::Scratch;

/// How a product may use the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    /// On the calling thread: the caller already runs one product per core.
    One,
    /// Split across the rayon pool when the product is large enough to gain.
    Pool,
}

/// Multiply-adds below which a product stays on one core even when asked to
/// use the pool: handing a share to another core costs more than it saves.
/// With the pool kept awake during training (`util::threads::PoolWarmer`), the
/// MLP's 6.4M-multiply-add products gain from the split (MLP step ~1.3x); with
/// sleeping workers they lost (1.4x slower), as they did below this size.
const POOL_MIN_WORK: usize = 1 << 20;

/// Row and column strides of an operand, in elements.
pub(crate) type Strides = (usize, usize);

/// Row-major strides of a `[rows, cols]` matrix.
pub(crate) const fn row_major(cols: usize) -> Strides {
    (cols, 1)
}

/// Strides that read a stored row-major `[r, stored_cols]` matrix as its
/// transpose `[stored_cols, r]`.
pub(crate) const fn transposed(stored_cols: usize) -> Strides {
    (1, stored_cols)
}

/// Largest element index an `[r, c]` operand with `strides` touches, plus one.
fn extent(r: usize, c: usize, (rs, cs): Strides) -> usize {
    if r == 0 || c == 0 {
        0
    } else {
        (r - 1) * rs + (c - 1) * cs + 1
    }
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: Strides,
    rhs: &[f32],
    rhs_strides: Strides,
    threads: Threads,
) {
    assert!(dst.len() >= m * n, "gemm: destination too small");
    assert!(
        lhs.len() >= extent(m, k, lhs_strides),
        "gemm: lhs too small"
    );
    assert!(
        rhs.len() >= extent(k, n, rhs_strides),
        "gemm: rhs too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let pool = candle_core::utils::get_num_threads();
    let split = threads == Threads::Pool && pool > 1 && m * n * k >= POOL_MIN_WORK;
    let parts = if split {
        pool.min(n / SPLIT_MIN_COLS)
    } else {
        1
    };
    if parts < 2 {
        // Too few columns to share out: the library splits the rows instead.
        let parallelism = match split {
            true => gemm::Parallelism::Rayon(pool),
            false => gemm::Parallelism::None,
        };
        // SAFETY: checked above: every addressed element lies inside its slice.
        unsafe {
            product(
                (m, n, k),
                (dst.as_mut_ptr(), n, accumulate),
                (lhs, lhs_strides),
                (rhs, rhs_strides),
                parallelism,
            )
        };
        return;
    }
    // One block of output columns per core, each a product of its own. The
    // library's own split packs a row-major weight on the calling thread
    // while the other cores wait (the CNN's 128 x 9216 layer: 4.7 MB a step);
    // here each core packs its share.
    let per = n.div_ceil(parts).next_multiple_of(16);
    let dst_at = SendPtr(dst.as_mut_ptr());
    (0..n.div_ceil(per)).into_par_iter().for_each(|part| {
        let j0 = part * per;
        let cols = per.min(n - j0);
        let dst_at = &dst_at;
        // SAFETY: block `part` writes only columns j0..j0 + cols of every row of
        // `dst` (no other block touches them) and reads rhs columns from j0 on,
        // all inside the bounds checked above.
        unsafe {
            product(
                (m, cols, k),
                (dst_at.0.add(j0), n, accumulate),
                (lhs, lhs_strides),
                (&rhs[j0 * rhs_strides.1..], rhs_strides),
                gemm::Parallelism::None,
            )
        };
    });
}

/// Values added to each column of a copied operand (64 bytes).
const ALIAS_PAD: usize = 16;

/// A copy of `rhs [k, n]` with its columns `k + ALIAS_PAD` apart when it is a
/// transposed view (each column contiguous) whose columns lie a multiple of
/// 2 KB apart, as a `[n, k]` weight with k = 1024, 2048 or 9216 does: the
/// library's packing then reads its columns through the same few L1 cache
/// sets, and the product ran at a third of its speed (64 x 64 x 9216: 33
/// GFLOP/s; the copy and the product together: ~85).
fn unaliased(n: usize, k: usize, rhs: &[f32], (rs, cs): Strides) -> Option<Scratch> {
    if rs != 1 || cs < k || !(cs * size_of::<f32>()).is_multiple_of(2048) || k < 256 {
        return None;
    }
    let stride = k + ALIAS_PAD;
    // The padding is never read: a pooled buffer, not a zero-filled one.
    let mut copy = Scratch::uninit(n * stride);
    for (j, col) in copy.chunks_exact_mut(stride).enumerate() {
        col[..k].copy_from_slice(&rhs[j * cs..j * cs + k]);
    }
    Some(copy)
}

/// Columns below which a block is not worth a core of its own.
const SPLIT_MIN_COLS: usize = 64;

/// A destination shared by blocks that write disjoint columns.
struct SendPtr(*mut f32);
// SAFETY: only used to hand each block its own columns (see `matmul`).
unsafe impl Sync for SendPtr {}

/// `dst[m, n] (+)= lhs @ rhs`, `dst` rows `dst_rs` apart.
///
/// # Safety
/// Every element addressed through the sizes and strides lies inside its
/// slice, and nothing else accesses the addressed part of `dst` meanwhile.
unsafe fn product(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs, accumulate): (*mut f32, usize, bool),
    (lhs, lhs_strides): (&[f32], Strides),
    (rhs, rhs_strides): (&[f32], Strides),
    parallelism: gemm::Parallelism,
) {
    let copy = unaliased(n, k, rhs, rhs_strides);
    let (rhs, rhs_strides) = match &copy {
        Some(copy) => (&copy[..], (1, k + ALIAS_PAD)),
        None => (rhs, rhs_strides),
    };
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1 as isize,
            lhs_strides.0 as isize,
            rhs.as_ptr(),
            rhs_strides.1 as isize,
            rhs_strides.0 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stride combination against a plain triple loop, on one core and
    /// (the second shape: above `POOL_MIN_WORK`, an odd column count) split in
    /// column blocks over the pool.
    #[test]
    fn matches_naive_product_for_every_layout() {
        check_layouts((5, 7, 3));
        check_layouts((33, 200, 160));
        // Columns 2 KB apart: the transposed right operand is copied first.
        check_layouts((3, 20, 512));
    }

    fn check_layouts((m, n, k): (usize, usize, usize)) {
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| 1.0 - i as f32 * 0.25).collect();
        let at = |i: usize, p: usize| a[i * k + p];
        let bt = |p: usize, j: usize| b[p * n + j];
        // The same values stored transposed.
        let a_t: Vec<f32> = (0..k * m).map(|x| at(x % m, x / m)).collect();
        let b_t: Vec<f32> = (0..n * k).map(|x| bt(x % k, x / k)).collect();
        let expected: Vec<f32> = (0..m * n)
            .map(|x| (0..k).map(|p| at(x / n, p) * bt(p, x % n)).sum())
            .collect();
        // Rounding grows with the terms' magnitudes, not with their (cancelling) sum.
        let magnitude: Vec<f32> = (0..m * n)
            .map(|x| (0..k).map(|p| (at(x / n, p) * bt(p, x % n)).abs()).sum())
            .collect();
        let lhs = [(&a, row_major(k)), (&a_t, transposed(m))];
        let rhs = [(&b, row_major(n)), (&b_t, transposed(k))];
        for (li, (l, ls)) in lhs.iter().enumerate() {
            for (ri, (r, rs)) in rhs.iter().enumerate() {
                let mut out = vec![1.0; m * n];
                matmul((m, n, k), &mut out, true, l, *ls, r, *rs, Threads::Pool);
                for ((o, e), mag) in out.iter().zip(&expected).zip(&magnitude) {
                    assert!(
                        (o - (e + 1.0)).abs() < (1e-6 * mag).max(1e-4),
                        "{m}x{n}x{k} layout {li}{ri}: {o} vs {e}+1"
                    );
                }
            }
        }
    }
}
