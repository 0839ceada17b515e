//! Preprocessing of tabular data, fitted on the training rows only and saved
//! with the model (every type here is `serde`-serializable).
//!
//! Features: a numeric column is centered and scaled (`(x - center) / scale`);
//! a text column is one-hot encoded over the categories seen in training,
//! sorted. Targets: class names mapped to indices, or regression values
//! standardized per target column and mapped back by
//! [`Preprocessor::decode_targets`].
//!
//! ```no_run
//! use bpnet::data::{read_csv, split, CsvOptions, Preprocessor, PreprocessSpec};
//! let table = read_csv("data/iris.csv".as_ref(), &CsvOptions::default())?;
//! let species = table.column_cells(4, &(0..table.len()).collect::<Vec<_>>());
//! let (train, test) = split(table.len(), Some(&species), 0.2, 42)?;
//! let (pre, notes) = Preprocessor::fit(&table, &train, &PreprocessSpec::default())?;
//! let x = pre.transform_features(&table, &test)?; // [test.len(), pre.n_features()]
//! let y = pre.transform_targets(&table, &test)?;
//! # Ok::<(), bpnet::Error>(())
//! ```

use serde::{Deserialize, Serialize};

mod columns;

use super::csv::{ColumnRef, RawTable, is_missing, is_number, quoted_list};
use crate::error::{Error, Result};
use crate::tensor::Matrix;
use columns::{TargetMap, fit_target, locate, numeric_cell, resolve_targets};

pub use columns::{Impute, Scaling, Task, detect_task};

/// What to fit: which columns are targets, which to leave out, the task and
/// the feature scaling and imputation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreprocessSpec {
    /// Target column(s); empty means the last column. Several only for
    /// regression.
    pub targets: Vec<ColumnRef>,
    /// Columns that are neither features nor targets (identifiers, ...).
    pub ignore: Vec<ColumnRef>,
    /// The task; `None` detects it from the target (see [`detect_task`]).
    pub task: Option<Task>,
    /// How numeric features are scaled.
    pub scaling: Scaling,
    /// How missing cells of feature columns are filled; `None` makes a
    /// missing cell an error.
    pub impute: Option<Impute>,
}

/// How one input column becomes features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Targets of a set of rows, from [`Preprocessor::transform_targets`].
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class index of each row, `[rows]`, each below `n_outputs()`.
    Labels(Vec<usize>),
    /// Standardized regression targets `[rows, n_outputs()]`.
    Values(Matrix<f32>),
}

/// The fitted preprocessing: how a table's rows become a feature matrix and
/// targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    task: Task,
    scaling: Scaling,
    impute: Option<Impute>,
    has_header: bool,
    columns: Vec<String>,
    features: Vec<Feature>,
    target_columns: Vec<String>,
    target_indices: Vec<usize>,
    target: TargetMap,
}

impl Preprocessor {
    /// Fits on `table`'s `train_rows` only. Returns the preprocessor and
    /// notes for the user (the task chosen and why, the target, categorical
    /// columns, imputed cells).
    ///
    /// A feature column is numeric when at least half of its non-missing
    /// training cells are numbers, else categorical; a text cell in a numeric
    /// column, an infinite value or one beyond 1e30 is an error.
    pub fn fit(table: &RawTable, train_rows: &[usize], spec: &PreprocessSpec) -> Result<(Preprocessor, Vec<String>)> {
        if train_rows.is_empty() {
            return Err(table.error("no training rows"));
        }
        if let Some(&r) = train_rows.iter().find(|&&r| r >= table.len()) {
            return Err(table.error(format!("training row {r} is out of range: {} rows", table.len())));
        }
        let mut notes = Vec::new();
        let targets = resolve_targets(table, &spec.targets, &mut notes)?;
        let ignored = spec
            .ignore
            .iter()
            .map(|c| c.resolve(table))
            .collect::<Result<Vec<_>>>()?;
        let task = match spec.task {
            Some(t) => t,
            None => {
                let (t, note) = detect_task(table, &targets, train_rows)?;
                notes.push(note);
                t
            }
        };
        let target = fit_target(table, &targets, train_rows, task)?;
        let mut features = Vec::new();
        for c in (0..table.n_cols()).filter(|c| !targets.contains(c) && !ignored.contains(c)) {
            features.push(fit_feature(table, c, train_rows, spec, &mut notes)?);
        }
        if features.is_empty() {
            return Err(table.error(format!(
                "no feature columns besides the target among {} (is the delimiter right?)",
                table.column_list()
            )));
        }
        let pre = Preprocessor {
            task,
            scaling: spec.scaling,
            impute: spec.impute,
            has_header: table.has_header,
            columns: table.columns.clone(),
            features,
            target_columns: targets.iter().map(|&c| table.columns[c].clone()).collect(),
            target_indices: targets,
            target,
        };
        Ok((pre, notes))
    }

    /// The feature matrix `[rows.len(), n_features()]` of `table`'s `rows`.
    /// `table` may be another file (evaluation or prediction data): columns
    /// are matched by name when both files have a header, else by position,
    /// with or without the target column(s).
    pub fn transform_features(&self, table: &RawTable, rows: &[usize]) -> Result<Matrix<f32>> {
        let map = locate(table, &self.columns, self.has_header, &self.target_indices)?;
        let mut cols = Vec::with_capacity(self.features.len());
        for f in &self.features {
            cols.push(map[f.index].ok_or_else(|| missing_column(table, &f.name))?);
        }
        let mut data = Vec::with_capacity(rows.len() * self.n_features());
        for &r in rows {
            if r >= table.len() {
                return Err(table.error(format!("row {r} is out of range: {} rows", table.len())));
            }
            for (f, &c) in self.features.iter().zip(&cols) {
                encode(table, r, c, &f.kind, &mut data)?;
            }
        }
        Matrix::from_vec(rows.len(), self.n_features(), data)
    }

    /// The targets of `table`'s `rows`: class indices, or standardized values
    /// `[rows.len(), n_outputs()]`. An unseen class or a missing value is an
    /// error naming the file, line and column.
    pub fn transform_targets(&self, table: &RawTable, rows: &[usize]) -> Result<Targets> {
        let map = locate(table, &self.columns, self.has_header, &self.target_indices)?;
        let mut cols = Vec::with_capacity(self.target_indices.len());
        for (&i, name) in self.target_indices.iter().zip(&self.target_columns) {
            cols.push(map[i].ok_or_else(|| missing_column(table, name))?);
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= table.len()) {
            return Err(table.error(format!("row {r} is out of range: {} rows", table.len())));
        }
        self.target.encode(table, rows, &cols)
    }

    /// Maps network outputs `[rows, n_outputs()]` back to the original
    /// units: regression values are un-standardized per target column;
    /// class scores are returned unchanged.
    pub fn decode_targets(&self, m: &Matrix<f32>) -> Matrix<f64> {
        let mut out = m.cast::<f64>();
        if let TargetMap::Values { mean, std } = &self.target {
            let cols = out.cols();
            for (i, v) in out.as_mut_slice().iter_mut().enumerate() {
                if let (Some(mu), Some(sd)) = (mean.get(i % cols), std.get(i % cols)) {
                    *v = *v * sd + mu;
                }
            }
        }
        out
    }

    /// Class names in label order (index `k` is label `k`), for classification.
    pub fn class_names(&self) -> Option<&[String]> {
        match &self.target {
            TargetMap::Classes { names, .. } => Some(names),
            TargetMap::Values { .. } => None,
        }
    }

    /// Width of the feature matrix (after one-hot expansion).
    pub fn n_features(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// Number of network outputs: classes, or regression targets.
    pub fn n_outputs(&self) -> usize {
        match &self.target {
            TargetMap::Classes { names, .. } => names.len(),
            TargetMap::Values { mean, .. } => mean.len(),
        }
    }

    /// Classification or regression.
    pub fn task(&self) -> Task {
        self.task
    }

    /// The input columns and their encodings, in feature order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// Names of the target column(s).
    pub fn target_columns(&self) -> &[String] {
        &self.target_columns
    }

    /// Name of each feature: the column name, or `column=category` for
    /// one-hot features, `[n_features()]`.
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.n_features());
        for f in &self.features {
            match &f.kind {
                FeatureKind::Numeric { .. } => out.push(f.name.clone()),
                FeatureKind::Categorical { categories, .. } => {
                    out.extend(categories.iter().map(|c| format!("{}={c}", f.name)))
                }
            }
        }
        out
    }

    /// A few lines describing the preprocessing, for `bpnet inspect`.
    pub fn describe(&self) -> String {
        let targets = quoted_list(&self.target_columns);
        let mut s = match &self.target {
            TargetMap::Classes { names, .. } => {
                format!(
                    "task: classify, target {targets}, {} classes: {}",
                    names.len(),
                    names.join(", ")
                )
            }
            TargetMap::Values { mean, std } => {
                let stats: Vec<String> = mean
                    .iter()
                    .zip(std)
                    .map(|(m, s)| format!("mean {m:.4}, std {s:.4}"))
                    .collect();
                format!("task: regress, target {targets} ({})", stats.join("; "))
            }
        };
        let (num, cat): (Vec<&Feature>, Vec<&Feature>) = self
            .features
            .iter()
            .partition(|f| matches!(f.kind, FeatureKind::Numeric { .. }));
        let impute = self
            .impute
            .map_or("none (missing values are errors)".into(), |i| i.to_string());
        s += &format!(
            "\ninputs: {} columns -> {} features; scaling: {}; impute: {impute}",
            self.features.len(),
            self.n_features(),
            self.scaling
        );
        let names = |v: &[&Feature]| v.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
        if !num.is_empty() {
            s += &format!("\n  numeric ({}): {}", num.len(), names(&num));
        }
        for f in cat {
            if let FeatureKind::Categorical { categories, .. } = &f.kind {
                s += &format!(
                    "\n  categorical '{}': {} categories: {}",
                    f.name,
                    categories.len(),
                    categories.join(", ")
                );
            }
        }
        s
    }
}

/// The error for a feature or target column that `table` lacks.
fn missing_column(table: &RawTable, name: &str) -> Error {
    let line = table.lines.first().map_or(1, |l| l.saturating_sub(1).max(1));
    table.error(format!(
        "line {line}, column '{name}': missing; the file's columns are {}",
        table.column_list()
    ))
}

/// Appends the features of cell `(r, c)` to `out`.
fn encode(table: &RawTable, r: usize, c: usize, kind: &FeatureKind, out: &mut Vec<f32>) -> Result<()> {
    match kind {
        FeatureKind::Numeric { center, scale, fill } => {
            let v = match (numeric_cell(table, r, c)?, fill) {
                (Some(v), _) => v,
                (None, Some(f)) => *f,
                (None, None) => return Err(table.cell_error(r, c, "missing value (fit without --impute)")),
            };
            out.push(((v - center) / scale) as f32);
        }
        FeatureKind::Categorical { categories, fill } => {
            let cell = &table.rows[r][c];
            let cell = match (is_missing(cell), fill) {
                (false, _) => cell,
                (true, Some(f)) => f,
                (true, None) => return Err(table.cell_error(r, c, "missing value (fit without --impute)")),
            };
            let k = categories.binary_search(cell).map_err(|_| {
                let known = quoted_list(categories);
                table.cell_error(
                    r,
                    c,
                    format!("category '{cell}' was not seen in training (known: {known})"),
                )
            })?;
            let start = out.len();
            out.resize(start + categories.len(), 0.0);
            out[start + k] = 1.0;
        }
    }
    Ok(())
}

/// Fits the encoding of feature column `c` on the training rows.
fn fit_feature(
    table: &RawTable,
    c: usize,
    rows: &[usize],
    spec: &PreprocessSpec,
    notes: &mut Vec<String>,
) -> Result<Feature> {
    let name = table.columns[c].clone();
    let present: Vec<&str> = rows
        .iter()
        .map(|&r| table.rows[r][c].as_str())
        .filter(|s| !is_missing(s))
        .collect();
    let missing = rows.len() - present.len();
    if present.is_empty() {
        return Err(table.cell_error(rows[0], c, "every training value is missing"));
    }
    if missing > 0 && spec.impute.is_none() {
        let r = rows
            .iter()
            .copied()
            .find(|&r| is_missing(&table.rows[r][c]))
            .unwrap_or(rows[0]);
        return Err(table.cell_error(r, c, "missing value (use --impute mean or --impute median)"));
    }
    let numbers = present.iter().filter(|s| is_number(s)).count();
    let kind = if 2 * numbers >= present.len() {
        let mut values = Vec::with_capacity(present.len());
        for &r in rows {
            values.extend(numeric_cell(table, r, c)?);
        }
        let (center, scale) = spec.scaling.fit(&values);
        let fill = spec.impute.map(|i| i.fill(&mut values));
        if let (Some(f), true) = (fill, missing > 0) {
            notes.push(format!("impute: {missing} missing cells of '{name}' filled with {f}"));
        }
        FeatureKind::Numeric { center, scale, fill }
    } else {
        let mut categories: Vec<String> = present.iter().map(|s| s.to_string()).collect();
        categories.sort();
        let fill = spec.impute.map(|_| most_frequent(&categories));
        categories.dedup();
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

/// The most frequent value of a sorted list (the first one on ties).
fn most_frequent(sorted: &[String]) -> String {
    let mut best = (0, "");
    let mut i = 0;
    while i < sorted.len() {
        let run = sorted[i..].iter().take_while(|s| **s == sorted[i]).count();
        if run > best.0 {
            best = (run, sorted[i].as_str());
        }
        i += run;
    }
    best.1.to_string()
}
