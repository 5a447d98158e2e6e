//! A run's record as CSV: one row per step (gridworld: per episode) at which
//! anything was logged, one column per figure, in the spirit of TensorBoard's CSV
//! download (its `Step` and `Value` columns, every scalar side by side). Empty
//! cells where a figure was not measured at that step; non-finite values are
//! written as NaN / inf so a diverged run shows where.

use std::collections::BTreeMap;

use crate::events::{Split, TrainEvent};

/// The CSV text of `events` (a run's `metrics.jsonl`, in order).
pub fn metrics_csv(events: &[TrainEvent]) -> String {
    let mut columns: Vec<String> = Vec::new();
    let mut rows: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
    let mut put = |row: u64, column: &str, value: String| {
        if !columns.iter().any(|c| c == column) {
            columns.push(column.to_string());
        }
        rows.entry(row)
            .or_default()
            .insert(column.to_string(), value);
    };
    for e in events {
        match e {
            TrainEvent::Step(m) => {
                put(m.step, "epoch", num(m.epoch));
                put(m.step, "train_loss", num(m.loss));
                put(m.step, "train_accuracy", num(m.accuracy));
                put(m.step, "lr", num(m.lr));
                put(m.step, "samples_per_sec", num(m.samples_per_sec));
            }
            TrainEvent::Eval(m) => {
                let split = match m.split {
                    Split::Train => "train",
                    Split::Val => "val",
                    Split::Test => "test",
                };
                put(m.step, "epoch", num(m.epoch));
                put(m.step, &format!("{split}_loss"), num(m.loss));
                put(m.step, &format!("{split}_accuracy"), num(m.accuracy));
                if let Some(l) = &m.language {
                    put(
                        m.step,
                        &format!("{split}_bits_per_token"),
                        num(l.bits_per_token),
                    );
                }
            }
            TrainEvent::Episodes(m) => {
                put(m.episode, "env_steps", m.env_steps.to_string());
                put(m.episode, "mean_return", num(m.mean_return));
                put(m.episode, "mean_length", num(m.mean_length));
                put(m.episode, "epsilon", num(m.epsilon));
                put(m.episode, "loss", m.loss.map(num).unwrap_or_default());
                put(m.episode, "success_rate", num(m.success_rate));
                put(
                    m.episode,
                    "greedy_path_len",
                    m.greedy_path_len.map(|l| l.to_string()).unwrap_or_default(),
                );
                put(
                    m.episode,
                    "optimal_path_len",
                    m.optimal_path_len.to_string(),
                );
                put(m.episode, "moves_per_sec", num(m.steps_per_sec));
            }
            _ => {}
        }
    }
    let episodes = events.iter().any(|e| matches!(e, TrainEvent::Episodes(_)));
    let mut out = String::from(if episodes { "episode" } else { "step" });
    for c in &columns {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    for (row, cells) in rows {
        out.push_str(&row.to_string());
        for c in &columns {
            out.push(',');
            out.push_str(cells.get(c).map_or("", String::as_str));
        }
        out.push('\n');
    }
    out
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EvalMetrics, StepMetrics};

    #[test]
    fn steps_and_evaluations_share_rows_by_step() {
        let step = |s: u64, loss: f64| {
            TrainEvent::Step(StepMetrics {
                step: s,
                epoch: s as f64 / 10.0,
                loss,
                accuracy: 0.5,
                lr: 1e-3,
                samples_per_sec: 100.0,
                steps_covered: 5,
            })
        };
        let eval = TrainEvent::Eval(EvalMetrics {
            step: 10,
            epoch: 1.0,
            split: Split::Val,
            loss: 0.25,
            accuracy: 0.9,
            confusion: Vec::new(),
            language: None,
            per_class: Vec::new(),
        });
        let csv = metrics_csv(&[step(5, 1.5), step(10, f64::NAN), eval]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            [
                "step,epoch,train_loss,train_accuracy,lr,samples_per_sec,val_loss,val_accuracy",
                "5,0.5,1.5,0.5,0.001,100,,",
                "10,1,NaN,0.5,0.001,100,0.25,0.9",
            ]
        );
    }
}
