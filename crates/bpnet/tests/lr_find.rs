//! The learning-rate range test on a small synthetic problem: the model
//! given is untouched, rates grow exponentially per batch, the run stops
//! when the loss explodes, and the rate `--lr auto` picks (minimum / 10)
//! trains.

use bpnet::data::Dataset;
use bpnet::train::lr_find::{LrFindConfig, lr_find};
use bpnet::{Activation, Loss, Matrix, ModelSpec, OptimizerConfig, Sequential};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Three Gaussian blobs in 4 dimensions.
fn blobs(rows: usize, seed: u64) -> Dataset {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut x = Vec::with_capacity(rows * 4);
    let mut y = Vec::with_capacity(rows);
    for r in 0..rows {
        let c = r % 3;
        for j in 0..4 {
            let center = if j == c { 2.0 } else { 0.0 };
            x.push(center + rng.random_range(-1.0f32..1.0));
        }
        y.push(c);
    }
    Dataset::new(Matrix::from_vec(rows, 4, x).unwrap(), y, 3).unwrap()
}

fn model(bn: bool) -> Sequential<f32> {
    let spec = ModelSpec {
        dims: vec![4, 16, 3],
        activation: Activation::Tanh,
        ..ModelSpec::paper_mnist(bn, 0.3)
    };
    Sequential::from_spec(&spec, 3).unwrap()
}

fn params(m: &Sequential<f32>) -> Vec<u32> {
    let mut v = Vec::new();
    let mut m = m.clone();
    m.visit_params(&mut |p| v.extend(p.value.as_slice().iter().map(|x| x.to_bits())));
    v
}

#[test]
fn range_test_leaves_the_model_alone_and_stops_on_explosion() {
    let data = blobs(300, 1);
    for bn in [false, true] {
        let m = model(bn);
        let before = params(&m);
        let cfg = LrFindConfig {
            start_lr: 1e-4,
            end_lr: 1e4,
            steps: 80,
            batch_size: 20,
            ..LrFindConfig::default()
        };
        let r = lr_find(&m, &OptimizerConfig::sgd(0.1), Loss::CrossEntropy, &data, &cfg).unwrap();
        assert_eq!(params(&m), before, "the model changed");
        for w in r.lrs.windows(2) {
            let ratio = w[1] / w[0];
            assert!((ratio / (1e8f64).powf(1.0 / 79.0) - 1.0).abs() < 1e-9, "ratio {ratio}");
        }
        assert!(
            r.stopped_early,
            "bn {bn}: SGD up to lr 1e4 did not explode ({} batches)",
            r.lrs.len()
        );
        assert!(r.lrs.len() < 80);
        check_smoothing_and_stop_rule(&r, &cfg);
        let steep = r.steepest.expect("a steepest-descent rate");
        let min10 = r.min_div10.expect("a minimum/10 rate");
        println!(
            "bn {bn}: {} batches, steepest {steep:.3e}, min/10 {min10:.3e}",
            r.lrs.len()
        );
        assert!(steep > 1e-4 && steep < *r.lrs.last().unwrap());
        assert_eq!(r.suggestion(), Some(min10));
        // Training at the suggestion lowers the loss well below its start.
        let mut t = bpnet::Trainer::new(
            m.clone(),
            bpnet::Optimizer::new(OptimizerConfig::sgd(min10)).unwrap(),
            Loss::CrossEntropy,
        );
        let first = t.step(&data.features, bpnet::Target::Labels(labels(&data))).unwrap();
        let mut last = first;
        for _ in 0..60 {
            last = t.step(&data.features, bpnet::Target::Labels(labels(&data))).unwrap();
        }
        println!("bn {bn}: full-batch loss {first:.3} -> {last:.3} at lr {min10:.3e}");
        assert!(last < 0.7 * first, "bn {bn}: loss {first} -> {last}");
    }
}

/// The smoothed losses are the bias-corrected moving average of the raw
/// ones, and the run went on while the smoothed loss stayed within
/// `diverge` times its running minimum; a run that stopped early with a
/// finite last loss stopped on the point that broke that bound.
fn check_smoothing_and_stop_rule(r: &bpnet::train::lr_find::LrFindResult, cfg: &LrFindConfig) {
    assert_eq!((r.losses.len(), r.smoothed.len()), (r.lrs.len(), r.lrs.len()));
    let (mut avg, mut best) = (0.0, f64::INFINITY);
    for (i, (&l, &s)) in r.losses.iter().zip(&r.smoothed).enumerate() {
        avg = cfg.beta * avg + (1.0 - cfg.beta) * l;
        let want = avg / (1.0 - cfg.beta.powi(i as i32 + 1));
        assert!(
            (s - want).abs() <= 1e-12 * want.abs(),
            "point {i}: smoothed {s}, want {want}"
        );
        best = best.min(s);
        let last = i + 1 == r.lrs.len();
        if !last {
            assert!(
                s <= cfg.diverge * best,
                "point {i}: {s} above {} x {best}, yet the run went on",
                cfg.diverge
            );
        } else if r.stopped_early && r.lrs.len() < cfg.steps {
            // Stopped on the 4x rule here, or on a loss that was not finite at the next batch.
            println!("stopped at point {i}: smoothed {s}, {:.2} x the minimum", s / best);
        }
    }
}

/// A loss that grows without becoming infinite (cross-entropy of a network
/// without normalization, the rate rising to 1e3) stops on the `diverge`
/// rule itself: the last point is above 4 times the minimum, every loss
/// finite.
#[test]
fn a_growing_finite_loss_stops_at_four_times_its_minimum() {
    let data = blobs(300, 3);
    let spec = ModelSpec {
        dims: vec![4, 16, 3],
        activation: Activation::Tanh,
        ..ModelSpec::paper_mnist(false, 0.3)
    };
    let m = Sequential::<f32>::from_spec(&spec, 3).unwrap();
    let cfg = LrFindConfig {
        start_lr: 1e-3,
        end_lr: 1e3,
        steps: 100,
        batch_size: 20,
        ..LrFindConfig::default()
    };
    let r = lr_find(&m, &OptimizerConfig::sgd(0.1), Loss::CrossEntropy, &data, &cfg).unwrap();
    check_smoothing_and_stop_rule(&r, &cfg);
    assert!(r.stopped_early && r.lrs.len() < cfg.steps, "{} points", r.lrs.len());
    let best = r.smoothed.iter().copied().fold(f64::INFINITY, f64::min);
    let last = *r.smoothed.last().unwrap();
    assert!(last > cfg.diverge * best, "last {last}, minimum {best}");
    assert!(r.losses.iter().all(|l| l.is_finite()));
}

fn labels(d: &Dataset) -> &[usize] {
    match &d.targets {
        bpnet::data::Targets::Classes { labels, .. } => labels,
        _ => unreachable!(),
    }
}

#[test]
fn the_range_test_trains_with_the_label_smoothing_it_is_given() {
    let data = blobs(300, 2);
    let m = model(true);
    let base = LrFindConfig {
        start_lr: 1e-4,
        end_lr: 1.0,
        steps: 30,
        batch_size: 20,
        ..LrFindConfig::default()
    };
    let run = |eps: f64| {
        let cfg = LrFindConfig {
            label_smoothing: eps,
            ..base.clone()
        };
        lr_find(&m, &OptimizerConfig::sgd(0.1), Loss::CrossEntropy, &data, &cfg)
    };
    let (plain, smooth) = (run(0.0).unwrap(), run(0.2).unwrap());
    // Same batches and rates; the smoothed objective gives other losses.
    assert_eq!(plain.lrs, smooth.lrs);
    assert_ne!(plain.losses, smooth.losses);
    assert!(run(1.0).is_err());
    let err = lr_find(
        &m,
        &OptimizerConfig::sgd(0.1),
        Loss::Mse,
        &data,
        &LrFindConfig {
            label_smoothing: 0.1,
            ..base
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("classification"), "{err}");
}
