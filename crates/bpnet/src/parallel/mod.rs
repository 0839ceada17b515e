//! Threads: how many bpnet may use, the team that runs split work, and how
//! work is split.
//!
//! This module owns every thread bpnet starts. The library starts
//! single-threaded; [`set_threads`] (the command-line tool's `--threads`,
//! default every core) starts a [`team::Team`] of `n - 1` spinning workers.
//!
//! # What is split, and why results do not depend on the thread count
//!
//! - A matrix product of at least [`MIN_MACS_SPLIT`] multiply-adds is cut
//!   into blocks of output rows or columns ([`split::gemm_blocks`]). The
//!   blocks are a function of the product's shape alone, never of the
//!   thread count, and each block is computed by one call of the
//!   single-threaded GEMM kernel, whichever thread claims it. With one
//!   thread the same blocks run one after the other. So a product gives the
//!   same bits for any thread count. (Cutting per thread instead, as bpnet
//!   once did, is not enough: faer picks its kernel and blocking from the
//!   block's shape, e.g. a 1-column block goes through its matrix-vector
//!   kernel, which sums in another order.)
//! - Element-wise work (optimizer updates, activations, normalization)
//!   over at least [`MIN_ELEMENTS_SPLIT`] elements is cut into one range
//!   (of elements or of rows) per thread; each element's arithmetic is the
//!   same wherever it runs.
//! - Batch normalization's sums over the rows of a batch are cut by blocks
//!   of columns (features), one per thread: each column's sum still runs
//!   over the rows in order, on one thread.
//! - [`crate::InferenceNet`] cuts a batch into blocks of rows, each
//!   computed the same way on whichever thread (on its feature-major path
//!   each row's output depends on that row alone, so there the cut may
//!   follow the thread count).
//!
//! No sum is cut into partial sums over threads. What does change the low
//! bits: another CPU (faer and bpnet's element-wise kernels choose AVX-512,
//! AVX2 or baseline code at run time; faer's blocking follows the cache
//! sizes), another bpnet or faer version. `tests/threads.rs` checks every
//! shape with 1 to 80 rows and columns on 1 to 4 threads, and whole
//! training runs with odd batch sizes on 1 to 4 threads (with split
//! normalization and activation passes, every kind of normalization, on 1
//! to 8).

pub mod pacing;
pub mod split;
mod sync;
pub mod team;

#[cfg(all(test, loom))]
mod loom_tests;

pub use split::{MIN_ELEMENTS_SPLIT, MIN_MACS_SPLIT};
pub use team::in_job;

use std::sync::atomic::{AtomicUsize, Ordering};

/// The most threads [`set_threads`] accepts. More threads than cores work
/// (the tests run 8 on 2 cores) but are slower: the workers spin.
pub const MAX_THREADS: usize = 256;

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Lets bpnet use `n` threads, the caller included (clamped to
/// `1..=`[`MAX_THREADS`]), starting or replacing the team of `n - 1`
/// workers now, so that no thread is started in the middle of training.
/// Returns the count in effect: 1 if the system refused to start a thread.
/// A job running meanwhile on another thread finishes on the old team.
pub fn set_threads(n: usize) -> usize {
    global::set(n.clamp(1, MAX_THREADS))
}

/// For a child process after `fork`, which holds only the thread that
/// called `fork`: the team's workers do not exist there, so the team is
/// forgotten (its memory leaked, its workers neither stopped nor joined)
/// and [`set_threads`]`(n)` starts a new one. Call it in the child before
/// anything else runs bpnet code (the Python package does, through
/// `os.register_at_fork`); a child that forked while another thread was
/// inside bpnet cannot be repaired.
pub fn restart_after_fork(n: usize) -> usize {
    global::forget();
    set_threads(n)
}

/// The thread count in effect.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The cores this process may run on (the command-line default).
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f(0)`, ..., `f(parts - 1)` on the team of [`set_threads`] (or on
/// the calling thread: with one thread, inside another job's part, or while
/// another thread's job holds the team) and returns when all have finished.
/// A panic in any part is re-raised here.
pub fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts > 1
        && !in_job()
        && let Some(team) = global::team()
    {
        return team.run(parts, f);
    }
    team::serial(parts, f);
}

/// [`run`] for parts of milliseconds or more (whole training runs, e.g. the
/// members of an ensemble): handed to the team whenever it is free, without
/// the [`pacing`] that [`run`] applies to its short parts.
pub fn run_coarse(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    // The team runs a job of one part, or one started inside a part, serially.
    match global::team() {
        Some(team) => team.run_coarse(parts, f),
        None => team::serial(parts, f),
    }
}

#[cfg(not(loom))]
mod global {
    use super::team::Team;
    use std::sync::{Arc, RwLock};

    static TEAM: RwLock<Option<Arc<Team>>> = RwLock::new(None);

    pub(super) fn team() -> Option<Arc<Team>> {
        TEAM.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn forget() {
        let mut team = TEAM.write().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = team.take() {
            std::mem::forget(t);
        }
        super::THREADS.store(1, super::Ordering::Relaxed);
    }

    pub(super) fn set(n: usize) -> usize {
        let mut team = TEAM.write().unwrap_or_else(|e| e.into_inner());
        let current = team.as_ref().map_or(0, |t| t.workers()) + 1;
        if current != n {
            // The old team stops here, or when the job that holds it ends.
            *team = None;
            *team = (n > 1)
                .then(|| Team::new(n - 1, crate::tensor::warm_thread))
                .flatten()
                .map(Arc::new);
        }
        let n = team.as_ref().map_or(0, |t| t.workers()) + 1;
        super::THREADS.store(n, super::Ordering::Relaxed);
        n
    }
}

/// Under loom the process-wide team is not modelled (the loom tests build
/// their own [`team::Team`]): everything runs on the calling thread.
#[cfg(loom)]
mod global {
    pub(super) fn team() -> Option<std::sync::Arc<super::team::Team>> {
        None
    }

    pub(super) fn set(_n: usize) -> usize {
        1
    }

    pub(super) fn forget() {}
}
