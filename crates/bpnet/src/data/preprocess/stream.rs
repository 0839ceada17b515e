//! [`StreamFit`]: a [`Preprocessor`] fitted in one pass over the chunks of
//! a file too large to hold, equal to [`Preprocessor::fit`] on the same
//! training rows up to rounding.
//!
//! Per numeric column, over the training rows in file order: the count `n`,
//! the sum `Σx` (so the mean `Σx / n` — the z-score center and the mean
//! fill — has the same bits as the in-memory fit's), Welford's running
//! sum of squared deviations `M2` (`δ = x − μ_{k−1}`, `μ_k = μ_{k−1} + δ/k`,
//! `M2 += δ (x − μ_k)`; the scale is `√(M2 / n)`, equal to the two-pass
//! `√(Σ(x − μ)² / n)` to about 1e-15 relative), the minimum and maximum
//! (exact). Per text column: each category's count. Missing cells, cells
//! that are numbers, the first bad cell of each kind (for the same error
//! as in memory) are counted or kept as they come. The target: see
//! `stream_target.rs`. `--impute median` needs every value and is refused.
//!
//! A column whose cells are mostly text but partly numbers is one-hot over
//! both; the numbers' texts are not kept in the pass (a numeric column
//! would fill memory with them), so such a column takes a second pass
//! ([`StreamFit::number_text_columns`], [`StreamFit::add_number_texts`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::columns::{Impute, Scaling, parse_number, resolve_targets};
use super::features::{Feature, FeatureKind};
use super::stream_target::TargetStats;
use super::{PreprocessSpec, Preprocessor, ReadAs};
use crate::data::csv::{ColumnRef, is_missing, is_number};
use crate::data::table::{Column, Table};
use crate::error::{Error, Result};

/// Count, sum, Welford mean and `M2`, minimum and maximum of a stream.
/// Welford's recurrence runs on `x - shift`, the first value, so that a
/// column far from zero with a small spread keeps its digits: on raw values
/// a column of mean 1e7 and standard deviation 1e-3 got a scale 3e-7 off
/// in relative terms; shifted, 1.3e-9, as the two-pass fit in memory (f64
/// holds such values only to about 1e-6 of their spread).
#[derive(Debug, Clone, Copy)]
pub(super) struct Moments {
    n: u64,
    sum: f64,
    shift: f64,
    /// Mean of `x - shift`.
    mean: f64,
    m2: f64,
    lo: f64,
    hi: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            sum: -0.0,
            shift: 0.0,
            mean: 0.0,
            m2: 0.0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    /// Adds one value.
    pub(super) fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        if self.n == 1 {
            self.shift = x;
        }
        let y = x - self.shift;
        let d = y - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (y - self.mean);
        self.lo = self.lo.min(x);
        self.hi = self.hi.max(x);
    }

    /// `(center, scale)` as [`Scaling::fit`] gives them on the same values.
    pub(super) fn fit(&self, scaling: Scaling) -> (f64, f64) {
        let n = self.n.max(1) as f64;
        let (center, scale) = match scaling {
            Scaling::None => (0.0, 1.0),
            _ if self.lo == self.hi => (self.lo, 1.0),
            Scaling::ZScore => (self.sum / n, (self.m2 / n).max(0.0).sqrt()),
            Scaling::MinMax => ((self.hi + self.lo) / 2.0, (self.hi - self.lo) / 2.0),
        };
        (center, super::columns::usable_scale(scale))
    }

    fn mean(&self) -> f64 {
        self.sum / self.n.max(1) as f64
    }
}

/// Where the first training row is, for errors raised at the end.
pub(super) struct Place {
    path: PathBuf,
    place: String,
}

impl Place {
    /// The same file at `place` (as `Table::place` writes it).
    pub(super) fn at(&self, place: String) -> Place {
        Place {
            path: self.path.clone(),
            place,
        }
    }

    /// `path: PLACE, column 'col': what`, as `Table::cell_error` writes it.
    pub(super) fn error(&self, col: &str, what: impl std::fmt::Display) -> Error {
        Error::Format {
            path: self.path.clone(),
            reason: format!("{}, column '{col}': {what}", self.place),
        }
    }
}

/// One feature column's statistics so far.
#[derive(Default)]
struct ColStats {
    missing: u64,
    present: u64,
    numbers: u64,
    moments: Moments,
    /// The first present cell that is not a usable number.
    bad: Option<Error>,
    first_missing: Option<Error>,
    /// Counts of the present cells that are not numbers (and, after the
    /// second pass, of those that are).
    cats: BTreeMap<String, u64>,
    /// How the chunks held the column: one way in every chunk (a CSV's
    /// chunks share the plan of its first rows), recorded as the model's
    /// `read_as`; `None` before the first chunk or once chunks differ (a
    /// Parquet file's row groups each choose their own).
    held: Option<Held>,
}

#[derive(Clone, Copy, PartialEq)]
enum Held {
    Alike(ReadAs),
    Mixed,
}

/// Fits a [`Preprocessor`] chunk by chunk (see the module docs).
pub struct StreamFit {
    spec: PreprocessSpec,
    state: Option<State>,
}

struct State {
    /// The columns, header flag and path of the file.
    head: Table,
    notes: Vec<String>,
    /// Feature columns, in order, and their statistics.
    features: Vec<(usize, ColStats)>,
    target: TargetStats,
    first: Place,
}

impl StreamFit {
    /// A fit of `spec`; `--impute median` is refused (it needs every value).
    pub fn new(spec: &PreprocessSpec) -> Result<StreamFit> {
        if spec.impute == Some(Impute::Median) {
            return Err(Error::config(
                "impute",
                "median needs every value at once and cannot be fitted while streaming; use --impute mean",
            ));
        }
        Ok(StreamFit {
            spec: spec.clone(),
            state: None,
        })
    }

    /// Adds the training rows `rows` (ascending) of a chunk; chunks come in
    /// file order.
    pub fn add(&mut self, table: &Table, rows: &[usize]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.state.is_none() {
            self.state = Some(self.start(table, rows[0])?);
        }
        let Some(s) = self.state.as_mut() else { return Ok(()) };
        s.target.add(table, rows);
        for (c, st) in &mut s.features {
            add_column(st, table, *c, rows);
        }
        Ok(())
    }

    /// Columns, target and task choices on the first chunk with training rows.
    fn start(&self, table: &Table, first_row: usize) -> Result<State> {
        let mut notes = Vec::new();
        let targets = resolve_targets(table, &self.spec.targets, &mut notes)?;
        let ignored = ColumnRef::resolve_all(&self.spec.ignore, table)?;
        let mut is_feature = vec![true; table.n_cols()];
        for &c in targets.iter().chain(&ignored) {
            is_feature[c] = false;
        }
        let names = targets.iter().map(|&c| table.columns[c].clone()).collect();
        let head = table.head_only();
        Ok(State {
            head,
            notes,
            features: (0..table.n_cols())
                .filter(|&c| is_feature[c])
                .map(|c| (c, ColStats::default()))
                .collect(),
            target: TargetStats::new(targets, names, self.spec.task),
            first: Place {
                path: table.path.clone(),
                place: table.place(first_row),
            },
        })
    }

    /// Feature columns that will be one-hot although some of their cells
    /// are numbers: their numbers' texts need [`StreamFit::add_number_texts`]
    /// in a second pass over the same rows.
    pub fn number_text_columns(&self) -> Vec<usize> {
        let Some(s) = &self.state else { return Vec::new() };
        s.features
            .iter()
            .filter(|(_, st)| 2 * st.numbers < st.present && st.numbers > 0)
            .map(|(c, _)| *c)
            .collect()
    }

    /// Second pass: counts the texts of the number cells of the columns of
    /// [`StreamFit::number_text_columns`] over `rows` of a chunk.
    pub fn add_number_texts(&mut self, table: &Table, rows: &[usize]) {
        let wanted = self.number_text_columns();
        let Some(s) = self.state.as_mut() else { return };
        for (c, st) in s.features.iter_mut().filter(|(c, _)| wanted.contains(c)) {
            for &r in rows {
                let t = table.cell_text(r, *c);
                if !table.is_missing(r, *c) && is_number(&t) {
                    *st.cats.entry(t.into_owned()).or_default() += 1;
                }
            }
        }
    }

    /// The fitted preprocessor and the notes [`Preprocessor::fit`] gives.
    pub fn finish(self) -> Result<(Preprocessor, Vec<String>)> {
        let Some(s) = self.state else {
            return Err(Error::config("training data", "has no rows"));
        };
        let mut notes = s.notes;
        let (task, note) = s.target.task();
        notes.extend(note);
        let targets = s.target.cols.clone();
        let target = s.target.finish(task, &s.first)?;
        let held: std::collections::HashMap<usize, ReadAs> = s
            .features
            .iter()
            .filter_map(|(c, st)| match st.held {
                Some(Held::Alike(r)) => Some((*c, r)),
                _ => None,
            })
            .collect();
        let mut features = Vec::with_capacity(s.features.len());
        for (c, st) in s.features {
            features.push(finish_column(&s.head, &s.first, c, st, &self.spec, &mut notes)?);
        }
        if features.is_empty() {
            return Err(s.head.error(format!(
                "no feature columns besides the target among {} (is the delimiter right?)",
                s.head.column_list()
            )));
        }
        let read_as = features
            .iter()
            .filter(|f| matches!(f.kind, FeatureKind::Numeric { .. }))
            .filter_map(|f| held.get(&f.index).map(|&r| (f.name.clone(), r)))
            .collect();
        let pre = Preprocessor {
            task,
            scaling: self.spec.scaling,
            impute: self.spec.impute,
            has_header: s.head.has_header,
            columns: s.head.columns.clone(),
            features,
            target_columns: targets.iter().map(|&c| s.head.columns[c].clone()).collect(),
            target_indices: targets,
            target,
            // As every chunk held the column; where chunks differed, files
            // read against it take each centre (see `shifts`).
            read_as,
            unseen_as_zeros: false,
        };
        Ok((pre, notes))
    }
}

/// Adds column `c` of `rows` of a chunk to its statistics.
fn add_column(st: &mut ColStats, table: &Table, c: usize, rows: &[usize]) {
    let this = match &table.cols[c] {
        Column::Num { shift, .. } => ReadAs::Shift(*shift),
        Column::Text { .. } => ReadAs::Text,
    };
    st.held = Some(match st.held {
        None => Held::Alike(this),
        Some(Held::Alike(r)) if r == this => Held::Alike(r),
        Some(_) => Held::Mixed,
    });
    match &table.cols[c] {
        Column::Num { shift, values } => {
            for &r in rows {
                let v = values[r];
                if v.is_nan() {
                    missing(st, table, r, c);
                } else {
                    st.present += 1;
                    st.numbers += 1;
                    st.moments.push(shift + f64::from(v));
                }
            }
        }
        Column::Text { dict, codes } => {
            // Each dictionary entry judged once.
            let kinds: Vec<Option<Result<f64, String>>> = dict
                .iter()
                .map(|s| {
                    (!is_missing(s)).then(|| match parse_number(s) {
                        Ok(Some(v)) if is_number(s) => Ok(v),
                        Ok(_) => Err(String::new()),
                        Err(e) => Err(e),
                    })
                })
                .collect();
            for &r in rows {
                let k = codes[r] as usize;
                match &kinds[k] {
                    None => missing(st, table, r, c),
                    Some(kind) => {
                        st.present += 1;
                        match kind {
                            Ok(v) => {
                                st.numbers += 1;
                                st.moments.push(*v);
                            }
                            Err(e) => {
                                if is_number(&dict[k]) {
                                    st.numbers += 1;
                                } else {
                                    *st.cats.entry(dict[k].clone()).or_default() += 1;
                                }
                                if st.bad.is_none() {
                                    st.bad = Some(table.cell_error(r, c, e));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn missing(st: &mut ColStats, table: &Table, r: usize, c: usize) {
    st.missing += 1;
    if st.first_missing.is_none() {
        st.first_missing = Some(table.cell_error(r, c, super::features::MISSING_NOT_IMPUTED));
    }
}

/// The feature of column `c`, as `fit_feature` decides it on the same rows.
fn finish_column(
    head: &Table,
    first: &Place,
    c: usize,
    st: ColStats,
    spec: &PreprocessSpec,
    notes: &mut Vec<String>,
) -> Result<Feature> {
    let name = head.columns[c].clone();
    if st.present == 0 {
        return Err(first.error(&name, "every training value is missing"));
    }
    if let (Some(e), None) = (st.first_missing, spec.impute) {
        return Err(e);
    }
    let kind = if 2 * st.numbers >= st.present {
        if let Some(e) = st.bad {
            return Err(e);
        }
        let (center, scale) = st.moments.fit(spec.scaling);
        let fill = spec.impute.map(|_| st.moments.mean());
        if let (Some(f), true) = (fill, st.missing > 0) {
            notes.push(format!(
                "impute: {} missing cells of '{name}' filled with {f}",
                st.missing
            ));
        }
        FeatureKind::Numeric { center, scale, fill }
    } else {
        let mut best: Option<(&String, u64)> = None;
        for (s, &n) in &st.cats {
            if best.is_none_or(|b| n > b.1) {
                best = Some((s, n));
            }
        }
        let fill = best.filter(|_| spec.impute.is_some()).map(|b| b.0.clone());
        let categories: Vec<String> = st.cats.into_keys().collect();
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
