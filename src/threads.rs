//! How many threads the matrix products may use.
//!
//! Only the GEMMs run in parallel, and only when a product is large enough
//! for the second thread to pay for its hand-off (see
//! [`MIN_MACS_PER_THREAD`]). The library starts single-threaded; the
//! command-line tool calls [`set_threads`] with `--threads` (default: every
//! core rayon sees). faer splits a product over blocks of the output, never
//! over the inner dimension, so each output element is summed in the same
//! order whatever the thread count: results are bit-identical across thread
//! counts (tested in `tests/threads.rs`).

use faer::Par;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A product of `m * k * n` multiply-adds is split over `t` threads only if
/// it has at least `t` times this many. Measured on the 2-core machine of
/// `docs/PERFORMANCE.md`: at the paper network's shapes (at most 4.7 M
/// multiply-adds) a second thread costs more than it saves; at 256 x 784 x
/// 1024 (206 M) it brings the product close to 2x.
pub const MIN_MACS_PER_THREAD: usize = 8 << 20;

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Lets matrix products use up to `n` threads (at least 1, at most the size
/// of rayon's global pool, i.e. the machine's cores unless `RAYON_NUM_THREADS`
/// says otherwise). Returns the count in effect.
pub fn set_threads(n: usize) -> usize {
    let n = n.clamp(1, available());
    THREADS.store(n, Ordering::Relaxed);
    n
}

/// The thread count in effect for matrix products.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The most threads [`set_threads`] accepts.
pub fn available() -> usize {
    rayon::current_num_threads().max(1)
}

/// The parallelism for an `m x k` by `k x n` product.
pub(crate) fn par_for(m: usize, k: usize, n: usize) -> Par {
    let t = threads();
    let macs = m.saturating_mul(k).saturating_mul(n);
    if t > 1 && macs >= MIN_MACS_PER_THREAD.saturating_mul(t) {
        Par::rayon(t)
    } else {
        Par::Seq
    }
}
