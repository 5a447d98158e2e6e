//! The DQN replay buffer: a fixed-capacity ring of transitions (state indices,
//! not encoded vectors: the encodings live once in a matrix on the device) from
//! which training batches are drawn uniformly at random.

use crate::train::ResumeError;
use crate::util::rng::Rng;

/// One move: from `state` with `action` to `next`, earning `reward`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Transition {
    pub(crate) state: u32,
    pub(crate) action: u8,
    pub(crate) reward: f32,
    pub(crate) next: u32,
    /// The episode ended on arriving (goal or pit): no future value.
    pub(crate) terminal: bool,
}

/// A batch in column form, ready to become tensors.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) states: Vec<u32>,
    pub(crate) actions: Vec<u32>,
    pub(crate) rewards: Vec<f32>,
    pub(crate) next: Vec<u32>,
    pub(crate) terminal: Vec<bool>,
}

/// Ring buffer of the most recent transitions.
pub(crate) struct Replay {
    items: Vec<Transition>,
    capacity: usize,
    /// Where the next transition goes once the buffer is full.
    cursor: usize,
}

impl Replay {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: Vec::with_capacity(capacity.min(1 << 20)),
            capacity: capacity.max(1),
            cursor: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds a transition, replacing the oldest when full.
    pub(crate) fn push(&mut self, t: Transition) {
        if self.items.len() < self.capacity {
            self.items.push(t);
        } else {
            self.items[self.cursor] = t;
            self.cursor = (self.cursor + 1) % self.capacity;
        }
    }

    /// The buffer as tensors (ring order) and the cursor, for a checkpoint.
    pub(crate) fn to_tensors(
        &self,
        device: &candle_core::Device,
    ) -> candle_core::Result<(Vec<(String, candle_core::Tensor)>, usize)> {
        use candle_core::Tensor;
        let n = self.items.len();
        let col =
            |f: &dyn Fn(&Transition) -> u32| -> Vec<u32> { self.items.iter().map(f).collect() };
        let rewards: Vec<f32> = self.items.iter().map(|t| t.reward).collect();
        Ok((
            vec![
                (
                    "replay.state".into(),
                    Tensor::from_vec(col(&|t| t.state), n, device)?,
                ),
                (
                    "replay.action".into(),
                    Tensor::from_vec(col(&|t| u32::from(t.action)), n, device)?,
                ),
                (
                    "replay.reward".into(),
                    Tensor::from_vec(rewards, n, device)?,
                ),
                (
                    "replay.next".into(),
                    Tensor::from_vec(col(&|t| t.next), n, device)?,
                ),
                (
                    "replay.terminal".into(),
                    Tensor::from_vec(col(&|t| u32::from(t.terminal)), n, device)?,
                ),
            ],
            self.cursor,
        ))
    }

    /// Refills the buffer from [`Replay::to_tensors`]'s output.
    pub(crate) fn restore(
        &mut self,
        tensors: &std::collections::HashMap<String, candle_core::Tensor>,
        cursor: usize,
    ) -> Result<(), ResumeError> {
        let get = |name: &str| {
            tensors.get(name).ok_or_else(|| ResumeError::NoTensor {
                name: name.to_string(),
            })
        };
        let read = |name: &str| {
            let name = name.to_string();
            move |source| ResumeError::Tensor { name, source }
        };
        let get_u32 = |name: &str| get(name)?.to_vec1::<u32>().map_err(read(name));
        let (state, action, next, terminal) = (
            get_u32("replay.state")?,
            get_u32("replay.action")?,
            get_u32("replay.next")?,
            get_u32("replay.terminal")?,
        );
        let reward = get("replay.reward")?
            .to_vec1::<f32>()
            .map_err(read("replay.reward"))?;
        let n = state.len();
        if [action.len(), next.len(), terminal.len(), reward.len()]
            .iter()
            .any(|&l| l != n)
            || n > self.capacity
            || cursor >= self.capacity
        {
            return Err(ResumeError::Replay);
        }
        self.items = (0..n)
            .map(|i| Transition {
                state: state[i],
                action: action[i] as u8,
                reward: reward[i],
                next: next[i],
                terminal: terminal[i] != 0,
            })
            .collect();
        self.cursor = cursor;
        Ok(())
    }

    /// Fills `batch` with `size` transitions drawn uniformly (with replacement).
    pub(crate) fn sample(&self, size: usize, rng: &mut Rng, batch: &mut Batch) {
        batch.states.clear();
        batch.actions.clear();
        batch.rewards.clear();
        batch.next.clear();
        batch.terminal.clear();
        if self.items.is_empty() {
            return;
        }
        for _ in 0..size {
            let t = self.items[rng.below(self.items.len())];
            batch.states.push(t.state);
            batch.actions.push(u32::from(t.action));
            batch.rewards.push(t.reward);
            batch.next.push(t.next);
            batch.terminal.push(t.terminal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(state: u32) -> Transition {
        Transition {
            state,
            action: 0,
            reward: 0.0,
            next: state,
            terminal: false,
        }
    }

    #[test]
    fn keeps_the_newest_and_samples_only_stored_ones() {
        let mut replay = Replay::new(3);
        for s in 0..5 {
            replay.push(t(s));
        }
        assert_eq!(replay.len(), 3);
        let mut batch = Batch::default();
        replay.sample(100, &mut Rng::new(1), &mut batch);
        assert_eq!(batch.states.len(), 100);
        assert!(
            batch.states.iter().all(|s| (2..5).contains(s)),
            "{:?}",
            batch.states
        );
        for s in 2..5 {
            assert!(batch.states.contains(&s), "state {s} never drawn");
        }
    }
}
