//! The reinforcement-learning loop for gridworld runs: builds the maze and its
//! exact solution, then plays episodes with a tabular or DQN agent. Between
//! episodes it obeys control messages (SetLearningRate changes alpha for tables,
//! the optimizer's rate for DQN); every `agent.log_every_episodes` it checks the
//! greedy path against the optimal one and emits an Episodes event, and at most
//! every `agent.snapshot_every_secs` a Policy snapshot. At the end it writes the
//! final snapshot to `qtable.json` (and DQN weights to `model.safetensors`).

mod checkpoint;
mod dqn;
mod replay;
mod report;
mod tabular;

pub use tabular::{EpisodeOutcome, TabularLearner, TabularRule};

use std::borrow::Cow;
use std::time::Instant;

use dqn::DqnLearner;
use report::EpisodeLog;

use super::device::{describe, device_for};
use super::emitter::Emitter;
use super::events::{LayerRow, RunInfo, RunSummary, StepItems, StopReason, TrainEvent};
use super::handle::StartOptions;
use super::rl_events::{EnvInfo, PolicySnapshot, RlSummary};
use super::steering::Steering;
use super::worker::RunFailure;
use crate::data::maze::{ACTION_NAMES, Env, env_for, greedy_path, input_size, q_per_cell, solve};
use crate::spec::{AgentMethod, DatasetSpec, Experiment};
use crate::util::memory::peak_rss_bytes;

/// The learning rate a run starts with: alpha for tables, the optimizer's for DQN.
/// Up to this pace (episodes per second) every episode's policy is shown.
const MAX_PACED_SNAPSHOTS: f64 = 60.0;

pub(crate) fn initial_lr(exp: &Experiment) -> f64 {
    match &exp.agent.method {
        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => t.alpha,
        AgentMethod::Dqn(_) => exp.optimizer.lr(),
    }
}

/// Either kind of agent, behind the few calls the loop needs.
enum Agent {
    Table(Box<TabularLearner>),
    Net(Box<DqnLearner>),
}

impl Agent {
    fn run_episode(&mut self, epsilon: f64, step: u64) -> Result<EpisodeOutcome, RunFailure> {
        match self {
            Self::Table(t) => Ok(t.run_episode(epsilon)),
            Self::Net(d) => d
                .run_episode(epsilon)
                .map_err(|e| RunFailure::at(step, format!("DQN error at move {step}: {e}"))),
        }
    }

    /// Q-values per state (borrowed for tables, computed for networks).
    fn q(&self, step: u64) -> Result<Cow<'_, [[f32; 4]]>, RunFailure> {
        match self {
            Self::Table(t) => Ok(Cow::Borrowed(t.q())),
            Self::Net(d) => d
                .q_all()
                .map(Cow::Owned)
                .map_err(|e| RunFailure::at(step, format!("DQN error at move {step}: {e}"))),
        }
    }

    fn set_lr(&mut self, lr: f64) {
        match self {
            Self::Table(t) => t.set_alpha(lr),
            Self::Net(d) => d.lr = lr,
        }
    }

    fn take_loss(&mut self) -> Option<f64> {
        match self {
            Self::Table(_) => None,
            Self::Net(d) => d.take_loss(),
        }
    }
}

pub(crate) fn run(
    exp: &Experiment,
    options: &StartOptions,
    emitter: &mut Emitter,
    steering: &mut Steering,
    started: Instant,
) -> Result<RunSummary, RunFailure> {
    let DatasetSpec::Gridworld(grid) = &exp.dataset else {
        return Err(RunFailure::input(
            "the reinforcement-learning loop needs a maze (dataset: Gridworld(...))",
        ));
    };
    let agent_spec = &exp.agent;
    let env: Env =
        env_for(grid, exp.seed).map_err(|e| RunFailure::input(format!("dataset.layout: {e}")))?;
    let solution = solve(&env, agent_spec.gamma);
    let optimal_len = if solution.optimal_path.reached_goal {
        solution.optimal_path.moves()
    } else {
        solution.shortest_len()
    };
    let (mut agent, parameters, layers) = match &agent_spec.method {
        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => {
            let rule = if matches!(agent_spec.method, AgentMethod::Sarsa(_)) {
                TabularRule::Sarsa
            } else {
                TabularRule::QLearning
            };
            let states = env.num_states();
            let learner = TabularLearner::new(
                env.clone(),
                rule,
                t.alpha,
                agent_spec.gamma,
                t.initial_q,
                exp.seed,
            );
            (Agent::Table(Box::new(learner)), states * 4, Vec::new())
        }
        AgentMethod::Dqn(d) => {
            let device = device_for(exp.device).map_err(RunFailure::input)?;
            let mut learner = DqnLearner::new(
                exp,
                d,
                env.clone(),
                grid.encoding,
                agent_spec.gamma,
                &device,
                options.kernels,
            )
            .map_err(|e| RunFailure::at(0, format!("cannot build the Q-network: {e}")))?;
            learner.init_and_freeze(
                exp,
                options.kernels,
                options.resume_from.is_some(),
                emitter,
            )?;
            let width = input_size(grid.encoding, env.num_states());
            let layers = LayerRow::table(&exp.model, &[width])
                .map_err(|e| RunFailure::input(e.to_string()))?;
            let params = learner.model().param_count();
            (Agent::Net(Box::new(learner)), params, layers)
        }
    };
    let episodes = agent_spec.episodes as u64;
    emitter.emit(TrainEvent::Started(RunInfo {
        name: exp.name.clone(),
        run_dir: emitter.run_dir(),
        device: match agent {
            Agent::Table(_) => "cpu".into(),
            Agent::Net(_) => describe(exp.device),
        },
        parameters,
        train_samples: 0,
        val_samples: 0,
        test_samples: 0,
        steps_per_epoch: 0,
        total_steps: episodes,
        classes: ACTION_NAMES.iter().map(|s| s.to_string()).collect(),
        layers,
        step_items: StepItems::default(),
    }));
    emitter.emit(TrainEvent::Environment(EnvInfo {
        layout: env.maze().to_rows(),
        states: env.num_states(),
        shortest_path_len: solution.shortest_len(),
        optimal_path: solution.optimal_path.cells.clone(),
        optimal_return: solution.optimal_return,
        max_steps: env.max_steps(),
        method: agent_spec.method.name().into(),
        episodes,
    }));

    let mut log = EpisodeLog::new(agent_spec.success_window, optimal_len);
    let mut last_loss = None;
    let (mut secs_before, mut wall_before) = (0.0, 0.0);
    let method = agent_spec.method.name();
    let mut lr_note = None;
    if let Some(dir) = &options.resume_from {
        let bad =
            |msg: String| RunFailure::input(format!("cannot resume from {}: {msg}", dir.display()));
        let state = checkpoint::restore(&mut agent, dir, method).map_err(bad)?;
        if state.log.episodes >= episodes {
            return Err(bad(format!(
                "the run already played all {episodes} episodes; to train more, raise them, \
                 e.g. --set agent.episodes={}",
                episodes * 2
            )));
        }
        steering.peak_lr = state.peak_lr;
        steering.lr_changes = state.lr_changes;
        // The file's rate changed since the checkpoint (`resume --set
        // agent.method...alpha=...`): the new one holds from here.
        let file_lr = initial_lr(exp);
        lr_note = state.file_lr.filter(|old| *old != file_lr).map(|old| {
            steering.peak_lr = file_lr;
            format!(
                "learning rate {file_lr} from the experiment file from here on (it was {old} \
                 when the checkpoint was written)"
            )
        });
        agent.set_lr(steering.peak_lr);
        log = state.log;
        last_loss = state.last_loss;
        (secs_before, wall_before) = (state.train_secs, state.wall_secs);
        crate::train::checkpoint::continue_record(
            exp,
            options,
            emitter,
            state.metrics_bytes,
            log.episodes,
            dir,
        )
        .map_err(bad)?;
    }
    if let Some(message) = lr_note {
        emitter.emit(TrainEvent::Note {
            step: log.env_steps,
            message,
        });
    }
    let loop_began = Instant::now();
    let train_secs = |steering: &Steering| {
        secs_before + loop_began.elapsed().as_secs_f64() - steering.paused_secs
    };
    let mut saver = Saver {
        spec: &exp.training.checkpoint,
        method,
        last: options.resume_from.as_ref().map(|_| log.episodes),
        failure: Default::default(),
        wall_before,
        started,
        file_lr: initial_lr(exp),
    };
    let mut reason = StopReason::Completed;
    let mut lr = steering.peak_lr;
    while log.episodes < episodes {
        steering.poll(log.env_steps, emitter);
        let halt = options.halt_after_step.is_some_and(|h| log.episodes >= h);
        if steering.stop || halt {
            reason = StopReason::Stopped;
            break;
        }
        if !steering.paced_ready() {
            continue;
        }
        if steering.peak_lr != lr {
            lr = steering.peak_lr;
            agent.set_lr(lr);
        }
        let epsilon = agent_spec.epsilon.at(log.episodes);
        let out = agent.run_episode(epsilon, log.env_steps)?;
        log.record(&out);
        let last = log.episodes == episodes
            || agent_spec.max_env_steps.is_some_and(|m| log.env_steps >= m);
        let log_every = agent_spec.log_every_episodes as u64;
        // Slow motion: the maze view sees every episode (not recorded, so the
        // record is the one a full-speed run writes).
        if steering.pace.is_some_and(|p| p <= MAX_PACED_SNAPSHOTS)
            && !(log.episodes.is_multiple_of(log_every) || last)
        {
            let q = agent.q(log.env_steps)?;
            let path = greedy_path(&env, &q);
            emitter.emit_transient(TrainEvent::Policy(snapshot(&env, &q, &log, path)));
        }
        if log.episodes.is_multiple_of(log_every) || last {
            let loss = agent.take_loss();
            if let Some(l) = loss {
                if !l.is_finite() {
                    return Err(RunFailure::diverged(
                        log.env_steps,
                        format!(
                            "DQN diverged: the loss became {l} by episode {}. Try a smaller \
                             learning rate, Huber loss, or agent.method.grad_clip_norm (e.g. 10).",
                            log.episodes
                        ),
                    ));
                }
                last_loss = Some(l);
            }
            let q = agent.q(log.env_steps)?;
            let path = greedy_path(&env, &q);
            let metrics = log.metrics(epsilon, loss, &path, train_secs(steering));
            let solved = metrics.greedy_optimal;
            emitter.emit(TrainEvent::Episodes(metrics));
            if log.snapshot_due(agent_spec.snapshot_every_secs) {
                emitter.emit(TrainEvent::Policy(snapshot(&env, &q, &log, path)));
            }
            if solved && agent_spec.stop_when_optimal {
                reason = StopReason::Solved;
                break;
            }
            if last {
                break;
            }
        }
        if crate::train::checkpoint::due_episodes(saver.spec, log.episodes, log_every) {
            let secs = train_secs(steering);
            saver.save(&agent, &log, last_loss, secs, steering, emitter);
        }
    }
    let secs = train_secs(steering);
    // The final position, so that `trainlab resume` can extend the run.
    if saver.last != Some(log.episodes) {
        saver.save(&agent, &log, last_loss, secs, steering, emitter);
    }

    let q = agent.q(log.env_steps)?;
    let path = greedy_path(&env, &q);
    let greedy_optimal = log.is_optimal(&path);
    let final_snapshot = snapshot(&env, &q, &log, path.clone());
    drop(q);
    if let Some(rec) = &emitter.recorder {
        let mut failures = Vec::new();
        if let Err(e) = rec.write_policy(&final_snapshot) {
            let path = rec.dir().join(crate::runs::files::QTABLE);
            failures.push(crate::runs::WriteFault::io("the Q-values", &path, &e));
        }
        if let (Agent::Net(d), true) = (&agent, exp.training.save_weights) {
            let path = rec.weights_path();
            if let Err(e) = d.model().save(&path) {
                failures.push(crate::runs::WriteFault::text("the model", &path, &e));
            }
        }
        for fault in failures {
            emitter.write_failed(log.env_steps, fault);
        }
    }
    emitter.emit(TrainEvent::Policy(final_snapshot));
    let steps_per_sec = log.env_steps as f64 / secs.max(1e-9);
    let gradient_steps = match &agent {
        Agent::Table(_) => 0,
        Agent::Net(d) => d.gradient_steps,
    };
    Ok(RunSummary {
        name: exp.name.clone(),
        reason,
        steps: log.env_steps,
        epochs: log.episodes as f64,
        parameters,
        train_loss: last_loss,
        train_accuracy: None,
        val_loss: None,
        val_accuracy: None,
        test_loss: None,
        test_accuracy: None,
        wall_seconds: wall_before + started.elapsed().as_secs_f64(),
        train_seconds: secs,
        samples_per_sec: steps_per_sec,
        peak_rss_bytes: peak_rss_bytes(),
        lr_changes: steering.lr_changes.clone(),
        precision: None,
        rl: Some(RlSummary {
            method: agent_spec.method.name().into(),
            episodes: log.episodes,
            env_steps: log.env_steps,
            gradient_steps,
            success_rate: log.success_rate(),
            greedy_path_len: path.reached_goal.then(|| path.moves()),
            optimal_path_len: optimal_len,
            shortest_path_len: solution.shortest_len(),
            optimal_return: solution.optimal_return,
            greedy_optimal,
            first_optimal_episode: log.first_optimal.map(|(e, _)| e),
            first_optimal_seconds: log.first_optimal.map(|(_, s)| s),
            env_steps_per_sec: steps_per_sec,
        }),
        language: None,
        per_class: Vec::new(),
        baselines: None,
    })
}

/// Writes gridworld checkpoints; a failure is reported once in a Note.
struct Saver<'a> {
    spec: &'a crate::spec::CheckpointSpec,
    method: &'a str,
    /// Episodes at the newest checkpoint of this session.
    last: Option<u64>,
    failure: crate::train::checkpoint::FailureNote,
    wall_before: f64,
    started: Instant,
    /// The experiment file's rate, kept in checkpoints.
    file_lr: f64,
}

impl Saver<'_> {
    fn save(
        &mut self,
        agent: &Agent,
        log: &EpisodeLog,
        last_loss: Option<f64>,
        train_secs: f64,
        steering: &Steering,
        emitter: &mut Emitter,
    ) {
        let result = (|| -> Result<bool, crate::train::checkpoint::CheckpointError> {
            let parts = checkpoint::agent_parts(agent).map_err(|e| e.to_string())?;
            let state = checkpoint::RlState {
                version: crate::train::checkpoint::STATE_VERSION,
                kind: "gridworld".into(),
                method: self.method.into(),
                log: log.clone(),
                train_secs,
                wall_secs: self.wall_before + self.started.elapsed().as_secs_f64(),
                peak_lr: steering.peak_lr,
                lr_changes: steering.lr_changes.clone(),
                file_lr: Some(self.file_lr),
                last_loss,
                metrics_bytes: crate::train::checkpoint::record_length(emitter),
                table_rng: parts.table_rng,
                dqn: parts.dqn,
            };
            crate::train::checkpoint::save(
                emitter,
                self.spec,
                log.episodes,
                &parts.model,
                &parts.training,
                &state,
            )
        })();
        if self.failure.written(result, log.env_steps, emitter) {
            self.last = Some(log.episodes);
        }
    }
}

fn snapshot(
    env: &Env,
    q: &[[f32; 4]],
    log: &EpisodeLog,
    path: crate::data::maze::GreedyPath,
) -> PolicySnapshot {
    PolicySnapshot {
        episode: log.episodes,
        env_steps: log.env_steps,
        rows: env.maze().rows(),
        cols: env.maze().cols(),
        q: q_per_cell(env, q),
        greedy_path: path.cells,
        reached_goal: path.reached_goal,
    }
}
