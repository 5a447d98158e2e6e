//! Plain-text tables: the model's layers and the final summary.

use std::fmt::Write;

use crate::spec::{Experiment, dataset_io, infer_shapes};
use crate::train::RunSummary;

/// One line per layer with its output shape and parameters, plus the total.
pub fn model_table(exp: &Experiment) -> String {
    let (input, _) = dataset_io(&exp.dataset);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<4} {:<10} {:<16} {:>10}",
        "#", "layer", "output", "params"
    );
    let _ = writeln!(
        out,
        "  {:<4} {:<10} {:<16} {:>10}",
        "",
        "input",
        fmt_shape(&input),
        ""
    );
    let Ok(rows) = infer_shapes(&exp.model, &input) else {
        return out;
    };
    let mut total = 0;
    for (i, r) in rows.iter().enumerate() {
        total += r.params;
        let _ = writeln!(
            out,
            "  {:<4} {:<10} {:<16} {:>10}",
            i,
            r.kind,
            fmt_shape(&r.output),
            r.params
        );
    }
    let _ = writeln!(out, "  total parameters: {total}");
    out
}

fn fmt_shape(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// The final summary as aligned `key  value` lines.
pub fn summary_table(s: &RunSummary) -> String {
    let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.2} %", a * 100.0));
    let num = |v: Option<f64>| v.map_or("-".into(), |l| format!("{l:.4}"));
    let rows = [
        ("run", s.name.clone()),
        ("ended", format!("{:?}", s.reason).to_lowercase()),
        ("steps", format!("{} ({:.2} epochs)", s.steps, s.epochs)),
        ("parameters", s.parameters.to_string()),
        (
            "train loss / acc",
            format!("{} / {}", num(s.train_loss), pct(s.train_accuracy)),
        ),
        (
            "val loss / acc",
            format!("{} / {}", num(s.val_loss), pct(s.val_accuracy)),
        ),
        (
            "test loss / acc",
            format!("{} / {}", num(s.test_loss), pct(s.test_accuracy)),
        ),
        (
            "wall time",
            format!(
                "{:.1} s (training {:.1} s)",
                s.wall_seconds, s.train_seconds
            ),
        ),
        ("throughput", format!("{:.0} samples/s", s.samples_per_sec)),
        (
            "peak memory",
            s.peak_rss_bytes
                .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
        ),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<18} {v}");
    }
    for (step, lr) in &s.lr_changes {
        let _ = writeln!(out, "  {:<18} step {step}: lr -> {lr:.3e}", "lr changed");
    }
    out
}
