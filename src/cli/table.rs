//! Plain-text tables: the model's layers (or the maze and Q-table of a tabular
//! agent) and the final summary.

use std::fmt::Write;

use crate::data::maze::{maze_for, shortest_path};
use crate::events::{RlSummary, RunSummary};
use crate::spec::{DatasetSpec, Experiment, dataset_io, infer_shapes, kind_names, uses_model};

/// One line per layer with its output shape and parameters, plus the total; for
/// maze runs a line about the maze first.
pub fn model_table(exp: &Experiment) -> String {
    let mut out = String::new();
    if let DatasetSpec::Gridworld(g) = &exp.dataset
        && let Ok(maze) = maze_for(&g.layout, exp.seed)
    {
        let states = maze
            .cells()
            .iter()
            .filter(|c| **c != crate::data::maze::Cell::Wall)
            .count();
        let shortest = shortest_path(&maze).map_or(0, |p| p.len().saturating_sub(1));
        let _ = writeln!(
            out,
            "  {}x{} maze, {states} states, shortest path {shortest} moves; agent {}",
            maze.rows(),
            maze.cols(),
            exp.agent.method.name()
        );
        if !uses_model(exp) {
            let _ = writeln!(
                out,
                "  Q-table: {states} states x 4 actions = {} values",
                states * 4
            );
            return out;
        }
    }
    let (input, _) = dataset_io(&exp.dataset, exp.seed);
    // A text model's vocabulary is known only once the text is read (the spec
    // gives it as 0): the table says what depends on it instead of counting 0.
    let text = matches!(exp.dataset, DatasetSpec::Text(_));
    let _ = writeln!(
        out,
        "  {:<4} {:<10} {:<16} {:>10}",
        "#", "layer", "output", "params"
    );
    let shown_input = if text {
        format!("{} tokens", fmt_shape(&input[..1]))
    } else {
        fmt_shape(&input)
    };
    let _ = writeln!(
        out,
        "  {:<4} {:<10} {:<16} {:>10}",
        "", "input", shown_input, ""
    );
    let Ok(rows) = infer_shapes(&exp.model, &input) else {
        return out;
    };
    let mut total = 0;
    let mut per_token = 0;
    for (i, r) in rows.iter().enumerate() {
        total += r.params;
        // A layer that reads token ids holds one vector (its output width) per
        // token of the vocabulary.
        let params = match (exp.model.get(i), r.output.last()) {
            (Some(layer), Some(&width)) if text && layer.takes_tokens() => {
                per_token += width;
                format!("{width}/token")
            }
            _ => r.params.to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<4} {:<10} {:<16} {:>10}",
            i,
            r.kind,
            fmt_shape(&r.output),
            params
        );
    }
    if text {
        let _ = writeln!(
            out,
            "  parameters: {total} here, plus {per_token} per token of the vocabulary \
             ({}) and the output layer, both sized when the text is read; \
             the run's first line gives the total",
            kind_names(|k| k.takes_tokens)
        );
    } else {
        let _ = writeln!(out, "  total parameters: {total}");
    }
    out
}

fn fmt_shape(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// The final summary as aligned `key  value` lines.
pub fn summary_table(s: &RunSummary) -> String {
    if let Some(rl) = &s.rl {
        return rl_summary_table(s, rl);
    }
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
        (
            "throughput",
            // A language model's throughput is counted in tokens.
            match s.language {
                Some(_) => format!("{:.0} tokens/s", s.samples_per_sec),
                None => format!("{:.0} samples/s", s.samples_per_sec),
            },
        ),
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
    if let Some(p) = &s.precision {
        // Not "precision": text classifiers print per-class precision too.
        let _ = writeln!(out, "  {:<18} {}", "mixed precision", p.describe());
    }
    if let Some(b) = &s.baselines {
        let _ = writeln!(
            out,
            "  {:<18} majority class {:.2} %, char-bigram naive Bayes {:.2} %",
            "references",
            100.0 * b.majority_accuracy,
            100.0 * b.naive_bayes_accuracy
        );
    }
    for (step, lr) in &s.lr_changes {
        let _ = writeln!(out, "  {:<18} step {step}: lr -> {lr:.3e}", "lr changed");
    }
    out
}

/// The summary of a maze run: episodes, success and the greedy path vs optimal.
fn rl_summary_table(s: &RunSummary, rl: &RlSummary) -> String {
    let greedy = rl
        .greedy_path_len
        .map_or("does not reach a goal".into(), |l| format!("{l} moves"));
    let first = match (rl.first_optimal_episode, rl.first_optimal_seconds) {
        (Some(e), Some(t)) => format!("episode {e} ({t:.2} s)"),
        _ => "never".into(),
    };
    let rows = [
        ("run", format!("{} ({})", s.name, rl.method)),
        ("ended", format!("{:?}", s.reason).to_lowercase()),
        (
            "episodes / moves",
            format!("{} / {}", rl.episodes, rl.env_steps),
        ),
        ("parameters", s.parameters.to_string()),
        ("success rate", format!("{:.1} %", rl.success_rate * 100.0)),
        (
            "greedy path",
            format!(
                "{greedy}; optimal {} (shortest {}){}",
                rl.optimal_path_len,
                rl.shortest_path_len,
                if rl.greedy_optimal { ", optimal" } else { "" }
            ),
        ),
        ("first optimal", first),
        ("optimal return", format!("{:.4}", rl.optimal_return)),
        (
            "last loss",
            s.train_loss.map_or("-".into(), |l| format!("{l:.5}")),
        ),
        (
            "wall time",
            format!(
                "{:.1} s (training {:.1} s)",
                s.wall_seconds, s.train_seconds
            ),
        ),
        ("throughput", format!("{:.0} moves/s", rl.env_steps_per_sec)),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<18} {v}");
    }
    for (step, lr) in &s.lr_changes {
        let _ = writeln!(
            out,
            "  {:<18} move {step}: rate -> {lr:.3e}",
            "rate changed"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text model's token-reading layer is counted per token of the
    /// vocabulary (its output width), and the line under the table names it.
    #[test]
    fn a_text_model_counts_its_token_layer_per_token() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments/text_charlm_lstm.ron");
        let exp = crate::spec::load_file(&path).expect("example");
        let table = model_table(&exp);
        let row = table
            .lines()
            .find(|l| l.contains("Embedding"))
            .expect("an Embedding row");
        assert!(row.trim_end().ends_with("64/token"), "{table}");
        assert!(
            table.contains("plus 64 per token of the vocabulary (Embedding) and the output layer"),
            "{table}"
        );
    }
}
