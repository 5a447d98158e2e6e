//! Measuring [`LayerStats`] at an eval point: every layer's output and its
//! parameters' gradient on the task's fixed batch.
//!
//! Contract: one forward pass one layer at a time (evaluation mode, nothing fused,
//! f32) and one backward pass of the batch's mean loss; the optimizer, the random
//! streams and the weights are untouched, so a run with statistics trains exactly
//! as one without. Everything needed is gathered into one tensor on the device and
//! read back in a single transfer; quantiles, dead units and norms are then
//! computed on the host.

use candle_core::{DType, Result, Tensor};

use crate::events::{Distribution, LayerStat, LayerStats};
use crate::model::Model;

/// Samples in the fixed batch the statistics are measured on.
pub(crate) const STATS_SAMPLES: usize = 64;

/// The mean loss of the model's output on a fixed batch (attached to the graph).
pub(crate) type BatchLoss<'a> = Box<dyn Fn(&Tensor) -> Result<Tensor> + 'a>;

/// A task's fixed batch: the model's inputs and the mean loss of the model's
/// output on them (attached to the graph, so it can be backpropagated).
pub(crate) struct StatsBatch<'a> {
    pub inputs: Tensor,
    pub loss: BatchLoss<'a>,
}

/// Where one layer's values lie in the read-back vector.
struct Span {
    activation: std::ops::Range<usize>,
    gradient: Option<std::ops::Range<usize>>,
    /// Values per sample of the layer's output.
    units: usize,
}

/// The statistics of `model` on `batch` after `step` steps. `kinds` names the
/// layers of the layer list; a layer past them is a text model's head (Linear).
pub(crate) fn measure(
    model: &Model,
    kinds: &[String],
    batch: &StatsBatch<'_>,
    step: u64,
) -> Result<LayerStats> {
    let samples = batch.inputs.dim(0)?;
    let outputs = model.forward_each(&batch.inputs)?;
    let Some(last) = outputs.last() else {
        return Ok(LayerStats {
            step,
            samples,
            layers: Vec::new(),
        });
    };
    let grads = (batch.loss)(last)?.backward()?;
    let mut parts = Vec::new();
    let mut spans = Vec::new();
    let mut at = 0usize;
    for (i, out) in outputs.iter().enumerate() {
        let flat = out.detach().to_dtype(DType::F32)?.flatten_all()?;
        let n = flat.elem_count();
        parts.push(flat);
        let activation = at..at + n;
        at += n;
        let prefix = if i < kinds.len() {
            format!("layers.{i}.")
        } else {
            "head.".to_string()
        };
        let mut g_len = 0;
        for (name, var) in model.params() {
            if !name.starts_with(&prefix) {
                continue;
            }
            if let Some(g) = grads.get(var) {
                let g = g.detach().to_dtype(DType::F32)?.flatten_all()?;
                g_len += g.elem_count();
                parts.push(g);
            }
        }
        let gradient = (g_len > 0).then(|| at..at + g_len);
        at += g_len;
        spans.push(Span {
            activation,
            gradient,
            units: n / samples.max(1),
        });
    }
    let mut values = if parts.is_empty() {
        Vec::new()
    } else {
        Tensor::cat(&parts, 0)?.to_vec1::<f32>()?
    };
    let layers = spans
        .into_iter()
        .enumerate()
        .filter_map(|(i, span)| {
            let kind = kinds.get(i).cloned().unwrap_or_else(|| "Linear".into());
            summarise(&mut values, span, samples, kind, i)
        })
        .collect();
    Ok(LayerStats {
        step,
        samples,
        layers,
    })
}

/// One layer's entry from its spans of the read-back values.
fn summarise(
    values: &mut [f32],
    span: Span,
    samples: usize,
    kind: String,
    index: usize,
) -> Option<LayerStat> {
    let dead_fraction = (kind == "ReLU").then(|| {
        let acts = &values[span.activation.clone()];
        dead_fraction(acts, samples, span.units)
    });
    let (gradient, grad_norm) = match span.gradient {
        Some(r) => {
            let g = &mut values[r];
            let norm = g
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            // A diverging run's gradient may overflow: no norm rather than a
            // value JSON cannot hold.
            (Distribution::of(g), Some(norm).filter(|n| n.is_finite()))
        }
        None => (None, None),
    };
    let activation = Distribution::of(&mut values[span.activation])?;
    Some(LayerStat {
        index,
        kind,
        activation,
        gradient,
        grad_norm,
        dead_fraction,
    })
}

/// The fraction of the `units` output values per sample that are zero (or less)
/// for every one of the `samples` rows of `acts` (row-major `[samples, units]`).
pub(crate) fn dead_fraction(acts: &[f32], samples: usize, units: usize) -> f64 {
    if units == 0 || samples == 0 {
        return 0.0;
    }
    let mut alive = vec![false; units];
    for row in acts.chunks_exact(units).take(samples) {
        for (a, &v) in alive.iter_mut().zip(row) {
            *a |= v > 0.0;
        }
    }
    alive.iter().filter(|a| !**a).count() as f64 / units as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LayerSpec;
    use candle_core::Device;

    /// What one record costs on mnist_cnn's model (`cargo test --release
    /// layer_stats_cost -- --ignored --nocapture`): a measurement, not a check.
    #[test]
    #[ignore]
    fn layer_stats_cost() {
        let exp = crate::spec::load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/experiments/mnist_cnn.ron"
        )))
        .expect("mnist_cnn");
        let dev = Device::Cpu;
        let model = Model::build(&exp.model, &[1, 28, 28], 1, &dev).expect("model");
        let x = Tensor::randn(0f32, 1.0, (STATS_SAMPLES, 1, 28, 28), &dev).expect("x");
        let y = Tensor::zeros(STATS_SAMPLES, DType::U32, &dev).expect("y");
        let batch = StatsBatch {
            inputs: x,
            loss: Box::new(|out: &Tensor| candle_nn::loss::cross_entropy(out, &y)),
        };
        let kinds: Vec<String> = exp.model.iter().map(|s| s.kind().to_string()).collect();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            measure(&model, &kinds, &batch, 0).expect("measure");
            eprintln!(
                "mnist_cnn layer stats: {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }

    #[test]
    fn dead_units_are_zero_for_every_sample() {
        // 3 samples x 4 units: unit 1 is never positive, unit 3 once.
        let acts = [0.5, 0.0, 0.0, 0.0, 0.2, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0];
        assert_eq!(dead_fraction(&acts, 3, 4), 0.25);
        assert_eq!(dead_fraction(&[0.0; 4], 2, 2), 1.0);
    }

    /// The statistics against the same figures computed from the layers'
    /// outputs and gradients directly.
    #[test]
    fn measured_statistics_match_the_tensors() {
        let specs = vec![
            LayerSpec::Linear { out: 5 },
            LayerSpec::ReLU,
            LayerSpec::Linear { out: 3 },
        ];
        let dev = Device::Cpu;
        let model = Model::build(&specs, &[4], 3, &dev).expect("model");
        let x = Tensor::from_vec(
            (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect(),
            (8, 4),
            &dev,
        )
        .expect("x");
        let y = Tensor::from_vec((0..8u32).map(|i| i % 3).collect(), 8, &dev).expect("y");
        let loss = |out: &Tensor| candle_nn::loss::cross_entropy(out, &y);
        let batch = StatsBatch {
            inputs: x.clone(),
            loss: Box::new(loss),
        };
        let kinds: Vec<String> = specs.iter().map(|s| s.kind().to_string()).collect();
        let stats = measure(&model, &kinds, &batch, 12).expect("measure");
        assert_eq!((stats.step, stats.samples, stats.layers.len()), (12, 8, 3));
        let outs = model.forward_each(&x).expect("forward");
        let grads = loss(&outs[2]).expect("loss").backward().expect("backward");
        for (i, l) in stats.layers.iter().enumerate() {
            assert_eq!((l.index, l.kind.as_str()), (i, kinds[i].as_str()));
            let mut act = outs[i].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(Some(&l.activation), Distribution::of(&mut act).as_ref());
            let mut g: Vec<f32> = Vec::new();
            for (name, v) in model.params() {
                if name.starts_with(&format!("layers.{i}.")) {
                    g.extend(
                        grads
                            .get(v)
                            .unwrap()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap(),
                    );
                }
            }
            let norm = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            assert_eq!(l.gradient, Distribution::of(&mut g.clone()));
            assert_eq!(l.grad_norm.is_some(), !g.is_empty());
            if let Some(n) = l.grad_norm {
                assert!((n - norm).abs() < 1e-9 && n > 0.0);
            }
        }
        let relu = outs[1].to_vec2::<f32>().unwrap().concat();
        assert_eq!(
            stats.layers[1].dead_fraction,
            Some(dead_fraction(&relu, 8, 5))
        );
        assert_eq!(stats.layers[0].dead_fraction, None);
    }
}
