//! The CSV side of [`super::ChunkReader`]: the file typed on its head, then
//! read in byte ranges cut at record ends (see [`super::chunks`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::build::{self, Job, Plan, clean_number};
use super::chunks::{Chunk, Span};
use super::read::{
    Body, MIN_RANGE, ReadProgress, Tune, detect_header, fill, finish, io_error, parse_block, prepend_first, read_head,
    report,
};
use super::scan::{BOM, Scanner, Step, text};
use super::{Column, Table};
use crate::data::csv::{CsvOptions, header_names, parse_csv_part, unclosed_message};
use crate::error::{Error, Result};

/// Reads a CSV file chunk by chunk (see [`super::chunks`]).
pub(super) struct CsvChunks {
    path: PathBuf,
    delimiter: u8,
    plan: Vec<Plan>,
    first: Vec<String>,
    first_line: u64,
    /// Byte offset and newlines where the records after the first begin.
    body: (u64, u64),
    has_header: bool,
    columns: Vec<String>,
    chunk: usize,
    file: File,
    total: u64,
    buf: Vec<u8>,
    /// Where `buf[0]` is: byte, newlines before it, next data row.
    at: (u64, u64, usize),
    eof: bool,
    done: bool,
    /// The first chunk, read to decide the header.
    pending: Option<Chunk>,
    /// Bytes and rows read since the pass began (for progress reports).
    pass: (u64, u64),
    /// Rows and bytes of the first chunk.
    first_size: (usize, u64),
    /// Whether progress is reported.
    report: bool,
}

impl CsvChunks {
    /// Opens `path`, types its columns on the head of the file and reads the
    /// first chunk (which settles the header question when `opts` leaves it
    /// open, with the rule of [`crate::data::read_csv`] applied to that
    /// chunk). `chunk`: bytes of text per chunk (at least 4 KiB are used).
    pub(super) fn open(path: &Path, opts: &CsvOptions, chunk: usize) -> Result<CsvChunks> {
        let chunk = chunk.max(4 << 10);
        let tune = Tune {
            block: chunk,
            min_range: MIN_RANGE.min(chunk),
        };
        let Some(head) = read_head(path, opts.delimiter, tune)? else {
            return Err(head_error(path, opts));
        };
        let names = super::read::given_names(&head.first, opts);
        let plan: Vec<Plan> = (0..head.first.len())
            .map(|j| {
                let name = names.as_ref().and_then(|n| n.get(j)).map(String::as_str);
                build::plan_of_sample(name, head.sample.iter().map(|r| r[j].as_str()), &opts.shifts)
            })
            .collect();
        let file = File::open(path).map_err(io_error(path))?;
        let total = file.metadata().map_or(0, |m| m.len());
        let mut r = CsvChunks {
            path: path.to_path_buf(),
            delimiter: opts.delimiter,
            plan,
            first_line: head.first_line,
            body: (head.body, head.body_lines),
            has_header: opts.header.unwrap_or(true),
            columns: Vec::new(),
            chunk,
            file,
            total,
            buf: Vec::with_capacity(chunk),
            at: (head.body, head.body_lines, 0),
            eof: false,
            done: false,
            pending: None,
            pass: (0, 0),
            first_size: (0, 0),
            report: true,
            first: head.first,
        };
        r.file.seek(SeekFrom::Start(head.body)).map_err(io_error(path))?;
        let mut first = r.read_next()?;
        let (cols, rows) = first
            .as_ref()
            .map_or((&[][..], 0), |c| (&c.table.cols[..], c.table.len()));
        r.has_header = opts.header.unwrap_or_else(|| detect_header(&r.first, cols, rows));
        if r.has_header && rows == 0 {
            return Err(head_error(path, opts)); // a lone header: read_csv says so
        }
        if !r.has_header && r.first_as_text() {
            r.rewind()?;
            first = r.read_next()?;
        }
        r.columns = match r.has_header {
            true => header_names(&r.first).map_err(|e| r.error(format!("line {}, {e}", r.first_line)))?,
            false => (0..r.first.len()).map(|j| format!("col{j}")).collect(),
        };
        r.first_size = first
            .as_ref()
            .map_or((0, 0), |c| (c.table.len(), c.span.end - c.span.start));
        r.pending = first.map(|c| r.finish_chunk(c));
        Ok(r)
    }

    /// Plans as text the numeric columns whose first record, data in a file
    /// without a header, is not a number (as `read_csv` re-reads such a
    /// column: the cell was stored as a missing value, so a header cell
    /// became a value to impute); whether any was.
    fn first_as_text(&mut self) -> bool {
        let mut any = false;
        for (p, cell) in self.plan.iter_mut().zip(&self.first) {
            if matches!(p, Plan::Num(_)) && clean_number(cell).is_none() {
                *p = Plan::Text;
                any = true;
            }
        }
        any
    }

    /// Column names (from the header, or `col0`, `col1`, ...).
    pub(super) fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether the first line is a header.
    pub(super) fn has_header(&self) -> bool {
        self.has_header
    }

    /// Rows and bytes of the first chunk (for estimates of the file's rows).
    pub(super) fn first_chunk_size(&self) -> (usize, u64) {
        self.first_size
    }

    /// The file's size in bytes.
    pub(super) fn file_size(&self) -> u64 {
        self.total
    }

    /// The next chunk in file order; `None` after the last.
    pub(super) fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        if let Some(c) = self.pending.take() {
            return Ok(Some(c));
        }
        let c = self.read_next()?;
        Ok(c.map(|c| self.finish_chunk(c)))
    }

    /// The chunk at `span` (from an earlier pass), read again.
    pub(super) fn read_span(&mut self, span: &Span) -> Result<Chunk> {
        self.pending = None;
        self.file
            .seek(SeekFrom::Start(span.start))
            .map_err(io_error(&self.path))?;
        let len = usize::try_from(span.end - span.start).map_err(|_| self.error("chunk too large"))?;
        self.buf.clear();
        let eof = fill(&mut self.file, &mut self.buf, len, &self.path)?;
        if self.buf.len() != len && !eof {
            return Err(self.error("the file changed while it was read"));
        }
        self.at = (span.start, span.lines, span.row);
        self.eof = true;
        self.done = false;
        let c = self
            .parse_buffer()?
            .ok_or_else(|| self.error("the file changed while it was read"))?;
        let mut c = self.finish_chunk(c);
        c.span.row = span.row;
        Ok(c)
    }

    /// Starts again at the first chunk (for another pass in file order).
    pub(super) fn rewind(&mut self) -> Result<()> {
        self.unchanged()?;
        self.pending = None;
        self.file
            .seek(SeekFrom::Start(self.body.0))
            .map_err(io_error(&self.path))?;
        self.buf.clear();
        self.at = (self.body.0, self.body.1, 0);
        self.eof = false;
        self.done = false;
        self.pass = (0, 0); // a pass starts again: its bytes and rows anew
        Ok(())
    }

    /// The file still has the size it had when opened: rows appended
    /// during a streamed run had joined its test and validation passes,
    /// which read to the end, without a word (the training passes re-read
    /// recorded byte ranges).
    fn unchanged(&self) -> Result<()> {
        match self.file.metadata().map(|m| m.len()) {
            Ok(now) if now != self.total => Err(self.error(format!(
                "the file changed while it was read ({} bytes when opened, {now} now)",
                self.total
            ))),
            _ => Ok(()),
        }
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Names, header flag and, for a file without a header, its first
    /// record as data row 0 of the first chunk.
    fn finish_chunk(&self, mut c: Chunk) -> Chunk {
        c.table.columns = self.columns.clone();
        c.table.has_header = self.has_header;
        if !self.has_header {
            match c.span.start == self.body.0 {
                true => prepend_first(&mut c.table, &self.first, self.first_line),
                false => c.span.row += 1,
            }
        }
        c
    }

    /// Reads and parses the next range of the file.
    fn read_next(&mut self) -> Result<Option<Chunk>> {
        let mut want = self.chunk;
        loop {
            if self.done {
                return Ok(None);
            }
            let before = self.buf.len();
            if !self.eof {
                let more = want.saturating_sub(before).max(MIN_RANGE.min(want));
                self.eof = fill(&mut self.file, &mut self.buf, more, &self.path)?;
            }
            if self.buf[before..].contains(&0) {
                return Err(self.error(format!(
                    "a NUL byte after line {}: not a text CSV (UTF-16 or a binary file?)",
                    self.at.1 + 1
                )));
            }
            match self.parse_buffer()? {
                Some(c) if c.table.is_empty() && !self.done => continue, // only blank lines so far
                Some(c) => return Ok((!c.table.is_empty()).then_some(c)),
                None if self.done => return Ok(None),
                None if self.eof => {
                    return Err(self.error(format!("line {}: unterminated quoted field", self.at.1 + 1)));
                }
                None => {}
            }
            want = (want * 2).max(self.buf.len() + 1); // one record longer than the range
        }
    }

    /// Parses the complete records at the start of `buf` into a chunk and
    /// drops them from `buf`; `None` when not one record is complete.
    fn parse_buffer(&mut self) -> Result<Option<Chunk>> {
        if self.buf.is_empty() && self.eof {
            self.unchanged()?;
            self.done = true;
            return Ok(None);
        }
        let (body, next, incomplete, lines) = self.parse_with(&self.plan.clone())?;
        if body.rows == 0 && incomplete {
            return Ok(None);
        }
        let mut cols: Vec<Column> = body.cols.into_iter().map(finish).collect();
        if body.bad.iter().any(|&b| b) {
            // Those columns again, as text, from the same bytes.
            let plan2: Vec<Plan> = body
                .bad
                .iter()
                .map(|&b| if b { Plan::Text } else { Plan::Skip })
                .collect();
            let (again, ..) = self.parse_with(&plan2)?;
            for (j, acc) in again.cols.into_iter().enumerate() {
                if body.bad[j] {
                    cols[j] = finish(acc);
                }
            }
        }
        let span = Span {
            start: self.at.0,
            end: self.at.0 + next as u64,
            lines: self.at.1,
            row: self.at.2,
        };
        let table = Table {
            path: self.path.clone(),
            columns: Vec::new(),
            has_header: true,
            cols,
            rows: body.rows,
            breaks: body.breaks,
            columnar: false,
            row_base: 0,
            file_columns: Vec::new(),
        };
        self.buf.drain(..next);
        self.at = (span.end, lines, span.row + body.rows);
        self.done = self.eof && self.buf.is_empty();
        if self.done {
            self.unchanged()?;
        }
        self.pass.0 += span.end - span.start;
        self.pass.1 += body.rows as u64;
        self.progress(false);
        Ok(Some(Chunk { table, span }))
    }

    /// Tells the progress hook ([`super::set_read_progress`]) the bytes and
    /// rows read in this pass.
    fn progress(&self, done: bool) {
        if !self.report {
            return;
        }
        report(ReadProgress {
            bytes: self.pass.0,
            total: self.total,
            rows: self.pass.1,
            done,
        });
    }

    /// Reports progress to the hook of [`super::set_read_progress`] or not
    /// (e.g. while training shows its own progress).
    pub(super) fn set_progress(&mut self, on: bool) {
        self.report = on;
    }

    /// Ends a pass over the chunks (in any order): a last progress report,
    /// and the next chunk read starts the count of a new pass.
    pub(super) fn end_pass(&mut self) {
        self.progress(true);
        self.pass = (0, 0);
    }

    /// The complete records of `buf` parsed with `plan`: the columns, where
    /// the first incomplete record starts, whether there is one, and the
    /// newlines before it.
    fn parse_with(&self, plan: &[Plan]) -> Result<(Body, usize, bool, u64)> {
        let job = Job {
            block: &self.buf,
            eof: self.eof,
            plan,
            delimiter: self.delimiter,
        };
        let parts = parse_block(&job, MIN_RANGE.min(self.chunk))?;
        let mut base = self.at.1;
        let mut out = Body::new(plan, 0);
        let (mut next, mut incomplete) = (0, false);
        for (i, part) in parts.into_iter().enumerate() {
            let from_base = if i == 0 { base } else { base - part.lead };
            if part.slow {
                return Err(self.slow_error(part.first, from_base + part.lead));
            }
            (next, incomplete) = (part.next, part.incomplete);
            base = from_base + part.to_next;
            out.append(part, from_base);
        }
        Ok((out, next, incomplete, base))
    }

    /// The error for the first record from byte `from` of `buf` (after
    /// `lines` newlines) that only the full reader would accept or report:
    /// a ragged row, a field that is not UTF-8, a byte order mark.
    fn slow_error(&self, from: usize, lines: u64) -> Error {
        let mut sc = Scanner::new(self.delimiter);
        sc.count_lone_cr(&self.buf);
        let (mut pos, mut nl) = (from, lines);
        let ncols = self.plan.len();
        loop {
            let (start, next, newlines_in) = match sc.next(&self.buf, pos, self.eof) {
                Step::Record {
                    start,
                    next,
                    newlines_before,
                    newlines_in,
                } => {
                    nl += newlines_before;
                    (start, next, newlines_in)
                }
                Step::Unclosed { newlines_before, .. } => {
                    return self.error(unclosed_message(nl + newlines_before + 1));
                }
                Step::Incomplete { .. } | Step::End { .. } => break,
            };
            let line = nl + 1;
            if self.buf[start..].starts_with(BOM) {
                return self.error(format!("line {line}: a byte order mark inside the file"));
            }
            if !sc.is_blank(&self.buf) && sc.len() != ncols {
                let what = if sc.len() < ncols { "too few" } else { "too many" };
                return self.error(format!(
                    "line {line}: {what} fields: expected {ncols} (as on line {}), found {}",
                    self.first_line,
                    sc.len()
                ));
            }
            if let Some(j) = (0..sc.len()).find(|&j| text(sc.field(&self.buf, j)).is_none()) {
                let field = sc.field(&self.buf, j);
                let ok = std::str::from_utf8(field).map_or_else(|e| e.valid_up_to(), |_| 0);
                let name = self
                    .columns
                    .get(j)
                    .map_or_else(|| (j + 1).to_string(), |n| format!("'{n}'"));
                let hint = crate::data::encoding::latin1_hint(field.get(ok).copied().unwrap_or(0), &self.path);
                return self.error(format!("line {line}, column {name}: {hint}"));
            }
            nl += newlines_in;
            pos = next;
        }
        self.error(format!("after line {}: a record the reader cannot parse", nl + 1))
    }
}

/// Why the head of a file cannot be streamed: the full reader's error on
/// the first block (an encoding, a ragged row, a lone header...).
fn head_error(path: &Path, opts: &CsvOptions) -> Error {
    let mut bytes = Vec::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(super::read::BLOCK as u64).read_to_end(&mut bytes);
    }
    let whole = bytes.len() < super::read::BLOCK;
    if let Some(end) = memchr::memrchr(b'\n', &bytes).filter(|_| !whole) {
        bytes.truncate(end + 1);
    }
    match parse_csv_part(&bytes, path, opts, whole) {
        Err(e) => e,
        Ok(_) => Error::Format {
            path: path.to_path_buf(),
            reason: "its first records cannot be read in chunks; train without --stream".into(),
        },
    }
}
