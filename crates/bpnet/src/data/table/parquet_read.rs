//! The whole-file Parquet read ([`super::columnar::read_parquet`]), its
//! row groups decoded in parallel.
//!
//! The row groups are cut into one contiguous range per thread of
//! [`crate::parallel`] (balanced by rows); each range is read by its own
//! Parquet reader, its numbers written as `f32` offsets straight into its
//! rows of the column (allocated once, from the row counts in the file's
//! metadata) and its text into its own dictionary, which are merged in
//! order.
//!
//! Each column's plan (numbers as offsets from a shift, or text) is chosen
//! on the file's first [`SAMPLE`] rows, as the serial reader chooses it: by
//! the reader of the first range, from its first record batch, while the
//! other readers decode their own first batches; they wait for the plans
//! only before writing anything ([`Handoff`]). The table is the serial
//! reader's, value for value (`tests/columnar.rs`,
//! `parquet_read_on_1_to_4_threads_equals_the_arrow_file_read_in_one`,
//! `plans_come_from_the_files_first_rows_on_any_thread_count`).

use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::build::{Plan, TextBuilder};
use super::columnar::{format_error, is_numeric_type, parquet_file, plan_of, push_cells, put_numbers, wanted_indices};
use super::{Column, SAMPLE};
use crate::error::Result;
use crate::parallel::handoff::{Handoff, Publisher};

/// Rows per record batch.
const BATCH: usize = 16 * 1024;

/// The names of the wanted columns and the result of reading them all:
/// their columns (`None` for a numeric column holding a value beyond 1e30,
/// to read again as text) and the row count.
pub(super) type Read = (Vec<String>, Result<(Vec<Option<Column>>, usize)>);

/// Reads `columns` (all without) of the Parquet file at `path`; an error
/// of the file's footer or schema is returned at once, one of its data in
/// [`Read`].
pub(super) fn read_columns(path: &Path, columns: Option<&[String]>) -> Result<Read> {
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
    let read = read_groups(path, &wanted, &numeric, &group_rows);
    Ok((names, read))
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
fn plans(path: &Path, wanted: &[usize]) -> Result<Vec<Plan>> {
    let mut first = reader(path, wanted, None, SAMPLE)?;
    match first.next() {
        None => Ok(vec![Plan::Text; wanted.len()]),
        Some(batch) => {
            let batch = batch.map_err(|e| format_error(path, format!("after row 0: {e}")))?;
            Ok(batch.columns().iter().map(|a| plan_of(a.as_ref())).collect())
        }
    }
}

/// What one range of row groups read: its text columns (in plan order,
/// `None` for numeric ones) and which numeric columns hold a value beyond
/// 1e30.
struct Part {
    text: Vec<Option<TextBuilder>>,
    bad: Vec<bool>,
}

/// Reads every row group, one contiguous range per thread; `numeric` says
/// which wanted columns are of a numeric type.
fn read_groups(
    path: &Path,
    wanted: &[usize],
    numeric: &[bool],
    group_rows: &[usize],
) -> Result<(Vec<Option<Column>>, usize)> {
    let total = group_rows.iter().try_fold(0usize, |a, &r| a.checked_add(r));
    let total = total.ok_or_else(|| format_error(path, "not a readable Parquet file: row counts overflow".into()))?;
    // Before the plans are known: every column of a numeric type counts
    // (one kept as text counts too, so this errs on the safe side).
    check_fits(path, total, numeric.iter().filter(|&&n| n).count())?;
    let ranges = split_groups(group_rows, crate::parallel::threads());
    let starts: Vec<usize> = ranges.iter().map(|r| group_rows[..r.start].iter().sum()).collect();
    // Zeroed lazily by the allocator: no page is touched before its rows
    // are decoded (a footer claiming more rows than the data holds costs
    // nothing before the error; the reader never writes the buffer of a
    // column of a numeric type kept as text).
    let mut values: Vec<Option<Vec<f32>>> = numeric.iter().map(|&n| n.then(|| vec![0.0f32; total])).collect();
    let slots = cut_slices(&mut values, &ranges, group_rows);
    let results: Vec<Mutex<Option<Result<Part>>>> = ranges.iter().map(|_| Mutex::new(None)).collect();
    let shared = Handoff::new();
    crate::parallel::run(ranges.len(), &|i| {
        // Part 0 chooses the plans; it settles them on every path out.
        let publisher = (i == 0).then(|| shared.publisher());
        let mut out = slots[i].lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
        let stated = group_rows[ranges[i].clone()].iter().sum();
        let range = Span {
            groups: ranges[i].clone(),
            start: starts[i],
            stated,
            total,
        };
        // Contained on this thread too: a decoder's panic in a worker
        // becomes this range's error, silently (the hook of
        // `contain` is silent only on a thread inside it).
        let part = super::columnar::guarded(path, "Parquet", || {
            read_range(path, wanted, (&shared, publisher.as_ref()), range, &mut out)
        });
        if let Ok(mut slot) = results[i].lock() {
            *slot = Some(part);
        }
    });
    drop(slots);
    // Every range read the plans, so a missing one means an error below.
    let plans = shared.wait().unwrap_or_default();
    let plans = plans.as_slice();
    let mut text = text_builders(plans);
    let mut bad = vec![false; plans.len()];
    for result in results {
        let part = result.into_inner().ok().flatten();
        let part = part.ok_or_else(|| format_error(path, "a Parquet reader thread failed".into()))??;
        for (j, t) in part.text.into_iter().enumerate() {
            if let (Some(all), Some(t)) = (&mut text[j], t) {
                all.append(t);
            }
        }
        bad.iter_mut().zip(&part.bad).for_each(|(b, p)| *b |= p);
    }
    let cols = plans
        .iter()
        .zip(values)
        .zip(text)
        .zip(bad)
        .map(|(((plan, values), text), bad)| match (plan, values, text) {
            (Plan::Num(shift), Some(values), _) => (!bad).then_some(Column::Num { shift: *shift, values }),
            (_, _, Some(t)) => Some(t.finish()),
            _ => None,
        })
        .collect();
    Ok((cols, total))
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

/// An empty dictionary for each text column of `plans` (`None` for
/// numeric ones).
fn text_builders(plans: &[Plan]) -> Vec<Option<TextBuilder>> {
    plans
        .iter()
        .map(|p| (!matches!(p, Plan::Num(_))).then(TextBuilder::default))
        .collect()
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

/// Each range's rows of each numeric column (`[range][column]`, empty for
/// text columns), handed out once to the thread that reads it.
fn cut_slices<'a>(
    values: &'a mut [Option<Vec<f32>>],
    ranges: &[Range<usize>],
    group_rows: &[usize],
) -> Vec<Mutex<Vec<&'a mut [f32]>>> {
    let mut slots: Vec<Vec<&'a mut [f32]>> = ranges.iter().map(|_| Vec::new()).collect();
    for column in values.iter_mut() {
        let mut rest: &'a mut [f32] = column.as_mut().map_or(&mut [], |v| v.as_mut_slice());
        for (slot, range) in slots.iter_mut().zip(ranges) {
            let rows = group_rows[range.clone()].iter().sum::<usize>().min(rest.len());
            let (mine, after) = std::mem::take(&mut rest).split_at_mut(rows);
            slot.push(mine);
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

/// The plans' handoff, and its publisher for the range that chooses them.
type PlanSource<'a, 'b> = (&'a Handoff<Vec<Plan>>, Option<&'a Publisher<'b, Vec<Plan>>>);

/// Reads one range of row groups into `out` (its rows of each column of a
/// numeric type, empty for the others). The first range (the one given
/// the publisher) chooses the plans from its first batch when that holds
/// the file's first [`SAMPLE`] rows (else from a reader of their own) and
/// publishes them; the others decode their first batch, then wait for them.
fn read_range(
    path: &Path,
    wanted: &[usize],
    (shared, publisher): PlanSource<'_, '_>,
    range: Span,
    out: &mut [&mut [f32]],
) -> Result<Part> {
    let Span {
        groups,
        start,
        stated,
        total,
    } = range;
    let mut batches = reader(path, wanted, Some(groups.collect()), BATCH)?;
    let at_row = |at: usize| move |e| format_error(path, format!("after row {}: {e}", start + at));
    let head = batches.next().transpose().map_err(at_row(0))?;
    let plans = match (publisher, &head) {
        (Some(p), Some(b)) if b.num_rows() >= SAMPLE.min(total) => {
            let chosen: Vec<Plan> = b.columns().iter().map(|a| plan_of(a.as_ref())).collect();
            p.publish(chosen.clone());
            chosen
        }
        (Some(p), _) => {
            let chosen = plans(path, wanted)?;
            p.publish(chosen.clone());
            chosen
        }
        (None, _) => shared
            .wait()
            .ok_or_else(|| format_error(path, "a Parquet reader thread failed".into()))?,
    };
    let mut part = Part {
        text: text_builders(&plans),
        bad: vec![false; plans.len()],
    };
    let mut at = 0usize;
    let mut next = head;
    while let Some(batch) = next {
        if at + batch.num_rows() > stated {
            break;
        }
        put_batch(&batch, &plans, at, out, &mut part);
        at += batch.num_rows();
        next = batches.next().transpose().map_err(at_row(at))?;
    }
    if at != stated {
        return Err(format_error(
            path,
            format!(
                "not a readable Parquet file: the row groups from row {start} do not hold the {stated} rows their metadata says"
            ),
        ));
    }
    Ok(part)
}

/// Puts one record batch at row `at` of the range's columns.
fn put_batch(batch: &RecordBatch, plans: &[Plan], at: usize, out: &mut [&mut [f32]], part: &mut Part) {
    let rows = batch.num_rows();
    for (j, (array, plan)) in batch.columns().iter().zip(plans).enumerate() {
        match plan {
            Plan::Num(shift) => match put_numbers(array.as_ref(), *shift, &mut out[j][at..at + rows]) {
                Some(b) => part.bad[j] |= b,
                None => part.bad[j] = true,
            },
            _ => {
                if let Some(t) = &mut part.text[j] {
                    push_cells(t, array.as_ref());
                }
            }
        }
    }
}
