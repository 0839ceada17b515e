//! Predictions written as Parquet (`bpnet predict --output x.parquet`): a
//! file written chunk by chunk equals one written at once, column types come
//! from the model (not from the rows), numbers are the values of the CSV
//! text, row groups are bounded, and a malformed cell is an error naming the
//! file and the column.
#![cfg(feature = "columnar")]

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bpnet::data::table::{PredictionParquet, ROW_GROUP, predictions_to_parquet};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

const HEADER: &str = "prediction,p_a,p_b\n";

/// `rows` prediction lines as `bpnet predict` prints them.
fn rows(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let p = (i * 7919 % 10_007) as f64 / 10_007.0;
        let class = if p > 0.5 { "b" } else { "a" };
        s += &format!("{class},{:.6},{:.6}\n", 1.0 - p, p);
    }
    s
}

/// The batches of a Parquet file and its row-group sizes.
fn read(bytes: Vec<u8>) -> (Vec<RecordBatch>, Vec<i64>) {
    let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    let groups = b.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
    let batches = b.build().unwrap().map(|r| r.unwrap()).collect();
    (batches, groups)
}

/// Every column of `batches` as text (numbers by their `f64` bits).
fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); batches[0].num_columns()];
    for b in batches {
        for (c, col) in b.columns().iter().enumerate() {
            for r in 0..col.len() {
                out[c].push(match col.data_type() {
                    DataType::Utf8 => col.as_string::<i32>().value(r).to_string(),
                    _ => col.as_primitive::<Float64Type>().value(r).to_bits().to_string(),
                });
            }
        }
    }
    out
}

#[test]
fn chunks_make_the_file_written_at_once_with_bounded_row_groups() {
    let n = 2 * ROW_GROUP + 4321;
    let text = rows(n);
    let path = Path::new("p.parquet");
    let once = predictions_to_parquet(&format!("{HEADER}{text}"), &[true, false, false], path).unwrap();
    let mut w = PredictionParquet::new(Vec::new(), HEADER, &[true, false, false], path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(1000) {
        w.write_rows(&(chunk.join("\n") + "\n")).unwrap();
    }
    w.write_rows("").unwrap();
    let chunked = w.finish().unwrap();
    let (a, groups) = read(once);
    let (b, chunk_groups) = read(chunked);
    assert_eq!(groups, [ROW_GROUP as i64, ROW_GROUP as i64, 4321]);
    assert_eq!(chunk_groups, groups);
    let schema = a[0].schema();
    let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    assert_eq!(types, [&DataType::Utf8, &DataType::Float64, &DataType::Float64]);
    assert_eq!(b[0].schema(), schema);
    let (ca, cb) = (cells(&a), cells(&b));
    assert_eq!(ca, cb);
    // The numbers are the values of the CSV text.
    for (r, line) in lines.iter().enumerate().step_by(997) {
        let v: Vec<&str> = line.split(',').collect();
        assert_eq!(ca[0][r], v[0]);
        assert_eq!(ca[2][r], v[2].parse::<f64>().unwrap().to_bits().to_string(), "row {r}");
    }
}

#[test]
fn column_types_come_from_the_model_not_the_rows() {
    // Class names that are numbers: the prediction column is numeric.
    let bytes = predictions_to_parquet(
        "prediction,p_0,p_1\n1,0.2,0.8\n",
        &[false, false, false],
        Path::new("n.parquet"),
    )
    .unwrap();
    let (a, _) = read(bytes);
    assert_eq!(a[0].schema().field(0).data_type(), &DataType::Float64);
    // A text column stays text even when every row seen holds a number.
    let bytes = predictions_to_parquet(
        "prediction,p_2,p_x\n2,0.9,0.1\n",
        &[true, false, false],
        Path::new("t.parquet"),
    )
    .unwrap();
    let (a, _) = read(bytes);
    assert_eq!(a[0].schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(cells(&a)[0], ["2"]);
}

#[test]
fn a_cell_that_is_not_a_number_names_the_file_and_column() {
    let e = predictions_to_parquet("prediction,p_a\na,oops\n", &[true, false], Path::new("out.parquet"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("out.parquet") && e.contains("column 'p_a'"), "{e}");
    let e = predictions_to_parquet("prediction,p_a\n", &[true], Path::new("out.parquet"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 columns but 1 column types"), "{e}");
}
