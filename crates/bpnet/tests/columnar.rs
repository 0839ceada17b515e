//! Parquet and Arrow IPC input (feature `columnar`): the same table, the
//! same preprocessing and the same matrices as from the CSV holding the same
//! values; only the columns asked for are read; every error path names the
//! file (and the column or row): truncated files, a type bpnet cannot read,
//! strings that are not UTF-8, an infinite value, a column missing from a
//! prediction file, an empty row group. Fixtures are made here with
//! arrow-rs's writers.
#![cfg(feature = "columnar")]

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bpnet::data::preprocess::Targets;
use bpnet::data::{CsvOptions, Impute, PreprocessSpec, Preprocessor, Table, read_data};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const ROWS: usize = 2500;

/// Column values: x (float, some missing), n (integer feature), color
/// (text), label (integer class).
/// The four columns' values: x, n, color, label.
type Values = (Vec<Option<f64>>, Vec<i64>, Vec<&'static str>, Vec<i64>);

fn values() -> Values {
    let colors = ["red", "green", "blue"];
    let x = (0..ROWS)
        .map(|i| (i % 37 != 5).then(|| ((i * 7919) % 1000) as f64 / 8.0 - 40.0))
        .collect();
    let n = (0..ROWS).map(|i| ((i * 31) % 977) as i64 - 400).collect();
    let color = (0..ROWS).map(|i| colors[(i * 13) % 3]).collect();
    let label = (0..ROWS).map(|i| ((i * 17) % 4) as i64).collect();
    (x, n, color, label)
}

fn batch() -> RecordBatch {
    let (x, n, color, label) = values();
    let schema = Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("n", DataType::Int64, false),
        Field::new("color", DataType::Utf8, false),
        Field::new("label", DataType::Int64, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(x)),
        Arc::new(Int64Array::from(n)),
        Arc::new(StringArray::from(color)),
        Arc::new(Int64Array::from(label)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

fn csv_text() -> String {
    let (x, n, color, label) = values();
    let mut s = String::from("x,n,color,label\n");
    for i in 0..ROWS {
        let xs = x[i].map_or("NA".to_string(), |v| v.to_string());
        s += &format!("{xs},{},{},{}\n", n[i], color[i], label[i]);
    }
    s
}

/// Writes `batches` as Parquet with row groups of at most `group` rows.
fn write_parquet(path: &Path, batches: &[RecordBatch], group: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
        w.flush().unwrap();
    }
    w.close().unwrap();
}

fn write_ipc(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

fn read(path: &Path) -> Table {
    read_data(path, &CsvOptions::default(), None).unwrap()
}

fn err(path: &Path) -> String {
    read_data(path, &CsvOptions::default(), None).unwrap_err().to_string()
}

fn read_csv_text(dir: &Path) -> Table {
    let csv = dir.join("t.csv");
    std::fs::write(&csv, csv_text()).unwrap();
    read(&csv)
}

fn spec() -> PreprocessSpec {
    PreprocessSpec {
        impute: Some(Impute::Mean),
        ..PreprocessSpec::default()
    }
}

#[test]
fn csv_parquet_and_arrow_give_the_same_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, csv_text()).unwrap();
    let pq = dir.path().join("t.parquet");
    write_parquet(&pq, &[batch()], 1000); // three row groups
    let ipc = dir.path().join("t.arrow");
    write_ipc(&ipc, &[batch().slice(0, 1200), batch().slice(1200, ROWS - 1200)]);
    let all: Vec<usize> = (0..ROWS).collect();
    let train: Vec<usize> = (0..ROWS).filter(|i| i % 5 != 0).collect();
    let from_csv = read(&csv);
    let (p, notes) = Preprocessor::fit(&from_csv, &train, &spec()).unwrap();
    assert_eq!(p.feature_names(), ["x", "n", "color=blue", "color=green", "color=red"]);
    assert_eq!(p.class_names().unwrap(), ["0", "1", "2", "3"]);
    let x = p.transform_features(&from_csv, &all).unwrap();
    let y = p.transform_targets(&from_csv, &all).unwrap();
    for path in [&pq, &ipc] {
        let t = read(path);
        assert!(t.is_columnar());
        assert_eq!((t.columns.clone(), t.len()), (from_csv.columns.clone(), ROWS));
        let (q, notes2) = Preprocessor::fit(&t, &train, &spec()).unwrap();
        assert_eq!(p, q, "{}", path.display());
        assert_eq!(notes, notes2);
        assert_eq!(x, q.transform_features(&t, &all).unwrap(), "{}", path.display());
        assert_eq!(y, q.transform_targets(&t, &all).unwrap());
        // A model fitted on the CSV applies to the Parquet file too.
        assert_eq!(x, p.transform_features(&t, &all).unwrap());
    }
    assert!(matches!(y, Targets::Labels(_)));
}

#[test]
fn only_the_columns_asked_for_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("t.parquet");
    write_parquet(&pq, &[batch()], 1 << 20);
    let want = ["label".to_string(), "x".to_string(), "absent".to_string()];
    let t = read_data(&pq, &CsvOptions::default(), Some(&want)).unwrap();
    assert_eq!(t.columns, ["x", "label"]);
    // A prediction file without a model column: named, with every column
    // of the file (it listed the columns read: none besides the wanted).
    let lacking = dir.path().join("lacking.parquet");
    write_parquet(&lacking, &[batch().project(&[0, 2, 3]).unwrap()], 1 << 20);
    let want: Vec<String> = ["x", "n", "color", "label"].map(String::from).to_vec();
    let t = read_data(&lacking, &CsvOptions::default(), Some(&want)).unwrap();
    let (p, _) = Preprocessor::fit(&read(&pq), &(0..ROWS).collect::<Vec<_>>(), &spec()).unwrap();
    let e = p.transform_features(&t, &[0]).unwrap_err().to_string();
    assert!(
        e.contains("lacking.parquet")
            && e.contains("column 'n': missing")
            && e.ends_with("the file's columns are 'x', 'color', 'label'"),
        "{e}"
    );
    // Asked for by name alone ('n' absent), the list is the file's too.
    let only: Vec<String> = vec!["n".into()];
    let t = read_data(&lacking, &CsvOptions::default(), Some(&only)).unwrap();
    let e = p.transform_features(&t, &[0]).unwrap_err().to_string();
    assert!(e.ends_with("the file's columns are 'x', 'color', 'label'"), "{e}");
}

#[test]
fn truncated_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (pq, ipc) = (dir.path().join("t.parquet"), dir.path().join("t.feather"));
    write_parquet(&pq, &[batch()], 1 << 20);
    write_ipc(&ipc, &[batch()]);
    for (path, what) in [
        (&pq, "not a readable Parquet file"),
        (&ipc, "not a readable Arrow IPC file"),
    ] {
        let bytes = std::fs::read(path).unwrap();
        for keep in [0, 7, bytes.len() / 2, bytes.len() - 3] {
            std::fs::write(path, &bytes[..keep]).unwrap();
            let e = err(path);
            assert!(
                e.contains(&path.display().to_string()) && e.contains(what),
                "{keep}: {e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }
}

#[test]
fn unreadable_types_non_utf8_and_infinite_values_name_the_column_or_row() {
    let dir = tempfile::tempdir().unwrap();
    // A date column: not a number, boolean or string.
    let date = dir.path().join("date.parquet");
    let schema = Schema::new(vec![Field::new("when", DataType::Date32, false)]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Date32Array::from(vec![1, 2])) as ArrayRef],
    )
    .unwrap();
    write_parquet(&date, &[b], 10);
    let e = err(&date);
    assert!(
        e.contains("date.parquet") && e.contains("column 'when' has type Date32"),
        "{e}"
    );
    // Strings that are not UTF-8 (made without the check arrow normally does).
    let bad = dir.path().join("bad.parquet");
    let binary = arrow_array::BinaryArray::from(vec![b"ok".as_ref(), b"fine\xff\xfe".as_ref()]);
    // SAFETY: the test relabels bytes that are not UTF-8 as strings on
    // purpose, to see the reader refuse them.
    let data = unsafe {
        binary
            .to_data()
            .into_builder()
            .data_type(DataType::Utf8)
            .build_unchecked()
    };
    let strings = StringArray::from(data);
    let schema = Schema::new(vec![Field::new("s", DataType::Utf8, false)]);
    let b = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(strings) as ArrayRef]).unwrap();
    write_parquet(&bad, &[b], 10);
    let e = err(&bad);
    assert!(
        e.contains("bad.parquet") && e.contains("column 's'") && e.to_lowercase().contains("utf"),
        "{e}"
    );
    // A column of the wrong type for the model: text where it was trained on numbers.
    let (p, _) = Preprocessor::fit(&read_csv_text(dir.path()), &(0..ROWS).collect::<Vec<_>>(), &spec()).unwrap();
    let wrong = dir.path().join("wrong.parquet");
    let schema = Schema::new(vec![
        Field::new("x", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
        Field::new("color", DataType::Utf8, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["1.5", "abc"])),
        Arc::new(Int64Array::from(vec![1, 2])),
        Arc::new(StringArray::from(vec!["red", "blue"])),
    ];
    write_parquet(&wrong, &[RecordBatch::try_new(Arc::new(schema), cols).unwrap()], 10);
    let e = p.transform_features(&read(&wrong), &[0, 1]).unwrap_err().to_string();
    assert!(
        e.contains("wrong.parquet") && e.contains("row 2, column 'x': 'abc' is not a number"),
        "{e}"
    );
    // An infinite value: the column is kept as text and fitting names the row.
    let inf = dir.path().join("inf.parquet");
    let schema = Schema::new(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("label", DataType::Utf8, false),
    ]);
    let x: Vec<f64> = (0..200)
        .map(|i| if i == 150 { f64::INFINITY } else { i as f64 * 0.37 })
        .collect();
    let label: Vec<&str> = (0..200).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Float64Array::from(x)) as ArrayRef,
            Arc::new(StringArray::from(label)),
        ],
    )
    .unwrap();
    write_parquet(&inf, &[b], 64);
    let t = read(&inf);
    let e = Preprocessor::fit(&t, &(0..200).collect::<Vec<_>>(), &PreprocessSpec::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inf.parquet") && e.contains("row 151, column 'x'") && e.contains("infinite value 'inf'"),
        "{e}"
    );
}

#[test]
fn an_empty_row_group_adds_no_rows() {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::writer::SerializedFileWriter;
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("e.parquet");
    // Row groups of 3, 0 and 2 rows, written column by column (arrow-rs's
    // ArrowWriter never writes an empty one).
    let schema =
        parquet::schema::parser::parse_message_type("message t { required double x; required binary label (UTF8); }")
            .unwrap();
    let file = std::fs::File::create(&pq).unwrap();
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), Default::default()).unwrap();
    let groups: [(&[f64], &[&str]); 3] = [
        (&[1.0, 2.0, 3.0], &["a", "b", "a"]),
        (&[], &[]),
        (&[4.0, 5.0], &["b", "a"]),
    ];
    for (x, label) in groups {
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<DoubleType>().write_batch(x, None, None).unwrap();
        col.close().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let label: Vec<ByteArray> = label.iter().map(|s| ByteArray::from(*s)).collect();
        col.typed::<ByteArrayType>().write_batch(&label, None, None).unwrap();
        col.close().unwrap();
        rg.close().unwrap();
    }
    w.close().unwrap();
    let meta = SerializedFileReader::new(std::fs::File::open(&pq).unwrap()).unwrap();
    let rows: Vec<i64> = meta.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(rows, [3, 0, 2], "the file holds an empty row group");
    let t = read(&pq);
    assert_eq!(
        (t.columns.clone(), t.len()),
        (vec!["x".to_string(), "label".to_string()], 5)
    );
    let cells: Vec<String> = (0..5).map(|r| t.cell_text(r, 1).into_owned()).collect();
    assert_eq!(cells, ["a", "b", "a", "b", "a"]);
    let all: Vec<usize> = (0..5).collect();
    let (p, _) = Preprocessor::fit(&t, &all, &PreprocessSpec::default()).unwrap();
    assert_eq!(p.transform_features(&t, &all).unwrap().rows(), 5);
}

/// `a` and `b` equal, numbers within `1e-12` relative.
fn close(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => x.iter().zip(y).for_each(|(p, q)| close(p, q)),
        (Value::Object(x), Value::Object(y)) => x.iter().for_each(|(k, p)| close(p, &y[k])),
        _ => assert_eq!(a, b),
    }
}

/// `batch` as Parquet with row groups of 700 rows, or as Arrow IPC with
/// record batches of 700 rows: four chunks either way.
fn write_in_fours(path: &Path, batch: RecordBatch) {
    if path.extension().is_some_and(|e| e == "parquet") {
        write_parquet(path, &[batch], 700);
        return;
    }
    let parts: Vec<RecordBatch> = (0..batch.num_rows())
        .step_by(700)
        .map(|at| batch.slice(at, 700.min(batch.num_rows() - at)))
        .collect();
    write_ipc(path, &parts);
}

#[test]
fn a_parquet_file_streams_row_group_by_row_group() {
    streams_chunk_by_chunk("parquet");
}

#[test]
fn an_arrow_file_streams_record_batch_by_record_batch() {
    streams_chunk_by_chunk("arrow");
}

fn streams_chunk_by_chunk(ext: &str) {
    use bpnet::workflow::stream::{Role, RowSplit, StreamFile};
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join(format!("t.{ext}"));
    write_in_fours(&pq, batch());
    let split = RowSplit {
        test: 0.0,
        val: 0.2,
        seed: 3,
        limit: 0,
    };
    let mut file = StreamFile::fit(&pq, &CsvOptions::default(), &spec(), split, 0).unwrap();
    assert_eq!(file.spans.len(), 4);
    let t = read(&pq);
    let train: Vec<usize> = (0..ROWS).filter(|&r| split.role(r) == Role::Train).collect();
    let (p, notes) = Preprocessor::fit(&t, &train, &spec()).unwrap();
    // The same fit, but for how the in-memory table held its columns
    // (`read_as`), which a streamed fit records only for columns that every
    // chunk held alike: these row groups each choose their own shift.
    let mut in_memory = serde_json::to_value(&p).unwrap();
    assert!(in_memory.as_object_mut().unwrap().remove("read_as").is_some());
    close(&in_memory, &serde_json::to_value(&file.preprocessor).unwrap());
    assert_eq!(notes, file.notes);
    let sets = file.collect(&[Role::Train]).unwrap();
    let x = file.preprocessor.transform_features(&t, &train).unwrap();
    assert_eq!(sets[0].features, x, "rows preprocessed group by group");
    // Errors name the row in the file, not in its row group.
    let mut values: Vec<Option<f64>> = values().0;
    values[2100] = Some(f64::INFINITY);
    let schema = batch().schema();
    let mut cols: Vec<ArrayRef> = batch().columns().to_vec();
    cols[0] = Arc::new(Float64Array::from(values));
    let bad = dir.path().join(format!("bad.{ext}"));
    write_in_fours(&bad, RecordBatch::try_new(schema, cols).unwrap());
    let e = StreamFile::fit(&bad, &CsvOptions::default(), &spec(), split, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&format!("bad.{ext}")) && e.contains("row 2101"), "{e}");
}

/// A table of 1009 rows (a prime) in every type the reader takes, with
/// nulls, NaN, a class label stored as integers, a dictionary column, and a
/// float column holding an infinite value late in the file (read again as
/// text).
fn mixed_batch() -> RecordBatch {
    use arrow_array::{BooleanArray, DictionaryArray, Float32Array, Int32Array, UInt8Array};
    use arrow_schema::DataType::*;
    const N: usize = 1009;
    let f64s: Vec<Option<f64>> = (0..N)
        .map(|i| match i % 41 {
            3 => None,
            7 => Some(f64::NAN),
            _ => Some(((i * 7919) % 1013) as f64 / 16.0 - 20.0),
        })
        .collect();
    let late_inf: Vec<f64> = (0..N)
        .map(|i| {
            if i == 1003 {
                f64::INFINITY
            } else {
                (i * 37 % 101) as f64 + 0.5
            }
        })
        .collect();
    let words = ["alpha", " beta", "gamma ", "delta"];
    let dict: DictionaryArray<arrow_array::types::Int32Type> = (0..N).map(|i| words[(i * 5) % 4]).collect();
    let fields = vec![
        Field::new("f64", Float64, true),
        Field::new("f32", Float32, false),
        Field::new("i32", Int32, true),
        Field::new("u8", UInt8, false),
        Field::new("label", Int64, false),
        Field::new("word", Utf8, true),
        Field::new("dict", dict.data_type().clone(), false),
        Field::new("flag", Boolean, false),
        Field::new("late_inf", Float64, false),
    ];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(f64s)),
        Arc::new(Float32Array::from_iter_values(
            (0..N).map(|i| (i % 977) as f32 * 0.25 - 3.0),
        )),
        Arc::new(Int32Array::from_iter(
            (0..N).map(|i| (i % 13 != 0).then_some((i * 31 % 977) as i32 - 400)),
        )),
        Arc::new(UInt8Array::from_iter_values((0..N).map(|i| (i * 7 % 251) as u8))),
        Arc::new(Int64Array::from_iter_values((0..N).map(|i| (i * 17 % 5) as i64))),
        Arc::new(StringArray::from_iter(
            (0..N).map(|i| (i % 11 != 4).then(|| words[i % 4])),
        )),
        Arc::new(dict),
        Arc::new(BooleanArray::from_iter((0..N).map(|i| Some(i % 3 == 0)))),
        Arc::new(Float64Array::from(late_inf)),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

/// The cells of `t` as text, numbers by their `f32` bits (NaN included).
fn cells_of(t: &Table) -> Vec<Vec<String>> {
    use bpnet::data::Column;
    t.cols
        .iter()
        .map(|c| match c {
            Column::Num { shift, values } => std::iter::once(format!("num {shift}"))
                .chain(values.iter().map(|v| format!("{:08x}", v.to_bits())))
                .collect(),
            Column::Text { dict, codes } => std::iter::once("text".to_string())
                .chain(codes.iter().map(|&k| dict[k as usize].clone()))
                .collect(),
        })
        .collect()
}

#[test]
fn parquet_read_on_1_to_4_threads_equals_the_arrow_file_read_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let batch = mixed_batch();
    let ipc = dir.path().join("m.arrow");
    write_ipc(&ipc, std::slice::from_ref(&batch));
    let serial = read(&ipc);
    let cells = cells_of(&serial);
    let kinds: Vec<&str> = cells.iter().map(|c| c[0].split(' ').next().unwrap()).collect();
    assert_eq!(
        kinds,
        ["num", "num", "num", "num", "text", "text", "text", "text", "text"],
        "one column of each kind the reader makes"
    );
    // Row groups of 1009 (one), 33, 7 and 1 rows: ranges cut anywhere.
    for group in [1009, 33, 7, 1] {
        let pq = dir.path().join(format!("m{group}.parquet"));
        write_parquet(&pq, std::slice::from_ref(&batch), group);
        for threads in 1..=4 {
            bpnet::set_threads(threads);
            let t = read(&pq);
            assert_eq!((t.columns.clone(), t.len()), (serial.columns.clone(), serial.len()));
            assert_eq!(cells_of(&t), cells, "row groups of {group}, {threads} threads");
        }
    }
    bpnet::set_threads(1);
}

/// 4,000 rows whose plans depend on which rows are sampled: `few_first`
/// has 3 distinct values in the first 1,000 rows and 1,000 after (text by
/// the sample of the file's first rows, numbers by any later one),
/// `many_first` the reverse, `x` numbers with nulls, `label` 4 classes.
fn sampled_batch() -> RecordBatch {
    const N: usize = 4000;
    let few_first: Vec<f64> = (0..N)
        .map(|i| if i < 1000 { (i % 3) as f64 } else { i as f64 * 0.37 })
        .collect();
    let many_first: Vec<i64> = (0..N)
        .map(|i| if i < 1000 { (i * 7) as i64 } else { (i % 3) as i64 })
        .collect();
    let x: Vec<Option<f64>> = (0..N)
        .map(|i| (i % 29 != 3).then(|| ((i * 7919) % 1013) as f64 / 16.0 - 20.0))
        .collect();
    let fields = vec![
        Field::new("few_first", DataType::Float64, false),
        Field::new("many_first", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("label", DataType::Int64, false),
    ];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(few_first)),
        Arc::new(Int64Array::from(many_first)),
        Arc::new(Float64Array::from(x)),
        Arc::new(Int64Array::from_iter_values((0..N).map(|i| (i * 13 % 4) as i64))),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

/// Each column's plan comes from the file's first 1,000 rows, whichever
/// reader decides it: row groups of 700, 1,300, 333 or 4,000 rows, read on
/// 1-4 threads, give the one-thread Arrow read's table, cell for cell.
#[test]
fn plans_come_from_the_files_first_rows_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let batch = sampled_batch();
    let ipc = dir.path().join("s.arrow");
    write_ipc(&ipc, std::slice::from_ref(&batch));
    bpnet::set_threads(1);
    let cells = cells_of(&read(&ipc));
    let kinds: Vec<&str> = cells.iter().map(|c| c[0].split(' ').next().unwrap()).collect();
    assert_eq!(kinds, ["text", "num", "num", "text"], "plans by the first 1,000 rows");
    for group in [700, 1300, 333, 4000] {
        let pq = dir.path().join(format!("s{group}.parquet"));
        write_parquet(&pq, std::slice::from_ref(&batch), group);
        for threads in 1..=4 {
            bpnet::set_threads(threads);
            assert_eq!(cells_of(&read(&pq)), cells, "row groups of {group}, {threads} threads");
        }
    }
    bpnet::set_threads(1);
}

/// A file's batch, the subsets of its columns to read and the row-group sizes.
type Subsets = (RecordBatch, &'static [&'static [&'static str]], &'static [usize]);

/// Fewer wanted columns than threads: each column is cut into ranges of
/// row groups (as many as give every thread a job), with the plans of a
/// sample of the file's first rows. On 2-4 threads, with row groups of 1,
/// 7, 333, 700 and 1,300 rows, the same cells as the one-thread read of
/// the same columns: plans that depend on the sampled rows, text merged
/// across ranges, nulls, and a number beyond 1e30 late in the file.
#[test]
fn fewer_columns_than_threads_are_read_in_ranges_with_the_first_rows_plans() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [Subsets; 2] = [
        (
            sampled_batch(),
            &[&["few_first"], &["many_first", "x"], &["x"]],
            &[333, 700, 1300],
        ),
        (
            mixed_batch(),
            &[&["word"], &["dict", "f64"], &["late_inf"], &["flag"]],
            &[1, 7, 333],
        ),
    ];
    for (n, (batch, subsets, groups)) in cases.iter().enumerate() {
        for &group in *groups {
            let pq = dir.path().join(format!("f{n}-{group}.parquet"));
            write_parquet(&pq, std::slice::from_ref(batch), group);
            for subset in *subsets {
                let wanted: Vec<String> = subset.iter().map(|c| c.to_string()).collect();
                let read_on = |threads| {
                    bpnet::set_threads(threads);
                    cells_of(&read_data(&pq, &CsvOptions::default(), Some(&wanted)).unwrap())
                };
                let serial = read_on(1);
                assert_eq!(serial.len(), subset.len());
                for threads in 2..=4 {
                    assert_eq!(
                        read_on(threads),
                        serial,
                        "{subset:?}, row groups of {group}, {threads} threads"
                    );
                }
            }
        }
    }
    // The plans are the first rows' (as in the whole-file test above).
    let pq = dir.path().join("f0-333.parquet");
    bpnet::set_threads(4);
    let t = read_data(
        &pq,
        &CsvOptions::default(),
        Some(&["few_first".to_string(), "many_first".to_string()]),
    )
    .unwrap();
    let kinds: Vec<String> = cells_of(&t)
        .iter()
        .map(|c| c[0].split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["text", "num"]);
    bpnet::set_threads(1);
}

/// The progress reports of `read()` for the file of `total` bytes, and what
/// it read. One test at a time installs the (process-wide) hook.
fn progress_of<T>(total: u64, read: impl FnOnce() -> T) -> (Vec<bpnet::data::table::ReadProgress>, T) {
    use bpnet::data::table::{ReadProgress, set_read_progress};
    use std::sync::Mutex;
    static ONE: Mutex<()> = Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let seen: Arc<Mutex<Vec<ReadProgress>>> = Arc::default();
    let sink = seen.clone();
    set_read_progress(Some(Arc::new(move |p: &ReadProgress| {
        if p.total == total {
            sink.lock().unwrap().push(*p);
        }
    })));
    let got = read();
    set_read_progress(None);
    let seen = seen.lock().unwrap().clone();
    (seen, got)
}

/// A whole-file Parquet read tells the progress hook how far it has got,
/// on 1-3 threads: reports that only grow, and one last report, done, with
/// the file's bytes and rows.
#[test]
fn a_parquet_read_reports_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    // Row groups of 50: a file size no other test's file has.
    let pq = dir.path().join("progress.parquet");
    write_parquet(&pq, &[mixed_batch()], 50);
    let total = std::fs::metadata(&pq).unwrap().len();
    for threads in 1..=3 {
        bpnet::set_threads(threads);
        let (seen, t) = progress_of(total, || read(&pq));
        // One report a record batch of each column (here one each), then the last.
        assert!(seen.len() > t.n_cols(), "{threads} threads: {} reports", seen.len());
        assert!(
            seen.windows(2)
                .all(|w| w[0].bytes <= w[1].bytes && w[0].rows <= w[1].rows),
            "{threads} threads"
        );
        let last = seen.last().unwrap();
        assert_eq!((last.bytes, last.rows, last.done), (total, t.len() as u64, true));
        assert_eq!(seen.iter().filter(|p| p.done).count(), 1);
    }
    bpnet::set_threads(1);
}

/// A whole-file Arrow IPC read tells the progress hook the same way, batch
/// by batch: growing reports, one last report, done, with the file's bytes
/// and rows.
#[test]
fn an_arrow_read_reports_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let batch = mixed_batch();
    // Seven batches of 101 rows and one of 302: a size no other test's file has.
    let mut parts: Vec<RecordBatch> = (0..7).map(|i| batch.slice(i * 101, 101)).collect();
    parts.push(batch.slice(707, 302));
    let ipc = dir.path().join("progress.arrow");
    write_ipc(&ipc, &parts);
    let total = std::fs::metadata(&ipc).unwrap().len();
    let (seen, t) = progress_of(total, || read(&ipc));
    assert_eq!(seen.len(), parts.len() + 1, "a report a batch, then the last");
    assert!(
        seen.windows(2)
            .all(|w| w[0].bytes <= w[1].bytes && (w[0].rows < w[1].rows || w[1].done))
    );
    let last = seen.last().unwrap();
    assert_eq!((last.bytes, last.rows, last.done), (total, t.len() as u64, true));
    assert_eq!(t.len(), 1009);
    assert_eq!(seen.iter().filter(|p| p.done).count(), 1);
}

/// A Parquet or Arrow file read chunk by chunk (as streaming reads it)
/// tells the progress hook each pass: growing reports, one last report at
/// the end of the pass with the file's bytes and rows, a new count in the
/// next pass, and nothing once progress is switched off.
#[test]
fn a_streamed_parquet_or_arrow_file_reports_each_pass() {
    use bpnet::data::table::{CHUNK, ChunkReader};
    let dir = tempfile::tempdir().unwrap();
    let batch = mixed_batch();
    for ext in ["parquet", "arrow"] {
        let path = dir.path().join(format!("chunks-progress.{ext}"));
        match ext {
            "parquet" => write_parquet(&path, std::slice::from_ref(&batch), 211),
            _ => write_ipc(&path, &[batch.slice(0, 500), batch.slice(500, 509)]),
        }
        let total = std::fs::metadata(&path).unwrap().len();
        let (seen, _) = progress_of(total, || {
            let mut chunks = ChunkReader::open(&path, &CsvOptions::default(), CHUNK).unwrap();
            for _pass in 0..2 {
                while chunks.next_chunk().unwrap().is_some() {}
                chunks.end_pass();
                chunks.rewind().unwrap();
            }
            chunks.set_progress(false);
            while chunks.next_chunk().unwrap().is_some() {}
            chunks.end_pass();
        });
        let chunks = if ext == "parquet" { 5 } else { 2 };
        assert_eq!(
            seen.len(),
            2 * (chunks + 1),
            "{ext}: a report a chunk and one at the end, two passes"
        );
        for pass in seen.chunks(chunks + 1) {
            assert!(
                pass.windows(2)
                    .all(|w| w[0].bytes <= w[1].bytes && w[0].rows <= w[1].rows),
                "{ext}"
            );
            let last = pass.last().unwrap();
            assert_eq!((last.bytes, last.rows, last.done), (total, 1009, true), "{ext}");
            assert_eq!(pass.iter().filter(|p| p.done).count(), 1, "{ext}");
        }
    }
}

/// A damaged first row group fails the read with its own error on any
/// thread count: the same one-line error on 1-4 threads, whichever thread
/// found it.
#[test]
fn a_damaged_first_row_group_is_the_error_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("d.parquet");
    write_parquet(&pq, &[sampled_batch()], 700);
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(std::fs::File::open(&pq).unwrap()).unwrap(),
    )
    .clone();
    assert!(meta.num_row_groups() >= 4, "ranges for up to 4 threads");
    // The first page header of the first column of row group 0, overwritten.
    let at = meta.row_group(0).column(0).data_page_offset() as usize;
    let mut bytes = std::fs::read(&pq).unwrap();
    bytes[at..at + 16].fill(0xFF);
    std::fs::write(&pq, &bytes).unwrap();
    let mut first = None;
    for threads in 1..=4 {
        bpnet::set_threads(threads);
        let e = err(&pq);
        assert!(
            e.contains(&pq.display().to_string()) && e.contains("after row 0"),
            "{threads} threads: {e}"
        );
        assert!(!e.contains('\n') && !e.contains("thread failed"), "{e}");
        assert_eq!(first.get_or_insert_with(|| e.clone()), &e, "{threads} threads");
    }
    bpnet::set_threads(1);
}

/// Asking only for columns the file lacks reads no column, no rows (no
/// column holds the rows the metadata claims) and no error (preprocessing
/// then names the missing column), on any thread count.
#[test]
fn asking_only_for_absent_columns_reads_no_column() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("t.parquet");
    write_parquet(&pq, &[batch()], 1000);
    for threads in 1..=3 {
        bpnet::set_threads(threads);
        let t = read_data(&pq, &CsvOptions::default(), Some(&["absent".to_string()])).unwrap();
        assert_eq!((t.n_cols(), t.len()), (0, 0));
    }
    bpnet::set_threads(1);
}

/// A Parquet or Arrow file of a schema and no rows is refused, whole and
/// in chunks, as a CSV of a header alone is: `eval` reported an MSE of 0
/// over 0 rows (exit 0) and `predict` wrote a header.
#[test]
fn a_file_of_no_rows_is_refused_as_a_header_only_csv_is() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(Vec::<f64>::new())),
        Arc::new(StringArray::from(Vec::<&str>::new())),
    ];
    let empty = RecordBatch::try_new(schema, columns).unwrap();
    let (pq, ipc) = (dir.path().join("e.parquet"), dir.path().join("e.arrow"));
    write_parquet(&pq, std::slice::from_ref(&empty), 1024);
    write_ipc(&ipc, &[empty]);
    for path in [&pq, &ipc] {
        let whole = read_data(path, &CsvOptions::default(), None).unwrap_err().to_string();
        let chunked = bpnet::data::table::ChunkReader::open(path, &CsvOptions::default(), 1 << 16)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for e in [whole, chunked] {
            assert!(
                e.contains(&*path.display().to_string()) && e.contains("a schema (x, label) and no data rows"),
                "{e}"
            );
        }
    }
}
