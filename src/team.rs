//! A team of worker threads for fork-join work of a few microseconds.
//!
//! A training step of the paper's network is ~0.1 ms: its eleven matrix
//! products take 5-50 µs each, too short for a thread pool that puts idle
//! workers to sleep (waking one costs about as much as the product; measured
//! with rayon: 0.20 -> 0.32 ms per step with two threads). The workers here
//! spin for [`SPIN`] after each job before they sleep, so a burst of small
//! jobs (one training step) pays a hand-off of about 0.1 µs.
//!
//! [`run`] splits a job into `parts` numbered pieces. The caller and the
//! workers *claim* parts one at a time from a shared counter, so a worker
//! that the operating system has not scheduled (a busy machine) delays
//! nothing: the caller claims and runs the remaining parts itself, and only
//! waits for parts a worker has already started. [`run`] returns when every
//! part is done. Which thread runs which part does not change any result.
//! If the team is already busy (a concurrent caller), the job has one part,
//! or the caller is itself running a part, the caller runs every part.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
pub const SPIN: Duration = Duration::from_micros(200);

/// Parts are claimed from the low bits of [`Shared::state`]; the epoch (one
/// per job) is in the high bits.
const PART_BITS: u32 = 16;
const PART_MASK: u64 = (1 << PART_BITS) - 1;

type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// `epoch << PART_BITS | next unclaimed part` of the current job.
    state: AtomicU64,
    /// The current job; written only while no part of any job is claimable.
    job: UnsafeCell<Option<*const Job>>,
    parts: AtomicUsize,
    /// Parts of the current job that workers have finished.
    done: AtomicUsize,
    panicked: AtomicBool,
    /// Workers that have started and warmed up (see [`Team::start`]).
    ready: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written by the leader only between jobs, when every part
// of the previous job has been claimed and finished, so no thread reads it;
// a thread reads it only after claiming a part of the current job (an
// Acquire CAS on `state` that follows the leader's Release publication), and
// the leader keeps the job alive until every part is done. The pointee is
// `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// A leader (the caller of [`run`]) and its spinning worker threads.
struct Team {
    shared: Arc<Shared>,
    busy: AtomicBool,
}

static TEAM: OnceLock<Option<Team>> = OnceLock::new();

thread_local! {
    /// Whether this thread is running a part of a team job.
    static IN_JOB: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is running a part of a [`run`] job (work it
/// starts then stays on this thread: the team is taken).
pub fn in_job() -> bool {
    IN_JOB.with(|c| c.get())
}

/// Runs `f(i)` marked as a part of a job; the mark is restored afterwards,
/// also when `f` panics.
fn as_part(f: &(dyn Fn(usize) + Sync), i: usize) {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_JOB.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(IN_JOB.with(|c| c.replace(true)));
    f(i);
}

/// Runs `f(0)`, ..., `f(parts - 1)`, spread over the calling thread and the
/// team's workers (at most [`crate::threads::available`] threads in all),
/// and returns when all have finished. A panic in any part is re-raised here.
pub fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let team = if parts > 1 && !in_job() { team() } else { None };
    let Some(team) = team.filter(|_| parts as u64 <= PART_MASK) else {
        (0..parts).for_each(|i| as_part(f, i));
        return;
    };
    if team.busy.swap(true, Ordering::Acquire) {
        (0..parts).for_each(|i| as_part(f, i));
        return;
    }
    team.lead(parts, f);
    team.busy.store(false, Ordering::Release);
}

fn team() -> Option<&'static Team> {
    TEAM.get_or_init(|| Team::start(crate::threads::available().saturating_sub(1)))
        .as_ref()
}

impl Team {
    fn start(workers: usize) -> Option<Team> {
        if workers == 0 {
            return None;
        }
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            parts: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        for id in 1..=workers {
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("bpnet-team-{id}"))
                .spawn(move || work(&s))
                .ok()?;
        }
        // Wait until every worker has set up its per-thread GEMM scratch, so
        // that no allocation happens later in the middle of training.
        while shared.ready.load(Ordering::Acquire) < workers {
            std::thread::yield_now();
        }
        Some(Team {
            shared,
            busy: AtomicBool::new(false),
        })
    }

    fn lead(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        // SAFETY: lifetime erasure; `lead` does not return before every part
        // has finished (the wait below), and no part can be claimed after
        // that, so the pointer is never used after `f` goes out of scope.
        let job: *const Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Job>(f) };
        // SAFETY: every part of the previous job was claimed and finished, so
        // no thread can claim one and read `job` until the publication below.
        unsafe { *s.job.get() = Some(job) };
        s.parts.store(parts, Ordering::Relaxed);
        s.done.store(0, Ordering::Relaxed);
        // The leader holds part 0 from the start; the others are claimable.
        let epoch = (s.state.load(Ordering::Relaxed) >> PART_BITS) + 1;
        s.state.store(epoch << PART_BITS | 1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        // The leader counts its own parts; `done` counts the workers'.
        let mut mine = 0;
        let mut failure = Ok(());
        let mut next = Some(0);
        while let Some(i) = next {
            let r = catch_unwind(AssertUnwindSafe(|| as_part(f, i)));
            mine += 1;
            if r.is_err() && failure.is_ok() {
                failure = r;
            }
            next = claim(s, epoch);
        }
        while s.done.load(Ordering::Acquire) < parts - mine {
            std::hint::spin_loop();
        }
        if let Err(p) = failure {
            resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a bpnet team worker panicked");
        }
    }
}

/// Claims the next unclaimed part of job `epoch`, if any.
fn claim(s: &Shared, epoch: u64) -> Option<usize> {
    let mut cur = s.state.load(Ordering::Acquire);
    loop {
        let next = (cur & PART_MASK) as usize;
        if cur >> PART_BITS != epoch || next >= s.parts.load(Ordering::Relaxed) {
            return None;
        }
        match s
            .state
            .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Some(next),
            Err(now) => cur = now,
        }
    }
}

/// A worker's loop: wait for a new job (spinning, then sleeping), then claim
/// and run its parts until none is left.
fn work(s: &Shared) {
    // Counted ready even if warming failed, so that `Team::start` never waits forever.
    let _ = catch_unwind(crate::tensor::warm_thread);
    s.ready.fetch_add(1, Ordering::Release);
    let mut seen = 0u64;
    loop {
        seen = wait_for_epoch(s, seen);
        while let Some(i) = claim(s, seen) {
            // SAFETY: a part of job `seen` was claimed, so the leader has
            // published `job` for it and keeps it alive until this part is
            // counted done.
            if let Some(job) = unsafe { *s.job.get() } {
                // SAFETY: as above.
                let f = unsafe { &*job };
                if catch_unwind(AssertUnwindSafe(|| as_part(f, i))).is_err() {
                    s.panicked.store(true, Ordering::Relaxed);
                }
            }
            s.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// Waits until the epoch differs from `seen`; returns the new one.
fn wait_for_epoch(s: &Shared, seen: u64) -> u64 {
    let epoch = || s.state.load(Ordering::Acquire) >> PART_BITS;
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let e = epoch();
        if e != seen {
            return e;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(256) && start.elapsed() > SPIN {
            let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, Ordering::SeqCst);
            while s.state.load(Ordering::SeqCst) >> PART_BITS == seen {
                g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            drop(g);
            s.sleepers.fetch_sub(1, Ordering::SeqCst);
            return epoch();
        }
    }
}

/// A mutable slice whose disjoint ranges the parts of a [`run`] job write.
pub(crate) struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: the parts only take disjoint ranges (the contract of `range`), so
// no element is accessed from two threads; `T: Send` lets elements be written
// from another thread.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Shares `s` for the duration of one job.
    pub(crate) fn new(s: &'a mut [T]) -> Self {
        SharedMut {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _slice: std::marker::PhantomData,
        }
    }

    /// The elements `r` of the slice.
    ///
    /// # Safety
    /// Ranges taken while another is alive must not overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, r: std::ops::Range<usize>) -> &'a mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "range {r:?} outside 0..{}",
            self.len
        );
        // SAFETY: in bounds (checked), and not aliased (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}

/// Runs `f` on disjoint ranges covering `0..len`: one range per thread when
/// `len` is long enough to profit ([`crate::threads::parts_for`]), else
/// `f(0..len)` on the calling thread.
pub(crate) fn for_ranges(len: usize, f: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
    let parts = crate::threads::parts_for(len);
    if parts == 1 {
        f(0..len);
    } else {
        run(parts, &|i| f(crate::threads::range(len, parts, i)));
    }
}
