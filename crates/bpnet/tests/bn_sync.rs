//! Batch normalization synchronized across ranks (ranks run as threads):
//! an f64 finite-difference check of the synced backward, equality with one
//! layer over the whole batch, and the local (ghost-batch) mode.

mod common;
mod distributed;

use bpnet::comm::{Comm, block};
use bpnet::layers::{BatchNorm, BnSync};
use bpnet::{BatchNormConfig, Error, Matrix, Mode, Momentum};
use common::{random_matrix, rel_err};
use distributed::{on_ranks, rows};
use std::sync::Arc;

const F: usize = 3;

/// A layer with non-trivial gamma and beta.
fn layer() -> BatchNorm<f64> {
    let mut bn = BatchNorm::new("layers.1", F, BatchNormConfig::default()).unwrap();
    let (g, b) = bn.affine.as_mut().unwrap();
    g.value.as_mut_slice().copy_from_slice(&[1.3, -0.7, 0.4]);
    b.value.as_mut_slice().copy_from_slice(&[0.2, 0.1, -0.5]);
    bn
}

/// `sum over ranks of sum(w * bn(x))` for this rank's block `x` and weights `w`.
fn global_loss(comm: &dyn Comm, bn: &mut BatchNorm<f64>, x: &Matrix<f64>, w: &Matrix<f64>) -> f64 {
    bn.forward(x, Mode::Train).unwrap();
    let local: f64 = bn
        .output()
        .as_slice()
        .iter()
        .zip(w.as_slice())
        .map(|(y, w)| y * w)
        .sum();
    let mut s = [local];
    comm.all_reduce_f64(&mut s).unwrap();
    s[0]
}

/// Largest relative error between the synced analytic gradients (dx of this
/// rank's rows; dgamma, dbeta summed over ranks) and central differences of
/// the global loss.
fn gradcheck_rank(comm: Arc<dyn Comm>, m: usize) -> f64 {
    let (x, w) = (random_matrix(m, F, 11), random_matrix(m, F, 12));
    let (lo, hi) = block(m, comm.rank(), comm.size());
    let (xr, wr) = (rows(&x, lo, hi), rows(&w, lo, hi));
    let mut bn = layer();
    bn.set_sync(Some(BnSync::Global(comm.clone()))).unwrap();
    bn.forward(&xr, Mode::Train).unwrap();
    bn.backward(&xr, &wr, true).unwrap();
    let dx = bn.input_grad().clone();
    let mut dparams = Vec::new();
    bn.visit_params(&mut |p| dparams.extend_from_slice(p.grad.as_slice()));
    comm.all_reduce_f64(&mut dparams).unwrap();
    let h = 1e-5;
    let mut worst = 0.0f64;
    for gi in 0..m {
        for j in 0..F {
            let mine = (lo..hi).contains(&gi);
            let mut shifted = |d: f64| {
                let mut xp = xr.clone();
                if mine {
                    xp.row_mut(gi - lo)[j] += d;
                }
                global_loss(&*comm, &mut bn, &xp, &wr)
            };
            let num = (shifted(h) - shifted(-h)) / (2.0 * h);
            if mine {
                worst = worst.max(rel_err(dx.row(gi - lo)[j], num));
            }
        }
    }
    for (k, &analytic) in dparams.iter().enumerate() {
        let shifted = |d: f64| {
            let mut b = bn.clone();
            let (g, beta) = b.affine.as_mut().unwrap();
            let p = if k < F { g } else { beta };
            p.value.as_mut_slice()[k % F] += d;
            global_loss(&*comm, &mut b, &xr, &wr)
        };
        let num = (shifted(h) - shifted(-h)) / (2.0 * h);
        worst = worst.max(rel_err(analytic, num));
    }
    worst
}

#[test]
fn synced_backward_matches_finite_differences() {
    // (rows, ranks): uneven blocks, and a rank with no rows (2 rows on 3 ranks).
    for (m, n) in [(7, 2), (7, 3), (2, 3), (5, 4)] {
        let errs = on_ranks(n, |c| gradcheck_rank(c, m));
        let worst = errs.iter().fold(0.0f64, |a, &b| a.max(b));
        assert!(worst < 1e-7, "{m} rows on {n} ranks: max relative error {worst:e}");
    }
}

/// 2 ranks gather every rank's moments, 3 and 5 (one with a single row)
/// take the two fixed-size passes (`GATHER_RANKS`).
#[test]
fn global_sync_equals_one_layer_over_the_whole_batch() {
    for n in [2, 3, 5] {
        global_sync_on(n);
    }
}

fn global_sync_on(n: usize) {
    let m = 9;
    let (x, dy) = (random_matrix(m, F, 21), random_matrix(m, F, 22));
    let mut single = layer();
    single.forward(&x, Mode::Train).unwrap();
    single.backward(&x, &dy, true).unwrap();
    let results = on_ranks(n, |comm| {
        let (lo, hi) = block(m, comm.rank(), comm.size());
        let mut bn = layer();
        bn.set_sync(Some(BnSync::Global(comm.clone()))).unwrap();
        let xr = rows(&x, lo, hi);
        bn.forward(&xr, Mode::Train).unwrap();
        bn.backward(&xr, &rows(&dy, lo, hi), true).unwrap();
        let mut grads = Vec::new();
        bn.visit_params(&mut |p| grads.extend_from_slice(p.grad.as_slice()));
        comm.all_reduce_f64(&mut grads).unwrap();
        (
            lo,
            bn.output().clone(),
            bn.input_grad().clone(),
            grads,
            bn.running.clone(),
        )
    });
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
    let mut single_grads = Vec::new();
    single.visit_params(&mut |p| single_grads.extend_from_slice(p.grad.as_slice()));
    for (lo, out, dx, grads, running) in results {
        for r in 0..out.rows() {
            for j in 0..F {
                assert!(
                    close(out.row(r)[j], single.output().row(lo + r)[j]),
                    "y[{}, {j}]",
                    lo + r
                );
                assert!(
                    close(dx.row(r)[j], single.input_grad().row(lo + r)[j]),
                    "dx[{}, {j}]",
                    lo + r
                );
            }
        }
        grads
            .iter()
            .zip(&single_grads)
            .for_each(|(a, b)| assert!(close(*a, *b), "{a} vs {b}"));
        // Running variance with the global count: unbiased m/(m-1) over all 9 rows.
        for j in 0..F {
            assert!(close(running.mean[j], single.running.mean[j]));
            assert!(close(running.var[j], single.running.var[j]));
        }
    }
}

#[test]
fn local_sync_normalizes_each_block_and_averages_running_statistics() {
    let (m, n) = (7, 3);
    let x = random_matrix(m, F, 31);
    let results = on_ranks(n, |comm| {
        let (lo, hi) = block(m, comm.rank(), comm.size());
        let mut bn = layer();
        bn.set_sync(Some(BnSync::Local(comm.clone()))).unwrap();
        let xr = rows(&x, lo, hi);
        bn.forward(&xr, Mode::Train).unwrap();
        let mut alone = layer();
        alone.forward(&xr, Mode::Train).unwrap();
        assert_eq!(
            bn.output().as_slice(),
            alone.output().as_slice(),
            "rank {}",
            comm.rank()
        );
        bn.running.clone()
    });
    // Expected: momentum 0.1 towards the average of the block means and of
    // the unbiased block variances.
    let (mut mean, mut var) = ([0.0; F], [0.0; F]);
    for r in 0..n {
        let (lo, hi) = block(m, r, n);
        let k = (hi - lo) as f64;
        for j in 0..F {
            let col: Vec<f64> = (lo..hi).map(|i| x.row(i)[j]).collect();
            let mu = col.iter().sum::<f64>() / k;
            mean[j] += mu / n as f64;
            var[j] += col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / (k - 1.0) / n as f64;
        }
    }
    for running in &results {
        assert_eq!(running, &results[0], "running statistics differ between ranks");
        for j in 0..F {
            assert!((running.mean[j] - 0.1 * mean[j]).abs() < 1e-12);
            assert!((running.var[j] - (0.9 + 0.1 * var[j])).abs() < 1e-12);
        }
    }
}

#[test]
fn local_sync_with_a_one_row_block_fails_on_every_rank() {
    let x = random_matrix(4, F, 41);
    let errors = on_ranks(3, |comm| {
        let (lo, hi) = block(4, comm.rank(), comm.size());
        let mut bn = layer();
        bn.set_sync(Some(BnSync::Local(comm.clone()))).unwrap();
        bn.forward(&rows(&x, lo, hi), Mode::Train).unwrap_err()
    });
    for e in errors {
        assert!(
            matches!(&e, Error::BatchTooSmall { layer, .. } if layer.contains("rank 1")),
            "{e}"
        );
    }
}

/// f32 inputs whose mean is 10^4 times their spread (|mean| >> std): the
/// synced statistics on 2 ranks (the gathered per-rank triples) and 3 ranks
/// (two passes) are one f64 layer's over the same values, and the outputs
/// are as close to it as the f32 rounding of the mean allows: half an ulp
/// of 10^4 (4.9e-4) over the smallest column's sd (0.66 here), times
/// the largest |gamma| (1.3), plus the output's own rounding. The running
/// (batch) variance is within f32 rounding (1e-6 relative). `E[x^2] - E[x]^2` in f32 would lose every digit
/// here (E[x^2] is 10^8, whose ulp is 8).
#[test]
fn synced_statistics_keep_their_accuracy_when_the_mean_dwarfs_the_spread() {
    let m = 11;
    let spread = random_matrix(m, F, 31);
    let x32 = Matrix::<f32>::from_vec(m, F, spread.as_slice().iter().map(|v| (1e4 + v) as f32).collect()).unwrap();
    let x64 = Matrix::<f64>::from_vec(m, F, x32.as_slice().iter().map(|&v| f64::from(v)).collect()).unwrap();
    // The cumulative average: after one batch the running statistics are
    // the batch's mean and unbiased variance themselves.
    let config = BatchNormConfig {
        momentum: Momentum::Cumulative,
        ..BatchNormConfig::default()
    };
    let mut single = BatchNorm::<f64>::new("layers.1", F, config.clone()).unwrap();
    let (g, b) = single.affine.as_mut().unwrap();
    g.value.as_mut_slice().copy_from_slice(&[1.3, -0.7, 0.4]);
    b.value.as_mut_slice().copy_from_slice(&[0.2, 0.1, -0.5]);
    single.forward(&x64, Mode::Train).unwrap();
    let least_sd = single.running.var.iter().fold(f64::INFINITY, |a, &v| a.min(v.sqrt()));
    let bound = 1.3 * 4.9e-4 / least_sd + 1e-6;
    for n in [2, 3] {
        let results = on_ranks(n, |comm| {
            let (lo, hi) = block(m, comm.rank(), comm.size());
            let mut bn = BatchNorm::<f32>::new("layers.1", F, config.clone()).unwrap();
            let (g, b) = bn.affine.as_mut().unwrap();
            g.value.as_mut_slice().copy_from_slice(&[1.3, -0.7, 0.4]);
            b.value.as_mut_slice().copy_from_slice(&[0.2, 0.1, -0.5]);
            bn.set_sync(Some(BnSync::Global(comm.clone()))).unwrap();
            bn.forward(&rows(&x32, lo, hi), Mode::Train).unwrap();
            (lo, bn.output().clone(), bn.running.clone())
        });
        let mut worst_y = 0.0f64;
        let mut worst_var = 0.0f64;
        for (lo, out, running) in results {
            for r in 0..out.rows() {
                for j in 0..F {
                    let d = (f64::from(out.row(r)[j]) - single.output().row(lo + r)[j]).abs();
                    worst_y = worst_y.max(d);
                }
            }
            for j in 0..F {
                let rel = (f64::from(running.var[j]) - single.running.var[j]).abs() / single.running.var[j];
                worst_var = worst_var.max(rel);
            }
        }
        println!("{n} ranks: max |y - y_f64| {worst_y:.2e}, running variance relative error {worst_var:.2e}");
        assert!(
            worst_y <= bound,
            "{n} ranks: outputs off by {worst_y:e} (bound {bound:e})"
        );
        assert!(worst_var <= 1e-6, "{n} ranks: running variance off by {worst_var:e}");
    }
}
