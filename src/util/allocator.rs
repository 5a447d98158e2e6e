//! Tuning of mimalloc, the global allocator of trainlab's binaries.
//!
//! mimalloc gives memory that stays unused for a while back to the OS ("purging").
//! A training step frees and allocates many buffers of several MB (candle makes a
//! zeroed gradient and a sum for every parameter and activation it differentiates),
//! and with the default delay much of that memory is purged between two steps,
//! then faulted in and zero-filled again by the kernel. Measured on the char-LSTM
//! bench: 2,400 page faults per run with the default, 320 with a 5 s delay.
//! But the delay counts from when a purge is first scheduled, not from each
//! buffer's last use, so every few seconds whatever is free at that moment goes
//! (CNN bench, two runs: 6,070 faults at 5 s, ~13 % of its profile clearing
//! pages; 348 never purging). A minute keeps a training run's buffers and still
//! gives memory back after one.
//!
//! mimalloc also asks for transparent huge pages (`madvise(MADV_HUGEPAGE)` on
//! its 1 GiB arena), so each first touch of 2 MB zero-fills all of it at once.
//! On the 2-core VMs we measure on, those faults are slow: a CNN run's first
//! step took 480 ms instead of 70 (a normal step: 36), and a whole `mnist_cnn`
//! run spent 1.3-2.7 s in the kernel instead of 0.3 (wall 21-23 s against 18 s;
//! steady steps no slower without). So the process runs without them, as
//! mimalloc's own `allow_thp = 0` option does it (`PR_SET_THP_DISABLE`; set at
//! startup, that option comes too late: the arena is mapped before `main`).
//! Processes it starts inherit the setting.

/// mimalloc's option number for the purge delay (`mi_option_purge_delay` in
/// mimalloc.h, the same in its v2 and v3 APIs).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds freed memory is kept before it goes back to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 60_000;

/// Keeps freed memory for `PURGE_DELAY_MS` before mimalloc returns it to the OS,
/// and maps memory in small pages (see the module's comment). Harmless when
/// mimalloc is not the global allocator (it then tunes an unused allocator).
/// Call at the start of `main`.
pub fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc reads options atomically, and
    // the call happens at startup before other threads allocate.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    no_huge_pages();
}

/// Turns transparent huge pages off for this process (Linux; elsewhere nothing).
fn no_huge_pages() {
    set_thp_disabled(true);
}

/// Makes a process this one starts use transparent huge pages as the system
/// sets them, not as trainlab does: the benches start PyTorch this way, so it
/// runs as it would for its users (the setting is otherwise inherited).
pub fn system_huge_pages_for(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed; it makes one prctl system call.
        unsafe {
            cmd.pre_exec(|| {
                set_thp_disabled(false);
                Ok(())
            })
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// `PR_SET_THP_DISABLE` for this process (Linux; elsewhere nothing). A kernel
/// without the option returns an error, which changes nothing.
fn set_thp_disabled(disabled: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::{c_int, c_ulong};
        /// `PR_SET_THP_DISABLE` in linux/prctl.h.
        const PR_SET_THP_DISABLE: c_int = 41;
        unsafe extern "C" {
            fn prctl(option: c_int, ...) -> c_int;
        }
        let (flag, zero): (c_ulong, c_ulong) = (disabled.into(), 0);
        // SAFETY: prctl with this option reads one integer argument (the flag;
        // the other three must be zero) and touches no memory of ours.
        let _ = unsafe { prctl(PR_SET_THP_DISABLE, flag, zero, zero, zero) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = disabled;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The `THP_enabled` line of a process's status (kernels since 5.0; None
    /// on older ones, where the test has nothing to read).
    fn thp_enabled(status: &str) -> Option<&str> {
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(str::trim)
    }

    #[test]
    fn trainlab_runs_without_huge_pages_and_starts_pytorch_with_the_systems_setting() {
        super::keep_freed_memory();
        let ours = std::fs::read_to_string("/proc/self/status").unwrap();
        let Some(flag) = thp_enabled(&ours) else {
            return;
        };
        assert_eq!(flag, "0");
        let mut plain = std::process::Command::new("cat");
        plain.arg("/proc/self/status");
        let inherited = String::from_utf8(plain.output().unwrap().stdout).unwrap();
        assert_eq!(thp_enabled(&inherited), Some("0"));
        let mut reset = std::process::Command::new("cat");
        reset.arg("/proc/self/status");
        super::system_huge_pages_for(&mut reset);
        let child = String::from_utf8(reset.output().unwrap().stdout).unwrap();
        assert_eq!(thp_enabled(&child), Some("1"));
    }
}
