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

    /// One path per space: each point takes exactly one number from the
    /// generator `random` derives from the seed (`Rng::derive(seed, "study")`),
    /// so each value must be its documented formula applied to that draw u,
    /// written here in another form than the code's (powers, not ln/exp).
    #[test]
    fn each_continuous_draw_is_its_formula_of_the_seeded_uniform() {
        let one = |p: Param| BTreeMap::from([("x".to_string(), p)]);
        let seed = 21;
        let check = |p: Param, formula: &dyn Fn(f64) -> f64| {
            let points = random(&one(p.clone()), 60, seed).expect("draws");
            let mut rng = Rng::derive(seed, "study");
            for point in &points {
                let want = formula(rng.f64());
                let got: f64 = point["x"].parse().expect("number");
                // `tidy` keeps six significant digits.
                assert!(
                    (got - want).abs() <= want.abs() * 1e-5,
                    "{p:?}: {got} vs {want}"
                );
            }
        };
        // Uniform in [2, 6): 2 + 4u.
        check(Param::Uniform(2.0, 6.0), &|u| 2.0 + 4.0 * u);
        // Log-uniform in [1e-3, 10): 1e-3 * (1e4)^u.
        check(Param::LogUniform(1e-3, 10.0), &|u| {
            1e-3 * 10f64.powf(4.0 * u)
        });
        // Whole numbers log-uniform over [2, 6) (hi + 1 excluded), rounded
        // down: 2 * 3^u, so 2..=5, 5 for u above log3(2.5) = 0.834.
        check(Param::IntLogUniform(2, 5), &|u| {
            (2.0 * 3f64.powf(u)).floor()
        });
        assert_eq!(tidy(0.000_123_456_789), "0.000123457");
        assert_eq!(tidy(1_234_567.0), "1234570");
    }

    #[test]
    fn whole_numbers_reach_both_bounds_about_equally_often() {
        // IntUniform(1, 3): 1, 2 and 3 a third each; IntLogUniform(1, 3):
        // log-uniform over [1, 4), so 1 half the time (ln 2 / ln 4), 2 for
        // ln(3/2) / ln 4 = 0.292, 3 for ln(4/3) / ln 4 = 0.208.
        let s = BTreeMap::from([
            ("k".to_string(), Param::IntUniform(1, 3)),
            ("l".to_string(), Param::IntLogUniform(1, 3)),
        ]);
        let n = 3000;
        let points = random(&s, n, 5).expect("draws");
        for (path, shares) in [("k", [1.0 / 3.0; 3]), ("l", [0.5, 0.292, 0.208])] {
            let mut counts = [0usize; 3];
            for p in &points {
                let v: usize = p[path].parse().expect("int");
                assert!((1..=3).contains(&v), "{path} = {v}");
                counts[v - 1] += 1;
            }
            for (v, (&c, share)) in counts.iter().zip(shares).enumerate() {
                let got = c as f64 / n as f64;
                assert!(
                    (got - share).abs() < 0.04,
                    "{path}: {} drawn {got} of the time, not {share}",
                    v + 1
                );
            }
        }
    }

    #[test]
    fn a_discrete_space_repeats_no_point_until_every_one_is_drawn() {
        // Two points for a space of two: both, whatever the seed (independent
        // draws would repeat one for about half the seeds).
        let two = BTreeMap::from([(
            "a".to_string(),
            Param::Choice(vec![
                ron::from_str("1").expect("value"),
                ron::from_str("2").expect("value"),
            ]),
        )]);
        for seed in 0..20 {
            let mut got: Vec<String> = random(&two, 2, seed)
                .expect("draws")
                .iter()
                .map(|p| p["a"].clone())
                .collect();
            got.sort();
            assert_eq!(got, ["1", "2"], "seed {seed}");
        }
        // Four of six: four different ones, for every seed.
        for seed in 0..20 {
            let points = random(&space(), 4, seed).expect("draws");
            let mut seen: Vec<String> = points.iter().map(|p| format!("{p:?}")).collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 4, "seed {seed}: {points:?}");
        }
        // More trials than points: as many trials as asked, each a point of the space.
        let many = random(&space(), 10, 3).expect("draws");
        assert_eq!(many.len(), 10);
        let all = grid(&space()).expect("grid");
        assert!(many.iter().all(|p| all.contains(p)), "{many:?}");
    }
}
