//! The study's state, rebuilt by replaying its journal, and the scheduling rule:
//! which trial a worker takes next (grid/random: the next one not yet run; ASHA:
//! a promotion first, else a new trial at the first rung).
//!
//! Contract: a pure function of the journal entries (and whether owners are
//! alive), so every process that reads the journal agrees on what happens next.

use std::collections::BTreeMap;

use super::journal::{Entry, Owner};
use super::sample::Point;
use crate::spec::{Objective, Search};

/// Where a trial stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialState {
    /// Not started.
    Pending,
    /// Being trained by `owner`, up to `epochs` (None: to the end).
    Running {
        /// Who.
        owner: Owner,
        /// Until when.
        epochs: Option<usize>,
    },
    /// Released by its worker mid-way; the next worker continues it toward `epochs`.
    Released {
        /// Until when.
        epochs: Option<usize>,
    },
    /// Reached an ASHA rung; waits to be promoted or stopped.
    AtRung,
    /// Trained to its end.
    Finished,
    /// Stopped by ASHA.
    Stopped,
    /// Could not run, or diverged.
    Failed(String),
}

impl TrialState {
    /// Short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running { .. } => "running",
            Self::Released { .. } => "released",
            Self::AtRung => "at rung",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Failed(_) => "failed",
        }
    }
}

/// One trial as the journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Number, from 0.
    pub id: usize,
    /// Its settings.
    pub params: Point,
    /// Where it stands.
    pub state: TrialState,
    /// Latest objective values (from the last rung or the end).
    pub values: Vec<Option<f64>>,
    /// Epochs trained.
    pub epochs: f64,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// ASHA and PBT: rung epochs -> values reported there.
    pub rungs: BTreeMap<usize, Vec<Option<f64>>>,
    /// PBT: (epochs, member copied) each time this member took another's weights.
    pub lineage: Vec<(usize, usize)>,
    /// PBT: the epochs at which the population's exploit step has been taken.
    pub generations: Vec<usize>,
}

/// Every trial, by id.
pub fn replay(entries: &[Entry]) -> Vec<Trial> {
    let mut trials: Vec<Trial> = Vec::new();
    for e in entries {
        match e {
            Entry::Sampled { id, params } => {
                if *id == trials.len() {
                    trials.push(Trial {
                        id: *id,
                        params: params.clone(),
                        state: TrialState::Pending,
                        values: Vec::new(),
                        epochs: 0.0,
                        wall_seconds: 0.0,
                        rungs: BTreeMap::new(),
                        lineage: Vec::new(),
                        generations: Vec::new(),
                    });
                }
            }
            Entry::Started { id, epochs, owner } => {
                if let Some(t) = trials.get_mut(*id) {
                    t.state = TrialState::Running {
                        owner: owner.clone(),
                        epochs: *epochs,
                    };
                }
            }
            Entry::Reported {
                id,
                epochs,
                values,
                wall_seconds,
            } => {
                if let Some(t) = trials.get_mut(*id) {
                    t.state = TrialState::AtRung;
                    t.rungs.insert(*epochs, values.clone());
                    t.values.clone_from(values);
                    t.epochs = *epochs as f64;
                    t.wall_seconds = *wall_seconds;
                }
            }
            Entry::Finished {
                id,
                values,
                wall_seconds,
                epochs,
            } => {
                if let Some(t) = trials.get_mut(*id) {
                    t.state = TrialState::Finished;
                    t.values.clone_from(values);
                    t.wall_seconds = *wall_seconds;
                    t.epochs = *epochs;
                }
            }
            Entry::Generation { epochs, moves } => {
                for t in trials.iter_mut() {
                    t.generations.push(*epochs);
                }
                for m in moves {
                    if let Some(t) = trials.get_mut(m.id) {
                        t.params.clone_from(&m.params);
                        t.lineage.push((*epochs, m.from));
                    }
                }
            }
            Entry::Released { id, epochs } => {
                if let Some(t) = trials.get_mut(*id) {
                    t.state = TrialState::Released { epochs: *epochs };
                }
            }
            Entry::Stopped { id } => {
                if let Some(t) = trials.get_mut(*id) {
                    t.state = TrialState::Stopped;
                }
            }
            Entry::Failed { id, reason } => {
                if let Some(t) = trials.get_mut(*id) {
                    t.state = TrialState::Failed(reason.clone());
                }
            }
        }
    }
    trials
}

/// What a worker does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Train trial `id` up to `epochs` (None: to its end).
    Run {
        /// The trial.
        id: usize,
        /// Until when.
        epochs: Option<usize>,
    },
    /// PBT: every member stands at `epochs`; take the exploit/explore step.
    Exploit {
        /// Where the population stands.
        epochs: usize,
    },
    /// Others are still training; ask again soon.
    Wait,
    /// Nothing is left; these trials end here (ASHA: stopped at their rung).
    Done {
        /// Trials to mark stopped.
        stop: Vec<usize>,
    },
}

/// ASHA's rungs: min, min*eta, ... below max, then max.
pub fn rungs(min_epochs: usize, max_epochs: usize, eta: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut r = min_epochs.max(1);
    while r < max_epochs {
        out.push(r);
        r = r.saturating_mul(eta.max(2));
    }
    out.push(max_epochs);
    out
}

/// The next job under `search`; `alive` says whether a running trial's owner
/// still works on it.
pub fn next_job(
    trials: &[Trial],
    search: &Search,
    objective: Objective,
    alive: impl Fn(&Owner) -> bool,
) -> Job {
    // A trial whose worker died or let it go goes on from where it was.
    for t in trials {
        match &t.state {
            TrialState::Running { owner, epochs } if !alive(owner) => {
                return Job::Run {
                    id: t.id,
                    epochs: *epochs,
                };
            }
            TrialState::Released { epochs } => {
                return Job::Run {
                    id: t.id,
                    epochs: *epochs,
                };
            }
            _ => {}
        }
    }
    if let Search::Pbt {
        interval_epochs,
        max_epochs,
        ..
    } = search
    {
        return pbt_job(trials, &rungs_every(*interval_epochs, *max_epochs));
    }
    let asha = match search {
        Search::Asha {
            min_epochs,
            max_epochs,
            eta,
            ..
        } => Some((rungs(*min_epochs, *max_epochs, *eta), *eta)),
        _ => None,
    };
    if let Some((rungs, eta)) = &asha
        && let Some(job) = promotion(trials, rungs, *eta, objective)
    {
        return job;
    }
    if let Some(t) = trials.iter().find(|t| t.state == TrialState::Pending) {
        return Job::Run {
            id: t.id,
            epochs: asha.as_ref().map(|(r, _)| r[0]),
        };
    }
    if trials
        .iter()
        .any(|t| matches!(t.state, TrialState::Running { .. }))
    {
        return Job::Wait;
    }
    Job::Done {
        stop: trials
            .iter()
            .filter(|t| t.state == TrialState::AtRung)
            .map(|t| t.id)
            .collect(),
    }
}

/// PBT's stops: every `interval` epochs, then `max`.
pub fn rungs_every(interval: usize, max_epochs: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (1..)
        .map(|k| k * interval.max(1))
        .take_while(|&r| r < max_epochs)
        .collect();
    out.push(max_epochs);
    out
}

/// PBT in lockstep: members train to the next stop; when all stand at one, the
/// exploit step is taken once, then all go on.
fn pbt_job(trials: &[Trial], rungs: &[usize]) -> Job {
    if let Some(t) = trials.iter().find(|t| t.state == TrialState::Pending) {
        return Job::Run {
            id: t.id,
            epochs: Some(rungs[0]),
        };
    }
    let last = |t: &Trial| t.rungs.keys().next_back().copied();
    for t in trials.iter().filter(|t| t.state == TrialState::AtRung) {
        if let Some(r) = last(t)
            && t.generations.contains(&r)
            && let Some(&next) = rungs.iter().find(|&&n| n > r)
        {
            return Job::Run {
                id: t.id,
                epochs: Some(next),
            };
        }
    }
    if trials
        .iter()
        .any(|t| matches!(t.state, TrialState::Running { .. }))
    {
        return Job::Wait;
    }
    match trials
        .iter()
        .filter(|t| t.state == TrialState::AtRung)
        .find_map(last)
    {
        Some(epochs) => Job::Exploit { epochs },
        None => Job::Done { stop: Vec::new() },
    }
}

/// ASHA: the highest-rung trial that is in the top 1/eta of its rung.
fn promotion(trials: &[Trial], rungs: &[usize], eta: usize, objective: Objective) -> Option<Job> {
    let score = |v: &[Option<f64>]| {
        v.first()
            .copied()
            .flatten()
            .map_or(f64::NEG_INFINITY, |x| objective.score(x))
    };
    for (k, &rung) in rungs.iter().enumerate().rev().skip(1) {
        let mut at: Vec<(f64, usize)> = trials
            .iter()
            .filter_map(|t| t.rungs.get(&rung).map(|v| (score(v), t.id)))
            .collect();
        at.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let top = at.len() / eta;
        for &(_, id) in at.iter().take(top) {
            let t = &trials[id];
            // Waiting at exactly this rung (not yet promoted past it).
            if t.state == TrialState::AtRung && t.rungs.keys().next_back() == Some(&rung) {
                return Some(Job::Run {
                    id,
                    epochs: Some(rungs[k + 1]),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Figure;

    fn owner(pid: u32) -> Owner {
        Owner {
            host: "h".into(),
            pid,
        }
    }

    fn sampled(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|id| Entry::Sampled {
                id,
                params: Point::new(),
            })
            .collect()
    }

    #[test]
    fn rungs_grow_by_eta_up_to_the_maximum() {
        assert_eq!(rungs(1, 9, 3), vec![1, 3, 9]);
        assert_eq!(rungs(1, 10, 3), vec![1, 3, 9, 10]);
        assert_eq!(rungs(2, 2, 3), vec![2]);
    }

    #[test]
    fn asha_promotes_the_best_third_and_stops_the_rest() {
        let search = Search::Asha {
            trials: 3,
            min_epochs: 1,
            max_epochs: 3,
            eta: 3,
        };
        let obj = Objective::Maximize(Figure::ValAccuracy);
        let mut log = sampled(3);
        let alive = |_: &Owner| true;
        for id in 0..3 {
            let job = next_job(&replay(&log), &search, obj, alive);
            assert_eq!(
                job,
                Job::Run {
                    id,
                    epochs: Some(1)
                }
            );
            log.push(Entry::Started {
                id,
                epochs: Some(1),
                owner: owner(1),
            });
        }
        assert_eq!(next_job(&replay(&log), &search, obj, alive), Job::Wait);
        for (id, acc) in [(0, 0.5), (1, 0.9), (2, 0.7)] {
            log.push(Entry::Reported {
                id,
                epochs: 1,
                values: vec![Some(acc)],
                wall_seconds: 1.0,
            });
        }
        // One of three goes on: the best.
        let job = next_job(&replay(&log), &search, obj, alive);
        assert_eq!(
            job,
            Job::Run {
                id: 1,
                epochs: Some(3)
            }
        );
        log.push(Entry::Started {
            id: 1,
            epochs: Some(3),
            owner: owner(1),
        });
        // Its worker dies: the trial is taken up again with the same target.
        let dead = |o: &Owner| o.pid != 1;
        assert_eq!(
            next_job(&replay(&log), &search, obj, dead),
            Job::Run {
                id: 1,
                epochs: Some(3)
            }
        );
        log.push(Entry::Finished {
            id: 1,
            values: vec![Some(0.95)],
            wall_seconds: 3.0,
            epochs: 3.0,
        });
        assert_eq!(
            next_job(&replay(&log), &search, obj, alive),
            Job::Done { stop: vec![0, 2] }
        );
    }

    #[test]
    fn asha_minimising_promotes_the_smallest_losses() {
        let search = Search::Asha {
            trials: 6,
            min_epochs: 1,
            max_epochs: 3,
            eta: 3,
        };
        let obj = Objective::Minimize(Figure::ValLoss);
        let alive = |_: &Owner| true;
        let mut log = sampled(6);
        // Trial 5 reports no value: it ranks below every measured one.
        for (id, loss) in [
            (0, Some(0.5)),
            (1, Some(0.2)),
            (2, Some(0.9)),
            (3, Some(0.3)),
            (4, Some(0.8)),
            (5, None),
        ] {
            log.push(Entry::Started {
                id,
                epochs: Some(1),
                owner: owner(1),
            });
            log.push(Entry::Reported {
                id,
                epochs: 1,
                values: vec![loss],
                wall_seconds: 1.0,
            });
        }
        // The top third of six: the two smallest losses, smallest first.
        for id in [1, 3] {
            assert_eq!(
                next_job(&replay(&log), &search, obj, alive),
                Job::Run {
                    id,
                    epochs: Some(3)
                },
                "minimising, trial {id} (loss rank {}) goes on",
                if id == 1 { 1 } else { 2 }
            );
            log.push(Entry::Started {
                id,
                epochs: Some(3),
                owner: owner(1),
            });
        }
        assert_eq!(next_job(&replay(&log), &search, obj, alive), Job::Wait);
        for id in [1, 3] {
            log.push(Entry::Finished {
                id,
                values: vec![Some(0.1)],
                wall_seconds: 3.0,
                epochs: 3.0,
            });
        }
        assert_eq!(
            next_job(&replay(&log), &search, obj, alive),
            Job::Done {
                stop: vec![0, 2, 4, 5]
            }
        );
    }

    #[test]
    fn pbt_stops_come_every_interval_then_the_end() {
        assert_eq!(rungs_every(2, 7), vec![2, 4, 6, 7]);
        assert_eq!(rungs_every(2, 6), vec![2, 4, 6]);
        assert_eq!(rungs_every(3, 2), vec![2]);
        assert_eq!(
            rungs_every(0, 3),
            vec![1, 2, 3],
            "an interval of 0 counts as 1"
        );
    }

    #[test]
    fn pbt_members_train_in_lockstep_with_one_exploit_step_per_stop() {
        let search = Search::Pbt {
            population: 2,
            interval_epochs: 2,
            max_epochs: 5,
            quantile: 0.5,
            perturb: (0.8, 1.2),
        };
        let obj = Objective::Maximize(Figure::ValAccuracy);
        let alive = |_: &Owner| true;
        let next = |log: &[Entry]| next_job(&replay(log), &search, obj, alive);
        let mut log = sampled(2);
        for (stop, then) in [(2, 4), (4, 5)] {
            for id in 0..2 {
                assert_eq!(
                    next(&log),
                    Job::Run {
                        id,
                        epochs: Some(stop)
                    },
                    "member {id} trains to the stop at {stop}"
                );
                log.push(Entry::Started {
                    id,
                    epochs: Some(stop),
                    owner: owner(1),
                });
            }
            assert_eq!(next(&log), Job::Wait);
            log.push(Entry::Reported {
                id: 0,
                epochs: stop,
                values: vec![Some(0.5)],
                wall_seconds: 1.0,
            });
            assert_eq!(next(&log), Job::Wait, "member 1 still trains to {stop}");
            log.push(Entry::Reported {
                id: 1,
                epochs: stop,
                values: vec![Some(0.6)],
                wall_seconds: 1.0,
            });
            assert_eq!(next(&log), Job::Exploit { epochs: stop });
            log.push(Entry::Generation {
                epochs: stop,
                moves: Vec::new(),
            });
            // The step taken: the members go on to the next stop.
            assert_eq!(
                next(&log),
                Job::Run {
                    id: 0,
                    epochs: Some(then)
                }
            );
        }
        for id in 0..2 {
            log.push(Entry::Finished {
                id,
                values: vec![Some(0.7)],
                wall_seconds: 1.0,
                epochs: 5.0,
            });
        }
        assert_eq!(next(&log), Job::Done { stop: Vec::new() });
    }

    #[test]
    fn a_released_trial_is_taken_up_before_a_new_one() {
        let search = Search::Random { trials: 2 };
        let obj = Objective::Minimize(Figure::ValLoss);
        let mut log = sampled(2);
        log.push(Entry::Started {
            id: 0,
            epochs: Some(3),
            owner: owner(1),
        });
        log.push(Entry::Released {
            id: 0,
            epochs: Some(3),
        });
        assert_eq!(
            replay(&log)[0].state,
            TrialState::Released { epochs: Some(3) }
        );
        assert_eq!(
            next_job(&replay(&log), &search, obj, |_: &Owner| true),
            Job::Run {
                id: 0,
                epochs: Some(3)
            }
        );
    }

    #[test]
    fn random_search_runs_each_trial_once_to_its_end() {
        let search = Search::Random { trials: 2 };
        let obj = Objective::Minimize(Figure::ValLoss);
        let mut log = sampled(2);
        log.push(Entry::Started {
            id: 0,
            epochs: None,
            owner: owner(1),
        });
        log.push(Entry::Failed {
            id: 0,
            reason: "diverged".into(),
        });
        let alive = |_: &Owner| true;
        assert_eq!(
            next_job(&replay(&log), &search, obj, alive),
            Job::Run {
                id: 1,
                epochs: None
            }
        );
        assert_eq!(replay(&log)[0].state, TrialState::Failed("diverged".into()));
    }
}
