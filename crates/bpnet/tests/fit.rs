//! The training loop: early stopping restores the best epoch's weights,
//! schedules set the learning rate, a one-row last batch with BN is dropped
//! with a note, full-batch gradient descent works.

use bpnet::data::Dataset;
use bpnet::train::schedule::Schedule;
use bpnet::train::{EarlyStopping, Event, FitConfig, Monitor, OnNan, evaluate, fit};
use bpnet::{Activation, BnPlacement, Init, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Trainer};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// y = sin(3 x0) + noise: few rows, so a wide network overfits.
fn noisy(rows: usize, seed: u64) -> Dataset {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x: Vec<f32> = (0..rows * 2).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..rows)
        .map(|r| (3.0 * x[2 * r]).sin() + rng.random_range(-0.5..0.5))
        .collect();
    Dataset::regression(
        Matrix::from_vec(rows, 2, x).unwrap(),
        Matrix::from_vec(rows, 1, y).unwrap(),
    )
    .unwrap()
}

fn trainer(bn: bool, opt: OptimizerConfig) -> Trainer<f32> {
    let spec = ModelSpec {
        dims: vec![2, 128, 128, 1],
        activation: Activation::Relu,
        batch_norm: if bn {
            BnPlacement::BeforeActivation
        } else {
            BnPlacement::None
        },
        bn: Default::default(),
        dropout: 0.0,
        init: Init::HeNormal,
    };
    Trainer::new(
        Sequential::from_spec(&spec, 3).unwrap(),
        Optimizer::new(opt).unwrap(),
        Loss::Mse,
    )
}

fn config(epochs: usize) -> FitConfig {
    FitConfig {
        epochs,
        steps: None,
        batch_size: Some(8),
        schedule: Schedule::Constant,
        monitor: Monitor::ValLoss,
        early_stopping: None,
        seed: 1,
        on_nan: OnNan::Stop,
        checkpoint_epochs: 0,
        checkpoint_steps: 0,
    }
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let (train, val) = (noisy(24, 1), noisy(200, 2));
    let mut t = trainer(false, OptimizerConfig::adam(0.01));
    let cfg = FitConfig {
        early_stopping: Some(EarlyStopping {
            patience: 5,
            min_delta: 0.0,
        }),
        ..config(400)
    };
    let h = fit(&mut t, &train, Some(&val), &cfg, &mut |_| Ok(())).unwrap();
    assert!(
        h.stopped_early,
        "24 noisy rows and 33k parameters should overfit within 400 epochs"
    );
    let best = &h.epochs[h.best_epoch - 1];
    assert_eq!(
        h.epochs.len(),
        h.best_epoch + 5 + 1,
        "stops patience+1 epochs after the best"
    );
    let min = h
        .epochs
        .iter()
        .map(|r| r.val_loss.unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best.val_loss.unwrap(), min);
    let now = evaluate(&mut t.model, &val, Loss::Mse, 1000).unwrap().loss;
    assert_eq!(now, min, "the model holds the best epoch's weights");
}

#[test]
fn plateau_and_step_schedules_set_the_rate() {
    let (train, val) = (noisy(24, 3), noisy(50, 4));
    let mut t = trainer(true, OptimizerConfig::sgd(0.1));
    let cfg = FitConfig {
        schedule: Schedule::Step { every: 2, gamma: 0.5 },
        ..config(5)
    };
    let h = fit(&mut t, &train, Some(&val), &cfg, &mut |_| Ok(())).unwrap();
    let lrs: Vec<f64> = h.epochs.iter().map(|r| r.lr).collect();
    assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);

    let mut t = trainer(false, OptimizerConfig::adam(0.05));
    let cfg = FitConfig {
        schedule: Schedule::Plateau {
            factor: 0.5,
            patience: 2,
        },
        ..config(200)
    };
    let h = fit(&mut t, &train, Some(&val), &cfg, &mut |_| Ok(())).unwrap();
    let last = h.epochs.last().unwrap().lr;
    assert!(
        last < 0.05,
        "validation loss of an overfitting net plateaus, so the rate must drop: {last}"
    );
    // Every rate is 0.05 times a power of 0.5.
    assert!(h.epochs.iter().all(|r| ((r.lr / 0.05).log2()).fract().abs() < 1e-9));
}

#[test]
fn one_row_last_batch_with_bn_is_dropped_with_a_note() {
    let train = noisy(17, 5); // 17 = 2 * 8 + 1
    let mut t = trainer(true, OptimizerConfig::sgd(0.01));
    let mut steps = 0;
    let h = fit(&mut t, &train, None, &config(3), &mut |e| {
        if let Event::Step { .. } = e {
            steps += 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(steps, 6, "two full batches per epoch");
    assert!(
        h.notes.iter().any(|n| n.contains("last batch of 1 row")),
        "{:?}",
        h.notes
    );
}

#[test]
fn full_batch_gradient_descent_lowers_the_loss() {
    let train = noisy(64, 6);
    let mut t = trainer(false, OptimizerConfig::sgd(0.05));
    let cfg = FitConfig {
        batch_size: None,
        ..config(50)
    };
    let h = fit(&mut t, &train, None, &cfg, &mut |_| Ok(())).unwrap();
    assert_eq!(h.epochs.last().unwrap().step, 50, "one step per epoch");
    assert!(
        h.epochs[49].train_loss < 0.7 * h.epochs[0].train_loss,
        "{} -> {}",
        h.epochs[0].train_loss,
        h.epochs[49].train_loss
    );
}

/// A step refused for its target (a label out of range, too few labels,
/// targets of another shape) leaves the model as it was: the forward pass
/// had already moved the batch-norm running statistics and their count.
#[test]
fn a_refused_step_leaves_the_running_statistics_alone() {
    use bpnet::{Layer, Target};
    let spec = ModelSpec {
        dims: vec![7, 13, 3],
        activation: Activation::Relu,
        batch_norm: BnPlacement::BeforeActivation,
        bn: Default::default(),
        dropout: 0.0,
        init: Init::HeNormal,
    };
    let mut t = Trainer::new(
        Sequential::from_spec(&spec, 1).unwrap(),
        Optimizer::new(OptimizerConfig::sgd(0.1)).unwrap(),
        Loss::CrossEntropy,
    );
    let running = |t: &Trainer<f32>| -> Vec<(Vec<u32>, u64)> {
        let layers = t.model.layers().iter();
        layers
            .filter_map(|l| match l {
                Layer::BatchNorm(bn) => Some((
                    bn.running
                        .mean
                        .iter()
                        .chain(&bn.running.var)
                        .map(|v| v.to_bits())
                        .collect(),
                    bn.running.batches,
                )),
                _ => None,
            })
            .collect()
    };
    let x = Matrix::filled(4, 7, 0.25f32);
    let before = running(&t);
    let values = Matrix::zeros(4, 3);
    let refused: [(Target<'_, f32>, &str); 3] = [
        (Target::Labels(&[0, 1, 3, 0]), "label 3"),
        (Target::Labels(&[0, 1]), "labels"),
        (Target::Values(&values), "needs integer class labels"),
    ];
    for (target, says) in refused {
        let err = t.step(&x, target).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
        assert_eq!(running(&t), before, "{says}: the running statistics moved");
    }
    t.step(&x, Target::Labels(&[0, 1, 2, 0])).unwrap();
    assert_ne!(running(&t), before);
}

/// A NaN or negative `min_delta` is refused (NaN stopped a run whose
/// validation loss still fell after 4 epochs, restoring epoch 1).
#[test]
fn early_stopping_needs_a_finite_non_negative_min_delta() {
    for min_delta in [f64::NAN, -0.1, f64::INFINITY] {
        let cfg = FitConfig {
            early_stopping: Some(EarlyStopping { patience: 2, min_delta }),
            ..config(10)
        };
        let err = cfg.validate(100, 10).unwrap_err().to_string();
        assert!(err.contains("min-delta"), "{min_delta}: {err}");
    }
    let cfg = FitConfig {
        early_stopping: Some(EarlyStopping {
            patience: 2,
            min_delta: 0.0,
        }),
        ..config(10)
    };
    assert!(cfg.validate(100, 10).is_ok());
}

/// Accuracy takes one label per row: 2 labels for 4 rows gave 1.0 (the
/// rows cut to the labels, the hits divided by the labels).
#[test]
fn accuracy_needs_one_label_per_row() {
    let ev = bpnet::train::Evaluation {
        loss: 0.0,
        outputs: Matrix::from_vec(4, 2, vec![1., 0., 1., 0., 0., 1., 0., 1.]).unwrap(),
    };
    assert!(
        ev.accuracy(&[0, 0])
            .unwrap_err()
            .to_string()
            .contains("accuracy labels")
    );
    assert_eq!(ev.accuracy(&[0, 0, 0, 0]).unwrap(), 0.5);
}
