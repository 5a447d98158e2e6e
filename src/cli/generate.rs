//! `trainlab generate man DIR` and `trainlab generate completions DIR` (hidden):
//! the man pages (clap_mangen: `trainlab.1` and one page per subcommand, e.g.
//! `trainlab-run.1`) and the shell completions (clap_complete: `trainlab.bash`,
//! `_trainlab` for zsh, `trainlab.fish`) of this very command line, so they
//! never fall behind it. `scripts/package-deb.sh` runs both before `cargo deb`.
//!
//! Contract: the folder is created if missing; files are written atomically;
//! an unwritable folder is exit 2 with its name.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Subcommand};
use clap_complete::{Generator, Shell};

use super::EXIT_BAD_INPUT;
use super::args::Cli;

/// `trainlab generate ...`.
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Man pages (troff), one per command: trainlab.1, trainlab-run.1, ...
    Man {
        /// The folder to write them into.
        dir: PathBuf,
    },
    /// Shell completions: trainlab.bash, _trainlab (zsh), trainlab.fish
    Completions {
        /// The folder to write them into.
        dir: PathBuf,
    },
}

pub(crate) fn generate(command: GenerateCommand) -> ExitCode {
    let written = match &command {
        GenerateCommand::Man { dir } => man_pages(dir),
        GenerateCommand::Completions { dir } => completions(dir),
    };
    match written {
        Ok(files) => {
            for f in &files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// The man pages of the command and of every visible subcommand, in `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    page(&cmd, dir, &mut pages)?;
    Ok(pages)
}

/// Writes `cmd`'s page as `{name}.1` and recurses into its visible subcommands,
/// named as git's are: `trainlab-study-run.1` documents `trainlab study run`.
fn page(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut bytes)
        .map_err(|e| anyhow::anyhow!("man page of {name}: {e}"))?;
    let path = dir.join(format!("{name}.1"));
    crate::util::atomic::write_atomic(&path, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    out.push(path);
    for sub in cmd.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            page(sub, dir, out)?;
        }
    }
    Ok(())
}

/// Completion scripts for bash, zsh and fish, in `dir`.
pub fn completions(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut cmd = Cli::command();
    let mut files = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut cmd, "trainlab", &mut bytes);
        let path = dir.join(shell.file_name("trainlab"));
        crate::util::atomic::write_atomic(&path, &bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}
