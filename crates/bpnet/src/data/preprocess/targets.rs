//! Targets: fitting the encoding of the target column(s) on the training
//! rows (sorted class names, or per-column mean and standard deviation) and
//! encoding any table's rows with it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Targets;
use super::columns::{Scaling, Task, numeric_cell};
use super::features::cell_text;
use crate::data::csv::{is_number, quoted_list};
use crate::data::table::{CellGroups, Column, Table};
use crate::error::{Error, Result};
use crate::tensor::Matrix;
use std::borrow::Cow;

/// How the target column(s) are encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetMap {
    /// Class `k` is `names[k]`; with `numeric` the labels are numbers,
    /// sorted and matched by value, else strings sorted lexicographically.
    Classes { names: Vec<String>, numeric: bool },
    /// Per target column: `(y - mean) / std`.
    Values { mean: Vec<f64>, std: Vec<f64> },
}

/// Fits the target encoding on the training rows.
pub(crate) fn fit_target(table: &Table, targets: &[usize], rows: &[usize], task: Task) -> Result<TargetMap> {
    match (task, targets) {
        (Task::Classify, &[c]) => {
            let mut labels = distinct_labels(table, rows, c)?;
            let numeric = labels.iter().all(|l| is_number(l));
            if numeric {
                let value = |s: &String| s.parse::<f64>().unwrap_or(f64::NAN);
                check_distinct_integers(table, rows, c, &labels)?;
                labels.sort_by(|a, b| value(a).total_cmp(&value(b)));
                labels.dedup_by(|a, b| value(a) == value(b));
            } else {
                labels.sort();
                labels.dedup();
            }
            if labels.len() < 2 {
                let only = labels.first().map_or("", String::as_str);
                let what = format!("only one class '{only}' in the training rows; classification needs two or more");
                return Err(table.cell_error(rows[0], c, what));
            }
            Ok(TargetMap::Classes { names: labels, numeric })
        }
        (Task::Classify, _) => Err(Error::config(
            "task",
            "classification takes one target column; several need regression",
        )),
        (Task::Regress, _) => {
            let (mut mean, mut std) = (Vec::new(), Vec::new());
            for &c in targets {
                let mut values = Vec::with_capacity(rows.len());
                for &r in rows {
                    values.push(value_cell(table, r, c).map_err(|e| several_targets(e, targets.len()))?);
                }
                let (m, s) = Scaling::ZScore.fit(&values);
                mean.push(m);
                std.push(s);
            }
            Ok(TargetMap::Values { mean, std })
        }
    }
}

/// Numeric labels are matched by value ("1" and "1.0" are one class, as
/// the same number), but two integers past 2^53 that round to the same f64
/// are different labels (identifiers used as classes): the first such pair
/// among `labels` (any order), where they were silently merged.
pub(super) fn merged_integers(labels: &[String]) -> Option<(&str, &str)> {
    let int = |s: &str| s.trim().parse::<i128>().ok();
    let mut by_value: HashMap<u64, (i128, &str)> = HashMap::new();
    for l in labels {
        let (Some(i), Ok(v)) = (int(l), l.trim().parse::<f64>()) else {
            continue;
        };
        match by_value.get(&v.to_bits()) {
            Some(&(j, first)) if j != i => return Some((first, l)),
            Some(_) => {}
            None => {
                by_value.insert(v.to_bits(), (i, l));
            }
        }
    }
    None
}

/// The error for labels `a` and `b` that [`merged_integers`] found.
pub(super) fn merged_integers_error(a: &str, b: &str) -> String {
    format!(
        "class labels '{}' and '{}' are different integers but the same number in f64, and numeric labels are matched by value: give them labels that differ as f64 numbers, or text labels",
        crate::data::csv::short_cell(a),
        crate::data::csv::short_cell(b)
    )
}

/// [`merged_integers`] over a table's labels, naming the row of the second.
fn check_distinct_integers(table: &Table, rows: &[usize], c: usize, labels: &[String]) -> Result<()> {
    let Some((a, b)) = merged_integers(labels) else {
        return Ok(());
    };
    let r = rows
        .iter()
        .copied()
        .find(|&r| cell_text(table, r, c).trim() == b.trim())
        .unwrap_or(rows[0]);
    Err(table.cell_error(r, c, merged_integers_error(a, b)))
}

/// The distinct label texts of column `c` over `rows`, in order of first
/// appearance (so that a stable sort keeps, among texts of equal value, the
/// first one); a missing label is an error.
fn distinct_labels(table: &Table, rows: &[usize], c: usize) -> Result<Vec<String>> {
    let missing = table.missing_test(c);
    if let Some(&r) = rows.iter().find(|&&r| missing.at(r)) {
        return Err(table.cell_error(r, c, "missing target value"));
    }
    let mut labels = Vec::new();
    match &table.cols[c] {
        Column::Text { dict, codes } => {
            let mut seen = vec![false; dict.len()];
            for &r in rows {
                let k = codes[r] as usize;
                if !std::mem::replace(&mut seen[k], true) {
                    labels.push(dict[k].clone());
                }
            }
        }
        // Codes in order of first appearance, each text made once.
        Column::Num { .. } => {
            labels = CellGroups::of(table, c, rows)
                .texts
                .into_iter()
                .map(Cow::into_owned)
                .collect()
        }
    }
    Ok(labels)
}

/// The regression target in cell `(r, c)`; missing is an error.
fn value_cell(table: &Table, r: usize, c: usize) -> Result<f64> {
    numeric_cell(table, r, c)?.ok_or_else(|| table.cell_error(r, c, "missing target value"))
}

impl TargetMap {
    /// The targets of `rows`, the target columns being at `cols` in `table`.
    pub(crate) fn encode(&self, table: &Table, rows: &[usize], cols: &[usize]) -> Result<Targets> {
        match self {
            TargetMap::Classes { names, numeric } => {
                let c = cols.first().copied().unwrap_or(0);
                // Each distinct cell's class found once: by value (numeric
                // classes, in constant time) or by binary search (text).
                let values = numeric_class_index(names);
                let class_of = |cell: &str| {
                    if *numeric {
                        cell.parse::<f64>()
                            .ok()
                            .and_then(class_key)
                            .and_then(|k| values.get(&k).copied())
                    } else {
                        names.binary_search_by(|n| n.as_str().cmp(cell)).ok()
                    }
                };
                // Classed once each: a text column's dictionary entries
                // (coded by row), a numeric column's distinct values
                // (coded by position in `rows`).
                let (per_code, codes) = match &table.cols[c] {
                    Column::Text { dict, codes } => (dict.iter().map(|s| class_of(s)).collect(), Cow::Borrowed(codes)),
                    Column::Num { .. } => {
                        let g = CellGroups::of(table, c, rows);
                        let per: Vec<Option<usize>> = g.texts.iter().map(|s| class_of(s)).collect();
                        (per, Cow::Owned(g.codes))
                    }
                };
                let by_row = matches!(table.cols[c], Column::Text { .. });
                let mut labels = Vec::with_capacity(rows.len());
                let missing = table.missing_test(c);
                for (i, &r) in rows.iter().enumerate() {
                    if missing.at(r) {
                        return Err(table.cell_error(r, c, "missing target value"));
                    }
                    let k = per_code[codes[if by_row { r } else { i }] as usize];
                    labels.push(k.ok_or_else(|| {
                        let known = quoted_list(names);
                        let cell = cell_text(table, r, c);
                        table.cell_error(
                            r,
                            c,
                            format!(
                                "class '{}' was not seen in training (classes: {known})",
                                crate::data::csv::short_cell(&cell)
                            ),
                        )
                    })?);
                }
                Ok(Targets::Labels(labels))
            }
            TargetMap::Values { mean, std } => {
                let mut data = Vec::with_capacity(rows.len() * cols.len());
                for &r in rows {
                    for (j, &c) in cols.iter().enumerate() {
                        data.push(((value_cell(table, r, c)? - mean[j]) / std[j]) as f32);
                    }
                }
                Ok(Targets::Values(Matrix::from_vec(rows.len(), cols.len(), data)?))
            }
        }
    }
}

/// A target cell's error when `targets` columns were asked for: several
/// mean regression, so a column of labels fails as "not a number (the
/// column is numeric)", which blamed the column; the reason is said instead.
pub(super) fn several_targets(e: Error, targets: usize) -> Error {
    match e {
        Error::Format { path, reason } if targets > 1 => Error::Format {
            path,
            reason: reason.replace(
                "(the column is numeric)",
                &format!("({targets} target columns mean regression, whose targets are numbers; classify on one target column)"),
            ),
        },
        e => e,
    }
}

/// Numeric class names by [`class_key`] of their value (the first class, for
/// values that compare equal); NaN matches nothing, as under `==`.
fn numeric_class_index(names: &[String]) -> HashMap<u64, usize> {
    let mut index = HashMap::with_capacity(names.len());
    for (k, v) in names.iter().enumerate() {
        if let Some(key) = v.parse::<f64>().ok().and_then(class_key) {
            index.entry(key).or_insert(k);
        }
    }
    index
}

/// A hash key under which numbers equal by `==` coincide (`-0.0` is `0.0`);
/// none for NaN, which equals nothing.
fn class_key(v: f64) -> Option<u64> {
    (!v.is_nan()).then(|| (v + 0.0).to_bits())
}

#[cfg(test)]
mod tests {
    use super::merged_integers;

    /// Distinct integers of one f64 are found in any order, a non-integer
    /// spelling between them included (neighbours after sorting by value
    /// missed that); equal integers and "1" beside "1.0" are one label.
    #[test]
    fn merged_integers_are_found_in_any_order() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let three = s(&["9007199254740993", "9007199254740992.0", "9007199254740992"]);
        assert_eq!(merged_integers(&three), Some(("9007199254740993", "9007199254740992")));
        assert_eq!(merged_integers(&s(&["1", "1.0", "2"])), None);
        assert_eq!(
            merged_integers(&s(&["9007199254740992", "9007199254740994", "7"])),
            None
        );
        assert_eq!(merged_integers(&s(&["+5", "5"])), None);
    }
}
