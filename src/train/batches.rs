//! Assembling training batches. Without augmentation a batch is an index_select
//! on the device-resident split; with augmentation it is built on the host from a
//! normalised copy, each image shifted by a random offset (the background value
//! fills the uncovered border), then copied to the device.

use candle_core::{Device, Result, Tensor};

use super::evaluate::DeviceSplit;
use crate::util::rng::Rng;

/// Where training batches come from.
pub(crate) struct BatchSource {
    /// Normalised pixels on the host and the value of a blank pixel, when augmenting.
    host: Option<(Vec<f32>, f32)>,
    max_shift: usize,
    rows: usize,
    cols: usize,
    rng: Rng,
}

impl BatchSource {
    /// `host_pixels` is the normalised training split (same order as on the device);
    /// `blank` is what a 0 pixel becomes after normalisation.
    pub(crate) fn new(
        host_pixels: Option<Vec<f32>>,
        blank: f32,
        max_shift: usize,
        (rows, cols): (usize, usize),
        seed: u64,
    ) -> Self {
        Self {
            host: host_pixels.filter(|_| max_shift > 0).map(|p| (p, blank)),
            max_shift,
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
        let (h, w) = (self.rows, self.cols);
        let per = h * w;
        let s = self.max_shift as isize;
        let mut out = vec![*blank; chunk.len() * per];
        for (b, &i) in chunk.iter().enumerate() {
            let src = &pixels[i as usize * per..(i as usize + 1) * per];
            let dy = self.rng.below(2 * s as usize + 1) as isize - s;
            let dx = self.rng.below(2 * s as usize + 1) as isize - s;
            let dst = &mut out[b * per..(b + 1) * per];
            shift_into(src, dst, h, w, dy, dx);
        }
        let x = Tensor::from_vec(out, (chunk.len(), 1, h, w), device)?;
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
