//! When to stop handing work to the team: on a machine whose cores are
//! taken by other processes, a worker that has claimed a part may not run
//! for a whole scheduler time slice (milliseconds), while the caller waits
//! for it; and its spinning takes CPU time from the caller. Then the team
//! runs jobs on the calling thread alone for a while and probes again,
//! backing off exponentially.
//!
//! The rule, per job that the team ran in parallel: the caller measures how
//! long it ran parts itself (`mine`) and how long it then waited for the
//! workers' parts (`wait`). Parts are claimed one at a time, so with healthy
//! workers the caller waits at most about one part's time, which is at most
//! `mine`. `wait > 2 mine + 20 µs` means a worker stalled: the next
//! `backoff` jobs run on the calling thread (`backoff` doubles from 8 up to
//! 16,384 while probes keep stalling or workers claim nothing; it resets
//! when a probe's workers ran parts without stalling). Which thread runs a
//! part never changes a result (see [`crate::parallel`]), so this changes
//! speed only.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::Duration;

/// Whether pacing may run jobs serially (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns pacing on or off process-wide (on by default). Off, every job is
/// handed to the team however its workers fare: for tests that check the
/// team itself runs parts in parallel, on machines whose cores are busy.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Relaxed);
}

/// Jobs run serially after the first stall.
const FIRST_BACKOFF: u32 = 8;
/// The longest serial stretch between probes.
const MAX_BACKOFF: u32 = 16_384;
/// Waits below this are hand-off noise, never a stall.
const SLACK: Duration = Duration::from_micros(20);

/// The team's pacing state. Only the caller that holds the team's `busy`
/// flag reads or writes it (whose Acquire/Release orders the accesses), so
/// relaxed atomics suffice.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Jobs still to run on the calling thread before the next probe.
    serial_left: AtomicU32,
    /// The current serial stretch (0: workers are healthy).
    backoff: AtomicU32,
}

impl Pacing {
    /// Whether the next job runs on the calling thread (counts it).
    pub(crate) fn skip(&self) -> bool {
        let left = self.serial_left.load(Relaxed);
        if left == 0 || !ENABLED.load(Relaxed) {
            return false;
        }
        self.serial_left.store(left - 1, Relaxed);
        true
    }

    /// Records a parallel job: the caller ran its parts for `mine`, then
    /// waited `wait` for the `worker_parts` parts the workers claimed.
    pub(crate) fn observe(&self, mine: Duration, wait: Duration, worker_parts: usize) {
        let backoff = self.backoff.load(Relaxed);
        let stalled = wait > 2 * mine + SLACK;
        let next = match (stalled, worker_parts) {
            (true, _) => (backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF),
            // Workers claimed nothing: no evidence either way; keep backing
            // off if the team was backing off already.
            (false, 0) if backoff > 0 => (backoff * 2).min(MAX_BACKOFF),
            _ => 0,
        };
        self.backoff.store(next, Relaxed);
        self.serial_left.store(next, Relaxed);
    }

    /// The current serial stretch (for tests).
    #[cfg(test)]
    pub(crate) fn backoff(&self) -> u32 {
        self.backoff.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_stall_backs_off_exponentially_and_a_healthy_probe_resets() {
        let p = Pacing::default();
        p.observe(50 * US, 10 * US, 1);
        assert_eq!(p.backoff(), 0, "a short wait is not a stall");
        p.observe(50 * US, 3000 * US, 1);
        assert_eq!(p.backoff(), FIRST_BACKOFF);
        let skipped = (0..100).take_while(|_| p.skip()).count();
        assert_eq!(skipped, FIRST_BACKOFF as usize, "then the probe runs in parallel");
        p.observe(50 * US, 3000 * US, 1);
        assert_eq!(p.backoff(), 2 * FIRST_BACKOFF);
        (0..16).for_each(|_| assert!(p.skip()));
        p.observe(50 * US, Duration::ZERO, 0);
        assert_eq!(
            p.backoff(),
            4 * FIRST_BACKOFF,
            "no claims while backing off: keep backing off"
        );
        (0..32).for_each(|_| assert!(p.skip()));
        p.observe(50 * US, 30 * US, 2);
        assert_eq!(p.backoff(), 0, "workers ran parts without stalling");
        assert!(!p.skip());
    }

    #[test]
    fn long_parts_are_not_stalls_and_backoff_is_capped() {
        let p = Pacing::default();
        // A 2 ms wait after 1.5 ms of own work: one long part, not a stall.
        p.observe(1500 * US, 2000 * US, 3);
        assert_eq!(p.backoff(), 0);
        for _ in 0..20 {
            p.observe(10 * US, 5000 * US, 1);
        }
        assert_eq!(p.backoff(), MAX_BACKOFF);
    }
}
