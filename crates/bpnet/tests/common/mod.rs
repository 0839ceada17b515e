//! Helpers shared by the integration tests: random data, finite-difference
//! gradient checks, and building networks from the PyTorch fixtures
//! (`tests/fixtures/torch_reference.json`, written by `tools/torch_reference.py`).
#![allow(dead_code)]

use bpnet::layers::{ActivationLayer, BatchNorm, Dense};
use bpnet::{Activation, BatchNormConfig, Layer, Matrix, Mode, Momentum, Scalar, Sequential};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::Value;

/// A `rows x cols` matrix with entries `scale * N(0,1)`-ish uniform noise plus a
/// per-column shift, seeded.
pub fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let data = (0..rows * cols)
        .map(|i| rng.random_range(-1.5..1.5) * (1.0 + (i % cols) as f64 * 0.3) + (i % cols) as f64 * 0.2)
        .collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

/// Number of parameters of `model`.
pub fn param_count(model: &mut Sequential<f64>) -> usize {
    let mut n = 0;
    model.visit_params(&mut |_| n += 1);
    n
}

/// Applies `f` to the `k`-th parameter's value slice.
pub fn with_param(model: &mut Sequential<f64>, k: usize, f: &mut dyn FnMut(&mut [f64])) {
    let mut i = 0;
    model.visit_params(&mut |p| {
        if i == k {
            f(p.value.as_mut_slice());
        }
        i += 1;
    });
}

/// A loss on the network output: `(value, dL/doutput)`.
pub type LossFn = dyn Fn(&Matrix<f64>) -> (f64, Matrix<f64>);

/// Result of a gradient check: the largest relative error and where it was.
#[derive(Debug)]
pub struct Check {
    pub max_rel: f64,
    pub worst: String,
    pub compared: usize,
}

/// Relative error `|a - n| / max(|a|, |n|, 1e-3)`. The floor handles entries
/// whose true gradient is (near) zero, e.g. a bias followed by batch norm:
/// central differences on an O(1) loss carry ~1e-16 / h ~ 1e-11 of rounding
/// noise, so such entries are compared absolutely (|a - n| < 1e-9 passes a
/// 1e-6 bound); every entry of magnitude above 1e-3 is compared relatively.
pub fn rel_err(a: f64, n: f64) -> f64 {
    (a - n).abs() / a.abs().max(n.abs()).max(1e-3)
}

/// Compares the analytic gradients of `loss(model(x))` (training mode) with
/// Richardson-extrapolated central differences (steps 1e-5 and 5e-6, and
/// 1e-2 and 5e-3 where the small steps are limited by roundoff) for
/// every parameter element and every
/// input element. Every evaluation runs on a fresh clone of `model`, so
/// dropout masks and running statistics are identical across evaluations.
pub fn grad_check(model: &Sequential<f64>, x: &Matrix<f64>, mode: Mode, loss: &LossFn) -> Check {
    let h = 1e-5;
    let eval = |m: &Sequential<f64>, x: &Matrix<f64>| {
        let mut m = m.clone();
        let out = m.forward(x, mode).unwrap().clone();
        loss(&out).0
    };
    let mut analytic = model.clone();
    let out = analytic.forward(x, mode).unwrap().clone();
    let (_, dout) = loss(&out);
    analytic.zero_grad();
    analytic.backward(x, &dout, true).unwrap();
    let mut grads: Vec<(String, Vec<f64>)> = Vec::new();
    analytic.visit_params(&mut |p| grads.push((p.name.clone(), p.grad.as_slice().to_vec())));
    let mut check = Check {
        max_rel: 0.0,
        worst: String::new(),
        compared: 0,
    };
    let mut record = |what: String, a: f64, n: f64| {
        let r = rel_err(a, n);
        check.compared += 1;
        if r > check.max_rel || check.worst.is_empty() {
            check.max_rel = check.max_rel.max(r);
            check.worst = format!("{what}: analytic {a:e}, numeric {n:e}");
        }
    };
    // Richardson extrapolation of central differences at steps h and h/2:
    // (4 D(h/2) - D(h)) / 3 cancels the h^2 error term, which matters where a
    // small batch makes batch normalization sharply curved. At h = 1e-5 the
    // estimate carries roundoff of about 1e-16 |L| / h; for a tiny gradient
    // entry of a large loss that alone can exceed the bound (found by the
    // property test: a 1-wide sigmoid network with BN after it, gradient
    // -1.9253e-4, where h = 1e-5 gives -1.92528e-4 and h = 1e-2 agrees with
    // the analytic value to 11 digits; `tests/gradcheck.rs` keeps that case).
    // So an entry that misses the bound at h = 1e-5 is also compared at
    // h = 1e-2 and the closer estimate is kept: a wrong analytic gradient
    // disagrees with both.
    let richardson = |d: &dyn Fn(f64) -> f64, h: f64| (4.0 * d(h / 2.0) - d(h)) / 3.0;
    let numeric = |d: &dyn Fn(f64) -> f64, a: f64| {
        let fine = richardson(d, h);
        if rel_err(a, fine) < 1e-7 {
            return fine;
        }
        let coarse = richardson(d, 1e-2);
        if rel_err(a, coarse) < rel_err(a, fine) {
            coarse
        } else {
            fine
        }
    };
    for (k, (name, g)) in grads.iter().enumerate() {
        for (e, &a) in g.iter().enumerate() {
            let d = |step: f64| {
                let (mut plus, mut minus) = (model.clone(), model.clone());
                with_param(&mut plus, k, &mut |v| v[e] += step);
                with_param(&mut minus, k, &mut |v| v[e] -= step);
                (eval(&plus, x) - eval(&minus, x)) / (2.0 * step)
            };
            record(format!("{name}[{e}]"), a, numeric(&d, a));
        }
    }
    let dx = analytic.input_grad().unwrap().clone();
    for e in 0..x.as_slice().len() {
        let d = |step: f64| {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp.as_mut_slice()[e] += step;
            xm.as_mut_slice()[e] -= step;
            (eval(model, &xp) - eval(model, &xm)) / (2.0 * step)
        };
        record(format!("input[{e}]"), dx.as_slice()[e], numeric(&d, dx.as_slice()[e]));
    }
    check
}

/// A loss `sum(out * r)` for a fixed random `r`: its gradient is `r`, so
/// every output element gets a distinct weight.
pub fn projection_loss(rows: usize, cols: usize, seed: u64) -> impl Fn(&Matrix<f64>) -> (f64, Matrix<f64>) {
    let r = random_matrix(rows, cols, seed);
    move |out: &Matrix<f64>| {
        let v = out.as_slice().iter().zip(r.as_slice()).map(|(a, b)| a * b).sum();
        (v, r.clone())
    }
}

// ---------- PyTorch fixtures ----------

/// The parsed fixture file.
pub fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fixture tensor `{shape, data}` as a matrix (vectors become `[1, n]`).
pub fn tensor<T: Scalar>(v: &Value) -> Matrix<T> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<T> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| T::from_f64(x.as_f64().unwrap()))
        .collect();
    let (rows, cols) = match shape.as_slice() {
        [n] => (1, *n),
        [r, c] => (*r, *c),
        other => panic!("unsupported fixture shape {other:?}"),
    };
    Matrix::from_vec(rows, cols, data).unwrap()
}

/// The activation of a fixture layer entry.
pub fn activation(layer: &Value) -> Activation {
    let p = layer["param"].as_f64();
    match layer["kind"].as_str().unwrap() {
        "identity" => Activation::Identity,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu(p.unwrap()),
        "elu" => Activation::Elu(p.unwrap()),
        "gelu" => Activation::Gelu,
        "softplus" => Activation::Softplus,
        k => panic!("unknown activation {k}"),
    }
}

/// Batch-norm config of a fixture layer entry.
pub fn bn_config(layer: &Value) -> BatchNormConfig {
    BatchNormConfig {
        eps: layer["eps"].as_f64().unwrap(),
        momentum: layer["momentum"].as_f64().map_or(Momentum::Cumulative, Momentum::Torch),
        affine: layer["affine"].as_bool().unwrap_or(true),
        ..BatchNormConfig::default()
    }
}

/// Builds the network described by a fixture's `layers` list with the
/// initial values in `params`.
pub fn build<T: Scalar>(layers: &Value, params: &Value) -> Sequential<T> {
    let mut out = Vec::new();
    for (i, l) in layers.as_array().unwrap().iter().enumerate() {
        let path = format!("layers.{i}");
        let p = |name: &str| tensor::<T>(&params[format!("{path}.{name}")]);
        let layer = match l["type"].as_str().unwrap() {
            "dense" => {
                Layer::Dense(Dense::new(&path, p("weight"), l["bias"].as_bool().unwrap().then(|| p("bias"))).unwrap())
            }
            "batch_norm" => {
                let mut bn = BatchNorm::new(&path, l["features"].as_u64().unwrap() as usize, bn_config(l)).unwrap();
                if let Some((g, b)) = &mut bn.affine {
                    g.value = p("weight");
                    b.value = p("bias");
                }
                bn.running.mean = p("running_mean").as_slice().to_vec();
                bn.running.var = p("running_var").as_slice().to_vec();
                Layer::BatchNorm(bn)
            }
            "activation" => Layer::Activation(ActivationLayer::new(activation(l)).unwrap()),
            t => panic!("unknown layer type {t}"),
        };
        out.push(layer);
    }
    Sequential::new(out)
}

/// Labels of a cross-entropy fixture target.
pub fn labels(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Checks `|a - b| <= rtol * max(|b|, 0.1 * max|b|) + atol` element-wise,
/// where `max|b|` is over the whole tensor; returns (max |a - b|, the largest
/// ratio of a difference to its allowance: <= 1 passes).
pub fn compare<T: Scalar>(a: &[T], b: &Matrix<f64>, rtol: f64, atol: f64) -> (f64, f64) {
    assert_eq!(a.len(), b.as_slice().len(), "length");
    let scale = b.as_slice().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut max_abs = 0.0f64;
    let mut worst = 0.0f64;
    for (x, &y) in a.iter().zip(b.as_slice()) {
        let d = (x.to_f64() - y).abs();
        max_abs = max_abs.max(d);
        worst = worst.max(d / (rtol * y.abs().max(0.1 * scale) + atol));
    }
    (max_abs, worst)
}

/// A model file's tensors by name: `(dtype, shape, bytes)`.
pub type RawTensors = std::collections::HashMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// Rewrites a model file through the safetensors crate after `edit` changes
/// its metadata or its tensors, and re-seals it (a fresh checksum), so that
/// a test reaches the check it is about.
pub fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut std::collections::HashMap<String, String>, &mut RawTensors),
) -> Vec<u8> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata = meta.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: RawTensors = st
        .tensors()
        .into_iter()
        .map(|(name, v)| (name, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut metadata, &mut tensors);
    let items = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.as_str(), format!("{d:?}"), s.as_slice(), b.as_slice()));
    let digest = bpnet::io::content_digest(items, &metadata);
    metadata.insert(bpnet::io::CHECKSUM_KEY.to_string(), digest);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).unwrap()
}
