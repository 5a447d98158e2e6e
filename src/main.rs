//! The `trainlab` binary: the workbench window without arguments, else the command line.

use std::process::ExitCode;

use clap::Parser;

// candle's CPU backend allocates many short-lived buffers; mimalloc makes a
// training step several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = trainlab::cli::Cli::parse();
    // Library errors (candle's) carry a backtrace of their own when the
    // environment asks for one: ninety lines of frames under a one-line message.
    // They are shown with --verbose only; RUST_BACKTRACE still covers panics.
    let library_backtraces = if cli.verbose { "1" } else { "0" };
    // SAFETY: first thing in main, while the process is single-threaded, so no
    // other thread can be reading the environment.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", library_backtraces) };
    trainlab::util::threads::pin_thread_count();
    trainlab::util::allocator::keep_freed_memory();
    match cli.command {
        Some(command) => trainlab::cli::dispatch(command),
        None => trainlab::cli::open_gui(None),
    }
}
