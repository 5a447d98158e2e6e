//! Which points of a search space to try: every combination (grid) or seeded
//! random draws. A point maps each `--set` path to the value text `--set` reads.
//! Pure functions of the space and the seed, so a study resumed anywhere samples
//! the same trials.

use std::collections::BTreeMap;

use super::StudySetupError;
use crate::spec::Param;
use crate::util::rng::Rng;

/// One trial's settings: path -> value text.
pub type Point = BTreeMap<String, String>;

/// Every combination of the grid values (the first path varies slowest).
pub fn grid(space: &BTreeMap<String, Param>) -> Result<Vec<Point>, StudySetupError> {
    let mut points = vec![Point::new()];
    for (path, param) in space {
        let values = param
            .check()
            .map_err(StudySetupError::Param)?
            .ok_or_else(|| StudySetupError::NotGridable { path: path.clone() })?;
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(path.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

/// `n` random points; the same space and seed give the same points. A space of
/// Choices and Ranges only with at least `n` combinations gives `n` different ones.
pub fn random(
    space: &BTreeMap<String, Param>,
    n: usize,
    seed: u64,
) -> Result<Vec<Point>, StudySetupError> {
    let mut rng = Rng::derive(seed, "study");
    // The number of combinations, when every path is discrete and they are few
    // enough to list.
    let combinations = space.values().try_fold(1usize, |acc, p| {
        let values = p.check().ok().flatten()?.len();
        acc.checked_mul(values).filter(|&c| c <= 100_000)
    });
    if combinations.is_some() {
        let mut all = grid(space)?;
        if all.len() >= n {
            rng.shuffle(&mut all);
            all.truncate(n);
            return Ok(all);
        }
    }
    (0..n)
        .map(|_| {
            space
                .iter()
                .map(|(path, param)| Ok((path.clone(), draw(param, &mut rng)?)))
                .collect()
        })
        .collect()
}

fn draw(param: &Param, rng: &mut Rng) -> Result<String, StudySetupError> {
    let pick_int = |lo: i64, hi: i64, rng: &mut Rng| lo + rng.below((hi - lo + 1) as usize) as i64;
    Ok(match param {
        Param::Uniform(lo, hi) => tidy(lo + rng.f64() * (hi - lo)),
        Param::LogUniform(lo, hi) => tidy((lo.ln() + rng.f64() * (hi.ln() - lo.ln())).exp()),
        Param::IntUniform(lo, hi) => pick_int(*lo, *hi, rng).to_string(),
        Param::IntLogUniform(lo, hi) => {
            let (a, b) = ((*lo as f64).ln(), (*hi as f64 + 1.0).ln());
            let v = (a + rng.f64() * (b - a)).exp().floor() as i64;
            v.clamp(*lo, *hi).to_string()
        }
        Param::Choice(_) | Param::Range { .. } => {
            let values = param
                .check()
                .map_err(StudySetupError::Param)?
                .unwrap_or_default();
            values[rng.below(values.len())].clone()
        }
    })
}

/// Six significant digits: enough for a hyperparameter, short in tables.
pub(super) fn tidy(x: f64) -> String {
    format!("{}", format!("{x:.5e}").parse::<f64>().unwrap_or(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> BTreeMap<String, Param> {
        BTreeMap::from([
            (
                "a".to_string(),
                Param::Choice(vec![
                    ron::from_str("1").expect("value"),
                    ron::from_str("2").expect("value"),
                ]),
            ),
            (
                "b".to_string(),
                Param::Range {
                    low: 0.0,
                    high: 0.2,
                    step: 0.1,
                },
            ),
        ])
    }

    #[test]
    fn grid_is_every_combination() {
        let g = grid(&space()).expect("grid");
        let flat: Vec<String> = g.iter().map(|p| format!("{}/{}", p["a"], p["b"])).collect();
        assert_eq!(flat, ["1/0", "1/0.1", "1/0.2", "2/0", "2/0.1", "2/0.2"]);
        let uniform = BTreeMap::from([("c".to_string(), Param::Uniform(0.0, 1.0))]);
        assert!(grid(&uniform).is_err());
    }

    #[test]
    fn random_points_of_a_discrete_space_differ() {
        let points = random(&space(), 6, 3).expect("draws");
        let mut seen: Vec<String> = points.iter().map(|p| format!("{p:?}")).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6, "all six combinations, once each");
    }

    #[test]
    fn random_points_stay_in_range_and_repeat_with_the_seed() {
        let s = BTreeMap::from([
            ("lr".to_string(), Param::LogUniform(1e-4, 1e-1)),
            ("n".to_string(), Param::IntLogUniform(16, 512)),
            ("k".to_string(), Param::IntUniform(1, 3)),
        ]);
        let a = random(&s, 200, 7).expect("draws");
        assert_eq!(a, random(&s, 200, 7).expect("draws"));
        assert_ne!(a, random(&s, 200, 8).expect("draws"));
        for p in &a {
            let lr: f64 = p["lr"].parse().expect("number");
            let n: i64 = p["n"].parse().expect("int");
            let k: i64 = p["k"].parse().expect("int");
            assert!((1e-4..=1e-1).contains(&lr) && (16..=512).contains(&n) && (1..=3).contains(&k));
        }
        let small = a
            .iter()
            .filter(|p| p["lr"].parse::<f64>().expect("n") < 1e-2)
            .count();
        assert!(
            (110..170).contains(&small),
            "log-uniform: 2/3 below 1e-2, got {small}/200"
        );
    }
}
