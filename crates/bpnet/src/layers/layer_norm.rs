//! Layer normalization (Ba, Kiros & Hinton 2016, arXiv:1607.06450), with
//! PyTorch `nn.LayerNorm(features)` semantics: statistics over the features
//! of each row, biased variance, `eps` inside the square root, a learned
//! per-feature gain and bias (`elementwise_affine`). The same computation in
//! training and at inference, independent of the batch.
//!
//! Shapes: `x, y: [batch, F]`; `gamma`, `beta`: `[F]`. Per row:
//!
//! ```text
//! mu = (1/F) sum_j x_j   var = (1/F) sum_j (x_j - mu)^2   s = 1/sqrt(var + eps)
//! xhat_j = (x_j - mu) s   y_j = gamma_j xhat_j + beta_j
//! ```
//!
//! Backward (with `g_j = gamma_j dy_j`): `dgamma_j = sum_rows dy_j xhat_j`,
//! `dbeta_j = sum_rows dy_j`, and per row
//! `dx_j = s/F (F g_j - sum_k g_k - xhat_j sum_k g_k xhat_k)`.

use super::{Mode, Param, ParamKind};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// A layer-normalization layer.
#[derive(Debug, Clone)]
pub struct LayerNorm<T> {
    path: String,
    eps: f64,
    /// Gain gamma `[1, F]` (init 1) and bias beta `[1, F]` (init 0), if affine.
    pub affine: Option<(Param<T>, Param<T>)>,
    features: usize,
    // Per row of the last forward: 1/sqrt(var + eps).
    inv_std: Vec<T>,
    xhat: Matrix<T>,
    out: Matrix<T>,
    dx: Matrix<T>,
}

impl<T: Scalar> LayerNorm<T> {
    /// A layer over `features` named `path` (gamma is `{path}.weight`, beta
    /// `{path}.bias`, as in PyTorch).
    pub fn new(path: &str, features: usize, eps: f64, affine: bool) -> Result<Self> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(Error::config(
                "layer-norm eps",
                format!("{eps} is not a positive number"),
            ));
        }
        let vec = |name: &str, kind, v| Param::new(format!("{path}.{name}"), kind, Matrix::filled(1, features, v));
        let affine = affine.then(|| {
            (
                vec("weight", ParamKind::NormScale, T::ONE),
                vec("bias", ParamKind::NormShift, T::ZERO),
            )
        });
        Ok(LayerNorm {
            path: path.to_string(),
            eps,
            affine,
            features,
            inv_std: Vec::new(),
            xhat: Matrix::default(),
            out: Matrix::default(),
            dx: Matrix::default(),
        })
    }

    /// A copy named `path` (parameters `{path}.weight`, `{path}.bias`).
    pub fn renamed(&self, path: &str) -> Result<Self> {
        let mut n = LayerNorm::new(path, self.features, self.eps, self.affine.is_some())?;
        if let (Some((g, b)), Some((g0, b0))) = (&mut n.affine, &self.affine) {
            g.value = g0.value.clone();
            b.value = b0.value.clone();
        }
        Ok(n)
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The `eps` added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The layer's path, e.g. `layers.1`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Forward pass (the same in every mode).
    pub fn forward(&mut self, x: &Matrix<T>, _mode: Mode) -> Result<()> {
        let (m, f) = (x.rows(), self.features);
        if x.cols() != f {
            return Err(Error::shape("layer-norm forward", format!("[_, {f}]"), x));
        }
        self.xhat.resize(m, f);
        self.out.resize(m, f);
        self.inv_std.resize(m, T::ZERO);
        let affine = self
            .affine
            .as_ref()
            .map(|(g, b)| (g.value.as_slice(), b.value.as_slice()));
        let eps = T::from_f64(self.eps);
        let (xh, out) = (self.xhat.as_mut_slice(), self.out.as_mut_slice());
        for (r, s) in self.inv_std.iter_mut().enumerate() {
            let rows = r * f..(r + 1) * f;
            *s = layer_norm_row(
                &x.as_slice()[rows.clone()],
                eps,
                affine,
                &mut xh[rows.clone()],
                &mut out[rows],
            );
        }
        Ok(())
    }

    /// Backward pass for the last forward; see the module docs.
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        let (m, f) = (x.rows(), self.features);
        if dy.shape() != [m, f] || self.xhat.shape() != [m, f] {
            return Err(Error::shape(
                "layer-norm backward",
                format!("[{m}, {f}] after a forward of that shape"),
                dy,
            ));
        }
        let (ds, xh) = (dy.as_slice(), self.xhat.as_slice());
        if let Some((gamma, beta)) = &mut self.affine {
            let (gg, bg) = (gamma.grad.as_mut_slice(), beta.grad.as_mut_slice());
            for (gr, hr) in ds.chunks_exact(f).zip(xh.chunks_exact(f)) {
                for j in 0..f {
                    gg[j] += gr[j] * hr[j];
                    bg[j] += gr[j];
                }
            }
        }
        if !need_dx {
            return Ok(());
        }
        self.dx.resize(m, f);
        let gamma = self.affine.as_ref().map(|(g, _)| g.value.as_slice());
        let inv_f = T::ONE / T::from_f64(f as f64);
        let dx = self.dx.as_mut_slice();
        for (r, &s) in self.inv_std.iter().enumerate() {
            let rows = r * f..(r + 1) * f;
            let (gr, hr, dr) = (&ds[rows.clone()], &xh[rows.clone()], &mut dx[rows]);
            let g = |j: usize| gamma.map_or(gr[j], |gm| gm[j] * gr[j]);
            let (mut sum_g, mut sum_gx) = (T::ZERO, T::ZERO);
            for (j, &h) in hr.iter().enumerate() {
                sum_g += g(j);
                sum_gx += g(j) * h;
            }
            let (a, b) = (sum_g * inv_f, sum_gx * inv_f);
            for (j, (d, &h)) in dr.iter_mut().zip(hr).enumerate() {
                *d = s * (g(j) - a - h * b);
            }
        }
        Ok(())
    }

    /// The last forward's output `[batch, F]`.
    pub fn output(&self) -> &Matrix<T> {
        &self.out
    }

    /// The last backward's input gradient `[batch, F]`.
    pub fn input_grad(&self) -> &Matrix<T> {
        &self.dx
    }

    /// Visits gamma, then beta (if affine).
    pub fn visit_params(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        if let Some((g, b)) = &mut self.affine {
            f(g);
            f(b);
        }
    }

    /// E.g. `LayerNorm(100, eps 1e-5)`.
    pub fn describe(&self) -> String {
        let affine = if self.affine.is_some() { "" } else { ", no affine" };
        format!("LayerNorm({}, eps {:e}{affine})", self.features, self.eps)
    }
}

/// Normalizes one row `x: [F]` into `xhat` and `out` (gain and bias applied
/// when given); returns `1/sqrt(var + eps)`. Used by training and by fused
/// inference.
pub(crate) fn layer_norm_row<T: Scalar>(
    x: &[T],
    eps: T,
    affine: Option<(&[T], &[T])>,
    xhat: &mut [T],
    out: &mut [T],
) -> T {
    let (x0, dmean, var) = row_moments(x);
    let s = T::ONE / (var + eps).sqrt();
    for (h, &v) in xhat.iter_mut().zip(x) {
        *h = ((v - x0) - dmean) * s;
    }
    match affine {
        Some((g, b)) => {
            for (((y, &h), &gj), &bj) in out.iter_mut().zip(&*xhat).zip(g).zip(b) {
                *y = gj * h + bj;
            }
        }
        None => out.copy_from_slice(xhat),
    }
    s
}

/// Layer-normalizes each row of `y: [rows, F]` in place (fused inference).
pub(crate) fn layer_norm_in_place<T: Scalar>(y: &mut [T], eps: T, gamma: &[T], beta: &[T]) {
    let f = gamma.len();
    for row in y.chunks_exact_mut(f) {
        let (x0, dmean, var) = row_moments(row);
        let s = T::ONE / (var + eps).sqrt();
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = g * (((*v - x0) - dmean) * s) + b;
        }
    }
}

/// A row's first value `x0`, its mean as `x0 + dmean` and its (biased)
/// variance, computed on the values shifted by `x0`: a constant row has
/// `dmean = var = 0` exactly, so it normalizes to 0 as in PyTorch (in f32
/// the mean of 7 values of 1e6 came one ulp off them, the variance ulp²
/// above eps, and every value normalized to about -1), and a row far from
/// zero keeps its digits.
fn row_moments<T: Scalar>(x: &[T]) -> (T, T, T) {
    let x0 = x.first().copied().unwrap_or(T::ZERO);
    let inv_f = T::ONE / T::from_f64(x.len().max(1) as f64);
    let dmean = x.iter().map(|&v| v - x0).sum::<T>() * inv_f;
    let var = x
        .iter()
        .map(|&v| {
            let d = (v - x0) - dmean;
            d * d
        })
        .sum::<T>()
        * inv_f;
    (x0, dmean, var)
}
