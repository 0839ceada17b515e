//! [`ChunkReader`]: a data file read as a sequence of small
//! [`super::Table`]s, for data larger than memory: a Parquet file (feature
//! `columnar`) row group by row group, an Arrow IPC file record batch by
//! record batch, a CSV file as follows (`csv_chunks.rs`).
//!
//! The file is typed once, as [`super::read_table`] types it: the first
//! record and the [`super::SAMPLE`] records after it choose each column's
//! kind and shift. The body is then read in byte ranges of about `chunk`
//! bytes cut at record ends (the same block parser, one range per thread);
//! each range becomes one chunk table whose rows carry their file lines, so
//! every error names the file, line and column as the in-memory reader's
//! do. A chunk in which a numeric column meets a cell that is not a number
//! reads that column again as text (the whole-file reader reads the whole
//! column again). Every chunk's [`Span`] (bytes, lines before it, first row)
//! is known after one sequential pass, so chunks can later be read again
//! in any order with [`ChunkReader::read_span`].
//!
//! Memory: one range of `chunk` bytes (twice that for a record longer than
//! it) and one chunk table (4 bytes a cell), whatever the file's size.

use std::path::Path;

use super::csv_chunks::CsvChunks;
use crate::data::csv::CsvOptions;
use crate::error::Result;

/// Bytes of text per chunk by default.
pub const CHUNK: usize = 1 << 20;

/// Where a chunk lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Byte offset of its first record (a Parquet chunk: its row group).
    pub start: u64,
    /// Byte offset just after its last record (Parquet: the group + 1).
    pub end: u64,
    /// Newlines in the file before `start`.
    pub lines: u64,
    /// Index (from 0, over the file's data rows) of its first row.
    pub row: usize,
}

/// One chunk: its rows as a table (row `r` is data row `span.row + r` of
/// the file) and where it lies.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The rows, with their file lines.
    pub table: super::Table,
    /// Where they are in the file.
    pub span: Span,
}

/// Reads a data file chunk by chunk: a CSV file in byte ranges (see the
/// module docs), a Parquet file (feature `columnar`) row group by row
/// group, an Arrow IPC file record batch by record batch.
pub struct ChunkReader(Inner);

enum Inner {
    Csv(Box<CsvChunks>),
    #[cfg(feature = "columnar")]
    Parquet(ParquetChunks),
}

impl ChunkReader {
    /// Opens `path`: a Parquet file (`.parquet`, `.pq`) by row groups, an
    /// Arrow IPC file (`.arrow`, `.feather`, `.ipc`) by record batches, any
    /// other as CSV, typed on its head; reads the first chunk (which settles
    /// the header question when `opts` leaves it open, with the rule of
    /// [`crate::data::read_csv`] applied to that chunk). `chunk`: bytes of
    /// CSV text per chunk (at least 4 KiB are used).
    pub fn open(path: &Path, opts: &CsvOptions, chunk: usize) -> Result<ChunkReader> {
        crate::io::check_regular(path)?;
        #[cfg(feature = "columnar")]
        if super::Format::of(path) != super::Format::Csv {
            return Ok(ChunkReader(Inner::Parquet(ParquetChunks::open(path, &opts.shifts)?)));
        }
        Ok(ChunkReader(Inner::Csv(Box::new(CsvChunks::open(path, opts, chunk)?))))
    }

    /// Column names (from the header, or `col0`, `col1`, ...).
    pub fn columns(&self) -> &[String] {
        match &self.0 {
            Inner::Csv(c) => c.columns(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => &p.columns,
        }
    }

    /// Whether the first line is a header (always, for Parquet and Arrow).
    pub fn has_header(&self) -> bool {
        match &self.0 {
            Inner::Csv(c) => c.has_header(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(_) => true,
        }
    }

    /// Rows and bytes of the first chunk (for estimates of the file's rows).
    pub fn first_chunk_size(&self) -> (usize, u64) {
        match &self.0 {
            Inner::Csv(c) => c.first_chunk_size(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => p.first_chunk_size(),
        }
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        match &self.0 {
            Inner::Csv(c) => c.file_size(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => p.size,
        }
    }

    /// The next chunk in file order; `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        match &mut self.0 {
            Inner::Csv(c) => c.next_chunk(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => p.next_chunk(),
        }
    }

    /// The chunk at `span` (from an earlier pass), read again.
    pub fn read_span(&mut self, span: &Span) -> Result<Chunk> {
        match &mut self.0 {
            Inner::Csv(c) => c.read_span(span),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => {
                let chunk = p.read(span.start as usize);
                p.counted(chunk)
            }
        }
    }

    /// Starts again at the first chunk (for another pass in file order).
    pub fn rewind(&mut self) -> Result<()> {
        match &mut self.0 {
            Inner::Csv(c) => c.rewind(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => {
                p.next = 0;
                Ok(())
            }
        }
    }

    /// Reports progress to the hook of [`super::set_read_progress`] or not
    /// (e.g. while training shows its own progress).
    pub fn set_progress(&mut self, on: bool) {
        match &mut self.0 {
            Inner::Csv(c) => c.set_progress(on),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => p.report = on,
        }
    }

    /// Ends a pass over the chunks (in any order): a last progress report,
    /// and the next chunk read starts the count of a new pass.
    pub fn end_pass(&mut self) {
        match &mut self.0 {
            Inner::Csv(c) => c.end_pass(),
            #[cfg(feature = "columnar")]
            Inner::Parquet(p) => {
                p.progress(true);
                p.pass = 0;
            }
        }
    }
}

/// A Parquet file read row group by row group, or an Arrow IPC file record
/// batch by record batch: a chunk's [`Span`] is the group (`start`, `end` =
/// group, group + 1) and its first row.
#[cfg(feature = "columnar")]
struct ParquetChunks {
    path: std::path::PathBuf,
    ipc: bool,
    columns: Vec<String>,
    /// Rows of each row group.
    groups: Vec<usize>,
    next: usize,
    size: u64,
    /// Rows read in this pass, and whether to tell the progress hook.
    pass: u64,
    report: bool,
    /// Shifts given for its numeric columns (a file read against a model).
    shifts: crate::data::Shifts,
}

#[cfg(feature = "columnar")]
impl ParquetChunks {
    fn open(path: &Path, shifts: &crate::data::Shifts) -> Result<Self> {
        let ipc = super::Format::of(path) == super::Format::Ipc;
        let (columns, groups) = match ipc {
            true => super::columnar::ipc_batches(path)?,
            false => super::columnar::parquet_groups(path)?,
        };
        // As the whole-file read refuses it (`read_data`).
        if columns.is_empty() {
            return Err(super::columnar::format_error(path, "the file has no columns".into()));
        }
        if groups.iter().all(|&n| n == 0) {
            return Err(super::columnar::format_error(path, super::no_rows(&columns)));
        }
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        Ok(ParquetChunks {
            path: path.to_path_buf(),
            ipc,
            columns,
            groups,
            next: 0,
            size,
            pass: 0,
            report: true,
            shifts: shifts.clone(),
        })
    }

    fn first_chunk_size(&self) -> (usize, u64) {
        let total: usize = self.groups.iter().sum();
        let first = self.groups.first().copied().unwrap_or(0);
        (first, self.size * first as u64 / total.max(1) as u64)
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        while self.next < self.groups.len() {
            self.next += 1;
            if self.groups[self.next - 1] > 0 {
                let chunk = self.read(self.next - 1);
                return self.counted(chunk).map(Some);
            }
        }
        Ok(None)
    }

    /// `chunk`, its rows counted in this pass and told to the progress hook.
    fn counted(&mut self, chunk: Result<Chunk>) -> Result<Chunk> {
        if let Ok(c) = &chunk {
            self.pass += c.table.len() as u64;
            self.progress(false);
        }
        chunk
    }

    /// Tells the progress hook ([`super::set_read_progress`]) the rows read
    /// in this pass, and their share of the file's bytes.
    fn progress(&self, done: bool) {
        if !self.report {
            return;
        }
        let rows = self.groups.iter().sum::<usize>() as u64;
        super::read::report(super::ReadProgress {
            bytes: super::read::share_of(self.size, self.pass, rows),
            total: self.size,
            rows: self.pass,
            done,
        });
    }

    fn read(&self, g: usize) -> Result<Chunk> {
        let row: usize = self.groups[..g.min(self.groups.len())].iter().sum();
        let table = match self.ipc {
            true => super::columnar::read_ipc_batch(&self.path, g, row, &self.shifts)?,
            false => super::columnar::read_parquet_group(&self.path, g, row, &self.shifts)?,
        };
        let span = Span {
            start: g as u64,
            end: g as u64 + 1,
            lines: 0,
            row,
        };
        Ok(Chunk { table, span })
    }
}
