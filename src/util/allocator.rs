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

/// mimalloc's option number for the purge delay (`mi_option_purge_delay` in
/// mimalloc.h, the same in its v2 and v3 APIs).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds freed memory is kept before it goes back to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 60_000;

/// Keeps freed memory for `PURGE_DELAY_MS` before mimalloc returns it to the OS.
/// Harmless when mimalloc is not the global allocator (it then tunes an unused
/// allocator). Call at the start of `main`.
pub fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc reads options atomically, and
    // the call happens at startup before other threads allocate.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}
