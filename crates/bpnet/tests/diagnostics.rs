//! Training diagnostics: the statistics against hand-computed values, the
//! per-layer collector on hand-built networks, the warnings, and the whole
//! path through `fit` on a deep sigmoid network with and without BN.

use bpnet::data::{Dataset, bundled_mnist_dir, load_mnist};
use bpnet::layers::{ActivationLayer, Dense};
use bpnet::train::diagnostics::{
    ActivationDiagnostics, Diagnostics, EpochDiagnostics, GradNorm, Moments, Thresholds, WarningKind, grad_norms,
    l2_norm, percentile, percentiles, warnings,
};
use bpnet::train::{EpochRecord, FitConfig, Monitor, OnNan, fit, schedule::Schedule};
use bpnet::{Activation, Layer, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target, Trainer};

#[test]
fn percentiles_interpolate_linearly_between_ranks() {
    // Sorted [1, 2, 3, 4, 5]: position h = 4 q / 100.
    let v = [3.0, 1.0, 5.0, 2.0, 4.0];
    assert_eq!(percentile(&v, 15.0), Some(1.6)); // h = 0.6: 1 + 0.6 * (2 - 1)
    assert_eq!(percentile(&v, 50.0), Some(3.0));
    assert_eq!(percentile(&v, 85.0), Some(4.4)); // h = 3.4
    assert_eq!(percentile(&v, 0.0), Some(1.0));
    assert_eq!(percentile(&v, 100.0), Some(5.0));
    // [0, 10, 20, 30] (numpy.percentile gives 4.5, 15, 25.5).
    let p = percentiles(&[10.0, 0.0, 30.0, 20.0], &[15.0, 50.0, 85.0]).unwrap();
    for (got, want) in p.iter().zip([4.5, 15.0, 25.5]) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // Non-finite values are ignored; nothing finite gives None.
    assert_eq!(percentile(&[f64::NAN, 7.0], 50.0), Some(7.0));
    assert_eq!(percentile(&[f64::NAN], 50.0), None);
    assert_eq!(percentile(&[], 50.0), None);
}

#[test]
fn moments_and_norms_match_hand_computed_values() {
    let mut m = Moments::default();
    m.extend(&[2.0f32, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
    assert_eq!(m.count(), 8);
    assert!((m.mean() - 5.0).abs() < 1e-12);
    assert!((m.std() - 2.0).abs() < 1e-12);
    assert!(Moments::default().mean().is_nan());
    assert!((l2_norm(&[3.0, 4.0]) - 5.0).abs() < 1e-12);
}

/// `Dense(2 -> units, weight w, no bias) -> act -> Dense(units -> 1)`.
fn tiny(w: Vec<f32>, units: usize, act: Activation) -> Sequential<f32> {
    let dense = Dense::new("layers.0", Matrix::from_vec(units, 2, w).unwrap(), None).unwrap();
    let out = Dense::new("layers.2", Matrix::filled(1, units, 0.5), Some(Matrix::zeros(1, 1))).unwrap();
    Sequential::new(vec![
        Layer::Dense(dense),
        Layer::Activation(ActivationLayer::new(act).unwrap()),
        Layer::Dense(out),
    ])
}

fn record(epoch: usize) -> EpochRecord {
    EpochRecord {
        epoch,
        step: epoch,
        train_loss: 0.0,
        val_loss: None,
        val_metric: None,
        lr: 0.1,
        seconds: 0.0,
    }
}

fn one_step(model: Sequential<f32>, x: Vec<f32>, rows: usize) -> (Trainer<f32>, Diagnostics) {
    let mut t = Trainer::new(model, Optimizer::new(OptimizerConfig::sgd(0.1)).unwrap(), Loss::Mse);
    let x = Matrix::from_vec(rows, 2, x).unwrap();
    let y = Matrix::zeros(rows, 1);
    t.compute_gradients(&x, Target::Values(&y)).unwrap();
    let mut d = Diagnostics::new();
    d.step(&t.model, false);
    d.end_epoch(&record(1), &t.model).unwrap();
    (t, d)
}

#[test]
fn relu_statistics_and_dead_units() {
    // Identity weights: the ReLU sees x itself; unit 1 gets -1 and -3: dead.
    let (t, d) = one_step(
        tiny(vec![1.0, 0.0, 0.0, 1.0], 2, Activation::Relu),
        vec![1.0, -1.0, 2.0, -3.0],
        2,
    );
    let a = &d.records()[0].activations[0];
    assert_eq!(a.layer, "layers.1");
    assert_eq!(a.activation, "relu");
    // Outputs 1, 0, 2, 0: mean 0.75, variance 2.75 / 4.
    assert!((a.mean - 0.75).abs() < 1e-12);
    assert!((a.std - (2.75f64 / 4.0).sqrt()).abs() < 1e-9);
    assert_eq!(a.dead, Some(0.5));
    assert_eq!(a.saturated, None);
    // Gradient norms: one per parameter tensor, equal to the tensors' norms.
    let g = &d.records()[0].grad_norms;
    let names: Vec<&str> = g.iter().map(|n| n.param.as_str()).collect();
    assert_eq!(names, ["layers.0.weight", "layers.2.weight", "layers.2.bias"]);
    assert_eq!(g.iter().map(|n| n.weight).collect::<Vec<_>>(), [true, true, false]);
    for (n, (name, norm)) in g.iter().zip(grad_norms(&t.model)) {
        assert_eq!(n.param, name);
        assert!((n.norm - norm).abs() < 1e-12 && norm > 0.0);
    }
}

#[test]
fn sigmoid_saturation_fraction() {
    // Pre-activations 10 x: 10, 0, -10, 1 -> sigmoid 0.99995, 0.5, 0.00005, 0.73.
    let (_, d) = one_step(
        tiny(vec![10.0, 0.0], 1, Activation::Sigmoid),
        vec![1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.1, 0.0],
        4,
    );
    let a = &d.records()[0].activations[0];
    assert_eq!(a.saturated, Some(0.5));
    assert_eq!(a.dead, None);
}

fn diag(epoch: usize, first: f64, last: f64, saturated: f64, dead: f64) -> EpochDiagnostics {
    let act = |layer: &str, activation: &str, s: Option<f64>, d: Option<f64>| ActivationDiagnostics {
        layer: layer.into(),
        activation: activation.into(),
        mean: 0.5,
        std: 0.1,
        saturated: s,
        dead: d,
    };
    let grad = |param: &str, weight: bool, norm: f64| GradNorm {
        param: param.into(),
        weight,
        norm,
    };
    EpochDiagnostics {
        epoch,
        step: epoch * 10,
        train_metric: None,
        activations: vec![
            act("layers.1", "sigmoid", Some(saturated), None),
            act("layers.3", "relu", None, Some(dead)),
        ],
        grad_norms: vec![
            grad("layers.0.weight", true, first),
            grad("layers.0.bias", false, 1e-9),
            grad("layers.4.weight", true, last),
        ],
    }
}

#[test]
fn warnings_name_the_problem_the_layer_and_the_epochs() {
    let records = vec![
        diag(1, 1e-5, 1e-1, 0.9, 0.1),
        diag(2, 1e-6, 1e-1, 0.2, 0.7),
        diag(3, 1e-1, 1e-1, 0.8, 0.1),
        diag(4, 1e-1, f64::NAN, 0.1, 0.1),
    ];
    let w = warnings(&records, &Thresholds::default());
    let kinds: Vec<WarningKind> = w.iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        [
            WarningKind::VanishingGradients,
            WarningKind::Saturation,
            WarningKind::DeadUnits,
            WarningKind::ExplodingGradients
        ]
    );
    let vanish = &w[0];
    assert_eq!(
        (
            vanish.layer.as_str(),
            vanish.first_epoch,
            vanish.last_epoch,
            vanish.epochs
        ),
        ("layers.0.weight", 1, 2, 2)
    );
    assert!((vanish.worst - 1e-5).abs() < 1e-12, "worst ratio {}", vanish.worst);
    assert!(vanish.message.contains("vanishing gradients") && vanish.message.contains("batch normalization"));
    let sat = &w[1];
    assert_eq!(
        (sat.layer.as_str(), sat.first_epoch, sat.last_epoch, sat.epochs),
        ("layers.1", 1, 3, 2)
    );
    assert_eq!(sat.worst, 0.9);
    assert!(
        sat.message.contains("90% of the sigmoid outputs of layers.1"),
        "{}",
        sat.message
    );
    assert_eq!(
        (w[2].layer.as_str(), w[2].first_epoch, w[2].worst),
        ("layers.3", 2, 0.7)
    );
    assert!(w[2].message.contains("leaky_relu"));
    assert_eq!((w[3].layer.as_str(), w[3].first_epoch), ("layers.4.weight", 4));
    assert!(w[3].message.contains("Lower the learning rate"));
    // Healthy epochs give no warning.
    assert!(warnings(&[diag(1, 0.05, 0.1, 0.1, 0.0)], &Thresholds::default()).is_empty());
}

fn mnist_head(n: usize) -> Dataset {
    let (train, _) = load_mnist(&bundled_mnist_dir()).unwrap();
    train.head(n)
}

/// `epochs` of constant-rate SGD in batches of 60, seed 5, without
/// validation or checkpoints, non-finite batches handled by `on_nan`.
fn batches_of_60(epochs: usize, on_nan: OnNan) -> FitConfig {
    FitConfig {
        epochs,
        steps: None,
        batch_size: Some(60),
        schedule: Schedule::Constant,
        monitor: Monitor::ValLoss,
        early_stopping: None,
        seed: 5,
        on_nan,
        checkpoint_epochs: 0,
        checkpoint_steps: 0,
    }
}

/// Two epochs of a 6-hidden-layer sigmoid network on 600 MNIST images.
fn deep_run(data: &Dataset, batch_norm: bool) -> Diagnostics {
    let mut spec = ModelSpec::paper_mnist(batch_norm, 0.1);
    spec.dims = vec![784, 64, 64, 64, 64, 64, 64, 10];
    let model = Sequential::<f32>::from_spec(&spec, 3).unwrap();
    let mut trainer = Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::sgd(0.5)).unwrap(),
        Loss::CrossEntropy,
    );
    let cfg = batches_of_60(2, OnNan::Stop);
    let mut d = Diagnostics::new().with_train_sample(data.head(300));
    fit(&mut trainer, data, None, &cfg, &mut |e| d.observe(&e)).unwrap();
    d
}

#[test]
fn fit_events_reveal_vanishing_gradients_without_bn_only() {
    let data = mnist_head(600);
    let plain = deep_run(&data, false);
    assert_eq!(plain.records().len(), 2);
    let r = &plain.records()[1];
    assert_eq!((r.epoch, r.step), (2, 20));
    assert_eq!(r.activations.len(), 6);
    let metric = r.train_metric.unwrap();
    assert!((0.0..=1.0).contains(&metric));
    let kinds: Vec<WarningKind> = plain.warnings().iter().map(|w| w.kind).collect();
    assert!(kinds.contains(&WarningKind::VanishingGradients), "{kinds:?}");
    let bn = deep_run(&data, true);
    let kinds: Vec<WarningKind> = bn.warnings().iter().map(|w| w.kind).collect();
    assert!(!kinds.contains(&WarningKind::VanishingGradients), "{kinds:?}");
    // With BN the first layer's gradient is within 100x of the last one's.
    let g = &bn.records()[1].grad_norms;
    let w: Vec<f64> = g.iter().filter(|g| g.weight).map(|g| g.norm).collect();
    assert!(w[0] / w[w.len() - 1] > 1e-2, "{w:?}");
}

/// A finite gradient norm above the threshold (100) is a warning too, not
/// only a non-finite one; 100 itself is not.
#[test]
fn a_finite_gradient_norm_above_100_warns_of_exploding_gradients() {
    let t = Thresholds::default();
    let exploding = |last: f64| {
        warnings(&[diag(1, 50.0, last, 0.1, 0.0)], &t)
            .into_iter()
            .find(|w| w.kind == WarningKind::ExplodingGradients)
    };
    let w = exploding(500.0).expect("a norm of 500 warns");
    assert_eq!((w.layer.as_str(), w.first_epoch), ("layers.4.weight", 1));
    assert!(w.message.contains("Lower the learning rate"), "{}", w.message);
    assert!(exploding(100.5).is_some());
    assert!(exploding(100.0).is_none() && exploding(99.0).is_none());
}

/// Batches skipped for a non-finite loss or gradient (`OnNan::SkipBatch`)
/// had their gradients zeroed before the step was observed: they counted
/// as norms of 0, and a run that diverged read "no exploding gradients".
/// They count as infinite norms, which the exploding-gradient rule names.
#[test]
fn skipped_batches_count_as_non_finite_gradient_norms() {
    let data = mnist_head(240);
    let mut spec = ModelSpec::paper_mnist(false, 0.1);
    spec.dims = vec![784, 32, 10];
    spec.activation = Activation::Relu;
    let model = Sequential::<f32>::from_spec(&spec, 3).unwrap();
    let mut trainer = Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::sgd(1e30)).unwrap(),
        Loss::CrossEntropy,
    );
    let cfg = batches_of_60(1, OnNan::SkipBatch);
    let mut d = Diagnostics::new();
    let mut skipped = 0;
    let fitted = fit(&mut trainer, &data, None, &cfg, &mut |e| {
        if let bpnet::train::Event::Step { skipped: true, .. } = e {
            skipped += 1;
        }
        d.observe(&e)
    });
    // The weights the first step blew up give no finite outputs: the run
    // ends in an error, not a model that predicts NaN.
    match fitted {
        Err(bpnet::Error::Diverged { detail, .. }) => assert!(detail.contains("non-finite outputs"), "{detail}"),
        other => panic!("expected the divergence, got {other:?}"),
    }
    assert!(skipped > 0, "no batch was skipped: the test needs one");
    let norms = &d.records()[0].grad_norms;
    assert!(norms.iter().all(|g| !g.norm.is_finite()), "{norms:?}");
    let kinds: Vec<WarningKind> = d.warnings().iter().map(|w| w.kind).collect();
    assert!(kinds.contains(&WarningKind::ExplodingGradients), "{kinds:?}");
}

/// A collector saved mid-epoch and restored into a fresh one (as a resumed
/// run does from its checkpoint) continues exactly: the same records as
/// the collector that was never saved, an infinite norm of a skipped step
/// included (the JSON had no way to write it).
#[test]
fn a_saved_collector_continues_exactly_where_it_was() {
    let model = tiny(vec![1.0, 0.5, -0.25, 2.0], 2, Activation::Sigmoid);
    let mut t = Trainer::new(model, Optimizer::new(OptimizerConfig::sgd(0.1)).unwrap(), Loss::Mse);
    let x = Matrix::from_vec(3, 2, vec![1.0, -1.0, 0.3, 2.0, -3.0, 0.1]).unwrap();
    let y = Matrix::zeros(3, 1);
    t.compute_gradients(&x, Target::Values(&y)).unwrap();
    let mut whole = Diagnostics::new();
    whole.step(&t.model, false);
    whole.end_epoch(&record(1), &t.model).unwrap();
    whole.step(&t.model, true);
    // Saved here, mid-epoch 2, through JSON text as a checkpoint keeps it.
    let text = serde_json::to_string(&whole.saved()).unwrap();
    let mut resumed = Diagnostics::new();
    resumed.restore(&serde_json::from_str(&text).unwrap()).unwrap();
    for d in [&mut whole, &mut resumed] {
        d.step(&t.model, false);
        d.end_epoch(&record(2), &t.model).unwrap();
    }
    assert_eq!(resumed.records(), whole.records());
    assert!(whole.records()[1].grad_norms.iter().all(|g| g.norm == f64::INFINITY));
    assert!(resumed.restore(&serde_json::json!({"records": 3})).is_err());
}
