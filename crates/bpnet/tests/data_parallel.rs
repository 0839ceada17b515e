//! Data-parallel training (ranks as threads, no MPI): N ranks with a global
//! batch of B rows make the update of one process with batch B.
//!
//! With `--bn-sync local` the gradient equals that of one process that
//! normalizes each rank's block alone (ghost batches), within 1e-12.
//!
//! Bounds (per tensor, `max|a - b| / max|b|` over parameters and running
//! statistics): f64 1e-10 after 1 step and 1e-8 after 20 steps; f32 1e-5
//! after 1 step and, after 20 steps, the larger of 1e-5 and twice how far
//! rounding-sized changes carry one process (see `check`). Exact equality is not expected: the ranks' gradient sums
//! and the batch statistics are added in another order.

mod common;
mod distributed;

use bpnet::comm::{Comm, Reduce, block};
use bpnet::train::{BnSyncMode, replicas_agree};
use bpnet::{
    Activation, BnPlacement, Init, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Scalar, Sequential, Target,
    Trainer,
};
use distributed::{max_rel_diff, on_ranks, state};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

const ROWS: usize = 40;
const CLASSES: usize = 3;

fn spec(dropout: f64) -> ModelSpec {
    ModelSpec {
        dims: vec![5, 16, 12, CLASSES],
        activation: Activation::Tanh,
        batch_norm: BnPlacement::BeforeActivation,
        bn: Default::default(),
        dropout,
        init: Init::HeNormal,
    }
}

/// Data `[ROWS, 5]`, labels, and per step the row indices of the global
/// batch: 7 rows, except steps of 2 rows (on 3 ranks one rank has none).
fn problem<T: Scalar>() -> (Matrix<T>, Vec<usize>, Vec<Vec<usize>>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let x = (0..ROWS * 5)
        .map(|_| T::from_f64(rng.random_range(-2.0..2.0)))
        .collect();
    let labels = (0..ROWS).map(|_| rng.random_range(0..CLASSES)).collect();
    let batches = (0..20)
        .map(|s| {
            let mut idx: Vec<usize> = (0..ROWS).collect();
            idx.shuffle(&mut rng);
            idx.truncate(if s % 6 == 4 { 2 } else { 7 });
            idx
        })
        .collect();
    (Matrix::from_vec(ROWS, 5, x).unwrap(), labels, batches)
}

fn gather<T: Scalar>(x: &Matrix<T>, labels: &[usize], idx: &[usize]) -> (Matrix<T>, Vec<usize>) {
    let data = idx.iter().flat_map(|&i| x.row(i).to_vec()).collect();
    (
        Matrix::from_vec(idx.len(), x.cols(), data).unwrap(),
        idx.iter().map(|&i| labels[i]).collect(),
    )
}

fn trainer<T: Reduce>(opt: &OptimizerConfig, dropout: f64) -> Trainer<T> {
    let model = Sequential::<T>::from_spec(&spec(dropout), 9).unwrap();
    Trainer::new(model, Optimizer::new(opt.clone()).unwrap(), Loss::CrossEntropy)
}

/// States after 1 step and after all steps on one process (the plain step).
fn single<T: Reduce>(opt: &OptimizerConfig, dropout: f64) -> [Vec<(String, Vec<f64>)>; 2] {
    single_nudged::<T>(opt, dropout, 0)
}

/// [`single`] on inputs each moved by -1, 0 or +1 unit in the last place
/// (drawn from `nudge`; 0 moves none): how far rounding-sized changes carry
/// one process.
fn single_nudged<T: Reduce>(opt: &OptimizerConfig, dropout: f64, nudge: u64) -> [Vec<(String, Vec<f64>)>; 2] {
    let (mut x, labels, batches) = problem::<T>();
    if nudge > 0 {
        let ulp = if T::NAME == "f32" {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(nudge);
        for v in x.as_mut_slice() {
            *v *= T::from_f64(1.0 + ulp * rng.random_range(-1..=1) as f64);
        }
    }
    let mut t = trainer::<T>(opt, dropout);
    let mut first = Vec::new();
    for (s, idx) in batches.iter().enumerate() {
        let (xb, yb) = gather(&x, &labels, idx);
        t.step(&xb, Target::Labels(&yb)).unwrap();
        if s == 0 {
            first = state(&t.model);
        }
    }
    [first, state(&t.model)]
}

/// The same on the ranks of `comm`, each taking its block of every batch.
fn rank<T: Reduce>(comm: Arc<dyn Comm>, opt: &OptimizerConfig, dropout: f64) -> [Vec<(String, Vec<f64>)>; 2] {
    let (x, labels, batches) = problem::<T>();
    let mut t = trainer::<T>(opt, dropout);
    t.set_comm(comm.clone(), BnSyncMode::Global).unwrap();
    let mut first = Vec::new();
    for (s, idx) in batches.iter().enumerate() {
        let (lo, hi) = block(idx.len(), comm.rank(), comm.size());
        let (xb, yb) = gather(&x, &labels, &idx[lo..hi]);
        t.compute_gradients_part(&xb, Target::Labels(&yb), lo, idx.len())
            .unwrap();
        t.optimizer.step(&mut t.model).unwrap();
        if s == 0 {
            first = state(&t.model);
        }
    }
    [first, state(&t.model)]
}

fn optimizers() -> Vec<OptimizerConfig> {
    vec![
        OptimizerConfig::sgd(0.2),
        OptimizerConfig::momentum(0.05, 0.9, true),
        OptimizerConfig::adam(0.01),
    ]
}

/// Checks N in {2, 3} ranks against one process. `bounds` are the relative
/// bounds after 1 step and after 20 steps. Training amplifies rounding, so
/// after 20 steps the bound is at least twice the larger of two distances
/// of one process: to exact (f64) arithmetic, and to itself run on inputs
/// moved by one unit in the last place (3 draws). SGD with lr 0.2 here
/// moves one f32 process 2.9e-5 away from f64 and 4.2e-5 away under such
/// a move, and 2 ranks 6.4e-5 away from one f32 process. (On 16 draws of
/// the data, the largest ratio of the ranks' distance to this bound was
/// 0.77; with the bound of the f64 distance alone, 4 of the 16 exceeded it.)
fn check<T: Reduce>(bounds: [f64; 2], dropout: f64) {
    for opt in optimizers() {
        let reference = single::<T>(&opt, dropout);
        let rounding = max_rel_diff(&reference[1], &single::<f64>(&opt, dropout)[1]).0;
        let chaos = (1..=3)
            .map(|k| max_rel_diff(&single_nudged::<T>(&opt, dropout, k)[1], &reference[1]).0)
            .fold(0.0, f64::max);
        let bounds = [bounds[0], bounds[1].max(2.0 * rounding).max(2.0 * chaos)];
        for n in [2, 3] {
            let ranks = on_ranks(n, |c| rank::<T>(c, &opt, dropout));
            for (r, got) in ranks.iter().enumerate() {
                assert_eq!(
                    got[1], ranks[0][1],
                    "{:?}: rank {r} of {n} differs from rank 0",
                    opt.method
                );
                for (k, (bound, when)) in bounds.iter().zip(["1 step", "20 steps"]).enumerate() {
                    let (diff, name) = max_rel_diff(&got[k], &reference[k]);
                    assert!(
                        diff <= *bound,
                        "{} {:?}, {n} ranks, after {when}: {name} differs by {diff:e} (relative)",
                        T::NAME,
                        opt.method
                    );
                }
            }
        }
    }
}

#[test]
fn f64_ranks_make_the_single_process_update() {
    check::<f64>([1e-10, 1e-8], 0.0);
}

#[test]
fn f64_dropout_masks_follow_the_global_batch() {
    check::<f64>([1e-10, 1e-8], 0.25);
}

#[test]
fn f32_ranks_make_the_single_process_update() {
    check::<f32>([1e-5, 1e-5], 0.0);
}

#[test]
fn a_replica_that_differs_is_reported_by_every_rank() {
    let errors = on_ranks(3, |comm| {
        let mut model = Sequential::<f32>::from_spec(&spec(0.0), 1).unwrap();
        assert!(replicas_agree(&*comm, &model, "after step 3").is_ok());
        if comm.rank() == 2 {
            model
                .visit_params(&mut |p| p.value.as_mut_slice()[0] = f32::from_bits(p.value.as_slice()[0].to_bits() ^ 1));
        }
        replicas_agree(&*comm, &model, "after step 4").unwrap_err().to_string()
    });
    for e in errors {
        assert!(
            e.contains("parameters after step 4: rank 2 disagrees with rank 0"),
            "{e}"
        );
    }
}

/// Every parameter gradient of `t`, flat.
fn grads<T: Reduce>(t: &mut Trainer<T>) -> Vec<f64> {
    let mut g = Vec::new();
    t.model
        .visit_params(&mut |p| g.extend(p.grad.as_slice().iter().map(|v| v.to_f64())));
    g
}

#[test]
fn local_statistics_equal_ghost_batches_in_one_process() {
    let opt = OptimizerConfig::sgd(0.2);
    let (x, labels, batches) = problem::<f64>();
    let idx = &batches[0];
    for n in [2, 3] {
        // One process: each rank's block normalized alone (a ghost batch),
        // the blocks' gradients of their shares of the batch loss summed.
        let mut t = trainer::<f64>(&opt, 0.0);
        let mut ghost = Vec::new();
        for r in 0..n {
            let (lo, hi) = block(idx.len(), r, n);
            let (xb, yb) = gather(&x, &labels, &idx[lo..hi]);
            t.compute_gradients_part(&xb, Target::Labels(&yb), lo, idx.len())
                .unwrap();
            let g = grads(&mut t);
            if ghost.is_empty() {
                ghost = g;
            } else {
                ghost.iter_mut().zip(g).for_each(|(s, v)| *s += v);
            }
        }
        let on = |mode: BnSyncMode| {
            on_ranks(n, |c| {
                let mut t = trainer::<f64>(&opt, 0.0);
                t.set_comm(c.clone(), mode).unwrap();
                let (lo, hi) = block(idx.len(), c.rank(), c.size());
                let (xb, yb) = gather(&x, &labels, &idx[lo..hi]);
                t.compute_gradients_part(&xb, Target::Labels(&yb), lo, idx.len())
                    .unwrap();
                grads(&mut t)
            })
        };
        let scale = ghost.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = |g: &[f64]| g.iter().zip(&ghost).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
        for g in on(BnSyncMode::Local) {
            assert!(diff(&g) <= 1e-12, "{n} ranks, local statistics: {:e}", diff(&g));
        }
        // Global statistics are another model: its gradient differs.
        let global = on(BnSyncMode::Global);
        assert!(diff(&global[0]) > 1e-3, "{n} ranks: global sync equals ghost batches?");
    }
}

/// A network whose 16 x 4100 weight gradient reaches `OWN_SUM` (summed on
/// its own, into a spare that takes its place) while the others go through
/// the flat buffer.
fn wide_trainer() -> Trainer<f64> {
    let spec = ModelSpec {
        dims: vec![5, 16, 4100, CLASSES],
        ..spec(0.0)
    };
    let model = Sequential::<f64>::from_spec(&spec, 3).unwrap();
    Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::adam(1e-3)).unwrap(),
        Loss::CrossEntropy,
    )
}

#[test]
fn large_gradients_summed_on_their_own_equal_one_process() {
    let mut sizes = Vec::new();
    wide_trainer()
        .model
        .visit_params(&mut |p| sizes.push(p.grad.as_slice().len()));
    assert!(sizes.iter().any(|&n| n >= bpnet::train::OWN_SUM), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n < bpnet::train::OWN_SUM), "{sizes:?}");
    let (x, labels, batches) = problem::<f64>();
    // One process: the gradients of 4 steps (the spares are reused from the
    // second step on).
    let mut t = wide_trainer();
    let mut reference = Vec::new();
    for idx in &batches[..4] {
        let (xb, yb) = gather(&x, &labels, idx);
        t.compute_gradients(&xb, Target::Labels(&yb)).unwrap();
        reference.push(grads(&mut t));
        t.optimizer.step(&mut t.model).unwrap();
    }
    for n in [2, 3] {
        let ranks = on_ranks(n, |c| {
            let mut t = wide_trainer();
            t.set_comm(c.clone(), BnSyncMode::Global).unwrap();
            let mut got = Vec::new();
            for idx in &batches[..4] {
                let (lo, hi) = block(idx.len(), c.rank(), c.size());
                let (xb, yb) = gather(&x, &labels, &idx[lo..hi]);
                t.compute_gradients_part(&xb, Target::Labels(&yb), lo, idx.len())
                    .unwrap();
                got.push(grads(&mut t));
                t.optimizer.step(&mut t.model).unwrap();
            }
            got
        });
        for (r, got) in ranks.iter().enumerate() {
            assert_eq!(got, &ranks[0], "{n} ranks: rank {r} differs from rank 0");
            for (s, (g, want)) in got.iter().zip(&reference).enumerate() {
                let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let diff = g.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
                assert!(diff <= 1e-10, "{n} ranks, step {}: gradients differ by {diff:e}", s + 1);
            }
        }
    }
}
