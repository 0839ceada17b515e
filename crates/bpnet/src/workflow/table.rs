//! A CSV table opened for training ([`open_table`]: its rows after
//! `--limit` and `--test-split`) and the preparation of any subset of its
//! rows ([`prepare_rows`]: validation split, preprocessing fitted on the
//! training rows), as `bpnet train`, cross-validation and the tuner use them.

use super::config::TrainConfig;
use super::data::{Pipeline, Prepared, check_fraction, csv_options, is_image_source, preprocess_spec, table_dataset};
use crate::data::csv::ColumnRef;
use crate::data::preprocess::{PreprocessSpec, Preprocessor, Task, detect_task};
use crate::data::split::split_with;
use crate::data::table::{Table, read_data};
use crate::{Error, Result};
use std::borrow::Cow;
use std::path::Path;

/// For classification, the stratum of `rows[i]`: its cell of target column `t`.
fn strata<'a>(table: &'a Table, classify: bool, t: usize, rows: &'a [usize]) -> Option<impl Fn(usize) -> Cow<'a, str>> {
    classify.then_some(move |i: usize| table.cell_text(rows[i], t))
}

/// A CSV table opened for training: the rows left for training after
/// `--limit` and `--test-split`, and the rows held out for testing.
pub struct TableSource {
    /// The raw table.
    pub table: Table,
    spec: PreprocessSpec,
    task: Task,
    target_cols: Vec<usize>,
    /// Training rows (validation rows are split from them later).
    pub rows: Vec<usize>,
    /// Rows held out by `--test-split`.
    pub test_rows: Vec<usize>,
}

impl TableSource {
    /// Whether the task is classification.
    pub fn is_classification(&self) -> bool {
        self.task == Task::Classify
    }

    /// The raw cells of the first target column for `rows` (classification
    /// only): the strata of stratified splits.
    pub fn strata(&self, rows: &[usize]) -> Option<Vec<std::borrow::Cow<'_, str>>> {
        self.is_classification().then(|| {
            rows.iter()
                .map(|&r| self.table.cell_text(r, self.target_cols[0]))
                .collect()
        })
    }
}

/// Reads the CSV named by `cfg` and splits off its test rows.
pub fn open_table(cfg: &TrainConfig) -> Result<TableSource> {
    if is_image_source(&cfg.data) {
        return Err(Error::config(
            "data",
            format!("'{}' is not a CSV file (this needs a table)", cfg.data),
        ));
    }
    check_fraction("test-split", cfg.test_split)?;
    let opts = csv_options(cfg)?;
    let table = read_data(Path::new(&cfg.data), &opts, None)?;
    let spec = preprocess_spec(cfg)?;
    let mut rows: Vec<usize> = (0..table.len()).collect();
    if cfg.limit > 0 {
        rows.truncate(cfg.limit);
    }
    // Stratify classification splits on the raw target cells (the first target
    // column); regression splits are plain random.
    let target_cols = match spec.targets.is_empty() {
        true => vec![table.n_cols().saturating_sub(1)],
        false => ColumnRef::resolve_all(&spec.targets, &table)?,
    };
    let task = match spec.task {
        Some(t) => t,
        None => detect_task(&table, &target_cols, &rows)?.0,
    };
    let mut src = TableSource {
        table,
        spec,
        task,
        target_cols,
        rows,
        test_rows: Vec::new(),
    };
    if cfg.test.is_empty() && cfg.test_split > 0.0 {
        let rows = &src.rows;
        let (keep, out) = split_with(
            rows.len(),
            strata(&src.table, src.is_classification(), src.target_cols[0], rows),
            cfg.test_split,
            cfg.seed ^ 0x7E57,
        )?;
        src.test_rows = out.iter().map(|&i| rows[i]).collect();
        src.rows = keep.iter().map(|&i| rows[i]).collect();
    }
    Ok(src)
}

/// Training (less `--val-split` validation rows) on `rows` of `src`, the
/// preprocessing fitted on them; the test set is `test_rows` of the same
/// table when given, else `cfg.test` or the source's own test rows.
pub fn prepare_rows(
    cfg: &TrainConfig,
    src: &TableSource,
    rows: &[usize],
    test_rows: Option<&[usize]>,
) -> Result<Prepared> {
    check_fraction("val-split", cfg.val_split)?;
    let mut rows = rows.to_vec();
    let mut val_rows = Vec::new();
    if cfg.val_split > 0.0 {
        let (keep, out) = split_with(
            rows.len(),
            strata(&src.table, src.is_classification(), src.target_cols[0], &rows),
            cfg.val_split,
            cfg.seed ^ 0x0A11D,
        )?;
        val_rows = out.iter().map(|&i| rows[i]).collect();
        rows = keep.iter().map(|&i| rows[i]).collect();
    }
    let table = &src.table;
    let (pre, notes) = Preprocessor::fit(table, &rows, &src.spec)?;
    let train = table_dataset(&pre, table, &rows)?;
    let val = (!val_rows.is_empty())
        .then(|| table_dataset(&pre, table, &val_rows))
        .transpose()?;
    let test = match test_rows {
        Some(t) => Some(table_dataset(&pre, table, t)?),
        None if !cfg.test.is_empty() => {
            let t = read_data(
                Path::new(&cfg.test),
                &csv_options(cfg)?,
                pre.needed_columns().as_deref(),
            )?;
            let all: Vec<usize> = (0..t.len()).collect();
            Some(table_dataset(&pre, &t, &all)?)
        }
        None => (!src.test_rows.is_empty())
            .then(|| table_dataset(&pre, table, &src.test_rows))
            .transpose()?,
    };
    let pipeline = Pipeline::Table {
        delimiter: cfg.delimiter,
        header: table.has_header,
        preprocessor: pre,
    };
    Prepared::new(train, val, test, pipeline, notes)
}
