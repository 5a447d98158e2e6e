//! The 2-D playground's datasets: points in the plane from a few classic shapes
//! (two classes to separate, or a surface to fit), and the input features a
//! network is given of each point.

use serde::{Deserialize, Serialize};

/// Points in the plane (-6..6 on both axes), generated from the experiment's seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PointsSpec {
    /// Which shape.
    pub kind: PointsKind,
    /// How many points in all (train and test).
    pub samples: usize,
    /// Standard deviation of the noise added to each point (data units; the
    /// plane spans 12): 0 is clean, 1 blurs the shapes' edges a lot.
    pub noise: f64,
    /// Share of the points held out for testing (0.1 to 0.9).
    pub test_fraction: f64,
    /// What the network sees of a point, in this order.
    pub features: Vec<Feature>,
}

impl Default for PointsSpec {
    fn default() -> Self {
        Self {
            kind: PointsKind::Circle,
            samples: 500,
            noise: 0.0,
            test_fraction: 0.5,
            features: vec![Feature::X1, Feature::X2],
        }
    }
}

/// The shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PointsKind {
    /// Class 1 inside a disc, class 0 in a ring around it.
    #[default]
    Circle,
    /// Class 1 where x1 and x2 have the same sign.
    Xor,
    /// Two round clouds, one per class.
    Gaussians,
    /// Two arms winding around each other: the hard one.
    Spiral,
    /// Two interleaved half moons.
    Moons,
    /// Regression: the target rises evenly across the plane (x1 + x2).
    Plane,
    /// Regression: a bump up at one place and a dip at another.
    TwoGaussians,
}

impl PointsKind {
    /// Whether the target is a number to fit rather than a class.
    pub fn is_regression(self) -> bool {
        matches!(self, Self::Plane | Self::TwoGaussians)
    }
}

/// An input feature of a point (x1, x2 in -6..6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Feature {
    /// x1 / 6.
    X1,
    /// x2 / 6.
    X2,
    /// (x1 / 6)^2.
    X1Squared,
    /// (x2 / 6)^2.
    X2Squared,
    /// (x1 / 6) (x2 / 6).
    X1X2,
    /// sin x1.
    SinX1,
    /// sin x2.
    SinX2,
}

impl Feature {
    /// Every feature, in the order the editor lists them.
    pub const ALL: [Feature; 7] = [
        Self::X1,
        Self::X2,
        Self::X1Squared,
        Self::X2Squared,
        Self::X1X2,
        Self::SinX1,
        Self::SinX2,
    ];

    /// The feature of the point (x1, x2).
    pub fn of(self, x1: f32, x2: f32) -> f32 {
        let (u, v) = (x1 / 6.0, x2 / 6.0);
        match self {
            Self::X1 => u,
            Self::X2 => v,
            Self::X1Squared => u * u,
            Self::X2Squared => v * v,
            Self::X1X2 => u * v,
            Self::SinX1 => x1.sin(),
            Self::SinX2 => x2.sin(),
        }
    }

    /// Short name for labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::X1 => "x1",
            Self::X2 => "x2",
            Self::X1Squared => "x1²",
            Self::X2Squared => "x2²",
            Self::X1X2 => "x1·x2",
            Self::SinX1 => "sin x1",
            Self::SinX2 => "sin x2",
        }
    }
}
