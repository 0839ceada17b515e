//! The pieces of preprocessing that work on single columns: task, scaling and
//! imputation choices, target resolution, task detection and matching another
//! file's columns to the training file's (target encoding is in `targets.rs`).

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::csv::{ColumnRef, is_missing, is_number, quoted_list};
use crate::data::names::same_names;
use crate::data::table::{ABSURD, Cell, Column, Table};
use crate::error::{Error, Result};

/// Largest number of distinct integer values a numeric target may have to be
/// taken as class labels by [`detect_task`].
pub const MAX_AUTO_CLASSES: usize = 20;

/// Classification (softmax over classes) or regression (real-valued outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// One class label per row.
    Classify,
    /// One or more real values per row.
    Regress,
}

/// How numeric features are scaled, fitted on the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// `(x - mean) / std`, population std (like scikit-learn's StandardScaler).
    #[default]
    ZScore,
    /// Linearly to `[-1, 1]` from the training min and max (MATLAB `mapminmax`).
    MinMax,
    /// Unchanged.
    None,
}

/// How missing cells of feature columns are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impute {
    /// The training mean (numeric columns); the most frequent category (text).
    Mean,
    /// The training median (numeric columns); the most frequent category (text).
    Median,
}

/// Parses `s` case-insensitively against `options`, or lists them.
fn parse_choice<T: Copy>(field: &str, s: &str, options: &[(&str, T)]) -> Result<T> {
    let t = s.trim().to_ascii_lowercase();
    options.iter().find(|(n, _)| *n == t).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        Error::config(
            field,
            format!("unknown value '{s}'; expected one of {}", names.join(", ")),
        )
    })
}

impl FromStr for Task {
    type Err = Error;
    /// `classify` (or `classification`) or `regress` (or `regression`).
    fn from_str(s: &str) -> Result<Self> {
        let opts = [("classify", Task::Classify), ("classification", Task::Classify)];
        let more = [("regress", Task::Regress), ("regression", Task::Regress)];
        parse_choice("task", s, &[opts, more].concat())
    }
}

impl FromStr for Scaling {
    type Err = Error;
    /// `zscore` (`z-score`, `standard`), `minmax` (`min-max`, `mapminmax`) or `none`.
    fn from_str(s: &str) -> Result<Self> {
        let opts = [
            ("zscore", Scaling::ZScore),
            ("z-score", Scaling::ZScore),
            ("standard", Scaling::ZScore),
        ];
        let more = [
            ("minmax", Scaling::MinMax),
            ("min-max", Scaling::MinMax),
            ("mapminmax", Scaling::MinMax),
        ];
        parse_choice(
            "scaling",
            s,
            &[&opts[..], &more[..], &[("none", Scaling::None)]].concat(),
        )
    }
}

impl FromStr for Impute {
    type Err = Error;
    /// `mean` or `median`.
    fn from_str(s: &str) -> Result<Self> {
        parse_choice("impute", s, &[("mean", Impute::Mean), ("median", Impute::Median)])
    }
}

impl Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if *self == Task::Classify { "classify" } else { "regress" })
    }
}

impl Display for Scaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scaling::ZScore => "zscore",
            Scaling::MinMax => "minmax",
            Scaling::None => "none",
        })
    }
}

impl Display for Impute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if *self == Impute::Mean { "mean" } else { "median" })
    }
}

impl Scaling {
    /// `(center, scale)` for `values` (non-empty); a constant column gets
    /// scale 1, so it maps to 0 (z-score, min-max) and never divides by zero.
    pub(crate) fn fit(self, values: &[f64]) -> (f64, f64) {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let (center, scale) = match self {
            Scaling::None => (0.0, 1.0),
            _ if lo == hi => (lo, 1.0),
            Scaling::ZScore => (
                mean,
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt(),
            ),
            Scaling::MinMax => ((hi + lo) / 2.0, (hi - lo) / 2.0),
        };
        (center, usable_scale(scale))
    }
}

/// `scale`, or 1 where it is not a positive normal number: values that
/// differ by less than the squares f64 holds (1e-200 and 2e-200) gave a
/// standard deviation of 0 or a subnormal one, dividing to infinities, and
/// a model file that loading refuses (`Preprocessor::check_consistent`).
pub(crate) fn usable_scale(scale: f64) -> f64 {
    match scale.is_normal() && scale > 0.0 {
        true => scale,
        false => 1.0,
    }
}

impl Impute {
    /// The fill value of `values` (non-empty; sorted in place for the median).
    pub(crate) fn fill(self, values: &mut [f64]) -> f64 {
        let n = values.len();
        match self {
            Impute::Mean => values.iter().sum::<f64>() / n.max(1) as f64,
            Impute::Median => {
                values.sort_by(f64::total_cmp);
                if n % 2 == 1 {
                    values[n / 2]
                } else {
                    (values[n / 2 - 1] + values[n / 2]) / 2.0
                }
            }
        }
    }
}

/// The number in cell `(r, c)`, `None` when it is a missing token. Text, an
/// infinite value or one beyond 1e30 in magnitude is an error.
pub(crate) fn numeric_cell(table: &Table, r: usize, c: usize) -> Result<Option<f64>> {
    match table.cell(r, c) {
        Cell::Missing => Ok(None),
        Cell::Num(v) => Ok(Some(v)),
        Cell::Text(cell) => parse_number(cell).map_err(|what| table.cell_error(r, c, what)),
    }
}

/// A text cell as a number: `None` for a missing token; what is wrong
/// with it otherwise.
pub(crate) fn parse_number(cell: &str) -> std::result::Result<Option<f64>, String> {
    if is_missing(cell) {
        return Ok(None);
    }
    match cell.parse::<f64>() {
        // Every spelling of NaN is a missing value (the tokens list the usual ones).
        Ok(v) if v.is_nan() => Ok(None),
        Ok(v) if v.is_infinite() => Err(format!("infinite value '{}'", crate::data::csv::short_cell(cell))),
        Ok(v) if v.abs() > ABSURD => Err(format!("value {} is beyond ±1e30", crate::data::csv::short_cell(cell))),
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(format!(
            "'{}' is not a number (the column is numeric)",
            crate::data::csv::short_cell(cell)
        )),
    }
}

/// The target column indices: `refs` resolved, or the last column when
/// `refs` is empty (with a note saying so).
pub(crate) fn resolve_targets(table: &Table, refs: &[ColumnRef], notes: &mut Vec<String>) -> Result<Vec<usize>> {
    if table.n_cols() == 0 {
        // A Parquet or Arrow file can hold a schema without fields.
        return Err(table.error("the file has no columns".to_string()));
    }
    if refs.is_empty() {
        let last = table.n_cols() - 1;
        notes.push(format!("target: last column '{}' (none given)", table.columns[last]));
        return Ok(vec![last]);
    }
    let out = ColumnRef::resolve_all(refs, table)?;
    let mut seen = vec![false; table.n_cols()];
    for &c in &out {
        if std::mem::replace(&mut seen[c], true) {
            return Err(table.error(format!("target column '{}' given twice", table.columns[c])));
        }
    }
    Ok(out)
}

/// Chooses the task from the target column(s) over `rows` and says why.
///
/// Rule: several targets → regress. One target: any non-numeric value →
/// classify; otherwise classify when every value is an integer, there are at
/// most [`MAX_AUTO_CLASSES`] distinct values and at least two rows per
/// distinct value on average; else regress. Missing cells are not counted.
pub fn detect_task<T: crate::data::AsTable + ?Sized>(
    table: &T,
    targets: &[usize],
    rows: &[usize],
) -> Result<(Task, String)> {
    detect_task_in(&table.as_table(), targets, rows)
}

/// [`detect_task`] on a typed table.
pub(crate) fn detect_task_in(table: &Table, targets: &[usize], rows: &[usize]) -> Result<(Task, String)> {
    let &[t] = targets else {
        let names: Vec<String> = targets.iter().map(|&c| table.columns[c].clone()).collect();
        return Ok((
            Task::Regress,
            format!(
                "task: regress ({} target columns {})",
                targets.len(),
                quoted_list(&names)
            ),
        ));
    };
    let name = &table.columns[t];
    // The distinct present values (as numbers where every one is), and how
    // many present cells there are.
    let (present, mut values) = match &table.cols[t] {
        Column::Num { shift, values } => few_distinct(*shift, values, rows).unwrap_or_else(|| {
            let v: Vec<f64> = rows
                .iter()
                .map(|&r| values[r])
                .filter(|v| !v.is_nan())
                .map(|v| shift + f64::from(v))
                .collect();
            (v.len(), v)
        }),
        Column::Text { dict, codes } => {
            let mut count = vec![0usize; dict.len()];
            rows.iter().for_each(|&r| count[codes[r] as usize] += 1);
            let seen: Vec<&str> = (0..dict.len())
                .filter(|&k| count[k] > 0 && !is_missing(&dict[k]))
                .map(|k| dict[k].as_str())
                .collect();
            let present = (0..dict.len())
                .filter(|&k| !is_missing(&dict[k]))
                .map(|k| count[k])
                .sum();
            if seen.iter().any(|c| !is_number(c)) {
                let n = seen.len();
                return Ok((
                    Task::Classify,
                    format!("task: classify (target '{name}' has {n} distinct string values)"),
                ));
            }
            (present, seen.iter().filter_map(|c| c.parse().ok()).collect())
        }
    };
    values.sort_by(f64::total_cmp);
    values.dedup();
    let n = values.len();
    let integers = values.iter().all(|v| v.fract() == 0.0);
    if integers && n <= MAX_AUTO_CLASSES && 2 * n <= present {
        let why = format!("target '{name}' has {n} distinct integer values; use --task regress to override");
        return Ok((Task::Classify, format!("task: classify ({why})")));
    }
    let kind = if integers { "integer" } else { "numeric" };
    Ok((
        Task::Regress,
        format!("task: regress (target '{name}' has {n} distinct {kind} values)"),
    ))
}

/// The present cells of a numeric column over `rows` and its distinct
/// values (`shift + value`, equal by `==`), when there are at most
/// [`FEW`]: one pass with no copy of the column, for class labels. `None`
/// when there are more (the caller sorts a copy of the values).
fn few_distinct(shift: f64, values: &[f32], rows: &[usize]) -> Option<(usize, Vec<f64>)> {
    const FEW: usize = 64;
    let (mut present, mut seen) = (0usize, Vec::<f64>::new());
    let mut last: Option<u32> = None;
    for &r in rows {
        let v = values[r];
        if v.is_nan() {
            continue;
        }
        present += 1;
        if last == Some(v.to_bits()) {
            continue;
        }
        last = Some(v.to_bits());
        let x = shift + f64::from(v);
        if !seen.contains(&x) {
            if seen.len() == FEW {
                return None;
            }
            seen.push(x);
        }
    }
    Some((present, seen))
}

/// Where each training column is in `table`: matched by name when both have
/// a header, else by position, where `table` may lack the target columns.
pub(crate) fn locate(
    table: &Table,
    columns: &[String],
    has_header: bool,
    targets: &[usize],
) -> Result<Vec<Option<usize>>> {
    if has_header && table.has_header && !same_names(&table.columns, columns) {
        let index = table.column_indices();
        return Ok(columns.iter().map(|n| index.get(n)).collect());
    }
    let n = columns.len();
    if table.n_cols() == n {
        // The same columns in the same order (the training file itself), or
        // matched by position.
        return Ok((0..n).map(Some).collect());
    }
    if table.n_cols() + targets.len() == n {
        let mut is_target = vec![false; n];
        for &t in targets.iter().filter(|&&t| t < n) {
            is_target[t] = true;
        }
        let mut next = 0;
        let map = (0..n)
            .map(|i| {
                (!is_target[i]).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        return Ok(map);
    }
    let at = if table.is_empty() && !table.is_columnar() {
        "line 1".to_string()
    } else {
        table.place(0)
    };
    Err(table.error(format!(
        "{at}: {} columns, but the model was trained on {n} ({} without the target); \
         give the file a header to match columns by name",
        table.n_cols(),
        n - targets.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values whose differences square below f64's range gave a scale of 0
    /// (z-score), so infinite features and a model file loading refuses.
    #[test]
    fn a_scale_that_is_not_a_positive_normal_number_is_one() {
        assert_eq!(Scaling::ZScore.fit(&[1e-200, 2e-200]).1, 1.0);
        assert_eq!(Scaling::MinMax.fit(&[0.0, 1e-320]).1, 1.0);
        assert_eq!(Scaling::ZScore.fit(&[1.0, 3.0]).1, 1.0);
        assert_eq!(Scaling::MinMax.fit(&[1.0, 5.0]), (3.0, 2.0));
    }

    /// The one-pass distinct values are those of the sorted, deduplicated
    /// copy (missing cells, -0 and 0, runs and scattered repeats), and the
    /// pass gives up exactly when there are more than it keeps.
    #[test]
    fn few_distinct_values_are_those_of_the_sorted_copy() {
        for k in [1usize, 2, 5, 20, 21, 63, 64, 65, 300] {
            let values: Vec<f32> = (0..2000)
                .map(|i| match i % 37 {
                    5 => f32::NAN,
                    6 => -0.0,
                    7 => 0.0,
                    _ if i % 5 == 0 => 1.5,
                    _ => ((i * 7919) % k) as f32 * 0.5 - 3.0,
                })
                .collect();
            let rows: Vec<usize> = (0..2000).filter(|i| i % 3 != 1).collect();
            for shift in [0.0, -0.0, 10.0] {
                let mut all: Vec<f64> = rows
                    .iter()
                    .map(|&r| values[r])
                    .filter(|v| !v.is_nan())
                    .map(|v| shift + f64::from(v))
                    .collect();
                let present = all.len();
                all.sort_by(f64::total_cmp);
                all.dedup();
                match few_distinct(shift, &values, &rows) {
                    Some((p, mut few)) => {
                        few.sort_by(f64::total_cmp);
                        few.dedup();
                        assert_eq!(p, present, "k {k}");
                        assert_eq!(few.len(), all.len(), "k {k}");
                        assert!(few.iter().zip(&all).all(|(a, b)| a == b), "k {k}");
                    }
                    None => assert!(all.len() > 64, "k {k}: {} distinct", all.len()),
                }
            }
        }
    }
}
