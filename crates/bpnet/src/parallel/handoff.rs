//! A value that part 0 of a job publishes and the job's other parts wait
//! for: the Parquet reader's column plans, chosen by the reader of the
//! file's first rows while the other readers decode their own first rows.
//!
//! No deadlock, whatever the scheduling: part 0 of a [`super::run`] job is
//! run by the calling thread before it claims any other part, and a job
//! run serially runs its parts in order ([`super::team`]); so whenever a
//! part waits here, part 0 has started. Part 0 never waits here, and it
//! settles the handoff on every path out of it, an error or a panic
//! included, by holding the [`Publisher`], which settles it as "failed"
//! when dropped unpublished. Model checked with loom (`loom_tests.rs`,
//! `a_handoff_from_part_0_reaches_the_waiting_parts`).

use super::sync::{Condvar, Mutex};

/// A value published once, or "failed" (see the module docs).
pub(crate) struct Handoff<T> {
    /// `None` until settled; then the value, or `None` for "failed".
    slot: Mutex<Option<Option<T>>>,
    ready: Condvar,
}

impl<T: Clone> Handoff<T> {
    pub(crate) fn new() -> Self {
        Handoff {
            slot: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    /// The guard part 0 holds: it settles the handoff as "failed" when
    /// dropped, unless [`Publisher::publish`] settled it first.
    pub(crate) fn publisher(&self) -> Publisher<'_, T> {
        Publisher(self)
    }

    /// Settles the handoff unless it is settled already; wakes the waiters.
    fn settle(&self, value: Option<T>) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(value);
        }
        self.ready.notify_all();
    }

    /// Waits until the handoff is settled: the value, or `None` if part 0
    /// failed before publishing it.
    pub(crate) fn wait(&self) -> Option<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*slot {
                Some(value) => return value.clone(),
                None => slot = self.ready.wait(slot).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

/// Part 0's hold on a [`Handoff`] (see [`Handoff::publisher`]).
pub(crate) struct Publisher<'a, T: Clone>(&'a Handoff<T>);

impl<T: Clone> Publisher<'_, T> {
    /// Publishes `value` (the first settlement stands).
    pub(crate) fn publish(&self, value: T) {
        self.0.settle(Some(value));
    }
}

impl<T: Clone> Drop for Publisher<'_, T> {
    fn drop(&mut self) {
        self.0.settle(None);
    }
}
