//! Running sums of loss and accuracy kept on the device, so that a training step
//! never waits for a device-to-host copy; they are read only when a Step event is due.

use candle_core::{DType, Result, Tensor};

/// Sums over the steps since the last read.
#[derive(Default)]
pub(crate) struct StepAccumulator {
    loss_sum: Option<Tensor>,
    correct_sum: Option<Tensor>,
    samples: usize,
    steps: u64,
}

/// What one read of the accumulator gives.
pub(crate) struct StepTotals {
    pub mean_loss: f64,
    pub accuracy: f64,
    pub samples: usize,
    pub steps: u64,
}

impl StepAccumulator {
    /// Adds one step: its mean batch loss and the number of correct predictions.
    pub(crate) fn add(&mut self, loss: &Tensor, correct: &Tensor, batch: usize) -> Result<()> {
        let loss = loss.detach();
        let correct = correct.detach();
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(s) => (s + loss)?,
            None => loss,
        });
        self.correct_sum = Some(match self.correct_sum.take() {
            Some(s) => (s + correct)?,
            None => correct,
        });
        self.samples += batch;
        self.steps += 1;
        Ok(())
    }

    /// Reads the sums back (one device sync) and resets.
    pub(crate) fn take(&mut self) -> Result<Option<StepTotals>> {
        let (Some(loss), Some(correct)) = (self.loss_sum.take(), self.correct_sum.take()) else {
            return Ok(None);
        };
        // One read of both sums (one device sync), as f32: GPU backends have no f64.
        let both = Tensor::stack(
            &[loss.to_dtype(DType::F32)?, correct.to_dtype(DType::F32)?],
            0,
        )?
        .to_vec1::<f32>()?;
        let (loss, correct) = (f64::from(both[0]), f64::from(both[1]));
        let totals = StepTotals {
            mean_loss: loss / self.steps.max(1) as f64,
            accuracy: correct / self.samples.max(1) as f64,
            samples: self.samples,
            steps: self.steps,
        };
        self.samples = 0;
        self.steps = 0;
        Ok(Some(totals))
    }
}

/// Correct predictions in a batch, as an f32 scalar tensor.
pub(crate) fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    logits
        .argmax(1)?
        .eq(labels)?
        .to_dtype(DType::F32)?
        .sum_all()
}
