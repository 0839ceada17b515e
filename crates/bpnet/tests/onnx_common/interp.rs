//! A tiny reference interpreter, in f64, for the ONNX operators bpnet
//! writes. It reads the decoded protobuf (initializers from `raw_data`,
//! attributes by name), so the Rust tests check the serialized graph's
//! meaning without Python; ONNX Runtime is checked by `tests/onnx_runtime.rs`.

use bpnet::onnx::proto::{AttributeProto, ModelProto, NodeProto, TensorProto};
use bpnet::{Activation, Matrix, Scalar};
use std::collections::HashMap;

/// A value: shape and row-major data.
type Value = (Vec<usize>, Vec<f64>);

fn tensor(t: &TensorProto) -> Value {
    let raw = t.raw_data.as_deref().unwrap_or_default();
    let data = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    (t.dims.iter().map(|&d| d as usize).collect(), data)
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

/// `f(a, b)` element-wise, `b` a scalar, a `[cols]` vector broadcast over
/// the rows of `a`, or of `a`'s shape.
fn binary(a: &Value, b: &Value, f: impl Fn(f64, f64) -> f64) -> Value {
    let cols = *a.0.last().unwrap_or(&1);
    let data =
        a.1.iter()
            .enumerate()
            .map(|(i, &x)| {
                let y = match b.1.len() {
                    1 => b.1[0],
                    n if n == a.1.len() => b.1[i],
                    _ => b.1[i % cols],
                };
                f(x, y)
            })
            .collect();
    (a.0.clone(), data)
}

fn unary(a: &Value, f: impl Fn(f64) -> f64) -> Value {
    (a.0.clone(), a.1.iter().map(|&x| f(x)).collect())
}

/// Runs `model` on `x: [batch, in]`, returning its single output.
pub fn run(model: &ModelProto, x: &Matrix<f32>) -> Matrix<f64> {
    let graph = model.graph.as_ref().unwrap();
    let mut env: HashMap<String, Value> = HashMap::new();
    for t in &graph.initializer {
        env.insert(t.name.clone().unwrap(), tensor(t));
    }
    let input = graph.input[0].name.clone().unwrap();
    env.insert(
        input,
        (
            vec![x.rows(), x.cols()],
            x.as_slice().iter().map(|&v| v as f64).collect(),
        ),
    );
    for n in &graph.node {
        let get = |k: usize| {
            env.get(&n.input[k])
                .unwrap_or_else(|| panic!("no value {}", n.input[k]))
                .clone()
        };
        let op = n.op_type.as_deref().unwrap();
        let alpha = attr(n, "alpha").and_then(|a| a.f).map(|f| f as f64);
        let act = |a: Activation| unary(&get(0), |v| a.apply(v));
        let out = match op {
            "Gemm" => {
                assert_eq!(attr(n, "transB").and_then(|a| a.i), Some(1));
                let (a, w) = (get(0), get(1));
                let (rows, inner, outs) = (a.0[0], a.0[1], w.0[0]);
                assert_eq!(w.0[1], inner);
                let bias = (n.input.len() > 2 && !n.input[2].is_empty()).then(|| get(2));
                let mut y = vec![0.0; rows * outs];
                for r in 0..rows {
                    for o in 0..outs {
                        let dot: f64 = (0..inner).map(|k| a.1[r * inner + k] * w.1[o * inner + k]).sum();
                        y[r * outs + o] = dot + bias.as_ref().map_or(0.0, |b| b.1[o]);
                    }
                }
                (vec![rows, outs], y)
            }
            "BatchNormalization" => {
                let eps = attr(n, "epsilon").and_then(|a| a.f).unwrap_or(1e-5) as f64;
                let (x, g, b, m, v) = (get(0), get(1), get(2), get(3), get(4));
                let cols = x.0[1];
                let data =
                    x.1.iter()
                        .enumerate()
                        .map(|(i, &xv)| {
                            let j = i % cols;
                            g.1[j] * (xv - m.1[j]) / (v.1[j] + eps).sqrt() + b.1[j]
                        })
                        .collect();
                (x.0.clone(), data)
            }
            "LayerNormalization" => {
                assert_eq!(attr(n, "axis").and_then(|a| a.i), Some(-1));
                let eps = attr(n, "epsilon").and_then(|a| a.f).unwrap_or(1e-5) as f64;
                let (x, g, b) = (get(0), get(1), get(2));
                let cols = x.0[1];
                let mut data = Vec::with_capacity(x.1.len());
                for row in x.1.chunks(cols) {
                    let mean = row.iter().sum::<f64>() / cols as f64;
                    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / cols as f64;
                    let s = 1.0 / (var + eps).sqrt();
                    data.extend(row.iter().enumerate().map(|(j, v)| g.1[j] * (v - mean) * s + b.1[j]));
                }
                (x.0.clone(), data)
            }
            "Sigmoid" => act(Activation::Sigmoid),
            "Tanh" => act(Activation::Tanh),
            "Relu" => act(Activation::Relu),
            "LeakyRelu" => act(Activation::LeakyRelu(alpha.unwrap_or(0.01))),
            "Elu" => act(Activation::Elu(alpha.unwrap_or(1.0))),
            "Softplus" => act(Activation::Softplus),
            "Gelu" => act(Activation::Gelu),
            "Erf" => unary(&get(0), Scalar::erf),
            "IsNaN" => unary(&get(0), |v| if v.is_nan() { 1.0 } else { 0.0 }),
            "Where" => {
                let (c, a, b) = (get(0), get(1), get(2));
                let cols = c.0[1];
                let data = (0..c.1.len())
                    .map(|i| if c.1[i] != 0.0 { a.1[i % cols] } else { b.1[i] })
                    .collect();
                (c.0.clone(), data)
            }
            "Sub" => binary(&get(0), &get(1), |a, b| a - b),
            "Div" => binary(&get(0), &get(1), |a, b| a / b),
            "Mul" => binary(&get(0), &get(1), |a, b| a * b),
            "Add" => binary(&get(0), &get(1), |a, b| a + b),
            "Softmax" => {
                let x = get(0);
                let cols = x.0[1];
                let mut data = Vec::with_capacity(x.1.len());
                for row in x.1.chunks(cols) {
                    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
                    let s: f64 = e.iter().sum();
                    data.extend(e.iter().map(|v| v / s));
                }
                (x.0.clone(), data)
            }
            other => panic!("the reference interpreter has no {other}"),
        };
        env.insert(n.output[0].clone(), out);
    }
    let name = graph.output[0].name.clone().unwrap();
    let (shape, data) = env.remove(&name).unwrap_or_else(|| panic!("no output {name}"));
    Matrix::from_vec(shape[0], shape[1], data).unwrap()
}
