//! Hand-off cost of bpnet's thread team and the effect of splitting the
//! paper network's matrix products over two threads (docs/PERFORMANCE.md).
//!
//!     cargo run --release -p bpnet --example team_latency

use bpnet::Matrix;
use bpnet::tensor::{Op, Out, gemm};
use std::time::Instant;

fn per_call_us(iters: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / iters as f64
}

fn product(m: usize, k: usize, n: usize, threads: usize) -> f64 {
    bpnet::set_threads(threads);
    let a = Matrix::<f32>::filled(m, k, 0.5);
    let b = Matrix::<f32>::filled(n, k, 0.25);
    let mut c = Matrix::zeros(m, n);
    let mut step = || gemm(1.0, &a, Op::N, &b, Op::T, Out::Replace, &mut c).expect("shapes match");
    per_call_us(200, &mut step);
    per_call_us(5000, step)
}

/// `iters` dependent multiply-adds on the calling thread (see [`iters_for`]).
fn busy_work(iters: u64) {
    let mut x = 1.0f64;
    for _ in 0..iters {
        x = std::hint::black_box(x * 1.000_000_1 + 1e-9);
    }
    std::hint::black_box(x);
}

/// How many iterations of [`busy_work`] take about `us` microseconds.
fn iters_for(us: f64) -> u64 {
    let probe = 100_000;
    let t = per_call_us(20, || busy_work(probe));
    (probe as f64 * us / t).max(1.0) as u64
}

fn main() {
    let got = bpnet::set_threads(2);
    // With parts this short the caller often runs both before a worker
    // sees the job: this is the cost of publishing a job, not of handing
    // a part to another core.
    let nothing = |_: usize| {};
    per_call_us(1000, || bpnet::parallel::run(2, &nothing));
    println!(
        "empty 2-part job: {:.3} us ({got} threads; the caller may run both parts)",
        per_call_us(200_000, || bpnet::parallel::run(2, &nothing))
    );
    // Parts long enough that the worker takes one: the time over one
    // part's is the hand-off (publish, the worker's start, its done signal).
    bpnet::parallel::pacing::set_enabled(false);
    let iters = iters_for(4.0);
    let part = per_call_us(20_000, || busy_work(iters));
    let work = |_: usize| busy_work(iters);
    per_call_us(1000, || bpnet::parallel::run(2, &work));
    let two = per_call_us(20_000, || bpnet::parallel::run(2, &work));
    println!(
        "2-part job of {part:.2} us parts: {two:.2} us, so {:.2} us over one part (pacing off)",
        two - part
    );
    bpnet::parallel::pacing::set_enabled(true);
    for (m, k, n) in [(60, 784, 100), (100, 60, 784), (60, 100, 100)] {
        let (one, two) = (product(m, k, n, 1), product(m, k, n, 2));
        println!("{m} x {k} x {n}: 1 thread {one:.2} us, 2 threads {two:.2} us");
    }
}
