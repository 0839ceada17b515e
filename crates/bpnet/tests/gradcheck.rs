//! Finite-difference gradient checks in f64 of every layer type and of whole
//! networks, running the same layer code as training. Bound: max relative
//! error (see `common::rel_err`) below 1e-6.

mod common;

use bpnet::layers::{ActivationLayer, BatchNorm, Dense, Dropout};
use bpnet::loss::{Loss, Target};
use bpnet::{Activation, BatchNormConfig, BnPlacement, Init, Layer, Matrix, Mode, ModelSpec, Sequential};
use common::*;

const BOUND: f64 = 1e-6;

const ACTIVATIONS: [Activation; 8] = [
    Activation::Identity,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Elu(1.0),
    Activation::Gelu,
    Activation::Softplus,
];

fn assert_check(what: &str, c: Check) {
    println!(
        "{what}: max relative error {:.2e} over {} entries (worst {})",
        c.max_rel, c.compared, c.worst
    );
    assert!(c.compared > 0, "{what}: nothing compared");
    assert!(
        c.max_rel < BOUND,
        "{what}: max relative error {:.3e} >= {BOUND:e} at {}",
        c.max_rel,
        c.worst
    );
}

fn dense(inp: usize, out: usize, bias: bool, seed: u64) -> Layer<f64> {
    let w = random_matrix(out, inp, seed);
    let b = bias.then(|| random_matrix(1, out, seed + 1));
    Layer::Dense(Dense::new("layers.0", w, b).unwrap())
}

fn bn(features: usize, config: BatchNormConfig, seed: u64) -> Layer<f64> {
    let mut bn = BatchNorm::new("layers.0", features, config).unwrap();
    if let Some((g, b)) = &mut bn.affine {
        g.value = random_matrix(1, features, seed);
        b.value = random_matrix(1, features, seed + 1);
    }
    Layer::BatchNorm(bn)
}

fn single(layer: Layer<f64>, rows: usize, cols: usize, out_cols: usize, mode: Mode, seed: u64) -> Check {
    let model = Sequential::new(vec![layer]);
    let x = random_matrix(rows, cols, seed);
    grad_check(&model, &x, mode, &projection_loss(rows, out_cols, seed + 7))
}

#[test]
fn dense_with_and_without_bias() {
    assert_check("dense+bias", single(dense(5, 4, true, 1), 6, 5, 4, Mode::Train, 2));
    assert_check("dense", single(dense(5, 4, false, 3), 6, 5, 4, Mode::Train, 4));
}

#[test]
fn batch_norm_training_affine_and_plain() {
    assert_check(
        "bn train affine",
        single(bn(4, BatchNormConfig::default(), 5), 7, 4, 4, Mode::Train, 6),
    );
    let plain = BatchNormConfig {
        affine: false,
        ..BatchNormConfig::default()
    };
    assert_check("bn train no affine", single(bn(4, plain, 7), 7, 4, 4, Mode::Train, 8));
    assert_check(
        "bn train keras",
        single(bn(3, BatchNormConfig::keras(), 9), 5, 3, 3, Mode::Train, 10),
    );
}

#[test]
fn batch_norm_eval_uses_fixed_statistics() {
    let mut layer = bn(4, BatchNormConfig::default(), 11);
    // Give the running statistics non-trivial values first.
    for s in 0..3 {
        layer.forward(&random_matrix(6, 4, 20 + s), Mode::Train).unwrap();
    }
    assert_check("bn eval", single(layer, 5, 4, 4, Mode::Eval, 12));
}

#[test]
fn every_activation() {
    for a in ACTIVATIONS {
        let layer = Layer::Activation(ActivationLayer::new(a).unwrap());
        assert_check(
            &format!("activation {}", a.name()),
            single(layer, 6, 5, 5, Mode::Train, 13),
        );
    }
}

#[test]
fn dropout_in_training_mode() {
    let layer = Layer::Dropout(Dropout::new(0.4, 99).unwrap());
    assert_check("dropout", single(layer, 6, 5, 5, Mode::Train, 14));
}

fn network(activation: Activation, batch_norm: BnPlacement, dropout: f64) -> Sequential<f64> {
    let spec = ModelSpec {
        dims: vec![5, 7, 6, 5, 3],
        activation,
        batch_norm,
        bn: BatchNormConfig::default(),
        dropout,
        init: Init::XavierNormal,
    };
    let mut m = Sequential::<f64>::from_spec(&spec, 21).unwrap();
    // Non-trivial gamma and beta.
    let mut k = 0;
    m.visit_params(&mut |p| {
        if p.kind != bpnet::layers::ParamKind::Weight {
            for (i, v) in p.value.as_mut_slice().iter_mut().enumerate() {
                *v += 0.1 * ((i + k) as f64).sin();
            }
        }
        k += 1;
    });
    m
}

fn ce_loss(labels: Vec<usize>) -> impl Fn(&Matrix<f64>) -> (f64, Matrix<f64>) {
    move |out: &Matrix<f64>| {
        let mut g = Matrix::default();
        let l = Loss::CrossEntropy
            .forward_backward(out, Target::Labels(&labels), &mut g)
            .unwrap();
        (l, g)
    }
}

#[test]
fn four_dense_layers_with_batch_norm_for_each_activation() {
    let x = random_matrix(8, 5, 30);
    for a in ACTIVATIONS {
        let model = network(a, BnPlacement::BeforeActivation, 0.0);
        let c = grad_check(&model, &x, Mode::Train, &ce_loss(vec![0, 1, 2, 0, 1, 2, 2, 1]));
        assert_check(&format!("net bn-before {}", a.name()), c);
    }
}

#[test]
fn networks_with_bn_after_without_bn_and_with_dropout() {
    let x = random_matrix(8, 5, 31);
    let labels = vec![2, 1, 0, 0, 1, 2, 1, 0];
    for (name, model) in [
        (
            "bn-after relu",
            network(Activation::Relu, BnPlacement::AfterActivation, 0.0),
        ),
        ("no-bn tanh", network(Activation::Tanh, BnPlacement::None, 0.0)),
        (
            "bn-before sigmoid dropout",
            network(Activation::Sigmoid, BnPlacement::BeforeActivation, 0.3),
        ),
    ] {
        assert_check(name, grad_check(&model, &x, Mode::Train, &ce_loss(labels.clone())));
    }
}

fn value_loss(loss: Loss, target: Matrix<f64>) -> impl Fn(&Matrix<f64>) -> (f64, Matrix<f64>) {
    move |out: &Matrix<f64>| {
        let mut g = Matrix::default();
        let l = loss.forward_backward(out, Target::Values(&target), &mut g).unwrap();
        (l, g)
    }
}

#[test]
fn every_loss_through_a_network() {
    let x = random_matrix(8, 5, 40);
    let model = network(Activation::Elu(1.0), BnPlacement::BeforeActivation, 0.0);
    let target = random_matrix(8, 3, 41);
    assert_check(
        "mse",
        grad_check(&model, &x, Mode::Train, &value_loss(Loss::Mse, target)),
    );
    let bits = Matrix::from_vec(8, 3, (0..24).map(|i| ((i * 7) % 3 == 0) as u8 as f64).collect()).unwrap();
    assert_check(
        "bce",
        grad_check(&model, &x, Mode::Train, &value_loss(Loss::BceWithLogits, bits)),
    );
}

fn smoothed_ce_loss(labels: Vec<usize>, eps: f64) -> impl Fn(&Matrix<f64>) -> (f64, Matrix<f64>) {
    move |out: &Matrix<f64>| {
        let mut g = Matrix::default();
        let l = Loss::CrossEntropy
            .forward_backward_smoothed(out, Target::Labels(&labels), &mut g, out.rows(), eps)
            .unwrap();
        (l, g)
    }
}

#[test]
fn cross_entropy_with_label_smoothing_through_a_network() {
    let x = random_matrix(8, 5, 42);
    let labels = vec![0, 2, 1, 1, 0, 2, 2, 0];
    for (a, eps) in [
        (Activation::Relu, 0.1),
        (Activation::Tanh, 0.35),
        (Activation::Gelu, 0.9),
    ] {
        let model = network(a, BnPlacement::BeforeActivation, 0.0);
        let c = grad_check(&model, &x, Mode::Train, &smoothed_ce_loss(labels.clone(), eps));
        assert_check(&format!("smoothed ce {eps} {}", a.name()), c);
    }
}

/// A case random testing found: one input feature, so BN sees `w * x` whose
/// batch variance can be tiny next to eps, making the loss sharply curved in
/// the first layer's weights (gradient ~24). Plain central differences were
/// off by 1.5e-5 relative here; the Richardson-extrapolated ones are not.
#[test]
fn near_singular_batch_norm_from_random_testing() {
    let spec = ModelSpec {
        dims: vec![1, 3, 1],
        activation: Activation::Gelu,
        batch_norm: BnPlacement::BeforeActivation,
        bn: BatchNormConfig::default(),
        dropout: 0.0,
        init: Init::XavierNormal,
    };
    let model = Sequential::<f64>::from_spec(&spec, 159).unwrap();
    let x = random_matrix(4, 1, 160);
    assert_check(
        "near-singular bn",
        grad_check(&model, &x, Mode::Train, &projection_loss(4, 1, 161)),
    );
}

/// The second case random testing found: a 1-wide sigmoid network with BN
/// after the activation, where the first bias's gradient (-1.9253e-4) is tiny
/// next to the loss, so central differences at step 1e-5 are limited by
/// roundoff (they gave -1.92528e-4, relative error 1.2e-6 against the
/// 1e-3-floored bound); at step 1e-2 the extrapolated difference matches the
/// analytic gradient to 11 digits. `grad_check` falls back to those steps.
#[test]
fn tiny_gradient_of_a_large_loss_from_random_testing() {
    let spec = ModelSpec {
        dims: vec![1, 1, 1, 1],
        activation: Activation::Sigmoid,
        batch_norm: BnPlacement::AfterActivation,
        bn: BatchNormConfig::default(),
        dropout: 0.0,
        init: Init::XavierNormal,
    };
    let model = Sequential::<f64>::from_spec(&spec, 389).unwrap();
    let x = random_matrix(5, 1, 390);
    assert_check(
        "tiny gradient, large loss",
        grad_check(&model, &x, Mode::Train, &projection_loss(5, 1, 391)),
    );
}
