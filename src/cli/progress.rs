//! The terminal consumer of the event stream: an indicatif bar with loss and
//! throughput (episodes, return and success for maze runs), and one printed line
//! per evaluation. Redraws are rate-limited by
//! indicatif, so a fast worker never waits on the terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use std::cell::Cell;

use crate::events::{EnvInfo, EpisodeMetrics, EvalMetrics, ItemUnit, RunInfo, Split, TrainEvent};

/// Renders events for a human at a terminal.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// The throughput label of the run, from its Started event.
    rate: Cell<&'static str>,
}

impl Progress {
    /// A bar counting steps, or episodes for reinforcement learning (`episodes`).
    pub(crate) fn new(episodes: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
        let unit = if episodes { "episodes" } else { "steps" };
        let style = ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30.cyan/blue}} {{pos}}/{{len}} {unit}  {{msg}}  eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self {
            bar,
            rate: Cell::new(ItemUnit::Samples.rate()),
        }
    }

    /// Prints one line above the bar. indicatif drops `println` when the bar is
    /// hidden (stderr is not a terminal: CI, a pipe), so there it goes straight to
    /// stderr: notes and evaluations must reach the log either way.
    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    /// Shows one event.
    pub(crate) fn show(&self, event: &TrainEvent) {
        match event {
            TrainEvent::Started(info) => self.started(info),
            TrainEvent::Step(s) => {
                self.bar.set_position(s.step);
                self.bar.set_message(format!(
                    "epoch {:.2}  loss {:.4}  acc {:.1}%  lr {:.2e}  {:.0} {}",
                    s.epoch,
                    s.loss,
                    s.accuracy * 100.0,
                    s.lr,
                    s.samples_per_sec,
                    self.rate.get()
                ));
            }
            TrainEvent::Eval(e) => self.eval(e),
            TrainEvent::Sample(s) => {
                let text = s.text.replace('\n', " / ");
                self.line(format!(
                    "step {} sample (T={}): {}{}",
                    s.step, s.temperature, s.prompt, text
                ));
            }
            TrainEvent::Environment(env) => self.environment(env),
            TrainEvent::Episodes(e) => self.episodes(e),
            TrainEvent::Policy(_) | TrainEvent::LayerStats(_) => {}
            TrainEvent::LrChanged { step, lr } => {
                self.bar
                    .println(format!("step {step}: learning rate set to {lr:.3e}"));
            }
            TrainEvent::Paused { step } => self.line(format!("paused at step {step}")),
            TrainEvent::Resumed { step } => self.line(format!("resumed at step {step}")),
            TrainEvent::Restored { step, checkpoint } => {
                self.bar.set_position(*step);
                self.line(format!(
                    "continuing from the checkpoint {checkpoint} (step {step})"
                ));
            }
            TrainEvent::Note { step, message } => {
                self.line(format!("step {step}: {message}"));
            }
            // The CLI never probes, so answers never arrive here.
            TrainEvent::Probed(_) => {}
            TrainEvent::Finished(_) | TrainEvent::Failed { .. } => self.bar.finish_and_clear(),
        }
    }

    /// The run's size and where it is recorded; sets the bar's length.
    fn started(&self, info: &RunInfo) {
        self.bar.set_length(info.total_steps);
        if info.train_samples == 0 && info.steps_per_epoch == 0 {
            // A reinforcement-learning run: the Environment event says the rest.
            self.line(format!(
                "{}: {} parameters on {}; {} episodes",
                info.name, info.parameters, info.device, info.total_steps
            ));
        } else {
            self.rate.set(info.step_items.unit.rate());
            self.line(format!(
                "{}: {} parameters on {}; {} train / {} val / {} test samples; {} steps",
                info.name,
                info.parameters,
                info.device,
                info.train_samples,
                info.val_samples,
                info.test_samples,
                info.total_steps
            ));
        }
        if let Some(dir) = &info.run_dir {
            self.line(format!("recording to {dir}"));
        }
    }

    /// One line per evaluation, and one per class when the split has them.
    fn eval(&self, e: &EvalMetrics) {
        let label = match e.split {
            Split::Test => "test",
            Split::Val => "val",
            Split::Train => "train",
        };
        let extra = match &e.language {
            Some(l) => format!(
                "  {:.3} bits/token  perplexity {:.2}",
                l.bits_per_token, l.perplexity
            ),
            None => String::new(),
        };
        self.line(format!(
            "step {:>7} epoch {:>5.2}  {label:<5} loss {:.4}  accuracy {:.2}%{extra}",
            e.step,
            e.epoch,
            e.loss,
            e.accuracy * 100.0
        ));
        for c in &e.per_class {
            self.line(format!(
                "    {:<12} precision {:.3}  recall {:.3}  F1 {:.3}  ({} samples)",
                c.class, c.precision, c.recall, c.f1, c.support
            ));
        }
    }

    /// The maze and what the solver says is best in it.
    fn environment(&self, env: &EnvInfo) {
        let rows = env.layout.len();
        let cols = env.layout.first().map_or(0, |r| r.chars().count());
        self.line(format!(
            "{}: {rows}x{cols} maze, {} states; optimal path {} moves (shortest {}), \
             optimal return {:.4}",
            env.method,
            env.states,
            env.optimal_path.len().saturating_sub(1),
            env.shortest_path_len,
            env.optimal_return
        ));
    }

    /// A maze run's progress on the bar.
    fn episodes(&self, e: &EpisodeMetrics) {
        self.bar.set_position(e.episode);
        let greedy = e
            .greedy_path_len
            .map_or("no path".to_string(), |l| format!("{l} moves"));
        let loss = e.loss.map_or(String::new(), |l| format!("  loss {l:.4}"));
        self.bar.set_message(format!(
            "return {:.3}  success {:.0}%  eps {:.3}  greedy {greedy} / {}{}{loss}  {:.0} moves/s",
            e.mean_return,
            e.success_rate * 100.0,
            e.epsilon,
            e.optimal_path_len,
            if e.greedy_optimal { " (optimal)" } else { "" },
            e.steps_per_sec
        ));
    }
}
