//! The whole-file Parquet read ([`super::columnar::read_parquet`]), its
//! columns decoded in parallel.
//!
//! Each job reads one column (`column` of the file, through a reader of
//! its own) over one contiguous range of row groups, writing its numbers
//! as `f32` offsets straight into its rows of the column (allocated once,
//! from the row counts in the file's metadata) or its text into its own
//! dictionary, merged in row order. With at least as many columns as
//! threads, each job reads a whole column: its reader's pages and buffers
//! are one column's, which stay in the caches, and the column's plan
//! (numbers as offsets from a shift, or text) comes from its own first
//! [`SAMPLE`] rows, as the serial reader chooses it. With fewer columns,
//! the row groups are cut into as many ranges as it takes to give every
//! thread a job, and the plans come from a sample read of the file's
//! first rows before the jobs start. The error reported is the one found
//! at the earliest row (then in the first column). The table is the
//! serial reader's, value for value (`tests/columnar.rs`,
//! `parquet_read_on_1_to_4_threads_equals_the_arrow_file_read_in_one`,
//! `plans_come_from_the_files_first_rows_on_any_thread_count`).

use std::cell::Cell;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use arrow_schema::Schema;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::build::{Plan, TextBuilder};
use super::columnar::{
    Given, format_error, is_numeric_type, parquet_file, plan_of, push_cells, put_numbers, wanted_indices,
};
use super::{Column, ReadProgress, SAMPLE};
use crate::data::csv::Shifts;
use crate::error::{Error, Result};

/// Rows per record batch.
const BATCH: usize = 16 * 1024;

/// The names of the wanted columns and the result of reading them all:
/// their columns (`None` for a numeric column holding a value beyond 1e30,
/// to read again as text) and the row count.
pub(super) type Read = (Vec<String>, Result<(Vec<Option<Column>>, usize)>);

/// Reads `columns` (all without) of the Parquet file at `path`; an error
/// of the file's footer or schema is returned at once, one of its data in
/// [`Read`].
pub(super) fn read_columns(path: &Path, columns: Option<&[String]>, shifts: &Shifts) -> Result<Read> {
    let builder = open(path)?;
    let schema = builder.schema().clone();
    let wanted = wanted_indices(&schema, columns);
    let fields: Vec<_> = wanted.iter().map(|&i| schema.field(i).clone()).collect();
    let meta = builder.metadata();
    let group_rows: Vec<usize> = (0..meta.num_row_groups())
        .map(|g| usize::try_from(meta.row_group(g).num_rows()).unwrap_or(usize::MAX))
        .collect();
    let numeric: Vec<bool> = fields.iter().map(|f| is_numeric_type(f.data_type())).collect();
    let names = super::columnar::checked_names(path, &Schema::new(fields))?;
    let given = super::columnar::given_shifts(&names, shifts);
    let read = read_groups(path, (&wanted, &given), &numeric, &group_rows);
    Ok((names, read))
}

/// The names of every column of the Parquet file at `path`.
pub(super) fn column_names(path: &Path) -> Result<Vec<String>> {
    Ok(open(path)?.schema().fields().iter().map(|f| f.name().clone()).collect())
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<super::parquet_file::ParquetFile>> {
    ParquetRecordBatchReaderBuilder::try_new(parquet_file(path)?)
        .map_err(|e| format_error(path, format!("not a readable Parquet file: {e}")))
}

/// A reader of the `wanted` columns of row groups `groups` (all without).
fn reader(path: &Path, wanted: &[usize], groups: Option<Vec<usize>>, batch: usize) -> Result<ParquetRecordBatchReader> {
    let builder = open(path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let mut builder = builder.with_projection(mask).with_batch_size(batch);
    if let Some(groups) = groups {
        builder = builder.with_row_groups(groups);
    }
    builder
        .build()
        .map_err(|e| format_error(path, format!("not a readable Parquet file: {e}")))
}

/// Each wanted column's plan, from the file's first [`SAMPLE`] rows, read
/// by a reader of their own.
fn plans(path: &Path, wanted: &[usize], given: &[Given]) -> Result<Vec<Plan>> {
    let mut first = reader(path, wanted, None, SAMPLE)?;
    match first.next() {
        None => Ok(vec![Plan::Text; wanted.len()]),
        Some(batch) => {
            let batch = batch.map_err(|e| format_error(path, format!("after row 0: {e}")))?;
            let given = given.iter().copied().chain(std::iter::repeat(None));
            Ok(batch
                .columns()
                .iter()
                .zip(given)
                .map(|(a, g)| plan_of(a.as_ref(), g))
                .collect())
        }
    }
}

/// What one job read of one column: the plan it kept the column by, the
/// column's text (`None` for numbers) and whether a number lay beyond 1e30.
struct Piece {
    plan: Plan,
    text: Option<TextBuilder>,
    bad: bool,
}

/// A job's error, and the file row its reader had reached: the error
/// reported is the one of the earliest row (then of the first column).
type Failure = (usize, Error);

/// Reads every row group, one job per column and range of row groups:
/// one range when the columns are at least as many as the threads, else
/// as many as it takes to give each thread a job. `numeric` says which
/// wanted columns are of a numeric type.
fn read_groups(
    path: &Path,
    (wanted, given): (&[usize], &[Given]),
    numeric: &[bool],
    group_rows: &[usize],
) -> Result<(Vec<Option<Column>>, usize)> {
    let total = group_rows.iter().try_fold(0usize, |a, &r| a.checked_add(r));
    let total = total.ok_or_else(|| format_error(path, "not a readable Parquet file: row counts overflow".into()))?;
    // Before the plans are known: every column of a numeric type counts
    // (one kept as text counts too, so this errs on the safe side).
    check_fits(path, total, numeric.iter().filter(|&&n| n).count())?;
    let cols = wanted.len();
    let ranges = split_groups(group_rows, crate::parallel::threads().div_ceil(cols.max(1)));
    let starts: Vec<usize> = ranges.iter().map(|r| group_rows[..r.start].iter().sum()).collect();
    // A column read whole chooses its plan from its own first rows; one
    // cut into ranges takes the plan of a sample read first (few columns).
    let sampled = match ranges.len() {
        1 => None,
        _ => Some(plans(path, wanted, given)?),
    };
    // Zeroed lazily by the allocator: no page is touched before its rows
    // are decoded (a footer claiming more rows than the data holds costs
    // nothing before the error; the reader never writes the buffer of a
    // column of a numeric type kept as text).
    let mut values: Vec<Option<Vec<f32>>> = numeric.iter().map(|&n| n.then(|| vec![0.0f32; total])).collect();
    let slots = cut_slices(&mut values, &ranges, group_rows);
    let results: Vec<Mutex<Option<std::result::Result<Piece, Failure>>>> =
        slots.iter().map(|_| Mutex::new(None)).collect();
    let progress = Progress::new(path, total, cols);
    crate::parallel::run(slots.len(), &|job| {
        let (r, c) = (job / cols, job % cols);
        let out = slots[job].lock().ok().and_then(|mut s| s.take());
        let span = Span {
            groups: ranges[r].clone(),
            start: starts[r],
            stated: group_rows[ranges[r].clone()].iter().sum(),
            total,
        };
        let at = Cell::new(span.start);
        let plan = sampled.as_ref().map(|p| p[c]);
        // Contained on this thread too: a decoder's panic in a worker
        // becomes this job's error, silently (the hook of `contain` is
        // silent only on a thread inside it).
        let piece = super::columnar::guarded(path, "Parquet", || {
            read_piece(path, (wanted[c], plan, given[c]), &span, (out, &progress), &at)
        });
        if let Ok(mut slot) = results[job].lock() {
            *slot = Some(piece.map_err(|e| (at.get(), e)));
        }
    });
    drop(slots);
    progress.finish();
    let mut pieces = Vec::with_capacity(results.len());
    let mut first: Option<(usize, usize, Error)> = None;
    for (job, result) in results.into_iter().enumerate() {
        let failed = |e| (usize::MAX, e);
        let result = result.into_inner().ok().flatten();
        match result.unwrap_or_else(|| Err(failed(format_error(path, "a Parquet reader thread failed".into())))) {
            Ok(piece) => pieces.push(piece),
            Err((row, e)) => {
                if first.as_ref().is_none_or(|(r, c, _)| (row, job % cols) < (*r, *c)) {
                    first = Some((row, job % cols, e));
                }
            }
        }
    }
    if let Some((_, _, e)) = first {
        return Err(e);
    }
    Ok((columns_of(pieces, values, cols), total))
}

/// Each wanted column from its jobs' pieces (`[range][column]`) and its
/// number buffer: `None` for numbers beyond 1e30, to read again as text.
fn columns_of(pieces: Vec<Piece>, values: Vec<Option<Vec<f32>>>, cols: usize) -> Vec<Option<Column>> {
    let mut merged: Vec<Option<Piece>> = (0..cols).map(|_| None).collect();
    for (job, piece) in pieces.into_iter().enumerate() {
        match &mut merged[job % cols] {
            slot @ None => *slot = Some(piece),
            Some(all) => {
                all.bad |= piece.bad;
                if let (Some(all), Some(t)) = (&mut all.text, piece.text) {
                    all.append(t);
                }
            }
        }
    }
    merged
        .into_iter()
        .zip(values)
        .map(|(piece, values)| match (piece?, values) {
            (
                Piece {
                    plan: Plan::Num(shift),
                    bad: false,
                    ..
                },
                Some(values),
            ) => Some(Column::Num { shift, values }),
            (Piece { text: Some(t), .. }, _) => Some(t.finish()),
            _ => None,
        })
        .collect()
}

/// How far the read has got, told to the hook of
/// [`super::set_read_progress`] after each batch: the cells decoded, as a
/// share of the file's bytes and as rows (cells over columns). Counted and
/// told under one lock, so the reports only grow.
struct Progress {
    cells: Mutex<u64>,
    all: u64,
    cols: u64,
    bytes: u64,
}

impl Progress {
    fn new(path: &Path, rows: usize, cols: usize) -> Self {
        Progress {
            cells: Mutex::new(0),
            all: (rows as u64).saturating_mul(cols as u64),
            cols: cols as u64,
            bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        }
    }

    /// `rows` more rows of one column decoded.
    fn add(&self, rows: usize) {
        if let Ok(mut cells) = self.cells.lock() {
            *cells += rows as u64;
            super::read::report(ReadProgress {
                bytes: super::read::share_of(self.bytes, *cells, self.all),
                total: self.bytes,
                rows: *cells / self.cols.max(1),
                done: false,
            });
        }
    }

    /// The last report, once every job has ended (with an error or not).
    fn finish(&self) {
        let cells = self.cells.lock().map_or(0, |c| *c);
        super::read::report(ReadProgress {
            bytes: self.bytes,
            total: self.bytes,
            rows: cells / self.cols.max(1),
            done: true,
        });
    }
}

/// The numeric columns' `total` rows (from the metadata, before any is
/// decoded) must fit in the memory this process may still use
/// ([`crate::workflow::stream::available_memory`]): a file too big is an
/// error that says so, not an aborted allocation.
fn check_fits(path: &Path, total: usize, numeric: usize) -> Result<()> {
    let bytes = (total as u64).saturating_mul(4).saturating_mul(numeric as u64);
    match crate::workflow::stream::available_memory()? {
        Some(limit) if bytes > limit.bytes => Err(format_error(
            path,
            format!(
                "its metadata says {total} rows, {} MB of numbers, more than the {} MB this process may use ({}); --stream reads it in chunks",
                bytes / 1_000_000,
                limit.bytes / 1_000_000,
                limit.source
            ),
        )),
        _ => Ok(()),
    }
}

/// Contiguous ranges of row groups, at most `parts`, of about equal rows.
fn split_groups(group_rows: &[usize], parts: usize) -> Vec<Range<usize>> {
    let total: usize = group_rows.iter().sum();
    let parts = parts.clamp(1, group_rows.len().max(1));
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut seen) = (0, 0usize);
    for (g, &rows) in group_rows.iter().enumerate() {
        seen += rows;
        let due = total.div_ceil(parts) * (ranges.len() + 1);
        if seen >= due && ranges.len() + 1 < parts {
            ranges.push(start..g + 1);
            start = g + 1;
        }
    }
    if start < group_rows.len() || ranges.is_empty() {
        ranges.push(start..group_rows.len());
    }
    ranges
}

/// Each job's rows of its numeric column (job `range * columns + column`;
/// `None` for text columns), handed out once to the thread that runs it.
fn cut_slices<'a>(
    values: &'a mut [Option<Vec<f32>>],
    ranges: &[Range<usize>],
    group_rows: &[usize],
) -> Vec<Mutex<Option<&'a mut [f32]>>> {
    let cols = values.len();
    let mut slots: Vec<Option<&'a mut [f32]>> = (0..cols * ranges.len()).map(|_| None).collect();
    for (c, column) in values.iter_mut().enumerate() {
        let Some(column) = column else { continue };
        let mut rest: &'a mut [f32] = column.as_mut_slice();
        for (r, range) in ranges.iter().enumerate() {
            let rows = group_rows[range.clone()].iter().sum::<usize>().min(rest.len());
            let (mine, after) = std::mem::take(&mut rest).split_at_mut(rows);
            slots[r * cols + c] = Some(mine);
            rest = after;
        }
    }
    slots.into_iter().map(Mutex::new).collect()
}

/// One range of row groups to read: `groups`, whose first row is row
/// `start` of the file's `total` and which hold `stated` rows by the
/// metadata.
struct Span {
    groups: Range<usize>,
    start: usize,
    stated: usize,
    total: usize,
}

/// Reads `column` of one range of row groups into `out` (its rows, `None`
/// for a column of a non-numeric type), by `plan` or, without one, by the
/// plan its first rows call for (from a sample reader of the file's first
/// [`SAMPLE`] rows if the first batch holds fewer); `at` follows the file
/// row reached.
fn read_piece(
    path: &Path,
    (column, plan, given): (usize, Option<Plan>, Given),
    span: &Span,
    (mut out, progress): (Option<&mut [f32]>, &Progress),
    at: &Cell<usize>,
) -> Result<Piece> {
    let Span {
        groups,
        start,
        stated,
        total,
    } = span;
    let (start, stated) = (*start, *stated);
    let mut batches = reader(path, &[column], Some(groups.clone().collect()), BATCH)?;
    let at_row = |row: usize| move |e| format_error(path, format!("after row {row}: {e}"));
    let mut next = batches.next().transpose().map_err(at_row(start))?;
    let plan = match (plan, &next) {
        (Some(p), _) => p,
        (None, Some(b)) if b.num_rows() >= SAMPLE.min(*total) => plan_of(b.column(0).as_ref(), given),
        (None, _) => plans(path, &[column], &[given])?.first().copied().unwrap_or(Plan::Text),
    };
    let mut piece = Piece {
        plan,
        text: (!matches!(plan, Plan::Num(_))).then(TextBuilder::default),
        bad: false,
    };
    let mut n = 0usize;
    while let Some(batch) = next {
        let rows = batch.num_rows();
        if n + rows > stated {
            break;
        }
        put_column(
            batch.column(0).as_ref(),
            &mut piece,
            out.as_deref_mut().map(|o| &mut o[n..n + rows]),
        );
        n += rows;
        at.set(start + n);
        progress.add(rows);
        next = batches.next().transpose().map_err(at_row(start + n))?;
    }
    if n != stated {
        return Err(format_error(
            path,
            format!(
                "not a readable Parquet file: the row groups from row {start} do not hold the {stated} rows their metadata says"
            ),
        ));
    }
    Ok(piece)
}

/// Puts one batch of a column: its numbers into `out` by the piece's plan,
/// or its cells into the piece's text.
fn put_column(array: &dyn arrow_array::Array, piece: &mut Piece, out: Option<&mut [f32]>) {
    match (piece.plan, out) {
        (Plan::Num(shift), Some(out)) => match put_numbers(array, shift, out) {
            Some(b) => piece.bad |= b,
            None => piece.bad = true,
        },
        _ => {
            if let Some(t) = &mut piece.text {
                push_cells(t, array);
            }
        }
    }
}
