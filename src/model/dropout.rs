//! Inverted dropout. On the CPU every mask comes from the run's seeded RNG
//! (candle's CPU RNG cannot be seeded, which would make runs irreproducible); on a
//! GPU the masks are drawn on the device (seeded once per run with
//! `seed_device`), so no mask is made on the host and uploaded every step.
//!
//! Contract (CPU): one call takes one 64-bit key from the run's RNG, and element
//! `i` is kept exactly when a hash of `(key, i)` falls below the keep
//! probability, so a mask is the same at every SIMD level, thread count and
//! chunking, and a resumed run (the RNG's state is in its checkpoint) draws the
//! same masks as one that never stopped. Kept values are multiplied by
//! `1/(1-p)`, dropped ones by 0 (so NaN and infinity stay visible), exactly the
//! product `x * mask` of a mask tensor. On f32 the mask is never stored: the
//! forward and backward passes apply it as they go (one op, one pass each), in
//! chunks across the rayon pool.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::kernels::cpu_data::{f32_slice, with_data};
use crate::util::rng::Rng;
use crate::util::simd::{Level, level};

/// Zeroes each element with probability `p` and scales the rest by 1/(1-p).
pub fn dropout(xs: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    if !xs.device().is_cpu() {
        let keep = 1.0 - p as f32;
        let u = Tensor::rand(0f32, 1f32, xs.shape(), xs.device())?;
        let mask = (u.lt(keep)?.to_dtype(xs.dtype())? * f64::from(1.0 / keep))?;
        return xs.mul(&mask);
    }
    let key = MaskKey::new(p, rng.next_u64());
    if xs.dtype() == DType::F32 {
        return xs.contiguous()?.apply_op1(DropoutOp { key });
    }
    // Other dtypes (mixed precision): the same mask, as a tensor.
    let ones = vec![1f32; xs.elem_count()];
    let mut mask = Vec::with_capacity(ones.len());
    apply_mask(level(), &ones, &mut mask, key);
    let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
    xs.mul(&mask)
}

/// Seeds a GPU's random generator from the run's seed (the CPU needs nothing:
/// its masks come from the run's own RNG).
pub fn seed_device(device: &candle_core::Device, seed: u64) -> Result<()> {
    if device.is_cpu() {
        return Ok(());
    }
    device.set_seed(Rng::derive(seed, "device-dropout").next_u64())
}

/// One mask: the key its bits are hashed from, which of them keep an element,
/// and the factor a kept element is multiplied by.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MaskKey {
    k0: u32,
    k1: u32,
    /// Element `i` is kept when `bits(i) < threshold`.
    threshold: u32,
    scale: f32,
}

impl MaskKey {
    fn new(p: f64, key: u64) -> Self {
        // The keep probability in f32 as before (`rng.f32() < keep` kept
        // `keep * 2^24` of the 2^24 values); here `ceil(keep * 2^32)` of 2^32.
        // keep <= 1 - 2^-24 (p > 0), so the threshold fits.
        let keep = 1.0 - p as f32;
        let threshold = (f64::from(keep.max(0.0)) * 4_294_967_296.0).ceil() as u32;
        Self {
            k0: key as u32,
            k1: (key >> 32) as u32,
            threshold,
            scale: 1.0 / keep,
        }
    }

    /// The key for the elements `first..` up to the next multiple of 2^32
    /// (the index's high half is folded into it, the low half hashed per element).
    fn keys_at(self, first: usize) -> (u32, u32) {
        let high = (first as u64 >> 32) as u32;
        (self.k0, self.k1 ^ mix(high.wrapping_mul(0x9E37_79B9)))
    }
}

/// A bijective 32-bit mixer (Wellons' "lowbias32"): every output bit depends on
/// every input bit. Integer only, so every SIMD level gives the same bits.
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// Values per chunk a core fills at once; a power of two, so no chunk crosses a
/// multiple of 2^32 (where the key's high half changes).
const CHUNK: usize = 1 << 15;

super::leveled_kernel! {
    /// `out[j] = xs[j] * m(first + j)` with `m` the mask's factor (`scale` or 0)
    /// of that element, written into `out`'s first `xs.len()` slots.
    fn apply_chunk(xs: &[f32], out: &mut [MaybeUninit<f32>], first: usize, key: MaskKey) {
        let (k0, k1) = key.keys_at(first);
        let low = first as u32;
        let (threshold, scale) = (key.threshold, key.scale);
        for (j, (o, &x)) in out.iter_mut().zip(xs).enumerate() {
            let bits = mix(mix(low.wrapping_add(j as u32) ^ k0) ^ k1);
            let m = if bits < threshold { scale } else { 0.0 };
            o.write(x * m);
        }
    }
}

/// Appends `xs * mask` to the empty `out`, chunk by chunk across the pool.
fn apply_mask(level: Level, xs: &[f32], out: &mut Vec<f32>, key: MaskKey) {
    let n = xs.len();
    out.clear();
    out.reserve(n);
    let dst = &mut out.spare_capacity_mut()[..n];
    if n <= CHUNK {
        apply_chunk(level, xs, dst, 0, key);
    } else {
        dst.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (o, x))| apply_chunk(level, x, o, c * CHUNK, key));
    }
    // SAFETY: the chunks cover `dst`, the first `n` spare slots, and
    // `apply_chunk` wrote every slot of its chunk (`o` and `x` have the same
    // length); `reserve` made room for them.
    unsafe { out.set_len(n) };
}

super::leveled_kernel! {
    /// `xs[j] *= m(first + j)`, the same factors as `apply_chunk`, in place.
    fn mask_chunk_in_place(xs: &mut [f32], first: usize, key: MaskKey) {
        let (k0, k1) = key.keys_at(first);
        let low = first as u32;
        let (threshold, scale) = (key.threshold, key.scale);
        for (j, x) in xs.iter_mut().enumerate() {
            let bits = mix(mix(low.wrapping_add(j as u32) ^ k0) ^ k1);
            *x *= if bits < threshold { scale } else { 0.0 };
        }
    }
}

/// `xs *= mask` in place, chunk by chunk across the pool.
fn apply_mask_in_place(level: Level, xs: &mut [f32], key: MaskKey) {
    if xs.len() <= CHUNK {
        mask_chunk_in_place(level, xs, 0, key);
    } else {
        xs.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, x)| mask_chunk_in_place(level, x, c * CHUNK, key));
    }
}

/// One dropout mask for a kernel that applies it itself (the dense stack's
/// input): drawn exactly as [`dropout`] draws it on f32 CPU data, so the run's
/// RNG moves the same way and the same elements are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mask(MaskKey);

impl Mask {
    /// The mask `dropout(xs, p, rng)` would apply; None (and no draw) when
    /// `p <= 0`, as there.
    pub(crate) fn draw(p: f64, rng: &mut Rng) -> Option<Self> {
        (p > 0.0).then(|| Self(MaskKey::new(p, rng.next_u64())))
    }

    /// `xs * mask` as a new vector: the dropout op's values.
    pub(crate) fn applied(self, xs: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        apply_mask(level(), xs, &mut out, self.0);
        out
    }

    /// `xs *= mask` in place: the dropout op's backward on a gradient.
    pub(crate) fn apply_in_place(self, xs: &mut [f32]) {
        apply_mask_in_place(level(), xs, self.0);
    }
}

/// Dropout on contiguous f32 CPU data as one op: the mask is applied to the
/// input going forward and to the gradient going back, from its key.
struct DropoutOp {
    key: MaskKey,
}

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = f32_slice(storage, layout, "dropout")?;
        let mut out = Vec::new();
        apply_mask(level(), xs, &mut out, self.key);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(grad, "dropout backward", |g| {
            let mut out = Vec::new();
            apply_mask(level(), g, &mut out, self.key);
            Ok(out)
        })?;
        Tensor::from_vec(dx, arg.shape(), arg.device()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn mask_of(level: Level, n: usize, key: MaskKey) -> Vec<f32> {
        let mut out = Vec::new();
        apply_mask(level, &vec![1f32; n], &mut out, key);
        out
    }

    #[test]
    fn keeps_expected_fraction_and_mean() -> Result<()> {
        let xs = Tensor::ones(10_000, DType::F32, &Device::Cpu)?;
        let out = dropout(&xs, 0.25, &mut Rng::new(1))?.to_vec1::<f32>()?;
        let zeros = out.iter().filter(|v| **v == 0.0).count();
        assert!((2_300..2_700).contains(&zeros), "{zeros} zeros");
        let mean: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!(
            (mean - 1.0).abs() < 0.05,
            "inverted dropout keeps the mean: {mean}"
        );
        Ok(())
    }

    /// The keep rate over a million draws, for the two rates the shipped CNN
    /// uses and two more: within 4.5 standard deviations of `1 - p`, and kept
    /// values are exactly `1/(1-p)`. Neighbours and the same element in the next
    /// call are as independent as the draws themselves (a constant or
    /// repeating hash would fail these).
    #[test]
    fn keep_rates_and_independence_are_pinned() {
        let n = 1 << 20;
        let mut rng = Rng::new(7);
        for p in [0.25f64, 0.5, 0.1, 0.9] {
            let key = MaskKey::new(p, rng.next_u64());
            let next = MaskKey::new(p, rng.next_u64());
            let (a, b) = (mask_of(level(), n, key), mask_of(level(), n, next));
            let keep = 1.0 - p;
            let sd = (keep * p / n as f64).sqrt();
            let rate = |m: &[f32]| m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
            assert!(
                (rate(&a) - keep).abs() < 4.5 * sd,
                "p {p}: rate {}",
                rate(&a)
            );
            let scale = 1.0 / (1.0 - p as f32);
            assert!(a.iter().all(|&v| v == 0.0 || v == scale), "p {p}: factors");
            // P(both kept) for neighbours and across calls: keep² within 4.5 sd.
            let both = |x: &[f32], y: &[f32]| {
                x.iter()
                    .zip(y)
                    .filter(|(u, v)| **u != 0.0 && **v != 0.0)
                    .count() as f64
                    / x.len() as f64
            };
            let sd2 = (keep * keep * (1.0 - keep * keep) / n as f64).sqrt();
            let pairs = [
                ("neighbours", both(&a[1..], &a[..n - 1])),
                ("calls", both(&a, &b)),
            ];
            for (what, r) in pairs {
                assert!((r - keep * keep).abs() < 4.5 * sd2, "p {p}: {what} {r}");
            }
        }
    }

    /// The same key gives the same mask at every SIMD level and whatever the
    /// pool's size (chunks are cut and shared out differently), on lengths around
    /// the chunk size; and the mask's bits are pinned, so a change of stream
    /// (which would change every recorded run) is a decision, not an accident.
    #[test]
    fn masks_equal_at_every_level_and_thread_count_and_pinned() {
        let key = MaskKey::new(0.25, 0x0123_4567_89AB_CDEF);
        for n in [1, 17, CHUNK - 1, CHUNK, CHUNK + 5, 3 * CHUNK + 7] {
            let want = mask_of(Level::Portable, n, key);
            for lv in [Level::Avx2, Level::Avx512] {
                assert_eq!(mask_of(lv, n, key), want, "level {lv:?}, {n} values");
            }
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool");
                let got = pool.install(|| mask_of(level(), n, key));
                assert_eq!(got, want, "{threads} threads, {n} values");
            }
        }
        let first: String = mask_of(Level::Portable, 32, key)
            .iter()
            .map(|&v| if v == 0.0 { '0' } else { '1' })
            .collect();
        assert_eq!(first, PINNED_MASK, "the first 32 elements' fates");
        // Past 2^32 the index's high half changes the key.
        assert_ne!(key.keys_at(0), key.keys_at(1 << 32));
    }

    /// The in-place mask (the dense stack's backward) gives the bits of the
    /// op's `x * mask` at every SIMD level and across chunks, NaN included.
    #[test]
    fn in_place_mask_equals_the_product_at_every_level() {
        let key = MaskKey::new(0.3, 0xFEED_F00D_1234_5678);
        for n in [1, 33, CHUNK + 9, 2 * CHUNK + 3] {
            let mut xs: Vec<f32> = (0..n).map(|i| (i as f32 * 0.71).cos()).collect();
            xs[0] = f32::NAN;
            let mut want = Vec::new();
            apply_mask(Level::Portable, &xs, &mut want, key);
            for lv in [Level::Portable, Level::Avx2, Level::Avx512] {
                let mut got = xs.clone();
                apply_mask_in_place(lv, &mut got, key);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "level {lv:?}, {n} values");
            }
        }
        let (mut r1, mut r2) = (Rng::new(9), Rng::new(9));
        let mask = Mask::draw(0.3, &mut r1).expect("p > 0 draws");
        assert_eq!(
            mask,
            Mask(MaskKey::new(0.3, r2.next_u64())),
            "dropout's draw"
        );
        assert_eq!(Mask::draw(0.0, &mut r1), None, "p = 0: no mask");
        assert_eq!(r1.state(), r2.state(), "and no draw");
    }

    /// Key `0x0123_4567_89AB_CDEF` at p = 0.25: the first 32 elements (1: kept).
    const PINNED_MASK: &str = "10010010010111101111101100100111";

    /// The op's values and gradient equal `x * mask` with candle's mul, the
    /// mask drawn the same way, and NaN stays NaN where it is dropped.
    #[test]
    fn op_equals_the_product_with_its_mask() -> Result<()> {
        let dev = Device::Cpu;
        let n = 2 * CHUNK + 2; // 3 rows across the chunks
        let mut values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        values[5] = f32::NAN;
        let x = Var::from_tensor(&Tensor::from_vec(values, (3, n / 3), &dev)?)?;
        let (mut r1, mut r2) = (Rng::new(3), Rng::new(3));
        let y = dropout(x.as_tensor(), 0.4, &mut r1)?;
        let mask = mask_of(level(), n, MaskKey::new(0.4, r2.next_u64()));
        assert_eq!(r1.state(), r2.state(), "one draw per call");
        let mask = Tensor::from_vec(mask, (3, n / 3), &dev)?;
        let reference = x.as_tensor().mul(&mask)?;
        let (a, b) = (
            y.flatten_all()?.to_vec1::<f32>()?,
            reference.flatten_all()?.to_vec1::<f32>()?,
        );
        assert!(a[5].is_nan() && b[5].is_nan(), "NaN stays visible");
        let same = |u: &[f32], v: &[f32]| u.iter().zip(v).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same(&a, &b), "forward");
        let up = Tensor::randn(0f32, 1., (3, n / 3), &dev)?;
        let gy = (y * &up)?.sum_all()?.backward()?;
        let gr = (reference * &up)?.sum_all()?.backward()?;
        let grad = |g: &candle_core::backprop::GradStore| -> Result<Vec<f32>> {
            g.get(x.as_tensor())
                .expect("grad")
                .flatten_all()?
                .to_vec1::<f32>()
        };
        assert!(same(&grad(&gy)?, &grad(&gr)?), "backward");
        Ok(())
    }
}
