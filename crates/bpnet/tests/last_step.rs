//! The last optimizer step is checked as every other is: each step's loss
//! checks the update before it, but nothing came after the last one, and a
//! run whose last update overflowed returned a model that predicted NaN or
//! inf. `fit` now ends such a run with `Error::Diverged`, keeping the
//! weights from before that step (byte for byte those of a run one step
//! shorter, running statistics included) and writing no checkpoint of the
//! bad step; the validation rows' outputs are checked too, but not their
//! loss, which overflows f32 on far-out targets with the outputs fine.

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
    trainer_bn(lr, false)
}

fn trainer_bn(lr: f64, batch_norm: bool) -> Trainer<f32> {
    let mut spec = ModelSpec::paper_mnist(batch_norm, 0.1);
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

/// Every parameter and running statistic, as bits.
fn weights(t: &mut Trainer<f32>) -> Vec<u32> {
    let mut w = Vec::new();
    t.model.save_running(&mut w);
    t.model.visit_params(&mut |p| w.extend_from_slice(p.value.as_slice()));
    w.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_last_update_that_overflows_is_a_divergence_that_keeps_the_weights_before_it() {
    let data = rows();
    let mut short = trainer(1e4);
    fit(&mut short, &data, None, &full_batch(1, OnNan::Stop), &mut |_| Ok(())).unwrap();
    let mut long = trainer(1e4);
    let mut cfg = full_batch(2, OnNan::Stop);
    cfg.checkpoint_steps = 1;
    let mut checkpoints = Vec::new();
    let err = fit(&mut long, &data, None, &cfg, &mut |e| {
        if let bpnet::train::Event::Checkpoint { state, .. } = e {
            checkpoints.push(state.step);
        }
        Ok(())
    })
    .unwrap_err();
    // Step 2's checkpoint would have been resumed as a finished run.
    assert_eq!(checkpoints, vec![1]);
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
    assert_eq!(weights(&mut short), weights(&mut long));
    // A learning rate that trains still ends without an error.
    let mut fine = trainer(1e-2);
    fit(&mut fine, &data, None, &full_batch(2, OnNan::Stop), &mut |_| Ok(())).unwrap();
}

/// With batch normalization the last step also moved the running
/// statistics, which evaluation uses: they are put back too.
#[test]
fn the_kept_weights_include_the_running_statistics() {
    let data = rows();
    let cfg = |steps| FitConfig {
        batch_size: Some(50),
        ..full_batch(steps, OnNan::Stop)
    };
    let mut short = trainer_bn(10.0, true);
    fit(&mut short, &data, None, &cfg(2), &mut |_| Ok(())).unwrap();
    let mut long = trainer_bn(10.0, true);
    let err = fit(&mut long, &data, None, &cfg(3), &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { step, detail } = err else {
        panic!("{err}")
    };
    assert_eq!(step, 3, "{detail}");
    assert!(
        detail.contains("the last step's weights give non-finite outputs"),
        "{detail}"
    );
    assert!(detail.ends_with(bpnet::error::DIVERGED_KEPT), "{detail}");
    assert!(long.model.has_batch_norm());
    assert_eq!(weights(&mut short), weights(&mut long));
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
fn non_finite_validation_outputs_at_the_end_are_a_divergence() {
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
    assert!(detail.contains("non-finite outputs on the validation rows"), "{detail}");
}

#[test]
fn a_validation_loss_that_overflows_f32_with_finite_outputs_is_no_divergence() {
    // One validation target of 1e20: its squared error is beyond f32, the
    // network's outputs are not.
    let data = rows();
    let train = data.head(150);
    let val = data.subset(&(150..200).collect::<Vec<_>>());
    let bpnet::data::Targets::Values(t) = &val.targets else {
        unreachable!()
    };
    let mut y = t.as_slice().to_vec();
    y[7] = 1e20;
    let val = Dataset::regression(val.features.clone(), Matrix::from_vec(50, 1, y).unwrap()).unwrap();
    let mut cfg = full_batch(3, OnNan::Stop);
    cfg.steps = None;
    cfg.epochs = 3;
    let history = fit(&mut trainer(1e-2), &train, Some(&val), &cfg, &mut |_| Ok(())).unwrap();
    assert!(
        history
            .epochs
            .iter()
            .all(|e| e.val_loss.is_some_and(|l| l.is_infinite())),
        "{history:?}"
    );
}

/// 200 rows of 3 features, 3 classes (which third of x0 + x1 - x2 a row is in).
fn classes() -> Dataset {
    let d = rows();
    let labels = (0..d.len())
        .map(|r| {
            let x = d.features.row(r);
            let v = x[0] + x[1] - x[2];
            if v < -0.5 {
                0
            } else if v < 0.5 {
                1
            } else {
                2
            }
        })
        .collect();
    Dataset::new(d.features.clone(), labels, 3).unwrap()
}

fn classifier(lr: f64) -> Trainer<f32> {
    let mut spec = ModelSpec::paper_mnist(true, 0.1);
    spec.dims = vec![3, 16, 16, 3];
    spec.activation = Activation::Relu;
    let model = Sequential::<f32>::from_spec(&spec, 7).unwrap();
    Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::sgd(lr)).unwrap(),
        bpnet::Loss::CrossEntropy,
    )
}

/// A batch whose variance passes f32's range normalizes to finite outputs,
/// so the loss and the gradients stay finite, but the running variance
/// becomes inf. Training went on to the end with it, and the model could
/// not be saved ("holds a non-finite value"), after the whole run. It is a
/// divergence at the step that overflowed, keeping the weights and running
/// statistics from before it (those of the run one step shorter).
#[test]
fn a_running_variance_that_overflows_is_a_divergence_at_its_step() {
    let data = classes();
    let cfg = |steps| FitConfig {
        batch_size: Some(50),
        ..full_batch(steps, OnNan::Stop)
    };
    let mut long = classifier(1e4);
    let err = fit(&mut long, &data, None, &cfg(40), &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { step, detail } = err else {
        panic!("{err}")
    };
    assert!(
        detail.starts_with("the running variance of layers.4 (BatchNorm(16") && detail.contains(" holds inf"),
        "{detail}"
    );
    assert!(detail.ends_with(bpnet::error::DIVERGED_KEPT), "{detail}");
    assert!(long.model.non_finite_running().is_none());
    let mut short = classifier(1e4);
    fit(&mut short, &data, None, &cfg(step - 1), &mut |_| Ok(())).unwrap();
    assert_eq!(weights(&mut short), weights(&mut long));
    // What is kept can be saved (the overflowed model could not).
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::paper_mnist(true, 0.1);
    let path = dir.path().join("kept.safetensors");
    bpnet::io::save_model(
        &path,
        &ModelSpec {
            dims: vec![3, 16, 16, 3],
            activation: Activation::Relu,
            ..spec
        },
        &long.model,
        &Default::default(),
    )
    .unwrap();
    // With skip-batch the overflowing batches are skipped, as a non-finite loss's are.
    let mut skip = classifier(1e4);
    let r = fit(
        &mut skip,
        &data,
        None,
        &FitConfig {
            batch_size: Some(50),
            ..full_batch(40, OnNan::SkipBatch)
        },
        &mut |_| Ok(()),
    );
    assert!(skip.model.non_finite_running().is_none(), "{r:?}");
}
