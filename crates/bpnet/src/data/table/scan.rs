//! CSV records of a byte range, one at a time, through `csv-core` (the
//! tokenizer under the `csv` crate, so quoting, `""` escapes, CR/LF/CRLF
//! line ends and blank-line skipping are the same as in [`super::super::csv`]),
//! with no allocation per field: fields are slices of one reused buffer.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What [`Scanner::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A record: its first byte (after line ends), where the input after it
    /// continues, and the `\n` bytes before its first byte and inside it.
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
}

/// Reads records out of byte slices; reused from record to record.
pub(crate) struct Scanner {
    rdr: Reader,
    delimiter: u8,
    out: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
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
        }
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
            newlines_before += u64::from(input[start] == b'\n');
            start += 1;
        }
        if start >= input.len() {
            return Step::End { newlines_before };
        }
        let line0 = self.rdr.line();
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
                    self.fields = endlen;
                    let newlines_in = (self.rdr.line() - line0).saturating_sub(newlines_before);
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

    /// Fields in the last record.
    pub(crate) fn len(&self) -> usize {
        self.fields
    }

    /// Field `j` of the last record, ASCII whitespace trimmed (as the `csv`
    /// crate's `Trim::All`).
    pub(crate) fn field(&self, j: usize) -> &[u8] {
        let from = if j == 0 { 0 } else { self.ends[j - 1] };
        self.out[from..self.ends[j]].trim_ascii()
    }

    /// True when the last record is a blank line (one empty field).
    pub(crate) fn is_blank(&self) -> bool {
        self.fields == 1 && self.field(0).is_empty()
    }

    /// The last record's fields as trimmed strings, `None` if one is not
    /// UTF-8.
    pub(crate) fn strings(&self) -> Option<Vec<String>> {
        (0..self.fields)
            .map(|j| text(self.field(j)).map(str::to_string))
            .collect()
    }
}

/// A field as trimmed text (as [`super::super::csv`] decodes it), `None` when
/// it is not UTF-8.
pub(crate) fn text(field: &[u8]) -> Option<&str> {
    std::str::from_utf8(field).ok().map(str::trim)
}
