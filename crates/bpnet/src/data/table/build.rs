//! Columns built from CSV fields: the number test, the type chosen on a
//! sample, dictionary-encoded text, and one byte range parsed into column
//! parts ([`parse_part`]), the unit of work of the parallel reader.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::scan::{BOM, Scanner, Step, fast_number, text};
use super::{ABSURD, Column, FEW_VALUES};
use crate::data::csv::{Shifts, is_missing};

/// `Some(None)` for a missing token, `Some(Some(v))` for a number that is
/// finite, not NaN and at most 1e30 in magnitude; `None` for anything else.
pub(crate) fn clean_number(cell: &str) -> Option<Option<f64>> {
    if is_missing(cell) {
        return Some(None);
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= ABSURD => Some(Some(v)),
        _ => None,
    }
}

/// The shift of a numeric column judged on its sample cells, `None` when
/// the column is text: a cell that is not a clean number, no number at
/// all, or at most [`FEW_VALUES`] distinct cells seen twice each on average.
/// The shift is the mean of
/// the sample's numbers rounded to an integer.
pub(crate) fn sample_kind<'a>(cells: impl Iterator<Item = &'a str>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    let mut distinct = std::collections::HashSet::new();
    for cell in cells {
        if let Some(v) = clean_number(cell)? {
            sum += v;
            n += 1;
        }
        if distinct.len() <= FEW_VALUES {
            distinct.insert(cell);
        }
    }
    shift_of_sample(sum, n, distinct.len())
}

/// The plan of a column from its sample cells: text, or numbers as offsets
/// from a shift ([`column_shift`]).
pub(crate) fn plan_of_sample<'a>(
    name: Option<&str>,
    cells: impl Iterator<Item = &'a str> + Clone,
    shifts: &Shifts,
) -> Plan {
    column_shift(name, cells, shifts).map_or(Plan::Text, Plan::Num)
}

/// The shift of a column from its sample cells, `None` for text: where
/// `shifts` gives one for its `name` (a file read against a model, whose
/// preprocessing reads the column as numbers), that shift whenever every
/// sample cell is a number or missing (so that the class-like rule, which
/// depends on the other rows, does not decide how a row's number is
/// stored), or text where it says text; else the sample's own
/// ([`sample_kind`]).
pub(crate) fn column_shift<'a>(
    name: Option<&str>,
    cells: impl Iterator<Item = &'a str> + Clone,
    shifts: &Shifts,
) -> Option<f64> {
    match name.and_then(|n| shifts.get(n)) {
        Some(Some(given)) => cells.clone().all(|c| clean_number(c).is_some()).then_some(given),
        Some(None) => None,
        None => sample_kind(cells),
    }
}

/// The rule of [`sample_kind`] on a sample whose `n` numbers add up to
/// `sum` and which holds `distinct` distinct cells (a missing cell counts
/// as one; counting may stop past [`FEW_VALUES`]): few values, each seen
/// twice on average, are class-like and kept as text (`None`); a short
/// sample of distinct numbers, as in a 10-row wide table, is numeric.
/// Shared with arrays ([`crate::data::preprocess::DenseMatrix::csv_shifts`])
/// so that an array and its CSV are typed alike.
pub(crate) fn shift_of_sample(sum: f64, n: usize, distinct: usize) -> Option<f64> {
    let class_like = distinct <= FEW_VALUES && 2 * distinct <= n;
    (n > 0 && !class_like).then(|| (sum / n as f64).round())
}

/// A fast non-cryptographic hash for the dictionaries (FxHash's mixing).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A text column being built: codes in order of first appearance.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextBuilder {
    map: FxMap<Box<str>, u32>,
    /// Codes of the numbers [`TextBuilder::push_number`] has seen, by
    /// their bits (at most [`NUMBER_CACHE`] of them).
    #[cfg(feature = "columnar")]
    numbers: FxMap<u64, u32>,
    pub(crate) codes: Vec<u32>,
}

/// Distinct numbers whose codes a [`TextBuilder`] remembers.
#[cfg(feature = "columnar")]
const NUMBER_CACHE: usize = 1 << 16;

/// The text of a number as a CSV cell would hold it: as Rust prints it,
/// empty for missing (NaN).
#[cfg(feature = "columnar")]
pub(crate) fn number_text(x: f64) -> String {
    if x.is_nan() { String::new() } else { x.to_string() }
}

impl TextBuilder {
    /// An empty column with room for `rows` cells.
    pub(crate) fn with_capacity(rows: usize) -> Self {
        TextBuilder {
            codes: Vec::with_capacity(rows),
            ..TextBuilder::default()
        }
    }

    /// The code of `s`, added to the dictionary if new.
    pub(crate) fn code(&mut self, s: &str) -> u32 {
        if let Some(&k) = self.map.get(s) {
            return k;
        }
        let k = self.map.len() as u32;
        self.map.insert(s.into(), k);
        k
    }

    /// Appends a cell.
    pub(crate) fn push(&mut self, s: &str) {
        let k = self.code(s);
        self.codes.push(k);
    }

    /// Appends a number as the cell [`number_text`] writes, formatting
    /// each distinct value once (a class label read as a number).
    #[cfg(feature = "columnar")]
    pub(crate) fn push_number(&mut self, x: f64) {
        let k = match self.numbers.get(&x.to_bits()) {
            Some(&k) => k,
            None => {
                let k = self.code(&number_text(x));
                if self.numbers.len() < NUMBER_CACHE {
                    self.numbers.insert(x.to_bits(), k);
                }
                k
            }
        };
        self.codes.push(k);
    }

    /// Appends `other`'s cells (a later part of the same column).
    pub(crate) fn append(&mut self, mut other: TextBuilder) {
        let codes = std::mem::take(&mut other.codes);
        let mut remap = vec![0u32; other.map.len()];
        for (s, k) in other.sorted() {
            remap[k as usize] = self.code(&s);
        }
        self.codes.extend(codes.iter().map(|&k| remap[k as usize]));
    }

    /// The dictionary in code order.
    fn sorted(self) -> Vec<(String, u32)> {
        let mut entries: Vec<(String, u32)> = self.map.into_iter().map(|(s, k)| (s.into(), k)).collect();
        entries.sort_unstable_by_key(|e| e.1);
        entries
    }

    /// The finished column.
    pub(crate) fn finish(mut self) -> Column {
        let codes = std::mem::take(&mut self.codes);
        let dict = self.sorted().into_iter().map(|e| e.0).collect();
        Column::Text { dict, codes }
    }
}

/// What the reader keeps of each column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plan {
    /// Numbers, as offsets from this shift.
    Num(f64),
    /// Dictionary-encoded text.
    Text,
    /// Nothing (the column was read already).
    Skip,
}

/// What to parse: a block of the file and how to keep each column.
pub(crate) struct Job<'a> {
    pub(crate) block: &'a [u8],
    pub(crate) eof: bool,
    pub(crate) plan: &'a [Plan],
    pub(crate) delimiter: u8,
}

/// The records of one byte range of a block, column by column.
#[derive(Debug, Default)]
pub(crate) struct Part {
    /// Per column: the numbers (numeric plan) or nothing.
    pub(crate) num: Vec<Vec<f32>>,
    /// Per column: the text (text plan) or nothing.
    pub(crate) text: Vec<TextBuilder>,
    /// Data rows parsed.
    pub(crate) rows: usize,
    /// `(row, newlines from the range start to the row's first byte)` at
    /// the first row and wherever a row is not on the line after the last.
    pub(crate) breaks: Vec<(usize, u64)>,
    /// Where the first record at or after the range start begins.
    pub(crate) first: usize,
    /// Line ends (as [`Step::Record`] counts them) from the range start to `first`.
    pub(crate) lead: u64,
    /// Where the record after the last one parsed begins (or the block end).
    pub(crate) next: usize,
    /// Newlines from the range start to `next`.
    pub(crate) to_next: u64,
    /// Per column: a numeric column met a cell that is not a clean number.
    pub(crate) bad: Vec<bool>,
    /// Something only the full reader reports (a ragged row, invalid
    /// UTF-8, a byte order mark inside the file): take the slow path.
    pub(crate) slow: bool,
    /// The last record runs past the block: `next` is where it starts.
    pub(crate) incomplete: bool,
}

/// Parses the records of `job.block` that begin in `from..stop`.
pub(crate) fn parse_part(job: &Job<'_>, from: usize, stop: usize) -> Part {
    let ncols = job.plan.len();
    let mut p = Part {
        num: vec![Vec::new(); ncols],
        text: vec![TextBuilder::default(); ncols],
        bad: vec![false; ncols],
        ..Part::default()
    };
    let mut sc = Scanner::new(job.delimiter);
    sc.count_lone_cr(job.block);
    // Without quotes, records are lines and fields are split at delimiters.
    let plain = memchr::memchr(b'"', &job.block[from.min(job.block.len())..]).is_none();
    let (mut pos, mut nl, mut last_line, mut seen) = (from, 0u64, None, false);
    loop {
        let step = if plain {
            sc.next_plain(job.block, pos, job.eof)
        } else {
            sc.next(job.block, pos, job.eof)
        };
        match step {
            Step::End { newlines_before } => {
                (p.next, p.to_next) = (job.block.len(), nl + newlines_before);
                break;
            }
            Step::Incomplete { start, newlines_before } => {
                (p.next, p.to_next, p.incomplete) = (start, nl + newlines_before, start < stop);
                break;
            }
            // The full reader names the line.
            Step::Unclosed { start, newlines_before } => {
                nl += newlines_before;
                if !seen {
                    (p.first, p.lead) = (start, nl);
                }
                (seen, p.slow) = (true, true);
                break;
            }
            Step::Record {
                start,
                next,
                newlines_before,
                newlines_in,
            } => {
                nl += newlines_before;
                if !seen {
                    (seen, p.first, p.lead) = (true, start, nl);
                }
                if start >= stop {
                    (p.next, p.to_next) = (start, nl);
                    break;
                }
                if job.block[start..].starts_with(BOM) {
                    p.slow = true;
                    break;
                }
                if !sc.is_blank(job.block) {
                    if sc.len() != ncols || !add_row(&mut p, &sc, job) {
                        p.slow = true;
                        break;
                    }
                    if last_line.is_none_or(|l| l + 1 != nl) {
                        p.breaks.push((p.rows, nl));
                    }
                    last_line = Some(nl);
                    p.rows += 1;
                }
                nl += newlines_in;
                pos = next;
            }
        }
    }
    if !seen {
        (p.first, p.lead) = (p.next, p.to_next);
    }
    p
}

/// Adds the scanner's record to the part; false when a field is not UTF-8.
fn add_row(p: &mut Part, sc: &Scanner, job: &Job<'_>) -> bool {
    for (j, plan) in job.plan.iter().enumerate() {
        match plan {
            Plan::Skip => {}
            Plan::Num(shift) => {
                let field = sc.field(job.block, j);
                let v = if field.is_empty() {
                    f32::NAN
                } else if let Some(v) = fast_number(field) {
                    (v - shift) as f32
                } else {
                    let Some(cell) = text(field) else {
                        return false;
                    };
                    match clean_number(cell) {
                        Some(Some(v)) => (v - shift) as f32,
                        Some(None) => f32::NAN,
                        None => {
                            p.bad[j] = true;
                            f32::NAN
                        }
                    }
                };
                p.num[j].push(v);
            }
            Plan::Text => {
                let Some(cell) = text(sc.field(job.block, j)) else {
                    return false;
                };
                p.text[j].push(cell);
            }
        }
    }
    true
}
