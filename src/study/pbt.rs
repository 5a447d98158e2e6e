//! Population-based training's exploit/explore step: when every member stands
//! at the same epoch, the worst `quantile` take a copy of one of the best
//! `quantile` (its whole run folder: weights, optimizer state, record) and
//! continue with its settings perturbed. The new settings go into the member's
//! experiment as a `schedule.changes` entry, so the member's experiment file is
//! its whole history and replays as one run.
//!
//! Contract: which members move and to what is a pure function of the trials,
//! the study and the epoch (seeded), so any worker takes the same step; copying a
//! folder is idempotent (a copy made by a worker killed before it journalled the
//! step is simply made again).

use std::path::Path;

use super::StudySetupError;
use super::journal::Move;
use super::run::trial_dir;
use super::sample::{Point, tidy};
use super::state::{Trial, TrialState};
use crate::runs::files::EXPERIMENT;
use crate::spec::{Param, ScheduledChange, Search, StudySpec, load_file, to_ron_string};
use crate::util::atomic::write_atomic;
use crate::util::rng::Rng;

/// Who copies whom at `epochs`, with the copier's new settings.
pub fn moves(trials: &[Trial], epochs: usize, spec: &StudySpec) -> Vec<Move> {
    let Search::Pbt {
        quantile, perturb, ..
    } = spec.search
    else {
        return Vec::new();
    };
    let objective = spec.objectives[0];
    let mut ranked: Vec<(f64, usize)> = trials
        .iter()
        .filter(|t| t.state == TrialState::AtRung)
        .filter_map(|t| {
            let v = t.rungs.get(&epochs)?;
            let score = v
                .first()
                .copied()
                .flatten()
                .map_or(f64::NEG_INFINITY, |x| objective.score(x));
            Some((score, t.id))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let n = ((ranked.len() as f64 * quantile).floor() as usize)
        .max(1)
        .min(ranked.len() / 2);
    let mut rng = Rng::derive(spec.seed, &format!("pbt-{epochs}"));
    let top: Vec<usize> = ranked.iter().take(n).map(|&(_, id)| id).collect();
    ranked[ranked.len() - n..]
        .iter()
        .map(|&(_, id)| {
            let from = top[rng.below(n)];
            Move {
                id,
                from,
                params: perturbed(&trials[from].params, &spec.space, perturb, &mut rng),
            }
        })
        .collect()
}

/// `params` with every setting moved: numbers multiplied by one of `factors`
/// (kept in range), choices and steps moved to a neighbour.
fn perturbed(
    params: &Point,
    space: &std::collections::BTreeMap<String, Param>,
    factors: (f64, f64),
    rng: &mut Rng,
) -> Point {
    params
        .iter()
        .map(|(path, value)| {
            let up = rng.below(2) == 1;
            let f = if up { factors.1 } else { factors.0 };
            let num = value.parse::<f64>().ok();
            let moved = match (space.get(path), num) {
                (Some(Param::Uniform(lo, hi) | Param::LogUniform(lo, hi)), Some(v)) => {
                    tidy((v * f).clamp(*lo, *hi))
                }
                (Some(Param::IntUniform(lo, hi) | Param::IntLogUniform(lo, hi)), Some(v)) => {
                    let v = v as i64;
                    let mut x = (v as f64 * f).round() as i64;
                    if x == v {
                        x = if up { v + 1 } else { v - 1 };
                    }
                    x.clamp(*lo, *hi).to_string()
                }
                (Some(p @ (Param::Choice(_) | Param::Range { .. })), _) => {
                    let values = p.check().ok().flatten().unwrap_or_default();
                    let at = values.iter().position(|v| v == value).unwrap_or(0);
                    let last = values.len().saturating_sub(1);
                    // A neighbour, the other one at either end.
                    let next = match (up, at) {
                        (true, a) if a < last => a + 1,
                        (true, a) => a.saturating_sub(1),
                        (false, 0) => 1.min(last),
                        (false, a) => a - 1,
                    };
                    values.get(next).cloned().unwrap_or_else(|| value.clone())
                }
                _ => value.clone(),
            };
            (path.clone(), moved)
        })
        .collect()
}

/// Makes member `m.id`'s folder a copy of member `m.from`'s, continuing from
/// `epochs` with `m.params`.
pub fn copy_member(
    dir: &Path,
    study_name: &str,
    epochs: usize,
    m: &Move,
) -> Result<(), StudySetupError> {
    let (src, dst) = (trial_dir(dir, m.from), trial_dir(dir, m.id));
    let tmp = dst.with_extension("copy");
    let old = dst.with_extension("old");
    let io = |what: &'static str, source: std::io::Error| StudySetupError::PbtCopy {
        from: m.from,
        to: m.id,
        what,
        source,
    };
    for p in [&tmp, &old] {
        if p.exists() {
            std::fs::remove_dir_all(p).map_err(|e| io("clearing", e))?;
        }
    }
    copy_dir(&src, &tmp).map_err(|e| io("copying", e))?;
    let mut exp = load_file(&tmp.join(EXPERIMENT))?;
    exp.name = format!("{study_name}-{:04}", m.id);
    // Fixed (one-value) settings outside the optimizer are in the file already.
    exp.schedule.changes.push(ScheduledChange {
        epoch: epochs,
        step: None,
        set: m
            .params
            .iter()
            .filter(|(path, _)| path.starts_with("optimizer."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    });
    write_atomic(&tmp.join(EXPERIMENT), to_ron_string(&exp).as_bytes())
        .map_err(|e| io("writing its experiment", e))?;
    if dst.exists() {
        std::fs::rename(&dst, &old).map_err(|e| io("moving the old folder", e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| io("moving the copy in", e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io("removing the old folder", e))?;
    }
    Ok(())
}

fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{BaseSpec, Figure, Objective, Parallel};

    fn study(population: usize) -> StudySpec {
        StudySpec {
            name: "p".into(),
            base: BaseSpec::Inline(Box::default()),
            space: BTreeMap::from([
                ("optimizer.lr".to_string(), Param::LogUniform(1e-3, 1e-1)),
                (
                    "optimizer.weight_decay".to_string(),
                    Param::Choice(vec![
                        ron::from_str("0.0").expect("v"),
                        ron::from_str("0.1").expect("v"),
                        ron::from_str("0.2").expect("v"),
                    ]),
                ),
            ]),
            search: Search::Pbt {
                population,
                interval_epochs: 1,
                max_epochs: 4,
                quantile: 0.25,
                perturb: (0.8, 1.2),
            },
            objectives: vec![Objective::Maximize(Figure::ValAccuracy)],
            parallel: Parallel::Auto,
            seed: 3,
            trial_weights: Default::default(),
        }
    }

    fn member(id: usize, acc: f64) -> Trial {
        Trial {
            id,
            params: BTreeMap::from([
                (
                    "optimizer.lr".to_string(),
                    format!("{}", 0.01 + id as f64 * 0.01),
                ),
                ("optimizer.weight_decay".to_string(), "0.1".to_string()),
            ]),
            state: TrialState::AtRung,
            values: vec![Some(acc)],
            epochs: 1.0,
            wall_seconds: 1.0,
            rungs: BTreeMap::from([(1, vec![Some(acc)])]),
            lineage: Vec::new(),
            generations: Vec::new(),
        }
    }

    #[test]
    fn the_worst_quarter_copy_the_best_quarter_with_settings_nudged() {
        let accs = [0.5, 0.9, 0.7, 0.2, 0.8, 0.6, 0.95, 0.3];
        let trials: Vec<Trial> = accs
            .iter()
            .enumerate()
            .map(|(i, &a)| member(i, a))
            .collect();
        let spec = study(8);
        let moves = moves(&trials, 1, &spec);
        assert_eq!(
            moves,
            super::moves(&trials, 1, &spec),
            "the same step in every worker"
        );
        let mut losers: Vec<usize> = moves.iter().map(|m| m.id).collect();
        losers.sort();
        assert_eq!(losers, [3, 7], "the two worst of eight");
        for m in &moves {
            assert!(
                [1, 6].contains(&m.from),
                "copies one of the two best: {m:?}"
            );
            let lr: f64 = m.params["optimizer.lr"].parse().expect("number");
            let donor: f64 = trials[m.from].params["optimizer.lr"]
                .parse()
                .expect("number");
            let ratio = lr / donor;
            assert!(
                (ratio - 0.8).abs() < 1e-4 || (ratio - 1.2).abs() < 1e-4,
                "lr x0.8 or x1.2: {ratio}"
            );
            assert!(
                ["0", "0.2"].contains(&m.params["optimizer.weight_decay"].as_str()),
                "a neighbour of 0.1"
            );
        }
        // Two members: one copies the other.
        let two = moves_of(&[0.4, 0.6]);
        assert_eq!((two[0].id, two[0].from), (0, 1));
    }

    #[test]
    fn minimising_the_largest_losses_copy_the_smallest() {
        let losses = [0.5, 0.9, 0.7, 0.2, 0.8, 0.6, 0.95, 0.3];
        let trials: Vec<Trial> = losses
            .iter()
            .enumerate()
            .map(|(i, &a)| member(i, a))
            .collect();
        let mut spec = study(8);
        spec.objectives = vec![Objective::Minimize(Figure::ValLoss)];
        let moves = moves(&trials, 1, &spec);
        let mut losers: Vec<usize> = moves.iter().map(|m| m.id).collect();
        losers.sort();
        assert_eq!(losers, [1, 6], "the two largest losses of eight move");
        for m in &moves {
            assert!(
                [3, 7].contains(&m.from),
                "copies one of the two smallest losses: {m:?}"
            );
        }
    }

    fn moves_of(accs: &[f64]) -> Vec<Move> {
        let trials: Vec<Trial> = accs
            .iter()
            .enumerate()
            .map(|(i, &a)| member(i, a))
            .collect();
        moves(&trials, 1, &study(accs.len()))
    }

    #[test]
    fn settings_stay_in_their_range() {
        let space = study(2).space;
        let mut rng = Rng::new(1);
        let top = BTreeMap::from([
            ("optimizer.lr".to_string(), "0.1".to_string()),
            ("optimizer.weight_decay".to_string(), "0.2".to_string()),
        ]);
        for _ in 0..50 {
            let p = perturbed(&top, &space, (0.8, 1.2), &mut rng);
            let lr: f64 = p["optimizer.lr"].parse().expect("number");
            assert!((1e-3..=1e-1).contains(&lr), "{lr}");
            assert!(["0.1", "0.2"].contains(&p["optimizer.weight_decay"].as_str()));
        }
    }

    #[test]
    fn past_half_the_quantile_still_moves_at_most_half_the_population() {
        let trials: Vec<Trial> = [0.5, 0.9, 0.7, 0.2]
            .iter()
            .enumerate()
            .map(|(i, &a)| member(i, a))
            .collect();
        for (quantile, want) in [(0.75, vec![0, 3]), (0.5, vec![0, 3]), (0.1, vec![3])] {
            let mut spec = study(4);
            if let Search::Pbt { quantile: q, .. } = &mut spec.search {
                *q = quantile;
            }
            let moves = moves(&trials, 1, &spec);
            let mut losers: Vec<usize> = moves.iter().map(|m| m.id).collect();
            losers.sort();
            assert_eq!(losers, want, "quantile {quantile}");
            let best: &[usize] = if want.len() == 2 { &[1, 2] } else { &[1] };
            assert!(
                moves.iter().all(|m| best.contains(&m.from)),
                "quantile {quantile}: {moves:?}"
            );
        }
    }

    #[test]
    fn a_setting_moves_to_its_exact_neighbour_up_or_down_as_drawn() {
        let mut space = study(2).space;
        space.insert("optimizer.n".to_string(), Param::IntUniform(1, 100));
        // (setting, value, after a move up, after a move down)
        let cases = [
            ("optimizer.weight_decay", "0.0", "0.1", "0.1"),
            ("optimizer.weight_decay", "0.1", "0.2", "0.0"),
            ("optimizer.weight_decay", "0.2", "0.1", "0.1"),
            // x1.2 and x0.8, rounded
            ("optimizer.n", "10", "12", "8"),
            // 2.4 and 1.6 round back to 2: one step instead
            ("optimizer.n", "2", "3", "1"),
            // kept in range
            ("optimizer.n", "100", "100", "80"),
            ("optimizer.n", "1", "2", "1"),
            // not searched: kept
            ("optimizer.momentum", "0.9", "0.9", "0.9"),
        ];
        let mut rng = Rng::new(4);
        for (path, value, up, down) in cases {
            let mut seen = (false, false);
            for _ in 0..16 {
                let going_up = rng.clone().below(2) == 1;
                let p = BTreeMap::from([(path.to_string(), value.to_string())]);
                let got = perturbed(&p, &space, (0.8, 1.2), &mut rng);
                let want = if going_up { up } else { down };
                assert_eq!(got[path], want, "{path} = {value}, up: {going_up}");
                if going_up {
                    seen.0 = true;
                } else {
                    seen.1 = true;
                }
            }
            assert_eq!(seen, (true, true), "{path} = {value}: both ways drawn");
        }
    }
}
