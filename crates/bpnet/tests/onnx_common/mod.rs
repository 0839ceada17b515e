//! Helpers shared by the ONNX export tests: networks with non-trivial batch
//! normalization state, and seeded random inputs.
#![allow(dead_code)]

pub mod interp;
pub mod reference;

use bpnet::{Activation, BnPlacement, Layer, Matrix, ModelSpec, Scalar, Sequential};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A spec `dims` with the given activation, BN placement and dropout, Xavier
/// initialization.
pub fn spec(dims: &[usize], activation: Activation, bn: BnPlacement, dropout: f64) -> ModelSpec {
    ModelSpec {
        dims: dims.to_vec(),
        activation,
        batch_norm: bn,
        dropout,
        init: bpnet::Init::XavierUniform,
        ..ModelSpec::paper_mnist(false, 0.1)
    }
}

/// The network of `spec` with every bias, BN scale and shift and running
/// statistic set to seeded random values (as after training), so that
/// folding and export have something to get wrong.
pub fn network<T: Scalar>(spec: &ModelSpec, seed: u64) -> Sequential<T> {
    let mut model = Sequential::<T>::from_spec(spec, seed).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xB0B);
    let mut draw = |lo: f64, hi: f64| T::from_f64(rng.random_range(lo..hi));
    for layer in model.layers_mut() {
        match layer {
            Layer::Dense(d) => {
                if let Some(b) = &mut d.bias {
                    b.value.as_mut_slice().iter_mut().for_each(|v| *v = draw(-0.5, 0.5));
                }
            }
            Layer::BatchNorm(bn) => {
                if let Some((g, b)) = &mut bn.affine {
                    g.value.as_mut_slice().iter_mut().for_each(|v| *v = draw(0.5, 1.5));
                    b.value.as_mut_slice().iter_mut().for_each(|v| *v = draw(-0.5, 0.5));
                }
                bn.running.mean.iter_mut().for_each(|v| *v = draw(-0.5, 0.5));
                bn.running.var.iter_mut().for_each(|v| *v = draw(0.3, 2.0));
                bn.running.batches = 100;
            }
            Layer::LayerNorm(ln) => {
                if let Some((g, b)) = &mut ln.affine {
                    g.value.as_mut_slice().iter_mut().for_each(|v| *v = draw(0.5, 1.5));
                    b.value.as_mut_slice().iter_mut().for_each(|v| *v = draw(-0.5, 0.5));
                }
            }
            _ => {}
        }
    }
    model
}

/// `rows x cols` values `U(lo, hi)`, seeded.
pub fn uniform<T: Scalar>(rows: usize, cols: usize, lo: f64, hi: f64, seed: u64) -> Matrix<T> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let data = (0..rows * cols)
        .map(|_| T::from_f64(rng.random_range(lo..hi)))
        .collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

/// Largest `|a - b|` over two equally shaped matrices, in f64.
pub fn max_abs_diff<T: Scalar>(a: &Matrix<T>, b: &Matrix<T>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| (x.to_f64() - y.to_f64()).abs())
        .fold(0.0, f64::max)
}

/// Largest `|a|`.
pub fn max_abs<T: Scalar>(a: &Matrix<T>) -> f64 {
    a.as_slice().iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max)
}

/// Every activation bpnet has, with non-default parameters where it has one.
pub fn activations() -> Vec<Activation> {
    vec![
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Elu(0.7),
        Activation::Gelu,
        Activation::Softplus,
        Activation::Identity,
    ]
}
