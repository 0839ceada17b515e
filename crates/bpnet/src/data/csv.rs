//! CSV files read into memory as a table of strings, with the 1-based line of
//! every row kept for error messages.
//!
//! Parsing goes through the `csv` crate: quoted fields may hold the delimiter,
//! quotes (`""`) and newlines; CRLF and LF line ends both work; a UTF-8 byte
//! order mark is skipped; blank lines are skipped; whitespace around fields is
//! trimmed. Every row must have as many fields as the first one.
//!
//! Errors are one line: `path: line N, column 'name': what is wrong`.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::table::unclosed_quote;
use ::csv::{ByteRecord, ReaderBuilder, Trim};
use serde::{Deserialize, Serialize};

use super::names::{ColumnIndex, first_duplicate, probe};
use crate::error::{Error, Result};

/// Cell texts that mean "no value", compared case-insensitively after
/// trimming: the empty cell, `NA`, `N/A`, `NaN` (signed too: `-nan`,
/// `+NaN`), `null` and `?`.
pub const MISSING_TOKENS: [&str; 8] = ["", "na", "n/a", "nan", "-nan", "+nan", "null", "?"];

/// True when `cell` is one of the [`MISSING_TOKENS`].
pub fn is_missing(cell: &str) -> bool {
    let t = cell.trim();
    MISSING_TOKENS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// True when `cell` is a number (anything `f64` parses, `inf` included) and
/// not a missing token.
pub fn is_number(cell: &str) -> bool {
    !is_missing(cell) && cell.trim().parse::<f64>().is_ok()
}

/// The byte of a `--delimiter` character: an ASCII character (one byte of
/// UTF-8; `§` or `é`, though below U+0100, are two bytes in a UTF-8 file).
pub fn delimiter_byte(c: char) -> Result<u8> {
    match u8::try_from(c) {
        // The quote and the line ends have their own meaning in a CSV (a
        // '"' delimiter ended in an unrelated error about the split).
        Ok(b'"' | b'\r' | b'\n') => Err(Error::config(
            "--delimiter",
            format!("{c:?} cannot separate fields: it quotes them or ends lines (use ',', ';', a tab, '|')"),
        )),
        Ok(b) if c.is_ascii() => Ok(b),
        _ => Err(Error::config(
            "--delimiter",
            format!("'{c}' is not an ASCII character (a field delimiter is one byte: ',', ';', a tab, '|')"),
        )),
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// `Some(true)`: the first row names the columns; `Some(false)`: it is
    /// data; `None`: detect it (see [`read_csv`]).
    pub header: Option<bool>,
    /// Field delimiter, e.g. `b','`, `b';'` or `b'\t'`.
    pub delimiter: u8,
    /// Shifts of numeric columns given in advance (see [`Shifts`]).
    pub shifts: Shifts,
}

impl Default for CsvOptions {
    /// Header detected, comma-separated, shifts from each file's sample.
    fn default() -> Self {
        CsvOptions {
            header: None,
            delimiter: b',',
            shifts: Shifts::default(),
        }
    }
}

/// Shifts of numeric columns by column name, given in advance. A typed
/// table stores a numeric cell as `f32` offset from its column's shift
/// (`crate::data::table`), which is otherwise chosen from the file's first
/// rows: then a cell's stored value, and so a prediction, would depend on
/// the other rows of the file (a 2-row file whose second row holds 1e12
/// shifted the first row's 0.2 by about 2,000). A file read against a
/// model takes its shifts from the model's preprocessing
/// ([`crate::data::Preprocessor::shifts`]), so that each row's values
/// depend on that row alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shifts(Option<std::sync::Arc<std::collections::HashMap<String, Option<f64>>>>);

impl Shifts {
    /// Shifts for the named columns (`None`: read the column as text).
    pub fn of(named: impl IntoIterator<Item = (String, Option<f64>)>) -> Self {
        Shifts(Some(std::sync::Arc::new(named.into_iter().collect())))
    }

    /// What is given for column `name`: `Some(Some(shift))`, `Some(None)`
    /// for text, `None` when nothing is (the sample decides).
    pub fn get(&self, name: &str) -> Option<Option<f64>> {
        self.0.as_ref().and_then(|m| m.get(name).copied())
    }

    /// Whether any shift is given.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

/// A CSV file held as strings: `rows[r][c]` is the trimmed text of column `c`
/// in data row `r`, and every row has `columns.len()` cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawTable {
    /// The file it was read from (named in every error).
    pub path: PathBuf,
    /// Column names: from the header, or `col0`, `col1`, ... without one.
    pub columns: Vec<String>,
    /// Whether the first line of the file was a header.
    pub has_header: bool,
    /// Data rows `[rows][columns]`.
    pub rows: Vec<Vec<String>>,
    /// 1-based line in the file where each data row starts, `[rows]`.
    pub lines: Vec<u64>,
}

impl RawTable {
    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    /// Index of the column called `name`, if any. A linear search: to look up
    /// many names, build [`RawTable::column_indices`] once.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        let found = self.columns.iter().position(|c| c == name);
        probe(found.map_or(self.columns.len(), |i| i + 1));
        found
    }

    /// The column names indexed in one pass, so that looking up all of
    /// another file's columns stays linear in the number of columns.
    pub fn column_indices(&self) -> ColumnIndex<'_> {
        ColumnIndex::new(&self.columns)
    }

    /// The cells of column `col` in `rows`, e.g. the raw target strings to
    /// stratify a split by. Out-of-range indices are skipped.
    pub fn column_cells(&self, col: usize, rows: &[usize]) -> Vec<String> {
        rows.iter()
            .filter_map(|&r| self.rows.get(r)?.get(col).cloned())
            .collect()
    }

    /// A [`Error::Format`] about this table's file.
    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The column names quoted and joined, for error messages; past 20,
    /// the first 20 and how many more (a wide table's error stays one
    /// readable line).
    pub(crate) fn column_list(&self) -> String {
        const SHOWN: usize = 20;
        match self.columns.len().checked_sub(SHOWN) {
            Some(more) if more > 0 => format!("{}, ... and {more} more", quoted_list(&self.columns[..SHOWN])),
            _ => quoted_list(&self.columns),
        }
    }
}

/// `'a', 'b', 'c'`.
pub(crate) fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{}'", short_cell(n)))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list += &format!(", ... ({} in all)", names.len());
    }
    list
}

/// `text` as an error message shows it: at most [`SHORT_CELL`] characters,
/// a longer text cut with its length in bytes (a 1 MB cell would otherwise
/// make a 1 MB line), and control characters escaped (`\n`, `\r`, `\t`,
/// `\u{1b}`: a quoted cell holding a line break split the one-line error,
/// and a `\r` overwrote it on a terminal).
pub fn short_cell(text: &str) -> std::borrow::Cow<'_, str> {
    let cut = text.char_indices().nth(SHORT_CELL).map(|(cut, _)| cut);
    let shown = &text[..cut.unwrap_or(text.len())];
    let escaped: std::borrow::Cow<'_, str> = match shown.chars().any(char::is_control) {
        false => std::borrow::Cow::Borrowed(shown),
        true => std::borrow::Cow::Owned(
            shown
                .chars()
                .map(|c| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                })
                .collect(),
        ),
    };
    match cut {
        None => escaped,
        Some(_) => std::borrow::Cow::Owned(format!("{escaped}... ({} bytes)", text.len())),
    }
}

/// Characters of a cell an error message shows ([`short_cell`]).
pub const SHORT_CELL: usize = 60;

/// A column chosen by name or by 0-based index. Parsed from text: all digits
/// means an index, anything else a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnRef {
    /// The column with this header name.
    Name(String),
    /// The column at this 0-based position.
    Index(usize),
}

impl FromStr for ColumnRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::config("column", "empty column name"));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            let i = s
                .parse()
                .map_err(|_| Error::config("column", format!("index {s} is too large")))?;
            return Ok(ColumnRef::Index(i));
        }
        Ok(ColumnRef::Name(s.to_string()))
    }
}

impl Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnRef::Name(n) => write!(f, "'{n}'"),
            ColumnRef::Index(i) => write!(f, "index {i}"),
        }
    }
}

/// A table whose columns [`ColumnRef`]s resolve against: a [`RawTable`] or
/// a [`crate::data::Table`].
pub trait Columns {
    /// The column names.
    fn names(&self) -> &[String];
    /// The column names indexed in one pass.
    fn name_index(&self) -> ColumnIndex<'_>;
    /// Index of the column called `name` (a linear search).
    fn find(&self, name: &str) -> Option<usize>;
    /// A [`Error::Format`] about the table's file.
    fn table_error(&self, reason: String) -> Error;
    /// The names quoted and joined, for error messages.
    fn name_list(&self) -> String;
}

impl Columns for RawTable {
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

impl ColumnRef {
    /// The column's index in `table`; an unknown name or an index out of
    /// range is an error that lists the columns there are.
    pub fn resolve(&self, table: &(impl Columns + ?Sized)) -> Result<usize> {
        self.resolve_with(table, |n| table.find(n))
    }

    /// Every reference in `refs` resolved as by [`ColumnRef::resolve`], with
    /// one name index built for all of them (linear in columns + references,
    /// where resolving each alone would be their product).
    pub fn resolve_all(refs: &[ColumnRef], table: &(impl Columns + ?Sized)) -> Result<Vec<usize>> {
        if refs.iter().all(|r| matches!(r, ColumnRef::Index(_))) {
            return refs.iter().map(|r| r.resolve(table)).collect();
        }
        let index = table.name_index();
        refs.iter().map(|r| r.resolve_with(table, |n| index.get(n))).collect()
    }

    /// [`ColumnRef::resolve`] with names looked up by `find`.
    fn resolve_with(&self, table: &(impl Columns + ?Sized), find: impl Fn(&str) -> Option<usize>) -> Result<usize> {
        let n_cols = table.names().len();
        match self {
            ColumnRef::Name(n) => find(n)
                .ok_or_else(|| table.table_error(format!("no column '{n}'; the columns are {}", table.name_list()))),
            ColumnRef::Index(i) if *i < n_cols => Ok(*i),
            ColumnRef::Index(i) => Err(table.table_error(format!(
                "no column at index {i}: there are {n_cols} columns (0-based), {}",
                table.name_list()
            ))),
        }
    }
}

/// Reads a CSV file into a [`RawTable`].
///
/// Header rule when `opts.header` is `None`: the first row is a header when
/// none of its cells is a number and some cell below it, in any column, is a
/// number. When every cell is text, it is a header when none of its cells
/// appears again in its column below while some column below repeats a value
/// (categorical data). A single row of text alone is a header too (and then
/// an error, as there is no data). Without a header the columns are named `col0`, `col1`,
/// ... A header's empty names become `colN`; duplicate names are an error.
///
/// Errors: an empty or header-only file, a row with a different number of
/// fields than the first (naming the line and both counts), a UTF-16 or
/// UTF-32 file, invalid UTF-8 (naming the line and column, and how to
/// convert from Latin-1), and read errors.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<RawTable> {
    crate::io::check_regular(path)?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv(&bytes, path, opts)
}

/// [`read_csv`] on the bytes of a file already read; `path` names it in errors.
pub fn parse_csv(bytes: &[u8], path: &Path, opts: &CsvOptions) -> Result<RawTable> {
    parse_csv_part(bytes, path, opts, true)
}

/// [`parse_csv`] on the first part of a file (`whole` false: cut at a line
/// end, perhaps inside a quoted field), where a quote still open at the
/// cut is not an error.
pub(crate) fn parse_csv_part(bytes: &[u8], path: &Path, opts: &CsvOptions, whole: bool) -> Result<RawTable> {
    let fmt_err = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    super::encoding::check_not_utf16(bytes, path).map_err(fmt_err)?;
    let (mut rows, mut lines, bad_utf8) = match read_records(bytes, path, opts.delimiter, whole) {
        Ok(records) => records,
        // A malformed file that is not UTF-8 either: the encoding is the likelier cause.
        Err(e) => return Err(super::encoding::not_utf8(bytes, path).map_or(e, fmt_err)),
    };
    let Some(first) = rows.first() else {
        return Err(fmt_err("empty file: no rows to read".into()));
    };
    let has_header = opts.header.unwrap_or_else(|| detect_header(&rows));
    let columns = if has_header {
        let names = header_names(first).map_err(|r| fmt_err(format!("line {}, {r}", lines[0])))?;
        let header_line = lines.remove(0);
        rows.remove(0);
        if rows.is_empty() {
            let cols = quoted_list(&names);
            return Err(fmt_err(format!(
                "line {header_line}: only a header row ({cols}), no data rows"
            )));
        }
        names
    } else {
        (0..first.len()).map(|j| format!("col{j}")).collect()
    };
    if let Some(b) = bad_utf8 {
        let col = match columns.get(b.col) {
            Some(name) if !(has_header && b.record == 0) => format!("'{name}'"),
            _ => (b.col + 1).to_string(),
        };
        let hint = super::encoding::latin1_hint(b.byte, path);
        return Err(fmt_err(format!("line {}, column {col}: {hint}", b.line)));
    }
    Ok(RawTable {
        path: path.to_path_buf(),
        columns,
        has_header,
        rows,
        lines,
    })
}

/// Records as strings, the line where each starts, and the first field that
/// was not valid UTF-8.
type Records = (Vec<Vec<String>>, Vec<u64>, Option<BadUtf8>);

/// Every non-blank record as trimmed strings, with its starting line;
/// checks that all records have the first one's field count.
fn read_records(bytes: &[u8], path: &Path, delimiter: u8, whole: bool) -> Result<Records> {
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .trim(Trim::All)
        .from_reader(bytes);
    let (mut rows, mut lines): (Vec<Vec<String>>, Vec<u64>) = (Vec::new(), Vec::new());
    let mut rec = ByteRecord::new();
    let mut counter = LineCounter::new(bytes);
    let mut bad_utf8 = None;
    let mut last = None;
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e)),
        }
        let start = rec.position().map_or(0, |p| p.byte() as usize);
        let line = counter.line_at(bytes, start);
        last = Some((start, line));
        if rec.len() == 1 && rec[0].is_empty() {
            continue; // a line of blanks
        }
        let (cells, bad) = decode_record(&rec, line, rows.len(), counter.cr_lines);
        bad_utf8 = bad_utf8.or(bad);
        if let (Some(first), Some(&first_line)) = (rows.first(), lines.first())
            && let Err(e) = check_width(path, first, first_line, &cells, line)
        {
            // A last record that runs to the end of the file in an open
            // quote has the wrong width because of that quote.
            let end = (reader.position().byte() as usize).min(bytes.len());
            let last = whole && bytes[end..].iter().all(|b| matches!(b, b'\r' | b'\n'));
            return Err(
                match last && unclosed_quote(&bytes[start.min(bytes.len())..], delimiter) {
                    true => unclosed_error(path, line),
                    false => e,
                },
            );
        }
        rows.push(cells);
        lines.push(line);
    }
    if let Some((start, line)) = last.filter(|_| whole)
        && unclosed_quote(&bytes[start.min(bytes.len())..], delimiter)
    {
        return Err(unclosed_error(path, line));
    }
    Ok((rows, lines, bad_utf8))
}

fn unclosed_error(path: &Path, line: u64) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: unclosed_message(line),
    }
}

/// The error for a quoted field that the end of the file leaves open, in a
/// record that begins on `line` (see [`unclosed_quote`]).
pub(crate) fn unclosed_message(line: u64) -> String {
    format!(
        "line {line}: a quoted field opens in this record and is never closed (a '\"' without its closing '\"'); everything after it would be one value"
    )
}

/// 1-based line numbers of byte offsets, counted incrementally.
struct LineCounter {
    pos: usize,
    newlines: u64,
    /// The file holds no `\n`: its lines end in `\r` alone.
    cr_lines: bool,
}

impl LineCounter {
    fn new(bytes: &[u8]) -> Self {
        LineCounter {
            pos: 0,
            newlines: 0,
            cr_lines: cr_lines(bytes),
        }
    }

    /// The line where the record starting at byte `start` begins. A record's
    /// reported start may sit on the line end before it (`\r` of CRLF, or
    /// blank lines): those bytes are skipped first.
    fn line_at(&mut self, bytes: &[u8], start: usize) -> u64 {
        let mut s = start.min(bytes.len());
        while s < bytes.len() && matches!(bytes[s], b'\r' | b'\n') {
            s += 1;
        }
        if s >= self.pos {
            self.newlines += line_ends(&bytes[self.pos..s], self.cr_lines);
            self.pos = s;
        }
        self.newlines + 1
    }
}

/// Whether a file's lines end in `\r` alone (classic Mac): it holds no
/// `\n`. The `csv` crate reads such lines as records, and counting `\n`
/// named every error "line 1". In a file with `\n` a lone `\r` (in a quoted
/// cell, or `\r\r\n` from a file converted twice) is not a line end, as
/// editors and `wc -l` count.
pub(crate) fn cr_lines(bytes: &[u8]) -> bool {
    memchr::memchr(b'\n', bytes).is_none()
}

/// Line ends in `b`: each `\n`, or each `\r` in a file of [`cr_lines`].
pub(crate) fn line_ends(b: &[u8], cr_lines: bool) -> u64 {
    let end = if cr_lines { b'\r' } else { b'\n' };
    memchr::memchr_iter(end, b).count() as u64
}

/// A ragged row is an error naming its line and both field counts.
fn check_width(path: &Path, first: &[String], first_line: u64, cells: &[String], line: u64) -> Result<()> {
    if cells.len() == first.len() {
        return Ok(());
    }
    let what = if cells.len() < first.len() {
        "too few"
    } else {
        "too many"
    };
    Err(Error::Format {
        path: path.to_path_buf(),
        reason: format!(
            "line {line}: {what} fields: expected {} (as on line {first_line}), found {}",
            first.len(),
            cells.len()
        ),
    })
}

/// The first field that is not valid UTF-8: its line, record, column and
/// the offending byte.
#[derive(Debug, Clone, Copy)]
struct BadUtf8 {
    line: u64,
    record: usize,
    col: usize,
    byte: u8,
}

/// Decodes each field as UTF-8 (skipping a byte order mark at the start of
/// the file); an invalid field is decoded lossily and reported at its own line.
fn decode_record(rec: &ByteRecord, line: u64, record: usize, cr_lines: bool) -> (Vec<String>, Option<BadUtf8>) {
    let mut out = Vec::with_capacity(rec.len());
    let mut bad = None;
    let mut field_line = line;
    for (j, field) in rec.iter().enumerate() {
        let field = match field.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) if record == 0 && j == 0 => rest,
            _ => field,
        };
        let newlines = |b: &[u8]| line_ends(b, cr_lines);
        if let (Err(e), None) = (std::str::from_utf8(field), bad) {
            let ok = e.valid_up_to();
            bad = Some(BadUtf8 {
                line: field_line + newlines(&field[..ok]),
                record,
                col: j,
                byte: field[ok],
            });
        }
        out.push(String::from_utf8_lossy(field).trim().to_string());
        field_line += newlines(field);
    }
    (out, bad)
}

/// Maps a `csv` crate error to ours, with the line where it has one.
fn csv_error(path: &Path, e: ::csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        kind => Error::Format {
            path: path.to_path_buf(),
            reason: match line {
                Some(l) => format!("line {l}: {kind:?}"),
                None => format!("{kind:?}"),
            },
        },
    }
}

/// The header rule of [`read_csv`].
fn detect_header(rows: &[Vec<String>]) -> bool {
    let Some((first, rest)) = rows.split_first() else {
        return false;
    };
    if first.iter().any(|c| is_number(c)) {
        return false;
    }
    if rest.is_empty() || rest.iter().any(|r| r.iter().any(|c| is_number(c))) {
        return true;
    }
    // All text: a header when no first-row cell recurs in its column below
    // while some column below repeats a value (categorical data).
    let recurs = first
        .iter()
        .enumerate()
        .any(|(j, c)| rest.iter().any(|r| r.get(j) == Some(c)));
    let repeats = (0..first.len()).any(|j| {
        let mut col: Vec<&String> = rest.iter().filter_map(|r| r.get(j)).collect();
        col.sort_unstable();
        col.windows(2).any(|w| w[0] == w[1])
    });
    !recurs && repeats
}

/// Column names from a header row: empty names become `colN`, duplicates
/// are an error.
pub(crate) fn header_names(first: &[String]) -> std::result::Result<Vec<String>, String> {
    let names: Vec<String> = first
        .iter()
        .enumerate()
        .map(|(j, c)| if c.is_empty() { format!("col{j}") } else { c.clone() })
        .collect();
    if let Some((k, j)) = first_duplicate(&names) {
        return Err(format!(
            "column '{}': duplicate column name (columns {} and {})",
            names[j],
            k + 1,
            j + 1
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod short_cell_tests {
    use super::short_cell;

    #[test]
    fn quotes_and_line_ends_are_no_delimiters() {
        for c in ['"', '\r', '\n'] {
            let e = super::delimiter_byte(c).unwrap_err().to_string();
            assert!(e.contains("cannot separate fields"), "{e}");
        }
        assert_eq!(super::delimiter_byte(';').unwrap(), b';');
    }

    #[test]
    fn control_characters_are_escaped_and_long_cells_cut() {
        assert_eq!(short_cell("red"), "red");
        assert_eq!(short_cell("re,d\nx"), "re,d\\nx");
        assert_eq!(short_cell("a\rb\tc\u{1b}"), "a\\rb\\tc\\u{1b}");
        let long = "é".repeat(70);
        assert_eq!(short_cell(&long), format!("{}... (140 bytes)", "é".repeat(60)));
        let long_break = format!("{}\n{}", "a".repeat(30), "b".repeat(40));
        assert!(short_cell(&long_break).starts_with(&format!("{}\\n", "a".repeat(30))));
        assert!(!short_cell(&long_break).contains('\n'));
    }
}
