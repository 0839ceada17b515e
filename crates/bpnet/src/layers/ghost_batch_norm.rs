//! Ghost batch normalization (Hoffer, Hubara & Soudry 2017,
//! arXiv:1705.08741): the training pass of a [`BatchNorm`] layer whose kind
//! is [`super::NormKind::Ghost`].
//!
//! The `m` rows of a batch `x: [m, features]` are split, in order, into
//! virtual ("ghost") batches of `N` rows, and each is batch-normalized with
//! its own statistics (biased variance), sharing `gamma` and `beta`:
//!
//! ```text
//! for each ghost batch G:  xhat_G = (x_G - mean(x_G)) / sqrt(var(x_G) + eps)
//!                          y_G    = gamma * xhat_G + beta
//! ```
//!
//! Backward is batch normalization's backward inside each ghost batch;
//! `dgamma` and `dbeta` sum over all of them.
//!
//! The last partial ghost batch: when `N` does not divide `m`, the `m mod N`
//! remaining rows form a smaller last ghost batch if there are at least two
//! of them; a single remaining row joins the previous ghost batch (which then
//! has `N + 1` rows), since one row has no variance. A batch of at most `N`
//! rows is one ghost batch (plain batch normalization); a batch of one row is
//! refused as for batch normalization.
//!
//! Running statistics: once per batch (not once per ghost batch, so the
//! momentum means what it means for batch normalization), towards the average
//! over the ghost batches of their means and of their variances (each
//! unbiased by `n_G/(n_G-1)` when the configuration asks for it). Inference
//! uses them exactly as batch normalization does. With `k` equal ghost
//! batches this equals PyTorch's `BatchNorm1d(k * features)` applied to the
//! batch reshaped to `[N, k * features]`, with its running statistics
//! averaged over the `k` copies (the parity test's reference).
//!
//! [`Mode::Recalibrate`](super::Mode::Recalibrate) passes normalize the same
//! way and accumulate the same averages (always unbiased) for the population
//! statistics.

use super::Mode;
use super::batch_norm::BatchNorm;
use super::batch_renorm::Variant;
use super::bn_kernels::{backward_sums, input_gradient_kernel, normalize_kernel, statistics_kernel};
use crate::error::Result;
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// The ghost batches of a batch of `m >= 2` rows as row ranges
/// `[start, end)`, per the module docs; cleared and refilled into `out`.
pub fn ghost_batches(m: usize, size: usize, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let size = size.max(2);
    let mut start = 0;
    while start < m {
        let end = (start + size).min(m);
        out.push((start, end));
        start = end;
    }
    if let [.., prev, last] = out.as_mut_slice()
        && last.1 - last.0 == 1
    {
        prev.1 = last.1;
        out.pop();
    }
}

impl<T: Scalar> BatchNorm<T> {
    /// Forward with ghost-batch statistics (training, recalibration, or
    /// inference without running statistics); see the module docs.
    pub(super) fn ghost_forward(&mut self, x: &Matrix<T>, mode: Mode, size: usize) -> Result<()> {
        let (m, f) = (x.rows(), self.features());
        let eps = T::from_f64(self.config.eps);
        let v = &mut self.variant;
        ghost_batches(m, size, &mut v.ghosts);
        let k = v.ghosts.len();
        for buf in [&mut v.ghost_mean, &mut v.ghost_var, &mut v.ghost_inv_std] {
            buf.resize(k * f, T::ZERO);
        }
        self.xhat.resize(m, f);
        self.out.resize(m, f);
        let affine = self
            .affine
            .as_ref()
            .map(|(g, b)| (g.value.as_slice(), b.value.as_slice()));
        let (xs, xh, out) = (x.as_slice(), self.xhat.as_mut_slice(), self.out.as_mut_slice());
        for (g, &(a, b)) in v.ghosts.iter().enumerate() {
            let stats = g * f..(g + 1) * f;
            let (mean, var, inv_std) = (
                &mut v.ghost_mean[stats.clone()],
                &mut v.ghost_var[stats.clone()],
                &mut v.ghost_inv_std[stats],
            );
            let rows = a * f..b * f;
            statistics_kernel(&xs[rows.clone()], mean, var, inv_std, eps);
            normalize_kernel(
                &xs[rows.clone()],
                mean,
                inv_std,
                affine,
                &mut xh[rows.clone()],
                &mut out[rows],
            );
        }
        self.used_batch_stats = true;
        self.variant.active = Some(Variant::Ghost);
        match mode {
            Mode::Train if self.config.track_running_stats && k == 1 => {
                self.take_single_ghost_statistics();
                self.update_running(m)?;
            }
            Mode::Train if self.config.track_running_stats => {
                self.average_ghost_statistics(self.config.unbiased_running_var);
                self.blend_running(T::ONE);
            }
            Mode::Recalibrate if k == 1 => {
                self.take_single_ghost_statistics();
                self.accumulate_population(m);
            }
            Mode::Recalibrate => {
                self.average_ghost_statistics(true);
                self.accumulate_population_unbiased(1.0);
            }
            _ => {}
        }
        Ok(())
    }

    /// A batch of one ghost batch is plain batch normalization: its
    /// (biased) statistics become the layer's, so that the running and
    /// population statistics take batch normalization's own arithmetic and
    /// bits (the average over ghost batches rounds the unbiased variance
    /// once in f64, batch normalization multiplies in `T`).
    fn take_single_ghost_statistics(&mut self) {
        let f = self.features();
        self.mean.copy_from_slice(&self.variant.ghost_mean[..f]);
        self.var.copy_from_slice(&self.variant.ghost_var[..f]);
    }

    /// `mean`, `var` = averages over the ghost batches of their means and
    /// (biased, or unbiased by `n/(n-1)`) variances.
    fn average_ghost_statistics(&mut self, unbiased: bool) {
        let f = self.features();
        let v = &self.variant;
        let inv_k = 1.0 / v.ghosts.len() as f64;
        for j in 0..f {
            let (mut mean, mut var) = (0.0, 0.0);
            for (g, &(a, b)) in v.ghosts.iter().enumerate() {
                let n = (b - a) as f64;
                let unbias = if unbiased { n / (n - 1.0) } else { 1.0 };
                mean += v.ghost_mean[g * f + j].to_f64();
                var += v.ghost_var[g * f + j].to_f64() * unbias;
            }
            self.mean[j] = T::from_f64(mean * inv_k);
            self.var[j] = T::from_f64(var * inv_k);
        }
    }

    /// Backward of [`BatchNorm::ghost_forward`]: batch normalization's
    /// backward inside each ghost batch.
    pub(super) fn ghost_backward(&mut self, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        let (m, f) = (dy.rows(), self.features());
        let v = &mut self.variant;
        let k = v.ghosts.len();
        v.ghost_sum_dy.resize(k * f, T::ZERO);
        v.ghost_sum_dy_xhat.resize(k * f, T::ZERO);
        let (ds, xh) = (dy.as_slice(), self.xhat.as_slice());
        for (g, &(a, b)) in v.ghosts.iter().enumerate() {
            let stats = g * f..(g + 1) * f;
            backward_sums(
                &ds[a * f..b * f],
                &xh[a * f..b * f],
                &mut v.ghost_sum_dy[stats.clone()],
                &mut v.ghost_sum_dy_xhat[stats],
            );
        }
        if let Some((gamma, beta)) = &mut self.affine {
            for g in 0..k {
                for j in 0..f {
                    gamma.grad.as_mut_slice()[j] += v.ghost_sum_dy_xhat[g * f + j];
                    beta.grad.as_mut_slice()[j] += v.ghost_sum_dy[g * f + j];
                }
            }
        }
        if !need_dx {
            return Ok(());
        }
        self.dx.resize(m, f);
        let dx = self.dx.as_mut_slice();
        for (g, &(a, b)) in v.ghosts.iter().enumerate() {
            let inv_n = T::ONE / T::from_f64((b - a) as f64);
            for j in 0..f {
                let gamma = self.affine.as_ref().map_or(T::ONE, |(gm, _)| gm.value.as_slice()[j]);
                self.scale[j] = gamma * v.ghost_inv_std[g * f + j];
                self.sum_dy[j] = v.ghost_sum_dy[g * f + j] * inv_n;
                self.sum_dy_xhat[j] = v.ghost_sum_dy_xhat[g * f + j] * inv_n;
            }
            let sums = [&self.scale[..], &self.sum_dy, &self.sum_dy_xhat];
            input_gradient_kernel(&ds[a * f..b * f], &xh[a * f..b * f], sums, &mut dx[a * f..b * f]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ghost_batches;

    #[test]
    fn partial_last_ghost_batch() {
        let mut g = Vec::new();
        ghost_batches(8, 4, &mut g);
        assert_eq!(g, [(0, 4), (4, 8)]);
        ghost_batches(10, 4, &mut g);
        assert_eq!(g, [(0, 4), (4, 8), (8, 10)]);
        ghost_batches(9, 4, &mut g);
        assert_eq!(g, [(0, 4), (4, 9)]);
        ghost_batches(3, 4, &mut g);
        assert_eq!(g, [(0, 3)]);
        ghost_batches(5, 2, &mut g);
        assert_eq!(g, [(0, 2), (2, 5)]);
    }
}
