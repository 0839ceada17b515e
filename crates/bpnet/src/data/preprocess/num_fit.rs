//! The fit statistics of a table's numeric feature columns over the
//! training rows, several columns in each pass over the rows.
//!
//! For each column: the count of present (non-NaN) values `n`, their
//! minimum, maximum and sum `Σ x`, and where z-scoring needs it
//! `Σ (x − mean)²` with `mean = Σ x / n`; `x = shift + value`. Every sum is
//! taken in row order, one addition at a time, as
//! [`Scaling::fit`] and [`Impute::fill`] take it on the gathered values, so
//! the statistics are theirs bit for bit
//! (`tests::equal_to_the_gathered_fit`). What changes is the cost: one
//! column's sum is a chain of dependent additions, and [`LANES`] columns
//! side by side keep that many chains in flight, with no gathered copy.
//!
//! [`Impute::fill`]: super::Impute

use super::columns::Scaling;
use crate::data::parts::in_parts;
use crate::data::table::{Column, Table};

/// Columns summed side by side in one pass.
const LANES: usize = 8;

/// The statistics of one numeric column's present values over the rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NumStats {
    /// How many values are present (not NaN).
    pub present: usize,
    lo: f64,
    hi: f64,
    sum: f64,
    /// `Σ (x − mean)²`; only computed for z-scoring a non-constant column.
    ssd: f64,
}

impl NumStats {
    /// `Σ x / n` (`n` at least 1): the mean-imputation fill, and the center
    /// of z-scoring.
    pub(crate) fn mean(&self) -> f64 {
        self.sum / self.present.max(1) as f64
    }

    /// `(center, scale)` as [`Scaling::fit`] gives them on the present
    /// values.
    pub(crate) fn scaling(&self, s: Scaling) -> (f64, f64) {
        let n = self.present.max(1) as f64;
        let (center, scale) = match s {
            Scaling::None => (0.0, 1.0),
            _ if self.lo == self.hi => (self.lo, 1.0),
            Scaling::ZScore => (self.mean(), (self.ssd / n).sqrt()),
            Scaling::MinMax => ((self.hi + self.lo) / 2.0, (self.hi - self.lo) / 2.0),
        };
        (center, super::columns::usable_scale(scale))
    }
}

/// The statistics of each of `cols` over `rows` (`None` for a text
/// column), columns split over the threads of [`crate::parallel`].
pub(crate) fn num_stats(table: &Table, cols: &[usize], rows: &[usize], scaling: Scaling) -> Vec<Option<NumStats>> {
    let parts = in_parts(cols.len(), cols.len().saturating_mul(rows.len()), |range| {
        let mut out = Vec::with_capacity(range.len());
        let cols = &cols[range];
        // As many columns in each pass as there are in all, over passes
        // of at most LANES.
        let per = cols.len().div_ceil(cols.len().div_ceil(LANES).max(1)).max(1);
        for lane in cols.chunks(per) {
            let numeric: Vec<(f64, &[f32])> = lane
                .iter()
                .filter_map(|&c| match &table.cols[c] {
                    Column::Num { shift, values } => Some((*shift, values.as_slice())),
                    Column::Text { .. } => None,
                })
                .collect();
            let mut stats = side_by_side(&numeric, rows, scaling).into_iter();
            for &c in lane {
                out.push(
                    matches!(table.cols[c], Column::Num { .. })
                        .then(|| stats.next())
                        .flatten(),
                );
            }
        }
        out
    });
    parts.into_iter().flatten().collect()
}

/// The statistics of up to [`LANES`] columns `(shift, values)` over `rows`.
fn side_by_side(cols: &[(f64, &[f32])], rows: &[usize], scaling: Scaling) -> Vec<NumStats> {
    match cols.len() {
        0 => Vec::new(),
        1 => lanes::<1>(cols, rows, scaling),
        2 => lanes::<2>(cols, rows, scaling),
        3 => lanes::<3>(cols, rows, scaling),
        4 => lanes::<4>(cols, rows, scaling),
        5 => lanes::<5>(cols, rows, scaling),
        6 => lanes::<6>(cols, rows, scaling),
        7 => lanes::<7>(cols, rows, scaling),
        _ => lanes::<LANES>(cols, rows, scaling),
    }
}

/// [`side_by_side`] on exactly `M` columns (the first `M` of `cols`), the
/// loops over them unrolled so that each column's accumulators stay in
/// registers: one pass for the counts, extremes and sums, a second for the
/// squared deviations where z-scoring needs them. Compiled for AVX-512 and
/// AVX2 too and chosen at run time, as [`crate::simd`] does: the `M`
/// columns of a row go through one vector of accumulators.
fn lanes<const M: usize>(cols: &[(f64, &[f32])], rows: &[usize], scaling: Scaling) -> Vec<NumStats> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn wide512<const M: usize>(cols: &[(f64, &[f32])], rows: &[usize], scaling: Scaling) -> Vec<NumStats> {
        lanes_body::<M>(cols, rows, scaling)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn wide256<const M: usize>(cols: &[(f64, &[f32])], rows: &[usize], scaling: Scaling) -> Vec<NumStats> {
        lanes_body::<M>(cols, rows, scaling)
    }
    match crate::simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level 3 means the CPU has AVX-512F, AVX2 and FMA.
        3 => unsafe { wide512::<M>(cols, rows, scaling) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level 2 means the CPU has AVX2 and FMA.
        2 => unsafe { wide256::<M>(cols, rows, scaling) },
        _ => lanes_body::<M>(cols, rows, scaling),
    }
}

/// The body of [`lanes`], branch-free: a missing (NaN) value adds `-0.0`
/// to a sum (which leaves every sum as it was, `-0.0` included), 0 to its
/// count, and leaves the extremes as they were (`f64::min` and `max`
/// return the other operand of a NaN). So each sum is the same chain of
/// additions, in row order, as with a branch per value.
#[inline(always)]
fn lanes_body<const M: usize>(cols: &[(f64, &[f32])], rows: &[usize], scaling: Scaling) -> Vec<NumStats> {
    let shift: [f64; M] = std::array::from_fn(|k| cols[k].0);
    let values: [&[f32]; M] = std::array::from_fn(|k| cols[k].1);
    let mut n = [0u64; M];
    let mut lo = [f64::INFINITY; M];
    let mut hi = [f64::NEG_INFINITY; M];
    // `Sum for f64` starts from -0.0; so do these.
    let mut sum = [-0.0f64; M];
    for &r in rows {
        let x: [f64; M] = std::array::from_fn(|k| shift[k] + f64::from(values[k][r]));
        for k in 0..M {
            let present = !x[k].is_nan();
            n[k] += u64::from(present);
            lo[k] = lo[k].min(x[k]);
            hi[k] = hi[k].max(x[k]);
            sum[k] += if present { x[k] } else { -0.0 };
        }
    }
    let mut ssd = [-0.0f64; M];
    let mean: [f64; M] = std::array::from_fn(|k| sum[k] / n[k].max(1) as f64);
    if scaling == Scaling::ZScore && (0..M).any(|k| lo[k] != hi[k]) {
        for &r in rows {
            let x: [f64; M] = std::array::from_fn(|k| shift[k] + f64::from(values[k][r]));
            for k in 0..M {
                let d = (x[k] - mean[k]).powi(2);
                ssd[k] += if x[k].is_nan() { -0.0 } else { d };
            }
        }
    }
    (0..M)
        .map(|k| NumStats {
            present: n[k] as usize,
            lo: lo[k],
            hi: hi[k],
            sum: sum[k],
            ssd: ssd[k],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::{CsvOptions, parse_csv};
    use crate::data::preprocess::Impute;

    /// `cols` numeric columns of `n` rows with awkward values: missing
    /// cells, large offsets, a constant column, negative zeros.
    fn table(n: usize, cols: usize) -> Table {
        let mut csv = (0..cols).map(|c| format!("c{c}")).collect::<Vec<_>>().join(",") + "\n";
        for r in 0..n {
            let cells: Vec<String> = (0..cols)
                .map(|c| match (c % 5, (r * 7 + c * 3) % 11) {
                    (_, 4) if c % 3 == 1 => String::new(),
                    (0, _) => "2.5".into(),
                    (2, _) if c == 7 => format!("x{}", r % 3),
                    (1, _) => format!("{}", 1e6 + (r as f64 * 0.37 + c as f64).sin() * 3.0),
                    (2, k) if k < 3 => "-0".into(),
                    _ => format!("{:.4}", ((r * (c + 1)) as f64 * 0.731).cos() * 1e-3 * (c + 1) as f64),
                })
                .collect();
            csv += &(cells.join(",") + "\n");
        }
        let raw = parse_csv(csv.as_bytes(), "t.csv".as_ref(), &CsvOptions::default()).unwrap();
        Table::from_raw(&raw)
    }

    #[test]
    fn equal_to_the_gathered_fit() {
        let _level = crate::simd::level_lock();
        let sizes = [(1, 1), (2, 3), (33, 9), (97, 17), (1009, 8), (4099, 21)];
        // At the widest vector level, then at the baseline.
        for (n, cols, baseline) in sizes.iter().flat_map(|&(n, c)| [(n, c, false), (n, c, true)]) {
            crate::simd::set_baseline_only(baseline);
            let t = table(n, cols);
            let rows: Vec<usize> = (0..n).filter(|r| r % 7 != 3 || n < 3).collect();
            let all: Vec<usize> = (0..cols).collect();
            for scaling in [Scaling::ZScore, Scaling::MinMax, Scaling::None] {
                let stats = num_stats(&t, &all, &rows, scaling);
                for (c, s) in stats.iter().enumerate() {
                    let Column::Num { shift, values } = &t.cols[c] else {
                        assert!(s.is_none(), "column {c} is text");
                        continue;
                    };
                    let s = s.expect("a numeric column's statistics");
                    let mut gathered: Vec<f64> = rows
                        .iter()
                        .map(|&r| values[r])
                        .filter(|v| !v.is_nan())
                        .map(|v| shift + f64::from(v))
                        .collect();
                    assert_eq!(s.present, gathered.len(), "n {n} column {c}");
                    if gathered.is_empty() {
                        continue;
                    }
                    let (center, scale) = scaling.fit(&gathered);
                    let (c2, s2) = s.scaling(scaling);
                    assert_eq!(
                        (center.to_bits(), scale.to_bits()),
                        (c2.to_bits(), s2.to_bits()),
                        "n {n} column {c} {scaling}"
                    );
                    let fill = Impute::Mean.fill(&mut gathered);
                    assert_eq!(fill.to_bits(), s.mean().to_bits(), "n {n} column {c}");
                }
            }
        }
        crate::simd::set_baseline_only(false);
    }
}
