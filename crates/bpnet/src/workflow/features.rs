//! Data for a model without preprocessing (one made by `bpnet import`):
//! the file's columns are the network's input features as they are, every
//! cell a number. A CSV is comma-separated with its header detected as
//! usual (a first row without numbers names the columns); Parquet and
//! Arrow files work too. For `bpnet eval`, the `--target` columns are set
//! apart first: one column of class indices `0..K-1` for a model with `K`
//! outputs (K >= 2, softmax cross-entropy), or `K` columns of values
//! (mean squared error).

use crate::data::csv::{ColumnRef, CsvOptions, RawTable, is_missing, read_csv, short_cell};
use crate::data::table::{Cell, Format, Table, read_data};
use crate::data::{Dataset, Shifts};
use crate::{Error, Matrix, Result};
use std::borrow::Cow;
use std::path::Path;

/// The cells of a data file: a CSV's texts (each number parsed on its
/// own, so that a row's values do not depend on the other rows), or a
/// Parquet or Arrow file's typed table.
enum Source {
    Csv(RawTable),
    Typed(Table),
}

impl Source {
    fn open(data: &str) -> Result<Source> {
        let path = Path::new(data);
        let opts = CsvOptions {
            shifts: Shifts::default(),
            ..CsvOptions::default()
        };
        match Format::of(path) {
            Format::Csv => read_csv(path, &opts).map(Source::Csv),
            _ => read_data(path, &opts, None).map(Source::Typed),
        }
    }

    fn columns(&self) -> &[String] {
        match self {
            Source::Csv(t) => &t.columns,
            Source::Typed(t) => &t.columns,
        }
    }

    fn rows(&self) -> usize {
        match self {
            Source::Csv(t) => t.len(),
            Source::Typed(t) => t.len(),
        }
    }

    fn error(&self, reason: String) -> Error {
        let path = match self {
            Source::Csv(t) => &t.path,
            Source::Typed(t) => &t.path,
        };
        Error::Format {
            path: path.clone(),
            reason,
        }
    }

    fn resolve(&self, targets: &[ColumnRef]) -> Result<Vec<usize>> {
        match self {
            Source::Csv(t) => ColumnRef::resolve_all(targets, t),
            Source::Typed(t) => ColumnRef::resolve_all(targets, t),
        }
    }

    /// The text of cell `(r, c)` (`None`: missing).
    fn text(&self, r: usize, c: usize) -> Option<Cow<'_, str>> {
        match self {
            Source::Csv(t) => Some(Cow::Borrowed(t.rows[r][c].as_str())).filter(|s| !is_missing(s)),
            Source::Typed(t) => match t.cell(r, c) {
                Cell::Missing => None,
                Cell::Num(v) => Some(Cow::Owned(v.to_string())),
                Cell::Text(s) => Some(Cow::Borrowed(s)).filter(|s| !is_missing(s)),
            },
        }
    }

    /// Where data row `r` is: `line N` of a CSV, `row N` of a Parquet or
    /// Arrow file.
    fn place(&self, r: usize) -> String {
        match self {
            Source::Csv(t) => format!("line {}", t.lines[r]),
            Source::Typed(_) => format!("row {}", r + 1),
        }
    }

    /// Cell `(r, c)` as a finite number; else a one-line error naming the
    /// place and the column.
    fn number(&self, r: usize, c: usize) -> Result<f64> {
        let bad = |what: String| {
            self.error(format!(
                "{}, column '{}': {what}",
                self.place(r),
                short_cell(&self.columns()[c])
            ))
        };
        let Some(text) = self.text(r, c) else {
            return Err(bad(
                "missing value (a model without preprocessing takes numbers only: nothing is imputed)".into(),
            ));
        };
        // Finite as f32 too: the network reads f32 (3.5e38 would be infinite).
        match text.parse::<f64>() {
            Ok(v) if (v as f32).is_finite() => Ok(v),
            _ => Err(bad(format!(
                "'{}' is not a finite number of f32 range (a model without preprocessing takes the feature matrix as numbers)",
                short_cell(&text)
            ))),
        }
    }

    /// The columns `cols` of every row as an f32 matrix.
    fn matrix(&self, cols: &[usize]) -> Result<Matrix<f32>> {
        let mut data = Vec::with_capacity(self.rows() * cols.len());
        for r in 0..self.rows() {
            for &c in cols {
                data.push(self.number(r, c)? as f32);
            }
        }
        Matrix::from_vec(self.rows(), cols.len(), data)
    }

    /// Every column but `targets`, checked to be `inputs` columns.
    fn feature_columns(&self, targets: &[usize], inputs: usize) -> Result<Vec<usize>> {
        let cols: Vec<usize> = (0..self.columns().len()).filter(|c| !targets.contains(c)).collect();
        if cols.len() == inputs {
            return Ok(cols);
        }
        let found = match targets.len() {
            0 => format!("{} columns", cols.len()),
            t => format!("{} columns besides the {t} --target column(s)", cols.len()),
        };
        Err(self.error(format!(
            "{found}, but the model takes {inputs} input features (a model without preprocessing reads every column as a feature)"
        )))
    }
}

/// The feature matrix in `data` for a network of `inputs` inputs: every
/// column, each cell a finite number.
pub fn feature_matrix(data: &str, inputs: usize) -> Result<Matrix<f32>> {
    let source = Source::open(data)?;
    let cols = source.feature_columns(&[], inputs)?;
    source.matrix(&cols)
}

/// Labelled rows in `data` for a network of `inputs` inputs and `outputs`
/// outputs: the `targets` columns hold one class index `0..outputs-1`
/// (one column, `outputs >= 2`) or `outputs` values; every other column is
/// a feature.
pub fn feature_dataset(data: &str, inputs: usize, outputs: usize, targets: &[ColumnRef]) -> Result<Dataset> {
    check_targets(targets.len(), inputs, outputs)?;
    let source = Source::open(data)?;
    let target_cols = source.resolve(targets)?;
    if let Some(dup) = (1..target_cols.len()).find(|&i| target_cols[..i].contains(&target_cols[i])) {
        return Err(Error::config(
            "--target",
            format!("column {} is named twice", targets[dup]),
        ));
    }
    let x = source.matrix(&source.feature_columns(&target_cols, inputs)?)?;
    match target_cols[..] {
        [label] if outputs >= 2 => Dataset::new(x, class_indices(&source, label, outputs)?, outputs),
        _ => Dataset::regression(x, source.matrix(&target_cols)?),
    }
}

/// The error for `eval` of the model `model`, which has no preprocessing,
/// without `--target`.
pub fn missing_target(model: &Path, inputs: usize, outputs: usize) -> Error {
    Error::config(
        "--target",
        format!(
            "{} has no preprocessing (from `bpnet import`): name the label column (class indices 0..{}) or the {outputs} value column(s); the other {inputs} columns are its input features",
            model.display(),
            outputs.saturating_sub(1)
        ),
    )
}

/// One target column for a classifier (`outputs >= 2`), or one per output
/// for a regressor.
fn check_targets(n: usize, inputs: usize, outputs: usize) -> Result<()> {
    match n {
        0 => Err(missing_target(Path::new("the model"), inputs, outputs)),
        1 if outputs >= 2 => Ok(()),
        n if n == outputs => Ok(()),
        n => Err(Error::config(
            "--target",
            format!(
                "{n} columns, but the model has {outputs} outputs: give one column of class indices 0..{} or {outputs} value columns",
                outputs.saturating_sub(1)
            ),
        )),
    }
}

/// The class indices in column `col`: integers `0..classes-1`.
fn class_indices(source: &Source, col: usize, classes: usize) -> Result<Vec<usize>> {
    (0..source.rows())
        .map(|r| {
            let v = source.number(r, col)?;
            if v.fract() == 0.0 && (0.0..classes as f64).contains(&v) {
                return Ok(v as usize);
            }
            Err(source.error(format!(
                "{}, column '{}': {v} is not a class index 0..{} (the model has {classes} outputs: one --target column holds class indices)",
                source.place(r),
                source.columns()[col],
                classes - 1
            )))
        })
        .collect()
}
