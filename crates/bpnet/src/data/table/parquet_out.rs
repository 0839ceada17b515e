//! Predictions written as Parquet while they are computed (`bpnet predict
//! --output x.parquet`, in memory or streamed): the columns of the CSV that
//! `bpnet predict` prints, numbers as `Float64` (the value the CSV text
//! gives), class names as `Utf8` unless every class name of the model is a
//! number. The column types come from the model, not from the rows seen, so
//! a file written in chunks has the schema of one written at once.
//!
//! Row groups hold at most [`ROW_GROUP`] rows: the writer keeps one row
//! group's encoded columns in memory, so its memory is bounded whatever
//! the number of rows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::data::{CsvOptions, parse_csv};
use crate::error::{Error, Result};

/// Most rows per row group.
pub const ROW_GROUP: usize = 65_536;

/// A Parquet file of prediction rows, written chunk by chunk.
pub struct PredictionParquet<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    header: String,
    path: PathBuf,
}

impl<W: Write + Send> PredictionParquet<W> {
    /// A writer into `out` of the columns of `header` (the CSV header line,
    /// with its newline); `text[c]` says whether column `c` holds class
    /// names (`Utf8`) rather than numbers. `path` names the file in errors.
    pub fn new(out: W, header: &str, text: &[bool], path: &Path) -> Result<Self> {
        let names: Vec<String> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(header.as_bytes())
            .records()
            .next()
            .transpose()
            .map_err(|e| fail(path, format!("header: {e}")))?
            .map_or_else(Vec::new, |r| r.iter().map(str::to_string).collect());
        if names.len() != text.len() {
            return Err(fail(
                path,
                format!("{} columns but {} column types", names.len(), text.len()),
            ));
        }
        let fields: Vec<Field> = names
            .iter()
            .zip(text)
            .map(|(n, &t)| Field::new(n, if t { DataType::Utf8 } else { DataType::Float64 }, false))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(|e| fail(path, e.to_string()))?;
        Ok(PredictionParquet {
            writer,
            schema,
            header: header.to_string(),
            path: path.to_path_buf(),
        })
    }

    /// Appends `rows`: CSV lines as `bpnet predict` prints them, without
    /// the header.
    pub fn write_rows(&mut self, rows: &str) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let text = format!("{}{rows}", self.header);
        let raw = parse_csv(text.as_bytes(), &self.path, &csv_options())?;
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (c, field) in self.schema.fields().iter().enumerate() {
            let cells = raw.rows.iter().map(|r| r[c].as_str());
            if field.data_type() == &DataType::Utf8 {
                arrays.push(Arc::new(StringArray::from_iter_values(cells)));
                continue;
            }
            let values = cells
                .map(|s| s.parse::<f64>())
                .collect::<std::result::Result<Vec<f64>, _>>()
                .map_err(|e| fail(&self.path, format!("column '{}': {e}", field.name())))?;
            arrays.push(Arc::new(Float64Array::from(values)));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| fail(&self.path, e.to_string()))?;
        self.writer.write(&batch).map_err(|e| fail(&self.path, e.to_string()))
    }

    /// Writes the last row group and the footer; returns the output.
    pub fn finish(self) -> Result<W> {
        let path = self.path;
        self.writer.into_inner().map_err(|e| fail(&path, e.to_string()))
    }
}

/// The whole of `table_csv` (a header line and rows, as `bpnet predict`
/// prints them) as the bytes of a Parquet file; see [`PredictionParquet`].
pub fn predictions_to_parquet(table_csv: &str, text: &[bool], path: &Path) -> Result<Vec<u8>> {
    let split = table_csv.find('\n').map_or(table_csv.len(), |i| i + 1);
    let (header, rows) = table_csv.split_at(split);
    let mut w = PredictionParquet::new(Vec::new(), header, text, path)?;
    w.write_rows(rows)?;
    w.finish()
}

fn csv_options() -> CsvOptions {
    CsvOptions {
        header: Some(true),
        delimiter: b',',
        ..Default::default()
    }
}

fn fail(path: &Path, reason: String) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: format!("writing Parquet: {reason}"),
    }
}
