//! Reused f32 buffers for the fused kernels' large per-call arrays.
//!
//! Contract: `Scratch::uninit(len)` hands out a buffer of `len` values whose
//! contents are whatever an earlier user left (plain floats, never undefined
//! memory); dropping a buffer gives its memory back for the next call. The pool keeps at most `MAX_KEPT_BYTES`.
//!
//! Why: one char-LSTM training step allocates and frees ~25 MB of such arrays.
//! Fresh allocations that large come from the OS as new pages, and faulting and
//! zero-filling them cost ~8 % of the step.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Most memory the pool holds on to between calls.
const MAX_KEPT_BYTES: usize = 256 << 20;
/// Buffers below this size go to the allocator as usual.
const MIN_POOLED: usize = 1 << 14;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer from the pool; derefs to its `[f32]`.
pub(crate) struct Scratch(Vec<f32>);

impl Scratch {
    /// `len` values, contents unspecified: the caller writes before it reads.
    pub(crate) fn uninit(len: usize) -> Self {
        let mut v = take(len);
        if v.len() > len {
            v.truncate(len);
        } else {
            v.resize(len, 0.0);
        }
        Self(v)
    }

    /// The values as a plain vector (for a tensor's storage); its memory leaves the pool.
    pub(crate) fn into_vec(mut self) -> Vec<f32> {
        std::mem::take(&mut self.0)
    }
}

/// The smallest pooled buffer that holds `len` values, or a new one.
fn take(len: usize) -> Vec<f32> {
    if len >= MIN_POOLED
        && let Ok(mut pool) = POOL.lock()
        && let Some(i) = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)
    {
        return pool.swap_remove(i);
    }
    Vec::with_capacity(len)
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() < MIN_POOLED {
            return;
        }
        if let Ok(mut pool) = POOL.lock() {
            let kept: usize = pool.iter().map(|b| b.capacity() * 4).sum();
            if kept + v.capacity() * 4 <= MAX_KEPT_BYTES {
                pool.push(v);
            }
        }
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_asked_length_and_are_reused() {
        let mut a = Scratch::uninit(MIN_POOLED * 2);
        a.fill(3.0);
        let at = a.as_ptr();
        drop(a);
        // The same memory comes back for a request it can hold (other tests may
        // take it first, so only the length is certain).
        let b = Scratch::uninit(MIN_POOLED);
        assert_eq!(b.len(), MIN_POOLED);
        let reused = b.as_ptr() == at;
        assert!(!reused || b.iter().all(|&v| v == 3.0));
        let c = Scratch::uninit(MIN_POOLED * 3);
        assert_eq!(c.len(), MIN_POOLED * 3);
        assert_eq!(Scratch::uninit(5).into_vec().len(), 5);
    }
}
