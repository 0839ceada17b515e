//! Streaming (data larger than memory): the chunked reader against
//! `read_table`, the one-pass preprocessing fit against `Preprocessor::fit`
//! on the same rows, rows preprocessed chunk by chunk against the whole
//! table's, and the streamed batch order (every row once an epoch, seeded).

use bpnet::data::preprocess::{Impute, PreprocessSpec, Scaling};
use bpnet::data::table::ChunkReader;
use bpnet::data::{Cell, CsvOptions, Dataset, Preprocessor, Table, TargetBuf, read_table};
use bpnet::train::BatchSource;
use bpnet::workflow::stream::{Role, RowSplit, StreamFile, StreamSource};
use bpnet::workflow::table_dataset;
use bpnet::{Matrix, data::Batches};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The smallest chunk the reader takes: many chunks even in small files.
const SMALL: usize = 4 << 10;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// A deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `rows` rows: an id, a float with missing cells, a category with missing
/// cells, quoted text with line ends, and a class label.
fn generated(seed: u64, rows: usize) -> String {
    let mut g = Gen(seed | 1);
    let mut s = String::from("id,x,color,note,label\n");
    let colors = ["red", "green", "blue", "NA", "teal"];
    let notes = ["plain", "\"a, b\"", "\"two\nlines\"", "\"say \"\"hi\"\"\""];
    for r in 0..rows {
        if g.below(40) == 0 {
            s += "\n";
        }
        let x = match g.below(15) {
            0 => String::new(),
            _ => format!("{:.4}", (g.below(2_000_000) as f64 - 1e6) / 997.0),
        };
        let color = colors[g.below(5) as usize];
        let note = notes[g.below(4) as usize];
        s += &format!(
            "{r},{x},{color},{note},{}\n",
            ["yes", "no", "maybe"][g.below(3) as usize]
        );
    }
    s
}

/// Every row of every chunk of `path`, as (first row index, table).
fn chunks(path: &Path, opts: &CsvOptions, chunk: usize) -> Result<Vec<(usize, Table)>, String> {
    let mut r = ChunkReader::open(path, opts, chunk).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk().map_err(|e| e.to_string())? {
        out.push((c.span.row, c.table));
    }
    Ok(out)
}

/// Same value: numbers by value, a number against its text by value.
fn same_cell(a: Cell<'_>, b: Cell<'_>) -> bool {
    let num = |c: Cell<'_>| match c {
        Cell::Num(v) => Some(v),
        Cell::Text(t) => t.parse::<f64>().ok(),
        Cell::Missing => None,
    };
    match (a, b) {
        (Cell::Num(p), Cell::Num(q)) => p.to_bits() == q.to_bits(),
        (Cell::Text(p), Cell::Text(q)) => p == q,
        (Cell::Missing, Cell::Missing) => true,
        (Cell::Missing, Cell::Text(t)) | (Cell::Text(t), Cell::Missing) => bpnet::data::csv::is_missing(t),
        _ => num(a).is_some() && num(a) == num(b),
    }
}

fn check_chunks(path: &Path, opts: &CsvOptions) {
    let what = path.display().to_string();
    match (read_table(path, opts), chunks(path, opts, SMALL)) {
        (Ok(t), Ok(parts)) => {
            let mut row = 0;
            for (first, c) in &parts {
                assert_eq!(*first, row, "{what}: first row of a chunk");
                assert_eq!(c.columns, t.columns, "{what}: columns");
                assert_eq!(c.has_header, t.has_header, "{what}: header");
                for r in 0..c.len() {
                    assert_eq!(c.line(r), t.line(row + r), "{what}: line of row {}", row + r);
                    for j in 0..t.n_cols() {
                        let (x, y) = (c.cell(r, j), t.cell(row + r, j));
                        assert!(same_cell(x, y), "{what}: cell ({}, {j}): {x:?} vs {y:?}", row + r);
                    }
                }
                row += c.len();
            }
            assert_eq!(row, t.len(), "{what}: rows");
        }
        (Err(e), Err(s)) => {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                s.contains(&name),
                "{what}: streamed error names no file: {s} (in memory: {e})"
            );
        }
        (a, b) => panic!(
            "{what}: in memory {:?}, streamed {:?}",
            a.map(|t| t.len()),
            b.map(|c| c.len())
        ),
    }
}

#[test]
fn chunks_hold_the_rows_cells_and_lines_of_the_whole_table() {
    for f in fixtures() {
        let delimiter = if f.ends_with("semicolon.csv") { b';' } else { b',' };
        check_chunks(
            &f,
            &CsvOptions {
                delimiter,
                ..CsvOptions::default()
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..4 {
        let path = dir.path().join(format!("gen{seed}.csv"));
        std::fs::write(&path, generated(seed, 3000)).unwrap();
        check_chunks(&path, &CsvOptions::default());
    }
}

/// `a` and `b` equal, numbers within `1e-12` relative.
fn close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: length");
            x.iter()
                .zip(y)
                .enumerate()
                .for_each(|(i, (p, q))| close(p, q, &format!("{at}[{i}]")));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}: keys");
            x.iter().for_each(|(k, p)| close(p, &y[k], &format!("{at}.{k}")));
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// The streamed fit against the in-memory fit on the same training rows:
/// equal preprocessors (within rounding) and notes, or the same error.
fn check_fit(path: &Path, opts: &CsvOptions, spec: &PreprocessSpec, split: RowSplit) -> Option<Preprocessor> {
    let what = format!("{} {spec:?} {split:?}", path.display());
    let table = read_table(path, opts).ok()?;
    let rows: Vec<usize> = (0..table.len()).filter(|&r| split.role(r) == Role::Train).collect();
    let mem = Preprocessor::fit(&table, &rows, spec).map_err(|e| e.to_string());
    let streamed = StreamFile::fit(path, opts, spec, split, SMALL).map_err(|e| e.to_string());
    match (mem, streamed) {
        (Ok((p, notes)), Ok(s)) => {
            let (a, b) = (
                serde_json::to_value(&p).unwrap(),
                serde_json::to_value(&s.preprocessor).unwrap(),
            );
            close(&a, &b, &what);
            // The header note is the workflow's (`open_table` adds it in
            // memory), not the preprocessing fit's.
            let fitted: Vec<&String> = s.notes.iter().filter(|n| !n.contains("was read as data")).collect();
            assert_eq!(notes.iter().collect::<Vec<_>>(), fitted, "{what}: notes");
            assert_eq!(s.counts[0], rows.len(), "{what}: training rows");
            Some(s.preprocessor)
        }
        (Err(e), Err(s)) => {
            assert_eq!(e, s, "{what}: errors");
            None
        }
        (a, b) => panic!("{what}: in memory {a:?}, streamed {:?}", b.map(|s| s.preprocessor)),
    }
}

fn specs() -> Vec<PreprocessSpec> {
    let mut out = Vec::new();
    for scaling in [Scaling::ZScore, Scaling::MinMax, Scaling::None] {
        for impute in [None, Some(Impute::Mean)] {
            out.push(PreprocessSpec {
                scaling,
                impute,
                ..PreprocessSpec::default()
            });
        }
    }
    out
}

/// A column far from zero with a small spread (mean 1e7, standard deviation
/// 1e-3; a ratio of 1e10), where f64 itself holds each value only to about
/// 1e-6 of the spread: the one-pass scale equals the two-pass one to 1e-8
/// relative (1.3e-9 measured; both are 1.1-1.3e-9 from the exact scale of
/// the decimal values). Welford's recurrence on the raw values was 3e-7 off.
#[test]
fn one_pass_fit_keeps_a_column_far_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("far.csv");
    let mut text = String::from("far,near,y\n");
    let mut g = 0x9E37_79B9_7F4A_7C15u64;
    for r in 0..5000 {
        g ^= g << 13;
        g ^= g >> 7;
        g ^= g << 17;
        let u = (g % 2_000_001) as f64 / 1_000_000.0 - 1.0;
        text += &format!("{:.9},{u:.6},{}\n", 1e7 + 1.7e-3 * u, r % 2);
    }
    std::fs::write(&path, text).unwrap();
    let all = RowSplit {
        test: 0.0,
        val: 0.0,
        seed: 0,
        limit: 0,
    };
    let spec = PreprocessSpec::default();
    let table = read_table(&path, &CsvOptions::default()).unwrap();
    let rows: Vec<usize> = (0..table.len()).collect();
    let mem = Preprocessor::fit(&table, &rows, &spec).unwrap().0;
    let streamed = StreamFile::fit(&path, &CsvOptions::default(), &spec, all, SMALL).unwrap();
    let center_scale = |p: &Preprocessor| match &p.features()[0].kind {
        bpnet::data::FeatureKind::Numeric { center, scale, .. } => (*center, *scale),
        k => panic!("{k:?}"),
    };
    let ((c0, s0), (c1, s1)) = (center_scale(&mem), center_scale(&streamed.preprocessor));
    assert!((c0 - c1).abs() <= 1e-15 * c0.abs(), "centres {c0} {c1}");
    assert!((s0 - s1).abs() <= 1e-8 * s0, "scales {s0} {s1}");
    assert!((s0 - 9.697e-4).abs() < 1e-7, "scale {s0}");
}

#[test]
fn one_pass_fit_equals_the_in_memory_fit() {
    let all = RowSplit {
        test: 0.0,
        val: 0.0,
        seed: 0,
        limit: 0,
    };
    for f in fixtures() {
        let delimiter = if f.ends_with("semicolon.csv") { b';' } else { b',' };
        for spec in specs() {
            check_fit(
                &f,
                &CsvOptions {
                    delimiter,
                    ..CsvOptions::default()
                },
                &spec,
                all,
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.csv");
    std::fs::write(&path, generated(7, 5000)).unwrap();
    let split = RowSplit {
        test: 0.1,
        val: 0.2,
        seed: 9,
        limit: 4000,
    };
    let mut fitted = 0;
    for spec in specs() {
        fitted += usize::from(check_fit(&path, &CsvOptions::default(), &spec, split).is_some());
    }
    assert_eq!(fitted, 3, "the generated file fits with --impute mean only");
    let median = PreprocessSpec {
        impute: Some(Impute::Median),
        ..PreprocessSpec::default()
    };
    let e = StreamFile::fit(&path, &CsvOptions::default(), &median, split, SMALL)
        .err()
        .unwrap();
    assert!(e.to_string().contains("median"), "{e}");
}

#[test]
fn rows_preprocessed_chunk_by_chunk_equal_the_whole_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.csv");
    std::fs::write(&path, generated(3, 4000)).unwrap();
    let spec = PreprocessSpec {
        impute: Some(Impute::Mean),
        ..PreprocessSpec::default()
    };
    let split = RowSplit {
        test: 0.0,
        val: 0.25,
        seed: 1,
        limit: 0,
    };
    let mut file = StreamFile::fit(&path, &CsvOptions::default(), &spec, split, SMALL).unwrap();
    let sets = file.collect(&[Role::Train, Role::Val]).unwrap();
    let table = read_table(&path, &CsvOptions::default()).unwrap();
    for (set, role) in sets.iter().zip([Role::Train, Role::Val]) {
        let rows: Vec<usize> = (0..table.len()).filter(|&r| split.role(r) == role).collect();
        let whole = table_dataset(&file.preprocessor, &table, &rows).unwrap();
        let bits = |d: &Dataset| d.features.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(set), bits(&whole), "{role:?} features");
        assert_eq!(set.labels(), whole.labels(), "{role:?} labels");
    }
    let (n, v) = (sets[0].len(), sets[1].len());
    assert_eq!(n + v, 4000);
    assert!((800..1200).contains(&v), "{v} validation rows of 4000 at 0.25");
}

/// The ids of the rows of each batch of `epochs` epochs.
fn drawn(path: &Path, rows: usize, batch: usize, min_batch: usize, capacity: usize, epochs: usize) -> Vec<Vec<u32>> {
    let spec = PreprocessSpec {
        scaling: Scaling::None,
        impute: Some(Impute::Mean),
        ..PreprocessSpec::default()
    };
    let split = RowSplit {
        test: 0.0,
        val: 0.0,
        seed: 0,
        limit: rows,
    };
    let mut file = StreamFile::fit(path, &CsvOptions::default(), &spec, split, SMALL).unwrap();
    let mut src = StreamSource::new(&mut file, batch, min_batch, capacity, 42).unwrap();
    let mut order = Batches::new(0, 1, 1, 0);
    let per_epoch = src.per_epoch(&order);
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    let mut out = Vec::new();
    for _ in 0..epochs * per_epoch {
        let n = src.next_batch(&mut order, (0, 1), &mut x, &mut y).unwrap();
        assert_eq!(x.rows(), n);
        out.push((0..n).map(|r| x.get(r, 0) as u32).collect());
    }
    out
}

#[test]
fn streamed_batches_draw_every_row_once_an_epoch_in_a_seeded_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.csv");
    std::fs::write(&path, generated(5, 3000)).unwrap();
    // 2001 rows in batches of 50 with batch normalization: 40 batches of
    // 50 and the last row dropped; a buffer of 300 rows.
    let batches = drawn(&path, 2001, 50, 2, 300, 3);
    assert_eq!(batches.len(), 3 * 40);
    let mut epochs = Vec::new();
    for e in 0..3 {
        let mut ids: Vec<u32> = batches[e * 40..(e + 1) * 40].concat();
        assert!(batches[e * 40..(e + 1) * 40].iter().all(|b| b.len() == 50));
        epochs.push(ids.clone());
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2000, "epoch {e}: every row but one, once");
        assert!(ids.iter().all(|&i| i < 2001));
    }
    assert_ne!(epochs[0], epochs[1], "each epoch has its own order");
    assert_eq!(
        batches,
        drawn(&path, 2001, 50, 2, 300, 3),
        "the same seed gives the same batches"
    );
    // Without batch normalization the last row is a batch of its own.
    let single = drawn(&path, 2001, 50, 1, 300, 1);
    assert_eq!(single.len(), 41);
    assert_eq!(single[40].len(), 1);
    // Mixing: most batches hold rows from more than one 4 KiB chunk.
    let spread = batches
        .iter()
        .filter(|b| b.iter().max().unwrap() - b.iter().min().unwrap() > 200)
        .count();
    assert!(
        spread > batches.len() / 2,
        "{spread} of {} batches span over 200 rows",
        batches.len()
    );
}

/// How close the streamed order is to a full shuffle, for the docs
/// (`cargo test -p bpnet --test stream -- --ignored --nocapture`): 20,000
/// rows in 4 KiB chunks (about 90 rows each), batches of 100. Full
/// shuffle: file neighbours share a batch with probability `99/19999`
/// (0.5%), and a row's epoch position is independent of its file position
/// (rank correlation 0), and a batch of 100 holds rows of about 63.4 of
/// the file's 100 parts of 200 rows (`100 (1 − 0.99^100)`).
#[test]
#[ignore]
fn shuffle_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.csv");
    std::fs::write(&path, generated(13, 20_000)).unwrap();
    println!(
        "| buffer rows | file neighbours in one batch | rank correlation file/epoch position | parts of the file per batch |"
    );
    println!("|---|---|---|---|");
    for capacity in [100, 1000, 5000, 19_999] {
        let batches = drawn(&path, 20_000, 100, 1, capacity, 1);
        let order: Vec<u32> = batches.concat();
        let mut pos = vec![0usize; 20_000];
        for (i, &id) in order.iter().enumerate() {
            pos[id as usize] = i;
        }
        let together = (1..20_000).filter(|&i| pos[i] / 100 == pos[i - 1] / 100).count();
        let n = 20_000f64;
        let mean = (n - 1.0) / 2.0;
        let cov: f64 = (0..20_000).map(|i| (i as f64 - mean) * (pos[i] as f64 - mean)).sum();
        let var: f64 = (0..20_000).map(|i| (i as f64 - mean).powi(2)).sum();
        let parts: usize = batches
            .iter()
            .map(|b| {
                let mut p: Vec<u32> = b.iter().map(|i| i / 200).collect();
                p.sort_unstable();
                p.dedup();
                p.len()
            })
            .sum();
        println!(
            "| {capacity} | {:.2}% | {:.3} | {:.1} |",
            100.0 * together as f64 / (n - 1.0),
            cov / var,
            parts as f64 / batches.len() as f64
        );
    }
}

/// Rows appended to the file after a pass are found at the next one, or at
/// the end of the pass they are appended in (they had joined the
/// validation and test passes, which read to the end, without a word), as
/// a shorter file already was.
#[test]
fn a_file_that_grows_between_passes_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.csv");
    std::fs::write(&path, generated(5, 600)).unwrap();
    let append = || {
        let mut more = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut more, b"600,1.5,red,plain,yes\n").unwrap();
    };
    let changed = |e: bpnet::Error| {
        let e = e.to_string();
        assert!(
            e.contains("grow.csv") && e.contains("the file changed while it was read"),
            "{e}"
        );
    };
    let mut r = ChunkReader::open(&path, &CsvOptions::default(), SMALL).unwrap();
    while r.next_chunk().unwrap().is_some() {}
    append();
    changed(r.rewind().expect_err("a pass began on a grown file"));
    // Appended while a pass runs: its end finds it.
    let mut r = ChunkReader::open(&path, &CsvOptions::default(), SMALL).unwrap();
    r.next_chunk().unwrap();
    append();
    let end = loop {
        match r.next_chunk() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the pass ended on a grown file"),
            Err(e) => break e,
        }
    };
    changed(end);
}
