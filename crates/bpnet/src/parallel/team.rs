//! A team of worker threads for fork-join jobs of a few microseconds.
//!
//! A training step of the paper's network is ~0.1 ms: its eleven matrix
//! products take 5-50 µs each, too short for a thread pool that puts idle
//! workers to sleep (waking one costs about as much as the product; measured
//! with rayon: 0.20 -> 0.32 ms per step with two threads). The workers here
//! spin for [`SPIN`] after each job before they sleep, so a burst of small
//! jobs (one training step) pays no wake-up. Publishing a job costs about
//! 0.1 µs (an empty job, whose parts the caller may run itself); a part run
//! by another core finished 0.7-1.7 µs after one part's time on the Intel
//! machine of `docs/PERFORMANCE.md` (`examples/team_latency.rs`).
//!
//! # Protocol
//!
//! [`Team::run`] splits a job into `parts` numbered pieces. One 64-bit word,
//! `state`, holds `epoch | parts | next`: the job's number, its part count
//! and the next unclaimed part. The caller (the *leader*) publishes a job by
//! writing the job pointer, resetting `done`, and then storing a new `state`
//! (new epoch, part 0 already taken by itself). Everyone claims parts by a
//! compare-and-swap of the whole word that bumps `next`, so a claim always
//! sees the part count of the very job whose epoch it checked. A worker
//! that has claimed a part reads the job pointer, runs the part and then
//! increments `done`. The leader runs part 0, claims more parts like any
//! worker until none is left, then waits until `done` counts every part a
//! worker claimed. Invariants:
//!
//! 1. The job pointer is written only by the leader, only while no part of
//!    any job is claimable and every claimed part has been counted in
//!    `done`: between jobs.
//! 2. A worker dereferences the job pointer only after a successful claim
//!    of the current epoch, and the leader does not return (so the job's
//!    closure stays alive) until that claim is counted in `done`.
//! 3. Only the holder of `busy` leads; a second caller, a caller that is
//!    itself running a part, or a job of one part runs every part on the
//!    calling thread.
//!
//! A panic in a part is caught where it happens (the part still counts as
//! done, so the leader never waits forever), carried to the leader and
//! re-raised there after every part has finished; `busy` is released by a
//! guard, so the team stays usable after a panic. The protocol is model
//! checked with loom on teams of 1 and 2 workers (2 and 3 threads with the
//! caller; the 2-worker models at preemption bound 1 in CI, 2 by hand),
//! changing part counts, concurrent callers and panicking parts
//! (`src/parallel/loom_tests.rs`). Replacing the process-wide team
//! (`set_threads` while jobs run) is not in the loom models (`cfg(loom)`
//! stubs the process-wide team); `tests/team.rs` stresses it natively.
//!
//! A worker that the operating system has not scheduled delays nothing: the
//! leader claims and runs the remaining parts itself, and only waits for
//! parts a worker has already started. If a started part stalls (the
//! machine's cores are taken by other work), the team runs the next jobs on
//! the leader alone for a while ([`super::pacing`]). Which thread runs which part does not
//! change any result of bpnet (see [`crate::parallel`]).

use super::pacing::Pacing;
use super::sync::{
    Arc, AtomicBool, AtomicU64, AtomicUsize, Clock, Condvar, Mutex, SpinBudget, UnsafeCell, spin, thread, thread_local,
};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::time::Duration;

/// How long an idle worker spins before it sleeps.
pub const SPIN: Duration = Duration::from_micros(200);

/// Bits of `state` for the part count and for the next part.
const PART_BITS: u32 = 12;
const PART_MASK: u64 = (1 << PART_BITS) - 1;

/// The most parts one job may have on the team; a job with more runs on the
/// calling thread.
pub const MAX_PARTS: usize = PART_MASK as usize;

type Job<'a> = dyn Fn(usize) + Sync + 'a;
type Payload = Box<dyn Any + Send>;

/// `epoch << 24 | parts << 12 | next`. The epoch has 40 bits: it would take
/// 2^40 jobs between a worker's read of `state` and its compare-and-swap
/// for a claim to mistake an old job for a new one.
fn pack(epoch: u64, parts: usize, next: usize) -> u64 {
    epoch << (2 * PART_BITS) | (parts as u64) << PART_BITS | next as u64
}

fn epoch_of(state: u64) -> u64 {
    state >> (2 * PART_BITS)
}

struct Shared {
    /// See [`pack`].
    state: AtomicU64,
    /// The current job (invariants 1 and 2 of the module docs).
    job: UnsafeCell<Option<*const Job<'static>>>,
    /// Parts of the current job that workers have finished.
    done: AtomicUsize,
    /// The first panic of a worker in the current job.
    failure: Mutex<Option<Payload>>,
    /// Workers that have run their start hook (see [`Team::new`]).
    ready: AtomicUsize,
    /// Set when the team is dropped: workers leave their loop.
    stop: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: the only non-Sync field is `job`, a pointer to a `Sync` closure
// written and read under invariants 1 and 2 of the module docs: never
// written while any thread may read it.
unsafe impl Sync for Shared {}
// SAFETY: as above; the pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// A leader (whoever calls [`Team::run`]) and its spinning worker threads.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<thread::JoinHandle<()>>,
    busy: AtomicBool,
    /// When to run jobs on the caller alone (a busy machine).
    pacing: Pacing,
    /// The cores this process may use, read once: reading it again (the
    /// cgroup quota) would allocate during a job.
    cores: usize,
}

thread_local! {
    /// Whether this thread is running a part of a team job.
    // Not `const { ... }`: loom's `thread_local!` does not take that form.
    #[allow(clippy::missing_const_for_thread_local)]
    static IN_JOB: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// Whether the calling thread is running a part of a job (work it starts
/// then stays on this thread).
pub fn in_job() -> bool {
    IN_JOB.with(|c| c.get())
}

/// Runs `f(i)` marked as a part of a job; the mark is restored afterwards,
/// also when `f` panics.
fn as_part(f: &Job<'_>, i: usize) {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_JOB.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(IN_JOB.with(|c| c.replace(true)));
    f(i);
}

/// Runs every part on the calling thread, in order.
pub(crate) fn serial(parts: usize, f: &Job<'_>) {
    (0..parts).for_each(|i| as_part(f, i));
}

/// Clears a flag when dropped (also during a panic).
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Release);
    }
}

impl Team {
    /// Starts `workers` threads (the caller of [`Team::run`] is one more),
    /// each running `on_start` first; returns once every worker has run it,
    /// so that per-thread set-up (bpnet's GEMM scratch memory) never
    /// happens in the middle of a job. `None` if a thread cannot be started.
    pub fn new(workers: usize, on_start: fn()) -> Option<Team> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            done: AtomicUsize::new(0),
            failure: Mutex::new(None),
            ready: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut team = Team {
            shared,
            workers: Vec::with_capacity(workers),
            busy: AtomicBool::new(false),
            pacing: Pacing::default(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        for id in 1..=workers {
            let s = Arc::clone(&team.shared);
            let body = move || work(&s, on_start);
            // On failure `team` is dropped, which stops the started workers.
            team.workers.push(spawn(id, body)?);
        }
        while team.shared.ready.load(Acquire) < workers {
            thread::yield_now();
        }
        Some(team)
    }

    /// Whether a caller is leading a job (for the loom tests).
    #[cfg(all(test, loom))]
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Acquire)
    }

    /// Number of worker threads (besides the caller).
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Runs `f(0)`, ..., `f(parts - 1)`, spread over the calling thread and
    /// the workers, and returns when all have finished. A panic in any part
    /// is re-raised here once every part has finished.
    pub fn run(&self, parts: usize, f: &Job<'_>) {
        self.dispatch(parts, f, true);
    }

    /// [`Team::run`] for parts that each take milliseconds or more (whole
    /// training runs): handed to the team whenever it is free, without
    /// asking the pacing, which is tuned for parts of microseconds and does
    /// not learn from these either (a stalled worker costs a time slice,
    /// small against such parts).
    pub fn run_coarse(&self, parts: usize, f: &Job<'_>) {
        self.dispatch(parts, f, false);
    }

    /// [`Team::run`] when `paced`, else [`Team::run_coarse`].
    fn dispatch(&self, parts: usize, f: &Job<'_>, paced: bool) {
        if parts <= 1 || parts > MAX_PARTS || self.workers.is_empty() || in_job() || self.busy.swap(true, Acquire) {
            serial(parts, f);
            return;
        }
        let _busy = ClearOnDrop(&self.busy);
        // A probe wakes the workers that sleep (spinning ones are running).
        let room = || super::pacing::room_for(self.shared.sleepers.load(Relaxed), self.cores);
        if paced && self.pacing.skip(room) {
            serial(parts, f);
            return;
        }
        self.lead(parts, f, paced);
    }

    /// Runs a job on the team; `paced`: its timing informs the pacing.
    fn lead(&self, parts: usize, f: &Job<'_>, paced: bool) {
        let s = &*self.shared;
        // SAFETY: lifetime erasure only. `lead` returns after every claimed
        // part is counted done, and no part can be claimed after that
        // (invariant 2), so the pointer is never used once `f` is gone.
        let job: *const Job<'static> = unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(f) };
        // SAFETY: invariant 1: between jobs no thread reads `job`.
        s.job.with_mut(|j| unsafe { *j = Some(job) });
        s.done.store(0, Relaxed);
        // Only the holder of `busy` changes the epoch, and `busy`'s
        // Release/Acquire orders this load after the previous leader's store.
        let epoch = epoch_of(s.state.load(Relaxed)) + 1;
        // Publishes the job; the leader holds part 0.
        s.state.store(pack(epoch, parts, 1), SeqCst);
        let woke = s.sleepers.load(SeqCst) > 0;
        if woke {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let start = Clock::now();
        let (mut mine, mut failure) = (0, None);
        let mut next = Some(0);
        while let Some(i) = next {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| as_part(f, i))) {
                failure.get_or_insert(p);
            }
            mine += 1;
            next = claim(s, epoch);
        }
        let own = Clock::now();
        while s.done.load(Acquire) < parts - mine {
            spin();
        }
        if paced {
            self.pacing.observe(
                own.since(start),
                Clock::now().since(own),
                parts - mine,
                woke,
                super::pacing::sample,
            );
        }
        // Every claimed part is done: no thread reads `job` any more.
        // SAFETY: invariant 1.
        s.job.with_mut(|j| unsafe { *j = None });
        let worker_failure = s.failure.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = failure.or(worker_failure) {
            resume_unwind(p);
        }
    }
}

impl Drop for Team {
    /// Stops and joins the workers (they are idle: no job outlives `run`).
    fn drop(&mut self) {
        let s = &*self.shared;
        s.stop.store(true, SeqCst);
        {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            // A worker catches every panic of a part, so join cannot fail
            // unless the thread was killed; nothing is left to clean up then.
            let _ = h.join();
        }
    }
}

#[cfg(not(loom))]
fn spawn(id: usize, body: impl FnOnce() + Send + 'static) -> Option<thread::JoinHandle<()>> {
    thread::Builder::new().name(format!("bpnet-team-{id}")).spawn(body).ok()
}

#[cfg(loom)]
fn spawn(_id: usize, body: impl FnOnce() + Send + 'static) -> Option<thread::JoinHandle<()>> {
    Some(thread::spawn(body))
}

/// Claims the next unclaimed part of job `epoch`, if any. The part count is
/// read from the same word as the epoch and the counter, so it is the part
/// count of job `epoch`.
fn claim(s: &Shared, epoch: u64) -> Option<usize> {
    let mut cur = s.state.load(Acquire);
    loop {
        let (parts, next) = ((cur >> PART_BITS) & PART_MASK, cur & PART_MASK);
        if epoch_of(cur) != epoch || next >= parts {
            return None;
        }
        match s.state.compare_exchange_weak(cur, cur + 1, AcqRel, Acquire) {
            Ok(_) => return Some(next as usize),
            Err(now) => cur = now,
        }
    }
}

/// A worker's loop: wait for a new job (spinning, then sleeping), then claim
/// and run its parts until none is left; leave when the team is dropped.
fn work(s: &Shared, on_start: fn()) {
    // Counted ready even if the hook panicked, so `Team::new` never hangs.
    let _ = catch_unwind(on_start);
    s.ready.fetch_add(1, Release);
    let mut seen = 0;
    while let Some(epoch) = wait_for_job(s, seen) {
        seen = epoch;
        while let Some(i) = claim(s, epoch) {
            // SAFETY: invariant 2: part `i` of job `epoch` is claimed, so the
            // leader published `job` for it (ordered before our Acquire
            // claim) and keeps it alive until this part is counted done.
            if let Some(job) = s.job.with(|j| unsafe { *j }) {
                // SAFETY: as above.
                let f = unsafe { &*job };
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| as_part(f, i))) {
                    s.failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                }
            }
            s.done.fetch_add(1, Release);
        }
    }
}

/// Waits until the epoch differs from `seen` and returns it, or `None` when
/// the team stops. Spins for [`SPIN`], then sleeps until woken.
fn wait_for_job(s: &Shared, seen: u64) -> Option<u64> {
    let mut budget = SpinBudget::new();
    loop {
        if s.stop.load(Acquire) {
            return None;
        }
        let epoch = epoch_of(s.state.load(Acquire));
        if epoch != seen {
            return Some(epoch);
        }
        if budget.spent() {
            sleep(s, seen);
            budget = SpinBudget::new();
        } else {
            spin();
        }
    }
}

/// Sleeps until a job after `seen` is published or the team stops. The
/// leader stores `state` and then reads `sleepers`, the sleeper adds itself
/// to `sleepers` and then reads `state`, all SeqCst: at least one of them
/// sees the other, so a wake-up is never lost (and the sleeper holds `lock`
/// from its check until it waits, so the leader's notify comes after).
fn sleep(s: &Shared, seen: u64) {
    let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
    s.sleepers.fetch_add(1, SeqCst);
    while epoch_of(s.state.load(SeqCst)) == seen && !s.stop.load(SeqCst) {
        g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    s.sleepers.fetch_sub(1, SeqCst);
}
