//! What the looking-inside tools compute from a model, as plain data: a 2-D
//! projection of a layer's activations or of an embedding table (the
//! projector), and an image's attributions for one class (saliency). The live
//! worker sends them in `ProbeAnswer`s; `infer::projector` and `infer::saliency`
//! compute them, for a saved run or the live model alike, so the two never differ.
//!
//! Contract: serde data, no candle. A projection's per-point columns are either
//! empty or one entry per point; an attribution holds one value per input value.

use serde::{Deserialize, Serialize};

/// What is projected: a layer's activations (image runs) or the embedding table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// "layer 3: ReLU [128]" or "embedding table".
    pub what: String,
    /// 2-D coordinates, one per point.
    pub points: Vec<[f64; 2]>,
    /// Class of each point (image runs; empty for tokens).
    pub labels: Vec<usize>,
    /// The model's prediction and its probability (image runs).
    pub predicted: Vec<(usize, f32)>,
    /// A name per point: the token (text runs).
    pub names: Vec<String>,
    /// Class names.
    pub classes: Vec<String>,
    /// Image runs: the images, back to back (`image_size` each, all channels).
    pub images: Vec<u8>,
    /// `[cols, rows]` of one image.
    pub image_size: [usize; 2],
    /// Fraction of the variance the two components hold.
    pub explained: [f64; 2],
}

impl Projection {
    /// The points as CSV: `index,x,y,label,predicted,probability,token` (columns
    /// a kind of run lacks are empty).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("index,x,y,label,predicted,probability,token\n");
        for (i, [x, y]) in self.points.iter().enumerate() {
            let label = self.labels.get(i).map_or(String::new(), |l| l.to_string());
            let (pred, prob) = self
                .predicted
                .get(i)
                .map_or((String::new(), String::new()), |(c, p)| {
                    (c.to_string(), p.to_string())
                });
            let token = self
                .names
                .get(i)
                .map_or(String::new(), |t| format!("\"{}\"", t.replace('"', "\"\"")));
            out.push_str(&format!("{i},{x},{y},{label},{pred},{prob},{token}\n"));
        }
        out
    }

    /// The pixels of point `i` (image runs; every channel of it).
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.points.len();
        let per = self.images.len().checked_div(n).unwrap_or(0);
        self.images
            .get(i * per..(i + 1) * per)
            .filter(|_| per > 0 && self.image_size[0] * self.image_size[1] > 0)
    }
}

/// How attributions are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SaliencyMethod {
    /// The gradient of the score at the input.
    Gradient,
    /// Integrated gradients from the all-black image over `steps` points.
    IntegratedGradients {
        /// Points on the path (32 is usual).
        steps: usize,
    },
}

/// One image's attributions for one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// The class explained.
    pub class: usize,
    /// How the values were computed.
    pub method: SaliencyMethod,
    /// One per input value, `[channels, rows, cols]` row-major.
    pub values: Vec<f32>,
    /// `[channels, rows, cols]`.
    pub shape: [usize; 3],
    /// The class score (logit) at the input.
    pub score: f32,
    /// Integrated gradients: the score at the baseline.
    pub baseline_score: Option<f32>,
}

impl Attribution {
    /// One value per pixel for a heatmap, in [-1, 1]: the gradient's largest
    /// magnitude over the channels (never negative); integrated gradients'
    /// signed sum over the channels (positive: the pixel speaks for the class).
    /// Scaled so the largest magnitude is 1 (all zero stays zero).
    pub fn heat(&self) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut out = vec![0f32; plane];
        for ch in 0..c {
            let Some(values) = self.values.get(ch * plane..(ch + 1) * plane) else {
                break;
            };
            for (o, &v) in out.iter_mut().zip(values) {
                *o = match self.method {
                    SaliencyMethod::Gradient => o.max(v.abs()),
                    SaliencyMethod::IntegratedGradients { .. } => *o + v,
                };
            }
        }
        let top = out.iter().fold(0f32, |m, v| m.max(v.abs()));
        if top > 0.0 && top.is_finite() {
            out.iter_mut().for_each(|v| *v /= top);
        }
        out
    }
}
