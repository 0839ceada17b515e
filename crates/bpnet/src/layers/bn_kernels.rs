//! The element-wise passes of batch normalization over `[m, f]` (rows are
//! batch rows, columns features), split over the thread team: the sums over
//! rows (statistics, backward sums) by blocks of columns, the rest by blocks
//! of rows. Each column's sum runs over the rows in order and each element's
//! arithmetic is the same wherever it runs, so the results do not depend on
//! the thread count.

use crate::parallel::split::{SharedMut, for_columns, for_rows};
use crate::scalar::Scalar;

/// Per-feature mean, biased variance (two passes) and `1 / sqrt(var + eps)`
/// of `x: [m, f]`, `f = mean.len() > 0`.
pub(super) fn statistics_kernel<T: Scalar>(x: &[T], mean: &mut [T], var: &mut [T], inv_std: &mut [T], eps: T) {
    let f = mean.len();
    if f == 0 {
        return;
    }
    let (mu, va, is) = (SharedMut::new(mean), SharedMut::new(var), SharedMut::new(inv_std));
    for_columns(x.len() / f, f, &|c| {
        // SAFETY: `for_columns` hands out disjoint column ranges.
        let (mu, va, is) = unsafe { (mu.range(c.clone()), va.range(c.clone()), is.range(c.clone())) };
        statistics_block(x, f, c.start, mu, va, is, eps);
    });
}

crate::vectorized! {
    /// [`statistics_kernel`] of the columns `c0..c0 + mean.len()` of
    /// `x: [m, f]`, widened across features.
    fn statistics_block<T: Scalar>(x: &[T], f: usize, c0: usize, mean: &mut [T], var: &mut [T], inv_std: &mut [T], eps: T) {
        let (w, inv_m) = (mean.len(), T::ONE / T::from_f64((x.len() / f) as f64));
        mean.fill(T::ZERO);
        for row in x.chunks_exact(f) {
            mean.iter_mut().zip(&row[c0..c0 + w]).for_each(|(mu, &v)| *mu += v);
        }
        mean.iter_mut().for_each(|mu| *mu *= inv_m);
        var.fill(T::ZERO);
        for row in x.chunks_exact(f) {
            for ((s, &v), &mu) in var.iter_mut().zip(&row[c0..c0 + w]).zip(&*mean) {
                let d = v - mu;
                *s += d * d;
            }
        }
        for (var, is) in var.iter_mut().zip(inv_std.iter_mut()) {
            *var *= inv_m;
            *is = T::ONE / (*var + eps).sqrt();
        }
    }
}

/// `xhat = (x - mean) inv_std` and `out = gamma xhat + beta` (or `xhat`),
/// all `[m, f]`, `f = mean.len()`.
pub(super) fn normalize_kernel<T: Scalar>(
    x: &[T],
    mean: &[T],
    inv_std: &[T],
    affine: Option<(&[T], &[T])>,
    xhat: &mut [T],
    out: &mut [T],
) {
    let f = mean.len();
    if f == 0 {
        return;
    }
    let (xh, ys) = (SharedMut::new(xhat), SharedMut::new(out));
    for_rows(x.len() / f, f, &|r| {
        let e = r.start * f..r.end * f;
        // SAFETY: `for_rows` hands out disjoint row ranges.
        let (xh, ys) = unsafe { (xh.range(e.clone()), ys.range(e.clone())) };
        normalize_block(&x[e], mean, inv_std, affine, xh, ys);
    });
}

crate::vectorized! {
    /// [`normalize_kernel`] of a block of rows, widened.
    fn normalize_block<T: Scalar>(x: &[T], mean: &[T], inv_std: &[T], affine: Option<(&[T], &[T])>, xhat: &mut [T], out: &mut [T]) {
        let f = mean.len();
        for ((xr, hr), or) in x.chunks_exact(f).zip(xhat.chunks_exact_mut(f)).zip(out.chunks_exact_mut(f)) {
            for (((xh, &v), &mu), &is) in hr.iter_mut().zip(xr).zip(mean).zip(inv_std) {
                *xh = (v - mu) * is;
            }
            match affine {
                Some((g, b)) => {
                    for (((y, &xh), &gj), &bj) in or.iter_mut().zip(&*hr).zip(g).zip(b) {
                        *y = gj * xh + bj;
                    }
                }
                None => or.copy_from_slice(hr),
            }
        }
    }
}

/// `sum_dy[j] = sum_r dy[r, j]`, `sum_dy_xhat[j] = sum_r dy[r, j] xhat[r, j]`
/// over `[m, f]`, `f = sum_dy.len()`.
pub(super) fn backward_sums<T: Scalar>(dy: &[T], xhat: &[T], sum_dy: &mut [T], sum_dy_xhat: &mut [T]) {
    let f = sum_dy.len();
    if f == 0 {
        return;
    }
    let (s, sx) = (SharedMut::new(sum_dy), SharedMut::new(sum_dy_xhat));
    for_columns(dy.len() / f, f, &|c| {
        // SAFETY: `for_columns` hands out disjoint column ranges.
        let (s, sx) = unsafe { (s.range(c.clone()), sx.range(c.clone())) };
        sums_block(dy, xhat, f, c.start, s, sx);
    });
}

crate::vectorized! {
    /// [`backward_sums`] of the columns `c0..c0 + sum_dy.len()`, one pass,
    /// widened.
    fn sums_block<T: Scalar>(dy: &[T], xhat: &[T], f: usize, c0: usize, sum_dy: &mut [T], sum_dy_xhat: &mut [T]) {
        let w = sum_dy.len();
        sum_dy.fill(T::ZERO);
        sum_dy_xhat.fill(T::ZERO);
        for (gr, hr) in dy.chunks_exact(f).zip(xhat.chunks_exact(f)) {
            let (gr, hr) = (&gr[c0..c0 + w], &hr[c0..c0 + w]);
            for ((g, xh), (s, sx)) in gr.iter().zip(hr).zip(sum_dy.iter_mut().zip(sum_dy_xhat.iter_mut())) {
                *s += *g;
                *sx += *g * *xh;
            }
        }
    }
}

/// `dx[r, j] = scale[j] (dy[r, j] - a[j] - xhat[r, j] b[j])` over `[m, f]`
/// with `sums = [scale, a, b]`, `f = scale.len()`.
pub(super) fn input_gradient_kernel<T: Scalar>(dy: &[T], xhat: &[T], sums: [&[T]; 3], dx: &mut [T]) {
    let f = sums[0].len();
    if f == 0 {
        return;
    }
    let d = SharedMut::new(dx);
    for_rows(dy.len() / f, f, &|r| {
        let e = r.start * f..r.end * f;
        // SAFETY: `for_rows` hands out disjoint row ranges.
        let d = unsafe { d.range(e.clone()) };
        input_gradient_block(&dy[e.clone()], &xhat[e], sums, d);
    });
}

crate::vectorized! {
    /// [`input_gradient_kernel`] of a block of rows, widened.
    fn input_gradient_block<T: Scalar>(dy: &[T], xhat: &[T], sums: [&[T]; 3], dx: &mut [T]) {
        let [scale, a, b] = sums;
        let f = scale.len();
        for ((dr, gr), hr) in dx.chunks_exact_mut(f).zip(dy.chunks_exact(f)).zip(xhat.chunks_exact(f)) {
            for (j, (d, (&g, &xh))) in dr.iter_mut().zip(gr.iter().zip(hr)).enumerate() {
                *d = scale[j] * (g - a[j] - xh * b[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every pass on `x: [m, f]`, as bits: statistics, normalize (with and
    /// without affine), backward sums and input gradient.
    fn passes(x: &[f32], dy: &[f32], f: usize) -> Vec<Vec<u32>> {
        let (mut mean, mut var, mut inv_std) = (vec![0.0; f], vec![0.0; f], vec![0.0; f]);
        statistics_kernel(x, &mut mean, &mut var, &mut inv_std, 1e-5);
        let (mut xhat, mut out, mut plain) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; x.len()]);
        let gamma: Vec<f32> = (0..f).map(|j| 0.5 + j as f32 / f as f32).collect();
        let beta: Vec<f32> = (0..f).map(|j| j as f32 / 7.0 - 3.0).collect();
        normalize_kernel(x, &mean, &inv_std, Some((&gamma, &beta)), &mut xhat, &mut out);
        normalize_kernel(x, &mean, &inv_std, None, &mut vec![0.0; x.len()], &mut plain);
        let (mut s, mut sx) = (vec![0.0; f], vec![0.0; f]);
        backward_sums(dy, &xhat, &mut s, &mut sx);
        let mut dx = vec![0.0; x.len()];
        input_gradient_kernel(dy, &xhat, [&gamma, &s, &sx], &mut dx);
        [mean, var, inv_std, xhat, out, plain, s, sx, dx]
            .iter()
            .map(|v| bits(v))
            .collect()
    }

    /// Above the split threshold (67 x 500 values; 500 columns are not a
    /// multiple of 16), 2 to 4 threads give the bits of one. Also run under
    /// Miri (`tools/miri.sh`), with 7 x 100 values above its lower
    /// threshold, for the disjoint ranges the parts write.
    #[test]
    fn split_passes_give_the_bits_of_one_thread() {
        let _level = crate::simd::level_lock();
        let (m, f) = if cfg!(miri) { (7, 100) } else { (67, 500) };
        assert!(m * f >= crate::parallel::MIN_ELEMENTS_SPLIT);
        let x: Vec<f32> = (0..m * f).map(|i| ((i * 37 % 101) as f32) / 25.0 - 2.0).collect();
        let dy: Vec<f32> = (0..m * f).map(|i| ((i * 53 % 97) as f32) / 40.0 - 1.2).collect();
        crate::parallel::set_threads(1);
        let one = passes(&x, &dy, f);
        for threads in 2..=4 {
            crate::parallel::set_threads(threads);
            assert!(passes(&x, &dy, f) == one, "{threads} threads differ from one");
        }
        crate::parallel::set_threads(1);
    }
}
