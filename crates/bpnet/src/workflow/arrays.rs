//! Training data from arrays in memory (the Python package's input) instead
//! of a file: split and preprocessed exactly as [`super::load`] does a CSV
//! whose feature columns hold the same numbers and whose target column holds
//! the same texts, so the same data, configuration and seed train the same
//! model, bit for bit.

use super::config::TrainConfig;
use super::data::{Pipeline, Prepared, check_fraction, preprocess_spec};
use crate::data::preprocess::{DenseMatrix, Preprocessor, Targets as TableTargets, Task, detect_task};
use crate::data::split::{for_option, split};
use crate::data::{Dataset, RawTable};
use crate::{Error, Result};

/// One set of rows: numeric features and their targets.
pub struct ArrayTable<'a> {
    /// Features `[rows, features]`.
    pub x: DenseMatrix<'a>,
    /// The targets as cell texts, one row per row of `x` (see
    /// [`crate::data::preprocess::target_table`]).
    pub y: RawTable,
}

/// Column names and header flag of the data, as a CSV of it would have.
pub struct ArrayNames {
    /// Feature column names `[features]`.
    pub features: Vec<String>,
    /// Whether the equivalent CSV has a header (names given by the user)
    /// or not (names `col0`, `col1`, ...): how `bpnet eval` will read files.
    pub header: bool,
}

impl ArrayNames {
    /// The names a headerless CSV gets: `col0` .. `col{n-1}`.
    pub fn headerless(features: usize) -> Self {
        ArrayNames {
            features: (0..features).map(|j| format!("col{j}")).collect(),
            header: false,
        }
    }
}

/// Splits `train` into training, validation (`cfg.val_split`) and test
/// (`cfg.test_split`) rows and fits the preprocessing on the training rows,
/// as [`super::load`] does for the equivalent CSV (`cfg.limit` is honoured;
/// `cfg.data` and `cfg.test` are not read). With `eval`, its rows are the
/// validation set instead of a split of `train`.
pub fn load_arrays(
    cfg: &TrainConfig,
    train: &ArrayTable<'_>,
    names: &ArrayNames,
    eval: Option<&ArrayTable<'_>>,
) -> Result<Prepared> {
    check_fraction("val-split", cfg.val_split)?;
    check_fraction("test-split", cfg.test_split)?;
    let spec = preprocess_spec(cfg)?;
    if !spec.targets.is_empty() {
        return Err(Error::config("target", "arrays take their targets from y"));
    }
    let table = &train.y;
    let mut rows: Vec<usize> = (0..table.len()).collect();
    if cfg.limit > 0 {
        rows.truncate(cfg.limit);
    }
    let target_cols: Vec<usize> = (0..table.n_cols()).collect();
    let task = match spec.task {
        Some(t) => t,
        None => detect_task(table, &target_cols, &rows)?.0,
    };
    let strata = |rows: &[usize]| (task == Task::Classify).then(|| table.column_cells(0, rows));
    let mut test_rows = Vec::new();
    if cfg.test_split > 0.0 {
        let (keep, out) = split(rows.len(), strata(&rows).as_deref(), cfg.test_split, cfg.seed ^ 0x7E57)
            .map_err(|e| for_option(e, "test_split"))?;
        test_rows = out.iter().map(|&i| rows[i]).collect();
        rows = keep.iter().map(|&i| rows[i]).collect();
    }
    let mut val_rows = Vec::new();
    if cfg.val_split > 0.0 && eval.is_none() {
        let (keep, out) = split(rows.len(), strata(&rows).as_deref(), cfg.val_split, cfg.seed ^ 0x0A11D)
            .map_err(|e| for_option(e, "val_split"))?;
        val_rows = out.iter().map(|&i| rows[i]).collect();
        rows = keep.iter().map(|&i| rows[i]).collect();
    }
    let (pre, notes) = Preprocessor::fit_dense(&train.x, &names.features, table, names.header, &rows, &spec)?;
    let val = match eval {
        Some(e) => Some(array_dataset(&pre, e, &all_rows(e.x.rows()))?),
        None => (!val_rows.is_empty())
            .then(|| array_dataset(&pre, train, &val_rows))
            .transpose()?,
    };
    let test = (!test_rows.is_empty())
        .then(|| array_dataset(&pre, train, &test_rows))
        .transpose()?;
    let train = array_dataset(&pre, train, &rows)?;
    let pipeline = Pipeline::Table {
        delimiter: ',',
        header: names.header,
        preprocessor: pre,
    };
    Ok(Prepared {
        train,
        val,
        test,
        pipeline,
        notes,
    })
}

/// The first rows of incremental training (`partial_fit`): every row is a
/// training row (no split), the preprocessing is fitted on them, and with
/// `classes` the class list is those texts rather than the labels present.
pub fn load_arrays_increment(
    cfg: &TrainConfig,
    train: &ArrayTable<'_>,
    names: &ArrayNames,
    classes: Option<&[String]>,
) -> Result<Prepared> {
    let spec = preprocess_spec(cfg)?;
    let rows = all_rows(train.x.rows());
    // With the classes given, the first rows need not hold two of them (nor
    // every one; a single row will do): the target map is the classes'.
    let (pre, notes) = match classes {
        Some(c) => Preprocessor::fit_dense_classes(&train.x, &names.features, &train.y, names.header, &rows, &spec, c)?,
        None => Preprocessor::fit_dense(&train.x, &names.features, &train.y, names.header, &rows, &spec)?,
    };
    Ok(Prepared {
        train: array_dataset(&pre, train, &rows)?,
        val: None,
        test: None,
        pipeline: Pipeline::Table {
            delimiter: ',',
            header: names.header,
            preprocessor: pre,
        },
        notes,
    })
}

/// Rows of arrays as a dataset, with the fitted preprocessing.
pub fn array_dataset(p: &Preprocessor, t: &ArrayTable<'_>, rows: &[usize]) -> Result<Dataset> {
    if t.y.len() != t.x.rows() {
        return Err(Error::config(
            "y",
            format!("{} rows, but X has {} rows", t.y.len(), t.x.rows()),
        ));
    }
    let x = p.transform_dense(&t.x, rows)?;
    match p.transform_dense_targets(&t.y, rows)? {
        TableTargets::Labels(l) => Dataset::new(x, l, p.n_outputs()),
        TableTargets::Values(v) => Dataset::regression(x, v),
    }
}

fn all_rows(n: usize) -> Vec<usize> {
    (0..n).collect()
}
