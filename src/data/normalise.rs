//! How image pixels become a network's input: bytes scaled to [0, 1], then
//! standardised per channel with the dataset's published statistics. Training,
//! the GUI's predictor and every export read these same figures, so a model sees
//! the same numbers wherever it runs.

use crate::spec::ImageDataset;

/// Mean and standard deviation of the training pixels (in [0, 1]) per dataset.
pub fn normalisation(name: ImageDataset) -> (f32, f32) {
    crate::data::published_stats(name)
}

/// Channels-first pixels scaled to [0, 1], then standardised with `stats[c]`
/// (mean, std) for channel `c`; `plane` is rows x cols.
pub fn standardise(pixels: &[u8], stats: &[(f32, f32)], plane: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(pixels.len());
    // Plane by plane, so each channel's constants stay in registers.
    for (k, chunk) in pixels.chunks(plane.max(1)).enumerate() {
        let (mean, std) = stats
            .get(k % stats.len().max(1))
            .copied()
            .unwrap_or((0.0, 1.0));
        out.extend(chunk.iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
    }
    out
}
