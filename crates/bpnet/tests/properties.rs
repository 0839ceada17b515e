//! Property tests over random shapes and values: batch normalization
//! standardizes every feature, gradient checks hold for random small
//! networks, and save -> load round trips keep outputs bit-identical.

mod common;

use bpnet::layers::BatchNorm;
use bpnet::{Activation, BatchNormConfig, BnPlacement, Init, Matrix, Mode, ModelSpec, Sequential};
use common::{grad_check, projection_loss};
use proptest::prelude::*;

/// 48 cases from a fixed seed, so that CI runs are reproducible; failures
/// are reported, not written to a regressions file (cases worth keeping
/// become fixed tests, as in `tests/gradcheck.rs`).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED_B9E7),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn matrix(rows: usize, cols: usize, values: &[f64]) -> Matrix<f64> {
    Matrix::from_vec(rows, cols, values[..rows * cols].to_vec()).unwrap()
}

proptest! {
    #![proptest_config(config())]

    /// Before the affine step, each feature of a training batch has mean 0
    /// and variance var/(var + eps) (1 up to eps), whatever the scale.
    #[test]
    fn batch_norm_standardizes_each_feature(
        rows in 2usize..24,
        cols in 1usize..6,
        scale in 0.1f64..1e3,
        shift in -1e3f64..1e3,
        raw in prop::collection::vec(-1.0f64..1.0, 24 * 6),
    ) {
        let x: Vec<f64> = raw.iter().map(|v| v * scale + shift).collect();
        let x = matrix(rows, cols, &x);
        let cfg = BatchNormConfig { affine: false, ..BatchNormConfig::default() };
        let mut bn = BatchNorm::<f64>::new("layers.0", cols, cfg).unwrap();
        bn.forward(&x, Mode::Train).unwrap();
        for j in 0..cols {
            let col: Vec<f64> = (0..rows).map(|r| x.get(r, j)).collect();
            let mean = col.iter().sum::<f64>() / rows as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
            let y: Vec<f64> = (0..rows).map(|r| bn.output().get(r, j)).collect();
            let ym = y.iter().sum::<f64>() / rows as f64;
            let yv = y.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / rows as f64;
            prop_assert!(ym.abs() < 1e-9, "feature {j}: mean {ym}");
            prop_assert!((yv - var / (var + 1e-5)).abs() < 1e-9, "feature {j}: variance {yv}, input variance {var}");
        }
    }

    /// Finite differences agree with backpropagation (max relative error
    /// below 1e-6) on random small networks with smooth activations and any
    /// BN placement.
    #[test]
    fn gradients_of_random_networks(
        widths in prop::collection::vec(1usize..5, 1..3),
        inputs in 1usize..4,
        outputs in 1usize..4,
        rows in 3usize..7,
        act in prop::sample::select(vec![Activation::Sigmoid, Activation::Tanh, Activation::Gelu, Activation::Softplus, Activation::Identity]),
        bn in prop::sample::select(vec![BnPlacement::None, BnPlacement::BeforeActivation, BnPlacement::AfterActivation]),
        seed in 0u64..1000,
    ) {
        let mut dims = vec![inputs];
        dims.extend(widths);
        dims.push(outputs);
        let spec = ModelSpec { dims, activation: act, batch_norm: bn, bn: Default::default(), dropout: 0.0, init: Init::XavierNormal };
        let model = Sequential::<f64>::from_spec(&spec, seed).unwrap();
        let x = common::random_matrix(rows, inputs, seed + 1);
        let check = grad_check(&model, &x, Mode::Train, &projection_loss(rows, outputs, seed + 2));
        prop_assert!(check.max_rel < 1e-6, "{spec:?}: {check:?}");
    }

    /// A model saved and loaded again gives bit-identical eval outputs.
    #[test]
    fn save_load_round_trip_is_exact(
        widths in prop::collection::vec(1usize..12, 0..3),
        inputs in 1usize..6,
        outputs in 1usize..5,
        act in prop::sample::select(vec![Activation::Relu, Activation::Sigmoid, Activation::Elu(0.7), Activation::LeakyRelu(0.2)]),
        bn in prop::sample::select(vec![BnPlacement::None, BnPlacement::BeforeActivation, BnPlacement::AfterActivation]),
        train_steps in 0usize..3,
        seed in 0u64..1000,
    ) {
        let mut dims = vec![inputs];
        dims.extend(widths);
        dims.push(outputs);
        let spec = ModelSpec { dims, activation: act, batch_norm: bn, bn: Default::default(), dropout: 0.0, init: Init::HeNormal };
        let mut model = Sequential::<f32>::from_spec(&spec, seed).unwrap();
        let x: Matrix<f32> = common::random_matrix(5, inputs, seed).cast();
        for _ in 0..train_steps {
            model.forward(&x, Mode::Train).unwrap(); // moves the running statistics
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        bpnet::io::save_model(&path, &spec, &model, &Default::default()).unwrap();
        let mut loaded = bpnet::io::load_model(&path).unwrap().model;
        let a: Vec<u32> = model.forward(&x, Mode::Eval).unwrap().as_slice().iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = loaded.forward(&x, Mode::Eval).unwrap().as_slice().iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(a, b);
    }
}
