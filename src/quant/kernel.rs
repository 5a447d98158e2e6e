//! int8 dot products: `sum a[i] * b[i]` over int8 values held widened to i16,
//! accumulated in i32. An AVX2 kernel (`vpmaddwd` pairs into i32) where the CPU
//! has it, and a portable one everywhere else (it compiles to NEON or
//! SSE as the compiler sees fit). `TRAINLAB_INT8=portable` forces the portable
//! kernel on any machine, so its path is tested on AVX2 machines too.
//!
//! Contract: both kernels give exactly the same sums (integer arithmetic);
//! inputs are at most 127 in magnitude so no i16 product pair can overflow.

/// Which kernel computes the dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Kernel {
    /// 256-bit AVX2.
    Avx2,
    /// Plain Rust.
    Portable,
}

impl Int8Kernel {
    /// The best kernel here, unless `TRAINLAB_INT8=portable`.
    pub fn detect() -> Self {
        if std::env::var("TRAINLAB_INT8").is_ok_and(|v| v == "portable") {
            return Self::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Self::Avx2;
        }
        Self::Portable
    }
}

/// Sums of one weight row with four input rows at once (weights are loaded once
/// for the four), all widened to i16.
pub fn dot16x4(kernel: Int8Kernel, w: &[i16], x: [&[i16]; 4]) -> [i32; 4] {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2 is only chosen when the CPU reports AVX2.
        Int8Kernel::Avx2 => unsafe { dot16x4_avx2(w, x) },
        _ => x.map(|r| dot16_portable(w, r)),
    }
}

/// One weight row with one input row, widened to i16.
pub fn dot16(kernel: Int8Kernel, w: &[i16], x: &[i16]) -> i32 {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Int8Kernel::Avx2 => unsafe { dot16_avx2(w, x) },
        _ => dot16_portable(w, x),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot16_avx2(w: &[i16], x: &[i16]) -> i32 {
    use std::arch::x86_64::*;
    let n = w.len().min(x.len());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so 16 values are readable from both.
        unsafe {
            let vw = _mm256_loadu_si256(w.as_ptr().add(i).cast());
            let vx = _mm256_loadu_si256(x.as_ptr().add(i).cast());
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(vw, vx));
        }
        i += 16;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: lanes holds 8 i32 = 32 bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
    lanes.iter().sum::<i32>() + dot16_portable(&w[i..n], &x[i..n])
}

fn dot16_portable(w: &[i16], x: &[i16]) -> i32 {
    w.iter()
        .zip(x)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot16x4_avx2(w: &[i16], x: [&[i16]; 4]) -> [i32; 4] {
    use std::arch::x86_64::*;
    let n = x.iter().fold(w.len(), |m, r| m.min(r.len()));
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so 16 values are readable from every row.
        unsafe {
            let vw = _mm256_loadu_si256(w.as_ptr().add(i).cast());
            for (a, r) in acc.iter_mut().zip(&x) {
                let vx = _mm256_loadu_si256(r.as_ptr().add(i).cast());
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(vw, vx));
            }
        }
        i += 16;
    }
    let mut out = [0i32; 4];
    for (o, (a, r)) in out.iter_mut().zip(acc.iter().zip(&x)) {
        let mut lanes = [0i32; 8];
        // SAFETY: lanes holds 8 i32 = 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), *a) };
        *o = lanes.iter().sum::<i32>() + dot16_portable(&w[i..n], &r[i..n]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widened_kernels_give_the_exact_sums() {
        let mut rng = crate::util::rng::Rng::new(9);
        for n in [1, 16, 33, 784] {
            let row = |rng: &mut crate::util::rng::Rng| -> Vec<i16> {
                (0..n).map(|_| rng.below(255) as i16 - 127).collect()
            };
            let w = row(&mut rng);
            let xs: Vec<Vec<i16>> = (0..4).map(|_| row(&mut rng)).collect();
            let exact: Vec<i32> = xs.iter().map(|x| dot16_portable(&w, x)).collect();
            for k in [Int8Kernel::Portable, Int8Kernel::detect()] {
                let got = dot16x4(k, &w, [&xs[0], &xs[1], &xs[2], &xs[3]]);
                assert_eq!(got.to_vec(), exact, "{k:?}, n {n}");
                assert_eq!(dot16(k, &w, &xs[1]), exact[1], "{k:?}, n {n}");
            }
        }
    }
}
