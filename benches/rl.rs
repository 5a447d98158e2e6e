//! Reinforcement-learning benchmark (no Criterion: plain timings printed as a table).
//!
//! 1. Tabular throughput on a generated 20x20 maze, one core: the pure episode loop
//!    (`TabularLearner::run_episode`), then the whole worker (events, greedy-path
//!    checks and snapshots, a consumer draining the channel), without and with a
//!    run folder.
//! 2. Episodes and training seconds until the greedy path is first optimal, for
//!    Q-learning, SARSA and DQN (seed defaults: Linear 128, ReLU, Linear 4, Adam
//!    1e-3, MSE) on 8x8 (experiments/gridworld_dqn.ron's layout) and 16x16 mazes.
//!
//! Run: `cargo bench --bench rl` (add `-- throughput` or `-- solve` for one part).

use std::time::Instant;

use trainlab::data::maze::{Maze, env_for};
use trainlab::spec::{
    AgentMethod, DatasetSpec, DqnSpec, Experiment, GeneratedMaze, GridworldSpec, LayoutSpec,
    MazeAlgorithm, TabularSpec, load_file,
};
use trainlab::train::{RunSummary, StartOptions, TabularLearner, TabularRule, TrainEvent, start};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Moves per throughput measurement.
const MOVES: u64 = 100_000_000;

fn generated(rows: usize, cols: usize) -> GridworldSpec {
    GridworldSpec {
        layout: LayoutSpec::Generated(GeneratedMaze {
            rows,
            cols,
            algorithm: MazeAlgorithm::Dfs,
            extra_loops: 0.0,
            seed: Some(1),
        }),
        ..GridworldSpec::default()
    }
}

fn tabular(rule: TabularRule) -> AgentMethod {
    match rule {
        TabularRule::QLearning => AgentMethod::QLearning(TabularSpec::default()),
        TabularRule::Sarsa => AgentMethod::Sarsa(TabularSpec::default()),
    }
}

/// Moves per second of the bare episode loop.
fn pure_loop(rule: TabularRule) -> Result<f64, String> {
    let spec = generated(20, 20);
    let env = env_for(&spec, 1).map_err(|e| e.to_string())?;
    let mut learner = TabularLearner::new(env, rule, 0.5, 0.99, 0.0, 1);
    let eps = trainlab::spec::EpsilonSpec::default();
    let began = Instant::now();
    let (mut moves, mut episode) = (0u64, 0u64);
    while moves < MOVES {
        moves += u64::from(learner.run_episode(eps.at(episode)).length);
        episode += 1;
    }
    Ok(moves as f64 / began.elapsed().as_secs_f64())
}

/// Runs `exp` through the worker to the end.
fn run(exp: Experiment, run_dir: Option<std::path::PathBuf>) -> Result<RunSummary, String> {
    let handle = start(
        exp,
        StartOptions {
            run_dir,
            ..StartOptions::default()
        },
    );
    let mut result = Err("no Finished event".to_string());
    for event in handle.events().iter() {
        match event {
            TrainEvent::Finished(s) => result = Ok(s),
            TrainEvent::Failed { message, .. } => result = Err(message),
            _ => {}
        }
    }
    handle.join();
    result
}

/// Moves per second of the whole worker (events every 20 episodes, snapshots
/// every 0.25 s).
fn worker_loop(rule: TabularRule, record: bool) -> Result<f64, String> {
    let mut exp = Experiment {
        name: "bench_rl".into(),
        dataset: DatasetSpec::Gridworld(generated(20, 20)),
        ..Experiment::default()
    };
    exp.agent.method = tabular(rule);
    exp.agent.episodes = usize::MAX / 2;
    exp.agent.max_env_steps = Some(MOVES);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let s = run(exp, record.then(|| dir.path().join("run")))?;
    Ok(s.rl.map_or(0.0, |r| r.env_steps_per_sec))
}

/// (episodes, training seconds) until the greedy path was first optimal.
fn time_to_optimal(
    name: &str,
    grid: GridworldSpec,
    method: AgentMethod,
) -> Result<(Option<u64>, Option<f64>, usize, u64), String> {
    let dqn = matches!(method, AgentMethod::Dqn(_));
    let mut exp = load_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/gridworld_dqn.ron"
    )))
    .map_err(|e| e.to_string())?;
    exp.name = format!("bench_{name}");
    exp.dataset = DatasetSpec::Gridworld(grid);
    exp.agent.method = method;
    exp.agent.stop_when_optimal = true;
    exp.agent.log_every_episodes = 1;
    exp.agent.episodes = if dqn { 2_000 } else { 100_000 };
    // DQN's budget: at most this many moves (about a minute on a busy 2-core box).
    exp.agent.max_env_steps = Some(if dqn { 300_000 } else { 50_000_000 });
    exp.agent.epsilon.decay_episodes = if dqn { 150 } else { 500 };
    let s = run(exp, None)?;
    let rl = s.rl.ok_or("no rl summary")?;
    Ok((
        rl.first_optimal_episode,
        rl.first_optimal_seconds,
        rl.optimal_path_len,
        rl.env_steps,
    ))
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| filter.is_empty() || filter.iter().any(|f| f == part);
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();

    if wanted("throughput") {
        let maze = Maze::generate(20, 20, MazeAlgorithm::Dfs, 0.0, 1).map(|m| {
            m.cells()
                .iter()
                .filter(|c| **c != trainlab::data::maze::Cell::Wall)
                .count()
        });
        println!(
            "tabular throughput, 20x20 generated maze ({} states), {MOVES} moves each, one core:",
            maze.unwrap_or(0)
        );
        for rule in [TabularRule::QLearning, TabularRule::Sarsa] {
            let name = format!("{rule:?}");
            let show = |label: &str, r: Result<f64, String>| match r {
                Ok(v) => println!("  {name:<10} {label:<28} {:>8.1} M moves/s", v / 1e6),
                Err(e) => println!("  {name:<10} {label:<28} failed: {e}"),
            };
            show("pure loop", pure_loop(rule));
            show("worker, events", worker_loop(rule, false));
            show("worker, events + run folder", worker_loop(rule, true));
        }
    }

    if wanted("solve") {
        let eight = match load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/experiments/gridworld_dqn.ron"
        ))) {
            Ok(Experiment {
                dataset: DatasetSpec::Gridworld(g),
                ..
            }) => g,
            _ => generated(9, 9),
        };
        let mazes = [("8x8", eight), ("16x16", generated(16, 16))];
        println!("episodes / training seconds until the greedy path is first optimal:");
        for (size, grid) in mazes {
            for method in [
                tabular(TabularRule::QLearning),
                tabular(TabularRule::Sarsa),
                AgentMethod::Dqn(DqnSpec::default()),
            ] {
                let name = format!("{size} {}", method.name());
                match time_to_optimal(&name, grid.clone(), method) {
                    Ok((Some(ep), Some(secs), len, moves)) => println!(
                        "  {name:<18} optimal path {len:>3} moves: episode {ep:>6}, {:>9.2} ms, {moves} moves",
                        secs * 1e3
                    ),
                    Ok((_, _, len, moves)) => {
                        println!(
                            "  {name:<18} optimal path {len:>3} moves: not reached in {moves} moves"
                        )
                    }
                    Err(e) => println!("  {name:<18} failed: {e}"),
                }
            }
        }
    }
}
