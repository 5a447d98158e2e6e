//! One safe-to-call wrapper over the `gemm` crate for the fused CPU kernels.
//!
//! Contract: `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] @ rhs[k, n]`, every
//! operand addressed by explicit (row, column) strides so transposed views need no
//! copy. `dst` is row-major and dense. Panics are impossible by construction: the
//! sizes are checked against the slice lengths before the unsafe call.

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
    let parallelism = match threads {
        Threads::Pool if pool > 1 && m * n * k >= POOL_MIN_WORK => gemm::Parallelism::Rayon(pool),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: the asserts above guarantee that every element addressed through the
    // given sizes and strides lies inside its slice, and `dst` is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
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

    /// Every stride combination against a plain triple loop.
    #[test]
    fn matches_naive_product_for_every_layout() {
        let (m, n, k) = (5, 7, 3);
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
        let lhs = [(&a, row_major(k)), (&a_t, transposed(m))];
        let rhs = [(&b, row_major(n)), (&b_t, transposed(k))];
        for (li, (l, ls)) in lhs.iter().enumerate() {
            for (ri, (r, rs)) in rhs.iter().enumerate() {
                let mut out = vec![1.0; m * n];
                matmul((m, n, k), &mut out, true, l, *ls, r, *rs, Threads::Pool);
                for (o, e) in out.iter().zip(&expected) {
                    assert!(
                        (o - (e + 1.0)).abs() < 1e-4,
                        "layout {li}{ri}: {o} vs {e}+1"
                    );
                }
            }
        }
    }
}
