//! Damaged Parquet and Arrow IPC files: whatever the bytes, reading gives a
//! table or a one-line error naming the file, never a panic; and a table
//! that reads is preprocessed without a panic. Files made here (with every
//! compression the readers take: snappy, zstd, lz4 and gzip for Parquet,
//! lz4 and zstd for IPC), then damaged deterministically: bytes replaced at
//! seeded places (1 to 8 of them), truncated, or cut and followed by
//! garbage. The fuzz target `fuzz/fuzz_targets/parquet.rs` searches the
//! same space with coverage guidance; this test runs in every test run.
#![cfg(feature = "columnar")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bpnet::data::table::{CHUNK, ChunkReader};
use bpnet::data::{CsvOptions, Impute, PreprocessSpec, Preprocessor, read_data};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Mutations per file.
const MUTATIONS: usize = 400;

fn batch(rows: usize) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("k", DataType::Int32, false),
        Field::new("color", DataType::Utf8, true),
        Field::new("label", DataType::Utf8, false),
    ]);
    let x: Vec<Option<f64>> = (0..rows)
        .map(|i| (i % 11 != 3).then_some(i as f64 * 0.37 - 9.0))
        .collect();
    let k: Vec<i32> = (0..rows).map(|i| (i * 7 % 13) as i32).collect();
    let color: Vec<Option<&str>> = (0..rows)
        .map(|i| (i % 17 != 0).then(|| ["red", "blue"][i % 2]))
        .collect();
    let label: Vec<&str> = (0..rows).map(|i| ["a", "b", "c"][i % 3]).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(x)),
        Arc::new(Int32Array::from(k)),
        Arc::new(StringArray::from(color)),
        Arc::new(StringArray::from(label)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

fn parquet_bytes(compression: Compression) -> Vec<u8> {
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(70))
        .build();
    let mut out = Vec::new();
    let b = batch(200);
    let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    out
}

fn ipc_bytes(compression: Option<arrow_ipc::CompressionType>) -> Vec<u8> {
    let b = batch(200);
    let options = arrow_ipc::writer::IpcWriteOptions::default()
        .try_with_compression(compression)
        .unwrap();
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(&mut out, &b.schema(), options).unwrap();
    w.write(&b.slice(0, 120)).unwrap();
    w.write(&b.slice(120, 80)).unwrap();
    w.finish().unwrap();
    drop(w);
    out
}

/// A damaged copy of `bytes` (mutation `i`, seeded).
fn damaged(bytes: &[u8], i: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match i % 5 {
        // Truncated.
        0 => b.truncate(rng.random_range(0..b.len())),
        // Cut, then garbage.
        1 => {
            b.truncate(rng.random_range(0..b.len()));
            let n = rng.random_range(1..64);
            b.extend((0..n).map(|_| rng.random::<u8>()));
        }
        // Bytes replaced, anywhere or near the footer (the metadata).
        _ => {
            let near_end = i % 5 == 4;
            for _ in 0..rng.random_range(1..=8) {
                let at = if near_end {
                    b.len() - 1 - rng.random_range(0..b.len().min(400))
                } else {
                    rng.random_range(0..b.len())
                };
                b[at] = rng.random();
            }
        }
    }
    b
}

/// Reads `path` chunk by chunk as streaming does (Parquet row groups,
/// Arrow record batches): `Some(error)` when a chunk does not read, `Err`
/// with the message when a panic escaped.
fn read_in_chunks(path: &Path) -> Result<Option<String>, String> {
    unwound(catch_unwind(AssertUnwindSafe(|| {
        let mut r = match ChunkReader::open(path, &CsvOptions::default(), CHUNK) {
            Ok(r) => r,
            Err(e) => return Some(e.to_string()),
        };
        loop {
            match r.next_chunk() {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(e) => return Some(e.to_string()),
            }
        }
    })))
}

/// Reads `path` and, when it reads, fits and applies the preprocessing;
/// `Err` with the message when a panic escaped.
fn read_and_prepare(path: &Path) -> Result<Option<String>, String> {
    unwound(catch_unwind(AssertUnwindSafe(|| {
        match read_data(path, &CsvOptions::default(), None) {
            Err(e) => Some(e.to_string()),
            Ok(table) => {
                let rows: Vec<usize> = (0..table.len()).collect();
                let spec = PreprocessSpec {
                    impute: Some(Impute::Mean),
                    ..PreprocessSpec::default()
                };
                if let Ok((p, _)) = Preprocessor::fit(&table, &rows, &spec) {
                    let _ = p.transform_features(&table, &rows);
                    let _ = p.transform_targets(&table, &rows);
                }
                None
            }
        }
    })))
}

/// A caught panic's message as `Err`.
fn unwound<T>(r: std::thread::Result<T>) -> Result<T, String> {
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn check_file(name: &str, bytes: &[u8], seed: u64) {
    // The fuzz target's seed corpus (docs/RELIABILITY.md): the undamaged
    // files, with the target's format byte in front.
    if let Some(seeds) = std::env::var_os("BPNET_FUZZ_SEEDS") {
        let kind = if name.ends_with(".parquet") { 0u8 } else { 1 };
        let mut seed_file = vec![kind];
        seed_file.extend_from_slice(bytes);
        std::fs::write(Path::new(&seeds).join(name), seed_file).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(read_and_prepare(&path), Ok(None), "{name}: the undamaged file reads");
    assert_eq!(
        read_in_chunks(&path),
        Ok(None),
        "{name}: the undamaged file reads in chunks"
    );
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (mut errors, mut panics) = (0, Vec::new());
    for i in 0..MUTATIONS {
        let b = damaged(bytes, i, &mut rng);
        std::fs::write(&path, &b).unwrap();
        match read_and_prepare(&path) {
            Ok(Some(e)) => {
                errors += 1;
                assert!(e.contains(&path.display().to_string()), "{name} #{i}: {e}");
                assert!(!e.contains('\n'), "{name} #{i}: {e}");
            }
            Ok(None) => {}
            Err(p) => panics.push(format!("#{i} ({} bytes): {p}", b.len())),
        }
        match read_in_chunks(&path) {
            Ok(Some(e)) => {
                assert!(e.contains(&path.display().to_string()), "{name} #{i}, in chunks: {e}");
                assert!(!e.contains('\n'), "{name} #{i}, in chunks: {e}");
            }
            Ok(None) => {}
            Err(p) => panics.push(format!("#{i} ({} bytes), in chunks: {p}", b.len())),
        }
    }
    assert!(
        panics.is_empty(),
        "{name}: panics on damaged files:\n{}",
        panics.join("\n")
    );
    assert!(
        errors > MUTATIONS / 5,
        "{name}: only {errors} of {MUTATIONS} damaged files were refused"
    );
}

/// The row of an "after row N" error, when it names one.
fn after_row(e: &str) -> Option<usize> {
    let rest = &e[e.find("after row ")? + "after row ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// A damaged row group read alone, as streaming reads it, names its rows
/// counted in the whole file: the third group of 70-row groups starts at
/// row 140 (it said "after row 0", counting from the group's start).
#[test]
fn a_damaged_row_group_names_its_rows_in_the_whole_file() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    count_uncontained_panics();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.parquet");
    let bytes = parquet_bytes(Compression::UNCOMPRESSED);
    std::fs::write(&path, &bytes).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let group = reader.metadata().row_group(2);
    assert_eq!(reader.metadata().row_group(0).num_rows(), 70);
    let mut named = Vec::new();
    for c in 0..group.num_columns() {
        let (start, len) = (
            group.column(c).data_page_offset() as usize,
            group.column(c).compressed_size() as usize,
        );
        for at in (start + len / 2..start + len).step_by(3) {
            let mut b = bytes.clone();
            b[at] ^= 0xFF;
            std::fs::write(&path, &b).unwrap();
            if let Ok(Some(e)) = read_in_chunks(&path)
                && let Some(row) = after_row(&e)
            {
                named.push((row, e));
            }
        }
    }
    assert!(!named.is_empty(), "no damage made a row group fail to decode");
    for (row, e) in &named {
        assert!(*row >= 140, "{e}");
    }
}

/// Panics that reached the panic hook, i.e. that no reader contained
/// (`bpnet`'s containment hook hands only those on to this one).
static UNCONTAINED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Installs the counting hook before any read in this process (each test
/// calls it first), so that the readers' containment hook wraps it.
fn count_uncontained_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|_| {
            UNCONTAINED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }))
    });
}

#[test]
fn damaged_parquet_files_read_or_fail_cleanly() {
    count_uncontained_panics();
    let files = [
        ("plain.parquet", Compression::UNCOMPRESSED),
        ("snappy.parquet", Compression::SNAPPY),
        ("zstd.parquet", Compression::ZSTD(ZstdLevel::default())),
        ("lz4.parquet", Compression::LZ4_RAW),
        ("gzip.parquet", Compression::GZIP(GzipLevel::default())),
    ];
    for (seed, (name, c)) in files.into_iter().enumerate() {
        check_file(name, &parquet_bytes(c), seed as u64);
    }
}

#[test]
fn damaged_arrow_ipc_files_read_or_fail_cleanly() {
    count_uncontained_panics();
    let files = [
        ("plain.arrow", None),
        ("lz4.arrow", Some(arrow_ipc::CompressionType::LZ4_FRAME)),
        ("zstd.arrow", Some(arrow_ipc::CompressionType::ZSTD)),
    ];
    for (seed, (name, c)) in files.into_iter().enumerate() {
        check_file(name, &ipc_bytes(c), 100 + seed as u64);
    }
}

/// Inputs the fuzz target found (`fuzz/fuzz_targets/columnar.rs`), kept as
/// regression tests: `batch_past_end.arrow` claims a 4 GiB batch in a
/// 6.9 KB file (reading it took 13 s and 4.2 GB before an error);
/// `no_columns.arrow` has a schema without fields (preprocessing indexed
/// its last column and panicked); `lz4_length.arrow` has an LZ4 buffer
/// whose length prefix claims 672 GiB and whose message points past its
/// metadata into the body (the first length check read the metadata alone,
/// missed it, and the process aborted on the allocation);
/// `page_header_past_end.parquet` has a page header whose field runs past
/// the end of the file (the reader kept reading 0 bytes at the end: `bpnet
/// train` on it ran for minutes); `no_columns_huge_rows.arrow` has no
/// columns and batches claiming 562,949,953,421,512 rows (the list of its
/// rows aborted the process, in `bpnet train` too).
#[test]
fn inputs_the_fuzzer_found_are_refused_at_once() {
    count_uncontained_panics();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/damaged");
    for (name, what) in [
        ("batch_past_end.arrow", "past the end of the 6914-byte file"),
        ("no_columns.arrow", "the file has no columns"),
        ("lz4_length.arrow", "claims 721554505896 bytes uncompressed"),
        ("page_header_past_end.parquet", "unexpected end of file"),
        ("no_columns_huge_rows.arrow", "the file has no columns"),
    ] {
        let path = dir.join(name);
        let e = match read_data(&path, &CsvOptions::default(), None) {
            Err(e) => e.to_string(),
            Ok(table) => {
                let rows: Vec<usize> = (0..table.len()).collect();
                let fit = Preprocessor::fit(&table, &rows, &PreprocessSpec::default());
                fit.err().map(|e| e.to_string()).unwrap_or_default()
            }
        };
        assert!(
            e.contains(&path.display().to_string()) && e.contains(what),
            "{name}: {e}"
        );
    }
}

/// The damaged Parquet files read on two threads, so that the row groups
/// (70 rows each) are split into ranges read in parallel: a decoder's panic
/// in the thread reading a range is contained there, silently. No panic
/// reaches the hook, which would print it beside the one-line error.
#[test]
fn damaged_parquet_files_on_two_threads_panic_in_no_thread() {
    count_uncontained_panics();
    bpnet::set_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let mut errors = 0;
    for (seed, c) in [
        Compression::ZSTD(ZstdLevel::default()),
        Compression::SNAPPY,
        Compression::UNCOMPRESSED,
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = parquet_bytes(c);
        let path = dir.path().join(format!("{seed}.parquet"));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(200 + seed as u64);
        for i in 0..MUTATIONS {
            std::fs::write(&path, damaged(&bytes, i, &mut rng)).unwrap();
            match read_and_prepare(&path) {
                Ok(Some(e)) => {
                    errors += 1;
                    assert!(!e.contains('\n'), "#{i}: {e}");
                }
                Ok(None) => {}
                Err(p) => panic!("#{i}: a panic escaped: {p}"),
            }
        }
    }
    bpnet::set_threads(1);
    assert!(errors > MUTATIONS / 5, "only {errors} damaged files were refused");
    assert_eq!(UNCONTAINED.load(std::sync::atomic::Ordering::SeqCst), 0);
}
