//! [`read_table`]: a CSV file read straight into typed columns.
//!
//! 1. The first record (a header or data) and up to [`SAMPLE`] records after
//!    it are read as text; each column's type is chosen on that sample
//!    ([`build::sample_kind`]).
//! 2. The rest of the file is read in blocks of [`BLOCK`] bytes (the only
//!    buffer, besides the columns). Each block is cut into one range per
//!    thread at line ends; the ranges are parsed at once, and each one's
//!    start is then checked against where the range before it really ended
//!    (a line end inside a quoted field is not a record end): a range that
//!    started inside a record is parsed again from the right place.
//! 3. A numeric column in which a later cell is not a number is read again,
//!    as text, in a second pass over the file for those columns only.
//! 4. The header rule of [`read_csv`] is applied to the first record and the
//!    typed columns.
//!
//! Anything the full reader reports as an error (UTF-16, NUL bytes, ragged
//! rows, invalid UTF-8, duplicate or lone headers) or an unusual file (a byte
//! order mark inside it) sends the file through [`read_csv`] and
//! [`Table::from_raw`], so errors are word for word those of [`read_csv`].

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use super::build::{self, Job, Part, Plan, TextBuilder, clean_number, parse_part};
use super::scan::{Scanner, Step};
use super::{Column, SAMPLE, Table};
use crate::data::csv::{CsvOptions, header_names, is_number, read_csv};
use crate::error::{Error, Result};

/// Bytes read at a time.
pub const BLOCK: usize = 8 << 20;

/// Smallest range given to a thread.
pub(super) const MIN_RANGE: usize = 256 << 10;

thread_local! {
    /// Ranges parsed again because they began inside a quoted field, and
    /// files handed to the full reader, by the calling thread.
    static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// `(ranges parsed again, files handed to the full reader)` so far on this
/// thread: lets tests check which paths they took.
#[doc(hidden)]
pub fn reader_counts() -> (u64, u64) {
    COUNTS.with(Cell::get)
}

fn count(reparsed: u64, handed_over: u64) {
    COUNTS.with(|c| {
        let (a, b) = c.get();
        c.set((a + reparsed, b + handed_over));
    });
}

/// How far a reader has got through a file, told to the hook installed by
/// [`set_read_progress`] after each block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadProgress {
    /// Bytes of the file read so far.
    pub bytes: u64,
    /// The file's size in bytes.
    pub total: u64,
    /// Data rows parsed so far.
    pub rows: u64,
    /// The last report for this file.
    pub done: bool,
}

/// A function shown [`ReadProgress`] (e.g. a progress bar in the CLI).
pub type ProgressHook = std::sync::Arc<dyn Fn(&ReadProgress) + Send + Sync>;

static HOOK: std::sync::RwLock<Option<ProgressHook>> = std::sync::RwLock::new(None);

/// Installs `hook` (or removes it, with `None`): every CSV read by
/// [`read_table`] then reports its progress to it after each block. The
/// engine itself draws nothing.
pub fn set_read_progress(hook: Option<ProgressHook>) {
    if let Ok(mut h) = HOOK.write() {
        *h = hook;
    }
}

/// `part` of `whole` (rows, cells, batches) as the same share of `bytes`,
/// at most `bytes`: how far a reader that counts in other units has got.
#[cfg(feature = "columnar")]
pub(super) fn share_of(bytes: u64, part: u64, whole: u64) -> u64 {
    let share = u128::from(bytes) * u128::from(part) / u128::from(whole.max(1));
    u64::try_from(share).unwrap_or(bytes).min(bytes)
}

pub(super) fn report(p: ReadProgress) {
    if let Some(hook) = HOOK.read().ok().and_then(|h| h.clone()) {
        hook(&p);
    }
}

/// Buffer sizes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tune {
    pub(super) block: usize,
    pub(super) min_range: usize,
}

/// Reads a CSV file into a [`Table`]: the same columns, header, cells and
/// lines as [`read_csv`] followed by [`Table::from_raw`], and the same
/// errors, in a fraction of the time and memory.
pub fn read_table(path: &Path, opts: &CsvOptions) -> Result<Table> {
    read_table_tuned(path, opts, BLOCK, MIN_RANGE)
}

/// [`read_table`] with blocks of `block` bytes cut into ranges of at least
/// `min_range` bytes (small values let tests cross every boundary).
#[doc(hidden)]
pub fn read_table_tuned(path: &Path, opts: &CsvOptions, block: usize, min_range: usize) -> Result<Table> {
    crate::io::check_regular(path)?;
    let tune = Tune {
        block: block.max(16),
        min_range: min_range.max(1),
    };
    match read_fast(path, opts, tune)? {
        Some(t) => Ok(t),
        None => {
            count(0, 1);
            Ok(Table::from_raw_shifted(&read_csv(path, opts)?, &opts.shifts))
        }
    }
}

pub(super) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends up to `want` bytes of `file` to `buf`; true at the end of the file.
pub(super) fn fill(file: &mut File, buf: &mut Vec<u8>, want: usize, path: &Path) -> Result<bool> {
    let start = buf.len();
    buf.resize(start + want, 0);
    let mut got = 0;
    while got < want {
        match file.read(&mut buf[start + got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path)(e)),
        }
    }
    buf.truncate(start + got);
    Ok(got < want)
}

/// The first record, the sample after it, and where the rest begins.
pub(super) struct Head {
    pub(super) first: Vec<String>,
    pub(super) first_line: u64,
    /// Byte offset just after the first record.
    pub(super) body: u64,
    /// Newlines before `body`.
    pub(super) body_lines: u64,
    pub(super) sample: Vec<Vec<String>>,
    /// Bytes from `body` to the end of the sample.
    sample_bytes: usize,
}

/// Reads the head of the file; `None` for files the full reader handles.
pub(super) fn read_head(path: &Path, delimiter: u8, tune: Tune) -> Result<Option<Head>> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut buf = Vec::new();
    let mut want = tune.block;
    loop {
        let more = want - buf.len();
        let eof = fill(&mut file, &mut buf, more, path)?;
        let bad_start = [&[0xFF, 0xFE][..], &[0xFE, 0xFF], &[0, 0, 0xFE, 0xFF]];
        if bad_start.iter().any(|b| buf.starts_with(b)) || buf.contains(&0) {
            return Ok(None);
        }
        match parse_head(&buf, eof, delimiter) {
            HeadStep::Done(h) => return Ok(h),
            HeadStep::Short(h) if eof || buf.len() >= HEAD_MAX => return Ok(h),
            HeadStep::Short(_) | HeadStep::More if !eof => want *= 2,
            HeadStep::Short(_) | HeadStep::More => return Ok(None),
        }
    }
}

/// The most bytes read to find the sample.
const HEAD_MAX: usize = 64 << 20;

enum HeadStep {
    /// The first record and a full sample (or the whole file).
    Done(Option<Head>),
    /// The first record and fewer than [`SAMPLE`] rows: the buffer ended.
    Short(Option<Head>),
    /// Not even one row after the first record.
    More,
}

fn parse_head(buf: &[u8], eof: bool, delimiter: u8) -> HeadStep {
    let mut sc = Scanner::new(delimiter);
    sc.count_lone_cr(buf);
    let (mut pos, mut nl, mut complete) = (0, 0, true);
    let mut first: Option<(Vec<String>, u64, usize, u64)> = None;
    let mut sample = Vec::new();
    loop {
        match sc.next(buf, pos, eof) {
            Step::Record {
                start,
                next,
                newlines_before,
                newlines_in,
            } => {
                nl += newlines_before;
                let line = nl + 1;
                nl += newlines_in;
                pos = next;
                if sc.is_blank(buf) {
                    continue;
                }
                let Some(cells) = sc.strings(buf) else {
                    return HeadStep::Done(None);
                };
                match &first {
                    None if start == 0 || !buf[start..].starts_with(super::scan::BOM) => {
                        first = Some((cells, line, next, nl));
                    }
                    None => return HeadStep::Done(None),
                    Some(f) if f.0.len() != cells.len() => return HeadStep::Done(None),
                    Some(_) => sample.push(cells),
                }
                if sample.len() >= SAMPLE {
                    break;
                }
            }
            // The full reader names the line.
            Step::Unclosed { .. } => return HeadStep::Done(None),
            Step::Incomplete { .. } | Step::End { .. } if !eof && (first.is_none() || sample.is_empty()) => {
                return HeadStep::More;
            }
            Step::Incomplete { .. } | Step::End { .. } => {
                complete = eof;
                break;
            }
        }
    }
    let Some((first, first_line, body, body_lines)) = first else {
        return HeadStep::Done(None);
    };
    let head = Some(Head {
        first,
        first_line,
        body: body as u64,
        body_lines,
        sample,
        sample_bytes: pos.saturating_sub(body),
    });
    if complete {
        HeadStep::Done(head)
    } else {
        HeadStep::Short(head)
    }
}

/// A column being read.
pub(super) enum Acc {
    Num(f64, Vec<f32>),
    Text(TextBuilder),
    Skip,
}

/// The columns of the file after its first record.
pub(super) struct Body {
    pub(super) cols: Vec<Acc>,
    pub(super) rows: usize,
    /// `(row, line)` breaks, rows counted after the first record.
    pub(super) breaks: Vec<(usize, u64)>,
    pub(super) bad: Vec<bool>,
}

impl Body {
    pub(super) fn new(plan: &[Plan], reserve: usize) -> Self {
        let cols = plan
            .iter()
            .map(|p| match p {
                Plan::Num(shift) => Acc::Num(*shift, Vec::with_capacity(reserve)),
                Plan::Text => Acc::Text(TextBuilder::with_capacity(reserve)),
                Plan::Skip => Acc::Skip,
            })
            .collect();
        Body {
            cols,
            rows: 0,
            breaks: Vec::new(),
            bad: vec![false; plan.len()],
        }
    }

    /// Appends a verified part whose range starts after `base` newlines.
    pub(super) fn append(&mut self, mut part: Part, base: u64) {
        for (j, acc) in self.cols.iter_mut().enumerate() {
            match acc {
                Acc::Num(_, v) => v.extend_from_slice(&part.num[j]),
                Acc::Text(t) => t.append(std::mem::take(&mut part.text[j])),
                Acc::Skip => {}
            }
            self.bad[j] |= part.bad[j];
        }
        for &(r, rel) in &part.breaks {
            let (row, line) = (self.rows + r, 1 + base + rel);
            let regular = self
                .breaks
                .last()
                .is_some_and(|&(r0, l0)| l0 + (row - r0) as u64 == line);
            if !regular {
                self.breaks.push((row, line));
            }
        }
        self.rows += part.rows;
    }
}

/// Reads the records from byte `body` (after `body_lines` newlines) on.
/// `None` when the full reader must take over.
fn read_body(
    path: &Path,
    head: &Head,
    plan: &[Plan],
    delimiter: u8,
    reserve: usize,
    tune: Tune,
) -> Result<Option<Body>> {
    let mut file = File::open(path).map_err(io_error(path))?;
    file.seek(SeekFrom::Start(head.body)).map_err(io_error(path))?;
    let mut out = Body::new(plan, reserve);
    let (mut buf, mut base, mut want) = (Vec::with_capacity(tune.block), head.body_lines, tune.block);
    let total = file.metadata().map_or(0, |m| m.len());
    let mut bytes = head.body;
    loop {
        let before = buf.len();
        let eof = fill(
            &mut file,
            &mut buf,
            want.saturating_sub(before).max(tune.min_range),
            path,
        )?;
        bytes += (buf.len() - before) as u64;
        if buf[before..].contains(&0) {
            return Ok(None);
        }
        let job = Job {
            block: &buf,
            eof,
            plan,
            delimiter,
        };
        let parts = parse_block(&job, tune.min_range)?;
        if parts.iter().any(|p| p.slow) {
            return Ok(None);
        }
        let rows_before = out.rows;
        let (mut next, mut incomplete) = (0, false);
        for (i, part) in parts.into_iter().enumerate() {
            // `base`: newlines before this range's start (for later ranges,
            // the newlines before its first record, less those in its lead).
            let from_base = if i == 0 { base } else { base - part.lead };
            (next, incomplete) = (part.next, part.incomplete);
            base = from_base + part.to_next;
            out.append(part, from_base);
        }
        let done = eof && !incomplete;
        report(ReadProgress {
            bytes,
            total,
            rows: out.rows as u64,
            done,
        });
        if done {
            return Ok(Some(out));
        }
        buf.drain(..next);
        if out.rows == rows_before && buf.len() >= want {
            want *= 2; // one record longer than the block
        }
    }
}

/// The block's records, parsed in one range per thread and verified.
pub(super) fn parse_block(job: &Job<'_>, min_range: usize) -> Result<Vec<Part>> {
    let len = job.block.len();
    let n = crate::parallel::threads().min(len / min_range).max(1);
    let mut starts = vec![0];
    for i in 1..n {
        let cut = (len * i / n).max(starts[starts.len() - 1]);
        match memchr::memchr(b'\n', &job.block[cut..]) {
            Some(k) if cut + k + 1 < len => starts.push(cut + k + 1),
            _ => break,
        }
    }
    starts.dedup();
    let record_start = |mut s: usize| {
        while s < len && matches!(job.block[s], b'\r' | b'\n') {
            s += 1;
        }
        s
    };
    let stops: Vec<usize> = (1..starts.len())
        .map(|i| record_start(starts[i]))
        .chain([usize::MAX])
        .collect();
    let slots: Vec<Mutex<Option<Part>>> = starts.iter().map(|_| Mutex::new(None)).collect();
    crate::parallel::run(starts.len(), &|i| {
        let part = parse_part(job, starts[i], stops[i]);
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(part);
        }
    });
    let mut parts = Vec::with_capacity(starts.len());
    for slot in slots {
        let part = slot.into_inner().ok().flatten();
        parts.push(part.ok_or_else(|| Error::config("threads", "a CSV reader thread failed"))?);
    }
    for i in 1..parts.len() {
        let prev = &parts[i - 1];
        if prev.slow || prev.incomplete || prev.next >= len {
            parts.truncate(i);
            break;
        }
        if prev.next != parts[i].first {
            // The range began inside a quoted field: parse it from where
            // the previous range really ended.
            let from = prev.next;
            parts[i] = parse_part(job, from, stops[i]);
            count(1, 0);
        }
    }
    Ok(parts)
}

/// The header rule of [`read_csv`] on the first record and the typed
/// columns of the rest.
pub(super) fn detect_header(first: &[String], cols: &[Column], rows: usize) -> bool {
    if first.iter().any(|c| is_number(c)) {
        return false;
    }
    if rows == 0 {
        return true;
    }
    let number_below = cols.iter().any(|c| match c {
        Column::Num { values, .. } => values.iter().any(|v| !v.is_nan()),
        Column::Text { dict, .. } => dict.iter().any(|s| is_number(s)),
    });
    if number_below {
        return true;
    }
    let recurs = first.iter().zip(cols).any(|(f, c)| match c {
        Column::Text { dict, .. } => dict.contains(f),
        Column::Num { .. } => false,
    });
    let repeats = cols.iter().any(|c| match c {
        Column::Text { dict, codes } => codes.len() > dict.len(),
        Column::Num { .. } => false,
    });
    !recurs && repeats
}

pub(super) fn finish(acc: Acc) -> Column {
    match acc {
        Acc::Num(shift, values) => Column::Num { shift, values },
        Acc::Text(t) => t.finish(),
        Acc::Skip => Column::Text {
            dict: Vec::new(),
            codes: Vec::new(),
        },
    }
}

/// The fast reader; `None` hands the file to [`read_csv`].
fn read_fast(path: &Path, opts: &CsvOptions, tune: Tune) -> Result<Option<Table>> {
    let Some(head) = read_head(path, opts.delimiter, tune)? else {
        return Ok(None);
    };
    let ncols = head.first.len();
    let names = given_names(&head.first, opts);
    let plan: Vec<Plan> = (0..ncols)
        .map(|j| {
            let name = names.as_ref().and_then(|n| n.get(j)).map(String::as_str);
            build::plan_of_sample(name, head.sample.iter().map(|r| r[j].as_str()), &opts.shifts)
        })
        .collect();
    let size = std::fs::metadata(path).map_err(io_error(path))?.len();
    let reserve = match head.sample.len() {
        0 => 0,
        n => {
            let per_row = (head.sample_bytes / n).max(1) as u64;
            (size.saturating_sub(head.body) / per_row + n as u64 + 16).min(1 << 32) as usize * 21 / 20
        }
    };
    let Some(body) = read_body(path, &head, &plan, opts.delimiter, reserve, tune)? else {
        return Ok(None);
    };
    let (rows, breaks, mut bad) = (body.rows, body.breaks, body.bad);
    let mut cols: Vec<Column> = body.cols.into_iter().map(finish).collect();
    let has_header = opts.header.unwrap_or_else(|| detect_header(&head.first, &cols, rows));
    if has_header && rows == 0 {
        return Ok(None); // a lone header: read_csv says so
    }
    if !has_header {
        for (j, c) in cols.iter().enumerate() {
            if matches!(c, Column::Num { .. }) && clean_number(&head.first[j]).is_none() {
                bad[j] = true;
            }
        }
    }
    if bad.iter().any(|&b| b) {
        let plan2: Vec<Plan> = bad.iter().map(|&b| if b { Plan::Text } else { Plan::Skip }).collect();
        let Some(again) = read_body(path, &head, &plan2, opts.delimiter, rows, tune)? else {
            return Ok(None);
        };
        for (j, acc) in again.cols.into_iter().enumerate() {
            if bad[j] {
                cols[j] = finish(acc);
            }
        }
    }
    let columns = if has_header {
        match header_names(&head.first) {
            Ok(names) => names,
            Err(_) => return Ok(None),
        }
    } else {
        (0..ncols).map(|j| format!("col{j}")).collect()
    };
    let mut table = Table {
        path: path.to_path_buf(),
        columns,
        has_header,
        cols,
        rows,
        breaks,
        columnar: false,
        row_base: 0,
        file_columns: Vec::new(),
    };
    if !has_header {
        prepend_first(&mut table, &head.first, head.first_line);
    }
    Ok(Some(table))
}

/// The column names of a file whose first record is `first`, where shifts
/// are given and the header is known (`None` otherwise: the sample's shifts).
pub(super) fn given_names(first: &[String], opts: &CsvOptions) -> Option<Vec<String>> {
    match (opts.shifts.is_some(), opts.header) {
        (true, Some(true)) => header_names(first).ok(),
        (true, Some(false)) => Some((0..first.len()).map(|j| format!("col{j}")).collect()),
        _ => None,
    }
}

/// Makes the first record data row 0.
pub(super) fn prepend_first(t: &mut Table, first: &[String], line: u64) {
    for (c, cell) in t.cols.iter_mut().zip(first) {
        match c {
            Column::Num { shift, values } => {
                let v = clean_number(cell).flatten().map_or(f32::NAN, |v| (v - *shift) as f32);
                values.insert(0, v);
            }
            Column::Text { dict, codes } => {
                let k = match dict.iter().position(|s| s == cell) {
                    Some(k) => k,
                    None => {
                        dict.push(cell.clone());
                        dict.len() - 1
                    }
                };
                codes.insert(0, k as u32);
            }
        }
    }
    let mut breaks = vec![(0, line)];
    for &(r, l) in &t.breaks {
        let regular = breaks.last().is_some_and(|&(r0, l0)| l0 + (r + 1 - r0) as u64 == l);
        if !regular {
            breaks.push((r + 1, l));
        }
    }
    t.breaks = breaks;
    t.rows += 1;
}
