//! The projector: a trained model's inner representation of the test set,
//! flattened to two dimensions by principal component analysis (TensorBoard's
//! embedding projector, PCA mode). Image runs: a chosen layer's activations for
//! (up to `limit` of) the test images, coloured by class, with the prediction of
//! each. Text runs: the embedding table, one point per token.
//!
//! Contract: [`pca`] centres the rows and finds the top components of their
//! covariance by power iteration with deflation (f64; components of unit length,
//! sign fixed so their largest entry is positive), so it needs no linear-algebra
//! crate; variances are population variances (divided by n). Activations come
//! from `Model::forward_each` in evaluation mode, on the CPU, from the run's own
//! experiment and weights (`infer::load_saved_model`); test images are prepared as
//! training prepared them. The test images kept are the first `limit` of the
//! split (its order is the seeded split's, not sorted by class).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::InferError;
use super::predictor::argmax;
use super::saved_model::load_saved_model;
use crate::data::{load_images, normalisation, standardise};
use crate::spec::{DatasetSpec, LayerSpec};

/// The top principal components of a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// The mean row.
    pub mean: Vec<f64>,
    /// Unit-length components, largest variance first.
    pub components: Vec<Vec<f64>>,
    /// The variance along each component.
    pub variances: Vec<f64>,
    /// The total variance (sum over all dimensions).
    pub total_variance: f64,
}

impl Pca {
    /// The coordinates of `row` along the components.
    pub fn project(&self, row: &[f32]) -> Vec<f64> {
        self.components
            .iter()
            .map(|c| {
                c.iter()
                    .zip(row.iter().zip(&self.mean))
                    .map(|(c, (x, m))| c * (f64::from(*x) - m))
                    .sum()
            })
            .collect()
    }
}

/// PCA of `n` rows of `d` values (`rows` row-major): the top `k` components.
pub fn pca(rows: &[f32], d: usize, k: usize) -> Pca {
    let n = rows.len().checked_div(d).unwrap_or(0);
    let mut mean = vec![0f64; d];
    for r in rows.chunks_exact(d.max(1)).take(n) {
        mean.iter_mut()
            .zip(r)
            .for_each(|(m, x)| *m += f64::from(*x));
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let centred: Vec<f64> = rows
        .chunks_exact(d.max(1))
        .take(n)
        .flat_map(|r| r.iter().zip(&mean).map(|(x, m)| f64::from(*x) - m))
        .collect();
    let total_variance = centred.iter().map(|v| v * v).sum::<f64>() / n.max(1) as f64;
    // Covariance times a vector without forming the d x d matrix: X^T (X v) / n.
    let cov_times = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0f64; d];
        for r in centred.chunks_exact(d.max(1)) {
            let dot: f64 = r.iter().zip(v).map(|(a, b)| a * b).sum();
            out.iter_mut().zip(r).for_each(|(o, a)| *o += dot * a);
        }
        out.iter_mut().for_each(|o| *o /= n.max(1) as f64);
        out
    };
    let mut components: Vec<Vec<f64>> = Vec::new();
    let mut variances = Vec::new();
    for c in 0..k.min(d) {
        // A start that is not orthogonal to anything in particular.
        let mut v: Vec<f64> = (0..d)
            .map(|i| 1.0 + ((i * 7 + c * 13) % 11) as f64 / 10.0)
            .collect();
        let mut lambda = 0.0;
        for _ in 0..500 {
            orthogonalise(&mut v, &components);
            if normalise(&mut v) == 0.0 {
                break;
            }
            let mut w = cov_times(&v);
            orthogonalise(&mut w, &components);
            let next: f64 = w.iter().zip(&v).map(|(a, b)| a * b).sum();
            let converged = (next - lambda).abs() <= 1e-12 * next.abs().max(1e-300);
            lambda = next;
            v = w;
            if converged {
                break;
            }
        }
        orthogonalise(&mut v, &components);
        if normalise(&mut v) == 0.0 {
            break;
        }
        // Fix the sign: the largest entry positive.
        let big = v
            .iter()
            .copied()
            .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        let w = cov_times(&v);
        variances.push(w.iter().zip(&v).map(|(a, b)| a * b).sum());
        components.push(v);
    }
    Pca {
        mean,
        components,
        variances,
        total_variance,
    }
}

fn orthogonalise(v: &mut [f64], basis: &[Vec<f64>]) {
    for b in basis {
        let dot: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
        v.iter_mut().zip(b).for_each(|(x, b)| *x -= dot * b);
    }
}

fn normalise(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
        norm
    } else {
        0.0
    }
}

/// A layer the projector can show.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerChoice {
    /// Index in the model's layer list (`forward_each`'s output).
    pub index: usize,
    /// "3: ReLU [128]".
    pub name: String,
}

/// What is projected: a layer's activations (image runs) or the embedding table.
#[derive(Debug, Clone, PartialEq)]
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
    /// Image runs: the images, back to back (`image_size` each).
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

    /// The pixels of point `i` (image runs).
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let per = self.image_size[0] * self.image_size[1];
        self.images.get(i * per..(i + 1) * per).filter(|_| per > 0)
    }
}

/// The layers of an image run that can be projected (all but the input: each
/// layer's output), last hidden layer first in usefulness but in model order.
pub fn layer_choices(layers: &[LayerSpec], input: &[usize]) -> Vec<LayerChoice> {
    let shapes = crate::spec::infer_shapes(layers, input).unwrap_or_default();
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerChoice {
            index: i,
            name: match shapes.get(i) {
                Some(s) => format!("{i}: {} {:?}", l.kind(), s.output),
                None => format!("{i}: {}", l.kind()),
            },
        })
        .collect()
}

/// The default layer to show: the input of the last layer (the representation
/// the classifier's head separates).
pub fn default_layer(layers: &[LayerSpec]) -> usize {
    layers.len().saturating_sub(2)
}

/// Projects the run in `run_dir`: image runs at `layer` (None: [`default_layer`])
/// for the first `limit` test images; text runs their embedding table.
pub fn project_run(
    run_dir: &Path,
    layer: Option<usize>,
    limit: usize,
) -> Result<Projection, InferError> {
    let saved = load_saved_model(run_dir)?;
    match &saved.experiment.dataset {
        DatasetSpec::Images(_) => project_images(&saved, layer, limit),
        DatasetSpec::Text(_) => project_embeddings(&saved),
        DatasetSpec::Gridworld(_) | DatasetSpec::Points(_) => Err(InferError::NotProjectable {
            dir: run_dir.to_path_buf(),
        }),
    }
}

fn project_images(
    saved: &super::SavedModel,
    layer: Option<usize>,
    limit: usize,
) -> Result<Projection, InferError> {
    let exp = &saved.experiment;
    let DatasetSpec::Images(spec) = &exp.dataset else {
        return Err(InferError::NotImageRun);
    };
    let data = load_images(spec, exp.seed)?;
    let norm = if spec.is_folder() {
        data.stats.clone()
    } else {
        vec![normalisation(spec.name)]
    };
    let test = &data.test;
    let n = test.len().min(limit.max(1));
    if n == 0 {
        return Err(InferError::EmptyTestSplit);
    }
    let layer = layer.unwrap_or_else(|| default_layer(&exp.model));
    let [c, h, w] = spec.input_shape();
    let per = test.pixels_per_image();
    let images = test.images[..n * per].to_vec();
    let mut acts: Vec<f32> = Vec::new();
    let mut width = 0;
    let mut predicted = Vec::with_capacity(n);
    for start in (0..n).step_by(250) {
        let m = 250.min(n - start);
        let xs = standardise(&images[start * per..(start + m) * per], &norm, h * w);
        let run = || -> candle_core::Result<(Vec<f32>, usize, Vec<Vec<f32>>)> {
            let x = Tensor::from_vec(xs, (m, c, h, w), &Device::Cpu)?;
            let outs = saved.model.forward_each(&x)?;
            let Some(a) = outs.get(layer.min(outs.len().saturating_sub(1))) else {
                candle_core::bail!("the model has no layers");
            };
            let a = a.flatten_from(1)?;
            let width = a.dim(1)?;
            let logits = outs.last().cloned().unwrap_or(a.clone());
            let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
            Ok((a.flatten_all()?.to_vec1()?, width, probs))
        };
        let (a, wd, probs) = run().map_err(InferError::RunModel)?;
        acts.extend(a);
        width = wd;
        predicted.extend(probs.iter().map(|p| argmax(p)));
    }
    let p = pca(&acts, width, 2);
    let points = acts
        .chunks_exact(width.max(1))
        .map(|r| two(&p.project(r)))
        .collect();
    let choices = layer_choices(&exp.model, &[c, h, w]);
    Ok(Projection {
        what: choices
            .get(layer)
            .map_or_else(|| format!("layer {layer}"), |l| format!("layer {}", l.name)),
        points,
        labels: test.labels[..n].iter().map(|&l| usize::from(l)).collect(),
        predicted,
        names: Vec::new(),
        classes: saved.classes.clone(),
        images,
        image_size: [test.cols, test.rows],
        explained: explained(&p),
    })
}

fn project_embeddings(saved: &super::SavedModel) -> Result<Projection, InferError> {
    let vocab = saved.vocab.as_ref().ok_or(InferError::NoVocabulary)?;
    let table = saved
        .model
        .params()
        .iter()
        .map(|(_, v)| v.as_tensor())
        .find(|t| t.rank() == 2 && t.dims()[0] == vocab.len())
        .ok_or(InferError::NoEmbeddingTable)?;
    let d = table.dims()[1];
    let rows = table.flatten_all().and_then(|t| t.to_vec1::<f32>())?;
    let p = pca(&rows, d, 2);
    Ok(Projection {
        what: format!("embedding table ({} tokens x {d})", vocab.len()),
        points: rows
            .chunks_exact(d.max(1))
            .map(|r| two(&p.project(r)))
            .collect(),
        labels: Vec::new(),
        predicted: Vec::new(),
        names: vocab
            .tokens
            .iter()
            .map(|t| t.replace('\n', "\\n"))
            .collect(),
        classes: Vec::new(),
        images: Vec::new(),
        image_size: [0, 0],
        explained: explained(&p),
    })
}

/// Run folders under `root` the projector can show (saved weights of an image or
/// text run), newest first, with the layer list of each.
pub fn projectable_runs(root: &Path) -> Vec<(std::path::PathBuf, Vec<LayerChoice>)> {
    crate::runs::list_runs(root)
        .into_iter()
        .filter(|r| r.dir.join(crate::runs::files::WEIGHTS).is_file())
        .filter_map(|r| {
            let exp = crate::spec::load_file(&r.dir.join(crate::runs::files::EXPERIMENT)).ok()?;
            let layers = match &exp.dataset {
                DatasetSpec::Images(spec) => layer_choices(&exp.model, &spec.input_shape()),
                DatasetSpec::Text(_) => Vec::new(),
                DatasetSpec::Gridworld(_) | DatasetSpec::Points(_) => return None,
            };
            Some((r.dir, layers))
        })
        .collect()
}

fn two(v: &[f64]) -> [f64; 2] {
    [
        v.first().copied().unwrap_or(0.0),
        v.get(1).copied().unwrap_or(0.0),
    ]
}

fn explained(p: &Pca) -> [f64; 2] {
    let f = |i: usize| {
        p.variances
            .get(i)
            .map_or(0.0, |v| v / p.total_variance.max(1e-300))
    };
    [f(0), f(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_axes_of_a_known_2d_cloud() {
        // (±2, 0) and (0, ±1), turned by 30 degrees and moved: variances 2 and 0.5.
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        let base = [[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]];
        let rows: Vec<f32> = base
            .iter()
            .flat_map(|[x, y]| [(c * x - s * y + 5.0) as f32, (s * x + c * y - 3.0) as f32])
            .collect();
        let p = pca(&rows, 2, 2);
        assert!((p.mean[0] - 5.0).abs() < 1e-6 && (p.mean[1] + 3.0).abs() < 1e-6);
        assert!((p.variances[0] - 2.0).abs() < 1e-6, "{:?}", p.variances);
        assert!((p.variances[1] - 0.5).abs() < 1e-6, "{:?}", p.variances);
        assert!((p.total_variance - 2.5).abs() < 1e-6);
        let first = &p.components[0];
        assert!(
            (first[0] - c).abs() < 1e-6 && (first[1] - s).abs() < 1e-6,
            "{first:?}"
        );
        let second = &p.components[1];
        let dot = first[0] * second[0] + first[1] * second[1];
        assert!(dot.abs() < 1e-9, "orthogonal");
        // (2, 0) turned lies at +2 on the first axis.
        let at = p.project(&rows[0..2]);
        assert!((at[0] - 2.0).abs() < 1e-5 && at[1].abs() < 1e-5, "{at:?}");
    }
}
