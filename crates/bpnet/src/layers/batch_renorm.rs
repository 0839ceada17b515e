//! Batch Renormalization (Ioffe 2017, arXiv:1702.03275): the training pass
//! of a [`BatchNorm`] layer whose kind is [`NormKind::Renorm`].
//!
//! Shapes: `x, y: [m, features]`; per feature, with the batch statistics
//! `mu_B`, `sigma_B = sqrt(var_B + eps)` (biased `var_B`, as in batch
//! normalization) and the running statistics *before* this batch's update,
//! `mu`, `sigma = sqrt(running_var + eps)`:
//!
//! ```text
//! r = clip(sigma_B / sigma,       1/rmax_t, rmax_t)
//! d = clip((mu_B - mu) / sigma,   -dmax_t,  dmax_t)
//! xhat = (x - mu_B) / sigma_B
//! y = gamma * (r * xhat + d) + beta
//! ```
//!
//! `r` and `d` are constants in backward (the paper's "stop_gradient"), so
//! backward is batch normalization's with `gamma` replaced by `gamma r`:
//! `dbeta = sum dy`, `dgamma = sum dy (r xhat + d)`,
//! `dx = gamma r / (m sigma_B) (m dy - sum dy - xhat sum dy xhat)`.
//! The limits `(rmax_t, dmax_t)` follow [`RenormConfig::limits`] at the
//! layer's training step. Then the running statistics move towards the batch
//! statistics as in batch normalization. Inference is batch normalization's
//! (`r = 1`, `d = 0` with the running statistics), so the layer folds and
//! exports like it. In [`super::Mode::Recalibrate`] passes the layer normalizes as
//! plain batch normalization does.
//!
//! Against Keras' `BatchNormalization(renorm=True)` (same formulas, same
//! constants in backward, same `r = 1, d = 0` at inference), the differences:
//! - Keras keeps separate averages for the corrections (`renorm_mean` and
//!   `renorm_stddev`, a moving average of `sigma_B` with its own
//!   `renorm_momentum`, default 0.99) beside the inference averages; here, as
//!   in the paper's Algorithm 1, the corrections use the layer's running
//!   statistics (`sigma = sqrt(running_var + eps)`, the running variance
//!   unbiased or not per [`super::BatchNormConfig::unbiased_running_var`]).
//! - Keras clips only where `renorm_clipping` says (its default is no
//!   clipping) and leaves any schedule to the user; here `rmin = 1/rmax_t`
//!   always and the paper's warm-up schedule is built in.
//! - Keras floors `renorm_stddev` at `sqrt(eps)`; here `sigma >= sqrt(eps)`
//!   holds by construction.

use super::batch_norm::BatchNorm;
use super::bn_kernels::{backward_sums, input_gradient_kernel, normalize_kernel, statistics_kernel};
use super::{NormKind, RenormConfig};
use crate::error::Result;
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// Which variant's training pass the last forward ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    Renorm,
    Ghost,
}

/// Buffers of the renorm and ghost training passes, sized on first use.
#[derive(Debug, Clone, Default)]
pub(super) struct VariantState<T> {
    /// The variant whose backward must run, if the last forward was one.
    pub(super) active: Option<Variant>,
    /// Renorm corrections `r`, `d` of the last forward `[features]`.
    pub(super) r: Vec<T>,
    pub(super) d: Vec<T>,
    /// `gamma r` and `gamma d + beta` `[features]`.
    pub(super) eff_scale: Vec<T>,
    pub(super) eff_shift: Vec<T>,
    /// Ghost batches as row ranges, and per ghost batch `[ghosts * features]`
    /// statistics and backward sums.
    pub(super) ghosts: Vec<(usize, usize)>,
    pub(super) ghost_mean: Vec<T>,
    pub(super) ghost_var: Vec<T>,
    pub(super) ghost_inv_std: Vec<T>,
    pub(super) ghost_sum_dy: Vec<T>,
    pub(super) ghost_sum_dy_xhat: Vec<T>,
}

impl<T: Scalar> BatchNorm<T> {
    /// Training forward of Batch Renormalization (see the module docs).
    pub(super) fn renorm_forward(&mut self, x: &Matrix<T>, c: RenormConfig) -> Result<()> {
        let (m, f) = (x.rows(), self.features());
        let eps = T::from_f64(self.config.eps);
        statistics_kernel(x.as_slice(), &mut self.mean, &mut self.var, &mut self.inv_std, eps);
        let (rmax, dmax) = c.limits(self.running.batches + 1);
        let v = &mut self.variant;
        for buf in [&mut v.r, &mut v.d, &mut v.eff_scale, &mut v.eff_shift] {
            buf.resize(f, T::ZERO);
        }
        for j in 0..f {
            let sigma_b = 1.0 / self.inv_std[j].to_f64();
            let sigma = (self.running.var[j].to_f64() + self.config.eps).sqrt();
            let r = (sigma_b / sigma).clamp(1.0 / rmax, rmax);
            let d = ((self.mean[j].to_f64() - self.running.mean[j].to_f64()) / sigma).clamp(-dmax, dmax);
            let (r, d) = (T::from_f64(r), T::from_f64(d));
            let (gamma, beta) = match &self.affine {
                Some((g, b)) => (g.value.as_slice()[j], b.value.as_slice()[j]),
                None => (T::ONE, T::ZERO),
            };
            v.r[j] = r;
            v.d[j] = d;
            v.eff_scale[j] = gamma * r;
            v.eff_shift[j] = gamma * d + beta;
        }
        self.xhat.resize(m, f);
        self.out.resize(m, f);
        let affine = Some((&v.eff_scale[..], &v.eff_shift[..]));
        normalize_kernel(
            x.as_slice(),
            &self.mean,
            &self.inv_std,
            affine,
            self.xhat.as_mut_slice(),
            self.out.as_mut_slice(),
        );
        self.used_batch_stats = true;
        self.update_running(m)?;
        self.variant.active = Some(Variant::Renorm);
        Ok(())
    }

    /// Backward of [`BatchNorm::renorm_forward`] with `r`, `d` constant.
    pub(super) fn renorm_backward(&mut self, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        let (m, f) = (dy.rows(), self.features());
        backward_sums(
            dy.as_slice(),
            self.xhat.as_slice(),
            &mut self.sum_dy,
            &mut self.sum_dy_xhat,
        );
        let v = &self.variant;
        if let Some((gamma, beta)) = &mut self.affine {
            for j in 0..f {
                gamma.grad.as_mut_slice()[j] += v.r[j] * self.sum_dy_xhat[j] + v.d[j] * self.sum_dy[j];
                beta.grad.as_mut_slice()[j] += self.sum_dy[j];
            }
        }
        if need_dx {
            let inv_m = T::ONE / T::from_f64(m as f64);
            for j in 0..f {
                let gamma = self.affine.as_ref().map_or(T::ONE, |(g, _)| g.value.as_slice()[j]);
                self.scale[j] = gamma * v.r[j] * self.inv_std[j];
                self.sum_dy[j] *= inv_m;
                self.sum_dy_xhat[j] *= inv_m;
            }
            self.dx.resize(m, f);
            let sums = [&self.scale[..], &self.sum_dy, &self.sum_dy_xhat];
            input_gradient_kernel(dy.as_slice(), self.xhat.as_slice(), sums, self.dx.as_mut_slice());
        }
        Ok(())
    }

    /// The corrections `(r, d)` of the last renorm training forward
    /// (`[features]` each), or `None` if the last forward was not one.
    pub fn renorm_corrections(&self) -> Option<(&[T], &[T])> {
        (self.variant.active == Some(Variant::Renorm)).then(|| (&self.variant.r[..], &self.variant.d[..]))
    }

    /// True when this layer is Batch Renormalization.
    pub fn is_renorm(&self) -> bool {
        matches!(self.config.kind, NormKind::Renorm(_))
    }
}
