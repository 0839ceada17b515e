//! A CSV table opened for training ([`open_table`]: its rows after
//! `--limit` and `--test-split`) and the preparation of any subset of its
//! rows ([`prepare_rows`]: validation split, preprocessing fitted on the
//! training rows), as `bpnet train`, cross-validation and the tuner use them.

use super::config::TrainConfig;
use super::data::{
    Pipeline, Prepared, check_fraction, csv_options, dataset, is_image_source, preprocess_spec, table_dataset,
};
use crate::data::csv::ColumnRef;
use crate::data::preprocess::Targets;
use crate::data::preprocess::{PreprocessSpec, Preprocessor, Task, detect_task};
use crate::data::split::{for_option, split_ranked, split_with};
use crate::data::table::{CellGroups, Table, read_data};
use crate::data::{CsvOptions, Dataset};
use crate::tensor::Matrix;
use crate::{Error, Result};
use std::path::Path;

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
    /// Notes on how the file was read (printed before training).
    pub notes: Vec<String>,
    /// Whether the first line was taken for data though it holds text
    /// (the header rule guessed: see [`first_line_note`]).
    first_line_guessed: bool,
}

impl TableSource {
    /// Whether the task is classification.
    pub fn is_classification(&self) -> bool {
        self.task == Task::Classify
    }

    /// The target columns' indices in the table, as `--target` (or its
    /// default, the last column) resolved to.
    pub fn target_columns(&self) -> &[usize] {
        &self.target_cols
    }

    /// The first of `rows` whose target cell is missing, as the error
    /// training gives for it (file, line, column). Folds check it first: a
    /// missing label read as a class `''`, which a lone row made a
    /// "class '' has one training row" error naming no line.
    pub fn check_targets_present(&self, rows: &[usize]) -> Result<()> {
        for &c in &self.target_cols {
            let missing = self.table.missing_test(c);
            if let Some(&r) = rows.iter().find(|&&r| missing.at(r)) {
                return Err(self.table.cell_error(r, c, "missing target value"));
            }
        }
        Ok(())
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

/// A note when header detection read the first line of `table` as data
/// although it holds text (a header that names a column `2020` looks like
/// data): `--header` says otherwise.
pub(super) fn first_line_note(table: &Table) -> Option<String> {
    if table.has_header || table.is_empty() {
        return None;
    }
    let cells: Vec<String> = (0..table.n_cols())
        .map(|c| table.cell_text(0, c).into_owned())
        .collect();
    let text = cells
        .iter()
        .any(|c| !crate::data::csv::is_number(c) && !crate::data::csv::is_missing(c));
    text.then(|| {
        const SHOWN: usize = 10;
        let mut shown: Vec<String> = cells
            .iter()
            .take(SHOWN)
            .map(|c| crate::data::csv::short_cell(c).into_owned())
            .collect();
        if cells.len() > SHOWN {
            shown.push(format!("... ({} cells)", cells.len()));
        }
        // The header rule: a number makes it data; a line of text is data
        // when its values occur in the rows below.
        let why = match cells.iter().any(|c| crate::data::csv::is_number(c)) {
            true => "since it holds a number",
            false => "since its values occur in the rows below",
        };
        format!(
            "note: the first line of {} ({}) was read as data, {why}; give --header if it names the columns (--no-header to say it is data)",
            table.path.display(),
            shown.join(",")
        )
    })
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
    let header_note = (opts.header.is_none()).then(|| first_line_note(&table)).flatten();
    let spec = preprocess_spec(cfg)?;
    let mut rows: Vec<usize> = (0..table.len()).collect();
    if cfg.limit > 0 {
        rows.truncate(cfg.limit);
    }
    // Stratify classification splits on the raw target cells (the first target
    // column); regression splits are plain random.
    let target_cols = match spec.targets.is_empty() {
        true => vec![table.n_cols().saturating_sub(1)],
        false => ColumnRef::resolve_all(&spec.targets, &table).map_err(|e| match &header_note {
            Some(_) => Error::config(
                "--target",
                format!("{e} (the first line was read as data: give --header if it names the columns)"),
            ),
            None => e,
        })?,
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
        first_line_guessed: header_note.is_some(),
        notes: header_note.into_iter().collect(),
    };
    if cfg.test.is_empty() && cfg.test_split > 0.0 {
        (src.rows, src.test_rows) = src
            .split_rows(&src.rows, cfg.test_split, cfg.seed ^ 0x7E57)
            .map_err(|e| for_option(e, "--test-split"))?;
    }
    Ok(src)
}

impl TableSource {
    /// `rows` split into the kept rows and a held-out `fraction` of them
    /// (stratified by class for classification), both in `rows`' order.
    fn split_rows(&self, rows: &[usize], fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
        // Strata by the rank of their text: the groups and order of a split
        // on the texts themselves, with no text made per row.
        let ranks = self.is_classification().then(|| {
            let groups = CellGroups::of(&self.table, self.target_cols[0], rows);
            let rank = groups.ranks();
            let mut codes = groups.codes;
            codes.iter_mut().for_each(|c| *c = rank[*c as usize]);
            codes
        });
        let (keep, out) = match &ranks {
            Some(ranks) => split_ranked(ranks, fraction, seed)?,
            None => split_with(rows.len(), None::<fn(usize) -> u32>, fraction, seed)?,
        };
        // Positions in `rows` to rows (no copy when `rows` is `0..n`).
        let identity = rows.iter().enumerate().all(|(i, &r)| i == r);
        let to_rows = |at: Vec<usize>| match identity {
            true => at,
            false => at.iter().map(|&i| rows[i]).collect(),
        };
        Ok((to_rows(keep), to_rows(out)))
    }
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
    prepare_rows_of(cfg, src, rows, test_rows).map_err(|e| hint_first_line(src.first_line_guessed, &src.table.path, e))
}

fn prepare_rows_of(
    cfg: &TrainConfig,
    src: &TableSource,
    rows: &[usize],
    test_rows: Option<&[usize]>,
) -> Result<Prepared> {
    let (rows, val_rows) = split_validation(cfg, src, rows)?;
    let table = &src.table;
    let (pre, mut notes) = Preprocessor::fit(table, &rows, &src.spec)?;
    notes.splice(0..0, src.notes.iter().cloned());
    let test_len = test_rows.map_or(src.test_rows.len(), <[usize]>::len);
    check_fits(&pre, rows.len() + val_rows.len() + test_len, &table.path)?;
    let train = table_dataset(&pre, table, &rows)?;
    // Rows of this file held out of the fit take categories it lacks.
    let held = pre.for_held_out();
    let test_rows = test_rows.or((cfg.test.is_empty()).then_some(&src.test_rows[..]));
    notes.extend(held.unseen_note(table, &[&val_rows, test_rows.unwrap_or(&[])]));
    let val = (!val_rows.is_empty())
        .then(|| table_dataset(&held, table, &val_rows))
        .transpose()?;
    let test = match test_rows {
        Some([]) => None,
        Some(t) => Some(table_dataset(&held, table, t)?),
        None => Some(test_file(cfg, &pre)?),
    };
    let header = table.has_header;
    Prepared::new(train, val, test, table_pipeline(cfg, header, pre), notes)
}

/// [`prepare_rows`] on all of `src`'s training rows, consuming it: the
/// training, validation and test matrices are built while the table's rows
/// are released ([`Preprocessor::take_sets`]), so the data is held about
/// once, not twice. The same datasets and errors as [`prepare_rows`].
pub fn prepare_all(cfg: &TrainConfig, src: TableSource) -> Result<Prepared> {
    let (guessed, path) = (src.first_line_guessed, src.table.path.clone());
    prepare_all_of(cfg, src).map_err(|e| hint_first_line(guessed, &path, e))
}

/// `e` with the header hint when it is about line 1 of `path` and that
/// line was taken for data though it holds text (`guessed`): the note that
/// says so is printed only after a run that succeeds.
pub(super) fn hint_first_line(guessed: bool, path: &Path, e: Error) -> Error {
    match e {
        Error::Format { path: p, reason }
            if guessed && p == path && (reason.starts_with("line 1,") || reason.starts_with("line 1:")) =>
        {
            Error::Format {
                path: p,
                reason: format!("{reason} (the first line was read as data: give --header if it names the columns)"),
            }
        }
        e => e,
    }
}

fn prepare_all_of(cfg: &TrainConfig, mut src: TableSource) -> Result<Prepared> {
    // The list of all training rows is not needed past the split.
    let all = std::mem::take(&mut src.rows);
    let (rows, val_rows) = split_validation(cfg, &src, &all)?;
    drop(all);
    let (pre, mut notes) = Preprocessor::fit(&src.table, &rows, &src.spec)?;
    notes.splice(0..0, std::mem::take(&mut src.notes));
    let header = src.table.has_header;
    // Rows of this file held out of the fit take categories it lacks (the
    // training rows have none it lacks: it was fitted on them).
    let held = pre.for_held_out();
    notes.extend(held.unseen_note(&src.table, &[&val_rows, &src.test_rows]));
    check_fits(&pre, rows.len() + val_rows.len() + src.test_rows.len(), &src.table.path)?;
    let mut sets = held.take_sets(&mut src.table, &[&rows, &val_rows, &src.test_rows])?;
    let into = |s: Option<(Matrix<f32>, Targets)>, keep: bool| -> Result<Option<Dataset>> {
        s.filter(|_| keep).map(|(x, y)| dataset(&pre, x, y)).transpose()
    };
    let own_test = into(sets.pop(), !src.test_rows.is_empty())?;
    let val = into(sets.pop(), !val_rows.is_empty())?;
    let train = into(sets.pop(), true)?.ok_or_else(|| Error::shape("training sets", 3, 0))?;
    let test = match cfg.test.is_empty() {
        true => own_test,
        false => Some(test_file(cfg, &pre)?),
    };
    Prepared::new(train, val, test, table_pipeline(cfg, header, pre), notes)
}

/// Refuses, in one line, a feature matrix of `rows` rows that would not fit
/// in the memory available (it aborted allocating): a column of text with
/// a category per row (an identifier) one-hot encodes to as many features
/// as rows, so a 484 KB file of 30,000 rows asked for 3.6 GB.
fn check_fits(pre: &Preprocessor, rows: usize, path: &Path) -> Result<()> {
    let width = pre.n_features();
    let bytes = rows as f64 * width as f64 * 4.0;
    let Some(limit) = super::stream::available_memory()? else {
        return Ok(());
    };
    if bytes <= limit.bytes as f64 {
        return Ok(());
    }
    let widest = pre
        .features()
        .iter()
        .filter(|f| f.width() > 1)
        .max_by_key(|f| f.width());
    let hint = match widest {
        Some(f) if f.width() * 2 > width => format!(
            "; column '{}' is one-hot encoded over {} categories (an identifier?): leave it out of the file",
            f.name,
            f.width()
        ),
        _ => String::new(),
    };
    Err(Error::Format {
        path: path.to_path_buf(),
        reason: format!(
            "the features of {rows} rows need {:.2} GB ({width} per row), more than the {:.2} GB available ({}){hint}; --stream reads them in chunks",
            bytes / 1e9,
            limit.bytes as f64 / 1e9,
            limit.source
        ),
    })
}

/// `rows` less the `--val-split` validation rows, and those rows (both
/// ascending when `rows` is).
fn split_validation(cfg: &TrainConfig, src: &TableSource, rows: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
    check_fraction("val-split", cfg.val_split)?;
    if cfg.val_split <= 0.0 {
        return Ok((rows.to_vec(), Vec::new()));
    }
    src.split_rows(rows, cfg.val_split, cfg.seed ^ 0x0A11D)
        .map_err(|e| for_option(e, "--val-split"))
}

/// The `--test` file as a dataset, read with the fitted preprocessing.
fn test_file(cfg: &TrainConfig, pre: &Preprocessor) -> Result<Dataset> {
    // Read as the training file was (its header settled, so that the
    // shifts apply by name).
    let opts = CsvOptions {
        header: Some(pre.has_header()),
        shifts: pre.shifts(),
        ..csv_options(cfg)?
    };
    let t = read_data(Path::new(&cfg.test), &opts, pre.needed_columns().as_deref())?;
    let all: Vec<usize> = (0..t.len()).collect();
    table_dataset(pre, &t, &all)
}

fn table_pipeline(cfg: &TrainConfig, header: bool, preprocessor: Preprocessor) -> Pipeline {
    Pipeline::Table {
        delimiter: cfg.delimiter,
        header,
        preprocessor,
    }
}
