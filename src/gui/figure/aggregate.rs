//! Shrinking long series to what a plot can show: a min/max envelope per x bucket.
//!
//! Contract: `min_max_envelope` splits `[x_min, x_max]` into `buckets` equal windows
//! and keeps, per window that holds points, the smallest and largest *finite* y and
//! the count of non-finite ones (NaN, +inf, -inf). Non-finite values are never
//! dropped silently: a window with only non-finite values still appears (with
//! `min`/`max` = None) so the caller can mark it. Points outside the x range are
//! ignored. `xs` must be sorted ascending (steps are); pure functions, no egui.

/// One x window of a decimated series.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Centre of the window on the x axis.
    pub x: f64,
    /// Smallest finite y in the window.
    pub min: Option<f64>,
    /// Largest finite y in the window.
    pub max: Option<f64>,
    /// How many NaN or infinite values fell in the window.
    pub non_finite: usize,
}

/// Min/max envelope of `(xs, ys)` over `[x_min, x_max]` in `buckets` windows.
/// Returns only the windows that hold at least one point, in x order.
pub fn min_max_envelope(
    xs: &[f64],
    ys: &[f64],
    (x_min, x_max): (f64, f64),
    buckets: usize,
) -> Vec<Bucket> {
    let n = xs.len().min(ys.len());
    // `x_max < x_min` would let NaN bounds through.
    if n == 0 || buckets == 0 || x_max.partial_cmp(&x_min).is_none_or(|o| o.is_lt()) {
        return Vec::new();
    }
    let width = ((x_max - x_min) / buckets as f64).max(f64::MIN_POSITIVE);
    let start = xs[..n].partition_point(|&x| x < x_min);
    let mut out: Vec<Bucket> = Vec::new();
    let mut current: Option<(usize, Bucket)> = None;
    for i in start..n {
        let x = xs[i];
        if x > x_max {
            break;
        }
        let index = (((x - x_min) / width) as usize).min(buckets - 1);
        let fresh = |index: usize| Bucket {
            x: x_min + (index as f64 + 0.5) * width,
            min: None,
            max: None,
            non_finite: 0,
        };
        let bucket = match &mut current {
            Some((at, bucket)) if *at == index => bucket,
            _ => {
                if let Some((_, done)) = current.take() {
                    out.push(done);
                }
                &mut current.insert((index, fresh(index))).1
            }
        };
        let y = ys[i];
        if y.is_finite() {
            bucket.min = Some(bucket.min.map_or(y, |m| m.min(y)));
            bucket.max = Some(bucket.max.map_or(y, |m| m.max(y)));
        } else {
            bucket.non_finite += 1;
        }
    }
    if let Some((_, done)) = current {
        out.push(done);
    }
    out
}

/// A polyline that traces the envelope: min then max at each window's centre, so
/// a dense series draws as a band. Windows without finite values are skipped.
pub fn envelope_polyline(buckets: &[Bucket]) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(buckets.len() * 2);
    for b in buckets {
        if let (Some(min), Some(max)) = (b.min, b.max) {
            out.push([b.x, min]);
            if max > min {
                out.push([b.x, max]);
            }
        }
    }
    out
}

/// Positions of the windows that held non-finite values (for markers).
pub fn non_finite_positions(buckets: &[Bucket]) -> Vec<f64> {
    buckets
        .iter()
        .filter(|b| b.non_finite > 0)
        .map(|b| b.x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        xs: Vec<f64>,
        ys: Vec<f64>,
        range: (f64, f64),
        buckets: usize,
        /// Expected (min, max, non_finite) per returned bucket.
        expect: Vec<(Option<f64>, Option<f64>, usize)>,
    }

    fn check(case: &Case) {
        let got = min_max_envelope(&case.xs, &case.ys, case.range, case.buckets);
        let got: Vec<_> = got.iter().map(|b| (b.min, b.max, b.non_finite)).collect();
        assert_eq!(got, case.expect, "case `{}`", case.name);
    }

    #[test]
    fn envelopes() {
        let nan = f64::NAN;
        let cases = [
            Case {
                name: "empty input",
                xs: vec![],
                ys: vec![],
                range: (0.0, 1.0),
                buckets: 4,
                expect: vec![],
            },
            Case {
                name: "one point per bucket",
                xs: vec![0.0, 1.0, 2.0, 3.0],
                ys: vec![4.0, 3.0, 2.0, 1.0],
                range: (0.0, 4.0),
                buckets: 4,
                expect: vec![
                    (Some(4.0), Some(4.0), 0),
                    (Some(3.0), Some(3.0), 0),
                    (Some(2.0), Some(2.0), 0),
                    (Some(1.0), Some(1.0), 0),
                ],
            },
            Case {
                name: "min and max of many",
                xs: (0..100).map(f64::from).collect(),
                ys: (0..100).map(|i| f64::from(i % 10)).collect(),
                range: (0.0, 99.0),
                buckets: 2,
                expect: vec![(Some(0.0), Some(9.0), 0), (Some(0.0), Some(9.0), 0)],
            },
            Case {
                name: "NaN and inf stay visible",
                xs: vec![0.0, 1.0, 2.0, 3.0],
                ys: vec![1.0, nan, f64::INFINITY, f64::NEG_INFINITY],
                range: (0.0, 3.0),
                buckets: 2,
                expect: vec![(Some(1.0), Some(1.0), 1), (None, None, 2)],
            },
            Case {
                name: "outside the range is ignored",
                xs: vec![-5.0, 0.5, 10.0],
                ys: vec![100.0, 1.0, 100.0],
                range: (0.0, 1.0),
                buckets: 3,
                expect: vec![(Some(1.0), Some(1.0), 0)],
            },
            Case {
                name: "zero buckets",
                xs: vec![1.0],
                ys: vec![1.0],
                range: (0.0, 1.0),
                buckets: 0,
                expect: vec![],
            },
        ];
        for case in &cases {
            check(case);
        }
    }

    #[test]
    fn a_million_points_become_at_most_two_per_bucket() {
        let xs: Vec<f64> = (0..1_000_000).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| (x * 0.001).sin()).collect();
        let buckets = min_max_envelope(&xs, &ys, (0.0, 999_999.0), 1000);
        assert_eq!(buckets.len(), 1000);
        let line = envelope_polyline(&buckets);
        assert!(line.len() <= 2000, "{}", line.len());
        assert!(non_finite_positions(&buckets).is_empty());
    }

    #[test]
    fn polyline_and_markers() {
        let buckets = min_max_envelope(&[0.0, 1.0], &[f64::NAN, 2.0], (0.0, 2.0), 2);
        assert_eq!(envelope_polyline(&buckets), vec![[1.5, 2.0]]);
        assert_eq!(non_finite_positions(&buckets), vec![0.5]);
    }
}
