//! The synchronization primitives the thread team uses: `std`'s in normal
//! builds, loom's under `--cfg loom`, so that the model checker explores the
//! team's protocol (`src/parallel/loom_tests.rs`) with the very code that
//! runs in training.

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize},
    sync::{Arc, Condvar, Mutex},
    thread, thread_local,
};
#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize},
    sync::{Arc, Condvar, Mutex},
    thread, thread_local,
};

/// An interior-mutable cell whose accesses loom checks for data races;
/// in normal builds a plain [`std::cell::UnsafeCell`] with the same API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }

    /// Calls `f` with a pointer for reading.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// A monotonic clock for the team's pacing; under loom a stopped one (time
/// is not modelled: every wait looks short, so pacing never engages).
#[derive(Clone, Copy)]
pub(crate) struct Clock(#[cfg(not(loom))] std::time::Instant);

impl Clock {
    pub(crate) fn now() -> Self {
        #[cfg(not(loom))]
        {
            Clock(std::time::Instant::now())
        }
        #[cfg(loom)]
        {
            Clock()
        }
    }

    /// Time from `earlier` to this reading.
    pub(crate) fn since(self, earlier: Clock) -> std::time::Duration {
        #[cfg(not(loom))]
        {
            self.0.saturating_duration_since(earlier.0)
        }
        #[cfg(loom)]
        {
            let _ = earlier;
            std::time::Duration::ZERO
        }
    }
}

/// One turn of a busy-wait loop: a CPU pause hint, or under loom a yield
/// that lets the model checker schedule another thread.
#[inline]
pub(crate) fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Whether an idle worker has spun long enough to go to sleep: after
/// [`super::team::SPIN`] of wall time; under loom at once (time is not
/// modelled, and a spinning worker only multiplies the interleavings to
/// explore without adding any: it re-reads the same word).
pub(crate) struct SpinBudget {
    #[cfg(not(loom))]
    start: std::time::Instant,
    turns: u32,
}

impl SpinBudget {
    pub(crate) fn new() -> Self {
        SpinBudget {
            #[cfg(not(loom))]
            start: std::time::Instant::now(),
            turns: 0,
        }
    }

    /// Counts one turn; true once the budget is spent.
    pub(crate) fn spent(&mut self) -> bool {
        self.turns = self.turns.wrapping_add(1);
        #[cfg(loom)]
        {
            true
        }
        #[cfg(not(loom))]
        {
            // Reading the clock costs ~20 ns: look every 256 turns.
            self.turns.is_multiple_of(256) && self.start.elapsed() > super::team::SPIN
        }
    }
}
