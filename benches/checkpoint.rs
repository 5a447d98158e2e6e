//! What a checkpoint costs: `experiments/fashion_cnn.ron` on a slice of
//! Fashion-MNIST (Debian's package; the bundled MNIST sample when it is missing),
//! trained once with checkpoints only at the end and once with one after every
//! step. Checkpoints are written by a second thread, one at a time
//! (`train/checkpoint.rs`): the training thread copies each to memory (weights,
//! Adam moments, state) and hands it over, and the writer serialises, writes,
//! syncs, renames and prunes while the next step runs. So the extra wall time per
//! step is what a checkpoint costs the run: the training thread's part, plus the
//! writer's CPU time taken from the steps, plus a wait for the write before it
//! when a write takes longer than a step (on a busy disk). It is reported against
//! the measured time of one full epoch (54,000 images in steps of 64), which is
//! what `every_epochs: 1` pays it once for. Alternating repeats, medians.
//!
//! `cargo bench --bench checkpoint [-- --repeat N]`

use std::path::Path;

use trainlab::spec::{CheckpointSpec, DataSource, DatasetSpec, Experiment, load_file};
use trainlab::train::{StartOptions, TrainEvent, start};

const STEPS: usize = 40;
const FULL_EPOCH_STEPS: f64 = 54_000.0 / 64.0;

/// `fashion_cnn` on `STEPS` batches, with a checkpoint every `every` steps (none:
/// only at the end).
fn experiment(every: Option<usize>) -> Experiment {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fashion_cnn.ron");
    let mut exp = load_file(&file).expect("fashion_cnn.ron");
    let DatasetSpec::Images(d) = &mut exp.dataset else {
        unreachable!("fashion_cnn is an image experiment")
    };
    if !Path::new("/usr/share/datasets/fashion-mnist").is_dir() {
        eprintln!("Fashion-MNIST package missing: using the bundled MNIST sample");
        d.source = DataSource::Bundled;
        d.name = trainlab::spec::ImageDataset::Mnist;
    }
    d.val_fraction = 0.0;
    d.train_limit = Some(STEPS * exp.training.batch_size);
    d.test_limit = Some(100);
    exp.training.epochs = 1;
    exp.training.checkpoint = CheckpointSpec {
        every_epochs: None,
        every_steps: every,
        keep_last: 2,
    };
    exp
}

/// (wall seconds, training seconds) of one recorded run.
fn run(every: Option<usize>) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tmp");
    let handle = start(
        experiment(every),
        StartOptions {
            run_dir: Some(dir.path().join("run")),
            ..StartOptions::default()
        },
    );
    let mut out = None;
    for e in handle.events().iter() {
        match e {
            TrainEvent::Finished(s) => out = Some((s.wall_seconds, s.train_seconds)),
            TrainEvent::Failed { message, .. } => panic!("run failed: {message}"),
            _ => {}
        }
    }
    handle.join();
    out.expect("finished")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(3), |v| v.parse::<usize>())
        .unwrap_or_else(|_| {
            eprintln!("--repeat takes a number");
            std::process::exit(2)
        });
    run(None); // warm-up: data into the page cache, pools started
    let (mut plain, mut every, mut step_secs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (wall, train) = run(None);
        plain.push(wall);
        step_secs.push(train / STEPS as f64);
        every.push(run(Some(1)).0);
    }
    // Both runs write one at the end: the other STEPS - 1 are the extra ones.
    let per_checkpoint = (median(every) - median(plain)) / (STEPS - 1) as f64;
    let epoch = median(step_secs) * FULL_EPOCH_STEPS;
    println!(
        "fashion_cnn: one checkpoint costs the run {:.1} ms (the training thread's copy, the \
         writer's CPU, any wait for the write before), one epoch {:.1} s: checkpointing every \
         epoch costs {:.3} % of it (target < 2 %)",
        per_checkpoint * 1e3,
        epoch,
        100.0 * per_checkpoint / epoch
    );
}
