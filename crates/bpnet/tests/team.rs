//! Stress tests of the thread team at 2 to 8 threads (more threads than
//! cores are allowed, so this runs the same on any machine): every part runs
//! exactly once while part counts change from job to job, concurrent
//! callers each get all their parts, the thread count changes under running
//! jobs, and a panic reaches the caller and leaves the team running parts in
//! parallel. The protocol itself is model-checked with loom
//! (`src/parallel/loom_tests.rs`).

use bpnet::parallel::{self, in_job, run};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The thread count is process-wide: tests that change it take turns.
static LOCK: Mutex<()> = Mutex::new(());

/// Rounds of jobs per check: fewer under Miri (`tools/miri.sh`), whose
/// interpreter runs these tests for data races in the real team.
const ROUNDS: usize = if cfg!(miri) { 4 } else { 300 };

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs jobs whose part counts cycle through `counts`; each part of each
/// job must run exactly once (a part counted in the wrong job, twice, or
/// after `run` returned shows up as a wrong count).
fn check_jobs(counts: &[usize], rounds: usize) {
    let max = counts.iter().copied().max().unwrap_or(0);
    let hits: Vec<AtomicUsize> = (0..max).map(|_| AtomicUsize::new(0)).collect();
    for round in 0..rounds {
        for &parts in counts {
            run(parts, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            for (i, h) in hits.iter().enumerate().take(parts) {
                let got = h.swap(0, Ordering::Relaxed);
                assert_eq!(got, 1, "round {round}: part {i} of a {parts}-part job ran {got} times");
            }
        }
    }
}

#[test]
fn every_part_runs_once_as_part_counts_change_on_2_to_8_threads() {
    let _g = lock();
    for threads in 2..=8 {
        assert_eq!(parallel::set_threads(threads), threads);
        // Fewer, equal and more parts than threads, growing and shrinking:
        // an 8-block GEMM after a 2-block one, an inference job after both.
        check_jobs(&[2, 8, 1, 3, 17, 2, 5, 4, 64, 7], ROUNDS);
    }
    parallel::set_threads(1);
}

#[test]
fn concurrent_callers_each_get_all_their_parts() {
    let _g = lock();
    for threads in [2, 4, 8] {
        parallel::set_threads(threads);
        std::thread::scope(|s| {
            for c in 0..4 {
                s.spawn(move || check_jobs(&[2 + c, 3, 9, 1], ROUNDS));
            }
        });
    }
    parallel::set_threads(1);
}

#[test]
fn changing_the_thread_count_under_running_jobs() {
    let _g = lock();
    parallel::set_threads(2);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                check_jobs(&[2, 6, 3], 10);
            }
        });
        for threads in [4, 1, 8, 3, 2, 6, 1, 5] {
            assert_eq!(parallel::set_threads(threads), threads);
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
    });
    parallel::set_threads(1);
}

/// The distinct threads that ran the parts of one job whose parts take a
/// millisecond each (long enough that idle workers claim some).
fn threads_used(parts: usize) -> usize {
    let ids = Mutex::new(HashSet::new());
    run(parts, &|_| {
        std::thread::sleep(Duration::from_millis(1));
        ids.lock().unwrap().insert(std::thread::current().id());
    });
    ids.into_inner().unwrap().len()
}

#[test]
fn a_panicking_part_reaches_the_caller_and_the_team_stays_parallel() {
    let _g = lock();
    // More threads than cores stall workers, and pacing would then rightly
    // run jobs on the caller alone: off here, so "serial" can only mean a
    // team stuck after the panic.
    parallel::pacing::set_enabled(false);
    for threads in [2, 4, 8] {
        parallel::set_threads(threads);
        for bad in [0, 1, threads - 1] {
            let r = std::panic::catch_unwind(|| {
                run(threads, &|i| {
                    if i == bad {
                        std::panic::panic_any(i);
                    }
                })
            });
            let payload = r.expect_err("the panic was lost");
            assert_eq!(payload.downcast_ref::<usize>(), Some(&bad), "another panic arrived");
            assert!(!in_job());
            // Still parallel: the job's parts run on more than one thread
            // (before the fix, a panic left the team marked busy and every
            // later job ran on the calling thread alone).
            let used = (0..20).map(|_| threads_used(16)).max().unwrap_or(0);
            assert!(
                used >= 2,
                "{threads} threads: after a panic only {used} thread ran parts"
            );
            check_jobs(&[threads, 3], 50);
        }
    }
    parallel::pacing::set_enabled(true);
    parallel::set_threads(1);
}

#[test]
fn nested_jobs_run_on_the_calling_thread() {
    let _g = lock();
    parallel::set_threads(4);
    let inner = AtomicUsize::new(0);
    run(4, &|_| {
        assert!(in_job());
        let me = std::thread::current().id();
        run(3, &|_| {
            assert_eq!(std::thread::current().id(), me);
            inner.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert!(!in_job());
    assert_eq!(inner.load(Ordering::Relaxed), 12);
    parallel::set_threads(1);
}

#[test]
fn more_threads_than_cores_are_granted() {
    let _g = lock();
    assert_eq!(parallel::set_threads(8), 8);
    assert_eq!(parallel::threads(), 8);
    assert_eq!(parallel::set_threads(0), 1);
    assert_eq!(parallel::set_threads(usize::MAX), parallel::MAX_THREADS);
    assert_eq!(parallel::set_threads(1), 1);
}
