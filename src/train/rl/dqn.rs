//! DQN: the Q-table becomes a network built from the experiment's layer list
//! (input: the state encoding, output: one Q-value per action). Moves go into a
//! replay buffer; every `train_every` moves a random batch is regressed towards
//! r + gamma * Q_target(s', best a'), where the target network is a lagging copy
//! (hard copies or soft averaging) that keeps the regression target still.
//! Double DQN picks a' with the online network and values it with the target.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::replay::{Batch, Replay, Transition};
use super::tabular::EpisodeOutcome;
use crate::data::maze::{Env, argmax, encode_all, input_size};
use crate::model::{Kernels, Mode, Model};
use crate::runs::checkpoints::NamedTensors;
use crate::spec::{DqnLoss, DqnSpec, EncodingSpec, Experiment, TargetUpdate};
use crate::train::clip::clip_scale;
use crate::train::emitter::Emitter;
use crate::train::finetune::init_and_freeze;
use crate::train::optim::Optimizer;
use crate::train::worker::RunFailure;
use crate::util::rng::Rng;

/// States per forward pass when all Q-values are read back.
const EVAL_CHUNK: usize = 1024;

/// A DQN agent's counters and stream positions, for a checkpoint (its tensors
/// go into the checkpoint's safetensors files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DqnState {
    rng: [u64; 4],
    dropout_rng: [u64; 4],
    env_steps: u64,
    gradient_steps: u64,
    loss_sum: f64,
    loss_count: u64,
    optimizer_steps: u64,
    replay_cursor: usize,
}

/// Prefix of the target network's tensors in a checkpoint.
const TARGET: &str = "target.";

/// A DQN agent on one maze.
pub(crate) struct DqnLearner {
    env: Env,
    spec: DqnSpec,
    gamma: f64,
    online: Model,
    target: Model,
    opt: Optimizer,
    /// Encoded states, `[states, input]`, on the device.
    inputs: Tensor,
    device: Device,
    replay: Replay,
    batch: Batch,
    rng: Rng,
    dropout_rng: Rng,
    pub(crate) lr: f64,
    pub(crate) env_steps: u64,
    pub(crate) gradient_steps: u64,
    loss_sum: f64,
    loss_count: u64,
}

impl DqnLearner {
    pub(crate) fn new(
        exp: &Experiment,
        spec: &DqnSpec,
        env: Env,
        encoding: EncodingSpec,
        gamma: f64,
        device: &Device,
        kernels: Kernels,
    ) -> candle_core::Result<Self> {
        let width = input_size(encoding, env.num_states());
        let inputs = Tensor::from_vec(
            encode_all(&env, encoding),
            (env.num_states(), width),
            device,
        )?;
        let mut online = Model::build(&exp.model, &[width], exp.seed, device)?;
        online.set_kernels(kernels);
        // Same seed, same layers: the target starts as an exact copy.
        let mut target = Model::build(&exp.model, &[width], exp.seed, device)?;
        target.set_kernels(kernels);
        let vars: Vec<_> = online.params().iter().map(|(_, v)| v.clone()).collect();
        let opt = Optimizer::new(&exp.optimizer, &vars, kernels);
        Ok(Self {
            env,
            spec: spec.clone(),
            gamma,
            online,
            target,
            opt,
            inputs,
            device: device.clone(),
            replay: Replay::new(spec.replay_capacity),
            batch: Batch::default(),
            rng: Rng::derive(exp.seed, "agent"),
            dropout_rng: Rng::derive(exp.seed, "dropout"),
            lr: exp.optimizer.lr(),
            env_steps: 0,
            gradient_steps: 0,
            loss_sum: 0.0,
            loss_count: 0,
        })
    }

    /// Applies `training.init_from` / `init_exclude` / `freeze` to the online
    /// network (reported in Notes), then restarts the optimizer on the parameters
    /// that train and makes the target network a copy of the result.
    pub(crate) fn init_and_freeze(
        &mut self,
        exp: &Experiment,
        kernels: Kernels,
        resuming: bool,
        emitter: &mut Emitter,
    ) -> Result<(), RunFailure> {
        let vars = init_and_freeze(&self.online, &exp.training, &self.device, resuming, emitter)?;
        self.opt = Optimizer::new(&exp.optimizer, &vars, kernels);
        for ((_, t), (_, o)) in self.target.params().iter().zip(self.online.params()) {
            t.set(o.as_tensor())
                .map_err(|e| RunFailure::at(0, format!("cannot copy the target network: {e}")))?;
        }
        Ok(())
    }

    /// The device the networks live on.
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// The online network (for saving and parameter counts).
    pub(crate) fn model(&self) -> &Model {
        &self.online
    }

    /// Everything needed to continue: (online weights, other tensors: optimizer,
    /// target network, replay buffer; counters).
    pub(crate) fn save(&self) -> candle_core::Result<(NamedTensors, NamedTensors, DqnState)> {
        let mut training = self.opt.export()?;
        for (name, t) in self.target.state() {
            training.insert(format!("{TARGET}{name}"), t);
        }
        let (replay, replay_cursor) = self.replay.to_tensors(&self.device)?;
        training.extend(replay);
        let state = DqnState {
            rng: self.rng.state(),
            dropout_rng: self.dropout_rng.state(),
            env_steps: self.env_steps,
            gradient_steps: self.gradient_steps,
            loss_sum: self.loss_sum,
            loss_count: self.loss_count,
            optimizer_steps: self.opt.steps(),
            replay_cursor,
        };
        Ok((self.online.state(), training, state))
    }

    /// Continues from what [`DqnLearner::save`] wrote (read from `path`).
    pub(crate) fn restore(
        &mut self,
        model: &HashMap<String, Tensor>,
        training: &HashMap<String, Tensor>,
        state: &DqnState,
        path: &Path,
    ) -> Result<(), crate::train::ResumeError> {
        use crate::train::ResumeError;
        self.online
            .load_state(model, path)
            .map_err(ResumeError::Network)?;
        let target: HashMap<String, Tensor> = training
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(TARGET)?.to_string(), v.clone())))
            .collect();
        self.target
            .load_state(&target, path)
            .map_err(ResumeError::Network)?;
        self.opt
            .import(training, state.optimizer_steps)
            .map_err(ResumeError::Optimizer)?;
        self.replay.restore(training, state.replay_cursor)?;
        self.rng = Rng::from_state(state.rng);
        self.dropout_rng = Rng::from_state(state.dropout_rng);
        self.env_steps = state.env_steps;
        self.gradient_steps = state.gradient_steps;
        self.loss_sum = state.loss_sum;
        self.loss_count = state.loss_count;
        Ok(())
    }

    /// Mean loss since the last call (None when no gradient step was taken).
    pub(crate) fn take_loss(&mut self) -> Option<f64> {
        let mean = (self.loss_count > 0).then(|| self.loss_sum / self.loss_count as f64);
        self.loss_sum = 0.0;
        self.loss_count = 0;
        mean
    }

    /// Plays one episode, training along the way.
    pub(crate) fn run_episode(&mut self, epsilon: f64) -> candle_core::Result<EpisodeOutcome> {
        let mut s = self.env.start();
        let mut ret = 0f32;
        let mut length = 0u32;
        let mut reached_goal = false;
        while length < self.env.max_steps() {
            let a = if self.rng.f64() < epsilon {
                self.rng.below(4)
            } else {
                argmax(&self.q_row(s)?)
            };
            let (next, r, end) = self.env.step(s, a, &mut self.rng);
            self.replay.push(Transition {
                state: s,
                action: a as u8,
                reward: r,
                next,
                terminal: end,
            });
            length += 1;
            ret += r;
            self.env_steps += 1;
            let ready = self.env_steps >= self.spec.learning_starts as u64
                && self.replay.len() >= self.spec.batch_size;
            if ready && self.env_steps.is_multiple_of(self.spec.train_every as u64) {
                self.train_step()?;
            }
            s = next;
            if end {
                reached_goal = self.env.is_goal(s);
                break;
            }
        }
        Ok(EpisodeOutcome {
            ret,
            length,
            reached_goal,
        })
    }

    /// Q-values of one state from the online network.
    fn q_row(&self, s: u32) -> candle_core::Result<[f32; 4]> {
        let x = self.inputs.narrow(0, s as usize, 1)?;
        let q = self
            .online
            .forward(&x, Mode::Eval)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(to_row(&q))
    }

    /// Q-values of every state, one row per state.
    pub(crate) fn q_all(&self) -> candle_core::Result<Vec<[f32; 4]>> {
        let n = self.env.num_states();
        let mut out = Vec::with_capacity(n);
        let mut at = 0;
        while at < n {
            let len = EVAL_CHUNK.min(n - at);
            let q = self
                .online
                .forward(&self.inputs.narrow(0, at, len)?, Mode::Eval)?
                .to_vec2::<f32>()?;
            out.extend(q.iter().map(|row| to_row(row)));
            at += len;
        }
        Ok(out)
    }

    fn train_step(&mut self) -> candle_core::Result<()> {
        self.replay
            .sample(self.spec.batch_size, &mut self.rng, &mut self.batch);
        let b = &self.batch;
        let size = b.states.len();
        let index = |v: &[u32]| Tensor::from_vec(v.to_vec(), size, &self.device);
        let x = self.inputs.index_select(&index(&b.states)?, 0)?;
        let x_next = self.inputs.index_select(&index(&b.next)?, 0)?;
        let q_target = self.target.forward(&x_next, Mode::Eval)?.to_vec2::<f32>()?;
        let q_online_next = if self.spec.double {
            Some(self.online.forward(&x_next, Mode::Eval)?.to_vec2::<f32>()?)
        } else {
            None
        };
        let gamma = self.gamma as f32;
        let targets: Vec<f32> = (0..size)
            .map(|i| {
                if b.terminal[i] {
                    return b.rewards[i];
                }
                let row = to_row(&q_target[i]);
                let best = match &q_online_next {
                    Some(online) => row[argmax(&to_row(&online[i]))],
                    None => row[argmax(&row)],
                };
                b.rewards[i] + gamma * best
            })
            .collect();
        let y = Tensor::from_vec(targets, size, &self.device)?;
        let actions = index(&b.actions)?.unsqueeze(1)?;
        let q = self
            .online
            .forward(&x, Mode::Train(&mut self.dropout_rng))?;
        let q_taken = q.gather(&actions, 1)?.squeeze(1)?;
        let diff = (q_taken - y)?;
        let loss = match self.spec.loss {
            DqnLoss::Mse => diff.sqr()?.mean_all()?,
            DqnLoss::Huber => {
                // 0.5 d^2 for |d| <= 1, |d| - 0.5 beyond: split |d| into its
                // quadratic part (at most 1) and the linear rest.
                let abs = diff.abs()?;
                let quad = abs.clamp(0f32, 1f32)?;
                let lin = (&abs - &quad)?;
                ((quad.sqr()? * 0.5)? + lin)?.mean_all()?
            }
        };
        let grads = loss.backward()?;
        let scale = clip_scale(
            self.online.params().iter().map(|(_, v)| v),
            &grads,
            self.spec.grad_clip_norm,
        )?;
        self.opt.step(&grads, self.lr, &scale)?;
        self.gradient_steps += 1;
        self.loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        self.loss_count += 1;
        self.update_target()
    }

    fn update_target(&mut self) -> candle_core::Result<()> {
        let pairs = self.target.params().iter().zip(self.online.params());
        match self.spec.target_update {
            TargetUpdate::Hard { every_steps } => {
                if self.gradient_steps.is_multiple_of(every_steps as u64) {
                    for ((_, t), (_, o)) in pairs {
                        t.set(o.as_tensor())?;
                    }
                }
            }
            TargetUpdate::Soft { tau } => {
                for ((_, t), (_, o)) in pairs {
                    let mixed = ((o.as_tensor() * tau)? + (t.as_tensor() * (1.0 - tau))?)?;
                    t.set(&mixed)?;
                }
            }
        }
        Ok(())
    }
}

/// The first four values as an action row (zeros if the network is narrower,
/// which validation rules out).
fn to_row(q: &[f32]) -> [f32; 4] {
    let mut row = [0f32; 4];
    for (dst, src) in row.iter_mut().zip(q) {
        *dst = *src;
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::maze::Maze;
    use crate::spec::{LayerSpec, OptimizerSpec, RewardSpec};

    /// A 2x3 maze, start top left, goal bottom right; 6 states.
    const SMALL: [&str; 2] = ["S..", "..G"];

    fn spec(batch_size: usize, target_update: TargetUpdate) -> DqnSpec {
        DqnSpec {
            replay_capacity: 100,
            batch_size,
            learning_starts: 0,
            train_every: 1,
            target_update,
            loss: DqnLoss::Mse,
            double: false,
            grad_clip_norm: None,
        }
    }

    /// A learner on `rows` (default rewards, no slipping, at most `max_steps`
    /// moves, gamma 0.9) whose network is one linear layer from the one-hot state
    /// to the four Q-values, trained by plain SGD at lr 0.1.
    fn learner(rows: &[String], max_steps: usize, spec: &DqnSpec) -> DqnLearner {
        let maze = Maze::parse(rows).expect("valid maze");
        let env = Env::new(&maze, &RewardSpec::default(), 0.0, max_steps);
        let exp = Experiment {
            seed: 3,
            model: vec![LayerSpec::Linear { out: 4 }],
            optimizer: OptimizerSpec::Sgd {
                lr: 0.1,
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
            ..Experiment::default()
        };
        DqnLearner::new(
            &exp,
            spec,
            env,
            EncodingSpec::OneHot,
            0.9,
            &Device::Cpu,
            Kernels::Fast,
        )
        .expect("learner")
    }

    fn small(spec: &DqnSpec) -> DqnLearner {
        learner(&SMALL.map(String::from), 100, spec)
    }

    /// Zero weights and this bias: every state's Q-values are `bias`.
    fn constant_q(model: &Model, bias: [f32; 4]) {
        for (_, v) in model.params() {
            let t = if v.dims().len() == 1 {
                Tensor::new(&bias, &Device::Cpu)
            } else {
                v.as_tensor().zeros_like()
            };
            v.set(&t.expect("tensor")).expect("set");
        }
    }

    fn values(model: &Model) -> Vec<Vec<f32>> {
        model
            .params()
            .iter()
            .map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1::<f32>())
            .collect::<candle_core::Result<_>>()
            .expect("values")
    }

    fn bias(model: &Model) -> Vec<f32> {
        let (_, b) = model
            .params()
            .iter()
            .find(|(_, v)| v.dims().len() == 1)
            .expect("a bias");
        b.as_tensor().to_vec1::<f32>().expect("bias")
    }

    /// From state 0 with action 1 to state 1, reward -0.5 (`terminal`: reward 1).
    fn move_right(terminal: bool) -> Transition {
        Transition {
            state: 0,
            action: 1,
            reward: if terminal { 1.0 } else { -0.5 },
            next: 1,
            terminal,
        }
    }

    /// One gradient step on a buffer holding only `t`, with the online network at
    /// Q = [0, 0.5, 0, 0] and the target at Q = [1, 2, 4, 3]: the loss recorded.
    fn loss_of_one_step(spec: &DqnSpec, t: Transition) -> f64 {
        let mut l = small(spec);
        constant_q(&l.online, [0.0, 0.5, 0.0, 0.0]);
        constant_q(&l.target, [1.0, 2.0, 4.0, 3.0]);
        l.replay.push(t);
        l.train_step().expect("step");
        assert_eq!(l.gradient_steps, 1);
        l.take_loss().expect("a loss")
    }

    fn assert_near(got: f64, want: f64, what: &str) {
        assert!((got - want).abs() < 1e-5, "{what}: got {got}, want {want}");
    }

    /// The regression target is r + gamma * max_a' Q_target(s', a'), or r alone
    /// when the move ended the episode; Double DQN values the online network's
    /// best next action with the target network. The online Q of the action taken
    /// is 0.5, so by hand: y = -0.5 + 0.9 * 4 = 3.1, d = 0.5 - 3.1 = -2.6, MSE
    /// 6.76, Huber 0.5 + (2.6 - 1) = 2.1; at the end y = 1, d = -0.5, MSE 0.25,
    /// Huber 0.5 * 0.25 = 0.125; Double DQN: the online row's best action is 1,
    /// worth 2 to the target: y = -0.5 + 0.9 * 2 = 1.3, d = -0.8, MSE 0.64.
    #[test]
    fn the_target_is_r_plus_gamma_max_q_target_and_r_alone_at_the_end() {
        let hold = TargetUpdate::Hard { every_steps: 1000 };
        let mse = spec(1, hold.clone());
        assert_near(loss_of_one_step(&mse, move_right(false)), 6.76, "MSE");
        assert_near(loss_of_one_step(&mse, move_right(true)), 0.25, "MSE, end");
        let huber = DqnSpec {
            loss: DqnLoss::Huber,
            ..mse.clone()
        };
        assert_near(loss_of_one_step(&huber, move_right(false)), 2.1, "Huber");
        assert_near(
            loss_of_one_step(&huber, move_right(true)),
            0.125,
            "Huber, end",
        );
        let double = DqnSpec {
            double: true,
            ..mse.clone()
        };
        assert_near(loss_of_one_step(&double, move_right(false)), 0.64, "Double");
    }

    /// `take_loss` is the mean of the losses since the last call, then None.
    #[test]
    fn the_loss_reported_is_the_mean_since_the_last_report() {
        let mut l = small(&spec(1, TargetUpdate::Hard { every_steps: 1000 }));
        assert_eq!(l.take_loss(), None, "no step yet");
        constant_q(&l.online, [0.0, 0.5, 0.0, 0.0]);
        constant_q(&l.target, [1.0, 2.0, 4.0, 3.0]);
        l.lr = 0.0; // the networks stay as they are
        l.replay.push(move_right(false));
        l.train_step().expect("step");
        l.replay = Replay::new(10);
        l.replay.push(move_right(true));
        l.train_step().expect("step");
        assert_eq!(l.gradient_steps, 2);
        assert_near(l.take_loss().expect("mean"), (6.76 + 0.25) / 2.0, "mean");
        assert_eq!(l.take_loss(), None, "reset after the report");
    }

    /// Hard updates copy the online network after every `every_steps`-th gradient
    /// step and not before; soft updates move the target tau of the way.
    #[test]
    fn the_target_network_follows_hard_every_n_steps_or_soft_by_tau() {
        let mut l = small(&spec(1, TargetUpdate::Hard { every_steps: 2 }));
        constant_q(&l.online, [0.0, 0.5, 0.0, 0.0]);
        constant_q(&l.target, [1.0, 2.0, 4.0, 3.0]);
        let before = values(&l.target);
        l.replay.push(move_right(false));
        l.train_step().expect("step 1");
        assert_eq!(values(&l.target), before, "no copy after step 1");
        assert_ne!(values(&l.online), before);
        l.train_step().expect("step 2");
        assert_eq!(values(&l.target), values(&l.online), "copied after step 2");
        let copied = values(&l.target);
        l.train_step().expect("step 3");
        assert_eq!(values(&l.target), copied, "no copy after step 3");
        assert_ne!(values(&l.online), copied);

        // One SGD step on d = -2.6 (above) moves the taken action's bias and its
        // weight from state 0 by -0.1 * 2 * d = 0.52: online bias [0, 1.02, 0, 0].
        // Target: 0.25 * that + 0.75 * [1, 2, 4, 3].
        let mut l = small(&spec(1, TargetUpdate::Soft { tau: 0.25 }));
        constant_q(&l.online, [0.0, 0.5, 0.0, 0.0]);
        constant_q(&l.target, [1.0, 2.0, 4.0, 3.0]);
        l.replay.push(move_right(false));
        l.train_step().expect("step");
        let online = bias(&l.online);
        let target = bias(&l.target);
        for (got, want) in online.iter().zip([0.0, 1.02, 0.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "online bias {online:?}");
        }
        for (got, want) in target.iter().zip([0.75, 1.755, 3.0, 2.25]) {
            assert!((got - want).abs() < 1e-6, "target bias {target:?}");
        }
        // Weights: the online weight from state 0 for action 1 is 0.52, so the
        // target's is 0.13; every other weight stays 0 in both.
        let weights = |m: &Model| {
            let all = values(m);
            all.into_iter().find(|v| v.len() == 4 * 6).expect("weights")
        };
        let (w_online, w_target) = (weights(&l.online), weights(&l.target));
        for (i, (o, t)) in w_online.iter().zip(&w_target).enumerate() {
            // Row-major [action, state]: action 1, state 0 is entry 6.
            let (o_want, t_want) = if i == 6 { (0.52, 0.13) } else { (0.0, 0.0) };
            assert!(
                (o - o_want).abs() < 1e-6 && (t - t_want).abs() < 1e-6,
                "{i}: {o} {t}"
            );
        }
    }

    /// An episode is at most `max_steps` moves; epsilon 0 always takes the greedy
    /// action (here up, into the edge: the agent never leaves the start) and
    /// epsilon 1 a random one. Gradient steps start once `learning_starts` moves
    /// are made and the buffer holds a batch, then one every `train_every` moves.
    #[test]
    fn an_episode_moves_greedily_trains_on_schedule_and_stops_at_the_limit() {
        let dqn = DqnSpec {
            learning_starts: 3,
            train_every: 2,
            ..spec(2, TargetUpdate::Hard { every_steps: 1000 })
        };
        let mut l = learner(&SMALL.map(String::from), 8, &dqn);
        constant_q(&l.online, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(l.q_row(4).expect("row"), [1.0, 0.0, 0.0, 0.0]);
        l.lr = 0.0; // the greedy action stays "up"
        let out = l.run_episode(0.0).expect("episode");
        assert_eq!((out.length, out.reached_goal), (8, false));
        assert_near(f64::from(out.ret), -0.08, "return: 8 steps of -0.01");
        assert_eq!(l.env_steps, 8);
        assert_eq!(l.replay.len(), 8);
        // Moves 4, 6 and 8: at move 3 the buffer is full enough but 3 is odd.
        assert_eq!(l.gradient_steps, 3);
        let mut rng = Rng::new(9);
        l.replay.sample(64, &mut rng, &mut l.batch);
        assert!(
            l.batch.actions.iter().all(|&a| a == 0),
            "{:?}",
            l.batch.actions
        );
        assert!(l.batch.states.iter().all(|&s| s == l.env.start()));

        let mut l = learner(&SMALL.map(String::from), 8, &dqn);
        constant_q(&l.online, [1.0, 0.0, 0.0, 0.0]);
        l.lr = 0.0;
        let out = l.run_episode(1.0).expect("episode");
        l.replay.sample(64, &mut rng, &mut l.batch);
        assert!(
            l.batch.actions.iter().any(|&a| a != 0),
            "epsilon 1 moves at random: {out:?}"
        );
    }

    /// Q-values of every state, read in chunks of EVAL_CHUNK states: a maze with
    /// more states than one chunk gets one row per state.
    #[test]
    fn q_all_gives_one_row_per_state_across_chunks() {
        let side = 33;
        let rows: Vec<String> = (0..side)
            .map(|r| {
                (0..side)
                    .map(|c| match (r, c) {
                        (0, 0) => 'S',
                        _ if r == side - 1 && c == side - 1 => 'G',
                        _ => '.',
                    })
                    .collect()
            })
            .collect();
        let l = learner(&rows, 100, &spec(1, TargetUpdate::Hard { every_steps: 1 }));
        assert!(l.env.num_states() > EVAL_CHUNK);
        constant_q(&l.online, [0.25, -1.5, 2.0, 0.5]);
        let q = l.q_all().expect("q");
        assert_eq!(q.len(), side * side);
        assert!(q.iter().all(|row| *row == [0.25, -1.5, 2.0, 0.5]));
    }

    /// `save` then `restore` into a new learner continues exactly: the same
    /// Q-values, counters and, after one more episode each, the same outcome,
    /// loss and networks.
    #[test]
    fn a_restored_learner_continues_exactly() {
        let dqn = DqnSpec {
            learning_starts: 1,
            ..spec(2, TargetUpdate::Soft { tau: 0.5 })
        };
        let mut a = small(&dqn);
        a.run_episode(0.5).expect("episode");
        assert!(a.gradient_steps > 0);
        let (model, training, state) = a.save().expect("save");
        let mut b = small(&dqn);
        b.restore(&model, &training, &state, Path::new("test"))
            .expect("restore");
        assert_eq!(b.q_all().expect("q"), a.q_all().expect("q"));
        assert_eq!(
            (b.env_steps, b.gradient_steps, b.opt.steps()),
            (a.env_steps, a.gradient_steps, a.opt.steps())
        );
        assert_eq!(values(&b.target), values(&a.target));
        let (out_a, out_b) = (a.run_episode(0.5), b.run_episode(0.5));
        assert_eq!(
            format!("{:?}", out_a.expect("a")),
            format!("{:?}", out_b.expect("b"))
        );
        assert_eq!(b.take_loss(), a.take_loss());
        assert_eq!(values(&b.online), values(&a.online));
        assert_eq!(values(&b.target), values(&a.target));
    }
}
