//! Small statistics used by the diagnostics and the experiments: percentiles
//! with linear interpolation, running mean and standard deviation, L2 norms.

/// The `q`-th percentile (`q` in [0, 100]) of `values` with linear
/// interpolation between closest ranks, as numpy's default
/// (`method="linear"`): position `h = (n - 1) q / 100` in sorted order,
/// value `x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h])`.
/// Non-finite values are ignored; `None` when no finite value remains.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    percentiles(values, &[q]).map(|v| v[0])
}

/// Several percentiles of `values` (see [`percentile`]), sorting once.
pub fn percentiles(values: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    Some(qs.iter().map(|&q| percentile_of_sorted(&sorted, q)).collect())
}

/// [`percentile`] of finite values already sorted ascending (not empty).
pub fn percentile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 100.0) / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Count, mean and variance of a stream of values (Welford's update, in f64).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Adds every value of `xs`.
    pub fn extend<T: Copy + Into<f64>>(&mut self, xs: &[T]) {
        for &x in xs {
            self.push(x.into());
        }
    }

    /// Count, running mean and sum of squared deviations (to save exactly).
    pub(crate) fn parts(&self) -> (u64, f64, f64) {
        (self.count, self.mean, self.m2)
    }

    /// The moments of [`Moments::parts`].
    pub(crate) fn from_parts(count: u64, mean: f64, m2: f64) -> Self {
        Moments { count, mean, m2 }
    }

    /// Values seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.mean }
    }

    /// Population standard deviation `sqrt(sum (x - mean)^2 / n)` (NaN when empty).
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            (self.m2 / self.count as f64).max(0.0).sqrt()
        }
    }
}

/// The L2 (Frobenius) norm `sqrt(sum x^2)` of `xs`, accumulated in f64.
pub fn l2_norm(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}
