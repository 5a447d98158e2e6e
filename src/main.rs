//! The `trainlab` binary: the workbench window without arguments, else the command line.

use std::process::ExitCode;

use clap::Parser;

// candle's CPU backend allocates many short-lived buffers; mimalloc makes a
// training step several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    let cli = trainlab::cli::Cli::parse();
    match cli.command {
        Some(command) => trainlab::cli::dispatch(command),
        None => trainlab::cli::open_gui(None),
    }
}
