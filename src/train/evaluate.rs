//! Image splits as the training loop holds them, and evaluation passes over them
//! (loss, accuracy and a confusion matrix), in large batches without dropout.
//!
//! Contract: a split keeps its pixels as bytes on the host; a batch becomes f32
//! only when it is assembled, standardised by `data::standardise_plane_onto` (what
//! `data::standardise` does plane by plane), so a batch holds exactly the numbers
//! a split standardised whole would (bit for bit), and then goes to the device.
//! (Standardising every split up front, as before, held four times the bytes:
//! 220 MB for Fashion-MNIST, whose first touch cost 0.5-2.5 s of page faults
//! before the first step on the 2-core VM.)

use candle_core::{Device, Result, Tensor};

use crate::data::ImageSet;
use crate::data::{plane_stats, standardise_plane_onto};
use crate::model::{Mode, Model};

/// How a split's bytes become inputs: the per-channel `(mean, std)` that
/// `data::standardise` takes, applied plane by plane as it applies them.
#[derive(Clone, Debug)]
pub(crate) struct PixelScale {
    stats: Vec<(f32, f32)>,
}

impl PixelScale {
    /// Standardising with the per-channel `(mean, std)` in `stats`.
    pub(crate) fn new(stats: &[(f32, f32)]) -> Self {
        Self {
            stats: stats.to_vec(),
        }
    }

    /// Appends plane `plane_index` (counted over the whole split, as `standardise`
    /// counts them) of bytes `src` to `out` as standardised values, written once
    /// into its spare capacity (never zero-filled first).
    fn append_plane(&self, plane_index: usize, src: &[u8], out: &mut Vec<f32>) {
        standardise_plane_onto(src, plane_stats(&self.stats, plane_index), out);
    }
}

/// One split: images as bytes, labels, and how bytes become inputs.
pub(crate) struct ImageSplit {
    set: ImageSet,
    pixels: PixelScale,
}

impl ImageSplit {
    pub(crate) fn new(set: ImageSet, pixels: PixelScale) -> Self {
        Self { set, pixels }
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// `(channels, rows, cols)` of every image.
    pub(crate) fn dims(&self) -> (usize, usize, usize) {
        (self.set.channels, self.set.rows, self.set.cols)
    }

    /// The labels, by image.
    pub(crate) fn labels(&self) -> &[u8] {
        &self.set.labels
    }

    /// The bytes of image `i`.
    pub(crate) fn image(&self, i: usize) -> &[u8] {
        self.set.image(i)
    }

    /// Appends image `i` (its bytes, or `bytes` standing in for them, e.g. shifted)
    /// standardised to `out` (`pixels_per_image` values).
    pub(crate) fn append_image(&self, i: usize, bytes: &[u8], out: &mut Vec<f32>) {
        let (c, h, w) = self.dims();
        for (k, s) in bytes.chunks_exact((h * w).max(1)).enumerate() {
            self.pixels.append_plane(i * c + k, s, out);
        }
    }

    /// Inputs `[n, channels, rows, cols]` (f32) of the images `indices`, on `device`.
    pub(crate) fn inputs(
        &self,
        indices: impl ExactSizeIterator<Item = usize>,
        device: &Device,
    ) -> Result<Tensor> {
        let (c, h, w) = self.dims();
        let per = c * h * w;
        let n = indices.len();
        let mut out = Vec::with_capacity(n * per);
        for i in indices {
            self.append_image(i, self.set.image(i), &mut out);
        }
        Tensor::from_vec(out, (n, c, h, w), device)
    }

    /// Labels `[n]` (u32) of the images `indices`, on `device`.
    pub(crate) fn targets(
        &self,
        indices: impl ExactSizeIterator<Item = usize>,
        device: &Device,
    ) -> Result<Tensor> {
        let y: Vec<u32> = indices.map(|i| u32::from(self.set.labels[i])).collect();
        let n = y.len();
        Tensor::from_vec(y, n, device)
    }
}

/// Loss, accuracy and `confusion[true][predicted]` over a whole split.
pub(crate) struct EvalResult {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Vec<Vec<u32>>,
}

/// Evaluates `model` on `split` in batches of `batch`, assembled on `device`.
pub(crate) fn evaluate(
    model: &Model,
    split: &ImageSplit,
    device: &Device,
    classes: usize,
    batch: usize,
) -> Result<EvalResult> {
    let n = split.len();
    let mut confusion = vec![vec![0u32; classes]; classes];
    let mut loss_sum = 0.0f64;
    let mut correct = 0usize;
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let x = split.inputs(start..start + len, device)?;
        let y = split.targets(start..start + len, device)?;
        let logits = model.forward(&x, Mode::Eval)?;
        // Read back as f32 and widened here: GPU backends have no f64 (Metal).
        let loss = f64::from(candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?);
        loss_sum += loss * len as f64;
        let preds = logits.argmax(1)?.to_vec1::<u32>()?;
        for (p, &t) in preds.iter().zip(&split.labels()[start..start + len]) {
            let (t, p) = (usize::from(t), *p as usize);
            if t < classes && p < classes {
                confusion[t][p] += 1;
            }
            correct += usize::from(t == p);
        }
        start += len;
    }
    Ok(EvalResult {
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(channels: usize, n: usize) -> ImageSet {
        let per = channels * 2 * 3;
        ImageSet {
            channels,
            rows: 2,
            cols: 3,
            images: (0..n * per).map(|v| (v * 37 % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn batches_hold_exactly_what_standardising_the_whole_split_gives() -> Result<()> {
        for (channels, stats) in [
            (1, vec![(0.2860f32, 0.3530f32)]),
            (3, vec![(0.1, 0.2), (0.3, 0.4), (0.5, 0.6)]),
            (3, vec![(0.4, 0.25)]),
            (1, vec![]),
        ] {
            let s = set(channels, 5);
            let whole = crate::data::standardise(&s.images, &stats, s.rows * s.cols);
            let split = ImageSplit::new(s.clone(), PixelScale::new(&stats));
            let picks = [4usize, 0, 2, 2];
            let x = split.inputs(picks.iter().copied(), &Device::Cpu)?;
            assert_eq!(x.dims(), &[4, channels, 2, 3]);
            let got = x.flatten_all()?.to_vec1::<f32>()?;
            let per = s.pixels_per_image();
            for (b, &i) in picks.iter().enumerate() {
                let want = &whole[i * per..(i + 1) * per];
                let have = &got[b * per..(b + 1) * per];
                assert!(
                    want.iter()
                        .zip(have)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{channels} channels, stats {stats:?}, image {i}: {have:?} vs {want:?}"
                );
            }
            let y = split.targets(picks.iter().copied(), &Device::Cpu)?;
            assert_eq!(y.to_vec1::<u32>()?, vec![4, 0, 2, 2]);
        }
        Ok(())
    }

    #[test]
    fn a_zero_byte_is_the_blank_augmentation_fills_with() {
        // Augmentation shifts bytes with 0 filling the border; that must be the
        // value a blank pixel had when borders were filled with -mean / std.
        for stats in [(0.1307f32, 0.3081f32), (0.2860, 0.3530), (0.5, 0.25)] {
            let mut v = Vec::new();
            PixelScale::new(&[stats]).append_plane(0, &[0], &mut v);
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].to_bits(), (-stats.0 / stats.1).to_bits());
        }
    }
}
