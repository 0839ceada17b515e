//! The nodes of one layer: Dense as `Gemm`, batch normalization in
//! inference form, and the activations.

use super::export::GELU_OPSET;
use super::graph::{Graph, attr_float, attr_int, attr_string};
use crate::error::{Error, Result};
use crate::layers::{Activation, BatchNorm, Dense, LayerNorm};

/// `Gemm(x, W, b)` with `transB = 1` (W is `[out, in]`); no `C` input when
/// the layer has no bias. Constants are named `{prefix}{parameter name}`.
/// Returns the output name.
pub(super) fn dense(g: &mut Graph, d: &Dense<f32>, prefix: &str, path: &str, x: &str) -> Result<String> {
    let w = g.constant(
        &format!("{prefix}{}", d.weight.name),
        &[d.out_features(), d.in_features()],
        d.weight.value.as_slice(),
    );
    let b = match &d.bias {
        Some(b) => g.constant(&format!("{prefix}{}", b.name), &[d.out_features()], b.value.as_slice()),
        None => String::new(),
    };
    let inputs: Vec<&str> = if b.is_empty() { vec![x, &w] } else { vec![x, &w, &b] };
    Ok(g.node(
        "Gemm",
        &format!("{path}/Gemm"),
        &inputs,
        &format!("{path}.out"),
        vec![attr_int("transB", 1)],
    ))
}

/// `BatchNormalization` with the running statistics (inference form);
/// refused for a layer that normalizes with batch statistics at inference.
pub(super) fn batch_norm(g: &mut Graph, bn: &BatchNorm<f32>, path: &str, x: &str) -> Result<String> {
    if !bn.config().track_running_stats {
        return Err(Error::config(
            "onnx export",
            format!(
                "{}: batch normalization without running statistics (track_running_stats = false) uses each \
                 batch's statistics at inference, which ONNX BatchNormalization cannot express",
                bn.path()
            ),
        ));
    }
    let f = bn.features();
    let (gamma, beta) = match &bn.affine {
        Some((gm, bt)) => (gm.value.as_slice().to_vec(), bt.value.as_slice().to_vec()),
        None => (vec![1.0; f], vec![0.0; f]),
    };
    let scale = g.constant(&format!("{path}.weight"), &[f], &gamma);
    let bias = g.constant(&format!("{path}.bias"), &[f], &beta);
    let mean = g.constant(&format!("{path}.running_mean"), &[f], &bn.running.mean);
    let var = g.constant(&format!("{path}.running_var"), &[f], &bn.running.var);
    let eps = attr_float("epsilon", bn.config().eps as f32);
    let inputs = [x, scale.as_str(), bias.as_str(), mean.as_str(), var.as_str()];
    Ok(g.node(
        "BatchNormalization",
        &format!("{path}/BatchNormalization"),
        &inputs,
        &format!("{path}.out"),
        vec![eps],
    ))
}

/// `LayerNormalization` (opset 17) over the last axis with gain and bias
/// (ones and zeros when the layer is not affine). Returns the output name.
pub(super) fn layer_norm(g: &mut Graph, n: &LayerNorm<f32>, path: &str, x: &str) -> String {
    let f = n.features();
    let (gamma, beta) = match &n.affine {
        Some((gm, bt)) => (gm.value.as_slice().to_vec(), bt.value.as_slice().to_vec()),
        None => (vec![1.0; f], vec![0.0; f]),
    };
    let scale = g.constant(&format!("{path}.weight"), &[f], &gamma);
    let bias = g.constant(&format!("{path}.bias"), &[f], &beta);
    g.node(
        "LayerNormalization",
        &format!("{path}/LayerNormalization"),
        &[x, scale.as_str(), bias.as_str()],
        &format!("{path}.out"),
        vec![attr_int("axis", -1), attr_float("epsilon", n.eps() as f32)],
    )
}

/// The activation's operator (nothing for identity; GELU below opset 20 as
/// `x * 0.5 * (1 + Erf(x / sqrt 2))`). Returns the output name.
pub(super) fn activation(g: &mut Graph, kind: Activation, path: &str, x: &str, opset: i64) -> String {
    let out = format!("{path}.out");
    let mut unary = |op: &str, attrs| g.node(op, &format!("{path}/{op}"), &[x], &out, attrs);
    match kind {
        Activation::Identity => x.to_string(),
        Activation::Sigmoid => unary("Sigmoid", Vec::new()),
        Activation::Tanh => unary("Tanh", Vec::new()),
        Activation::Relu => unary("Relu", Vec::new()),
        Activation::LeakyRelu(s) => unary("LeakyRelu", vec![attr_float("alpha", s as f32)]),
        Activation::Elu(a) => unary("Elu", vec![attr_float("alpha", a as f32)]),
        Activation::Softplus => unary("Softplus", Vec::new()),
        Activation::Gelu if opset >= GELU_OPSET => unary("Gelu", vec![attr_string("approximate", "none")]),
        Activation::Gelu => {
            // x * 0.5 * (1 + erf(x / sqrt 2)), as bpnet computes it.
            let c = |g: &mut Graph, name: &str, v: f32| g.constant(&format!("{path}.{name}"), &[], &[v]);
            let inv_sqrt2 = c(g, "inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
            let (half, one) = (c(g, "half", 0.5), c(g, "one", 1.0));
            let n = |op: &str, k: usize| (format!("{path}/{op}{k}"), format!("{path}.gelu{k}"));
            let (n1, o1) = n("Mul", 1);
            let t = g.node("Mul", &n1, &[x, &inv_sqrt2], &o1, Vec::new());
            let (n2, o2) = n("Erf", 2);
            let t = g.node("Erf", &n2, &[&t], &o2, Vec::new());
            let (n3, o3) = n("Add", 3);
            let t = g.node("Add", &n3, &[&t, &one], &o3, Vec::new());
            let (n4, o4) = n("Mul", 4);
            let t = g.node("Mul", &n4, &[&t, &half], &o4, Vec::new());
            g.node("Mul", &format!("{path}/Mul5"), &[x, &t], &out, Vec::new())
        }
    }
}
