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
