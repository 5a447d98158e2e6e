//! Assembling training batches. Without augmentation a batch is an index_select
//! on the device-resident split; with augmentation it is built on the host from a
//! normalised copy, each image shifted by a random offset (the background value
//! fills the uncovered border, per channel), then copied to the device.

use candle_core::{Device, Result, Tensor};

use super::evaluate::DeviceSplit;
use crate::util::rng::Rng;

/// Where training batches come from.
pub(crate) struct BatchSource {
    /// Normalised pixels on the host and the value of a blank pixel per channel,
    /// when augmenting.
    host: Option<(Vec<f32>, Vec<f32>)>,
    max_shift: usize,
    channels: usize,
    rows: usize,
    cols: usize,
    rng: Rng,
}

impl BatchSource {
    /// `host_pixels` is the normalised training split (same order as on the device);
    /// `blank[c]` is what a 0 pixel of channel `c` becomes after normalisation.
    pub(crate) fn new(
        host_pixels: Option<Vec<f32>>,
        blank: Vec<f32>,
        max_shift: usize,
        (channels, rows, cols): (usize, usize, usize),
        seed: u64,
    ) -> Self {
        Self {
            host: host_pixels.filter(|_| max_shift > 0).map(|p| (p, blank)),
            max_shift,
            channels,
            rows,
            cols,
            rng: Rng::derive(seed, "augment"),
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
        split: &DeviceSplit,
        chunk: &[u32],
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
        let y = split.y.index_select(&idx, 0)?;
        let Some((pixels, blank)) = &self.host else {
            return Ok((split.x.index_select(&idx, 0)?, y));
        };
        let (c, h, w) = (self.channels, self.rows, self.cols);
        let plane = h * w;
        let per = c * plane;
        let s = self.max_shift as isize;
        let mut out = Vec::with_capacity(chunk.len() * per);
        for _ in chunk {
            for &b in blank {
                out.extend(std::iter::repeat_n(b, plane));
            }
        }
        for (b, &i) in chunk.iter().enumerate() {
            let src = &pixels[i as usize * per..(i as usize + 1) * per];
            // One offset per image, the same for all its channels.
            let dy = self.rng.below(2 * s as usize + 1) as isize - s;
            let dx = self.rng.below(2 * s as usize + 1) as isize - s;
            let dst = &mut out[b * per..(b + 1) * per];
            for (sp, dp) in src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane)) {
                shift_into(sp, dp, h, w, dy, dx);
            }
        }
        let x = Tensor::from_vec(out, (chunk.len(), c, h, w), device)?;
        Ok((x, y))
    }
}

/// Copies `src` into `dst` moved by (dy, dx); `dst` already holds the blank value.
fn shift_into(src: &[f32], dst: &mut [f32], h: usize, w: usize, dy: isize, dx: isize) {
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
        // One 2-channel 3x3 image: channel 0 lit in the middle, channel 1 all ones.
        let mut pixels = vec![0.0f32; 18];
        pixels[4] = 1.0;
        pixels[9..].fill(1.0);
        let mut source = BatchSource::new(Some(pixels), vec![-1.0, -2.0], 1, (2, 3, 3), 7);
        let split = DeviceSplit {
            x: Tensor::zeros((1, 2, 3, 3), candle_core::DType::F32, &Device::Cpu)?,
            y: Tensor::new(&[0u32], &Device::Cpu)?,
            labels: vec![0],
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let (x, _) = source.batch(&split, &[0], &Device::Cpu)?;
            assert_eq!(x.dims(), &[1, 2, 3, 3]);
            let v = x.flatten_all()?.to_vec1::<f32>()?;
            let (c0, c1) = v.split_at(9);
            let lit = c0
                .iter()
                .position(|&p| p == 1.0)
                .expect("a shift of 1 keeps it");
            let (dy, dx) = (lit as isize / 3 - 1, lit as isize % 3 - 1);
            seen.insert((dy, dx));
            for i in 0..9isize {
                let (r, c) = (i / 3 - dy, i % 3 - dx);
                let covered = (0..3).contains(&r) && (0..3).contains(&c);
                let i = i as usize;
                let want0 = match (i == lit, covered) {
                    (true, _) => 1.0,
                    (false, true) => 0.0,
                    (false, false) => -1.0,
                };
                assert_eq!(c0[i], want0, "channel 0, shift ({dy}, {dx}): {c0:?}");
                let want1 = if covered { 1.0 } else { -2.0 };
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
