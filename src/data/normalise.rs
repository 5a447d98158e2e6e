//! How image pixels become a network's input: bytes scaled to [0, 1], then
//! standardised per channel with the dataset's published statistics. Training,
//! the GUI's predictor and every export read these same figures, so a model sees
//! the same numbers wherever it runs.

use std::mem::MaybeUninit;

use crate::spec::ImageDataset;

/// Mean and standard deviation of the training pixels (in [0, 1]) per dataset.
pub fn normalisation(name: ImageDataset) -> (f32, f32) {
    crate::data::published_stats(name)
}

/// Channels-first pixels scaled to [0, 1], then standardised with `stats[c]`
/// (mean, std) for channel `c`; `plane` is rows x cols.
pub fn standardise(pixels: &[u8], stats: &[(f32, f32)], plane: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; pixels.len()];
    // Plane by plane, so each channel's constants stay in registers.
    let plane = plane.max(1);
    for (k, (src, dst)) in pixels.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
        standardise_plane(src, plane_stats(stats, k), dst);
    }
    out
}

/// The `(mean, std)` that plane `k` of a buffer of images takes from `stats`
/// (planes cycle through the channels; no statistics: `(0, 1)`).
pub fn plane_stats(stats: &[(f32, f32)], k: usize) -> (f32, f32) {
    stats
        .get(k % stats.len().max(1))
        .copied()
        .unwrap_or((0.0, 1.0))
}

/// Writes the bytes `src`, scaled to [0, 1] and standardised with `(mean, std)`,
/// into `dst` (as many values as both hold). Every path computes the same
/// `(p / 255 - mean) / std` in f32 with true divisions, so each level gives the
/// same bits; the AVX-512 and AVX2 builds only do 16 or 8 at once (a training
/// batch is assembled this way at every step).
pub fn standardise_plane(src: &[u8], stats: (f32, f32), dst: &mut [f32]) {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the kernel only
    // writes initialised floats through it, so `dst` stays initialised.
    let dst = unsafe { &mut *(std::ptr::from_mut(dst) as *mut [MaybeUninit<f32>]) };
    standardise_uninit(src, stats, dst);
}

/// [`standardise_plane`] appending all of `src` to `dst`: the values are
/// written once into its spare capacity, so a batch assembled image by image
/// into `Vec::with_capacity` is never zero-filled first (3 MB per evaluation
/// batch of 1,000 MNIST-sized images, 200 kB per training batch of 64).
pub fn standardise_plane_onto(src: &[u8], stats: (f32, f32), dst: &mut Vec<f32>) {
    let (old, n) = (dst.len(), src.len());
    dst.reserve(n);
    standardise_uninit(src, stats, &mut dst.spare_capacity_mut()[..n]);
    // SAFETY: the `n` values after the old length were all written just above
    // (`src` and that slice have the same length), and `reserve` made room.
    unsafe { dst.set_len(old + n) };
}

/// The kernel of both: `dst[i] = (src[i] / 255 - mean) / std` for as many values
/// as both hold, at the level `util::simd` picks.
fn standardise_uninit(src: &[u8], stats: (f32, f32), dst: &mut [MaybeUninit<f32>]) {
    #[inline(always)]
    fn body(src: &[u8], (mean, std): (f32, f32), dst: &mut [MaybeUninit<f32>]) {
        for (d, &p) in dst.iter_mut().zip(src) {
            d.write((f32::from(p) / 255.0 - mean) / std);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn avx512(src: &[u8], stats: (f32, f32), dst: &mut [MaybeUninit<f32>]) {
            body(src, stats, dst)
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(src: &[u8], stats: (f32, f32), dst: &mut [MaybeUninit<f32>]) {
            body(src, stats, dst)
        }
        use crate::util::simd::{Level, level};
        match level() {
            // SAFETY: `level()` is only Avx512 where the CPU has AVX-512F, AVX2 and FMA.
            Level::Avx512 => return unsafe { avx512(src, stats, dst) },
            // SAFETY: `level()` is only Avx2 or above where the CPU has AVX2 and FMA.
            Level::Avx2 => return unsafe { avx2(src, stats, dst) },
            Level::Portable => {}
        }
    }
    body(src, stats, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_gets_the_scalar_formula_bit_for_bit() {
        let bytes: Vec<u8> = (0..=255).chain(0..=255).collect();
        for stats in [
            (0.1307f32, 0.3081f32),
            (0.2860, 0.3530),
            (0.0, 1.0),
            (0.5, 0.25),
        ] {
            // Odd lengths and offsets reach the vector loops' tails.
            for (start, len) in [(0, 512), (3, 37), (17, 1), (0, 0)] {
                let src = &bytes[start..start + len];
                let mut dst = vec![f32::NAN; len];
                standardise_plane(src, stats, &mut dst);
                // Appended after what a buffer holds already, with and without room.
                let mut onto = vec![-7.0f32; 3];
                standardise_plane_onto(src, stats, &mut onto);
                let mut roomy = Vec::with_capacity(len + 100);
                standardise_plane_onto(src, stats, &mut roomy);
                assert_eq!(onto.len(), 3 + len);
                assert_eq!(onto[..3], [-7.0; 3], "what was there stays");
                assert_eq!(roomy.len(), len);
                for (k, &p) in src.iter().enumerate() {
                    let want = (f32::from(p) / 255.0 - stats.0) / stats.1;
                    for (how, d) in [
                        ("slice", dst[k]),
                        ("onto", onto[3 + k]),
                        ("roomy", roomy[k]),
                    ] {
                        assert_eq!(
                            d.to_bits(),
                            want.to_bits(),
                            "{how}: byte {p}, stats {stats:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn planes_cycle_through_the_channels() {
        // Two 1x2 images of 3 channels: plane k takes stats[k % 3].
        let stats = [(0.0f32, 1.0f32), (0.0, 0.5), (1.0, 1.0)];
        let out = standardise(&[255, 0, 255, 0, 255, 0, 0, 255, 0, 255, 0, 255], &stats, 2);
        assert_eq!(
            out,
            vec![1.0, 0.0, 2.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 2.0, -1.0, 0.0]
        );
        assert_eq!(standardise(&[51], &[], 1), vec![0.2]);
        assert_eq!(plane_stats(&[], 4), (0.0, 1.0));
    }
}
