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
//! split (its order is the seeded split's, not sorted by class); the live
//! worker's projector (`Probe::Project`) runs the same [`project_layer`] and
//! [`project_embedding_table`] on the live model, with at most
//! [`LIVE_MAX_VALUES`] activation values.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::InferError;
use super::predictor::argmax;
use super::saved_model::load_saved_model;
use crate::data::{load_images, normalisation, standardise};
pub use crate::events::Projection;
use crate::model::Model;
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
    let per = test.pixels_per_image();
    let images = ProjectedImages {
        pixels: &test.images[..n * per],
        labels: &test.labels[..n],
        shape: spec.input_shape(),
        norm: &norm,
        classes: &saved.classes,
        layers: &exp.model,
    };
    project_layer(&saved.model, &Device::Cpu, &images, layer, usize::MAX)
}

/// Most activation values a live projection reads (images times the layer's
/// width): a wide layer is projected for fewer images, so answering stays a
/// short pause between steps.
pub const LIVE_MAX_VALUES: usize = 256 * 1000;

/// Test images to project, as plain pixels with what is needed to prepare them
/// as training did.
pub struct ProjectedImages<'a> {
    /// The images back to back, `shape` each.
    pub pixels: &'a [u8],
    /// The true class of each.
    pub labels: &'a [u8],
    /// `[channels, rows, cols]` of one image.
    pub shape: [usize; 3],
    /// Per channel: the mean and standard deviation training normalised with.
    pub norm: &'a [(f32, f32)],
    /// Class names.
    pub classes: &'a [String],
    /// The model's layer list (for the layer's name).
    pub layers: &'a [LayerSpec],
}

/// Layer `layer`'s activations (None: [`default_layer`]) for the images (fewer
/// when the layer is wide: at most `max_values` activation values, but two
/// images at least), projected by PCA, with the model's prediction of each;
/// `model` runs on `device`.
pub fn project_layer(
    model: &Model,
    device: &Device,
    images: &ProjectedImages<'_>,
    layer: Option<usize>,
    max_values: usize,
) -> Result<Projection, InferError> {
    let [c, h, w] = images.shape;
    let per = c * h * w;
    let mut n = images.labels.len().min(images.pixels.len() / per.max(1));
    if n == 0 {
        return Err(InferError::EmptyTestSplit);
    }
    let layer = layer.unwrap_or_else(|| default_layer(images.layers));
    let mut acts: Vec<f32> = Vec::new();
    let mut width = 0;
    let mut predicted = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let m = 250.min(n - start);
        let xs = standardise(
            &images.pixels[start * per..(start + m) * per],
            images.norm,
            h * w,
        );
        let run = || -> candle_core::Result<(Vec<f32>, usize, Vec<Vec<f32>>)> {
            let x = Tensor::from_vec(xs, (m, c, h, w), device)?;
            let outs = model.forward_each(&x)?;
            let Some(a) = outs.get(layer.min(outs.len().saturating_sub(1))) else {
                candle_core::bail!("the model has no layers");
            };
            let a = a.flatten_from(1)?.to_dtype(DType::F32)?;
            let width = a.dim(1)?;
            let logits = outs.last().cloned().unwrap_or(a.clone());
            let probs = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?
                .to_vec2::<f32>()?;
            Ok((a.flatten_all()?.to_vec1()?, width, probs))
        };
        let (a, wd, probs) = run().map_err(InferError::RunModel)?;
        if start == 0 {
            // A wide layer: fewer images, so the projection stays cheap.
            n = n.min((max_values / wd.max(1)).max(2));
        }
        let keep = m.min(n - start);
        acts.extend_from_slice(&a[..keep * wd]);
        width = wd;
        predicted.extend(probs.iter().take(keep).map(|p| argmax(p)));
        start += m;
    }
    let p = pca(&acts, width, 2);
    let points = acts
        .chunks_exact(width.max(1))
        .map(|r| two(&p.project(r)))
        .collect();
    let choices = layer_choices(images.layers, &images.shape);
    Ok(Projection {
        what: choices
            .get(layer)
            .map_or_else(|| format!("layer {layer}"), |l| format!("layer {}", l.name)),
        points,
        labels: images.labels[..n].iter().map(|&l| usize::from(l)).collect(),
        predicted,
        names: Vec::new(),
        classes: images.classes.to_vec(),
        images: images.pixels[..n * per].to_vec(),
        image_size: [w, h],
        explained: explained(&p),
    })
}

fn project_embeddings(saved: &super::SavedModel) -> Result<Projection, InferError> {
    let vocab = saved.vocab.as_ref().ok_or(InferError::NoVocabulary)?;
    project_embedding_table(&saved.model, &vocab.tokens)
}

/// The embedding table of a text model (the parameter with one row per token
/// of `tokens`), projected by PCA, one point per token.
pub fn project_embedding_table(model: &Model, tokens: &[String]) -> Result<Projection, InferError> {
    let table = model
        .params()
        .iter()
        .map(|(_, v)| v.as_tensor())
        .find(|t| t.rank() == 2 && t.dims()[0] == tokens.len())
        .ok_or(InferError::NoEmbeddingTable)?;
    let d = table.dims()[1];
    let rows = table.flatten_all().and_then(|t| t.to_vec1::<f32>())?;
    let p = pca(&rows, d, 2);
    Ok(Projection {
        what: format!("embedding table ({} tokens x {d})", tokens.len()),
        points: rows
            .chunks_exact(d.max(1))
            .map(|r| two(&p.project(r)))
            .collect(),
        labels: Vec::new(),
        predicted: Vec::new(),
        names: tokens.iter().map(|t| t.replace('\n', "\\n")).collect(),
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
