//! Checkpoints of gridworld runs: the Q-table (tabular) or both networks, the
//! optimizer and the replay buffer (DQN) as tensors; the episode bookkeeping,
//! every random stream and the live learning-rate changes in `state.json`.
//! Taken between episodes, so a resumed run plays exactly the episodes the
//! uninterrupted one would.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::Agent;
use super::dqn::DqnState;
use super::report::EpisodeLog;
use crate::runs::checkpoints::{self, NamedTensors};
use crate::train::ResumeError;
use crate::train::checkpoint::STATE_VERSION;

/// What `state.json` of a gridworld checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RlState {
    pub version: u32,
    /// "gridworld".
    pub kind: String,
    /// The agent's method name ("Q-learning", "DQN", ...).
    pub method: String,
    pub log: EpisodeLog,
    pub train_secs: f64,
    pub wall_secs: f64,
    pub peak_lr: f64,
    pub lr_changes: Vec<(u64, f64)>,
    /// The rate the experiment file set when written (alpha, or DQN's lr): a
    /// resume whose file says otherwise takes the file's. None in older ones.
    #[serde(default)]
    pub file_lr: Option<f64>,
    pub last_loss: Option<f64>,
    pub metrics_bytes: u64,
    /// Tabular agents: the exploration stream.
    pub table_rng: Option<[u64; 4]>,
    /// DQN agents: counters and streams.
    pub dqn: Option<DqnState>,
}

/// The name of the Q-table tensor in a tabular checkpoint.
const QTABLE: &str = "q";

/// What an agent puts into a checkpoint.
pub(crate) struct AgentParts {
    /// The Q-table (`q`) or the online network.
    pub model: NamedTensors,
    /// DQN: optimizer, target network, replay buffer.
    pub training: NamedTensors,
    pub table_rng: Option<[u64; 4]>,
    pub dqn: Option<DqnState>,
}

/// The checkpoint parts of `agent`.
pub(crate) fn agent_parts(agent: &Agent) -> candle_core::Result<AgentParts> {
    match agent {
        Agent::Table(t) => {
            let flat: Vec<f32> = t.q().iter().flatten().copied().collect();
            let q = Tensor::from_vec(flat, (t.q().len(), 4), &Device::Cpu)?;
            Ok(AgentParts {
                model: HashMap::from([(QTABLE.to_string(), q)]),
                training: HashMap::new(),
                table_rng: Some(t.rng_state()),
                dqn: None,
            })
        }
        Agent::Net(d) => {
            let (model, training, state) = d.save()?;
            Ok(AgentParts {
                model,
                training,
                table_rng: None,
                dqn: Some(state),
            })
        }
    }
}

/// Reads the checkpoint in `dir` into `agent`; returns its state for the loop.
pub(crate) fn restore(agent: &mut Agent, dir: &Path, method: &str) -> Result<RlState, ResumeError> {
    let device = match agent {
        Agent::Table(_) => Device::Cpu,
        Agent::Net(d) => d.device().clone(),
    };
    let (loaded, state): (_, RlState) = checkpoints::read(dir, &device)?;
    if state.version != STATE_VERSION || state.kind != "gridworld" || state.method != method {
        return Err(ResumeError::RlKind {
            version: state.version,
            method: state.method,
            kind: state.kind,
            this_method: method.to_string(),
        });
    }
    let model_path = loaded.dir.join(checkpoints::MODEL);
    match (agent, &state.table_rng, &state.dqn) {
        (Agent::Table(t), Some(rng), None) => {
            let q = loaded
                .model
                .get(QTABLE)
                .ok_or_else(|| ResumeError::NoTensor {
                    name: "Q-table".into(),
                })?
                .to_vec2::<f32>()
                .map_err(ResumeError::Tensors)?;
            let rows = q
                .iter()
                .map(|r| <[f32; 4]>::try_from(r.as_slice()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ResumeError::QTableWidth)?;
            t.restore(rows, *rng)?;
        }
        (Agent::Net(d), None, Some(dqn)) => {
            d.restore(&loaded.model, &loaded.training, dqn, &model_path)?;
        }
        _ => return Err(ResumeError::OtherAgent),
    }
    Ok(state)
}
