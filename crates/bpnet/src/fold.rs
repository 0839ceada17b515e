//! Folding batch normalization into the neighbouring Dense layer, for
//! inference.
//!
//! At inference, batch normalization with running (or population) statistics
//! is the per-feature affine map `y = s * x + t` with
//! `s = gamma / sqrt(var + eps)` and `t = beta - mean * s` (Ioffe & Szegedy
//! 2015, Algorithm 2). An affine map next to a Dense layer `z = W u + b`
//! (`W: [out, in]`) merges into it:
//!
//! - BN after the Dense layer (the paper's `g(BN(W u))`): per output row `j`,
//!   `W'[j, :] = s_j W[j, :]` and `b'_j = s_j b_j + t_j = (b_j - mean_j) s_j + beta_j`
//!   (`b = 0` when the Dense layer has no bias);
//! - BN before a Dense layer (BN after the activation, possibly with dropout
//!   in between, which is the identity at inference): per input column `k`,
//!   `W'[:, k] = W[:, k] s_k` and `b' = b + W t`.
//!
//! The products are formed in f64 and rounded once to the model's scalar
//! type, so the folded network's eval output equals the original's up to
//! rounding of the (different) order of operations.

use crate::error::{Error, Result};
use crate::layers::{ActivationLayer, BatchNorm, Dense, Layer};
use crate::model::Sequential;
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// A per-feature affine map `x -> scale * x + shift`, in f64.
#[derive(Debug, Clone, PartialEq)]
struct Affine {
    scale: Vec<f64>,
    shift: Vec<f64>,
}

impl Affine {
    /// The inference map of `bn` (running statistics).
    fn of_batch_norm<T: Scalar>(bn: &BatchNorm<T>) -> Result<Self> {
        if !bn.config().track_running_stats {
            return Err(Error::config(
                "fold batch norm",
                format!(
                    "{}: this layer keeps no running statistics (track_running_stats = false), so it normalizes \
                     with each batch's statistics even at inference and is not a fixed affine map",
                    bn.path()
                ),
            ));
        }
        let eps = bn.config().eps;
        let f = bn.features();
        let (mut scale, mut shift) = (Vec::with_capacity(f), Vec::with_capacity(f));
        for j in 0..f {
            let (gamma, beta) = match &bn.affine {
                Some((g, b)) => (g.value.as_slice()[j].to_f64(), b.value.as_slice()[j].to_f64()),
                None => (1.0, 0.0),
            };
            let s = gamma / (bn.running.var[j].to_f64() + eps).sqrt();
            scale.push(s);
            shift.push(beta - bn.running.mean[j].to_f64() * s);
        }
        Ok(Affine { scale, shift })
    }

    /// `self` applied after `first`: `x -> s (s1 x + t1) + t`.
    fn after(&self, first: &Affine) -> Affine {
        let scale = self.scale.iter().zip(&first.scale).map(|(s, s1)| s * s1).collect();
        let shift = self
            .shift
            .iter()
            .zip(&self.scale)
            .zip(&first.shift)
            .map(|((t, s), t1)| s * t1 + t)
            .collect();
        Affine { scale, shift }
    }
}

/// A Dense layer's weights `[out, in]` and bias `[out]` in f64.
struct DenseF64 {
    rows: usize,
    cols: usize,
    w: Vec<f64>,
    b: Vec<f64>,
}

impl DenseF64 {
    fn of<T: Scalar>(d: &Dense<T>) -> Self {
        let (rows, cols) = (d.out_features(), d.in_features());
        let w = d.weight.value.as_slice().iter().map(|v| v.to_f64()).collect();
        let b = match &d.bias {
            Some(b) => b.value.as_slice().iter().map(|v| v.to_f64()).collect(),
            None => vec![0.0; rows],
        };
        DenseF64 { rows, cols, w, b }
    }

    /// Folds `a` applied to the input: `W' = W diag(s)`, `b' = b + W t`.
    fn fold_input(&mut self, a: &Affine) {
        for r in 0..self.rows {
            let row = &mut self.w[r * self.cols..(r + 1) * self.cols];
            self.b[r] += row.iter().zip(&a.shift).map(|(w, t)| w * t).sum::<f64>();
            row.iter_mut().zip(&a.scale).for_each(|(w, s)| *w *= s);
        }
    }

    /// Folds `a` applied to the output: `W' = diag(s) W`, `b' = s b + t`.
    fn fold_output(&mut self, a: &Affine) {
        for r in 0..self.rows {
            self.w[r * self.cols..(r + 1) * self.cols]
                .iter_mut()
                .for_each(|w| *w *= a.scale[r]);
            self.b[r] = a.scale[r] * self.b[r] + a.shift[r];
        }
    }

    fn into_dense<T: Scalar>(self, path: &str) -> Result<Dense<T>> {
        let w = Matrix::from_vec(self.rows, self.cols, self.w.iter().map(|&v| T::from_f64(v)).collect())?;
        let b = Matrix::from_vec(1, self.rows, self.b.iter().map(|&v| T::from_f64(v)).collect())?;
        Dense::new(path, w, Some(b))
    }
}

/// The network computing the same function as `model` in [`Mode::Eval`]
/// with every batch-normalization layer folded into a neighbouring Dense
/// layer (see the [module docs](self) for the formulas). Layers are renamed
/// `layers.{i}` in their new order; every Dense layer gets a bias; activation
/// dropout and layer-normalization layers (not affine maps of the input,
/// which depend on each row's statistics) are kept.
///
/// A BN layer directly after a Dense layer folds into it; any other BN layer
/// folds into the next Dense layer when only dropout layers lie between them.
/// Fails, naming the layer, for a BN layer without running statistics, a BN
/// layer followed by an activation and not preceded by a Dense layer, or a
/// width mismatch.
///
/// The result is for inference: training it no longer normalizes with batch
/// statistics.
///
/// [`Mode::Eval`]: crate::Mode::Eval
pub fn fold_batch_norm<T: Scalar>(model: &Sequential<T>) -> Result<Sequential<T>> {
    let layers = model.layers();
    let mut out: Vec<Layer<T>> = Vec::with_capacity(layers.len());
    // An affine map waiting to be folded into the input of the next Dense layer.
    let mut pending: Option<(Affine, String)> = None;
    let mut i = 0;
    while i < layers.len() {
        let path = format!("layers.{}", out.len());
        match &layers[i] {
            Layer::Dense(d) => {
                let mut dense = DenseF64::of(d);
                if let Some((a, from)) = pending.take() {
                    check_width(&from, a.scale.len(), dense.cols)?;
                    dense.fold_input(&a);
                }
                if let Some(Layer::BatchNorm(bn)) = layers.get(i + 1) {
                    let a = Affine::of_batch_norm(bn)?;
                    check_width(bn.path(), a.scale.len(), dense.rows)?;
                    dense.fold_output(&a);
                    i += 1;
                }
                out.push(Layer::Dense(dense.into_dense(&path)?));
            }
            Layer::BatchNorm(bn) => {
                let a = Affine::of_batch_norm(bn)?;
                let next_dense = layers[i + 1..]
                    .iter()
                    .find(|l| !matches!(l, Layer::Dropout(_)))
                    .is_some_and(|l| matches!(l, Layer::Dense(_)));
                if !next_dense {
                    return Err(Error::config(
                        "fold batch norm",
                        format!(
                            "{}: neither preceded nor followed (through dropout only) by a Dense layer, so there \
                             is no layer to fold it into",
                            bn.path()
                        ),
                    ));
                }
                pending = Some(match pending.take() {
                    Some((first, _)) => (a.after(&first), bn.path().to_string()),
                    None => (a, bn.path().to_string()),
                });
            }
            Layer::Activation(act) => out.push(Layer::Activation(ActivationLayer::new(act.kind)?)),
            Layer::LayerNorm(n) => out.push(Layer::LayerNorm(n.renamed(&path)?)),
            Layer::Dropout(d) => out.push(Layer::Dropout(d.clone())),
        }
        i += 1;
    }
    Ok(Sequential::new(out))
}

fn check_width(layer: &str, features: usize, width: usize) -> Result<()> {
    if features == width {
        Ok(())
    } else {
        Err(Error::shape(
            "fold batch norm",
            format!("{width} features"),
            format!("{features} in {layer}"),
        ))
    }
}
