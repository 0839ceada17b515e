//! Feature columns: how each input column becomes features (numeric scaling
//! or one-hot), fitted on the training rows and applied to any table.

use serde::{Deserialize, Serialize};

use super::columns::{numeric_cell, parse_number};
use super::num_fit::NumStats;
use super::{Impute, PreprocessSpec};
use crate::data::csv::{is_missing, is_number, quoted_list};
use crate::data::table::build::TextBuilder;
use crate::data::table::{Column, Table};
use crate::error::Result;
use std::borrow::Cow;

/// A missing cell where nothing is imputed: the same words for training,
/// validation and test rows and for new rows given to a model, in memory
/// and streamed (a streamed run's validation row had said "fit without
/// --impute" where the same cell among the training rows said "use
/// --impute mean ...").
pub(crate) const MISSING_NOT_IMPUTED: &str = "missing value (without --impute nothing is filled in: train with --impute mean or --impute median, or fill the cell)";

/// [`MISSING_NOT_IMPUTED`] in the Python package's words (arrays: NaN,
/// the estimators' `impute`).
pub(crate) const MISSING_NOT_IMPUTED_ARRAYS: &str =
    "missing value (NaN; without impute nothing is filled in: fit with impute='mean' or 'median', or fill the cell)";

/// How one input column becomes features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// One feature `(x - center) / scale`; a missing cell takes `fill`.
    Numeric {
        /// Subtracted first.
        center: f64,
        /// Divided by next; never zero (1 for a constant column).
        scale: f64,
        /// The training mean or median when imputing.
        fill: Option<f64>,
    },
    /// One-hot over `categories` (sorted); a missing cell takes `fill`.
    Categorical {
        /// The categories seen in the training rows, sorted.
        categories: Vec<String>,
        /// The most frequent training category when imputing.
        fill: Option<String>,
    },
}

/// One input column of the training table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Column name in the training file.
    pub name: String,
    /// Column index in the training file.
    pub index: usize,
    /// Its encoding.
    pub kind: FeatureKind,
}

impl Feature {
    /// Number of features it becomes: 1, or its number of categories.
    pub fn width(&self) -> usize {
        match &self.kind {
            FeatureKind::Numeric { .. } => 1,
            FeatureKind::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// How one column of a table becomes the features of one [`Feature`]:
/// per row, in [`Encoder::write`].
pub(crate) enum Encoder<'a> {
    /// A numeric feature from a numeric column.
    Num {
        shift: f64,
        values: &'a [f32],
        center: f64,
        scale: f64,
        fill: Option<f64>,
    },
    /// A numeric feature from a text column: each dictionary entry parsed
    /// once (`Err` entries are reported by [`numeric_cell`]).
    NumText {
        codes: &'a [u32],
        parsed: Vec<std::result::Result<Option<f64>, ()>>,
        center: f64,
        scale: f64,
        fill: Option<f64>,
    },
    /// A one-hot feature: the category index of each dictionary entry
    /// (`None`: unseen; a missing entry maps to the fill's index); an
    /// unseen category is all zeros when `unseen_zero`, else an error.
    Cat {
        codes: Cow<'a, [u32]>,
        index: Vec<Option<usize>>,
        missing: Vec<bool>,
        width: usize,
        categories: &'a [String],
        unseen_zero: bool,
    },
}

impl<'a> Encoder<'a> {
    /// The encoder of feature kind `kind` for column `c` of `table`; an
    /// unseen category encodes as all zeros when `unseen_zero`.
    pub(crate) fn new(table: &'a Table, c: usize, kind: &'a FeatureKind, unseen_zero: bool) -> Encoder<'a> {
        match (kind, &table.cols[c]) {
            (FeatureKind::Numeric { center, scale, fill }, Column::Num { shift, values }) => Encoder::Num {
                shift: *shift,
                values,
                center: *center,
                scale: *scale,
                fill: *fill,
            },
            (FeatureKind::Numeric { center, scale, fill }, Column::Text { dict, codes }) => Encoder::NumText {
                codes,
                parsed: dict.iter().map(|s| parse_number(s).map_err(|_| ())).collect(),
                center: *center,
                scale: *scale,
                fill: *fill,
            },
            (FeatureKind::Categorical { categories, fill }, col) => {
                // A numeric column of another file is matched by its values' text.
                let (dict, codes): (Cow<'a, [String]>, Cow<'a, [u32]>) = match col {
                    Column::Text { dict, codes } => (Cow::Borrowed(dict), Cow::Borrowed(codes)),
                    Column::Num { .. } => {
                        let mut t = TextBuilder::default();
                        (0..table.len()).for_each(|r| t.push(&cell_text(table, r, c)));
                        match t.finish() {
                            Column::Text { dict, codes } => (Cow::Owned(dict), Cow::Owned(codes)),
                            Column::Num { .. } => (Cow::Owned(Vec::new()), Cow::Owned(Vec::new())),
                        }
                    }
                };
                let find = |s: &str| categories.binary_search_by(|k| k.as_str().cmp(s)).ok();
                let missing: Vec<bool> = dict.iter().map(|s| is_missing(s)).collect();
                let index = dict
                    .iter()
                    .zip(&missing)
                    .map(|(s, &m)| match (m, fill) {
                        (false, _) => find(s),
                        (true, Some(f)) => find(f),
                        (true, None) => None,
                    })
                    .collect();
                Encoder::Cat {
                    codes,
                    index,
                    missing,
                    width: categories.len(),
                    categories,
                    unseen_zero,
                }
            }
        }
    }

    /// Whether row `r` holds a category that is not among the fitted ones
    /// (and is not missing).
    pub(crate) fn is_unseen(&self, r: usize) -> bool {
        match self {
            Encoder::Cat {
                codes, index, missing, ..
            } => {
                let k = codes[r] as usize;
                index[k].is_none() && !missing[k]
            }
            _ => false,
        }
    }

    /// Writes the features of row `r` (column `c` of `table`) into `out`
    /// (`[width]`, zeroed for one-hot features).
    pub(crate) fn write(&self, table: &Table, r: usize, c: usize, out: &mut [f32]) -> Result<()> {
        let missing = || table.cell_error(r, c, MISSING_NOT_IMPUTED);
        match self {
            Encoder::Num {
                shift,
                values,
                center,
                scale,
                fill,
            } => {
                let v = values[r];
                out[0] = match (v.is_nan(), fill) {
                    (false, _) => scaled(shift + f64::from(v), *center, *scale),
                    (true, Some(f)) => scaled(*f, *center, *scale),
                    (true, None) => return Err(missing()),
                };
                finite_feature(table, r, c, out[0])?;
            }
            Encoder::NumText {
                codes,
                parsed,
                center,
                scale,
                fill,
            } => {
                out[0] = match (&parsed[codes[r] as usize], fill) {
                    (Ok(Some(v)), _) => scaled(*v, *center, *scale),
                    (Ok(None), Some(f)) => scaled(*f, *center, *scale),
                    (Ok(None), None) => return Err(missing()),
                    (Err(()), _) => return Err(numeric_cell(table, r, c).err().unwrap_or_else(missing)),
                };
                finite_feature(table, r, c, out[0])?;
            }
            Encoder::Cat {
                codes,
                index,
                missing: is_missing,
                width,
                categories,
                unseen_zero,
            } => {
                let k = codes[r] as usize;
                match index[k] {
                    Some(i) => {
                        out[..*width].fill(0.0);
                        out[i] = 1.0;
                    }
                    None if is_missing[k] => return Err(missing()),
                    None if *unseen_zero => out[..*width].fill(0.0),
                    None => {
                        let cell = cell_text(table, r, c);
                        let known = quoted_list(categories);
                        return Err(table.cell_error(
                            r,
                            c,
                            format!(
                                "category '{}' was not seen in training (known: {known})",
                                crate::data::csv::short_cell(&cell)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Encodes `rows` of `table` into `out` (`[rows.len(), width]`) row by row,
/// feature after feature; the first error in row order.
pub(crate) fn encode_by_row(
    table: &Table,
    encoders: &[(Encoder<'_>, usize, usize)],
    rows: &[usize],
    width: usize,
    out: &mut [f32],
) -> Result<()> {
    for (&r, out) in rows.iter().zip(out.chunks_exact_mut(width.max(1))) {
        let mut at = 0;
        for (e, c, w) in encoders {
            e.write(table, r, *c, &mut out[at..at + w])?;
            at += w;
        }
    }
    Ok(())
}

/// [`encode_by_row`] on a few rows, feature after feature: the numbers of
/// numeric columns in one loop each. The same values; an error (`Err(())`)
/// says that some cell failed, not which first.
pub(crate) fn encode_tile(
    table: &Table,
    encoders: &[(Encoder<'_>, usize, usize)],
    rows: &[usize],
    width: usize,
    out: &mut [f32],
) -> std::result::Result<(), ()> {
    let mut at = 0;
    for (e, c, w) in encoders {
        match e {
            Encoder::Num {
                shift,
                values,
                center,
                scale,
                fill,
            } => {
                let fill = fill.map(|f| scaled(f, *center, *scale));
                let column = NumColumn {
                    values,
                    affine: (*shift, *center, *scale),
                    fill,
                };
                column.put(rows, at, width, out)?;
            }
            _ => {
                for (&r, out) in rows.iter().zip(out.chunks_exact_mut(width.max(1))) {
                    e.write(table, r, *c, &mut out[at..at + w]).map_err(|_| ())?;
                }
            }
        }
        at += w;
    }
    Ok(())
}

/// Rows encoded at a time by [`NumColumn::put`].
const RUN: usize = 64;

/// One numeric feature column of a tile: its raw `f32` offsets, their
/// `(shift, center, scale)` and the scaled fill of a missing value (`None`:
/// a missing value is an error).
struct NumColumn<'a> {
    values: &'a [f32],
    affine: (f64, f64, f64),
    fill: Option<f32>,
}

impl NumColumn<'_> {
    /// Writes `rows`' features into column `at` of `out` (`[rows.len(),
    /// width]`): the values gathered into a run of [`RUN`], scaled there in
    /// one branch-free loop (which vectorizes), then written out; `Err(())`
    /// if a value is missing with no fill.
    fn put(&self, rows: &[usize], at: usize, width: usize, out: &mut [f32]) -> std::result::Result<(), ()> {
        let mut run = [0.0f32; RUN];
        for (rows, out) in rows.chunks(RUN).zip(out.chunks_mut(RUN * width.max(1))) {
            let run = &mut run[..rows.len()];
            for (v, &r) in run.iter_mut().zip(rows) {
                *v = self.values[r];
            }
            let missing = run.iter().fold(false, |m, v| m | v.is_nan());
            if missing && self.fill.is_none() {
                return Err(());
            }
            scale_run(run, self.affine, self.fill.unwrap_or(f32::NAN));
            // A value that scales past f32 (row by row names it).
            if !run.iter().fold(true, |ok, v| ok & v.is_finite()) {
                return Err(());
            }
            for (o, v) in out.chunks_exact_mut(width.max(1)).zip(run.iter()) {
                o[at] = *v;
            }
        }
        Ok(())
    }
}

crate::vectorized! {
    /// Each raw offset `v` of `run` replaced by its feature: `scaled(shift +
    /// v, center, scale)`, or `fill` where `v` is NaN (the same operations
    /// as [`Encoder::write`], element by element), at the widest vector
    /// level this CPU has ([`crate::simd`]).
    fn scale_run(run: &mut [f32], affine: (f64, f64, f64), fill: f32) {
        let (shift, center, scale) = affine;
        for v in run {
            let s = scaled(shift + f64::from(*v), center, scale);
            *v = if v.is_nan() { fill } else { s };
        }
    }
}

/// A numeric feature: `(v - center) / scale` in `f64`, then rounded to `f32`.
#[inline(always)]
/// A feature that scaling took past f32 (a value within the reader's
/// ±1e30 in a column of a tiny spread in training: 5e29 over a spread of
/// 1e-9) is an error naming the cell; it had become inf, and the network's
/// output NaN, printed as a prediction with exit 0.
fn finite_feature(table: &Table, r: usize, c: usize, x: f32) -> Result<()> {
    match x.is_finite() {
        true => Ok(()),
        false => Err(table.cell_error(
            r,
            c,
            format!(
                "value {} is too far from the column's training values: scaled by their spread it exceeds \
                 32-bit floats",
                crate::data::csv::short_cell(&cell_text(table, r, c))
            ),
        )),
    }
}

fn scaled(v: f64, center: f64, scale: f64) -> f32 {
    ((v - center) / scale) as f32
}

/// The text of cell `(r, c)`: a numeric column's value as Rust prints it.
pub(crate) fn cell_text(table: &Table, r: usize, c: usize) -> Cow<'_, str> {
    table.cell_text(r, c)
}

/// Fits the encoding of feature column `c` on the training rows; `stats`
/// are its statistics over them when it is numeric and imputation (if any)
/// is by the mean ([`super::num_fit`]), else they are computed here.
pub(crate) fn fit_feature(
    table: &Table,
    c: usize,
    rows: &[usize],
    spec: &PreprocessSpec,
    stats: Option<&NumStats>,
    notes: &mut Vec<String>,
) -> Result<Feature> {
    let name = table.columns[c].clone();
    if let Some(s) = stats.filter(|_| spec.impute != Some(Impute::Median)) {
        let kind = fitted_numeric(table, c, rows, spec, s, notes)?;
        return Ok(Feature { name, index: c, kind });
    }
    // A numeric column's present values, gathered in one pass over the rows.
    let gathered = match &table.cols[c] {
        Column::Num { shift, values } => Some(present_values(*shift, values, rows)),
        Column::Text { .. } => None,
    };
    let missing = match &gathered {
        Some(v) => rows.len() - v.len(),
        None => {
            let missing = table.missing_test(c);
            rows.iter().filter(|&&r| missing.at(r)).count()
        }
    };
    check_missing(table, c, rows, spec, missing)?;
    let present = rows.len() - missing;
    let numbers = match &table.cols[c] {
        Column::Num { .. } => present,
        Column::Text { dict, codes } => {
            let number: Vec<bool> = dict.iter().map(|s| is_number(s)).collect();
            rows.iter().filter(|&&r| number[codes[r] as usize]).count()
        }
    };
    let kind = if 2 * numbers >= present {
        let mut values = match gathered {
            Some(v) => v,
            None => {
                let mut values = Vec::with_capacity(present);
                for &r in rows {
                    values.extend(numeric_cell(table, r, c)?);
                }
                values
            }
        };
        let (center, scale) = spec.scaling.fit(&values);
        let fill = spec.impute.map(|i| i.fill(&mut values));
        if let (Some(f), true) = (fill, missing > 0) {
            notes.push(format!("impute: {missing} missing cells of '{name}' filled with {f}"));
        }
        FeatureKind::Numeric { center, scale, fill }
    } else {
        let (categories, fill) = categories(table, c, rows, spec.impute.is_some());
        notes.push(format!(
            "column '{name}': categorical, one-hot over {} categories",
            categories.len()
        ));
        if categories.len() > 50 {
            notes.push(format!(
                "column '{name}' has many categories; if it is an identifier, ignore it"
            ));
        }
        FeatureKind::Categorical { categories, fill }
    };
    Ok(Feature { name, index: c, kind })
}

/// A numeric column's encoding from its statistics `s` over `rows`: the
/// checks, note and result of [`fit_feature`] on the gathered values.
fn fitted_numeric(
    table: &Table,
    c: usize,
    rows: &[usize],
    spec: &PreprocessSpec,
    s: &NumStats,
    notes: &mut Vec<String>,
) -> Result<FeatureKind> {
    let missing = rows.len() - s.present;
    check_missing(table, c, rows, spec, missing)?;
    let (center, scale) = s.scaling(spec.scaling);
    let fill = spec.impute.map(|_| s.mean());
    if let (Some(f), true) = (fill, missing > 0) {
        let name = &table.columns[c];
        notes.push(format!("impute: {missing} missing cells of '{name}' filled with {f}"));
    }
    Ok(FeatureKind::Numeric { center, scale, fill })
}

/// The errors of a column with `missing` of `rows` missing: all of them,
/// or any without imputation.
fn check_missing(table: &Table, c: usize, rows: &[usize], spec: &PreprocessSpec, missing: usize) -> Result<()> {
    if missing == rows.len() {
        return Err(table.cell_error(rows[0], c, "every training value is missing"));
    }
    if missing > 0 && spec.impute.is_none() {
        let r = rows
            .iter()
            .copied()
            .find(|&r| table.is_missing(r, c))
            .unwrap_or(rows[0]);
        return Err(table.cell_error(r, c, MISSING_NOT_IMPUTED));
    }
    Ok(())
}

/// The present values `shift + values[r]` of a numeric column over `rows`,
/// in row order (the values [`numeric_cell`] gives, without its per-cell
/// dispatch).
fn present_values(shift: f64, values: &[f32], rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len());
    out.extend(
        rows.iter()
            .map(|&r| values[r])
            .filter(|v| !v.is_nan())
            .map(|v| shift + f64::from(v)),
    );
    out
}

/// The sorted distinct present cells of column `c` over `rows`, and with
/// `impute` the most frequent one (the first in sorted order on ties).
fn categories(table: &Table, c: usize, rows: &[usize], impute: bool) -> (Vec<String>, Option<String>) {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    match &table.cols[c] {
        Column::Text { dict, codes } => {
            let mut count = vec![0usize; dict.len()];
            rows.iter().for_each(|&r| count[codes[r] as usize] += 1);
            for (k, s) in dict.iter().enumerate() {
                if count[k] > 0 && !is_missing(s) {
                    *counts.entry(s.clone()).or_default() += count[k];
                }
            }
        }
        Column::Num { .. } => {
            for &r in rows.iter().filter(|&&r| !table.is_missing(r, c)) {
                *counts.entry(cell_text(table, r, c).into_owned()).or_default() += 1;
            }
        }
    }
    let mut best: Option<(&String, usize)> = None;
    for (s, &n) in &counts {
        if best.is_none_or(|b| n > b.1) {
            best = Some((s, n));
        }
    }
    let fill = best.filter(|_| impute).map(|b| b.0.clone());
    (counts.into_keys().collect(), fill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::{CsvOptions, parse_csv};
    use crate::data::preprocess::{Preprocessor, Scaling};

    /// A numeric column, a categorical one and another numeric one; `bad`
    /// rows get an unseen category, `gap` rows a missing number in the first
    /// column (an error: fitted without imputation).
    fn table(n: usize, bad: &[usize], gap: &[usize]) -> Table {
        let mut csv = String::from("x,colour,z,label\n");
        for r in 0..n {
            let x = if gap.contains(&r) {
                String::new()
            } else {
                format!("{:.3}", (r as f64 * 0.37).sin() * 1e3)
            };
            let colour = if bad.contains(&r) {
                "mauve"
            } else {
                ["red", "green", "blue"][r % 3]
            };
            csv += &format!("{x},{colour},{},{}\n", r % 13, ["a", "b"][r % 2]);
        }
        let raw = parse_csv(csv.as_bytes(), "t.csv".as_ref(), &CsvOptions::default()).unwrap();
        Table::from_raw(&raw)
    }

    /// Tile by tile and column by column gives row by row's bits, and its
    /// first error in row order: a later row's error in an earlier column
    /// does not hide an earlier row's in a later column. Missing numbers
    /// are errors, or imputed by the mean; the scaling runs at the widest
    /// vector level and at the baseline.
    #[test]
    fn tiles_encode_as_rows_do() {
        let _level = crate::simd::level_lock();
        for (n, impute, baseline) in [1usize, 2, 33, 63, 64, 65, 131, 200].into_iter().flat_map(|n| {
            [
                (n, None, false),
                (n, Some(Impute::Mean), false),
                (n, Some(Impute::Mean), true),
            ]
        }) {
            crate::simd::set_baseline_only(baseline);
            // Two rows at least: two classes.
            let fit_rows: Vec<usize> = (0..n.max(2)).collect();
            let spec = PreprocessSpec {
                scaling: Scaling::ZScore,
                impute,
                ..PreprocessSpec::default()
            };
            let (pre, _) = Preprocessor::fit(&table(n.max(2), &[], &[]), &fit_rows, &spec).unwrap();
            let cases: [(&[usize], &[usize]); 3] = [(&[], &[]), (&[n - 1], &[n / 2]), (&[n / 2], &[n - 1])];
            for (bad, gap) in cases {
                let t = table(n, bad, gap);
                let rows: Vec<usize> = (0..n).rev().filter(|r| r % 5 != 2 || n < 5).collect();
                let encoders: Vec<(Encoder<'_>, usize, usize)> = pre
                    .features()
                    .iter()
                    .map(|f| (Encoder::new(&t, f.index, &f.kind, false), f.index, f.width()))
                    .collect();
                let width = pre.n_features();
                let mut by_row = vec![0.0f32; rows.len() * width];
                let want = encode_by_row(&t, &encoders, &rows, width, &mut by_row);
                let mut tiled = vec![0.0f32; rows.len() * width];
                let got = encode_tile(&t, &encoders, &rows, width, &mut tiled);
                assert_eq!(got.is_ok(), want.is_ok(), "n {n} bad {bad:?} {impute:?}");
                let fails = rows
                    .iter()
                    .any(|r| bad.contains(r) || (impute.is_none() && gap.contains(r)));
                assert_eq!(want.is_ok(), !fails, "n {n}: the cases fail where they should");
                if got.is_ok() {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&tiled), bits(&by_row), "n {n}");
                }
                let full = pre.transform_features(&t, &rows).map(|m| m.as_slice().to_vec());
                match (full, want) {
                    (Ok(m), Ok(())) => assert_eq!(m, by_row),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "n {n} bad {bad:?} gap {gap:?}"),
                    (a, b) => panic!("n {n}: {a:?} against {b:?}"),
                }
            }
        }
        crate::simd::set_baseline_only(false);
    }
}
