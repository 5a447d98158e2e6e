//! Magnitude pruning with a held mask: the smallest weights of the prunable
//! layers (Linear, Conv2d, LSTM, GRU, Transformer weight matrices; never biases,
//! norms or embeddings) are set to zero at the start of a run, and set back to
//! zero after every optimizer step, so fine-tuning never revives them.
//!
//! Contract: a fresh run chooses the weights by magnitude (one threshold over all
//! of them, or one per layer); a resumed run keeps the zeros it has (the mask is
//! the checkpoint's zeros), so resuming does not prune again.

use candle_core::{DType, Result, Tensor, Var};

use crate::model::Model;
use crate::spec::{LayerSpec, PruneScope, PruneSpec};

/// Weights held at zero: each prunable parameter with its 0/1 mask.
pub(crate) struct Masks {
    held: Vec<(Var, Tensor)>,
}

/// The prunable parameters of `model` (built from `layers`), by name.
pub fn prunable<'a>(model: &'a Model, layers: &[LayerSpec]) -> Vec<(&'a str, &'a Var)> {
    model
        .params()
        .iter()
        .filter(|(name, var)| {
            let layer = name
                .strip_prefix("layers.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok());
            let kind_ok = match layer {
                Some(i) => layers.get(i).is_some_and(LayerSpec::prunable),
                // The output layer text models add after the list.
                None => name.starts_with("head"),
            };
            kind_ok && var.rank() >= 2
        })
        .map(|(n, v)| (n.as_str(), v))
        .collect()
}

/// The `k`-th smallest magnitude (0-based) of `values`, k < len.
fn kth_magnitude(values: &mut [f32], k: usize) -> f32 {
    for v in values.iter_mut() {
        *v = v.abs();
    }
    let (_, kth, _) = values.select_nth_unstable_by(k, f32::total_cmp);
    *kth
}

/// Mask of `var` keeping magnitudes above `threshold`, and exactly `zero`
/// more weights pruned among ties at the threshold (so the share is exact).
fn mask_for(var: &Var, threshold: f32, ties_left: &mut usize) -> Result<Tensor> {
    let values: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
    let keep: Vec<f32> = values
        .iter()
        .map(|v| {
            let m = v.abs();
            if m < threshold {
                0.0
            } else if m == threshold && *ties_left > 0 {
                *ties_left -= 1;
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Tensor::from_vec(keep, var.as_tensor().shape(), var.device())
}

impl Masks {
    /// Prunes `model` as `spec` says (fresh run), or holds the zeros it has
    /// (`resuming`); returns the masks and a line for the record.
    pub(crate) fn apply(
        model: &Model,
        layers: &[LayerSpec],
        spec: &PruneSpec,
        resuming: bool,
    ) -> Result<(Self, String)> {
        let params = prunable(model, layers);
        let mut held = Vec::with_capacity(params.len());
        if resuming {
            for (_, var) in &params {
                let mask = var.as_tensor().ne(0f32)?.to_dtype(DType::F32)?;
                held.push(((*var).clone(), mask));
            }
        } else {
            let groups: Vec<Vec<&Var>> = match spec.scope {
                PruneScope::Global => vec![params.iter().map(|(_, v)| *v).collect()],
                PruneScope::PerLayer => params.iter().map(|(_, v)| vec![*v]).collect(),
            };
            for group in groups {
                let mut all: Vec<f32> = Vec::new();
                for v in &group {
                    all.extend(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
                }
                let k = (all.len() as f64 * spec.sparsity).round() as usize;
                if k == 0 || all.is_empty() {
                    for v in group {
                        held.push((v.clone(), v.as_tensor().ones_like()?));
                    }
                    continue;
                }
                let threshold = kth_magnitude(&mut all, k - 1);
                let below = all.iter().filter(|m| **m < threshold).count();
                let mut ties = k - below;
                for v in group {
                    let mask = mask_for(v, threshold, &mut ties)?;
                    held.push((v.clone(), mask));
                }
            }
        }
        let masks = Self { held };
        masks.hold()?;
        let (zero, total) = masks.count()?;
        let line = format!(
            "pruned ({:?}, target {:.1} %): {zero} of {total} prunable weights are zero ({:.1} %){}",
            spec.scope,
            spec.sparsity * 100.0,
            100.0 * zero as f64 / total.max(1) as f64,
            if resuming {
                ", held from the checkpoint"
            } else {
                ""
            }
        );
        Ok((masks, line))
    }

    /// Sets the pruned weights back to zero (after each optimizer step).
    pub(crate) fn hold(&self) -> Result<()> {
        for (var, mask) in &self.held {
            var.set(&var.as_tensor().mul(mask)?)?;
        }
        Ok(())
    }

    /// (weights held at zero, prunable weights).
    fn count(&self) -> Result<(usize, usize)> {
        let mut zero = 0;
        let mut total = 0;
        for (_, mask) in &self.held {
            total += mask.elem_count();
            zero += mask.elem_count() - mask.sum_all()?.to_scalar::<f32>()? as usize;
        }
        Ok((zero, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn model() -> (Model, Vec<LayerSpec>) {
        let layers = vec![
            LayerSpec::Flatten,
            LayerSpec::Linear { out: 16 },
            LayerSpec::ReLU,
            LayerSpec::Linear { out: 10 },
        ];
        let m = Model::build(&layers, &[1, 8, 8], 3, &Device::Cpu).expect("model");
        (m, layers)
    }

    fn zeros(v: &Var) -> usize {
        v.as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("values")
            .iter()
            .filter(|x| **x == 0.0)
            .count()
    }

    #[test]
    fn exactly_the_share_asked_for_is_zero_and_stays_zero() {
        for scope in [PruneScope::Global, PruneScope::PerLayer] {
            let (m, layers) = model();
            let spec = PruneSpec {
                sparsity: 0.8,
                scope,
            };
            let (masks, line) = Masks::apply(&m, &layers, &spec, false).expect("prune");
            let params = prunable(&m, &layers);
            assert_eq!(params.len(), 2, "two weight matrices, no biases");
            let total: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
            let zero: usize = params.iter().map(|(_, v)| zeros(v)).sum();
            assert_eq!(
                zero,
                (total as f64 * 0.8).round() as usize,
                "{scope:?}: {line}"
            );
            if scope == PruneScope::PerLayer {
                for (_, v) in &params {
                    assert_eq!(zeros(v), (v.elem_count() as f64 * 0.8).round() as usize);
                }
            }
            // A step that moves every weight; the mask puts the zeros back.
            for (_, v) in &params {
                v.set(&(v.as_tensor() + 0.5).expect("add")).expect("set");
            }
            masks.hold().expect("hold");
            assert_eq!(params.iter().map(|(_, v)| zeros(v)).sum::<usize>(), zero);
            // Biases were never touched.
            assert!(
                m.params()
                    .iter()
                    .filter(|(n, _)| n.ends_with("bias"))
                    .all(|(_, v)| zeros(v) == 0)
            );
        }
    }

    #[test]
    fn the_largest_weights_survive() {
        let (m, layers) = model();
        let before: Vec<f32> = m.params()[0]
            .1
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("v");
        let spec = PruneSpec {
            sparsity: 0.5,
            scope: PruneScope::PerLayer,
        };
        Masks::apply(&m, &layers, &spec, false).expect("prune");
        let after: Vec<f32> = m.params()[0]
            .1
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("v");
        let mut mags: Vec<f32> = before.iter().map(|x| x.abs()).collect();
        mags.sort_by(f32::total_cmp);
        let median = mags[mags.len() / 2];
        for (b, a) in before.iter().zip(&after) {
            if b.abs() > median {
                assert_eq!(a, b, "kept as it was");
            } else if b.abs() < median {
                assert_eq!(*a, 0.0);
            }
        }
    }
}
