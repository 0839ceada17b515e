//! Batch normalization across the ranks of a data-parallel run.
//!
//! [`BnSync::Global`] (PyTorch's `SyncBatchNorm`): a training forward
//! normalizes with the mean and biased variance of the whole global batch of
//! `M = sum_r m_r` rows, in one of two ways, both in `f64` and both giving
//! every rank the same bits:
//!
//! - **Gather** (up to [`GATHER_RANKS`] ranks: one collective). Each rank
//!   computes its block's count `m_r`, mean `mu_r` and
//!   `M2_r = sum (x - mu_r)^2` (two passes); the triples of all ranks are
//!   gathered with one all-reduce (each rank fills its own slot of a zeroed
//!   `[size, 2f+1]` buffer; adding zeros is exact) and every rank combines
//!   them in rank order with Chan et al.'s pairwise formula
//!
//!   ```text
//!   n = n_a + n_b   d = mu_b - mu_a   mu = mu_a + d n_b / n   M2 = M2_a + M2_b + d^2 n_a n_b / n
//!   ```
//!
//! - **Two passes over the ranks** (more ranks: two collectives of a fixed
//!   size, `f+1` then `f` values, however many ranks). An all-reduce of
//!   `[m_r, sum x]` gives the global count and mean `mu`; each rank then
//!   sums `(x - mu)^2` over its rows and a second all-reduce gives the
//!   global `M2`. This is one process's two-pass variance with the sums
//!   split over ranks.
//!
//! Unlike `E[x^2] - E[x]^2` neither subtracts two large nearly equal
//! numbers: `M2` is a sum of squares of deviations, so the variance keeps
//! full `f32` accuracy even where `|mean| >> std` (the sums themselves are in
//! `f64`, far below `f32`'s rounding). The gather's payload grows with the
//! ranks, `size (2f+1)` values; at 2 ranks it is one collective instead of
//! two, which is what a small machine's latency favours. Backward all-reduces `[sum dy, sum dy*xhat]` (`2f` values) and
//! forms `dx` with the global sums and `M`; gamma and beta receive the local
//! sums, which the gradient all-reduce then adds up. Running statistics use
//! the global mean and the unbiased `M/(M-1)` variance, identical on all ranks.
//!
//! [`BnSync::Local`] (PyTorch DDP's default): each rank normalizes its own
//! rows (ghost batches), a different model from one process with the global
//! batch. Running statistics are updated with the average over ranks (with
//! rows) of the block means and unbiased block variances, so they too stay
//! identical on every rank.

use crate::comm::Comm;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use std::sync::Arc;

/// How batch normalization treats a batch split over ranks.
#[derive(Debug, Clone)]
pub enum BnSync {
    /// Statistics of the whole global batch.
    Global(Arc<dyn Comm>),
    /// Statistics of each rank's rows; running statistics averaged over ranks.
    Local(Arc<dyn Comm>),
}

/// Per-feature count, mean and M2 of `x: [m, f]` in `f64` (two passes).
fn local_moments<T: Scalar>(x: &[T], f: usize, mean: &mut [f64], m2: &mut [f64]) -> usize {
    let m = x.len() / f.max(1);
    mean.fill(0.0);
    m2.fill(0.0);
    if m == 0 {
        return 0;
    }
    for row in x.chunks_exact(f) {
        mean.iter_mut().zip(row).for_each(|(s, &v)| *s += v.to_f64());
    }
    mean.iter_mut().for_each(|s| *s /= m as f64);
    for row in x.chunks_exact(f) {
        for ((s, &v), &mu) in m2.iter_mut().zip(row).zip(&*mean) {
            let d = v.to_f64() - mu;
            *s += d * d;
        }
    }
    m
}

/// Ranks up to which the global statistics gather every rank's moments in
/// one collective; beyond, two collectives of a fixed size.
pub const GATHER_RANKS: usize = 2;

/// Global per-feature mean and biased variance of the batch whose block on
/// this rank is `x: [m_r, f]`; writes them (and `inv_std = 1/sqrt(var+eps)`)
/// and returns the global row count `M`. `buf` is scratch.
pub(super) fn global_statistics<T: Scalar>(
    comm: &dyn Comm,
    x: &[T],
    stats: [&mut [T]; 3],
    eps: T,
    buf: &mut Vec<f64>,
) -> Result<usize> {
    if comm.size() > GATHER_RANKS {
        return two_pass_statistics(comm, x, stats, eps, buf);
    }
    let [mean, var, inv_std] = stats;
    let f = mean.len();
    let (size, rank, slot) = (comm.size(), comm.rank(), 2 * f + 1);
    buf.clear();
    buf.resize(size * slot + 2 * f, 0.0);
    let (slots, global) = buf.split_at_mut(size * slot);
    let mine = &mut slots[rank * slot..(rank + 1) * slot];
    let (count, rest) = mine.split_at_mut(1);
    let (mu, m2) = rest.split_at_mut(f);
    count[0] = local_moments(x, f, mu, m2) as f64;
    comm.all_reduce_f64(slots)?;
    let (g_mu, g_m2) = global.split_at_mut(f);
    let mut n = 0.0f64;
    for r in 0..size {
        let s = &slots[r * slot..(r + 1) * slot];
        let nb = s[0];
        if nb == 0.0 {
            continue;
        }
        let total = n + nb;
        for j in 0..f {
            let d = s[1 + j] - g_mu[j];
            g_mu[j] += d * nb / total;
            g_m2[j] += s[1 + f + j] + d * d * n * nb / total;
        }
        n = total;
    }
    write_statistics(g_mu, g_m2, n, [mean, var, inv_std], eps);
    Ok(n as usize)
}

/// [`global_statistics`] in two collectives of a fixed size: `[m_r, sum x]`
/// summed gives the count and mean; `sum (x - mean)^2` summed gives `M2`.
fn two_pass_statistics<T: Scalar>(
    comm: &dyn Comm,
    x: &[T],
    stats: [&mut [T]; 3],
    eps: T,
    buf: &mut Vec<f64>,
) -> Result<usize> {
    let [mean, var, inv_std] = stats;
    let f = mean.len();
    buf.clear();
    buf.resize(2 * f + 1, 0.0);
    let (sums, m2) = buf.split_at_mut(f + 1);
    for row in x.chunks_exact(f.max(1)) {
        sums[1..].iter_mut().zip(row).for_each(|(s, &v)| *s += v.to_f64());
    }
    sums[0] = (x.len() / f.max(1)) as f64;
    comm.all_reduce_f64(sums)?;
    let n = sums[0];
    if n > 0.0 {
        sums[1..].iter_mut().for_each(|s| *s /= n);
    }
    let mu = &sums[1..];
    for row in x.chunks_exact(f.max(1)) {
        for ((s, &v), &u) in m2.iter_mut().zip(row).zip(mu) {
            let d = v.to_f64() - u;
            *s += d * d;
        }
    }
    comm.all_reduce_f64(m2)?;
    write_statistics(mu, m2, n, [mean, var, inv_std], eps);
    Ok(n as usize)
}

/// Writes the global mean `mu`, the biased variance `m2 / n` (0 without
/// rows) and `1/sqrt(var + eps)` into `stats` (`[mean, var, inv_std]`).
fn write_statistics<T: Scalar>(mu: &[f64], m2: &[f64], n: f64, stats: [&mut [T]; 3], eps: T) {
    let [mean, var, inv_std] = stats;
    for j in 0..mean.len() {
        mean[j] = T::from_f64(mu[j]);
        var[j] = T::from_f64(if n > 0.0 { m2[j] / n } else { 0.0 });
        inv_std[j] = T::ONE / (var[j] + eps).sqrt();
    }
}

/// Sums `[sum_dy, sum_dy_xhat]` over the ranks (in `f64`).
pub(super) fn global_backward_sums<T: Scalar>(
    comm: &dyn Comm,
    sum_dy: &mut [T],
    sum_dy_xhat: &mut [T],
    buf: &mut Vec<f64>,
) -> Result<()> {
    let f = sum_dy.len();
    buf.clear();
    buf.extend(sum_dy.iter().chain(sum_dy_xhat.iter()).map(|v| v.to_f64()));
    comm.all_reduce_f64(buf)?;
    for j in 0..f {
        sum_dy[j] = T::from_f64(buf[j]);
        sum_dy_xhat[j] = T::from_f64(buf[f + j]);
    }
    Ok(())
}

/// Local mode: the average over ranks with rows of the block means `mean`
/// and the block variances `var` made unbiased (`m/(m-1)`, or not), for the
/// running update: returned as `(averaged means, averaged variances)`, slices
/// of `buf`. Fails on every rank when a rank holds exactly one row (no
/// variance), naming the first such rank.
pub(super) fn average_block_statistics<'b, T: Scalar>(
    comm: &dyn Comm,
    m: usize,
    stats: [&[T]; 2],
    unbiased: bool,
    layer: &str,
    buf: &'b mut Vec<f64>,
) -> Result<(&'b [f64], &'b [f64])> {
    let [mean, var] = stats;
    let (f, size) = (mean.len(), comm.size());
    buf.clear();
    buf.resize(2 * f + 1 + size, 0.0);
    let ok = m >= 2;
    if ok {
        let unbias = if unbiased { m as f64 / (m as f64 - 1.0) } else { 1.0 };
        buf[0] = 1.0;
        for j in 0..f {
            buf[1 + j] = mean[j].to_f64();
            buf[1 + f + j] = var[j].to_f64() * unbias;
        }
    }
    if m == 1 {
        buf[2 * f + 1 + comm.rank()] = 1.0;
    }
    comm.all_reduce_f64(buf)?;
    if let Some(r) = (0..size).find(|&r| buf[2 * f + 1 + r] != 0.0) {
        return Err(Error::BatchTooSmall {
            layer: format!("{layer} (local statistics on rank {r})"),
            rows: 1,
        });
    }
    let k = buf[0].max(1.0);
    buf[1..=2 * f].iter_mut().for_each(|v| *v /= k);
    let (means, vars) = buf[1..=2 * f].split_at(f);
    Ok((means, vars))
}
