//! Parquet and Arrow IPC files read into a [`Table`] (feature `columnar`),
//! through the arrow-rs crates: only the columns asked for, row group by
//! row group, numbers straight into the typed columns.
//!
//! Types: floats and integers are numbers (null and NaN are missing;
//! chosen as for CSV: a column with at most [`super::FEW_VALUES`] distinct values
//! in its first [`SAMPLE`] rows is kept as text, its values written as Rust
//! prints them; a column holding an infinite value or one beyond 1e30 is
//! read again as text, so that preprocessing names the cell); booleans are
//! the text `true`/`false`; strings (plain, large, view or dictionary
//! encoded) are text, trimmed as CSV cells are; any other type is an error
//! naming the column. Errors name the file, and the column or row where
//! known ("row N" counts data rows from 1).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema};

use super::build::{Plan, TextBuilder, number_text};
use super::{ABSURD, Column, SAMPLE, Table};
use crate::data::csv::{Shifts, header_names};
use crate::error::{Error, Result};

pub(super) fn format_error(path: &Path, reason: String) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads the Parquet file at `path`; `columns` (when given) names the
/// columns wanted, others are never decoded (a name the file lacks is
/// skipped: preprocessing reports it).
pub fn read_parquet(path: &Path, columns: Option<&[String]>, shifts: &Shifts) -> Result<Table> {
    guarded(path, "Parquet", || {
        let (names, read_all) = super::parquet_read::read_columns(path, columns, shifts)?;
        let mut table = finish_table(
            path,
            &names,
            read_all,
            &|columns| parquet_batches(path, columns, None),
            0,
        )?;
        if columns.is_some_and(|c| c.iter().any(|n| !names.contains(n))) {
            // A wanted column the file lacks: its error lists the file's.
            table.file_columns = super::parquet_read::column_names(path)?;
        }
        Ok(table)
    })
}

/// `read()`, with a panic of the decoder (a damaged file, see
/// [`super::contain`]) as an error naming the file.
pub(super) fn guarded<T>(path: &Path, kind: &str, read: impl FnOnce() -> Result<T>) -> Result<T> {
    super::contain::contain(read).unwrap_or_else(|message| {
        Err(format_error(
            path,
            format!("not a readable {kind} file: damaged data ({message})"),
        ))
    })
}

/// Row group `group` of the Parquet file at `path` (rows counted from
/// `row_base` in errors), every column.
pub(super) fn read_parquet_group(path: &Path, group: usize, row_base: usize, shifts: &Shifts) -> Result<Table> {
    let mut t = guarded(path, "Parquet", || {
        table_from_batches(path, None, shifts, row_base, |columns| {
            parquet_batches(path, columns, Some(group))
        })
    })?;
    t.row_base = row_base;
    Ok(t)
}

/// The columns and the rows of each row group of the Parquet file at `path`.
pub(super) fn parquet_groups(path: &Path) -> Result<(Vec<String>, Vec<usize>)> {
    guarded(path, "Parquet", || parquet_groups_unguarded(path))
}

/// The column names of the Parquet file at `path`, or `None` when it does
/// not read as one (its footer and schema only; guarded like the readers).
pub fn parquet_columns(path: &Path) -> Option<Vec<String>> {
    parquet_groups(path).ok().map(|(columns, _)| columns)
}

fn parquet_groups_unguarded(path: &Path) -> Result<(Vec<String>, Vec<usize>)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: parquet::errors::ParquetError| format_error(path, format!("not a readable Parquet file: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(parquet_file(path)?).map_err(bad)?;
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let columns = header_names(&names).map_err(|r| format_error(path, format!("schema: {r}")))?;
    let meta = builder.metadata();
    let rows = (0..meta.num_row_groups())
        .map(|g| usize::try_from(meta.row_group(g).num_rows()).unwrap_or(0))
        .collect();
    Ok((columns, rows))
}

/// The record batches of `columns` (all without) of a Parquet file, of one
/// row group or all.
pub(super) fn parquet_batches(
    path: &Path,
    columns: Option<&[String]>,
    group: Option<usize>,
) -> Result<(Schema, Batches)> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: parquet::errors::ParquetError| format_error(path, format!("not a readable Parquet file: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(parquet_file(path)?).map_err(bad)?;
    let schema = builder.schema().clone();
    let wanted = wanted_indices(&schema, columns);
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let mut builder = builder.with_projection(mask).with_batch_size(64 * 1024);
    if let Some(g) = group {
        builder = builder.with_row_groups(vec![g]);
    }
    let reader = builder.build().map_err(bad)?;
    let fields: Vec<_> = wanted.iter().map(|&i| schema.field(i).clone()).collect();
    Ok((Schema::new(fields), Box::new(reader) as Batches))
}

/// Reads the Arrow IPC file (`.arrow`, Feather v2) at `path`, as
/// [`read_parquet`].
pub fn read_ipc(path: &Path, columns: Option<&[String]>, shifts: &Shifts) -> Result<Table> {
    guarded(path, "Arrow IPC", || {
        super::ipc_check::check_compressed_lengths(path)
            .map_err(|r| format_error(path, format!("not a readable Arrow IPC file: damaged data ({r})")))?;
        read_ipc_unguarded(path, columns, shifts)
    })
}

fn read_ipc_unguarded(path: &Path, columns: Option<&[String]>, shifts: &Shifts) -> Result<Table> {
    // The first pass reports its progress; a second one (columns read
    // again as text) does not.
    let first = std::cell::Cell::new(true);
    table_from_batches(path, columns, shifts, 0, |columns| {
        use arrow_ipc::reader::FileReader;
        let bad = |e: ArrowError| format_error(path, format!("not a readable Arrow IPC file: {e}"));
        let schema = FileReader::try_new(open(path)?, None).map_err(bad)?.schema();
        let wanted = wanted_indices(&schema, columns);
        let reader = FileReader::try_new(open(path)?, Some(wanted.clone())).map_err(bad)?;
        let fields: Vec<_> = wanted.iter().map(|&i| schema.field(i).clone()).collect();
        let count = reader.num_batches();
        let batches: Batches = match first.replace(false) {
            true => Box::new(super::ipc_progress::Reporting::new(path, Box::new(reader), count)),
            false => Box::new(reader),
        };
        Ok((Schema::new(fields), batches))
    })
}

/// The columns and the rows of each record batch of the Arrow IPC file at
/// `path`, for reading it batch by batch ([`read_ipc_batch`]): the rows
/// from each batch's metadata, without reading the batches' data.
pub(super) fn ipc_batches(path: &Path) -> Result<(Vec<String>, Vec<usize>)> {
    guarded(path, "Arrow IPC", || {
        use arrow_ipc::reader::FileReader;
        let damaged = |r: String| format_error(path, format!("not a readable Arrow IPC file: damaged data ({r})"));
        let rows = super::ipc_check::batch_rows(path).map_err(damaged)?;
        let bad = |e: ArrowError| format_error(path, format!("not a readable Arrow IPC file: {e}"));
        let reader = FileReader::try_new(open(path)?, None).map_err(bad)?;
        let names: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
        let columns = header_names(&names).map_err(|r| format_error(path, format!("schema: {r}")))?;
        Ok((columns, rows))
    })
}

/// Record batch `batch` of the Arrow IPC file at `path` as a table whose
/// rows are numbered from `row_base` in errors (its buffers' lengths checked
/// first, as [`read_ipc`] checks every batch's).
pub(super) fn read_ipc_batch(path: &Path, batch: usize, row_base: usize, shifts: &Shifts) -> Result<Table> {
    let mut t = guarded(path, "Arrow IPC", || {
        table_from_batches(path, None, shifts, row_base, |_| {
            use arrow_ipc::reader::FileReader;
            super::ipc_check::check_batch(path, batch)
                .map_err(|r| format_error(path, format!("not a readable Arrow IPC file: damaged data ({r})")))?;
            let bad = |e: ArrowError| format_error(path, format!("not a readable Arrow IPC file: {e}"));
            let mut reader = FileReader::try_new(open(path)?, None).map_err(bad)?;
            let schema = reader.schema().as_ref().clone();
            reader.set_index(batch).map_err(bad)?;
            let one = reader.next();
            Ok((schema, Box::new(one.into_iter()) as Batches))
        })
    })?;
    t.row_base = row_base;
    Ok(t)
}

/// Record batches as a reader yields them.
pub(super) type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>>;

/// The Parquet file at `path`, read through [`super::parquet_file`].
pub(super) fn parquet_file(path: &Path) -> Result<super::parquet_file::ParquetFile> {
    super::parquet_file::ParquetFile::new(open(path)?).map_err(|e| format_error(path, format!("cannot read: {e}")))
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Indices of the schema's fields named in `columns` (all without).
pub(super) fn wanted_indices(schema: &Schema, columns: Option<&[String]>) -> Vec<usize> {
    match columns {
        None => (0..schema.fields().len()).collect(),
        Some(names) => {
            let set: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
            (0..schema.fields().len())
                .filter(|&i| set.contains(schema.field(i).name().as_str()))
                .collect()
        }
    }
}

/// A column being read from record batches.
enum Acc {
    /// Not decided yet (no batch seen).
    Start,
    Num {
        shift: f64,
        values: Vec<f32>,
        bad: bool,
    },
    Text(TextBuilder),
}

/// The table of the batches `read(columns)` yields; columns of numbers
/// that preprocessing must report on (infinite, beyond 1e30) are read a
/// second time, as text. Errors count rows from `row_base` (the first row
/// of a row group or record batch read alone, in the whole file).
fn table_from_batches(
    path: &Path,
    columns: Option<&[String]>,
    shifts: &Shifts,
    row_base: usize,
    read: impl Fn(Option<&[String]>) -> Result<(Schema, Batches)>,
) -> Result<Table> {
    let (schema, batches) = read(columns)?;
    let names = checked_names(path, &schema)?;
    let given = given_shifts(&names, shifts);
    let read_all = columns_of(path, batches, &given, (false, row_base));
    finish_table(path, &names, read_all, &read, row_base)
}

/// The names of the schema's fields, after checking that each has a type
/// bpnet reads ([`readable`]).
pub(super) fn checked_names(path: &Path, schema: &Schema) -> Result<Vec<String>> {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let columns = header_names(&names).map_err(|r| format_error(path, format!("schema: {r}")))?;
    for (f, name) in schema.fields().iter().zip(&columns) {
        if !readable(f.data_type()) {
            return Err(format_error(
                path,
                format!(
                    "column '{name}' has type {}, which bpnet cannot read (numbers, booleans and strings only)",
                    f.data_type()
                ),
            ));
        }
    }
    Ok(names)
}

/// The table of the columns read (`None` for a numeric column to read
/// again as text, with `read`), or, after an error, the same error naming
/// the first column that fails alone (rows counted from `row_base`).
pub(super) fn finish_table(
    path: &Path,
    names: &[String],
    read_all: Result<(Vec<Option<Column>>, usize)>,
    read: &impl Fn(Option<&[String]>) -> Result<(Schema, Batches)>,
    row_base: usize,
) -> Result<Table> {
    let columns = header_names(names).map_err(|r| format_error(path, format!("schema: {r}")))?;
    let (mut cols, rows) = match read_all {
        Ok(read_all) => read_all,
        Err(e) => return Err(name_the_column(path, names, read, row_base).unwrap_or(e)),
    };
    // No column holds the rows a (damaged) file claims: a fuzzed Arrow
    // file claimed 562,949,953,421,512 rows without a column, and the list
    // of its rows aborted the process. A table without columns has none.
    let rows = if cols.is_empty() { 0 } else { rows };
    let bad: Vec<String> = (0..cols.len())
        .filter(|&j| cols[j].is_none())
        .map(|j| names[j].clone())
        .collect();
    if !bad.is_empty() {
        let (_, again) = read(Some(&bad))?;
        let (text, _) = columns_of(path, again, &vec![None; bad.len()], (true, row_base))?;
        let mut text = text.into_iter();
        for c in cols.iter_mut().filter(|c| c.is_none()) {
            *c = text.next().flatten();
        }
    }
    Ok(Table {
        path: path.to_path_buf(),
        columns,
        has_header: true,
        cols: cols.into_iter().map(|c| c.unwrap_or_else(empty_text)).collect(),
        rows,
        breaks: Vec::new(),
        columnar: true,
        row_base: 0,
        file_columns: Vec::new(),
    })
}

/// A text column without rows.
fn empty_text() -> Column {
    Column::Text {
        dict: Vec::new(),
        codes: Vec::new(),
    }
}

/// After a failed read: the same error for the first column that fails
/// alone, with its name (a decoding error does not say which column).
fn name_the_column(
    path: &Path,
    names: &[String],
    read: &impl Fn(Option<&[String]>) -> Result<(Schema, Batches)>,
    row_base: usize,
) -> Option<Error> {
    for name in names {
        let one = [name.clone()];
        let Ok((_, batches)) = read(Some(&one)) else {
            continue;
        };
        let mut rows = row_base;
        for batch in batches {
            match batch {
                Ok(b) => rows += b.num_rows(),
                Err(e) => {
                    return Some(format_error(path, format!("column '{name}', after row {rows}: {e}")));
                }
            }
        }
    }
    None
}

/// The `n` columns of `batches` (all as text with `text`), and the row
/// count; `None` for a numeric column holding a value beyond 1e30. Errors
/// count rows from `row_base`.
fn columns_of(
    path: &Path,
    batches: Batches,
    given: &[Given],
    (text, row_base): (bool, usize),
) -> Result<(Vec<Option<Column>>, usize)> {
    let mut accs: Vec<Acc> = (0..given.len())
        .map(|_| {
            if text {
                Acc::Text(TextBuilder::default())
            } else {
                Acc::Start
            }
        })
        .collect();
    let mut rows = 0usize;
    for batch in batches {
        let batch = batch.map_err(|e| format_error(path, format!("after row {}: {e}", row_base + rows)))?;
        for ((acc, array), given) in accs.iter_mut().zip(batch.columns()).zip(given) {
            append(acc, array, *given);
        }
        rows += batch.num_rows();
    }
    let cols = accs
        .into_iter()
        .map(|acc| match acc {
            Acc::Start => Some(empty_text()),
            Acc::Num {
                shift,
                values,
                bad: false,
            } => Some(Column::Num { shift, values }),
            Acc::Num { bad: true, .. } => None,
            Acc::Text(t) => Some(t.finish()),
        })
        .collect();
    Ok((cols, rows))
}

/// Types read as numbers or text.
fn readable(t: &DataType) -> bool {
    use DataType::*;
    match t {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float32 | Float64 | Utf8
        | LargeUtf8 | Utf8View => true,
        Dictionary(_, v) => matches!(**v, Utf8 | LargeUtf8 | Utf8View),
        _ => false,
    }
}

/// `$m!(T)` for each Arrow numeric type read as numbers (the one list of
/// them, for [`numbers`] and [`put_numbers`]).
macro_rules! numeric_types {
    ($m:ident) => {
        $m!(Float64Type);
        $m!(Float32Type);
        $m!(Int64Type);
        $m!(Int32Type);
        $m!(Int16Type);
        $m!(Int8Type);
        $m!(UInt64Type);
        $m!(UInt32Type);
        $m!(UInt16Type);
        $m!(UInt8Type);
    };
}

/// Whether arrays of type `t` are numeric ([`numbers`] and
/// [`put_numbers`] read them).
pub(super) fn is_numeric_type(t: &DataType) -> bool {
    macro_rules! same {
        ($t:ty) => {
            if *t == <$t as arrow_array::ArrowPrimitiveType>::DATA_TYPE {
                return true;
            }
        };
    }
    numeric_types!(same);
    false
}

/// The numbers of a numeric array (NaN where null), `None` for other types.
fn numbers(a: &dyn Array) -> Option<Vec<f64>> {
    macro_rules! prim {
        ($t:ty) => {
            if let Some(p) = a.as_primitive_opt::<$t>() {
                return Some(
                    (0..p.len())
                        .map(|i| if p.is_null(i) { f64::NAN } else { p.value(i) as f64 })
                        .collect(),
                );
            }
        };
    }
    numeric_types!(prim);
    None
}

/// Appends one batch's array to a column.
fn append(acc: &mut Acc, array: &ArrayRef, given: Given) {
    if let Acc::Start = acc {
        *acc = match plan_of(array.as_ref(), given) {
            Plan::Num(shift) => Acc::Num {
                shift,
                values: Vec::new(),
                bad: false,
            },
            _ => Acc::Text(TextBuilder::default()),
        };
    }
    match acc {
        Acc::Num { shift, values, bad } => {
            let old = values.len();
            values.resize(old + array.len(), 0.0);
            match put_numbers(array.as_ref(), *shift, &mut values[old..]) {
                Some(b) => *bad |= b,
                None => *bad = true,
            }
        }
        Acc::Text(t) => push_cells(t, array.as_ref()),
        Acc::Start => {}
    }
}

/// What a file read against a model is given for one column (see
/// [`Shifts`]): `Some(Some(shift))`, `Some(None)` for text, `None` when the
/// column's own first values decide.
pub(super) type Given = Option<Option<f64>>;

/// What `shifts` gives for each of the columns `names`.
pub(super) fn given_shifts(names: &[String], shifts: &Shifts) -> Vec<Given> {
    names.iter().map(|n| shifts.get(n)).collect()
}

/// How to keep a column whose first values are `first` (as for CSV,
/// [`super::build::sample_kind`] on its first [`SAMPLE`] cells): numbers
/// as offsets from a shift, or text.
pub(super) fn plan_of(first: &dyn Array, given: Given) -> Plan {
    let Some(v) = numbers(&first.slice(0, first.len().min(SAMPLE))) else {
        return Plan::Text;
    };
    match given {
        // Values beyond 1e30 or infinite are found while reading (the
        // column is then read again as text, as with the sample's shift).
        Some(Some(shift)) => return Plan::Num(shift),
        Some(None) => return Plan::Text,
        None => {}
    }
    let texts: Vec<String> = v.iter().map(|&x| number_text(x)).collect();
    match super::build::sample_kind(texts.iter().map(String::as_str)) {
        Some(shift) => Plan::Num(shift),
        None => Plan::Text,
    }
}

/// Appends the cells of any readable array as text: numbers as Rust
/// prints them (each distinct value formatted once).
pub(super) fn push_cells(t: &mut TextBuilder, a: &dyn Array) {
    match numbers(a) {
        Some(v) => v.iter().for_each(|&x| t.push_number(x)),
        None => push_texts(t, a),
    }
}

/// Writes the numbers of a numeric array less `shift`, as `f32`, into
/// `out` (`[a.len()]`; NaN where null), without an `f64` copy. Returns
/// whether one is infinite or beyond 1e30 (the column must be read as
/// text), `None` for an array of another type.
pub(super) fn put_numbers(a: &dyn Array, shift: f64, out: &mut [f32]) -> Option<bool> {
    macro_rules! prim {
        ($t:ty) => {
            if let Some(p) = a.as_primitive_opt::<$t>() {
                let values = p.values();
                let mut bad = false;
                for (o, &x) in out.iter_mut().zip(values.iter()) {
                    let x = x as f64;
                    bad |= x.abs() > ABSURD;
                    *o = (x - shift) as f32;
                }
                if let Some(nulls) = p.nulls().filter(|n| n.null_count() > 0) {
                    // A null slot's value is arbitrary: NaN in its place,
                    // and only valid values decide `bad`.
                    for (o, valid) in out.iter_mut().zip(nulls.iter()) {
                        if !valid {
                            *o = f32::NAN;
                        }
                    }
                    bad = bad && (0..p.len()).any(|i| p.is_valid(i) && (values[i] as f64).abs() > ABSURD);
                }
                return Some(bad);
            }
        };
    }
    numeric_types!(prim);
    None
}

/// Appends the cells of a boolean or string array as text.
fn push_texts(t: &mut TextBuilder, a: &dyn Array) {
    let null = |i: usize| a.is_null(i);
    if let Some(b) = a.as_boolean_opt() {
        (0..b.len()).for_each(|i| {
            t.push(if null(i) {
                ""
            } else if b.value(i) {
                "true"
            } else {
                "false"
            })
        });
    } else if let Some(s) = a.as_string_opt::<i32>() {
        (0..s.len()).for_each(|i| t.push(if null(i) { "" } else { s.value(i).trim() }));
    } else if let Some(s) = a.as_string_opt::<i64>() {
        (0..s.len()).for_each(|i| t.push(if null(i) { "" } else { s.value(i).trim() }));
    } else if let Some(s) = a.as_string_view_opt() {
        (0..s.len()).for_each(|i| t.push(if null(i) { "" } else { s.value(i).trim() }));
    } else if let Some(d) = a.as_any_dictionary_opt() {
        let keys = d.normalized_keys();
        let mut values = TextBuilder::default();
        push_texts(&mut values, d.values().as_ref());
        if let Column::Text { dict, codes } = values.finish() {
            for (i, &k) in keys.iter().enumerate() {
                let cell = if null(i) {
                    ""
                } else {
                    codes.get(k).map_or("", |&c| dict[c as usize].as_str())
                };
                t.push(cell);
            }
        }
    } else {
        (0..a.len()).for_each(|_| t.push(""));
    }
}

/// Writes `table_csv` (a header line and rows, as `bpnet predict` prints
/// them) as Parquet: a column whose every cell is a number is `Float64`,
/// any other `Utf8`. Returns the file's bytes.
pub fn csv_to_parquet(table_csv: &str, path: &Path) -> Result<Vec<u8>> {
    use arrow_array::{Float64Array, StringArray};
    let raw = crate::data::parse_csv(
        table_csv.as_bytes(),
        path,
        &crate::data::CsvOptions {
            header: Some(true),
            delimiter: b',',
            ..Default::default()
        },
    )?;
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (c, name) in raw.columns.iter().enumerate() {
        let cells: Vec<&str> = raw.rows.iter().map(|r| r[c].as_str()).collect();
        let parsed: Option<Vec<f64>> = cells.iter().map(|s| s.parse::<f64>().ok()).collect();
        match parsed {
            Some(v) => {
                fields.push(arrow_schema::Field::new(name, DataType::Float64, false));
                arrays.push(Arc::new(Float64Array::from(v)));
            }
            None => {
                fields.push(arrow_schema::Field::new(name, DataType::Utf8, false));
                arrays.push(Arc::new(StringArray::from(cells)));
            }
        }
    }
    let bad = |e: String| format_error(path, format!("writing Parquet: {e}"));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).map_err(|e| bad(e.to_string()))?;
    w.write(&batch).map_err(|e| bad(e.to_string()))?;
    w.close().map_err(|e| bad(e.to_string()))?;
    Ok(out)
}
