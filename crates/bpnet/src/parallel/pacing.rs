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
//! when a probe's workers ran parts without stalling; a probe whose workers
//! had to be woken and claimed nothing is repeated once first, see
//! [`Pacing::observe`]). Which thread runs a
//! part never changes a result (see [`crate::parallel`]), so this changes
//! speed only.
//!
//! Two more signals, because on a machine shared with a process that keeps
//! a core busy, stalls alone make a poor rule: one lucky probe resets the
//! backoff, and the next stall (a scheduler time slice) costs more than
//! the parallel jobs in between gained, and the caller itself loses time
//! slices, which `wait` does not show. Measured with `bench/busy.py` on 2
//! cores and one competing process, the paper network's training step took
//! 1.39x as long on 2 threads as on 1 with the stall rule alone.
//! - **Crowding:** over every [`CHECK_EVERY`] parallel jobs in a row, the
//!   caller's CPU time must be at least [`MIN_SHARE`] of the wall time (it
//!   never sleeps during a job: it runs parts or spins). Less counts as a
//!   stall.
//! - **Room before a probe** (Linux): the kernel's count of running threads
//!   (`procs_running`, read from `/proc/loadavg`, the caller included) plus the
//!   sleeping workers a probe would wake must not exceed the cores this
//!   process may use; otherwise the stretch doubles without a probe. This
//!   gate applies from a stretch of [`GATE_FROM`] jobs (repeated stalls):
//!   an idle machine stalls now and then too (a time slice lost to the
//!   host). The count is noisy while workers spin (a third running thread
//!   in 25-50% of reads on an idle 2-core machine with one thread
//!   spinning), so the least of three reads counts.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
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
/// The serial stretch from which a probe waits for room (see the module
/// docs): shorter stretches follow isolated stalls, which an idle machine
/// has too (a time slice lost to the host), and probe at once.
const GATE_FROM: u32 = 64;
/// Parallel jobs per window over which the caller's share of the wall time
/// is checked (two clock reads per window).
const CHECK_EVERY: u32 = 128;
/// The least share of the wall time the caller gets on a machine that has
/// a core for each thread of the team (about 1 then; 2/3 with two threads
/// and one competing process on two cores).
const MIN_SHARE: f64 = 0.85;

/// The team's pacing state. Only the caller that holds the team's `busy`
/// flag reads or writes it (whose Acquire/Release orders the accesses), so
/// relaxed atomics suffice.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Jobs still to run on the calling thread before the next probe.
    serial_left: AtomicU32,
    /// The current serial stretch (0: workers are healthy).
    backoff: AtomicU32,
    /// Parallel jobs in the current window (see [`Pacing::observe`]).
    since_check: AtomicU32,
    /// Wall and CPU time (ns, see [`sample`]) when the window began.
    window_wall: AtomicU64,
    window_cpu: AtomicU64,
    /// The last parallel job was a repeat probe (see [`Pacing::observe`]).
    reprobed: AtomicBool,
}

/// `(wall, cpu)` nanoseconds: a monotonic clock, and the CPU time of the
/// calling thread.
pub(crate) type Sample = (u64, u64);

impl Pacing {
    /// Whether the next job runs on the calling thread (counts it). When a
    /// probe is due after a serial stretch, `room()` says whether the
    /// machine has a core for each worker (see [`room_for`]); if not, the
    /// stretch doubles and no probe is made.
    pub(crate) fn skip(&self, room: impl FnOnce() -> bool) -> bool {
        if !ENABLED.load(Relaxed) {
            return false;
        }
        let left = self.serial_left.load(Relaxed);
        if left > 0 {
            self.serial_left.store(left - 1, Relaxed);
            return true;
        }
        let backoff = self.backoff.load(Relaxed);
        // A repeat probe always waits for room: on a machine whose cores
        // are taken, the worker it would meet spinning takes one of them.
        let repeat = self.reprobed.swap(false, Relaxed);
        if (backoff < GATE_FROM && !repeat) || room() {
            self.reprobed.store(repeat, Relaxed);
            return false;
        }
        let next = (backoff * 2).min(MAX_BACKOFF);
        self.backoff.store(next, Relaxed);
        self.serial_left.store(next - 1, Relaxed);
        true
    }

    /// Records a parallel job: the caller ran its parts for `mine`, then
    /// waited `wait` for the `worker_parts` parts the workers claimed;
    /// `woke`: workers slept when the job was published and were woken.
    /// Every [`CHECK_EVERY`] parallel jobs in a row, the calling thread's
    /// share of the wall time over them (its CPU time / elapsed time, from
    /// `now()`, see [`sample`]) must be at least [`MIN_SHARE`]; below, the
    /// machine is crowded and this counts as a stall: a competing process
    /// that takes the caller's core does not show in `wait`, only in the
    /// time slices the caller loses (the caller never sleeps during a job:
    /// it runs parts or spins).
    ///
    /// A probe after a serial stretch long enough for the workers to fall
    /// asleep ([`super::team::SPIN`]) wakes them, and a woken worker comes
    /// back after the caller has run every part of a short job itself: it
    /// claims nothing, which says nothing about the machine, and the worker
    /// now spins. Then the next job probes again at once, once, if the
    /// machine has room for it (see [`Pacing::skip`]); only a repeat probe
    /// whose workers claim nothing doubles the stretch.
    /// (Without the repeat, one paper-network run of 2,000 training steps on
    /// an idle 2-core machine ran 18,235 jobs serially and 215 in parallel.)
    pub(crate) fn observe(
        &self,
        mine: Duration,
        wait: Duration,
        worker_parts: usize,
        woke: bool,
        now: impl Fn() -> Sample,
    ) {
        let backoff = self.backoff.load(Relaxed);
        let jobs = self.since_check.load(Relaxed);
        if jobs == 0 {
            let (wall, cpu) = now();
            self.window_wall.store(wall, Relaxed);
            self.window_cpu.store(cpu, Relaxed);
        }
        let crowded = jobs + 1 >= CHECK_EVERY && {
            let (wall, cpu) = now();
            let elapsed = wall.saturating_sub(self.window_wall.load(Relaxed));
            let ran = cpu.saturating_sub(self.window_cpu.load(Relaxed));
            (ran as f64) < MIN_SHARE * elapsed as f64
        };
        let stalled = crowded || wait > 2 * mine + SLACK;
        let reprobe = !stalled && worker_parts == 0 && backoff > 0 && woke && !self.reprobed.load(Relaxed);
        self.reprobed.store(reprobe, Relaxed);
        let next = match (stalled, worker_parts) {
            (true, _) => (backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF),
            // Woken workers came too late: probe again, stretch unchanged.
            (false, 0) if reprobe => backoff,
            // Workers claimed nothing: no evidence either way; keep backing
            // off if the team was backing off already.
            (false, 0) if backoff > 0 => (backoff * 2).min(MAX_BACKOFF),
            _ => 0,
        };
        // A new window after each check and after each serial stretch.
        let restart = next > 0 || jobs + 1 >= CHECK_EVERY;
        self.since_check.store(if restart { 0 } else { jobs + 1 }, Relaxed);
        self.backoff.store(next, Relaxed);
        self.serial_left.store(if reprobe { 0 } else { next }, Relaxed);
    }

    /// The current serial stretch (for tests).
    #[cfg(test)]
    pub(crate) fn backoff(&self) -> u32 {
        self.backoff.load(Relaxed)
    }
}

/// Whether the machine has a core for each of `waking` threads more: the
/// running threads the kernel counts (`nr_running`, from `/proc/loadavg`,
/// the caller and any spinning worker included) plus `waking` do not exceed
/// the `cores` this process may use. `true` where that count cannot be read
/// (not Linux, no `/proc`): then the stall rule alone decides. Allocates
/// nothing.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
pub(crate) fn room_for(waking: usize, cores: usize) -> bool {
    // The least of three reads: a thread that runs for an instant (the
    // kernel's own, another program starting) must not block the probe.
    let running = (0..3).filter_map(|_| running_threads()).min();
    running.is_none_or(|running| running + waking <= cores)
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
pub(crate) fn room_for(_waking: usize, _cores: usize) -> bool {
    true
}

/// The wall clock (ns since the first call) and the calling thread's CPU
/// time (ns); the CPU time is taken as the wall time where it cannot be
/// read, so that a window never looks crowded then.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
pub(crate) fn sample() -> Sample {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let wall = BASE.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to
    // a local; CLOCK_THREAD_CPUTIME_ID needs no other argument.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    let cpu = (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64;
    (wall, if ok { cpu } else { wall })
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
pub(crate) fn sample() -> Sample {
    (0, 0)
}

/// The kernel's count of running threads: the first number of the fourth
/// field of `/proc/loadavg` ("running/total"), the same `nr_running()` that
/// `/proc/stat` reports as `procs_running`. Read into a stack buffer, so
/// that a probe allocates nothing (training steps allocate nothing once
/// warm, `tests/alloc.rs`); the file is one short line.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
fn running_threads() -> Option<usize> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    // `File::open` builds the C path on the stack for short paths.
    let mut file = std::fs::File::open("/proc/loadavg").ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]).ok()? {
            0 => break,
            n => len += n,
        }
    }
    parse_running(&buf[..len])
}

/// The running count from a `/proc/loadavg` line
/// (`"0.52 0.58 0.59 3/467 12345"` gives 3).
#[cfg(any(test, all(target_os = "linux", not(loom), not(miri))))]
fn parse_running(line: &[u8]) -> Option<usize> {
    let field = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(3)?;
    let running = field.split(|&b| b == b'/').next()?;
    std::str::from_utf8(running).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    /// A sampler whose window shows the caller on its core all the time.
    fn healthy() -> Sample {
        (1, 1)
    }

    #[test]
    fn a_stall_backs_off_exponentially_and_a_healthy_probe_resets() {
        let p = Pacing::default();
        p.observe(50 * US, 10 * US, 1, false, healthy);
        assert_eq!(p.backoff(), 0, "a short wait is not a stall");
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        assert_eq!(p.backoff(), FIRST_BACKOFF);
        let skipped = (0..100).take_while(|_| p.skip(|| true)).count();
        assert_eq!(skipped, FIRST_BACKOFF as usize, "then the probe runs in parallel");
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        assert_eq!(p.backoff(), 2 * FIRST_BACKOFF);
        (0..16).for_each(|_| assert!(p.skip(|| true)));
        p.observe(50 * US, Duration::ZERO, 0, false, healthy);
        assert_eq!(
            p.backoff(),
            4 * FIRST_BACKOFF,
            "no claims while backing off: keep backing off"
        );
        (0..32).for_each(|_| assert!(p.skip(|| true)));
        p.observe(50 * US, 30 * US, 2, false, healthy);
        assert_eq!(p.backoff(), 0, "workers ran parts without stalling");
        assert!(!p.skip(|| true));
    }

    #[test]
    fn woken_workers_that_claim_nothing_get_one_repeat_probe() {
        let p = Pacing::default();
        while p.backoff() < GATE_FROM {
            p.observe(50 * US, 3000 * US, 1, false, healthy);
            while p.skip(|| true) {}
        }
        let stretch = p.backoff();
        p.observe(10 * US, Duration::ZERO, 0, true, healthy);
        assert_eq!(p.backoff(), stretch, "woken too late: no evidence, stretch kept");
        assert!(!p.skip(|| true), "and the next job probes again at once");
        p.observe(10 * US, Duration::ZERO, 0, true, healthy);
        assert_eq!(p.backoff(), 2 * stretch, "a repeat whose workers claim nothing doubles");
        (0..2 * stretch).for_each(|_| assert!(p.skip(|| true)));
        p.observe(10 * US, Duration::ZERO, 0, false, healthy);
        assert_eq!(
            p.backoff(),
            4 * stretch,
            "spinning workers that claim nothing: no repeat"
        );
        (0..4 * stretch).for_each(|_| assert!(p.skip(|| true)));
        p.observe(10 * US, Duration::ZERO, 0, true, healthy);
        assert!(!p.skip(|| true), "a new probe gets its repeat");
        p.observe(50 * US, 30 * US, 2, false, healthy);
        assert_eq!(p.backoff(), 0, "the repeat's workers ran parts: healthy");
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        (0..FIRST_BACKOFF).for_each(|_| assert!(p.skip(|| panic!("checked during the stretch"))));
        p.observe(10 * US, Duration::ZERO, 0, true, healthy);
        assert!(p.skip(|| false), "a short stretch, but a repeat waits for room");
        assert_eq!(p.backoff(), 2 * FIRST_BACKOFF, "none: the stretch doubles");
        (1..2 * FIRST_BACKOFF).for_each(|_| assert!(p.skip(|| panic!("checked during the stretch"))));
        assert!(!p.skip(|| panic!("checked below GATE_FROM")), "then probes as before");
        p.observe(10 * US, Duration::ZERO, 0, true, healthy);
        assert!(!p.skip(|| true), "woken too late again: a repeat");
        p.observe(50 * US, 30 * US, 2, false, healthy);
        assert_eq!(p.backoff(), 0, "the repeat's workers ran parts: healthy");
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        (0..FIRST_BACKOFF).for_each(|_| assert!(p.skip(|| true)));
        p.observe(10 * US, Duration::ZERO, 0, true, healthy);
        assert!(!p.skip(|| true), "woken too late: a repeat");
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        assert_eq!(p.backoff(), 2 * FIRST_BACKOFF, "a repeat that stalls doubles");
    }

    #[test]
    fn no_probe_while_the_machine_has_no_room() {
        let p = Pacing::default();
        assert!(!p.skip(|| false), "healthy workers: no check, no skip");
        // Isolated stalls probe at once, room or not.
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        (0..FIRST_BACKOFF).for_each(|_| assert!(p.skip(|| panic!("checked during the stretch"))));
        assert!(
            !p.skip(|| panic!("checked below GATE_FROM")),
            "a short stretch probes at once"
        );
        // Repeated stalls: from GATE_FROM on, a probe waits for room.
        while p.backoff() < GATE_FROM {
            p.observe(50 * US, 3000 * US, 1, false, healthy);
            while p.skip(|| true) {}
        }
        p.observe(50 * US, 3000 * US, 1, false, healthy);
        let stretch = p.backoff();
        (0..stretch).for_each(|_| assert!(p.skip(|| panic!("checked during the stretch"))));
        assert!(p.skip(|| false), "no room: no probe");
        assert_eq!(p.backoff(), 2 * stretch, "and the stretch doubles");
        (1..2 * stretch).for_each(|_| assert!(p.skip(|| panic!("checked during the stretch"))));
        assert!(!p.skip(|| true), "room again: the probe runs in parallel");
    }

    #[test]
    fn a_crowded_window_counts_as_a_stall() {
        let p = Pacing::default();
        // The caller ran 0.7 ms of each ms over the window: crowded.
        let t = std::cell::Cell::new(0u64);
        let crowded = || {
            t.set(t.get() + 1_000_000);
            (t.get(), t.get() * 7 / 10)
        };
        for _ in 1..CHECK_EVERY {
            p.observe(50 * US, 10 * US, 1, false, crowded);
        }
        assert_eq!(p.backoff(), 0, "no check before the window is full");
        p.observe(50 * US, 10 * US, 1, false, crowded);
        assert_eq!(p.backoff(), FIRST_BACKOFF, "a crowded window: back off");
        for _ in 0..CHECK_EVERY {
            p.observe(50 * US, 10 * US, 1, false, healthy);
        }
        assert_eq!(p.backoff(), 0, "the caller had its core: parallel");
    }

    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    #[test]
    fn the_thread_cpu_clock_advances_and_never_outruns_the_wall_clock() {
        let (w0, c0) = sample();
        let mut x = 0u64;
        while sample().0 < w0 + 20_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (w1, c1) = sample();
        // Not a timing assertion: CPU time can never exceed wall time for
        // one thread (beyond clock granularity).
        assert!(c1 - c0 <= w1 - w0 + 1_000_000, "cpu {} > wall {}", c1 - c0, w1 - w0);
        assert!(c1 > c0, "the thread's CPU clock advances");
    }

    #[test]
    fn the_running_count_is_parsed_from_a_loadavg_line() {
        assert_eq!(parse_running(b"0.52 0.58 0.59 3/467 12345\n"), Some(3));
        assert_eq!(parse_running(b"0.00 0.00 0.00 12/78 1"), Some(12));
        assert_eq!(parse_running(b"0.00 0.00 0.00"), None);
        assert_eq!(parse_running(b"0.00 0.00 0.00 x/78 1"), None);
    }

    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    #[test]
    fn the_running_thread_count_is_read_and_counts_the_caller() {
        let n = running_threads().expect("/proc/loadavg has the running count");
        assert!(n >= 1, "the caller itself is running");
    }

    #[test]
    fn long_parts_are_not_stalls_and_backoff_is_capped() {
        let p = Pacing::default();
        // A 2 ms wait after 1.5 ms of own work: one long part, not a stall.
        p.observe(1500 * US, 2000 * US, 3, false, healthy);
        assert_eq!(p.backoff(), 0);
        for _ in 0..20 {
            p.observe(10 * US, 5000 * US, 1, false, healthy);
        }
        assert_eq!(p.backoff(), MAX_BACKOFF);
    }
}
