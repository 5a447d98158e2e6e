//! Assembling training batches from a split held as bytes (`evaluate::ImageSplit`):
//! the chosen images, each shifted by a random offset when augmenting (0 bytes
//! fill the uncovered border, which standardise to each channel's blank value),
//! standardised into one host buffer and handed to the device.

use candle_core::{Device, Result, Tensor};

use super::evaluate::ImageSplit;
use crate::util::rng::Rng;

/// Where training batches come from.
pub(crate) struct BatchSource {
    max_shift: usize,
    rng: Rng,
    /// One shifted image's bytes (reused).
    shifted: Vec<u8>,
}

impl BatchSource {
    /// Batches shifted by up to `max_shift` pixels (0: not augmented), drawn
    /// from the run's "augment" stream.
    pub(crate) fn new(max_shift: usize, seed: u64) -> Self {
        Self {
            max_shift,
            rng: Rng::derive(seed, "augment"),
            shifted: Vec::new(),
        }
    }

    /// The augmentation stream's position (checkpoints).
    pub(crate) fn rng_state(&self) -> [u64; 4] {
        self.rng.state()
    }

    /// Continues the augmentation stream from a checkpoint.
    pub(crate) fn set_rng(&mut self, rng: Rng) {
        self.rng = rng;
    }

    /// Inputs and labels for the samples `chunk` of `split`.
    pub(crate) fn batch(
        &mut self,
        split: &ImageSplit,
        chunk: &[u32],
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let indices = || chunk.iter().map(|&i| i as usize);
        let y = split.targets(indices(), device)?;
        if self.max_shift == 0 {
            return Ok((split.inputs(indices(), device)?, y));
        }
        let (c, h, w) = split.dims();
        let plane = h * w;
        let per = c * plane;
        let s = self.max_shift as isize;
        let mut out = Vec::with_capacity(chunk.len() * per);
        self.shifted.resize(per, 0);
        for i in indices() {
            // One offset per image, the same for all its channels.
            let dy = self.rng.below(2 * s as usize + 1) as isize - s;
            let dx = self.rng.below(2 * s as usize + 1) as isize - s;
            self.shifted.fill(0);
            let planes = split.image(i).chunks_exact(plane.max(1));
            for (sp, dp) in planes.zip(self.shifted.chunks_exact_mut(plane.max(1))) {
                shift_into(sp, dp, h, w, dy, dx);
            }
            split.append_image(i, &self.shifted, &mut out);
        }
        let x = Tensor::from_vec(out, (chunk.len(), c, h, w), device)?;
        Ok((x, y))
    }
}

/// Copies `src` into `dst` moved by (dy, dx); `dst` already holds the blank value.
fn shift_into<T: Copy>(src: &[T], dst: &mut [T], h: usize, w: usize, dy: isize, dx: isize) {
    for r in 0..h as isize {
        let sr = r - dy;
        if sr < 0 || sr >= h as isize {
            continue;
        }
        let c0 = dx.max(0);
        let c1 = (w as isize + dx).min(w as isize);
        if c0 >= c1 {
            continue;
        }
        let (d, srow) = (r as usize * w, sr as usize * w);
        let len = (c1 - c0) as usize;
        let sc = (c0 - dx) as usize;
        dst[d + c0 as usize..d + c0 as usize + len]
            .copy_from_slice(&src[srow + sc..srow + sc + len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_moves_together_and_gets_its_own_blank() -> Result<()> {
        // One 2-channel 3x3 image: channel 0 lit (255) in the middle on a dim (1)
        // ground, channel 1 all 255; the border a shift uncovers is byte 0.
        let mut bytes = vec![1u8; 18];
        bytes[4] = 255;
        bytes[9..].fill(255);
        let stats = [(0.5f32, 0.5f32), (0.5, 0.25)];
        let set = crate::data::ImageSet {
            channels: 2,
            rows: 3,
            cols: 3,
            images: bytes,
            labels: vec![0],
        };
        let split = ImageSplit::new(set, crate::train::evaluate::PixelScale::new(&stats));
        let value = |c: usize, b: u8| crate::data::standardise(&[b], &stats[c..=c], 1)[0];
        let (lit_v, dim_v, blank0) = (value(0, 255), value(0, 1), value(0, 0));
        let (full1, blank1) = (value(1, 255), value(1, 0));
        assert_eq!((blank0, blank1), (-1.0, -2.0));
        let mut source = BatchSource::new(1, 7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let (x, _) = source.batch(&split, &[0], &Device::Cpu)?;
            assert_eq!(x.dims(), &[1, 2, 3, 3]);
            let v = x.flatten_all()?.to_vec1::<f32>()?;
            let (c0, c1) = v.split_at(9);
            let lit = c0
                .iter()
                .position(|&p| p == lit_v)
                .expect("a shift of 1 keeps it");
            let (dy, dx) = (lit as isize / 3 - 1, lit as isize % 3 - 1);
            seen.insert((dy, dx));
            for i in 0..9isize {
                let (r, c) = (i / 3 - dy, i % 3 - dx);
                let covered = (0..3).contains(&r) && (0..3).contains(&c);
                let i = i as usize;
                let want0 = match (i == lit, covered) {
                    (true, _) => lit_v,
                    (false, true) => dim_v,
                    (false, false) => blank0,
                };
                assert_eq!(c0[i], want0, "channel 0, shift ({dy}, {dx}): {c0:?}");
                let want1 = if covered { full1 } else { blank1 };
                assert_eq!(c1[i], want1, "channel 1, shift ({dy}, {dx}): {c1:?}");
            }
        }
        assert!(seen.len() > 4, "shifts vary: {seen:?}");
        Ok(())
    }

    #[test]
    fn shifts_move_pixels_and_fill_with_blank() {
        // 3x3 image with one lit pixel in the middle.
        let mut src = vec![0.0f32; 9];
        src[4] = 1.0;
        for (dy, dx, at) in [(0, 0, 4), (1, 0, 7), (-1, 0, 1), (0, 1, 5), (1, -1, 6)] {
            let mut dst = vec![-0.5f32; 9];
            shift_into(&src, &mut dst, 3, 3, dy, dx);
            let lit: Vec<usize> = (0..9).filter(|&i| dst[i] == 1.0).collect();
            assert_eq!(lit, vec![at], "shift ({dy}, {dx}): {dst:?}");
            let blanks = dst.iter().filter(|&&v| v == -0.5).count();
            let covered = (3 - dy.unsigned_abs()) * (3 - dx.unsigned_abs());
            assert_eq!(blanks, 9 - covered, "shift ({dy}, {dx})");
        }
    }
}
