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

fn main() {
    let got = bpnet::set_threads(2);
    let nothing = |_: usize| {};
    per_call_us(1000, || bpnet::parallel::run(2, &nothing));
    println!(
        "empty 2-part job: {:.3} us ({got} threads)",
        per_call_us(200_000, || bpnet::parallel::run(2, &nothing))
    );
    for (m, k, n) in [(60, 784, 100), (100, 60, 784), (60, 100, 100)] {
        let (one, two) = (product(m, k, n, 1), product(m, k, n, 2));
        println!("{m} x {k} x {n}: 1 thread {one:.2} us, 2 threads {two:.2} us");
    }
}
