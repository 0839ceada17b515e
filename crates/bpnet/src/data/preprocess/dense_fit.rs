//! Fitting the feature columns of a [`DenseMatrix`] on its training rows,
//! as `fit_feature` fits numeric CSV columns holding the same numbers, bit
//! for bit.
//!
//! Column ranges are spread over threads; within a range, one sweep over
//! the training rows (in row order) reads each value once, through the
//! CSV rules ([`DenseMatrix::plain`], [`DenseMatrix::number`]). The sweep
//! keeps per column only what the fit needs — the count `n`, the sum
//! `Σx` (from −0.0, in row order: the bits of `values.iter().sum()`), the
//! least and greatest value, the first missing row and the first bad
//! value's error — so no copy of the column is made. Z-scoring sweeps a
//! second time for `Σ(x − mean)²` (again in row order, as
//! [`Scaling::fit`] sums it); a median fill needs every value and gathers
//! them (the only case that holds a column's values).

use super::columns::{Impute, Scaling};
use super::dense::{DenseData, DenseMatrix, plain_row};
use super::features::FeatureKind;
use super::{Feature, PreprocessSpec};
use crate::data::parts::in_parts;
use crate::error::{Error, Result};
use std::ops::Range;

/// Columns gathered per sweep over the rows for a median fill (which holds
/// every value of the block's columns).
const COLUMN_BLOCK: usize = 16;

/// Fits every feature column on the training `rows` (see the module docs);
/// the first error and the notes come in column order.
pub(super) fn fit_columns(
    x: &DenseMatrix<'_>,
    shifts: &[Option<f64>],
    names: &[String],
    rows: &[usize],
    spec: &PreprocessSpec,
    notes: &mut Vec<String>,
) -> Result<Vec<Feature>> {
    // Each thread sweeps one range of columns: for row-major data a
    // contiguous stretch of every row, which the hardware prefetches (a
    // 64-byte stretch per row misses the cache on every row). A median
    // fill holds each column's values, so it walks its range in blocks of
    // COLUMN_BLOCK columns to bound that memory.
    let block = if spec.impute == Some(Impute::Median) {
        COLUMN_BLOCK
    } else {
        usize::MAX
    };
    let parts = in_parts(x.cols(), x.cols() * rows.len(), |range| {
        let mut notes = Vec::new();
        let mut features = Vec::new();
        let mut start = range.start;
        while start < range.end {
            let cols = start..range.end.min(start.saturating_add(block));
            start = cols.end;
            let block = Block {
                x,
                cols,
                shifts,
                names,
                rows,
            };
            features.extend(block.fit(spec, &mut notes)?);
        }
        Ok((features, notes))
    });
    let mut features = Vec::with_capacity(x.cols());
    for part in parts {
        let (f, n): (Vec<Feature>, Vec<String>) = part?;
        features.extend(f);
        notes.extend(n);
    }
    Ok(features)
}

/// A block of columns over the training rows.
struct Block<'a> {
    x: &'a DenseMatrix<'a>,
    cols: Range<usize>,
    shifts: &'a [Option<f64>],
    names: &'a [String],
    rows: &'a [usize],
}

/// What a sweep over a block does with each training value of each of its
/// columns (`i`: the column's index in the block).
trait Visitor {
    /// A number.
    fn value(&mut self, i: usize, v: f64);
    /// A row whose values `v` (one per column of the block) are all numbers:
    /// [`Visitor::value`] for each, which an implementation may do at once.
    fn row(&mut self, v: &[f64]) {
        v.iter().enumerate().for_each(|(i, &v)| self.value(i, v));
    }
    /// A missing value (NaN) in row `r`.
    fn missing(&mut self, _i: usize, _r: usize) {}
    /// An infinite or absurd value; the column's later values that are not
    /// plain numbers are skipped (a column reports its first error).
    fn bad(&mut self, _i: usize, _e: Error) {}
    /// Whether column `i` has had a bad value.
    fn failed(&self, _i: usize) -> bool {
        false
    }
}

/// What one sweep keeps of each column of a block (see the module docs),
/// one vector per quantity so that a row updates every column at once.
struct Stats {
    n: Vec<usize>,
    missing: Vec<usize>,
    sum: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    first_missing: Vec<Option<usize>>,
    error: Vec<Option<Error>>,
}

impl Stats {
    fn new(k: usize) -> Self {
        Stats {
            n: vec![0; k],
            missing: vec![0; k],
            // `Sum for f64` folds from −0.0: the same bits for a column of −0.0.
            sum: vec![-0.0; k],
            lo: vec![f64::INFINITY; k],
            hi: vec![f64::NEG_INFINITY; k],
            first_missing: vec![None; k],
            error: (0..k).map(|_| None).collect(),
        }
    }

    fn mean(&self, i: usize) -> f64 {
        self.sum[i] / self.n[i].max(1) as f64
    }

    /// The first bad value's error, in column order.
    fn first_error(&mut self) -> Result<()> {
        match self.error.iter_mut().find_map(Option::take) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Visitor for Stats {
    #[inline]
    fn value(&mut self, i: usize, v: f64) {
        self.n[i] += 1;
        self.sum[i] += v;
        self.lo[i] = self.lo[i].min(v);
        self.hi[i] = self.hi[i].max(v);
    }
    fn row(&mut self, v: &[f64]) {
        let k = v.len();
        let (n, sum, lo, hi) = (
            &mut self.n[..k],
            &mut self.sum[..k],
            &mut self.lo[..k],
            &mut self.hi[..k],
        );
        for j in 0..k {
            n[j] += 1;
            sum[j] += v[j];
            lo[j] = lo[j].min(v[j]);
            hi[j] = hi[j].max(v[j]);
        }
    }
    fn missing(&mut self, i: usize, r: usize) {
        self.missing[i] += 1;
        self.first_missing[i].get_or_insert(r);
    }
    fn bad(&mut self, i: usize, e: Error) {
        self.error[i] = Some(e);
    }
    fn failed(&self, i: usize) -> bool {
        self.error[i].is_some()
    }
}

/// `Σ(x − mean)²` per column, from the columns' means.
struct Deviations {
    means: Vec<f64>,
    ssd: Vec<f64>,
}

impl Visitor for Deviations {
    #[inline]
    fn value(&mut self, i: usize, v: f64) {
        // The expression `Scaling::fit` sums.
        self.ssd[i] += (v - self.means[i]).powi(2);
    }
    fn row(&mut self, v: &[f64]) {
        let k = v.len();
        let (ssd, means) = (&mut self.ssd[..k], &self.means[..k]);
        for j in 0..k {
            ssd[j] += (v[j] - means[j]).powi(2);
        }
    }
}

/// Every value of each column (a median fill), with the missing rows.
struct Gathered {
    values: Vec<Vec<f64>>,
    stats: Stats,
}

impl Visitor for Gathered {
    #[inline]
    fn value(&mut self, i: usize, v: f64) {
        self.values[i].push(v);
    }
    fn missing(&mut self, i: usize, r: usize) {
        self.stats.missing(i, r);
    }
    fn bad(&mut self, i: usize, e: Error) {
        self.stats.bad(i, e);
    }
    fn failed(&self, i: usize) -> bool {
        self.stats.failed(i)
    }
}

impl Block<'_> {
    /// Visits the value of every training row of every column, in row
    /// order, by the CSV rules. Row-major data is read a row slice at a
    /// time: a row of plain numbers goes to [`Visitor::row`] whole; any
    /// other row, and column-major data, value by value.
    fn visit(&self, v: &mut impl Visitor) {
        let shift: Vec<f64> = self.cols.clone().map(|c| self.shifts[c].unwrap_or(0.0)).collect();
        let shifted: Vec<bool> = self.cols.clone().map(|c| self.shifts[c].is_some()).collect();
        let mut vals = vec![0.0; self.cols.len()];
        for &r in self.rows {
            let whole = match self.x.row_slice(r, self.cols.clone()) {
                Some(DenseData::F32(row)) => plain_row(row, &shift, &shifted, &mut vals),
                Some(DenseData::F64(row)) => plain_row(row, &shift, &shifted, &mut vals),
                None => false,
            };
            if whole {
                v.row(&vals);
            } else {
                self.visit_row(r, v);
            }
        }
    }

    /// Row `r`'s values one by one (see [`Block::visit`]).
    fn visit_row(&self, r: usize, v: &mut impl Visitor) {
        let (x, shifts) = (self.x, self.shifts);
        for (i, c) in self.cols.clone().enumerate() {
            if let Some(value) = x.plain(r, c, shifts[c]) {
                v.value(i, value);
                continue;
            }
            if v.failed(i) {
                continue;
            }
            match x.number(r, c, &self.names[c], shifts[c]) {
                Ok(Some(value)) => v.value(i, value),
                Ok(None) => v.missing(i, r),
                Err(e) => v.bad(i, e),
            }
        }
    }

    /// The block's features (the first column error, in column order).
    fn fit(&self, spec: &PreprocessSpec, notes: &mut Vec<String>) -> Result<Vec<Feature>> {
        if spec.impute == Some(Impute::Median) {
            return self.fit_gathered(spec, notes);
        }
        let mut stats = Stats::new(self.cols.len());
        self.visit(&mut stats);
        stats.first_error()?;
        let ssd = self.squared_deviations(spec.scaling, &stats);
        self.cols
            .clone()
            .enumerate()
            .map(|(i, c)| {
                self.check(c, stats.n[i], stats.first_missing[i], spec)?;
                let (lo, hi) = (stats.lo[i], stats.hi[i]);
                let (center, scale) = match spec.scaling {
                    Scaling::None => (0.0, 1.0),
                    _ if lo == hi => (lo, 1.0),
                    Scaling::ZScore => (stats.mean(i), (ssd[i] / stats.n[i] as f64).sqrt()),
                    Scaling::MinMax => ((hi + lo) / 2.0, (hi - lo) / 2.0),
                };
                let scale = super::columns::usable_scale(scale);
                let fill = spec.impute.map(|_| stats.mean(i));
                Ok(self.feature(c, center, scale, fill, stats.missing[i], notes))
            })
            .collect()
    }

    /// `Σ(x − mean)²` per column, in row order, where z-scoring needs it
    /// (−0.0 elsewhere).
    fn squared_deviations(&self, scaling: Scaling, stats: &Stats) -> Vec<f64> {
        let k = self.cols.len();
        let mut d = Deviations {
            means: (0..k).map(|i| stats.mean(i)).collect(),
            ssd: vec![-0.0; k],
        };
        if scaling == Scaling::ZScore && (0..k).any(|i| stats.lo[i] != stats.hi[i]) {
            self.visit(&mut d);
        }
        d.ssd
    }

    /// A median fill: every column's values gathered, then fitted as the
    /// CSV path fits them.
    fn fit_gathered(&self, spec: &PreprocessSpec, notes: &mut Vec<String>) -> Result<Vec<Feature>> {
        let k = self.cols.len();
        let mut g = Gathered {
            values: (0..k).map(|_| Vec::with_capacity(self.rows.len())).collect(),
            stats: Stats::new(k),
        };
        self.visit(&mut g);
        g.stats.first_error()?;
        let stats = g.stats;
        self.cols
            .clone()
            .zip(g.values)
            .enumerate()
            .map(|(i, (c, mut values))| {
                self.check(c, values.len(), stats.first_missing[i], spec)?;
                let (center, scale) = spec.scaling.fit(&values);
                let fill = spec.impute.map(|f| f.fill(&mut values));
                Ok(self.feature(c, center, scale, fill, stats.missing[i], notes))
            })
            .collect()
    }

    /// Column `c` has a training value, and no missing one unless imputing.
    fn check(&self, c: usize, n: usize, first_missing: Option<usize>, spec: &PreprocessSpec) -> Result<()> {
        let name = &self.names[c];
        if n == 0 {
            return Err(Error::config(
                "X",
                format!("column '{name}': every training value is missing (NaN)"),
            ));
        }
        if let (Some(r), None) = (first_missing, spec.impute) {
            return Err(Error::config(
                "X",
                format!(
                    "row {r}, column '{name}': {}",
                    super::features::MISSING_NOT_IMPUTED_ARRAYS
                ),
            ));
        }
        Ok(())
    }

    /// The fitted feature of column `c`, with the CSV path's note on filled
    /// cells.
    fn feature(
        &self,
        c: usize,
        center: f64,
        scale: f64,
        fill: Option<f64>,
        missing: usize,
        notes: &mut Vec<String>,
    ) -> Feature {
        let name = &self.names[c];
        if let (Some(f), true) = (fill, missing > 0) {
            notes.push(format!("impute: {missing} missing cells of '{name}' filled with {f}"));
        }
        Feature {
            name: name.to_string(),
            index: c,
            kind: FeatureKind::Numeric { center, scale, fill },
        }
    }
}
