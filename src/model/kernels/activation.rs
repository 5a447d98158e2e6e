//! Vectorisable sigmoid and tanh for the fused recurrent cells.
//!
//! libm's `tanhf`/`expf` are scalar calls; in an LSTM they cost as much as the
//! matrix products. These use a branch-free exp (range reduction to
//! `2^k * e^r`, degree-6 polynomial) that the compiler turns into SIMD, run with
//! AVX-512 or AVX2+FMA as `util::simd::level()` allows. Accuracy: within 2e-7
//! absolute of libm over the whole f32 range (tested below); NaN stays NaN.

use std::f32::consts::LOG2_E;

/// Adding and subtracting 1.5 * 2^23 rounds an f32 of magnitude < 2^22 to the
/// nearest integer without a rounding instruction.
const ROUND: f32 = 12_582_912.0;
/// ln 2 split so that `k * LN2_HI` is exact for the k that occur (Cody-Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^x, vectorisable (see the module comment for its accuracy).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // Beyond these, e^x is not a normal f32 anyway.
    let x = x.clamp(-87.0, 88.0);
    // `shifted` is 1.5 * 2^23 + k, so its low mantissa bits hold the integer k.
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^k built from k's bits with integer ops only (a float-to-int conversion
    // would keep the loop scalar); k is within [-126, 127] after the clamp.
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

/// The logistic function.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The hyperbolic tangent, as `1 - 2 / (e^2x + 1)`.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// Wraps a function whose loops should vectorise: the function keeps its name and
/// signature, and runs its body compiled for AVX-512 or AVX2+FMA as
/// `util::simd::level()` says (the CPU's best unless `TRAINLAB_SIMD` asks for
/// less), as plain code otherwise. The body is inlined into each feature-enabled
/// copy, so its loops (calling the `#[inline(always)]` functions above) become 16-
/// or 8-wide SIMD. (A closure handed to such a copy is not reliably inlined and then
/// stays SSE-only: measured 4x slower for the LSTM cell.)
macro_rules! simd_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            $crate::model::leveled_kernel! {
                fn leveled($($arg: $ty),*) $body
            }
            leveled($crate::util::simd::level(), $($arg),*)
        }
    };
}

/// [`simd_kernel`] with the level as the function's first argument (so tests can
/// force each one): the body runs compiled for AVX-512 or AVX2+FMA where `level`
/// (after `or_best`, which never gives more than the CPU has) says so, as plain
/// code otherwise.
macro_rules! leveled_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(level: $crate::util::simd::Level, $($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                use $crate::util::simd::Level;
                match level.or_best() {
                    // SAFETY: `or_best` gives Avx512 only where the CPU has
                    // AVX-512F, AVX2 and FMA, every feature `avx512` is compiled for.
                    Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above, Avx2 only where the CPU has AVX2 and FMA.
                    Level::Avx2 => return unsafe { avx2($($arg),*) },
                    Level::Portable => {}
                }
            }
            let _ = level;
            body($($arg),*)
        }
    };
}
pub(crate) use leveled_kernel;
pub(crate) use simd_kernel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_libm_everywhere_and_nan_stays_nan() {
        let mut worst = (0f32, 0f32);
        let mut x = -100f32;
        while x < 100.0 {
            let s = (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs();
            let t = (tanh(x) - x.tanh()).abs();
            worst = (worst.0.max(s), worst.1.max(t));
            x += 0.001_37;
        }
        assert!(worst.0 < 2e-7, "sigmoid off by {}", worst.0);
        assert!(worst.1 < 2e-7, "tanh off by {}", worst.1);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(tanh(-50.0), -1.0);
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
    }
}
