//! The last optimizer step is checked as every other is: each step's loss
//! checks the update before it, but nothing came after the last one, and a
//! run whose last update overflowed returned a model that predicted NaN or
//! inf. `fit` now ends such a run with `Error::Diverged`, keeping the
//! weights from before that step (byte for byte those of a run one step
//! shorter); a non-finite validation loss is never the best epoch.

use bpnet::data::Dataset;
use bpnet::train::{FitConfig, Monitor, OnNan, fit, schedule::Schedule};
use bpnet::{Activation, Error, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Trainer};

/// 200 rows of 3 features, target 1 x0 + 2 x1 + 3 x2 (deterministic).
fn rows() -> Dataset {
    let n = 200;
    let x: Vec<f32> = (0..n * 3).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let y: Vec<f32> = x.chunks(3).map(|r| r[0] + 2.0 * r[1] + 3.0 * r[2]).collect();
    Dataset::regression(Matrix::from_vec(n, 3, x).unwrap(), Matrix::from_vec(n, 1, y).unwrap()).unwrap()
}

fn trainer(lr: f64) -> Trainer<f32> {
    let mut spec = ModelSpec::paper_mnist(false, 0.1);
    spec.dims = vec![3, 16, 16, 1];
    spec.activation = Activation::Relu;
    let model = Sequential::<f32>::from_spec(&spec, 7).unwrap();
    Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::sgd(lr)).unwrap(),
        bpnet::Loss::Mse,
    )
}

fn full_batch(steps: usize, on_nan: OnNan) -> FitConfig {
    FitConfig {
        epochs: 1,
        steps: Some(steps),
        batch_size: None,
        schedule: Schedule::Constant,
        monitor: Monitor::ValLoss,
        early_stopping: None,
        seed: 1,
        on_nan,
        checkpoint_epochs: 0,
        checkpoint_steps: 0,
    }
}

fn weights(t: &mut Trainer<f32>) -> Vec<f32> {
    let mut w = Vec::new();
    t.model.visit_params(&mut |p| w.extend_from_slice(p.value.as_slice()));
    w
}

#[test]
fn a_last_update_that_overflows_is_a_divergence_that_keeps_the_weights_before_it() {
    let data = rows();
    let mut short = trainer(1e4);
    fit(&mut short, &data, None, &full_batch(1, OnNan::Stop), &mut |_| Ok(())).unwrap();
    let mut long = trainer(1e4);
    let err = fit(&mut long, &data, None, &full_batch(2, OnNan::Stop), &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { step, detail } = err else {
        panic!("{err}")
    };
    assert_eq!(step, 2);
    assert!(
        detail.contains("the last step's weights give non-finite outputs"),
        "{detail}"
    );
    assert!(detail.ends_with(bpnet::error::DIVERGED_KEPT), "{detail}");
    // The weights kept are those before step 2: the one-step run's.
    let (a, b) = (weights(&mut short), weights(&mut long));
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // A learning rate that trains still ends without an error.
    let mut fine = trainer(1e-2);
    fit(&mut fine, &data, None, &full_batch(2, OnNan::Stop), &mut |_| Ok(())).unwrap();
}

#[test]
fn a_skipped_last_step_keeps_no_weights_to_go_back_to() {
    // SGD at 1e30: the first update blows the weights up, later batches
    // are skipped; nothing finite is left, and the error does not claim
    // that weights were kept.
    let data = rows();
    let mut t = trainer(1e30);
    let err = fit(&mut t, &data, None, &full_batch(3, OnNan::SkipBatch), &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { detail, .. } = err else {
        panic!("{err}")
    };
    assert!(
        detail.starts_with("the trained weights give non-finite outputs"),
        "{detail}"
    );
    assert!(!detail.ends_with(bpnet::error::DIVERGED_KEPT), "{detail}");
}

#[test]
fn a_non_finite_validation_loss_at_the_end_is_a_divergence() {
    let data = rows();
    let (train, val) = (data.head(150), data.subset(&(150..200).collect::<Vec<_>>()));
    let mut cfg = full_batch(2, OnNan::Stop);
    cfg.steps = None;
    cfg.epochs = 2;
    let mut t = trainer(1e4);
    let err = fit(&mut t, &train, Some(&val), &cfg, &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { detail, .. } = err else {
        panic!("{err}")
    };
    assert!(detail.contains("validation loss of"), "{detail}");
}
