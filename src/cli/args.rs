//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// trainlab: train neural networks and watch them learn. Without a command it
/// opens the workbench window.
#[derive(Debug, Parser)]
#[command(name = "trainlab", version, about)]
pub struct Cli {
    /// What to do; omit to open the GUI.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Show the details behind an error: where in the libraries it happened
    /// (backtraces), which are left out otherwise.
    #[arg(long, global = true)]
    pub verbose: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an experiment headless, with a progress bar and a summary table.
    Run(RunArgs),
    /// Continue a stopped, killed or finished run from its newest checkpoint
    ///
    /// Runs write checkpoints into RUN_DIR/checkpoints/ (training.checkpoint:
    /// every epoch by default, and when stopped or paused). The run goes on in the
    /// same folder exactly as if it had never stopped; metrics.jsonl continues from
    /// the checkpoint. `--set training.epochs=N` (agent.episodes for mazes)
    /// extends a run, finished or not.
    Resume(ResumeArgs),
    /// Make a trained run smaller: magnitude pruning to each sparsity (optionally
    /// fine-tuned with the mask held); writes a run folder per variant and
    /// compress.json (test figures, size, inference speed)
    Compress(CompressArgs),
    /// Write things out: `export csv RUN_DIR` (metrics, one row per step),
    /// `export pytorch EXPERIMENT_OR_RUN` (a PyTorch script), `export onnx RUN_DIR`
    /// (an ONNX model), `export tensorboard RUN_OR_STUDY` (TensorBoard event files)
    #[command(subcommand)]
    Export(ExportCommand),
    /// Hyperparameter studies: run, resume or show a search over a base experiment
    #[command(subcommand)]
    Study(StudyCommand),
    /// Validate an experiment file without training (exit 2 when invalid).
    Check(CheckArgs),
    /// The learning-rate range test: train a copy for a few steps with the lr
    /// rising exponentially, write lr_find.csv, suggest a learning rate
    ///
    /// Step i of N trains with lr = start * (end/start)^(i/(N-1)); the loss is
    /// smoothed (moving average, beta 0.98) and the test stops once it passes 4x
    /// its minimum. Suggestions: where the smoothed loss falls fastest, and a tenth
    /// of the lr at its minimum. Images, text and points experiments.
    LrFind(super::lr_find::LrFindArgs),
    /// Lessons: `lesson verify FILE...` trains each lesson and checks its claims
    #[command(subcommand)]
    Lesson(super::lesson::LessonCommand),
    /// Open the workbench window (the same as no command), optionally on a file.
    Gui(GuiArgs),
    /// Packaging: write the man pages or the shell completions (bash, zsh, fish)
    /// of this command line into a folder (the .deb's build runs it)
    #[command(subcommand, hide = true)]
    Generate(super::generate::GenerateCommand),
}

/// Arguments of `trainlab gui`.
#[derive(Debug, Args)]
pub struct GuiArgs {
    /// Experiment file to open (default: the last one edited).
    pub file: Option<PathBuf>,
}

/// Arguments of `trainlab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Experiment file (RON).
    pub file: PathBuf,
    /// Override a field; VALUE is written as in the experiment file (RON)
    ///
    /// `--set training.epochs=2`, `--set optimizer.lr=3e-4`,
    /// `--set training.eval_every_steps=None` (or `=Some(100)`, or `=100`),
    /// `--set 'dataset.source=File("corpus.txt")'`, `--set device=Cuda(0)`,
    /// `--set 'model=[Flatten, Linear(out: 10)]'`, `--set 'optimizer=Adam(lr: 1e-3)'`.
    /// PATH walks fields with dots; list items are numbered from 0
    /// (`model.1.Linear.out=64`) and enum variant names may be left out
    /// (`optimizer.lr` reaches the lr of Adam or Sgd). Quote VALUEs holding
    /// quotes, spaces or parentheses for the shell. Repeatable; applied in order.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Run folder to write (default: runs/<name>-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Parent folder for default run folders.
    #[arg(long, default_value = "runs")]
    pub runs_root: PathBuf,
    /// Do not write a run folder.
    #[arg(long, conflicts_with = "out")]
    pub no_record: bool,
    /// Print events as JSON lines instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Stop (with a checkpoint) after this many steps (episodes for gridworld
    /// runs); `trainlab resume` continues from there.
    #[arg(long, value_name = "STEPS")]
    pub halt_after: Option<u64>,
    /// Slow motion: at most this many steps (gridworld: episodes) per second, to
    /// watch it learn; the results are those of a full-speed run.
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_pace)]
    pub pace: Option<f64>,
}

/// Boundary: clap's `value_parser` shows the `String` as its error for the flag.
fn positive_pace(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p.is_finite() => Ok(p),
        _ => Err(format!(
            "{s}: give a number of steps per second above 0, e.g. 5"
        )),
    }
}

/// Arguments of `trainlab resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run folder (it holds experiment.ron and checkpoints/).
    pub run_dir: PathBuf,
    /// Override a field of the run's experiment (VALUE as in the file, see `run
    /// --help`), e.g. `--set training.epochs=20` to train a finished run further
    ///
    /// The model must stay the same. An extended run keeps the learning-rate
    /// decay it was planned with: a cosine stays at its floor for the added
    /// epochs (schedule.decay_epochs records the plan; set it to re-plan), and the
    /// run ends with a validation pass.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Print events as JSON lines instead of a progress bar.
    #[arg(long)]
    pub json: bool,
}

/// `trainlab study ...`.
#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Create a study folder from a study file and run its trials
    Run {
        /// The study file (RON).
        file: PathBuf,
        /// The study folder (default: studies/<name>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Trials at once (default: the file's `parallel`).
        #[arg(long)]
        parallel: Option<usize>,
    },
    /// Continue a study: nothing finished is run again; trials whose worker died
    /// continue from their checkpoint
    Resume {
        /// The study folder.
        dir: PathBuf,
        /// Trials at once (default: the file's `parallel`).
        #[arg(long)]
        parallel: Option<usize>,
    },
    /// Work on a study folder until no trial is left (what each SLURM array task
    /// runs); several may work on one folder at once. SIGTERM or SIGUSR1:
    /// checkpoint the trial, release it for another worker, exit
    Work {
        /// The study folder.
        dir: PathBuf,
        /// Trials at once in this process (default: the file's `parallel`,
        /// counting $SLURM_CPUS_PER_TASK as the cores).
        #[arg(long)]
        parallel: Option<usize>,
    },
    /// Create a study folder and submit it as a SLURM array job
    Submit {
        /// The study file (RON).
        file: PathBuf,
        /// Submit to SLURM (the one scheduler supported).
        #[arg(long, required = true)]
        slurm: bool,
        /// Array tasks (worker processes).
        #[arg(long, default_value_t = 4)]
        tasks: usize,
        /// SLURM partition.
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task, HH:MM:SS (or any form sbatch reads).
        #[arg(long)]
        time: Option<String>,
        /// CPUs per task: the threads of its trial.
        #[arg(long, default_value_t = 1)]
        cpus_per_task: usize,
        /// GPUs per task.
        #[arg(long)]
        gpus_per_task: Option<usize>,
        /// SLURM account.
        #[arg(long)]
        account: Option<String>,
        /// The study folder, on a filesystem every node sees (default:
        /// studies/<name>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the folder and submit.sbatch, but do not submit.
        #[arg(long)]
        dry_run: bool,
    },
    /// Trials done / running / pending / failed, the best so far, and the SLURM
    /// job's state (also while it runs)
    Status {
        /// The study folder.
        dir: PathBuf,
    },
    /// Print a study's leaderboard (also while it runs)
    Show {
        /// The study folder.
        dir: PathBuf,
        /// Print leaderboard.csv as it is.
        #[arg(long)]
        csv: bool,
    },
}

/// `trainlab export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The experiment (or a trained run) as a standalone PyTorch script: the same
    /// model (the run's model.safetensors loads into it), data, split and settings
    Pytorch {
        /// An experiment file, or a run folder (its experiment and weights).
        from: PathBuf,
        /// The script to write (default: train.py, or RUN_DIR/train.py for a run).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Make the script evaluate the run's trained weights by default.
        #[arg(long)]
        eval_only: bool,
    },
    /// A trained run as an ONNX model (image classifiers, playground models, DQN
    /// Q-networks, LSTM/GRU text models): images in as float32 [N, C, H, W] of
    /// pixel / 255, logits out
    Onnx {
        /// The run folder.
        run_dir: PathBuf,
        /// The model file to write (default: RUN_DIR/model.onnx, or
        /// RUN_DIR/model_int8.onnx with --int8).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Quantise to int8 as `compress --int8` does (image MLPs and CNNs) and
        /// write the weights and activations as QuantizeLinear/DequantizeLinear
        /// pairs (QDQ) around each Linear and Conv
        #[arg(long)]
        int8: bool,
    },
    /// TensorBoard event files for a run recorded without them, or for a study
    /// (one run per trial, with the HParams plugin's table of settings and objectives)
    Tensorboard {
        /// A run folder or a study folder.
        from: PathBuf,
        /// The folder to write (default: FROM/tb); it must hold no event files yet.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// The run's metrics as CSV: one row per step (episode, for mazes), one column
    /// per figure
    Csv {
        /// The run folder.
        run_dir: PathBuf,
        /// Output file (default: RUN_DIR/metrics.csv; `-` for standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Arguments of `trainlab compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The trained run's folder.
    pub run_dir: PathBuf,
    /// Target sparsities, comma-separated, each in [0, 1).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.8,0.9")]
    pub sparsity: Vec<f64>,
    /// Epochs of fine-tuning after pruning, mask held (0: none).
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Prune every layer to the same sparsity (default: one threshold for all).
    #[arg(long)]
    pub per_layer: bool,
    /// Also quantise the original to int8 (image MLPs and CNNs: per-channel
    /// weights, calibrated activations, integer kernels).
    #[arg(long)]
    pub int8: bool,
    /// Where the variants go (default: RUN_DIR/compressed).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `trainlab check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Experiment file (RON).
    pub file: PathBuf,
    /// Overrides to validate along with the file (VALUE as in the file, see
    /// `run --help`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
}
