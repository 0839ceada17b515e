//! A team of worker threads for fork-join work of a few microseconds.
//!
//! A training step of the paper's network is ~0.15 ms: its eleven matrix
//! products take 5-40 µs each, too short for a thread pool that puts idle
//! workers to sleep (waking one costs about as much as the product; measured
//! with rayon: 0.20 -> 0.32 ms per step with two threads). The workers here
//! spin for [`SPIN`] after each job before they sleep, so a burst of small
//! jobs (one training step) pays a hand-off of well under a microsecond.
//!
//! [`run`] splits a job into `parts` numbered pieces: the caller runs part 0
//! and the workers the others, and it returns when all are done. Which thread
//! runs which part does not change any result. If the team is already busy
//! (a concurrent caller) or the job has one part, the caller runs every part
//! itself.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
pub const SPIN: Duration = Duration::from_micros(200);

type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped by the leader to publish a job.
    epoch: AtomicU64,
    /// The job of the current epoch; written only while no worker reads it.
    job: UnsafeCell<Option<*const Job>>,
    parts: AtomicUsize,
    /// Workers that finished the current epoch.
    done: AtomicUsize,
    panicked: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written by the leader only between epochs (after every
// worker has reported done and before the next epoch is published with
// Release); workers read it only after observing the new epoch with Acquire.
// The pointee is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// A leader (the caller of [`run`]) and `workers` spinning threads.
struct Team {
    shared: Arc<Shared>,
    workers: usize,
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
    let team = if parts > 1 { team() } else { None };
    let Some(team) = team.filter(|t| t.workers + 1 >= parts) else {
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
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            parts: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        for id in 1..=workers {
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("bpnet-team-{id}"))
                .spawn(move || work(&s, id))
                .ok()?;
        }
        Some(Team {
            shared,
            workers,
            busy: AtomicBool::new(false),
        })
    }

    fn lead(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        // SAFETY: lifetime erasure; `lead` does not return before every
        // worker has finished with the job (the wait below), so the pointer
        // is never used after `f` goes out of scope.
        let job: *const Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Job>(f) };
        // SAFETY: no worker reads `job` now: all reported done for the last
        // epoch, and the next is published only below.
        unsafe { *s.job.get() = Some(job) };
        s.parts.store(parts, Ordering::Relaxed);
        s.done.store(0, Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| as_part(f, 0)));
        while s.done.load(Ordering::Acquire) < self.workers {
            std::hint::spin_loop();
        }
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a bpnet team worker panicked");
        }
    }
}

/// A worker's loop: wait for a new epoch (spinning, then sleeping), run its
/// part if the job has one, report done.
fn work(s: &Shared, id: usize) {
    let mut seen = 0u64;
    loop {
        seen = wait_for_epoch(s, seen);
        // SAFETY: the new epoch was observed with Acquire after the leader
        // wrote `job`; the leader does not touch it until we report done.
        let job = unsafe { *s.job.get() };
        if let Some(job) = job
            && id < s.parts.load(Ordering::Relaxed)
        {
            // SAFETY: the leader keeps the closure alive until we report done.
            let f = unsafe { &*job };
            if catch_unwind(AssertUnwindSafe(|| as_part(f, id))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

fn wait_for_epoch(s: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let e = s.epoch.load(Ordering::Acquire);
        if e != seen {
            return e;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(256) && start.elapsed() > SPIN {
            let g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, Ordering::SeqCst);
            let mut g = g;
            while s.epoch.load(Ordering::SeqCst) == seen {
                g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            drop(g);
            s.sleepers.fetch_sub(1, Ordering::SeqCst);
            return s.epoch.load(Ordering::Acquire);
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
