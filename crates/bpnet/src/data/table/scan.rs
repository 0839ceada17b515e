//! CSV records of a byte range, one at a time, through `csv-core` (the
//! tokenizer under the `csv` crate, so quoting, `""` escapes, CR/LF/CRLF
//! line ends and blank-line skipping are the same as in [`super::super::csv`]),
//! with no allocation per field: fields are slices of one reused buffer.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

/// Whether the last record of a file, `record` (from its first byte to the
/// end of the file), leaves a quoted field open. The rules of `csv-core`'s
/// defaults: a `"` opens a quoted field only as the field's first byte;
/// inside one, `""` is a quote and a lone `"` closes it; a line end outside
/// quotes ends the record. `csv-core` and the `csv` crate accept an open
/// quote at the end of the input and return everything after it as one
/// field; bpnet refuses such a file instead of losing its rows.
pub(crate) fn unclosed_quote(record: &[u8], delimiter: u8) -> bool {
    // `csv-core` strips a byte order mark at the start of its input.
    let record = record.strip_prefix(BOM).unwrap_or(record);
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        Start,
        Plain,
        Quoted,
        QuoteInQuoted,
    }
    let mut s = S::Start;
    for &b in record {
        s = match (s, b) {
            (S::Quoted, b'"') => S::QuoteInQuoted,
            (S::Quoted, _) => S::Quoted,
            (S::QuoteInQuoted, b'"') => S::Quoted,
            (S::Start, b'"') => S::Quoted,
            (_, b'\r' | b'\n') => S::Start,
            (_, d) if d == delimiter => S::Start,
            _ => S::Plain,
        };
    }
    s == S::Quoted
}

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What [`Scanner::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A record: its first byte (after line ends), where the input after it
    /// continues, and the line ends before its first byte and inside it
    /// (`\n`; or lone `\r`, see [`Scanner::count_lone_cr`]).
    Record {
        start: usize,
        next: usize,
        newlines_before: u64,
        newlines_in: u64,
    },
    /// The record beginning at `start` runs past the end of the input (more
    /// of the file is still to come); `newlines_before` as above.
    Incomplete { start: usize, newlines_before: u64 },
    /// Nothing but line ends is left.
    End { newlines_before: u64 },
    /// The record beginning at `start` opens a quoted field that the end
    /// of the file leaves open ([`unclosed_quote`]): a damaged file, whose
    /// rest the tokenizer would read as one field.
    Unclosed { start: usize, newlines_before: u64 },
}

/// Reads records out of byte slices; reused from record to record.
pub(crate) struct Scanner {
    rdr: Reader,
    delimiter: u8,
    out: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
    /// The last record came from [`Scanner::next_plain`]: its fields are
    /// `spans` of the input.
    plain: bool,
    spans: Vec<(usize, usize)>,
    /// A lone `\r` ends a line ([`Scanner::count_lone_cr`]).
    cr_lines: bool,
}

impl Scanner {
    /// A scanner for `delimiter`-separated records.
    pub(crate) fn new(delimiter: u8) -> Self {
        Scanner {
            rdr: ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            out: vec![0; 4096],
            ends: vec![0; 64],
            fields: 0,
            plain: false,
            spans: Vec::new(),
            cr_lines: false,
        }
    }

    /// Counts a lone `\r` as a line end when `input` holds no `\n`: a file
    /// with classic Mac line ends, whose errors all said "line 1". In files
    /// with `\n` a lone `\r` (in a quoted cell, or `\r\r\n` from a file
    /// converted twice) is not counted, as editors and `wc -l` count. Called
    /// once per input (it scans it).
    pub(crate) fn count_lone_cr(&mut self, input: &[u8]) {
        self.cr_lines = memchr::memchr(b'\n', input).is_none();
    }

    /// Starts again as on a fresh input (after an incomplete record).
    fn reset(&mut self) {
        self.rdr = ReaderBuilder::new().delimiter(self.delimiter).build();
    }

    /// The record starting at or after `pos` in `input`; `eof` says the
    /// input ends where the file does. The reader strips a byte order mark
    /// only at the first record it reads.
    pub(crate) fn next(&mut self, input: &[u8], pos: usize, eof: bool) -> Step {
        let mut start = pos;
        let mut newlines_before = 0;
        while start < input.len() && matches!(input[start], b'\r' | b'\n') {
            newlines_before += u64::from(ends_line(input, start, eof, self.cr_lines));
            start += 1;
        }
        if start >= input.len() && trailing_cr(input, eof, self.cr_lines) {
            // Read again from the `\r` with the bytes that follow it.
            return Step::Incomplete {
                start: input.len() - 1,
                newlines_before,
            };
        }
        if start >= input.len() {
            return Step::End { newlines_before };
        }
        self.plain = false;
        let (mut at, mut outlen, mut endlen) = (pos, 0, 0);
        loop {
            let rest = &input[at..];
            if rest.is_empty() && !eof {
                self.reset();
                return Step::Incomplete { start, newlines_before };
            }
            let (res, nin, nout, nend) = self
                .rdr
                .read_record(rest, &mut self.out[outlen..], &mut self.ends[endlen..]);
            at += nin;
            outlen += nout;
            endlen += nend;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    if eof && at == input.len() && unclosed_quote(&input[start..], self.delimiter) {
                        return Step::Unclosed { start, newlines_before };
                    }
                    self.fields = endlen;
                    // Counted here: `csv-core` counts `\n` only, and a
                    // record ended by a lone `\r` consumes it uncounted.
                    if at == input.len() && trailing_cr(input, eof, self.cr_lines) {
                        self.reset();
                        return Step::Incomplete { start, newlines_before };
                    }
                    let newlines_in = (start..at).filter(|&i| ends_line(input, i, eof, self.cr_lines)).count() as u64;
                    return Step::Record {
                        start,
                        next: at,
                        newlines_before,
                        newlines_in,
                    };
                }
                ReadRecordResult::End => return Step::End { newlines_before },
            }
        }
    }

    /// [`Scanner::next`] for input with no quote character, where a record
    /// is simply the bytes up to a line end and fields are split at the
    /// delimiter: the same records as `csv-core` makes of such input (which
    /// ends a record at `\r` or `\n`), found with `memchr` and not copied.
    pub(crate) fn next_plain(&mut self, input: &[u8], pos: usize, eof: bool) -> Step {
        let mut start = pos;
        let mut newlines_before = 0;
        while start < input.len() && matches!(input[start], b'\r' | b'\n') {
            newlines_before += u64::from(ends_line(input, start, eof, self.cr_lines));
            start += 1;
        }
        if start >= input.len() && trailing_cr(input, eof, self.cr_lines) {
            // Read again from the `\r` with the bytes that follow it.
            return Step::Incomplete {
                start: input.len() - 1,
                newlines_before,
            };
        }
        if start >= input.len() {
            return Step::End { newlines_before };
        }
        let end = match memchr::memchr2(b'\n', b'\r', &input[start..]) {
            Some(k) => start + k,
            None if eof => input.len(),
            None => return Step::Incomplete { start, newlines_before },
        };
        self.spans.clear();
        let mut from = start;
        for k in memchr::memchr_iter(self.delimiter, &input[start..end]) {
            self.spans.push((from, start + k));
            from = start + k + 1;
        }
        self.spans.push((from, end));
        (self.plain, self.fields) = (true, self.spans.len());
        Step::Record {
            start,
            next: end,
            newlines_before,
            newlines_in: 0,
        }
    }

    /// Fields in the last record.
    pub(crate) fn len(&self) -> usize {
        self.fields
    }

    /// Field `j` of the last record read from `input`, ASCII whitespace
    /// trimmed (as the `csv` crate's `Trim::All`).
    pub(crate) fn field<'a>(&'a self, input: &'a [u8], j: usize) -> &'a [u8] {
        let field = if self.plain {
            let (from, to) = self.spans[j];
            &input[from..to]
        } else {
            let from = if j == 0 { 0 } else { self.ends[j - 1] };
            &self.out[from..self.ends[j]]
        };
        field.trim_ascii()
    }

    /// True when the last record is a blank line (one empty field).
    pub(crate) fn is_blank(&self, input: &[u8]) -> bool {
        self.fields == 1 && self.field(input, 0).is_empty()
    }

    /// The last record's fields as trimmed strings, `None` if one is not
    /// UTF-8.
    pub(crate) fn strings(&self, input: &[u8]) -> Option<Vec<String>> {
        (0..self.fields)
            .map(|j| text(self.field(input, j)).map(str::to_string))
            .collect()
    }
}

/// A field as trimmed text (as [`super::super::csv`] decodes it), `None` when
/// it is not UTF-8.
pub(crate) fn text(field: &[u8]) -> Option<&str> {
    std::str::from_utf8(field).ok().map(str::trim)
}

/// Powers of ten that are exact in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A plain decimal (`-12.345`, `+7`, `.5`: no exponent, at most 19 digits)
/// whose digits make an integer `m <= 2^53` and with at most 22 decimals:
/// `m / 10^k`, which is then exactly the correctly rounded value `str::parse`
/// gives (both operands are exact, and IEEE division rounds correctly; the
/// "fast path" of Clinger 1990). `None` for anything else.
pub(crate) fn fast_number(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut m, mut n, mut decimals, mut dot) = (0u64, 0usize, 0usize, false);
    for &c in digits {
        match c {
            b'0'..=b'9' if n < 19 => {
                m = m * 10 + u64::from(c - b'0');
                n += 1;
                decimals += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if n == 0 || m > 1 << 53 || decimals >= POW10.len() {
        return None;
    }
    let v = m as f64 / POW10[decimals];
    Some(if neg { -v } else { v })
}

/// Whether byte `i` of `input` ends a line: a `\n`, and with `cr_lines`
/// a `\r` not followed by `\n` (see [`Scanner::count_lone_cr`]). A `\r`
/// closing an input that the file goes on after is undecided: see
/// [`trailing_cr`].
fn ends_line(input: &[u8], i: usize, eof: bool, cr_lines: bool) -> bool {
    match (input[i], input.get(i + 1)) {
        (b'\n', _) => true,
        (b'\r', Some(&next)) => cr_lines && next != b'\n',
        (b'\r', None) => cr_lines && eof,
        _ => false,
    }
}

/// Whether `input` ends in a `\r` whose line end is undecided until the
/// next byte is read (`\n` makes it half of a CRLF).
fn trailing_cr(input: &[u8], eof: bool, cr_lines: bool) -> bool {
    cr_lines && !eof && input.last() == Some(&b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_quotes_are_told_from_closed_and_literal_ones() {
        for (rec, open) in [
            ("a,\"b", true),
            ("\"a", true),
            ("a,\"b\nc,d\n", true),
            ("a,\"b\"\"c", true),
            ("a,\"b\"", false),
            ("a,\"b\"\"\"", false),
            ("a,\"b\nc\"\n", false),
            ("a,b\"c", false),
            ("a,b\"", false),
            ("a,\"b\"c\"", false),
            ("\"\"", false),
            ("", false),
        ] {
            assert_eq!(unclosed_quote(rec.as_bytes(), b','), open, "{rec:?}");
        }
        assert!(
            unclosed_quote(b"\xEF\xBB\xBF\"a,b\n1,2\n", b','),
            "after a byte order mark"
        );
        assert!(unclosed_quote(b"a;\"b,c", b';'));
        assert!(!unclosed_quote(b"a,\"b;c", b';'), "the quote is inside a field there");
    }

    /// Every string the fast path takes parses to the same bits as `str::parse`.
    #[test]
    fn fast_numbers_are_exactly_what_parse_gives() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut taken, mut total) = (0, 0);
        for _ in 0..200_000 {
            let len = (next() % 21) as usize;
            let mut s = String::new();
            match next() % 4 {
                0 => s.push('-'),
                1 => s.push('+'),
                _ => {}
            }
            for _ in 0..len {
                s.push(char::from(b'0' + (next() % 10) as u8));
            }
            if len > 0 && next() % 3 > 0 {
                let at = s.len() - (next() as usize % len);
                s.insert(at, '.');
            }
            total += 1;
            if let Some(v) = fast_number(s.as_bytes()) {
                taken += 1;
                let want: f64 = s.parse().unwrap();
                assert_eq!(v.to_bits(), want.to_bits(), "{s}");
            }
        }
        assert!(taken > total / 2, "{taken} of {total}");
        for s in [
            "",
            "-",
            ".",
            "1e5",
            "1.2.3",
            "inf",
            "nan",
            "0x10",
            "12345678901234567890",
            " 1",
        ] {
            assert_eq!(fast_number(s.as_bytes()), None, "{s}");
        }
        assert_eq!(fast_number(b"-0").map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(fast_number(b"5."), Some(5.0));
        assert_eq!(fast_number(b".25"), Some(0.25));
    }
}
