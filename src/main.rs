//! The `trainlab` binary: the GUI without arguments, the CLI with a subcommand.

use std::process::ExitCode;

use clap::Parser;

// candle's CPU backend allocates many short-lived buffers; mimalloc makes a
// training step several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = trainlab::cli::Cli::parse();
    match cli.command {
        Some(command) => trainlab::cli::dispatch(command),
        None => trainlab::gui::run_app(),
    }
}
