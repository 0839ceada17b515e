//! Helpers for the data-parallel tests: ranks as threads of this process
//! ([`bpnet::comm::ThreadGroup`]), so no MPI is needed.
#![allow(dead_code)]

use bpnet::comm::{Comm, ThreadGroup};
use bpnet::{Matrix, Scalar, Sequential};
use std::sync::Arc;

/// Runs `f(comm)` on `n` ranks, one thread each; results in rank order.
pub fn on_ranks<R: Send>(n: usize, f: impl Fn(Arc<dyn Comm>) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadGroup::new(n)
            .into_iter()
            .map(|c| {
                let f = &f;
                s.spawn(move || f(Arc::new(c)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Rows `lo..hi` of `x`.
pub fn rows<T: Scalar>(x: &Matrix<T>, lo: usize, hi: usize) -> Matrix<T> {
    let c = x.cols();
    Matrix::from_vec(hi - lo, c, x.as_slice()[lo * c..hi * c].to_vec()).unwrap()
}

/// Every parameter, then every running statistic, as `f64` tensors with names.
pub fn state<T: Scalar>(model: &Sequential<T>) -> Vec<(String, Vec<f64>)> {
    let mut out = Vec::new();
    for l in model.layers() {
        l.params(&mut |p| out.push((p.name.clone(), p.value.as_slice().iter().map(|v| v.to_f64()).collect())));
        if let bpnet::Layer::BatchNorm(b) = l {
            let f = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<_>>();
            out.push((format!("{}.running_mean", b.path()), f(&b.running.mean)));
            out.push((format!("{}.running_var", b.path()), f(&b.running.var)));
        }
    }
    out
}

/// Largest per-tensor relative difference `max|a - b| / max|b|` and its tensor.
pub fn max_rel_diff(a: &[(String, Vec<f64>)], b: &[(String, Vec<f64>)]) -> (f64, String) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0.0, String::new());
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
        let diff = x.iter().zip(y).fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        if diff / scale > worst.0 {
            worst = (diff / scale, name.clone());
        }
    }
    worst
}
