//! Image data on the device and evaluation passes over it (loss, accuracy and a
//! confusion matrix), in large batches without dropout.

use candle_core::{Device, Result, Tensor};

use crate::data::ImageSet;
use crate::data::standardise;
use crate::model::{Mode, Model};

/// One split, normalised and resident on the device.
pub(crate) struct DeviceSplit {
    /// `[n, channels, rows, cols]` f32.
    pub x: Tensor,
    /// `[n]` u32 labels.
    pub y: Tensor,
    /// Host copy of the labels (for confusion matrices).
    pub labels: Vec<u8>,
}

impl DeviceSplit {
    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Pixels scaled to [0, 1], then standardised per channel.
pub(crate) fn normalised(set: &ImageSet, stats: &[(f32, f32)]) -> Vec<f32> {
    standardise(&set.images, stats, set.rows * set.cols)
}

/// Normalises a set and copies it to the device.
pub(crate) fn to_device(
    set: &ImageSet,
    stats: &[(f32, f32)],
    device: &Device,
) -> Result<DeviceSplit> {
    let pixels = normalised(set, stats);
    let x = Tensor::from_vec(
        pixels,
        (set.len(), set.channels, set.rows, set.cols),
        device,
    )?;
    let labels_u32: Vec<u32> = set.labels.iter().map(|&l| u32::from(l)).collect();
    let y = Tensor::from_vec(labels_u32, set.len(), device)?;
    Ok(DeviceSplit {
        x,
        y,
        labels: set.labels.clone(),
    })
}

/// Loss, accuracy and `confusion[true][predicted]` over a whole split.
pub(crate) struct EvalResult {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Vec<Vec<u32>>,
}

/// Evaluates `model` on `split` in batches of `batch`.
pub(crate) fn evaluate(
    model: &Model,
    split: &DeviceSplit,
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
        let x = split.x.narrow(0, start, len)?;
        let y = split.y.narrow(0, start, len)?;
        let logits = model.forward(&x, Mode::Eval)?;
        // Read back as f32 and widened here: GPU backends have no f64 (Metal).
        let loss = f64::from(candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?);
        loss_sum += loss * len as f64;
        let preds = logits.argmax(1)?.to_vec1::<u32>()?;
        for (p, &t) in preds.iter().zip(&split.labels[start..start + len]) {
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
