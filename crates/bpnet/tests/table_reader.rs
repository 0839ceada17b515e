//! The fast CSV reader (`read_table`) against the full one (`read_csv` +
//! `Table::from_raw`): on every fixture, and on generated files with quoted
//! delimiters, quotes and line ends, CRLF, blank lines, missing cells and
//! late text in numeric columns, read with tiny blocks and several threads
//! so that every block and range boundary is crossed. Same columns, header,
//! types, cells, lines, errors and preprocessing.

use bpnet::data::preprocess::PreprocessSpec;
use bpnet::data::table::{read_table_tuned, reader_counts};
use bpnet::data::{Cell, Column, CsvOptions, Preprocessor, Table, read_csv, read_table};
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// The full reader's table, or its error message.
fn slow(path: &Path, opts: &CsvOptions) -> Result<Table, String> {
    read_csv(path, opts)
        .map(|raw| Table::from_raw(&raw))
        .map_err(|e| e.to_string())
}

/// Asserts two tables hold the same columns, types, cells and lines.
fn assert_same(a: &Table, b: &Table, what: &str) {
    assert_eq!(a.columns, b.columns, "{what}: columns");
    assert_eq!(a.has_header, b.has_header, "{what}: header");
    assert_eq!(a.len(), b.len(), "{what}: rows");
    for r in 0..a.len() {
        assert_eq!(a.line(r), b.line(r), "{what}: line of row {r}");
    }
    for c in 0..a.n_cols() {
        let kind = |t: &Table| matches!(t.cols[c], Column::Num { .. });
        assert_eq!(kind(a), kind(b), "{what}: type of column {c}");
        for r in 0..a.len() {
            let (x, y) = (a.cell(r, c), b.cell(r, c));
            let same = match (x, y) {
                (Cell::Num(p), Cell::Num(q)) => p.to_bits() == q.to_bits(),
                _ => x == y,
            };
            assert!(same, "{what}: cell ({r}, {c}): {x:?} vs {y:?}");
        }
    }
}

/// Both readers on `path`: the same table or the same error; and the same
/// preprocessing fitted on all rows.
fn check(path: &Path, opts: &CsvOptions, block: usize, min_range: usize) {
    let what = format!("{} (block {block})", path.display());
    let fast = read_table_tuned(path, opts, block, min_range).map_err(|e| e.to_string());
    match (fast, slow(path, opts)) {
        (Ok(a), Ok(b)) => {
            assert_same(&a, &b, &what);
            let all: Vec<usize> = (0..a.len()).collect();
            let spec = PreprocessSpec::default();
            let fa = Preprocessor::fit(&a, &all, &spec).map_err(|e| e.to_string());
            let fb = Preprocessor::fit(&b, &all, &spec).map_err(|e| e.to_string());
            assert_eq!(fa, fb, "{what}: fit");
            if let (Ok((pa, _)), Ok((pb, _))) = (fa, fb) {
                let xa = pa.transform_features(&a, &all).map_err(|e| e.to_string());
                let xb = pb.transform_features(&b, &all).map_err(|e| e.to_string());
                assert_eq!(xa, xb, "{what}: features");
                let ya = pa.transform_targets(&a, &all).map_err(|e| e.to_string());
                let yb = pb.transform_targets(&b, &all).map_err(|e| e.to_string());
                assert_eq!(ya, yb, "{what}: targets");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "{what}: error"),
        (a, b) => panic!("{what}: fast {:?} vs full {:?}", a.map(|t| t.len()), b.map(|t| t.len())),
    }
}

#[test]
fn every_fixture_reads_the_same_as_the_full_reader() {
    bpnet::set_threads(3);
    for path in fixtures() {
        for delimiter in [b',', b';'] {
            for header in [None, Some(true), Some(false)] {
                let opts = CsvOptions {
                    header,
                    delimiter,
                    ..CsvOptions::default()
                };
                check(&path, &opts, 16, 1);
                check(&path, &opts, 1 << 20, 1 << 10);
            }
        }
    }
}

/// A deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A CSV of `rows` rows: a float column, an integer label, a quoted text
/// column, and a numeric column that turns to text at row `late` (if any).
fn generated(seed: u64, rows: usize, eol: &str, late: Option<usize>) -> String {
    let mut g = Gen(seed | 1);
    let mut s = format!("\u{feff}x, note ,z,label{eol}");
    let texts = [
        "plain",
        "\"a, b\"",
        "\"say \"\"hi\"\"\"",
        "\"two\nlines\"",
        "\"cr\r\nlf\"",
        " pad ",
        "NA",
    ];
    for r in 0..rows {
        if g.below(50) == 0 {
            s += eol; // a blank line
        }
        let x = match g.below(20) {
            0 => "NA".to_string(),
            1 => String::new(),
            2 => format!("{}e-3", g.below(100_000)),
            _ => format!("{:.4}", (g.below(2_000_000) as f64 - 1e6) / 997.0),
        };
        let note = texts[g.below(texts.len() as u64) as usize];
        let z = match late {
            Some(l) if r == l => "oops".to_string(),
            _ => format!(" {} ", g.below(1000) as f64 / 8.0),
        };
        s += &format!("{x},{note},{z},{}{eol}", g.below(3));
    }
    s
}

#[test]
fn generated_files_read_the_same_across_blocks_ranges_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CsvOptions::default();
    let (reparsed, handed_over) = reader_counts();
    // Line ends: LF, CRLF, and CR alone (classic Mac), whose lines both
    // readers count (they had been counted as one line).
    for (seed, late, eol) in [
        (1, None, "\n"),
        (2, Some(2500), "\r\n"),
        (3, Some(10), "\n"),
        (4, None, "\r\n"),
        (5, Some(1700), "\r"),
        (6, None, "\r"),
    ] {
        let path = dir.path().join(format!("g{seed}.csv"));
        std::fs::write(&path, generated(seed, 3000, eol, late)).unwrap();
        for threads in [1, 2, 4] {
            bpnet::set_threads(threads);
            for (block, min_range) in [(4096, 256), (1000, 64), (64 << 10, 1 << 10)] {
                check(&path, &opts, block, min_range);
            }
        }
        // The numeric column with a late word is text in both readers.
        let t = read_table(&path, &opts).unwrap();
        assert_eq!(matches!(t.cols[2], Column::Text { .. }), late.is_some(), "seed {seed}");
        assert!(matches!(t.cols[0], Column::Num { .. }), "seed {seed}");
    }
    bpnet::set_threads(1);
    // Ranges did begin inside quoted fields, and no file needed the full reader.
    let (r, h) = reader_counts();
    assert!(r > reparsed, "no range was parsed again");
    assert_eq!(h, handed_over, "a generated file went to the full reader");
}

#[test]
fn progress_is_reported_block_by_block() {
    use bpnet::data::table::{ReadProgress, set_read_progress};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    // 12,345 rows of a size no other test's file has.
    let mut text = String::from("a,b\n");
    for i in 0..12_345 {
        text += &format!("{},{}\n", i % 97, i % 2);
    }
    std::fs::write(&path, &text).unwrap();
    let total = text.len() as u64;
    let seen: Arc<Mutex<Vec<ReadProgress>>> = Arc::default();
    let sink = seen.clone();
    set_read_progress(Some(Arc::new(move |p: &ReadProgress| {
        if p.total == total {
            sink.lock().unwrap().push(*p);
        }
    })));
    let t = read_table_tuned(&path, &CsvOptions::default(), 4096, 512).unwrap();
    set_read_progress(None);
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 10, "{} reports", seen.len());
    assert!(
        seen.windows(2)
            .all(|w| w[0].bytes <= w[1].bytes && w[0].rows <= w[1].rows)
    );
    let last = seen.last().unwrap();
    assert_eq!((last.bytes, last.rows, last.done), (total, t.len() as u64, true));
    assert_eq!(seen.iter().filter(|p| p.done).count(), 1);
}

/// The fast reader with each of `blocks` and the chunk reader end with the
/// full reader's error `full` on `path`.
fn every_reader_refuses(path: &Path, opts: &CsvOptions, full: &str, blocks: &[usize]) {
    let what = path.display();
    for &block in blocks {
        let fast = read_table_tuned(path, opts, block, 1).err().map(|e| e.to_string());
        assert_eq!(fast.as_deref(), Some(full), "{what}, block {block}");
    }
    let chunked = (|| {
        let mut r = bpnet::data::table::ChunkReader::open(path, opts, 4 << 10)?;
        while r.next_chunk()?.is_some() {}
        Ok::<_, bpnet::Error>(())
    })();
    assert_eq!(
        chunked.err().map(|e| e.to_string()).as_deref(),
        Some(full),
        "{what}, in chunks"
    );
}

/// A quoted field that the end of the file leaves open is an error naming
/// the line where its record begins, in both readers, in one pass or in
/// chunks (the tokenizer alone would read the rest of the file as one value
/// and drop its rows); quotes inside an unquoted field stay literal.
#[test]
fn an_unclosed_quote_is_an_error_naming_its_line() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv");
    let opts = CsvOptions::default();
    for (file, line) in [("unclosed_quote.csv", 14), ("unclosed_quote_last.csv", 5)] {
        let path = dir.join(file);
        let Err(full) = slow(&path, &opts) else {
            panic!("{file}: the full reader read it");
        };
        assert!(
            full.contains(&format!("line {line}: a quoted field opens")) && full.contains(file),
            "{file}: {full}"
        );
        every_reader_refuses(&path, &opts, &full, &[16, 64, 1 << 20]);
    }
    // Past the head's sample (1,000 rows), where the fast reader's blocks
    // and the chunk reader meet the open quote themselves.
    let tmp = tempfile::tempdir().unwrap();
    // (A quote after the open one would close it: the rows between are
    // then one field, an error of field counts, not this one.)
    for (quoted, open_at) in [(false, 1400), (true, 2998)] {
        let mut text = String::from("a,b,y\n");
        for r in 0..3000 {
            let y = if quoted && r % 7 == 0 {
                format!("\"x,{}\"", r % 2)
            } else {
                format!("x{}", r % 2)
            };
            match r == open_at {
                true => text += &format!("{r},{},\"x1\n", r * 3),
                false => text += &format!("{r},{},{y}\n", r * 3),
            }
        }
        let path = tmp.path().join(format!("open-{quoted}-{open_at}.csv"));
        std::fs::write(&path, &text).unwrap();
        let Err(full) = slow(&path, &opts) else {
            panic!("the full reader read it");
        };
        assert!(
            full.contains(&format!("line {}: a quoted field opens", open_at + 2)),
            "{full}"
        );
        every_reader_refuses(&path, &opts, &full, &[64, 4096, 1 << 20]);
    }
    let literal = slow(&dir.join("quotes_closed_or_literal.csv"), &opts).unwrap();
    let ys: Vec<String> = (0..3).map(|r| format!("{:?}", literal.cell(r, 2))).collect();
    assert_eq!(ys, ["Text(\"x\\\"1\")", "Text(\"x\\\"0\")", "Text(\"x1\\\"\")"]);
}
