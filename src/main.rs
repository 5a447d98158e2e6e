//! The `trainlab` binary: the command line (the GUI will open without arguments).

use std::process::ExitCode;

use clap::Parser;

// candle's CPU backend allocates many short-lived buffers; mimalloc makes a
// training step several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    trainlab::util::threads::pin_thread_count();
    let cli = trainlab::cli::Cli::parse();
    match cli.command {
        Some(command) => trainlab::cli::dispatch(command),
        // The workbench window is not part of this build yet: train the default.
        None => trainlab::cli::run_default(),
    }
}
