//! Typed tables: the columns of a CSV file held compactly, as the
//! preprocessing works on them.
//!
//! A numeric column is `f32` values stored as offsets from a per-column
//! `shift` (an integer near the column's mean, from the first
//! [`SAMPLE`] rows), so integers stay exact and a decimal keeps 24 bits
//! relative to its distance from the shift: `value = shift + offset`, NaN
//! for a missing cell. Every other column is text, dictionary encoded: a
//! `u32` code per row into its distinct trimmed strings. Memory is 4 bytes a
//! cell plus the distinct strings, where a [`RawTable`] holds a `String` per
//! cell.
//!
//! [`read_table`] reads a CSV file straight into this form (`read.rs`: a
//! bounded buffer, the work split over the threads of
//! [`crate::parallel`]); [`Table::from_raw`] converts a [`RawTable`]. Both
//! give the same table for the same file: columns, types, values, lines.

pub(crate) mod build;
mod chunks;
#[cfg(feature = "columnar")]
mod columnar;
#[cfg(feature = "columnar")]
mod contain;
mod csv_chunks;
mod groups;
#[cfg(feature = "columnar")]
mod ipc_check;
#[cfg(feature = "columnar")]
mod ipc_progress;
#[cfg(feature = "columnar")]
mod parquet_file;
#[cfg(feature = "columnar")]
mod parquet_out;
#[cfg(feature = "columnar")]
mod parquet_read;
mod read;
mod scan;

use std::borrow::Cow;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::csv::{CsvOptions, RawTable, is_missing, quoted_list};
use super::names::{ColumnIndex, probe};
use crate::error::Error;

pub use chunks::{CHUNK, Chunk, ChunkReader, Span};
#[cfg(feature = "columnar")]
pub use columnar::{csv_to_parquet, parquet_columns, read_ipc, read_parquet};
pub(crate) use groups::CellGroups;
#[cfg(feature = "columnar")]
pub use parquet_out::{PredictionParquet, ROW_GROUP, predictions_to_parquet};
pub use read::{BLOCK, ProgressHook, ReadProgress, read_table, read_table_tuned, reader_counts, set_read_progress};
pub(crate) use scan::unclosed_quote;

/// A data file's format, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma (or other delimiter) separated text: any other extension.
    Csv,
    /// Apache Parquet: `.parquet`, `.pq`.
    Parquet,
    /// Arrow IPC file (Feather v2): `.arrow`, `.feather`, `.ipc`.
    Ipc,
}

impl Format {
    /// The format of `path`, by its extension (case-insensitive).
    pub fn of(path: &Path) -> Format {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("parquet" | "pq") => Format::Parquet,
            Some("arrow" | "feather" | "ipc") => Format::Ipc,
            _ => Format::Csv,
        }
    }
}

/// Reads a data file in the format of its extension ([`Format::of`]):
/// CSV through [`read_table`] with `opts`; Parquet and Arrow IPC (feature
/// `columnar`) reading only `columns` when given.
pub fn read_data(path: &Path, opts: &CsvOptions, columns: Option<&[String]>) -> crate::Result<Table> {
    crate::io::check_regular(path)?;
    match Format::of(path) {
        Format::Csv => read_table(path, opts),
        #[cfg(feature = "columnar")]
        Format::Parquet => read_parquet(path, columns, &opts.shifts).and_then(|t| some_column(t, columns)),
        #[cfg(feature = "columnar")]
        Format::Ipc => read_ipc(path, columns, &opts.shifts).and_then(|t| some_column(t, columns)),
        #[cfg(not(feature = "columnar"))]
        _ => {
            let _ = columns;
            Err(Error::Format {
                path: path.to_path_buf(),
                reason: "a Parquet or Arrow file, but this bpnet was built without the 'columnar' feature".into(),
            })
        }
    }
}

/// `table`, read whole (`columns` `None`), unless it has no column: a
/// Parquet or Arrow schema may have no fields, and nothing can be trained
/// on, evaluated or predicted from such a file. (Read for some columns, a
/// table without them is kept: preprocessing names the missing column.)
/// A table of no rows is refused too, as a CSV of a header alone is (an
/// `eval` of one reported an MSE of 0 over 0 rows, exit 0).
#[cfg(feature = "columnar")]
fn some_column(table: Table, columns: Option<&[String]>) -> crate::Result<Table> {
    if columns.is_none() && table.n_cols() == 0 {
        return Err(table.error("the file has no columns".to_string()));
    }
    // (A table read for absent columns alone has none and no rows:
    // preprocessing names the missing column.)
    match table.n_cols() > 0 && table.is_empty() {
        true => Err(table.error(no_rows(&table.columns))),
        false => Ok(table),
    }
}

/// Why a Parquet or Arrow file of `columns` and no rows is refused.
#[cfg(feature = "columnar")]
pub(crate) fn no_rows(columns: &[String]) -> String {
    let shown: Vec<&str> = columns.iter().take(8).map(String::as_str).collect();
    let more = if columns.len() > 8 { ", ..." } else { "" };
    format!("a schema ({}{more}) and no data rows", shown.join(", "))
}

/// Rows after the first record from which column types and shifts are
/// chosen.
pub const SAMPLE: usize = 1000;

/// A column with at most this many distinct values in the sample, each seen
/// twice on average, is kept as text even when numeric (class labels keep
/// their spelling).
pub const FEW_VALUES: usize = 64;

/// Largest magnitude accepted in a numeric cell (beyond it, the cell is an
/// error when used; the column is then kept as text).
pub(crate) const ABSURD: f64 = 1e30;

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers: `shift + values[r]`, NaN where the cell is missing.
    Num {
        /// Added to every value.
        shift: f64,
        /// Offsets from `shift`, `[rows]`.
        values: Vec<f32>,
    },
    /// Text, dictionary encoded: the cell of row `r` is `dict[codes[r]]`.
    Text {
        /// Distinct trimmed cell texts, in order of first appearance.
        dict: Vec<String>,
        /// `[rows]` indices into `dict`.
        codes: Vec<u32>,
    },
}

/// A cell of a [`Table`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// A missing token in a numeric column.
    Missing,
    /// A number of a numeric column.
    Num(f64),
    /// The text of a text column (which may be a missing token or a number).
    Text(&'a str),
}

/// A table of typed columns with the 1-based file line of every row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// The file it was read from (named in every error).
    pub path: PathBuf,
    /// Column names: from the header, or `col0`, `col1`, ... without one.
    pub columns: Vec<String>,
    /// Whether the first line of the file was a header.
    pub has_header: bool,
    /// The columns, `[n_cols]`, each with `len()` rows.
    pub cols: Vec<Column>,
    rows: usize,
    /// `(row, line)` where the line of a row stops being the previous
    /// row's plus one (blank lines, quoted line ends), ascending by row.
    breaks: Vec<(usize, u64)>,
    /// Read from a Parquet or Arrow file: errors name rows, not lines.
    columnar: bool,
    /// Rows of the file before this table's first (a chunk of a Parquet
    /// file: errors name the row in the file).
    row_base: usize,
    /// Every column of the file when only some were read (a Parquet file's
    /// projection); empty when `columns` are all. Errors about a missing
    /// column list these (they listed nothing).
    pub(crate) file_columns: Vec<String>,
}

/// Anything preprocessing reads: a [`Table`], or a [`RawTable`] converted.
pub trait AsTable {
    /// The typed table (borrowed, or converted).
    fn as_table(&self) -> Cow<'_, Table>;
}

impl AsTable for Table {
    fn as_table(&self) -> Cow<'_, Table> {
        Cow::Borrowed(self)
    }
}

impl AsTable for RawTable {
    fn as_table(&self) -> Cow<'_, Table> {
        Cow::Owned(Table::from_raw(self))
    }
}

impl Table {
    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    /// The 1-based line of the file where data row `r` starts.
    pub fn line(&self, r: usize) -> u64 {
        let i = self.breaks.partition_point(|&(row, _)| row <= r);
        match i.checked_sub(1).and_then(|i| self.breaks.get(i)) {
            Some(&(row, line)) => line + (r - row) as u64,
            None => r as u64 + 1,
        }
    }

    /// Cell `(r, c)`.
    pub fn cell(&self, r: usize, c: usize) -> Cell<'_> {
        match &self.cols[c] {
            Column::Num { shift, values } => {
                let v = values[r];
                if v.is_nan() {
                    Cell::Missing
                } else {
                    Cell::Num(shift + f64::from(v))
                }
            }
            Column::Text { dict, codes } => Cell::Text(&dict[codes[r] as usize]),
        }
    }

    /// Index of the column called `name`, if any (a linear search).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        let found = self.columns.iter().position(|c| c == name);
        probe(found.map_or(self.columns.len(), |i| i + 1));
        found
    }

    /// The column names indexed in one pass.
    pub fn column_indices(&self) -> ColumnIndex<'_> {
        ColumnIndex::new(&self.columns)
    }

    /// Where data row `r` is, for errors: `line N` of a text file, `row N`
    /// (from 1) of a Parquet or Arrow file.
    pub(crate) fn place(&self, r: usize) -> String {
        match (self.columnar, r < self.rows) {
            (true, _) => format!("row {}", self.row_base + r + 1),
            (false, true) => format!("line {}", self.line(r)),
            (false, false) => "line 0".into(),
        }
    }

    /// True for a table read from a Parquet or Arrow file.
    pub fn is_columnar(&self) -> bool {
        self.columnar
    }

    /// The error `path: line N, column 'name': what` for data row `row`
    /// (`row N` for Parquet and Arrow files).
    pub(crate) fn cell_error(&self, row: usize, col: usize, what: impl Display) -> Error {
        let name = self.columns.get(col).map_or("?", String::as_str);
        self.error(format!("{}, column '{name}': {what}", self.place(row)))
    }

    /// A [`Error::Format`] about this table's file.
    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The column names quoted and joined (the first 20 and a count past 20).
    pub(crate) fn column_list(&self) -> String {
        const SHOWN: usize = 20;
        let all = match self.file_columns.is_empty() {
            true => &self.columns,
            false => &self.file_columns,
        };
        match all.len().checked_sub(SHOWN) {
            Some(more) if more > 0 => format!("{}, ... and {more} more", quoted_list(&all[..SHOWN])),
            _ => quoted_list(all),
        }
    }

    /// The same table typed: a column is numeric when every cell is a
    /// number or missing, at least one is a number, no number is infinite,
    /// NaN or beyond 1e30, and the sample rows are not class-like (at most
    /// [`FEW_VALUES`] distinct values, each seen twice on average); any other
    /// column is text.
    pub fn from_raw(raw: &RawTable) -> Table {
        Table::from_raw_shifted(raw, &crate::data::Shifts::default())
    }

    /// [`Table::from_raw`] with the shifts of `shifts` where it gives them
    /// (by column name; see [`crate::data::Shifts`]).
    pub fn from_raw_shifted(raw: &RawTable, shifts: &crate::data::Shifts) -> Table {
        // The sample: the rows after the file's first record.
        let skip = usize::from(!raw.has_header);
        let sample = skip..raw.len().min(SAMPLE + skip).max(skip);
        let cols = (0..raw.n_cols())
            .map(|c| {
                let cell = |r: usize| raw.rows[r][c].as_str();
                match build::column_shift(Some(&raw.columns[c]), sample.clone().map(cell), shifts) {
                    Some(shift) if (0..raw.len()).all(|r| build::clean_number(cell(r)).is_some()) => {
                        let values = (0..raw.len())
                            .map(|r| {
                                build::clean_number(cell(r))
                                    .flatten()
                                    .map_or(f32::NAN, |v| (v - shift) as f32)
                            })
                            .collect();
                        Column::Num { shift, values }
                    }
                    _ => {
                        let mut text = build::TextBuilder::default();
                        (0..raw.len()).for_each(|r| text.push(cell(r)));
                        text.finish()
                    }
                }
            })
            .collect();
        let mut breaks = Vec::new();
        for (r, &line) in raw.lines.iter().enumerate() {
            if r == 0 || raw.lines[r - 1] + 1 != line {
                breaks.push((r, line));
            }
        }
        Table {
            path: raw.path.clone(),
            columns: raw.columns.clone(),
            has_header: raw.has_header,
            cols,
            rows: raw.len(),
            breaks,
            columnar: false,
            row_base: 0,
            file_columns: Vec::new(),
        }
    }

    /// The text of cell `(r, c)`, e.g. a target cell to stratify a split
    /// by (a numeric column's value as Rust prints it, empty if missing).
    pub fn cell_text(&self, r: usize, c: usize) -> Cow<'_, str> {
        match self.cell(r, c) {
            Cell::Text(t) => Cow::Borrowed(t),
            Cell::Num(v) => Cow::Owned(v.to_string()),
            Cell::Missing => Cow::Borrowed(""),
        }
    }

    /// The same file, columns and header, with no rows (for errors about
    /// the file once its rows are gone).
    pub(crate) fn head_only(&self) -> Table {
        Table {
            path: self.path.clone(),
            columns: self.columns.clone(),
            has_header: self.has_header,
            columnar: self.columnar,
            ..Table::default()
        }
    }

    /// Drops rows `n..`: every column truncated and its memory handed back
    /// to the system ([`return_freed_memory`]). The lines of the rows kept
    /// still name them in errors.
    pub(crate) fn release_rows_from(&mut self, n: usize) {
        if n >= self.rows {
            return;
        }
        for col in &mut self.cols {
            match col {
                Column::Num { values, .. } => {
                    values.truncate(n);
                    values.shrink_to_fit();
                }
                Column::Text { codes, .. } => {
                    codes.truncate(n);
                    codes.shrink_to_fit();
                }
            }
        }
        self.rows = n;
        return_freed_memory();
    }

    /// [`Table::is_missing`] for column `c`, with each dictionary entry of
    /// a text column classified once: for loops over many rows.
    pub(crate) fn missing_test(&self, c: usize) -> MissingTest<'_> {
        match &self.cols[c] {
            Column::Num { values, .. } => MissingTest::Num(values),
            Column::Text { dict, codes } => MissingTest::Text {
                codes,
                missing: dict.iter().map(|t| is_missing(t)).collect(),
            },
        }
    }

    /// True when cell `(r, c)` is a missing token.
    pub(crate) fn is_missing(&self, r: usize, c: usize) -> bool {
        match self.cell(r, c) {
            Cell::Missing => true,
            Cell::Num(_) => false,
            Cell::Text(t) => is_missing(t),
        }
    }
}

/// Whether a cell of one column is missing, as [`Table::is_missing`] says
/// ([`Table::missing_test`]).
pub(crate) enum MissingTest<'a> {
    /// A numeric column: NaN is missing.
    Num(&'a [f32]),
    /// A text column: whether each dictionary entry is a missing token.
    Text { codes: &'a [u32], missing: Vec<bool> },
}

impl MissingTest<'_> {
    /// Whether the cell of row `r` is missing.
    pub(crate) fn at(&self, r: usize) -> bool {
        match self {
            MissingTest::Num(values) => values[r].is_nan(),
            MissingTest::Text { codes, missing } => missing[codes[r] as usize],
        }
    }
}

/// Asks the C allocator to hand the free pages it keeps back to the system.
/// glibc keeps memory freed amid its heaps resident (a column shrunk in
/// place frees its tail there), so released rows would still count in the
/// process's memory; elsewhere nothing is done.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers; it only walks the
    // allocator's own free lists, under the allocator's locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl crate::data::csv::Columns for Table {
    fn names(&self) -> &[String] {
        &self.columns
    }
    fn name_index(&self) -> ColumnIndex<'_> {
        self.column_indices()
    }
    fn find(&self, name: &str) -> Option<usize> {
        self.column_index(name)
    }
    fn table_error(&self, reason: String) -> Error {
        self.error(reason)
    }
    fn name_list(&self) -> String {
        self.column_list()
    }
}
