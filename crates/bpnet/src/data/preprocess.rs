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
mod dense;
mod dense_fit;
mod features;
mod num_fit;
mod stream;
mod stream_target;
mod take;
mod targets;

use super::csv::{ColumnRef, quoted_list};
use super::parts::{fill_rows, in_parts};
use super::table::{AsTable, Table};
use crate::error::{Error, Result};
use crate::tensor::Matrix;
use columns::{detect_task_in, locate, resolve_targets};
use features::{Encoder, encode_by_row, encode_tile, fit_feature};

/// Rows encoded column by column at a time (their features stay in cache).
const TILE: usize = 64;
use targets::{TargetMap, fit_target};

pub use columns::{Impute, MAX_AUTO_CLASSES, Scaling, Task, detect_task};
pub use dense::{DenseData, DenseMatrix, Layout, target_table};
pub use features::{Feature, FeatureKind};
pub use stream::StreamFit;
pub use stream_target::MAX_STREAM_CLASSES;

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

/// Targets of a set of rows, from [`Preprocessor::transform_targets`].
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class index of each row, `[rows]`, each below `n_outputs()`.
    Labels(Vec<usize>),
    /// Standardized regression targets `[rows, n_outputs()]`.
    Values(Matrix<f32>),
}

/// The largest magnitude a fitted centre, scale, fill or target statistic
/// may have: cells past ±1e30 are refused when read, so statistics of data
/// stay within a few times that.
const LIMIT: f64 = 1e31;

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
    /// How the training file held each numeric feature's column, by name
    /// (files read against this preprocessing hold it alike: see
    /// [`crate::data::Shifts`]); empty in files of earlier versions.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    read_as: std::collections::BTreeMap<String, ReadAs>,
    /// A category the training rows lack encodes as no category (all
    /// zeros) instead of failing: set on the copy that encodes the rows of
    /// the training file held out of the fit ([`Preprocessor::for_held_out`]);
    /// never saved.
    #[serde(skip)]
    unseen_as_zeros: bool,
}

/// How a typed table held a numeric feature's column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadAs {
    /// Numbers as `f32` offsets from this shift.
    Shift(f64),
    /// Text, each cell parsed when encoded.
    Text,
}

/// How `table` holds the column of each numeric feature of `features`.
fn read_as(table: &Table, features: &[Feature]) -> std::collections::BTreeMap<String, ReadAs> {
    features
        .iter()
        .filter(|f| matches!(f.kind, FeatureKind::Numeric { .. }))
        .map(|f| {
            let read = match &table.cols[f.index] {
                crate::data::table::Column::Num { shift, .. } => ReadAs::Shift(*shift),
                crate::data::table::Column::Text { .. } => ReadAs::Text,
            };
            (f.name.clone(), read)
        })
        .collect()
}

impl Preprocessor {
    /// Fits on `table`'s `train_rows` only. Returns the preprocessor and
    /// notes for the user (the task chosen and why, the target, categorical
    /// columns, imputed cells).
    ///
    /// A feature column is numeric when at least half of its non-missing
    /// training cells are numbers, else categorical; a text cell in a numeric
    /// column, an infinite value or one beyond 1e30 is an error.
    pub fn fit<T: AsTable + ?Sized>(
        table: &T,
        train_rows: &[usize],
        spec: &PreprocessSpec,
    ) -> Result<(Preprocessor, Vec<String>)> {
        Self::fit_table(&table.as_table(), train_rows, spec)
    }

    /// [`Preprocessor::fit`] on a typed table.
    fn fit_table(table: &Table, train_rows: &[usize], spec: &PreprocessSpec) -> Result<(Preprocessor, Vec<String>)> {
        if train_rows.is_empty() {
            return Err(table.error("no training rows"));
        }
        if let Some(&r) = train_rows.iter().find(|&&r| r >= table.len()) {
            return Err(table.error(format!("training row {r} is out of range: {} rows", table.len())));
        }
        let mut notes = Vec::new();
        let targets = resolve_targets(table, &spec.targets, &mut notes)?;
        let ignored = ColumnRef::resolve_all(&spec.ignore, table)?;
        let task = match spec.task {
            Some(t) => t,
            None => {
                let (t, note) = detect_task_in(table, &targets, train_rows)?;
                notes.push(note);
                t
            }
        };
        let target = fit_target(table, &targets, train_rows, task)?;
        // Which columns are features, as a mask: linear in the column count
        // however many columns are targets or ignored.
        let mut is_feature = vec![true; table.n_cols()];
        for &c in targets.iter().chain(&ignored) {
            is_feature[c] = false;
        }
        // Columns fitted in parallel; the first error and the notes in column order.
        let cols: Vec<usize> = (0..table.n_cols()).filter(|&c| is_feature[c]).collect();
        let stats = match spec.impute {
            Some(Impute::Median) => vec![None; cols.len()],
            _ => num_fit::num_stats(table, &cols, train_rows, spec.scaling),
        };
        let fitted = in_parts(cols.len(), cols.len() * train_rows.len(), |range| {
            let mut notes = Vec::new();
            let features: Result<Vec<Feature>> = range
                .map(|i| fit_feature(table, cols[i], train_rows, spec, stats[i].as_ref(), &mut notes))
                .collect();
            features.map(|f| (f, notes))
        });
        let mut features = Vec::with_capacity(cols.len());
        for part in fitted {
            let (f, n) = part?;
            features.extend(f);
            notes.extend(n);
        }
        if features.is_empty() {
            return Err(table.error(format!(
                "no feature columns besides the target among {} (is the delimiter right?)",
                table.column_list()
            )));
        }
        let read_as = read_as(table, &features);
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
            read_as,
            unseen_as_zeros: false,
        };
        Ok((pre, notes))
    }

    /// This preprocessing for rows of the training file held out of its fit
    /// (validation rows, a cross-validation fold, `--test-split` rows): a
    /// category the training rows lack is encoded as no category (all
    /// zeros, as scikit-learn's `handle_unknown="ignore"`) where this one
    /// refuses it. A rare category can fall in those rows alone, and the
    /// run has no say in the split; files read later (`eval`, `predict`,
    /// `--test`) are read with the saved preprocessing, which refuses it.
    pub fn for_held_out(&self) -> Preprocessor {
        Preprocessor {
            unseen_as_zeros: true,
            ..self.clone()
        }
    }

    /// A note on the rows of `parts` of `table` (held-out rows of the
    /// training file) whose categories the training rows lack, encoded as
    /// no category by [`Preprocessor::for_held_out`]: how many rows, and the
    /// first such column and category. `None` when there are none (or the
    /// columns are not found: the encoding says why).
    pub fn unseen_note(&self, table: &Table, parts: &[&[usize]]) -> Option<String> {
        let cols = self.feature_columns(table).ok()?;
        let encoders: Vec<(Encoder<'_>, &str, usize)> = self
            .features
            .iter()
            .zip(&cols)
            .filter(|(f, _)| matches!(f.kind, FeatureKind::Categorical { .. }))
            .map(|(f, &c)| (Encoder::new(table, c, &f.kind, false), f.name.as_str(), c))
            .collect();
        if encoders.is_empty() {
            return None;
        }
        let mut first: Option<(&str, String)> = None;
        let mut count = 0;
        for &r in parts.iter().flat_map(|rows| rows.iter()).filter(|&&r| r < table.len()) {
            let mut unseen = encoders.iter().filter(|(e, ..)| e.is_unseen(r));
            if let Some((_, name, c)) = unseen.next() {
                count += 1;
                first.get_or_insert_with(|| (name, table.cell_text(r, *c).into_owned()));
            }
        }
        let (column, category) = first?;
        Some(format!(
            "note: {count} validation or held-out row{} of {} hold{} a category the training rows lack (column '{}': '{}'{}): encoded as no category (all zeros); the model refuses it in the files it reads",
            if count == 1 { "" } else { "s" },
            table.path.display(),
            if count == 1 { "s" } else { "" },
            column,
            crate::data::csv::short_cell(&category),
            if count > 1 { ", ..." } else { "" }
        ))
    }

    /// The feature matrix `[rows.len(), n_features()]` of `table`'s `rows`.
    /// `table` may be another file (evaluation or prediction data): columns
    /// are matched by name when both files have a header, else by position,
    /// with or without the target column(s).
    pub fn transform_features<T: AsTable + ?Sized>(&self, table: &T, rows: &[usize]) -> Result<Matrix<f32>> {
        self.transform_table(&table.as_table(), rows)
    }

    /// [`Preprocessor::transform_features`] on a typed table.
    fn transform_table(&self, table: &Table, rows: &[usize]) -> Result<Matrix<f32>> {
        let cols = self.feature_columns(table)?;
        check_rows(table, rows)?;
        let width = self.n_features();
        let mut data = vec![0.0f32; rows.len() * width];
        self.encode_rows(table, &cols, rows, &mut data)?;
        Matrix::from_vec(rows.len(), width, data)
    }

    /// The column of `table` that each feature reads (by name or position).
    fn feature_columns(&self, table: &Table) -> Result<Vec<usize>> {
        let map = locate(table, &self.columns, self.has_header, &self.target_indices)?;
        let mut cols = Vec::with_capacity(self.features.len());
        for f in &self.features {
            cols.push(map[f.index].ok_or_else(|| missing_column(table, &f.name))?);
        }
        Ok(cols)
    }

    /// Encodes `rows` of `table` (features read from `cols`) into `out`,
    /// `[rows.len(), n_features()]`, in parallel; the first error in row order.
    fn encode_rows(&self, table: &Table, cols: &[usize], rows: &[usize], out: &mut [f32]) -> Result<()> {
        let encoders: Vec<(Encoder<'_>, usize, usize)> = self
            .features
            .iter()
            .zip(cols)
            .map(|(f, &c)| (Encoder::new(table, c, &f.kind, self.unseen_as_zeros), c, f.width()))
            .collect();
        let width = self.n_features();
        fill_rows(out, rows.len(), width, |range, out| {
            // Tile by tile, column by column; a tile with an error again
            // row by row, for the first error in row order.
            for (rows, out) in rows[range].chunks(TILE).zip(out.chunks_mut(TILE * width.max(1))) {
                if encode_tile(table, &encoders, rows, width, out).is_err() {
                    encode_by_row(table, &encoders, rows, width, out)?;
                }
            }
            Ok::<(), Error>(())
        })
    }

    /// The targets of `table`'s `rows`: class indices, or standardized values
    /// `[rows.len(), n_outputs()]`. An unseen class or a missing value is an
    /// error naming the file, line and column.
    pub fn transform_targets<T: AsTable + ?Sized>(&self, table: &T, rows: &[usize]) -> Result<Targets> {
        self.targets_table(&table.as_table(), rows)
    }

    /// [`Preprocessor::transform_targets`] on a typed table.
    fn targets_table(&self, table: &Table, rows: &[usize]) -> Result<Targets> {
        let map = locate(table, &self.columns, self.has_header, &self.target_indices)?;
        let mut cols = Vec::with_capacity(self.target_indices.len());
        for (&i, name) in self.target_indices.iter().zip(&self.target_columns) {
            cols.push(map[i].ok_or_else(|| missing_column(table, name))?);
        }
        check_rows(table, rows)?;
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

    /// Whether the parts agree with each other (a model file's metadata is
    /// trusted only this far): every feature and target reads a column of
    /// the training file, each target column has its name, a classifier has
    /// two or more classes, and a regression target a mean and a standard
    /// deviation each. The reason when not.
    pub fn check_consistent(&self) -> std::result::Result<(), String> {
        let n = self.columns.len();
        if let Some(f) = self.features.iter().find(|f| f.index >= n) {
            return Err(format!("feature '{}' reads column {} of {n}", f.name, f.index));
        }
        if self.target_indices.len() != self.target_columns.len() || self.target_indices.is_empty() {
            return Err(format!(
                "{} target columns with {} names",
                self.target_indices.len(),
                self.target_columns.len()
            ));
        }
        if let Some(i) = self.target_indices.iter().find(|&&i| i >= n) {
            return Err(format!("a target reads column {i} of {n}"));
        }
        self.check_numbers()?;
        match (&self.target, self.task) {
            (TargetMap::Classes { .. }, Task::Regress) => Err("task regress with class names for its target".into()),
            (TargetMap::Values { .. }, Task::Classify) => Err("task classify with target means for its target".into()),
            (TargetMap::Classes { names, .. }, _) if names.len() < 2 => Err(format!("{} class names", names.len())),
            (TargetMap::Classes { names, .. }, _) if let Some(d) = first_repeat(names) => {
                Err(format!("the class name '{d}' twice"))
            }
            (TargetMap::Values { mean, std }, _)
                if mean.len() != self.target_indices.len() || std.len() != mean.len() =>
            {
                Err(format!(
                    "{} target columns with {} means and {} standard deviations",
                    self.target_indices.len(),
                    mean.len(),
                    std.len()
                ))
            }
            _ => Ok(()),
        }
    }

    /// The numbers the transforms divide or multiply by, and those they add
    /// or fill in: finite, and each scale and target standard deviation a
    /// positive normal number (0 gave NaN features, 1e-320 infinities).
    /// No number is beyond what data can hold (cells past ±1e30 are refused
    /// when read: a fill of 1e300 became infinity in an f32 ONNX constant,
    /// a centre of 1e300 printed NaN predictions). A categorical feature's
    /// categories are sorted and distinct (they are looked up by binary
    /// search: out of order, every row was refused).
    fn check_numbers(&self) -> std::result::Result<(), String> {
        let sane = |v: f64| v.is_finite() && v.abs() <= LIMIT;
        for f in &self.features {
            match &f.kind {
                FeatureKind::Numeric { center, scale, fill } => {
                    if !(scale.is_normal() && *scale > 0.0 && sane(*scale)) {
                        return Err(format!("feature '{}' has scale {scale}", f.name));
                    }
                    if let Some(v) = [Some(*center), *fill].into_iter().flatten().find(|v| !sane(*v)) {
                        return Err(format!("feature '{}' has a center or fill of {v}", f.name));
                    }
                }
                FeatureKind::Categorical { categories, .. } => {
                    if categories.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!("feature '{}' has categories out of order or repeated", f.name));
                    }
                }
            }
        }
        if let TargetMap::Values { mean, std } = &self.target {
            let bad = mean
                .iter()
                .zip(std)
                .position(|(m, s)| !(sane(*m) && sane(*s) && s.is_normal() && *s > 0.0));
            if let Some(k) = bad {
                return Err(format!(
                    "target {k} has mean {} and standard deviation {}",
                    mean[k], std[k]
                ));
            }
        }
        Ok(())
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

    /// The training file's columns that features and targets come from,
    /// by name (`None` when it had no header: columns match by position).
    pub fn needed_columns(&self) -> Option<Vec<String>> {
        self.has_header.then(|| {
            let features = self.features.iter().map(|f| f.name.clone());
            features.chain(self.target_columns.iter().cloned()).collect()
        })
    }

    /// The shifts a file read against this preprocessing takes
    /// ([`crate::data::Shifts`]): each numeric feature's column as the
    /// training file held it (its shift, or as text), so that a row of the
    /// training file read again gives the same features, bit for bit; for
    /// a file of an earlier version, the centre rounded to an integer (the
    /// mean, median or minimum it is scaled from), so that a stored value's
    /// error after scaling stays at `f32` rounding of the scaled value.
    /// Categorical features and class targets are read as text, regression
    /// targets at their rounded mean.
    pub fn shifts(&self) -> crate::data::Shifts {
        let features = self.features.iter().map(|f| match &f.kind {
            FeatureKind::Numeric { center, .. } => {
                let read = match self.read_as.get(&f.name) {
                    Some(ReadAs::Shift(s)) => Some(*s),
                    Some(ReadAs::Text) => None,
                    None => Some(center.round()),
                };
                (f.name.clone(), read)
            }
            // Matched by text: read as text whatever the other rows hold.
            FeatureKind::Categorical { .. } => (f.name.clone(), None),
        });
        let targets = self
            .target_columns
            .iter()
            .enumerate()
            .map(|(i, name)| match &self.target {
                TargetMap::Classes { .. } => (name.clone(), None),
                TargetMap::Values { mean, .. } => (name.clone(), mean.get(i).map(|m| m.round())),
            });
        crate::data::Shifts::of(features.chain(targets))
    }

    /// Whether the training file had a header (files read against this
    /// preprocessing are read alike).
    pub fn has_header(&self) -> bool {
        self.has_header
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

/// An error naming the first of `rows` beyond `table`'s rows.
fn check_rows(table: &Table, rows: &[usize]) -> Result<()> {
    match rows.iter().find(|&&r| r >= table.len()) {
        Some(&r) => Err(table.error(format!("row {r} is out of range: {} rows", table.len()))),
        None => Ok(()),
    }
}

/// The error for a feature or target column that `table` lacks.
fn missing_column(table: &Table, name: &str) -> Error {
    let at = match (table.is_columnar(), table.is_empty()) {
        (true, _) => String::new(),
        (false, true) => "line 1, ".into(),
        (false, false) => format!("line {}, ", table.line(0).saturating_sub(1).max(1)),
    };
    table.error(format!(
        "{at}column '{name}': missing; the file's columns are {}",
        table.column_list()
    ))
}

/// The first text that occurs twice in `names`.
fn first_repeat(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names.iter().find(|n| !seen.insert(n.as_str())).map(String::as_str)
}
