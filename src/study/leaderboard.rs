//! `leaderboard.csv`: one row per trial (id, state, epochs, every explored path,
//! every objective, wall seconds, whether it is on the Pareto front), rewritten
//! whole (temp + rename) by whichever worker ends a trial, so the folder is always
//! readable.

use std::path::Path;

use super::state::{Trial, TrialState};
use crate::spec::Objective;
use crate::util::atomic::write_atomic;

/// The ids of the trials no other trial beats on every objective (finished or
/// stopped trials with every value measured).
pub fn pareto_front(trials: &[Trial], objectives: &[Objective]) -> Vec<usize> {
    let scored: Vec<(usize, Vec<f64>)> = trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Finished | TrialState::Stopped))
        .filter_map(|t| {
            let s: Option<Vec<f64>> = objectives
                .iter()
                .zip(&t.values)
                .map(|(o, v)| v.map(|x| o.score(x)))
                .collect();
            s.filter(|s| s.len() == objectives.len()).map(|s| (t.id, s))
        })
        .collect();
    let dominates = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y)
    };
    scored
        .iter()
        .filter(|(_, s)| !scored.iter().any(|(_, o)| dominates(o, s)))
        .map(|(id, _)| *id)
        .collect()
}

/// The leaderboard as CSV text, best first by the first objective.
pub fn csv(trials: &[Trial], paths: &[String], objectives: &[Objective]) -> String {
    let front = pareto_front(trials, objectives);
    let mut rows: Vec<&Trial> = trials.iter().collect();
    let first = |t: &Trial| {
        t.values
            .first()
            .copied()
            .flatten()
            .zip(objectives.first())
            .map_or(f64::NEG_INFINITY, |(v, o)| o.score(v))
    };
    rows.sort_by(|a, b| first(b).total_cmp(&first(a)).then(a.id.cmp(&b.id)));
    let mut out = String::from("id,state,epochs");
    for p in paths {
        out.push(',');
        out.push_str(&quote(p));
    }
    for o in objectives {
        out.push(',');
        out.push_str(&quote(&o.label()));
    }
    // PBT: who each member copied, at which epoch.
    let pbt = trials.iter().any(|t| !t.lineage.is_empty());
    out.push_str(if pbt {
        ",wall_seconds,pareto,copied,reason\n"
    } else {
        ",wall_seconds,pareto,reason\n"
    });
    for t in rows {
        out.push_str(&format!("{},{},{}", t.id, t.state.name(), t.epochs));
        for p in paths {
            out.push(',');
            out.push_str(&quote(t.params.get(p).map_or("", String::as_str)));
        }
        for i in 0..objectives.len() {
            out.push(',');
            if let Some(v) = t.values.get(i).copied().flatten() {
                out.push_str(&v.to_string());
            }
        }
        let reason = match &t.state {
            TrialState::Failed(r) => r.as_str(),
            _ => "",
        };
        out.push_str(&format!(",{:.1},{}", t.wall_seconds, front.contains(&t.id)));
        if pbt {
            let copied: Vec<String> = t
                .lineage
                .iter()
                .map(|(epochs, from)| format!("{from}@{epochs}"))
                .collect();
            out.push_str(&format!(",{}", copied.join(" ")));
        }
        out.push_str(&format!(",{}\n", quote(reason)));
    }
    out
}

/// Writes `leaderboard.csv` into the study folder.
pub fn write(
    dir: &Path,
    trials: &[Trial],
    paths: &[String],
    objectives: &[Objective],
) -> std::io::Result<()> {
    write_atomic(
        &dir.join("leaderboard.csv"),
        csv(trials, paths, objectives).as_bytes(),
    )
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Figure;

    fn trial(id: usize, acc: f64, params: f64) -> Trial {
        Trial {
            id,
            params: [("lr".to_string(), format!("0.{id}"))].into(),
            state: TrialState::Finished,
            values: vec![Some(acc), Some(params)],
            epochs: 1.0,
            wall_seconds: 2.0,
            rungs: Default::default(),
            lineage: Vec::new(),
            generations: Vec::new(),
        }
    }

    #[test]
    fn the_front_keeps_the_trials_nothing_beats_on_both() {
        let objectives = [
            Objective::Maximize(Figure::ValAccuracy),
            Objective::Minimize(Figure::Parameters),
        ];
        // 0 is beaten by 1 (better and smaller); 1, 2, 3 trade off.
        let trials = [
            trial(0, 0.80, 200.0),
            trial(1, 0.85, 100.0),
            trial(2, 0.90, 300.0),
            trial(3, 0.70, 50.0),
        ];
        assert_eq!(pareto_front(&trials, &objectives), vec![1, 2, 3]);
        let text = csv(&trials, &["lr".to_string()], &objectives);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "id,state,epochs,lr,max ValAccuracy,min Parameters,wall_seconds,pareto,reason"
        );
        assert!(
            lines[1].starts_with("2,finished,1,0.2,0.9,300,2.0,true"),
            "{}",
            lines[1]
        );
        assert!(lines[4].starts_with("3,"), "worst accuracy last: {text}");
    }

    #[test]
    fn minimising_the_smallest_value_leads_and_unmeasured_trials_trail() {
        let objectives = [Objective::Minimize(Figure::ValLoss)];
        let mut pending = trial(3, 0.0, 0.0);
        pending.state = TrialState::Pending;
        pending.values = vec![None];
        let trials = [
            trial(0, 0.3, 0.0),
            trial(1, 0.1, 0.0),
            trial(2, 0.2, 0.0),
            pending,
        ];
        assert_eq!(
            pareto_front(&trials, &objectives),
            vec![1],
            "one objective: the best"
        );
        let text = csv(&trials, &[], &objectives);
        let ids: Vec<&str> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .collect();
        assert_eq!(ids, ["1", "2", "0", "3"], "smallest loss first:\n{text}");
    }

    #[test]
    fn the_written_file_quotes_odd_text_and_says_why_a_trial_failed() {
        let objectives = [Objective::Maximize(Figure::ValAccuracy)];
        let mut failed = trial(1, 0.0, 0.0);
        failed.state = TrialState::Failed("diverged, \"nan\"".into());
        failed.values = Vec::new();
        failed.params = [("model".to_string(), "a,b".to_string())].into();
        let trials = [trial(0, 0.5, 0.0), failed];
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), &trials, &["model".to_string()], &objectives).expect("write");
        let text = std::fs::read_to_string(dir.path().join("leaderboard.csv")).expect("read");
        assert_eq!(
            text,
            "id,state,epochs,model,max ValAccuracy,wall_seconds,pareto,reason\n\
             0,finished,1,,0.5,2.0,true,\n\
             1,failed,1,\"a,b\",,2.0,false,\"diverged, \"\"nan\"\"\"\n"
        );
    }
}
