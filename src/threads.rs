//! How many threads bpnet may use, and which work is split over them.
//!
//! Matrix products of at least [`MIN_MACS_SPLIT`] multiply-adds are cut into
//! one block of output rows or columns per thread and run by the spinning
//! team of [`crate::team`]; the optimizers split long parameter tensors the
//! same way (see [`parts_for`]), and [`crate::InferenceNet`] splits its batch.
//! Each output element is computed by the same single-threaded kernel over
//! the whole inner dimension, whichever thread runs it, so results are
//! bit-identical for any thread count (tested in `tests/threads.rs`).
//!
//! The library starts single-threaded; the command-line tool calls
//! [`set_threads`] with `--threads` (default: every core).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Products with fewer multiply-adds stay on one thread. Measured on the
/// 2-core machine of `docs/PERFORMANCE.md`: a 60 x 100 x 100 product
/// (0.6 M) takes 6.3 µs on one thread and 3.4 µs split over two; the
/// team's hand-off costs about 0.13 µs.
pub const MIN_MACS_SPLIT: usize = 1 << 18;

/// Element-wise work over fewer elements stays on one thread.
pub const MIN_ELEMENTS_SPLIT: usize = 1 << 15;

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Lets bpnet use up to `n` threads (at least 1, at most [`available`]).
/// Returns the count in effect.
pub fn set_threads(n: usize) -> usize {
    let n = n.clamp(1, available());
    THREADS.store(n, Ordering::Relaxed);
    n
}

/// The thread count in effect.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The most threads [`set_threads`] accepts: the cores this process may run
/// on.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Into how many blocks an `m x k` by `k x n` product is split.
pub(crate) fn gemm_parts(m: usize, k: usize, n: usize) -> usize {
    let macs = m.saturating_mul(k).saturating_mul(n);
    if m.max(n) >= 32 && macs >= MIN_MACS_SPLIT && !crate::team::in_job() {
        threads()
    } else {
        1
    }
}

/// Into how many parts element-wise work over `len` elements is split.
pub(crate) fn parts_for(len: usize) -> usize {
    if len >= MIN_ELEMENTS_SPLIT && !crate::team::in_job() {
        threads()
    } else {
        1
    }
}

/// The `i`-th of `parts` contiguous ranges of `0..len`, with boundaries at
/// multiples of 16 elements.
pub(crate) fn range(len: usize, parts: usize, i: usize) -> std::ops::Range<usize> {
    let step = len.div_ceil(parts).div_ceil(16) * 16;
    (i * step).min(len)..((i + 1) * step).min(len)
}
