//! The agent's knobs for a gridworld run: method (Q-learning, SARSA, DQN) and its
//! settings, episodes, discount and the exploration schedule.
//!
//! Contract: edits `exp.agent` in place inside the hyperparameter grid (two
//! columns) and returns true when something changed; every knob has a tooltip.
//! Switching to DQN gives the seed's Q-network when the layer list cannot serve.

use egui::{ComboBox, DragValue, Ui};

use super::hyperparams::row;
use crate::spec::{
    AgentMethod, DqnLoss, DqnSpec, Experiment, LayerSpec, TabularSpec, TargetUpdate, uses_model,
    validate,
};

/// The seed's Q-network: Linear 128, ReLU, Linear 4 (one output per action).
pub fn seed_q_network() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Linear { out: 128 },
        LayerSpec::ReLU,
        LayerSpec::Linear { out: 4 },
    ]
}

/// Draws the agent rows.
pub fn agent_rows(ui: &mut Ui, exp: &mut Experiment) -> bool {
    let mut changed = method_row(ui, exp);
    let a = &mut exp.agent;
    match &mut a.method {
        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => changed |= tabular_rows(ui, t),
        AgentMethod::Dqn(d) => changed |= dqn_rows(ui, d),
    }
    changed |= row(
        ui,
        "Episodes",
        "How many times the agent is dropped at the start and tries to reach the goal.",
        |ui| {
            ui.add(
                DragValue::new(&mut a.episodes)
                    .clamp_existing_to_range(false)
                    .range(1..=10_000_000)
                    .speed(10.0),
            )
        },
    );
    changed |= row(
        ui,
        "Discount γ",
        "How much a reward one move later is worth (0.99: patient; 0.5: short-sighted).",
        |ui| {
            ui.add(
                DragValue::new(&mut a.gamma)
                    .clamp_existing_to_range(false)
                    .range(0.0..=0.9999)
                    .speed(0.001),
            )
        },
    );
    changed |= row(
        ui,
        "ε start",
        "Chance of a random move at the start: exploration before the agent knows anything.",
        |ui| {
            ui.add(
                DragValue::new(&mut a.epsilon.start)
                    .clamp_existing_to_range(false)
                    .range(0.0..=1.0)
                    .speed(0.01),
            )
        },
    );
    changed |= row(
        ui,
        "ε end",
        "Chance of a random move after the decay: a little exploration forever.",
        |ui| {
            ui.add(
                DragValue::new(&mut a.epsilon.end)
                    .clamp_existing_to_range(false)
                    .range(0.0..=1.0)
                    .speed(0.01),
            )
        },
    );
    changed |= row(
        ui,
        "ε decay episodes",
        "Episodes over which ε falls linearly from start to end.",
        |ui| {
            ui.add(
                DragValue::new(&mut a.epsilon.decay_episodes)
                    .clamp_existing_to_range(false)
                    .range(0..=10_000_000)
                    .speed(10.0),
            )
        },
    );
    changed |= row(
        ui,
        "Stop when optimal",
        "End the run as soon as the greedy path is as short as the solver's.",
        |ui| ui.checkbox(&mut a.stop_when_optimal, ""),
    );
    changed
}

fn method_row(ui: &mut Ui, exp: &mut Experiment) -> bool {
    let mut changed = false;
    let current = exp.agent.method.name();
    let label = ui
        .label("Method")
        .on_hover_text("How the agent learns the value of each move.");
    ComboBox::from_id_salt("agent_method")
        .selected_text(current)
        .show_ui(ui, |ui| {
            let choices = [
                ("Q-learning", "A table of values per cell and move; learns the best policy while exploring (off-policy)."),
                ("SARSA", "A table like Q-learning, but learns the value of what it actually does, exploration included (on-policy): safer near pits."),
                ("DQN", "A neural network (the Model section) replaces the table, trained from a replay buffer with a target network."),
            ];
            for (name, help) in choices {
                if ui.selectable_label(current == name, name).on_hover_text(help).clicked() && current != name {
                    let tabular = match &exp.agent.method {
                        AgentMethod::QLearning(t) | AgentMethod::Sarsa(t) => t.clone(),
                        AgentMethod::Dqn(_) => TabularSpec::default(),
                    };
                    let before = method_token(&exp.agent.method);
                    exp.agent.method = match name {
                        "Q-learning" => AgentMethod::QLearning(tabular),
                        "SARSA" => AgentMethod::Sarsa(tabular),
                        _ => AgentMethod::Dqn(DqnSpec::default()),
                    };
                    // The run folder is named after the experiment: a name that
                    // says the old method would file a SARSA run as "qlearning".
                    exp.name = exp.name.replace(before, method_token(&exp.agent.method));
                    if uses_model(exp) && validate(exp).is_err() {
                        exp.model = seed_q_network();
                    }
                    changed = true;
                }
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    changed
}

/// How a method is written in experiment names ("gridworld_qlearning").
fn method_token(m: &AgentMethod) -> &'static str {
    match m {
        AgentMethod::QLearning(_) => "qlearning",
        AgentMethod::Sarsa(_) => "sarsa",
        AgentMethod::Dqn(_) => "dqn",
    }
}

fn tabular_rows(ui: &mut Ui, t: &mut TabularSpec) -> bool {
    let mut changed = row(
        ui,
        "Step size α",
        "How far each update moves a value towards its new estimate (0.1-0.5 usual).",
        |ui| {
            ui.add(
                DragValue::new(&mut t.alpha)
                    .clamp_existing_to_range(false)
                    .range(0.001..=1.0)
                    .speed(0.01),
            )
        },
    );
    changed |= row(
        ui,
        "Initial Q",
        "Starting value of every cell and move; above the real values it makes the agent curious (optimism).",
        |ui| {
            ui.add(
                DragValue::new(&mut t.initial_q)
                    .clamp_existing_to_range(false)
                    .range(-10.0..=10.0)
                    .speed(0.05),
            )
        },
    );
    changed
}

fn dqn_rows(ui: &mut Ui, d: &mut DqnSpec) -> bool {
    let mut changed = row(
        ui,
        "Replay capacity",
        "How many past moves are kept to learn from; old ones are dropped first.",
        |ui| {
            ui.add(
                DragValue::new(&mut d.replay_capacity)
                    .clamp_existing_to_range(false)
                    .range(100..=10_000_000)
                    .speed(100.0),
            )
        },
    );
    changed |= row(
        ui,
        "Batch size",
        "Moves sampled from the replay buffer per gradient step.",
        |ui| {
            ui.add(
                DragValue::new(&mut d.batch_size)
                    .clamp_existing_to_range(false)
                    .range(1..=1_048_576),
            )
        },
    );
    changed |= row(
        ui,
        "Learning starts",
        "Moves collected before the first gradient step.",
        |ui| {
            ui.add(
                DragValue::new(&mut d.learning_starts)
                    .clamp_existing_to_range(false)
                    .range(0..=1_000_000)
                    .speed(10.0),
            )
        },
    );
    changed |= row(ui, "Train every", "Moves between gradient steps.", |ui| {
        ui.add(
            DragValue::new(&mut d.train_every)
                .clamp_existing_to_range(false)
                .range(1..=1000),
        )
    });
    let hard = matches!(d.target_update, TargetUpdate::Hard { .. });
    changed |= row(
        ui,
        "Target network",
        "A slowly updated copy of the network gives stable targets: copied every N steps (hard) or blended in by τ each step (soft).",
        |ui| {
            let mut r = ui.radio(hard, "hard");
            if r.clicked() && !hard {
                d.target_update = TargetUpdate::Hard { every_steps: 200 };
                r.mark_changed();
            }
            let s = ui.radio(!hard, "soft");
            if s.clicked() && hard {
                d.target_update = TargetUpdate::Soft { tau: 0.01 };
                r.mark_changed();
            }
            r
        },
    );
    match &mut d.target_update {
        TargetUpdate::Hard { every_steps } => {
            changed |= row(
                ui,
                "  copy every",
                "Gradient steps between copies into the target network.",
                |ui| {
                    ui.add(
                        DragValue::new(every_steps)
                            .clamp_existing_to_range(false)
                            .range(1..=1_000_000),
                    )
                },
            );
        }
        TargetUpdate::Soft { tau } => {
            changed |= row(
                ui,
                "  τ",
                "Share of the online network blended into the target after every step.",
                |ui| {
                    ui.add(
                        DragValue::new(tau)
                            .clamp_existing_to_range(false)
                            .range(0.0001..=1.0)
                            .speed(0.001),
                    )
                },
            );
        }
    }
    changed |= row(
        ui,
        "Huber loss",
        "Huber instead of squared error: big surprises pull less hard (steadier).",
        |ui| {
            let mut huber = d.loss == DqnLoss::Huber;
            let r = ui.checkbox(&mut huber, "");
            d.loss = if huber { DqnLoss::Huber } else { DqnLoss::Mse };
            r
        },
    );
    changed |= row(
        ui,
        "Double DQN",
        "Pick the next move with the online network but value it with the target: less over-optimism.",
        |ui| ui.checkbox(&mut d.double, ""),
    );
    changed
}
