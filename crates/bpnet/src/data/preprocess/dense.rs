//! Preprocessing of numeric arrays held in memory (the Python package's
//! input): the same fitted [`Preprocessor`] as for a CSV table whose feature
//! columns hold the same numbers, so that training on an array and on the
//! equivalent CSV file gives the same features, bit for bit.
//!
//! Feature values follow the CSV rules for a numeric cell: NaN is a missing
//! value (filled when imputing, else an error), an infinite value or one
//! beyond ±1e30 is an error. Targets go through the CSV code itself: they
//! arrive as a [`RawTable`] of cell texts (class labels as written, numbers
//! in their shortest round-trip form).

use super::columns::{Task, detect_task};
use super::dense_fit::fit_columns;
use super::features::FeatureKind;
use super::targets::{TargetMap, fit_target};
use super::{PreprocessSpec, Preprocessor, ReadAs, Targets};
use crate::data::csv::RawTable;
use crate::data::parts::fill_rows;
use crate::data::table::{ABSURD, Table};
use crate::error::{Error, Result};
use crate::tensor::Matrix;

/// Element layout of a [`DenseMatrix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major (C order): element `(r, c)` at `r * cols + c`.
    RowMajor,
    /// Column-major (Fortran order): element `(r, c)` at `c * rows + r`.
    ColMajor,
}

/// The element buffer of a [`DenseMatrix`].
#[derive(Debug, Clone, Copy)]
pub enum DenseData<'a> {
    /// Single precision.
    F32(&'a [f32]),
    /// Double precision.
    F64(&'a [f64]),
}

/// A borrowed `[rows, cols]` matrix of numbers, f32 or f64, in either layout
/// (no copy of the caller's buffer is made).
#[derive(Debug, Clone, Copy)]
pub struct DenseMatrix<'a> {
    data: DenseData<'a>,
    rows: usize,
    cols: usize,
    layout: Layout,
}

impl<'a> DenseMatrix<'a> {
    /// Wraps `data` as a `[rows, cols]` matrix; its length must be `rows * cols`.
    pub fn new(data: DenseData<'a>, rows: usize, cols: usize, layout: Layout) -> Result<Self> {
        let len = match data {
            DenseData::F32(d) => d.len(),
            DenseData::F64(d) => d.len(),
        };
        if rows.checked_mul(cols) != Some(len) {
            return Err(Error::shape("dense matrix", format!("{rows}x{cols} values"), len));
        }
        Ok(DenseMatrix {
            data,
            rows,
            cols,
            layout,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(r, c)` as f64 (exact for f32).
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> f64 {
        let i = match self.layout {
            Layout::RowMajor => r * self.cols + c,
            Layout::ColMajor => c * self.rows + r,
        };
        match self.data {
            DenseData::F32(d) => f64::from(d[i]),
            DenseData::F64(d) => d[i],
        }
    }

    /// Per column, the shift a [`crate::data::table::Table`] read from the
    /// CSV of this matrix (a header line, then the shortest round-trip text
    /// of every value, NaN as an empty cell) stores its numbers from, `None`
    /// where that table keeps the column's text (at most
    /// [`crate::data::table::FEW_VALUES`] distinct values in the first
    /// [`crate::data::table::SAMPLE`] rows, each seen twice on average, or
    /// no number there; the rule is the CSV reader's own): those
    /// columns hold exact f64 values, the others `shift + (v - shift) as
    /// f32`, so that arrays and their CSV give bit-identical features.
    /// Without a header line the file's first record is data but not part
    /// of the sample, as in the CSV reader.
    pub fn csv_shifts(&self, has_header: bool) -> Vec<Option<f64>> {
        use crate::data::table::{FEW_VALUES, SAMPLE};
        let skip = usize::from(!has_header);
        (0..self.cols)
            .map(|c| {
                let (mut sum, mut n) = (0.0, 0usize);
                let mut distinct = std::collections::HashSet::new();
                for r in skip..self.rows.min(SAMPLE + skip) {
                    let v = self.get(r, c);
                    if v.is_nan() {
                        distinct.insert(u64::MAX);
                        continue;
                    }
                    // As a CSV sample with an infinite or absurd number is
                    // read as text (see `build::sample_kind`): no shift, so
                    // that the other rows are not stored against a shift of
                    // 1e298 (and read as -inf).
                    if !(v.is_finite() && v.abs() <= ABSURD) {
                        return None;
                    }
                    sum += v;
                    n += 1;
                    if distinct.len() <= FEW_VALUES {
                        distinct.insert(v.to_bits());
                    }
                }
                crate::data::table::build::shift_of_sample(sum, n, distinct.len())
            })
            .collect()
    }

    /// Row `r`'s values in columns `cols`, as a slice of the buffer, for
    /// row-major data (`None` for column-major data).
    pub(super) fn row_slice(&self, r: usize, cols: std::ops::Range<usize>) -> Option<DenseData<'a>> {
        let at = r * self.cols;
        match (self.layout, self.data) {
            (Layout::RowMajor, DenseData::F32(d)) => Some(DenseData::F32(&d[at + cols.start..at + cols.end])),
            (Layout::RowMajor, DenseData::F64(d)) => Some(DenseData::F64(&d[at + cols.start..at + cols.end])),
            (Layout::ColMajor, _) => None,
        }
    }

    /// [`DenseMatrix::number`] for the common case, a finite value within
    /// ±1e30 (`None` otherwise: then `number` says what it is); kept small
    /// so that the loops over every cell inline it.
    #[inline(always)]
    pub(super) fn plain(&self, r: usize, c: usize, shift: Option<f64>) -> Option<f64> {
        let v = self.get(r, c);
        if !(v.is_finite() && v.abs() <= ABSURD) {
            return None;
        }
        let v = match shift {
            Some(s) => s + f64::from((v - s) as f32),
            None => v,
        };
        (v.abs() <= ABSURD).then_some(v)
    }

    /// The number at `(r, c)` as a CSV of the same data holds it (see
    /// [`DenseMatrix::csv_shifts`]), `None` for NaN (missing); an infinite
    /// value or one beyond ±1e30 is an error naming the 0-based row and the
    /// column.
    pub(super) fn number(&self, r: usize, c: usize, name: &str, shift: Option<f64>) -> Result<Option<f64>> {
        let v = self.get(r, c);
        let v = match shift {
            Some(s) if v.is_finite() && v.abs() <= ABSURD => s + f64::from((v - s) as f32),
            _ => v,
        };
        let bad = |what: String| Error::config("X", format!("row {r}, column '{name}': {what}"));
        if v.is_nan() {
            Ok(None)
        } else if v.is_infinite() {
            Err(bad(format!("infinite value {v}")))
        } else if v.abs() > ABSURD {
            Err(bad(format!("value {v:e} is beyond ±1e30")))
        } else {
            Ok(Some(v))
        }
    }
}

/// A row's values (a slice of row-major data) under the CSV rules, where each is a plain
/// number (see [`DenseMatrix::plain`]): written to `out`; `false` if any is
/// not (missing, infinite or absurd). Branch-free over the row, so that the
/// compiler can vectorize it.
#[inline]
pub(super) fn plain_row<T: Copy + Into<f64>>(row: &[T], shift: &[f64], shifted: &[bool], out: &mut [f64]) -> bool {
    let k = row.len();
    let (shift, shifted, out) = (&shift[..k], &shifted[..k], &mut out[..k]);
    let mut ok = true;
    for j in 0..k {
        let v: f64 = row[j].into();
        let s = shift[j];
        // As `plain`: shifted only when v is a finite number within ±1e30.
        let w = if shifted[j] { s + f64::from((v - s) as f32) } else { v };
        out[j] = w;
        ok &= v.is_finite() & (v.abs() <= ABSURD) & (w.abs() <= ABSURD);
    }
    ok
}

impl Preprocessor {
    /// Fits on the `train_rows` of the numeric features `x` (columns named
    /// `names`) and of the target table `y` (one row per row of `x`, its
    /// columns the targets), as [`Preprocessor::fit`] would on a table holding
    /// `x`'s columns followed by `y`'s. `has_header` is what a CSV of the
    /// same data would have (it decides how `bpnet eval` reads files later).
    pub fn fit_dense(
        x: &DenseMatrix<'_>,
        names: &[String],
        y: &RawTable,
        has_header: bool,
        train_rows: &[usize],
        spec: &PreprocessSpec,
    ) -> Result<(Preprocessor, Vec<String>)> {
        Self::fit_dense_with(x, names, y, has_header, train_rows, spec, None)
    }

    /// As [`Preprocessor::fit_dense`], for classification into the given
    /// `classes` (every label that will ever be seen): the target encoding
    /// is the classes', so the rows need not hold two of them (one row will
    /// do); their labels are encoded against it when transformed.
    pub fn fit_dense_classes(
        x: &DenseMatrix<'_>,
        names: &[String],
        y: &RawTable,
        has_header: bool,
        train_rows: &[usize],
        spec: &PreprocessSpec,
        classes: &[String],
    ) -> Result<(Preprocessor, Vec<String>)> {
        if spec.task == Some(Task::Regress) {
            return Err(Error::config("classes", "only classification has classes"));
        }
        Self::fit_dense_with(x, names, y, has_header, train_rows, spec, Some(classes))
    }

    fn fit_dense_with(
        x: &DenseMatrix<'_>,
        names: &[String],
        y: &RawTable,
        has_header: bool,
        train_rows: &[usize],
        spec: &PreprocessSpec,
        classes: Option<&[String]>,
    ) -> Result<(Preprocessor, Vec<String>)> {
        check_shapes(x, names, y)?;
        if train_rows.is_empty() {
            return Err(Error::config("X", "no training rows"));
        }
        if let Some(&r) = train_rows.iter().find(|&&r| r >= x.rows()) {
            return Err(Error::config(
                "X",
                format!("row {r} is out of range: {} rows", x.rows()),
            ));
        }
        let mut notes = Vec::new();
        let targets: Vec<usize> = (0..y.n_cols()).collect();
        let (task, target) = match (classes, spec.task) {
            (Some(c), _) => (Task::Classify, classes_target(c, &y.columns, has_header)?),
            (None, Some(t)) => (t, fit_target(&Table::from_raw(y), &targets, train_rows, t)?),
            (None, None) => {
                let (t, note) = detect_task(y, &targets, train_rows)?;
                notes.push(note);
                (t, fit_target(&Table::from_raw(y), &targets, train_rows, t)?)
            }
        };
        let shifts = x.csv_shifts(has_header);
        let features = fit_columns(x, &shifts, names, train_rows, spec, &mut notes)?;
        // As a CSV of these numbers would be read: a shift, or text.
        let read_as = features
            .iter()
            .filter(|f| matches!(f.kind, FeatureKind::Numeric { .. }))
            .map(|f| {
                let read = shifts
                    .get(f.index)
                    .copied()
                    .flatten()
                    .map_or(ReadAs::Text, ReadAs::Shift);
                (f.name.clone(), read)
            })
            .collect();
        let n = x.cols();
        let pre = Preprocessor {
            task,
            scaling: spec.scaling,
            impute: spec.impute,
            has_header,
            columns: names.iter().chain(&y.columns).cloned().collect(),
            features,
            target_columns: y.columns.clone(),
            target_indices: (n..n + y.n_cols()).collect(),
            target,
            read_as,
            unseen_as_zeros: false,
        };
        Ok((pre, notes))
    }

    /// The feature matrix `[rows.len(), n_features()]` of `x`'s `rows`, whose
    /// columns are the model's feature columns in order; every feature must be
    /// numeric (a model that one-hot encodes a text column takes a CSV).
    pub fn transform_dense(&self, x: &DenseMatrix<'_>, rows: &[usize]) -> Result<Matrix<f32>> {
        if x.cols() != self.features.len() {
            return Err(Error::config(
                "X",
                format!(
                    "{} columns, but the model takes {} features",
                    x.cols(),
                    self.features.len()
                ),
            ));
        }
        let mut scale = Vec::with_capacity(self.features.len());
        for f in &self.features {
            match &f.kind {
                FeatureKind::Numeric { center, scale: s, fill } => scale.push((*center, *s, *fill)),
                FeatureKind::Categorical { .. } => {
                    return Err(Error::config(
                        "X",
                        format!(
                            "the model one-hot encodes the text column '{}'; numeric arrays cannot feed it (use a CSV file)",
                            f.name
                        ),
                    ));
                }
            }
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= x.rows()) {
            return Err(Error::config(
                "X",
                format!("row {r} is out of range: {} rows", x.rows()),
            ));
        }
        // Each column's shift as the training data held it (not from these
        // rows: a row's features depend on that row alone).
        let given = self.shifts();
        let shifts: Vec<Option<f64>> = self.features.iter().map(|f| given.get(&f.name).flatten()).collect();
        let width = scale.len();
        let shift: Vec<f64> = shifts.iter().map(|s| s.unwrap_or(0.0)).collect();
        let shifted: Vec<bool> = shifts.iter().map(Option::is_some).collect();
        let (center, spread): (Vec<f64>, Vec<f64>) = scale.iter().map(|&(c, s, _)| (c, s)).unzip();
        // Rows scaled in parallel; the first error in row order. A row of
        // plain numbers (see `plain_row`) is scaled at once, any other value
        // by value.
        let mut data = vec![0.0f32; rows.len() * width];
        fill_rows(&mut data, rows.len(), width, |range, out| {
            let mut vals = vec![0.0; width];
            for (&r, out) in rows[range].iter().zip(out.chunks_exact_mut(width.max(1))) {
                let whole = match x.row_slice(r, 0..width) {
                    Some(DenseData::F32(row)) => plain_row(row, &shift, &shifted, &mut vals),
                    Some(DenseData::F64(row)) => plain_row(row, &shift, &shifted, &mut vals),
                    None => false,
                };
                if whole {
                    for (o, ((&v, &c), &s)) in out.iter_mut().zip(vals.iter().zip(&center).zip(&spread)) {
                        *o = ((v - c) / s) as f32;
                    }
                    continue;
                }
                for (c, (o, &(center, s, fill))) in out.iter_mut().zip(&scale).enumerate() {
                    let v = match x.plain(r, c, shifts[c]) {
                        Some(v) => Some(v),
                        None => x.number(r, c, &self.features[c].name, shifts[c])?,
                    };
                    let v = match (v, fill) {
                        (Some(v), _) => v,
                        (None, Some(fv)) => fv,
                        (None, None) => {
                            let name = &self.features[c].name;
                            let what = format!(
                                "row {r}, column '{name}': {}",
                                super::features::MISSING_NOT_IMPUTED_ARRAYS
                            );
                            return Err(Error::config("X", what));
                        }
                    };
                    *o = ((v - center) / s) as f32;
                }
            }
            Ok(())
        })?;
        Matrix::from_vec(rows.len(), scale.len(), data)
    }
}

impl Preprocessor {
    /// The targets of `y`'s `rows`, `y` holding only the target column(s)
    /// in the model's order (see [`target_table`]).
    pub fn transform_dense_targets(&self, y: &RawTable, rows: &[usize]) -> Result<Targets> {
        if y.n_cols() != self.target_indices.len() {
            return Err(Error::config(
                "y",
                format!(
                    "{} target columns, but the model has {}",
                    y.n_cols(),
                    self.target_indices.len()
                ),
            ));
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= y.len()) {
            return Err(Error::config("y", format!("row {r} is out of range: {} rows", y.len())));
        }
        let cols: Vec<usize> = (0..y.n_cols()).collect();
        self.target.encode(&Table::from_raw(y), rows, &cols)
    }
}

fn check_shapes(x: &DenseMatrix<'_>, names: &[String], y: &RawTable) -> Result<()> {
    if names.len() != x.cols() {
        return Err(Error::shape("feature names", x.cols(), names.len()));
    }
    if y.len() != x.rows() {
        return Err(Error::config(
            "y",
            format!("{} rows, but X has {} rows", y.len(), x.rows()),
        ));
    }
    if y.n_cols() == 0 || y.rows.iter().any(|r| r.len() != y.n_cols()) {
        return Err(Error::config("y", "every row needs one cell per target column"));
    }
    if x.cols() == 0 {
        return Err(Error::config("X", "no feature columns"));
    }
    Ok(())
}

/// The target table of class labels or target values: one column per name,
/// `cells[r][j]` the text of row `r`'s target `j` (path `y` in errors, line
/// `r + 1` for row `r`).
pub fn target_table(names: Vec<String>, cells: Vec<Vec<String>>, has_header: bool) -> RawTable {
    let lines = (1..=cells.len() as u64).collect();
    RawTable {
        path: "y".into(),
        columns: names,
        has_header,
        rows: cells,
        lines,
    }
}

/// The target encoding of classification into `classes`, fitted as on a
/// target column (named `columns`) holding each class once.
fn classes_target(classes: &[String], columns: &[String], has_header: bool) -> Result<TargetMap> {
    if classes.is_empty() {
        return Err(Error::config("classes", "no classes given"));
    }
    let cells = classes.iter().map(|c| vec![c.clone()]).collect();
    let table = target_table(columns.to_vec(), cells, has_header);
    let rows: Vec<usize> = (0..classes.len()).collect();
    let mut map = fit_target(&Table::from_raw(&table), &[0], &rows, Task::Classify)?;
    // Numbers are read as numbers ('0.0' named '0'): the classes keep the
    // texts they were given, as the labels of a fit keep theirs (the
    // caller looks its labels up by them).
    if let TargetMap::Classes { names, numeric: true } = &mut map {
        let value = |s: &str| s.trim().parse::<f64>().ok();
        for name in names.iter_mut() {
            if let Some(given) = classes.iter().find(|c| value(c).is_some() && value(c) == value(name)) {
                name.clone_from(given);
            }
        }
    }
    Ok(map)
}
