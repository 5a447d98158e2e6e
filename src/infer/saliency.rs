//! Which input pixels a trained image classifier's answer depends on: the
//! gradient of a class score with respect to the input (Simonyan et al. 2013,
//! "saliency maps"), and integrated gradients (Sundararajan et al. 2017) from a
//! black baseline.
//!
//! Contract: the class score is the model's logit for the class (before the
//! softmax), in evaluation mode (no dropout). Attributions are per input value
//! (`[channels, rows, cols]`, row-major) in the units the model sees (pixels
//! standardised as in training). The gradient equals the finite-difference
//! derivative of the score; integrated gradients use the midpoint rule over
//! `steps` points on the straight path from the baseline, and their sum is close
//! to `score(input) - score(baseline)` (completeness), the closer the more steps.

use candle_core::{D, Device, Tensor, Var};

use crate::model::{Mode, Model};

/// How attributions are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// The class explained.
    pub class: usize,
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
            for (o, &v) in out
                .iter_mut()
                .zip(&self.values[ch * plane..(ch + 1) * plane])
            {
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

/// The logit of `class` for each row of `x` (`[n, ...]`), summed, and the
/// gradient of that sum with respect to `x`.
fn score_and_grad(
    model: &Model,
    x: &Tensor,
    class: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let var = Var::from_tensor(x)?;
    let logits = model.forward(var.as_tensor(), Mode::Eval)?;
    let classes = logits.dim(D::Minus1)?;
    if class >= classes {
        candle_core::bail!("class {class} is out of range: the model has {classes} outputs");
    }
    let scores = logits.narrow(D::Minus1, class, 1)?.squeeze(D::Minus1)?;
    let grads = scores.sum_all()?.backward()?;
    let grad = grads.get(var.as_tensor()).cloned().ok_or_else(|| {
        candle_core::Error::Msg("the model gave no gradient for its input".into())
    })?;
    Ok((scores, grad))
}

/// The gradient of `class`'s score at `input` (one standardised image,
/// `[c, h, w]` values) with respect to it; returns (score, gradient).
pub fn gradient(
    model: &Model,
    input: &[f32],
    shape: [usize; 3],
    class: usize,
) -> candle_core::Result<(f32, Vec<f32>)> {
    let [c, h, w] = shape;
    let x = Tensor::from_slice(input, (1, c, h, w), &Device::Cpu)?;
    let (score, grad) = score_and_grad(model, &x, class)?;
    Ok((score.to_vec1::<f32>()?[0], grad.flatten_all()?.to_vec1()?))
}

/// Integrated gradients of `class`'s score from `baseline` to `input` (both
/// standardised `[c, h, w]` values) over `steps` midpoints; returns (the
/// attributions, score at the input, score at the baseline).
pub fn integrated_gradients(
    model: &Model,
    input: &[f32],
    baseline: &[f32],
    shape: [usize; 3],
    class: usize,
    steps: usize,
) -> candle_core::Result<(Vec<f32>, f32, f32)> {
    let [c, h, w] = shape;
    let steps = steps.max(1);
    let n = c * h * w;
    if input.len() != n || baseline.len() != n {
        candle_core::bail!("input and baseline must both hold {n} values");
    }
    // Every point of the path in one batch (a few dozen images at most).
    let mut path = Vec::with_capacity(steps * n);
    for k in 0..steps {
        let alpha = (k as f32 + 0.5) / steps as f32;
        path.extend(input.iter().zip(baseline).map(|(x, b)| b + alpha * (x - b)));
    }
    let xs = Tensor::from_vec(path, (steps, c, h, w), &Device::Cpu)?;
    let (_, grads) = score_and_grad(model, &xs, class)?;
    let mean = grads.mean(0)?.flatten_all()?.to_vec1::<f32>()?;
    let values = mean
        .iter()
        .zip(input.iter().zip(baseline))
        .map(|(g, (x, b))| g * (x - b))
        .collect();
    let ends = Tensor::from_vec(
        input.iter().chain(baseline).copied().collect::<Vec<f32>>(),
        (2, c, h, w),
        &Device::Cpu,
    )?;
    let logits = model.forward(&ends, Mode::Eval)?;
    let scores = logits
        .narrow(D::Minus1, class, 1)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((values, scores[0], scores[1]))
}

/// Attributions of `class` for one standardised image, by `method`; `black` is
/// the standardised all-black image (integrated gradients' baseline).
pub fn attribute(
    model: &Model,
    input: &[f32],
    black: &[f32],
    shape: [usize; 3],
    class: usize,
    method: SaliencyMethod,
) -> candle_core::Result<Attribution> {
    let (values, score, baseline_score) = match method {
        SaliencyMethod::Gradient => {
            let (score, g) = gradient(model, input, shape, class)?;
            (g, score, None)
        }
        SaliencyMethod::IntegratedGradients { steps } => {
            let (v, s, b) = integrated_gradients(model, input, black, shape, class, steps)?;
            (v, s, Some(b))
        }
    };
    Ok(Attribution {
        class,
        method,
        values,
        shape,
        score,
        baseline_score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LayerSpec;

    fn tiny(layers: Vec<LayerSpec>) -> Model {
        Model::build(&layers, &[1, 3, 3], 7, &Device::Cpu).expect("tiny model")
    }

    fn score(model: &Model, x: &[f32], class: usize) -> f64 {
        let t = Tensor::from_slice(x, (1, 1, 3, 3), &Device::Cpu).unwrap();
        let l = model.forward(&t, Mode::Eval).unwrap();
        f64::from(l.flatten_all().unwrap().to_vec1::<f32>().unwrap()[class])
    }

    fn input() -> Vec<f32> {
        vec![0.3, -0.7, 1.1, 0.05, -0.2, 0.9, -1.3, 0.4, 0.6]
    }

    #[test]
    fn the_gradient_is_the_finite_difference_derivative() {
        let model = tiny(vec![
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 5 },
            LayerSpec::Tanh,
            LayerSpec::Linear { out: 3 },
        ]);
        let x = input();
        for class in 0..3 {
            let (s, g) = gradient(&model, &x, [1, 3, 3], class).unwrap();
            assert!((f64::from(s) - score(&model, &x, class)).abs() < 1e-5);
            let eps = 1e-2f32;
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += eps;
                down[i] -= eps;
                let fd = (score(&model, &up, class) - score(&model, &down, class))
                    / (2.0 * f64::from(eps));
                let got = f64::from(g[i]);
                assert!(
                    (got - fd).abs() < 1e-3 + 1e-2 * fd.abs(),
                    "class {class}, pixel {i}: gradient {got} vs finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn integrated_gradients_add_up_to_the_score_difference() {
        let model = tiny(vec![
            LayerSpec::Conv2d {
                out: 2,
                kernel: 2,
                stride: 1,
                padding: 0,
            },
            LayerSpec::ReLU,
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 4 },
            LayerSpec::Sigmoid,
            LayerSpec::Linear { out: 3 },
        ]);
        let x = input();
        let black = vec![-0.5f32; 9];
        for class in 0..3 {
            let (v, s, b) = integrated_gradients(&model, &x, &black, [1, 3, 3], class, 64).unwrap();
            let total: f32 = v.iter().sum();
            let want = s - b;
            assert!(
                (total - want).abs() < 0.02 * want.abs().max(0.05),
                "class {class}: attributions sum to {total}, scores differ by {want}"
            );
        }
    }

    #[test]
    fn heat_is_scaled_to_one() {
        let a = Attribution {
            class: 0,
            method: SaliencyMethod::Gradient,
            values: vec![0.5, -2.0, 1.0, 0.0],
            shape: [1, 2, 2],
            score: 0.0,
            baseline_score: None,
        };
        assert_eq!(a.heat(), vec![0.25, 1.0, 0.5, 0.0]);
        let ig = Attribution {
            method: SaliencyMethod::IntegratedGradients { steps: 4 },
            ..a
        };
        assert_eq!(ig.heat(), vec![0.25, -1.0, 0.5, 0.0]);
    }
}
