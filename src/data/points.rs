//! The playground's points: each shape drawn from the experiment's seed, noise
//! added, then split into train and test. Coordinates span -6..6; class labels
//! are 0 or 1, regression targets lie in -1..1.
//!
//! Contract: the same spec and seed give the same points, in the same order,
//! everywhere (the worker trains on them, the GUI draws them).

use std::f32::consts::PI;

use crate::spec::{Feature, PointsKind, PointsSpec};
use crate::util::rng::Rng;

/// One point: coordinates and its label (class 0/1, or the target value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Horizontal coordinate.
    pub x1: f32,
    /// Vertical coordinate.
    pub x2: f32,
    /// Class (0.0 or 1.0) or target value.
    pub label: f32,
}

impl Point {
    /// The point's input features, in `features` order.
    pub fn features(&self, features: &[Feature]) -> Vec<f32> {
        features.iter().map(|f| f.of(self.x1, self.x2)).collect()
    }
}

/// The train and test points.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// Points trained on.
    pub train: Vec<Point>,
    /// Points held out.
    pub test: Vec<Point>,
}

/// Generates the dataset `spec` with `seed`.
pub fn generate(spec: &PointsSpec, seed: u64) -> Points {
    let mut rng = Rng::derive(seed, "points");
    let n = spec.samples;
    let mut points: Vec<Point> = (0..n).map(|i| shape(spec.kind, i, n, &mut rng)).collect();
    let noise = spec.noise as f32;
    for p in &mut points {
        if spec.kind.is_regression() {
            // Noise on the target, scaled to its range.
            p.label = (p.label + noise / 6.0 * rng.normal() as f32).clamp(-1.0, 1.0);
        } else {
            p.x1 += noise * rng.normal() as f32;
            p.x2 += noise * rng.normal() as f32;
        }
    }
    rng.shuffle(&mut points);
    let test = ((n as f64 * spec.test_fraction).round() as usize).clamp(1, n - 1);
    let train = points.split_off(test);
    Points {
        train,
        test: points,
    }
}

fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + rng.f32() * (hi - lo)
}

/// Point `i` of `n` of a shape (noise comes later).
fn shape(kind: PointsKind, i: usize, n: usize, rng: &mut Rng) -> Point {
    let first_half = i < n / 2;
    match kind {
        PointsKind::Circle => {
            // Class 1 inside radius 2, class 0 in the ring 3.5..5.
            let (r, label) = if first_half {
                (uniform(rng, 0.0, 2.0), 1.0)
            } else {
                (uniform(rng, 3.5, 5.0), 0.0)
            };
            let a = uniform(rng, 0.0, 2.0 * PI);
            Point {
                x1: r * a.cos(),
                x2: r * a.sin(),
                label,
            }
        }
        PointsKind::Xor => {
            // Kept a little away from the axes, where the class flips.
            let pad = |v: f32| if v >= 0.0 { v + 0.3 } else { v - 0.3 };
            let x1 = pad(uniform(rng, -5.0, 5.0));
            let x2 = pad(uniform(rng, -5.0, 5.0));
            Point {
                x1,
                x2,
                label: if x1 * x2 >= 0.0 { 1.0 } else { 0.0 },
            }
        }
        PointsKind::Gaussians => {
            let (c, label) = if first_half { (2.0, 1.0) } else { (-2.0, 0.0) };
            Point {
                x1: c + rng.normal() as f32,
                x2: c + rng.normal() as f32,
                label,
            }
        }
        PointsKind::Spiral => {
            // Two arms, half a turn apart, 1.75 turns each, from radius 0.3 (so
            // the arms' first points do not coincide at the centre) out to 5.
            let half = (n / 2).max(1);
            let k = if first_half { i } else { i - n / 2 };
            let t = k as f32 / half as f32;
            let r = 0.3 + 4.7 * t;
            let a = 1.75 * 2.0 * PI * t + if first_half { 0.0 } else { PI };
            Point {
                x1: r * a.sin(),
                x2: r * a.cos(),
                label: if first_half { 1.0 } else { 0.0 },
            }
        }
        PointsKind::Moons => {
            let a = uniform(rng, 0.0, PI);
            let (x1, x2, label) = if first_half {
                (a.cos(), a.sin(), 1.0)
            } else {
                (1.0 - a.cos(), 0.5 - a.sin(), 0.0)
            };
            Point {
                x1: 3.0 * (x1 - 0.5),
                x2: 3.0 * (x2 - 0.25),
                label,
            }
        }
        PointsKind::Plane => {
            let x1 = uniform(rng, -6.0, 6.0);
            let x2 = uniform(rng, -6.0, 6.0);
            Point {
                x1,
                x2,
                label: (x1 + x2) / 12.0,
            }
        }
        PointsKind::TwoGaussians => {
            let x1 = uniform(rng, -6.0, 6.0);
            let x2 = uniform(rng, -6.0, 6.0);
            let bump = |c: f32| (-((x1 - c).powi(2) + (x2 - c).powi(2)) / 4.0).exp();
            Point {
                x1,
                x2,
                label: bump(2.0) - bump(-2.0),
            }
        }
    }
}

/// The grid points of a `resolution` x `resolution` field, row-major from the
/// top (x2 = 6) and the left (x1 = -6).
pub fn grid(resolution: usize) -> Vec<(f32, f32)> {
    let r = resolution.max(2);
    let at = |k: usize| -6.0 + 12.0 * k as f32 / (r - 1) as f32;
    (0..r)
        .flat_map(|row| (0..r).map(move |col| (at(col), -at(row))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_seeded_balanced_and_in_the_plane() {
        for kind in [
            PointsKind::Circle,
            PointsKind::Xor,
            PointsKind::Gaussians,
            PointsKind::Spiral,
            PointsKind::Moons,
            PointsKind::Plane,
            PointsKind::TwoGaussians,
        ] {
            let spec = PointsSpec {
                kind,
                samples: 400,
                noise: 0.2,
                ..PointsSpec::default()
            };
            let a = generate(&spec, 3);
            assert_eq!(a, generate(&spec, 3), "{kind:?} repeats with its seed");
            assert_ne!(a, generate(&spec, 4), "{kind:?} changes with the seed");
            assert_eq!((a.train.len(), a.test.len()), (200, 200));
            let all: Vec<&Point> = a.train.iter().chain(&a.test).collect();
            assert!(
                all.iter().all(|p| p.x1.abs() < 9.0 && p.x2.abs() < 9.0),
                "{kind:?}"
            );
            if kind.is_regression() {
                assert!(all.iter().all(|p| (-1.0..=1.0).contains(&p.label)));
            } else {
                let ones = all.iter().filter(|p| p.label == 1.0).count();
                assert!(all.iter().all(|p| p.label == 0.0 || p.label == 1.0));
                assert!(
                    (150..=250).contains(&ones),
                    "{kind:?}: {ones} of 400 in class 1"
                );
            }
        }
    }

    #[test]
    fn clean_shapes_put_classes_where_they_belong() {
        let spec = |kind| PointsSpec {
            kind,
            samples: 300,
            ..PointsSpec::default()
        };
        let circle = generate(&spec(PointsKind::Circle), 1);
        for p in circle.train.iter().chain(&circle.test) {
            let r = p.x1.hypot(p.x2);
            assert_eq!(p.label == 1.0, r <= 2.0, "r {r}");
        }
        let xor = generate(&spec(PointsKind::Xor), 1);
        for p in xor.train.iter().chain(&xor.test) {
            assert_eq!(p.label == 1.0, p.x1 * p.x2 > 0.0);
        }
        let g = grid(3);
        assert_eq!(
            g,
            [
                (-6.0, 6.0),
                (0.0, 6.0),
                (6.0, 6.0),
                (-6.0, 0.0),
                (0.0, 0.0),
                (6.0, 0.0),
                (-6.0, -6.0),
                (0.0, -6.0),
                (6.0, -6.0)
            ]
        );
    }
}
