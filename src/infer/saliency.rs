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
//! The live worker answers `Probe::Saliency` with [`explain_pixels`] on the live
//! model (on its device), the views with the same function on a saved model.

use candle_core::{D, Device, Tensor, Var};

pub use crate::events::{Attribution, SaliencyMethod};
use crate::model::{Mode, Model};

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
    gradient_on(model, &Device::Cpu, input, shape, class)
}

fn gradient_on(
    model: &Model,
    device: &Device,
    input: &[f32],
    shape: [usize; 3],
    class: usize,
) -> candle_core::Result<(f32, Vec<f32>)> {
    let [c, h, w] = shape;
    let x = Tensor::from_slice(input, (1, c, h, w), device)?;
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
    integrated_gradients_on(model, &Device::Cpu, input, baseline, shape, (class, steps))
}

fn integrated_gradients_on(
    model: &Model,
    device: &Device,
    input: &[f32],
    baseline: &[f32],
    shape: [usize; 3],
    (class, steps): (usize, usize),
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
    let xs = Tensor::from_vec(path, (steps, c, h, w), device)?;
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
        device,
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
    attribute_on(model, &Device::Cpu, (input, black), shape, class, method)
}

fn attribute_on(
    model: &Model,
    device: &Device,
    (input, black): (&[f32], &[f32]),
    shape: [usize; 3],
    class: usize,
    method: SaliencyMethod,
) -> candle_core::Result<Attribution> {
    let (values, score, baseline_score) = match method {
        SaliencyMethod::Gradient => {
            let (score, g) = gradient_on(model, device, input, shape, class)?;
            (g, score, None)
        }
        SaliencyMethod::IntegratedGradients { steps } => {
            let (v, s, b) =
                integrated_gradients_on(model, device, input, black, shape, (class, steps))?;
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

/// Attributions for one image of raw pixels (`shape`, 0 = black), normalised
/// with `norm` as training normalised them, for `class` (None: the class the
/// model predicts for the image); `model` runs on `device`.
pub fn explain_pixels(
    model: &Model,
    device: &Device,
    pixels: &[u8],
    (norm, shape): (&[(f32, f32)], [usize; 3]),
    class: Option<usize>,
    method: SaliencyMethod,
) -> candle_core::Result<Attribution> {
    let [c, h, w] = shape;
    if pixels.len() != c * h * w {
        candle_core::bail!(
            "the image has {} pixels; this model takes {c}x{h}x{w}",
            pixels.len()
        );
    }
    let input = crate::data::standardise(pixels, norm, h * w);
    let black = crate::data::standardise(&vec![0u8; pixels.len()], norm, h * w);
    let class = match class {
        Some(k) => k,
        None => {
            let x = Tensor::from_slice(&input, (1, c, h, w), device)?;
            let logits = model
                .forward(&x, Mode::Eval)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            super::predictor::argmax(&logits).0
        }
    };
    attribute_on(model, device, (&input, &black), shape, class, method)
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
