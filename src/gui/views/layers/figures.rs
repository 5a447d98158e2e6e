//! The Layers tab's figures and table, made from a run's `LayerStats` records:
//! one layer's activation or gradient distribution over the steps as nested
//! quantile bands (TensorBoard's distributions view), every layer's gradient norm
//! over the steps on a log axis, the dead-ReLU fraction of every ReLU layer, and
//! all of it as CSV.
//!
//! Contract: pure functions of the records (no egui state), so the window, the
//! saved PNG/SVG and the CSV show the same numbers; at most [`MAX_COLUMNS`]
//! records are drawn (evenly thinned, the last always kept).

use std::fmt::Write;

use egui::Color32;

use crate::events::{Distribution, LayerStat, LayerStats, QUANTILE_LEVELS};
use crate::gui::figure::{Figure, Series};

/// The most records a band plot draws (a long run is thinned evenly).
pub const MAX_COLUMNS: usize = 300;

/// Which of a layer's distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The layer's outputs.
    Activation,
    /// Its parameters' gradient.
    Gradient,
}

impl Which {
    fn of(self, l: &LayerStat) -> Option<&Distribution> {
        match self {
            Which::Activation => Some(&l.activation),
            Which::Gradient => l.gradient.as_ref(),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Which::Activation => "activation",
            Which::Gradient => "gradient",
        }
    }
}

/// A layer's name in lists and legends: `2 ReLU`.
pub fn layer_label(l: &LayerStat) -> String {
    format!("{} {}", l.index, l.kind)
}

/// The records to draw: all, or `MAX_COLUMNS` evenly spaced ending at the last.
fn thinned(records: &[LayerStats]) -> Vec<&LayerStats> {
    let n = records.len();
    if n <= MAX_COLUMNS {
        return records.iter().collect();
    }
    (0..MAX_COLUMNS)
        .map(|i| &records[(i * (n - 1)) / (MAX_COLUMNS - 1)])
        .collect()
}

fn layer_in(r: &LayerStats, index: usize) -> Option<&LayerStat> {
    r.layers.iter().find(|l| l.index == index)
}

/// Layer `index`'s distribution over the steps: min-max, 5-95 % and 25-75 %
/// bands, darker inwards, and the median as a line.
pub fn band_figure(records: &[LayerStats], index: usize, which: Which, colour: Color32) -> Figure {
    let name = records
        .iter()
        .find_map(|r| layer_in(r, index))
        .map_or_else(|| format!("layer {index}"), layer_label);
    let mut fig = Figure::new(
        format!("{} distribution, layer {name}", which.noun()),
        "step",
        which.noun(),
    );
    let mut columns: Vec<(f64, [f64; 7])> = Vec::new();
    for r in thinned(records) {
        if let Some(d) = layer_in(r, index).and_then(|l| which.of(l)) {
            columns.push((r.step as f64, d.quantiles));
        }
    }
    let line = |k: usize| -> Vec<[f64; 2]> { columns.iter().map(|(x, q)| [*x, q[k]]).collect() };
    for ((lo, hi), alpha, label) in [
        ((0, 6), 0.18, "min-max"),
        ((1, 5), 0.3, "5-95 %"),
        ((2, 4), 0.45, "25-75 %"),
    ] {
        fig.series.push(Series::band(
            label,
            colour.gamma_multiply(alpha),
            &line(hi),
            &line(lo),
        ));
    }
    fig.series
        .push(Series::line("median", colour, 2.0, line(3)));
    fig
}

/// Every layer's gradient norm over the steps, log10 y.
pub fn norm_figure(records: &[LayerStats], palette: &[Color32]) -> Figure {
    let mut fig = Figure::new("gradient L2 norm per layer", "step", "gradient norm");
    fig.y.log10 = true;
    for (k, (index, label)) in layers_with(records, |l| l.grad_norm.is_some())
        .into_iter()
        .enumerate()
    {
        let points = thinned(records)
            .into_iter()
            .filter_map(|r| {
                let n = layer_in(r, index)?.grad_norm?;
                Some([r.step as f64, if n > 0.0 { n.log10() } else { f64::NAN }])
            })
            .collect();
        let c = palette[k % palette.len()];
        fig.series.push(Series::line(label, c, 1.5, points));
    }
    fig
}

/// Every ReLU layer's dead fraction over the steps (None: no ReLU layer).
pub fn dead_figure(records: &[LayerStats], palette: &[Color32]) -> Option<Figure> {
    let layers = layers_with(records, |l| l.dead_fraction.is_some());
    if layers.is_empty() {
        return None;
    }
    let mut fig = Figure::new("dead ReLU units", "step", "fraction dead");
    for (k, (index, label)) in layers.into_iter().enumerate() {
        let points = thinned(records)
            .into_iter()
            .filter_map(|r| Some([r.step as f64, layer_in(r, index)?.dead_fraction?]))
            .collect();
        let c = palette[k % palette.len()];
        fig.series.push(Series::line(label, c, 1.5, points));
    }
    Some(fig)
}

/// (index, label) of the layers of the first record that satisfy `keep`.
pub fn layers_with(
    records: &[LayerStats],
    keep: impl Fn(&LayerStat) -> bool,
) -> Vec<(usize, String)> {
    records.first().map_or_else(Vec::new, |r| {
        r.layers
            .iter()
            .filter(|l| keep(l))
            .map(|l| (l.index, layer_label(l)))
            .collect()
    })
}

/// A number as the table and CSV write it (4 significant digits).
pub fn number(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{}", (v * 1e4).round() / 1e4)
    } else {
        format!("{v:.3e}")
    }
}

/// All records as CSV: one row per step, layer and distribution, with the
/// quantiles, mean, RMS, gradient norm and dead fraction.
pub fn to_csv(records: &[LayerStats]) -> String {
    let mut out = String::from("step,layer,kind,values,count,mean,rms");
    for l in QUANTILE_LEVELS {
        let _ = write!(out, ",q{}", (l * 100.0).round());
    }
    out.push_str(",grad_norm,dead_fraction\n");
    for r in records {
        for l in &r.layers {
            for which in [Which::Activation, Which::Gradient] {
                let Some(d) = which.of(l) else { continue };
                let _ = write!(
                    out,
                    "{},{},{},{},{},{},{}",
                    r.step,
                    l.index,
                    l.kind,
                    which.noun(),
                    d.count,
                    d.mean,
                    d.rms
                );
                for q in d.quantiles {
                    let _ = write!(out, ",{q}");
                }
                let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
                let (norm, dead) = match which {
                    Which::Gradient => (opt(l.grad_norm), String::new()),
                    Which::Activation => (String::new(), opt(l.dead_fraction)),
                };
                let _ = writeln!(out, ",{norm},{dead}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(q: [f64; 7]) -> Distribution {
        Distribution {
            count: 10,
            mean: q[3],
            rms: 1.0,
            quantiles: q,
        }
    }

    fn record(step: u64, scale: f64) -> LayerStats {
        LayerStats {
            step,
            samples: 4,
            layers: vec![
                LayerStat {
                    index: 0,
                    kind: "Linear".into(),
                    activation: dist([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0].map(|v| v * scale)),
                    gradient: Some(dist([-0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1])),
                    grad_norm: Some(0.01 * scale),
                    dead_fraction: None,
                },
                LayerStat {
                    index: 1,
                    kind: "ReLU".into(),
                    activation: dist([0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 3.0]),
                    gradient: None,
                    grad_norm: None,
                    dead_fraction: Some(0.25),
                },
            ],
        }
    }

    #[test]
    fn bands_nest_around_the_median() {
        let records = vec![record(10, 1.0), record(20, 2.0)];
        let fig = band_figure(&records, 0, Which::Activation, Color32::BLUE);
        assert_eq!(fig.series.len(), 4);
        // min-max: upper boundary left to right, then lower right to left.
        assert_eq!(
            fig.series[0].points,
            vec![[10.0, 3.0], [20.0, 6.0], [20.0, -6.0], [10.0, -3.0]]
        );
        assert_eq!(fig.series[3].points, vec![[10.0, 0.0], [20.0, 0.0]]);
        let norms = norm_figure(&records, &[Color32::RED]);
        assert_eq!(norms.series.len(), 1);
        assert!((norms.series[0].points[1][1] - 0.02f64.log10()).abs() < 1e-12);
        let dead = dead_figure(&records, &[Color32::RED]).expect("a ReLU layer");
        assert_eq!(dead.series[0].points, vec![[10.0, 0.25], [20.0, 0.25]]);
    }

    #[test]
    fn csv_has_a_row_per_distribution() {
        let csv = to_csv(&[record(10, 1.0)]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[0].starts_with("step,layer,kind,values,count,mean,rms,q0,q5,q25,q50"));
        assert_eq!(lines[1], "10,0,Linear,activation,10,0,1,-3,-2,-1,0,1,2,3,,");
        assert_eq!(
            lines[2],
            "10,0,Linear,gradient,10,0,1,-0.1,0,0,0,0,0,0.1,0.01,"
        );
        assert!(lines[3].ends_with(",,0.25"));
    }

    #[test]
    fn long_runs_are_thinned_keeping_the_ends() {
        let records: Vec<LayerStats> = (0..1000).map(|s| record(s, 1.0)).collect();
        let t = thinned(&records);
        assert_eq!(t.len(), MAX_COLUMNS);
        assert_eq!((t[0].step, t[MAX_COLUMNS - 1].step), (0, 999));
    }
}
