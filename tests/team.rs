//! The spinning thread team: every part runs exactly once, concurrent callers
//! are safe, panics reach the caller and leave the team usable.

use bpnet::team;
use std::sync::atomic::{AtomicUsize, Ordering};

fn count_parts(parts: usize, jobs: usize) -> Vec<usize> {
    let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    for _ in 0..jobs {
        team::run(parts, &|i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
    }
    hits.iter().map(|h| h.load(Ordering::Relaxed)).collect()
}

#[test]
fn every_part_runs_once_per_job() {
    bpnet::set_threads(usize::MAX);
    for parts in 1..=4 {
        assert_eq!(count_parts(parts, 2000), vec![2000; parts], "{parts} parts");
    }
}

#[test]
fn concurrent_callers_each_get_all_their_parts() {
    bpnet::set_threads(usize::MAX);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| count_parts(2, 3000))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), vec![3000, 3000]);
        }
    });
}

#[test]
fn a_panicking_part_reaches_the_caller_and_the_team_keeps_working() {
    bpnet::set_threads(usize::MAX);
    for bad in [0, 1] {
        let r = std::panic::catch_unwind(|| {
            team::run(2, &|i| {
                if i == bad {
                    panic!("part {i} fails");
                }
            })
        });
        assert!(r.is_err(), "panic in part {bad} was lost");
        assert_eq!(count_parts(2, 100), vec![100, 100]);
    }
}

#[test]
fn nested_jobs_run_on_the_calling_thread() {
    bpnet::set_threads(usize::MAX);
    let inner = AtomicUsize::new(0);
    team::run(2, &|_| {
        assert!(team::in_job());
        team::run(2, &|_| {
            inner.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert!(!team::in_job());
    assert_eq!(inner.load(Ordering::Relaxed), 4);
}
