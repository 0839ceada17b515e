//! Batch-normalization semantics: inference with running statistics, the
//! three momentum conventions, the paper's population statistics, and the
//! one-row batch error.

mod common;

use bpnet::layers::BatchNorm;
use bpnet::loss::{Loss, Target};
use bpnet::{
    BatchNormConfig, Error, Layer, Matrix, Mode, ModelSpec, Momentum, Optimizer, OptimizerConfig, Sequential, Trainer,
};

fn m(rows: usize, cols: usize, v: &[f64]) -> Matrix<f64> {
    Matrix::from_vec(rows, cols, v.to_vec()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn eval_uses_running_statistics_and_changes_nothing() {
    let mut bn = BatchNorm::<f64>::new("layers.0", 2, BatchNormConfig::default()).unwrap();
    bn.running.mean = vec![1.0, -2.0];
    bn.running.var = vec![4.0, 0.25];
    if let Some((g, b)) = &mut bn.affine {
        g.value = m(1, 2, &[2.0, 3.0]);
        b.value = m(1, 2, &[0.5, -1.0]);
    }
    let before = bn.running.clone();
    let x = m(1, 2, &[3.0, -1.0]);
    bn.forward(&x, Mode::Eval).unwrap();
    let eps = 1e-5;
    let want = [
        2.0 * (3.0 - 1.0) / (4.0f64 + eps).sqrt() + 0.5,
        3.0 * (-1.0 + 2.0) / (0.25f64 + eps).sqrt() - 1.0,
    ];
    for (o, w) in bn.output().as_slice().iter().zip(want) {
        assert!(close(*o, w), "{o} vs {w}");
    }
    assert_eq!(bn.running, before, "eval must not update running statistics");
    // A batch of one row is fine in eval mode.
    assert_eq!(bn.output().rows(), 1);
}

/// One feature, batches [1, 3] and [2, 6]: means 2 and 4, biased variances 1
/// and 4, unbiased 2 and 8.
fn two_batches() -> [Matrix<f64>; 2] {
    [m(2, 1, &[1.0, 3.0]), m(2, 1, &[2.0, 6.0])]
}

fn run(config: BatchNormConfig) -> (f64, f64) {
    let mut bn = BatchNorm::<f64>::new("layers.0", 1, config).unwrap();
    for b in two_batches() {
        bn.forward(&b, Mode::Train).unwrap();
    }
    assert_eq!(bn.running.batches, 2);
    (bn.running.mean[0], bn.running.var[0])
}

#[test]
fn torch_momentum_convention() {
    // r1 = 0.9*0 + 0.1*2 = 0.2; r2 = 0.9*0.2 + 0.1*4 = 0.58
    // v1 = 0.9*1 + 0.1*2 = 1.1; v2 = 0.9*1.1 + 0.1*8 = 1.79
    let (mean, var) = run(BatchNormConfig::default());
    assert!(close(mean, 0.58) && close(var, 1.79), "{mean} {var}");
}

#[test]
fn keras_momentum_convention_with_biased_variance() {
    // Keras(0.99): r = 0.99 r + 0.01 batch, biased variance.
    // r1 = 0.02, r2 = 0.99*0.02 + 0.04 = 0.0598; v1 = 0.99 + 0.01 = 1.0, v2 = 0.99 + 0.04 = 1.03
    let (mean, var) = run(BatchNormConfig::keras());
    assert!(close(mean, 0.0598) && close(var, 1.03), "{mean} {var}");
    // Keras(0.9) with unbiased variance is exactly PyTorch's 0.1.
    let k = run(BatchNormConfig {
        momentum: Momentum::Keras(0.9),
        ..BatchNormConfig::default()
    });
    let t = run(BatchNormConfig::default());
    assert!(close(k.0, t.0) && close(k.1, t.1));
}

#[test]
fn cumulative_momentum_is_the_plain_average() {
    let (mean, var) = run(BatchNormConfig {
        momentum: Momentum::Cumulative,
        ..BatchNormConfig::default()
    });
    assert!(close(mean, 3.0) && close(var, 5.0), "{mean} {var}");
}

#[test]
fn population_recalibration_follows_algorithm_2() {
    // E[x] = (2 + 4)/2 = 3; Var[x] = m/(m-1) * avg biased var = 2/1 * (1 + 4)/2 = 5.
    let mut model = Sequential::new(vec![Layer::BatchNorm(
        BatchNorm::<f64>::new("layers.0", 1, BatchNormConfig::default()).unwrap(),
    )]);
    let batches = two_batches();
    assert_eq!(model.recalibrate(batches.iter()).unwrap(), 2);
    let Layer::BatchNorm(bn) = &model.layers()[0] else {
        panic!()
    };
    assert!(
        close(bn.running.mean[0], 3.0) && close(bn.running.var[0], 5.0),
        "{:?}",
        bn.running
    );
    assert_eq!(bn.running.batches, 0, "recalibration is not training");
    // Then eval uses exactly those statistics.
    let out = model.forward(&m(1, 1, &[4.0]), Mode::Eval).unwrap().get(0, 0);
    assert!(close(out, 1.0 / (5.0f64 + 1e-5).sqrt()));
}

#[test]
fn recalibration_with_no_batches_is_an_error() {
    let mut model = Sequential::new(vec![Layer::BatchNorm(
        BatchNorm::<f64>::new("layers.0", 1, BatchNormConfig::default()).unwrap(),
    )]);
    let err = model.recalibrate(std::iter::empty()).unwrap_err();
    assert!(err.to_string().contains("no batch"), "{err}");
}

#[test]
fn a_training_batch_of_one_row_is_an_error_not_nan() {
    let spec = ModelSpec {
        dims: vec![3, 4, 2],
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    let model = Sequential::<f32>::from_spec(&spec, 1).unwrap();
    let mut t = Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::sgd(0.1)).unwrap(),
        Loss::CrossEntropy,
    );
    let x = Matrix::from_vec(1, 3, vec![1.0f32, 2.0, 3.0]).unwrap();
    let err = t.step(&x, Target::Labels(&[1])).unwrap_err();
    assert!(matches!(err, Error::BatchTooSmall { rows: 1, .. }), "{err:?}");
    assert!(
        err.to_string().contains("layers.1") && err.to_string().contains("at least 2 rows"),
        "{err}"
    );
    // Weights are untouched and the model still evaluates a single row.
    assert!(
        t.model
            .forward(&x, Mode::Eval)
            .unwrap()
            .as_slice()
            .iter()
            .all(|v| v.is_finite())
    );
}

#[test]
fn without_running_statistics_eval_uses_the_batch() {
    let config = BatchNormConfig {
        track_running_stats: false,
        ..BatchNormConfig::default()
    };
    let mut bn = BatchNorm::<f64>::new("layers.0", 1, config).unwrap();
    bn.forward(&m(2, 1, &[1.0, 3.0]), Mode::Eval).unwrap();
    let out = bn.output().as_slice().to_vec();
    assert!(close(out[0], -1.0 / (1.0f64 + 1e-5).sqrt()) && close(out[1], -out[0]));
    assert_eq!(bn.running.batches, 0);
}

#[test]
fn optimizers_never_touch_running_statistics() {
    let spec = ModelSpec {
        dims: vec![3, 4, 2],
        ..ModelSpec::paper_mnist(true, 0.5)
    };
    let model = Sequential::<f64>::from_spec(&spec, 3).unwrap();
    let mut t = Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::adam(0.1)).unwrap(),
        Loss::CrossEntropy,
    );
    let x = common::random_matrix(5, 3, 4);
    t.compute_gradients(&x, Target::Labels(&[0, 1, 1, 0, 1])).unwrap();
    let stats = |m: &Sequential<f64>| match &m.layers()[1] {
        Layer::BatchNorm(bn) => bn.running.clone(),
        _ => panic!("layer 1 is BN"),
    };
    let before = stats(&t.model);
    let mut names = Vec::new();
    t.model.visit_params(&mut |p| names.push(p.name.clone()));
    assert_eq!(
        names,
        [
            "layers.0.weight",
            "layers.1.weight",
            "layers.1.bias",
            "layers.3.weight",
            "layers.3.bias"
        ]
    );
    t.optimizer.step(&mut t.model).unwrap();
    assert_eq!(stats(&t.model), before);
}

#[test]
fn invalid_settings_are_rejected() {
    for c in [
        BatchNormConfig {
            eps: 0.0,
            ..BatchNormConfig::default()
        },
        BatchNormConfig {
            eps: f64::NAN,
            ..BatchNormConfig::default()
        },
        BatchNormConfig {
            momentum: Momentum::Torch(1.5),
            ..BatchNormConfig::default()
        },
    ] {
        assert!(BatchNorm::<f32>::new("layers.0", 2, c).is_err());
    }
}
