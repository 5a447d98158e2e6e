//! The gridworld engine's three parts, in the supervised engine's shape:
//! [`Engine::setup`] builds the maze, its exact solution and the agent and
//! announces them (Started, Environment); [`Engine::restore`] continues from a
//! checkpoint; [`Engine::run_episodes`] plays episodes, reporting and
//! checkpointing between them; [`Engine::finish`] writes the last checkpoint,
//! the Q-values and the weights, and returns the summary. Every checkpoint goes
//! through [`Engine::checkpoint`], every policy snapshot through
//! [`Engine::snapshot`]. A viewer's snapshots go into its latest-value slot
//! (`Emitter::publish_policy`), built only after it took the previous one.

use std::path::Path;
use std::time::{Duration, Instant};

use super::checkpoint;
use super::dqn::DqnLearner;
use super::report::EpisodeLog;
use super::{Agent, TabularLearner, TabularRule, initial_lr};
use crate::data::maze::{
    ACTION_NAMES, Env, GreedyPath, Solution, env_for, greedy_path, input_size, q_per_cell, solve,
};
use crate::events::{EnvInfo, PolicySnapshot, RlSummary, SnapshotClock};
use crate::events::{LayerRow, RunInfo, RunSummary, StepItems, StopReason, TrainEvent};
use crate::spec::{AgentMethod, DatasetSpec, Experiment, GridworldSpec};
use crate::train::ResumeError;
use crate::train::checkpoint as checkpoints;
use crate::train::device::{describe, device_for};
use crate::train::emitter::Emitter;
use crate::train::handle::StartOptions;
use crate::train::steering::Steering;
use crate::train::worker::RunFailure;
use crate::util::memory::peak_rss_bytes;

/// Up to this pace (episodes per second) every episode's policy is shown.
const MAX_PACED_SNAPSHOTS: f64 = 60.0;

/// Checkpoints due by the episode count are at least this far apart (the last
/// one is always written): a tabular maze plays thousands of episodes a second
/// and a checkpoint costs milliseconds, so one per logging interval would spend
/// most of the run writing them.
const MIN_CHECKPOINT_GAP: Duration = Duration::from_secs(1);

/// A gridworld run's state from setup to summary.
pub(super) struct Engine<'a> {
    exp: &'a Experiment,
    options: &'a StartOptions,
    started: Instant,
    env: Env,
    solution: Solution,
    agent: Agent,
    parameters: usize,
    /// `agent.episodes`.
    episodes: u64,
    log: EpisodeLog,
    last_loss: Option<f64>,
    /// Training and wall seconds of the sessions before a resume.
    secs_before: f64,
    wall_before: f64,
    /// When this session's episode loop began.
    loop_began: Instant,
    /// When this session last wrote a checkpoint due by the episode count.
    last_checkpoint_at: Option<Instant>,
    /// Writes checkpoints on a second thread; knows the newest one written
    /// (in episodes).
    checkpoints: checkpoints::CheckpointWriter,
    /// When the viewer's next policy snapshot may be built.
    view_clock: SnapshotClock,
}

/// Moves of the path the solver calls optimal (the shortest path when no
/// optimal path reaches the goal).
fn optimal_len(solution: &Solution) -> usize {
    if solution.optimal_path.reached_goal {
        solution.optimal_path.moves()
    } else {
        solution.shortest_len()
    }
}

impl<'a> Engine<'a> {
    /// Builds the maze, its solution and the agent; emits Started and
    /// Environment.
    pub(super) fn setup(
        exp: &'a Experiment,
        options: &'a StartOptions,
        emitter: &mut Emitter,
        started: Instant,
    ) -> Result<Self, RunFailure> {
        let DatasetSpec::Gridworld(grid) = &exp.dataset else {
            return Err(RunFailure::input(
                "the reinforcement-learning loop needs a maze (dataset: Gridworld(...))",
            ));
        };
        let env = env_for(grid, exp.seed)
            .map_err(|e| RunFailure::input(format!("dataset.layout: {e}")))?;
        let solution = solve(&env, exp.agent.gamma);
        let (agent, parameters, layers) = build_agent(exp, options, grid, &env, emitter)?;
        let engine = Self {
            exp,
            options,
            started,
            log: EpisodeLog::new(exp.agent.success_window, optimal_len(&solution)),
            env,
            solution,
            agent,
            parameters,
            episodes: exp.agent.episodes as u64,
            last_loss: None,
            secs_before: 0.0,
            wall_before: 0.0,
            loop_began: Instant::now(),
            last_checkpoint_at: None,
            checkpoints: Default::default(),
            view_clock: SnapshotClock::default(),
        };
        engine.announce(layers, emitter);
        Ok(engine)
    }

    /// The Started and Environment events.
    fn announce(&self, layers: Vec<LayerRow>, emitter: &mut Emitter) {
        let exp = self.exp;
        emitter.emit(TrainEvent::Started(RunInfo {
            name: exp.name.clone(),
            run_dir: emitter.run_dir(),
            device: match self.agent {
                Agent::Table(_) => "cpu".into(),
                Agent::Net(_) => describe(exp.device),
            },
            parameters: self.parameters,
            train_samples: 0,
            val_samples: 0,
            test_samples: 0,
            steps_per_epoch: 0,
            total_steps: self.episodes,
            classes: ACTION_NAMES.iter().map(|s| s.to_string()).collect(),
            layers,
            step_items: StepItems::default(),
        }));
        emitter.emit(TrainEvent::Environment(EnvInfo {
            layout: self.env.maze().to_rows(),
            states: self.env.num_states(),
            shortest_path_len: self.solution.shortest_len(),
            optimal_path: self.solution.optimal_path.cells.clone(),
            optimal_return: self.solution.optimal_return,
            max_steps: self.env.max_steps(),
            method: exp.agent.method.name().into(),
            episodes: self.episodes,
        }));
    }

    /// Continues from the checkpoint in `dir`: the agent, the episode log, the
    /// clocks and the learning-rate history, and the record cut back to it.
    pub(super) fn restore(
        &mut self,
        dir: &Path,
        steering: &mut Steering,
        emitter: &mut Emitter,
    ) -> Result<(), RunFailure> {
        let exp = self.exp;
        let episodes = self.episodes;
        let bad = |source: ResumeError| RunFailure::Resume {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        };
        let state =
            checkpoint::restore(&mut self.agent, dir, exp.agent.method.name()).map_err(bad)?;
        if state.log.episodes >= episodes {
            return Err(bad(ResumeError::AllEpisodesPlayed { episodes }));
        }
        steering.peak_lr = state.peak_lr;
        steering.lr_changes = state.lr_changes;
        // The file's rate changed since the checkpoint (`resume --set
        // agent.method...alpha=...`): the new one holds from here.
        let file_lr = initial_lr(exp);
        let lr_note = state.file_lr.filter(|old| *old != file_lr).map(|old| {
            steering.peak_lr = file_lr;
            format!(
                "learning rate {file_lr} from the experiment file from here on (it was {old} \
                 when the checkpoint was written)"
            )
        });
        self.agent.set_lr(steering.peak_lr);
        self.log = state.log;
        self.last_loss = state.last_loss;
        (self.secs_before, self.wall_before) = (state.train_secs, state.wall_secs);
        self.checkpoints.restored(self.log.episodes);
        checkpoints::continue_record(
            exp,
            self.options,
            emitter,
            state.metrics_bytes,
            self.log.episodes,
            dir,
        )
        .map_err(bad)?;
        if let Some(message) = lr_note {
            emitter.emit(TrainEvent::Note {
                step: self.log.env_steps,
                message,
            });
        }
        Ok(())
    }

    /// Plays episodes until all are played, the run is stopped, or (with
    /// `stop_when_optimal`) the greedy path is optimal.
    pub(super) fn run_episodes(
        &mut self,
        steering: &mut Steering,
        emitter: &mut Emitter,
    ) -> Result<StopReason, RunFailure> {
        let spec = &self.exp.agent;
        let log_every = spec.log_every_episodes as u64;
        self.loop_began = Instant::now();
        let mut lr = steering.peak_lr;
        while self.log.episodes < self.episodes {
            steering.poll(self.log.env_steps, emitter);
            let halt = self
                .options
                .halt_after_step
                .is_some_and(|h| self.log.episodes >= h);
            if steering.stop || halt {
                return Ok(StopReason::Stopped);
            }
            if !steering.paced_ready() {
                continue;
            }
            if steering.peak_lr != lr {
                lr = steering.peak_lr;
                self.agent.set_lr(lr);
            }
            let epsilon = spec.epsilon.at(self.log.episodes);
            let out = self.agent.run_episode(epsilon, self.log.env_steps)?;
            self.log.record(&out);
            let last = self.log.episodes == self.episodes
                || spec.max_env_steps.is_some_and(|m| self.log.env_steps >= m);
            // A viewer that took the previous snapshot gets the next one (an
            // atomic load per episode when nobody asks).
            if emitter.policy_wanted() && self.view_clock.due() {
                self.publish_view(emitter)?;
            }
            if self.log.episodes.is_multiple_of(log_every) || last {
                let solved = self.report(epsilon, steering, emitter)?;
                if solved && spec.stop_when_optimal {
                    return Ok(StopReason::Solved);
                }
                if last {
                    break;
                }
            } else if steering.pace.is_some_and(|p| p <= MAX_PACED_SNAPSHOTS) {
                // Slow motion: the maze view sees every episode (not recorded,
                // so the record is the one a full-speed run writes).
                let q = self.agent.q(self.log.env_steps)?;
                let path = greedy_path(&self.env, &q);
                emitter.emit_transient(TrainEvent::Policy(self.snapshot(&q, path)));
            }
            if checkpoints::due_episodes(
                &self.exp.training.checkpoint,
                self.log.episodes,
                log_every,
            ) && self
                .last_checkpoint_at
                .is_none_or(|t| t.elapsed() >= MIN_CHECKPOINT_GAP)
            {
                let secs = self.train_secs(steering);
                self.checkpoint(secs, steering, emitter);
                self.last_checkpoint_at = Some(Instant::now());
            }
        }
        Ok(StopReason::Completed)
    }

    /// The Episodes event since the last one (and a Policy snapshot when one is
    /// due); returns whether the greedy path is optimal. A non-finite DQN loss
    /// ends the run.
    fn report(
        &mut self,
        epsilon: f64,
        steering: &Steering,
        emitter: &mut Emitter,
    ) -> Result<bool, RunFailure> {
        let loss = self.agent.take_loss();
        if let Some(l) = loss {
            if !l.is_finite() {
                return Err(RunFailure::diverged(
                    self.log.env_steps,
                    format!(
                        "DQN diverged: the loss became {l} by episode {}. Try a smaller \
                         learning rate, Huber loss, or agent.method.grad_clip_norm (e.g. 10).",
                        self.log.episodes
                    ),
                ));
            }
            self.last_loss = Some(l);
        }
        let secs = self.train_secs(steering);
        let q = self.agent.q(self.log.env_steps)?;
        let path = greedy_path(&self.env, &q);
        let metrics = self.log.metrics(epsilon, loss, &path, secs);
        let solved = metrics.greedy_optimal;
        emitter.emit(TrainEvent::Episodes(metrics));
        if self.log.snapshot_due(self.exp.agent.snapshot_every_secs) {
            emitter.emit(TrainEvent::Policy(self.snapshot(&q, path)));
        }
        Ok(solved)
    }

    /// The last checkpoint, the Q-values and weights on disk, the final Policy
    /// snapshot and the summary.
    pub(super) fn finish(
        &mut self,
        steering: &Steering,
        emitter: &mut Emitter,
        reason: StopReason,
    ) -> Result<RunSummary, RunFailure> {
        let secs = self.train_secs(steering);
        // The final position, so that `trainlab resume` can extend the run.
        self.checkpoints.settle(emitter);
        if self.checkpoints.newest() != Some(self.log.episodes) {
            self.checkpoint(secs, steering, emitter);
        }
        let q = self.agent.q(self.log.env_steps)?;
        let path = greedy_path(&self.env, &q);
        let final_snapshot = self.snapshot(&q, path.clone());
        drop(q);
        self.write_results(&final_snapshot, emitter);
        self.checkpoints.settle(emitter);
        // The viewer's slot holds the final policy before the last event.
        emitter.publish_policy(final_snapshot.clone());
        emitter.emit(TrainEvent::Policy(final_snapshot));
        Ok(self.summary(reason, secs, &path, steering))
    }

    /// `qtable.json` and (DQN, `training.save_weights`) the network's weights;
    /// what cannot be written is reported, and the run still finishes.
    fn write_results(&self, snapshot: &PolicySnapshot, emitter: &mut Emitter) {
        let Some(rec) = &emitter.recorder else {
            return;
        };
        let mut failures = Vec::new();
        if let Err(e) = rec.write_policy(snapshot) {
            let path = rec.dir().join(crate::runs::files::QTABLE);
            failures.push(crate::runs::WriteFault::io("the Q-values", &path, &e));
        }
        if let (Agent::Net(d), true) = (&self.agent, self.exp.training.save_weights) {
            let path = rec.weights_path();
            if let Err(e) = d.model().save(&path) {
                failures.push(crate::runs::WriteFault::text("the model", &path, &e));
            }
        }
        for fault in failures {
            emitter.write_failed(self.log.env_steps, fault);
        }
    }

    fn summary(
        &self,
        reason: StopReason,
        secs: f64,
        path: &GreedyPath,
        steering: &Steering,
    ) -> RunSummary {
        let exp = self.exp;
        let log = &self.log;
        let steps_per_sec = log.env_steps as f64 / secs.max(1e-9);
        RunSummary {
            name: exp.name.clone(),
            reason,
            steps: log.env_steps,
            epochs: log.episodes as f64,
            parameters: self.parameters,
            train_loss: self.last_loss,
            train_accuracy: None,
            val_loss: None,
            val_accuracy: None,
            test_loss: None,
            test_accuracy: None,
            wall_seconds: self.wall_before + self.started.elapsed().as_secs_f64(),
            train_seconds: secs,
            samples_per_sec: steps_per_sec,
            peak_rss_bytes: peak_rss_bytes(),
            lr_changes: steering.lr_changes.clone(),
            precision: None,
            rl: Some(RlSummary {
                method: exp.agent.method.name().into(),
                episodes: log.episodes,
                env_steps: log.env_steps,
                gradient_steps: self.agent.gradient_steps(),
                success_rate: log.success_rate(),
                greedy_path_len: path.reached_goal.then(|| path.moves()),
                optimal_path_len: optimal_len(&self.solution),
                shortest_path_len: self.solution.shortest_len(),
                optimal_return: self.solution.optimal_return,
                greedy_optimal: log.is_optimal(path),
                first_optimal_episode: log.first_optimal.map(|(e, _)| e),
                first_optimal_seconds: log.first_optimal.map(|(_, s)| s),
                env_steps_per_sec: steps_per_sec,
            }),
            language: None,
            per_class: Vec::new(),
            baselines: None,
        }
    }

    /// Training seconds across sessions, pauses left out.
    fn train_secs(&self, steering: &Steering) -> f64 {
        self.secs_before + self.loop_began.elapsed().as_secs_f64() - steering.paused_secs
    }

    /// Writes a checkpoint at the current episode, `train_secs` in, on the
    /// writer thread; a failure is reported once in a Note, by the next
    /// checkpoint or the run's end.
    fn checkpoint(&mut self, train_secs: f64, steering: &Steering, emitter: &mut Emitter) {
        let gather = |emitter: &Emitter| -> Result<_, checkpoints::CheckpointError> {
            let parts = checkpoint::agent_parts(&self.agent).map_err(|e| e.to_string())?;
            let state = checkpoint::RlState {
                version: checkpoints::STATE_VERSION,
                kind: "gridworld".into(),
                method: self.exp.agent.method.name().into(),
                log: self.log.clone(),
                train_secs,
                wall_secs: self.wall_before + self.started.elapsed().as_secs_f64(),
                peak_lr: steering.peak_lr,
                lr_changes: steering.lr_changes.clone(),
                file_lr: Some(initial_lr(self.exp)),
                last_loss: self.last_loss,
                metrics_bytes: checkpoints::record_length(emitter),
                table_rng: parts.table_rng,
                dqn: parts.dqn,
            };
            Ok((parts.model, parts.training, state))
        };
        let (episodes, env_steps) = (self.log.episodes, self.log.env_steps);
        let spec = &self.exp.training.checkpoint;
        self.checkpoints
            .save(emitter, spec, episodes, env_steps, gather);
    }

    /// Waits for the checkpoint still being written and reports what became of
    /// it (however the run ended, before the worker reports the end).
    pub(super) fn settle_checkpoints(&mut self, emitter: &mut Emitter) {
        self.checkpoints.settle(emitter);
    }

    /// Builds the policy now into the viewer's slot, timed for the next one.
    fn publish_view(&mut self, emitter: &mut Emitter) -> Result<(), RunFailure> {
        let mut clock = std::mem::take(&mut self.view_clock);
        let snapshot = clock.build(|| -> Result<PolicySnapshot, RunFailure> {
            let q = self.agent.q(self.log.env_steps)?;
            let path = greedy_path(&self.env, &q);
            Ok(self.snapshot(&q, path))
        });
        self.view_clock = clock;
        emitter.publish_policy(snapshot?);
        Ok(())
    }

    /// The policy as the maze view draws it.
    fn snapshot(&self, q: &[[f32; 4]], path: GreedyPath) -> PolicySnapshot {
        PolicySnapshot {
            episode: self.log.episodes,
            env_steps: self.log.env_steps,
            rows: self.env.maze().rows(),
            cols: self.env.maze().cols(),
            q: q_per_cell(&self.env, q),
            greedy_path: path.cells,
            reached_goal: path.reached_goal,
        }
    }
}

/// The agent the method names, with its parameter count and (DQN) layer table.
fn build_agent(
    exp: &Experiment,
    options: &StartOptions,
    grid: &GridworldSpec,
    env: &Env,
    emitter: &mut Emitter,
) -> Result<(Agent, usize, Vec<LayerRow>), RunFailure> {
    let spec = &exp.agent;
    match &spec.method {
        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => {
            let rule = if matches!(spec.method, AgentMethod::Sarsa(_)) {
                TabularRule::Sarsa
            } else {
                TabularRule::QLearning
            };
            let learner = TabularLearner::new(
                env.clone(),
                rule,
                t.alpha,
                spec.gamma,
                t.initial_q,
                exp.seed,
            );
            Ok((
                Agent::Table(Box::new(learner)),
                env.num_states() * 4,
                Vec::new(),
            ))
        }
        AgentMethod::Dqn(d) => {
            let device = device_for(exp.device).map_err(RunFailure::input)?;
            let mut learner = DqnLearner::new(
                exp,
                d,
                env.clone(),
                grid.encoding,
                spec.gamma,
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
            Ok((Agent::Net(Box::new(learner)), params, layers))
        }
    }
}
