//! `bpnet predict` and `bpnet eval` on a CSV file read in chunks: bounded
//! memory whatever the file's size; predictions written as they are
//! computed (to the temporary file that replaces `--output` at the end, or
//! to stdout), byte for byte what the in-memory commands write.

use super::predict::{class_header, class_rows, class_text_columns, value_header, value_rows};
use bpnet::data::CsvOptions;
use bpnet::data::preprocess::Preprocessor;
use bpnet::data::table::{ChunkReader, Format};
use bpnet::io::{AtomicWriter, ModelFile};
use bpnet::loss::Loss;
use bpnet::workflow::stream::{stream_metrics, stream_outputs};
use bpnet::workflow::{Pipeline, TestMetrics};
use bpnet::{Error, Result};
use std::io::Write;
use std::path::Path;

/// How the model's training file was read (its numeric columns held as
/// the training file held them, so that a row's features depend on that
/// row alone).
pub fn csv_options(delimiter: char, header: bool, pre: &Preprocessor) -> Result<CsvOptions> {
    Ok(CsvOptions {
        header: Some(header),
        delimiter: bpnet::data::delimiter_byte(delimiter)?,
        shifts: pre.shifts(),
    })
}

/// Where predictions go: the temporary file of `--output` (CSV or
/// Parquet), or stdout.
enum Sink {
    File(AtomicWriter),
    #[cfg(feature = "columnar")]
    Parquet(Box<bpnet::data::table::PredictionParquet<AtomicIo>>),
    Stdout(std::io::StdoutLock<'static>),
}

impl Sink {
    /// A Parquet file of the columns of `header` (`text`: which hold class names).
    #[cfg(feature = "columnar")]
    fn parquet(path: &Path, header: &str, text: &[bool]) -> Result<Sink> {
        let out = AtomicIo(AtomicWriter::create(path)?);
        Ok(Sink::Parquet(Box::new(bpnet::data::table::PredictionParquet::new(
            out, header, text, path,
        )?)))
    }

    #[cfg(not(feature = "columnar"))]
    fn parquet(path: &Path, _header: &str, _text: &[bool]) -> Result<Sink> {
        Err(super::predict::no_parquet(path))
    }

    /// The header line (a Parquet file has its columns already).
    fn write_header(&mut self, header: &str) -> Result<()> {
        match self {
            #[cfg(feature = "columnar")]
            Sink::Parquet(_) => Ok(()),
            _ => self.write(header),
        }
    }

    /// Prediction rows as CSV lines.
    fn write(&mut self, s: &str) -> Result<()> {
        match self {
            Sink::File(w) => w.write(s.as_bytes()),
            #[cfg(feature = "columnar")]
            Sink::Parquet(w) => w.write_rows(s),
            Sink::Stdout(o) => o.write_all(s.as_bytes()).map_err(|source| Error::Io {
                path: "<stdout>".into(),
                source,
            }),
        }
    }

    /// Completes the output: a file is renamed into place.
    fn finish(self) -> Result<()> {
        match self {
            Sink::File(w) => w.commit(),
            #[cfg(feature = "columnar")]
            Sink::Parquet(w) => w.finish()?.0.commit(),
            Sink::Stdout(mut o) => o.flush().map_err(|source| Error::Io {
                path: "<stdout>".into(),
                source,
            }),
        }
    }
}

/// An [`AtomicWriter`] as [`std::io::Write`], for the Parquet writer.
#[cfg(feature = "columnar")]
struct AtomicIo(AtomicWriter);

#[cfg(feature = "columnar")]
impl Write for AtomicIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `bpnet predict` streamed: the file `data` in chunks, predictions in
/// groups of 1024 rows, in the format of the in-memory command.
pub fn predict(
    output: Option<&Path>,
    data: &str,
    opts: &CsvOptions,
    pre: &Preprocessor,
    file: &ModelFile,
    model: &Path,
) -> Result<()> {
    let net = super::ensemble::net_of(file, model)?;
    let mut reader = ChunkReader::open(Path::new(data), opts, bpnet::workflow::stream::chunk_bytes()?)?;
    let names = pre.class_names();
    let (header, text) = match names {
        Some(n) => (class_header(n), class_text_columns(n)),
        None => (
            value_header(pre.target_columns()),
            vec![false; pre.target_columns().len()],
        ),
    };
    let mut sink = match output {
        Some(p) if Format::of(p) == Format::Parquet => Sink::parquet(p, &header, &text)?,
        Some(p) => Sink::File(AtomicWriter::create(p)?),
        None => Sink::Stdout(std::io::stdout().lock()),
    };
    // The header waits for the first rows: the first chunk is read (and
    // its columns checked) before then, so that a file the model cannot
    // read leaves nothing on stdout.
    let mut header = Some(header);
    let mut text = String::new();
    let rows = stream_outputs(&mut reader, pre, &net, Path::new(data), &mut |out| {
        if let Some(h) = header.take() {
            sink.write_header(&h)?;
        }
        text.clear();
        match names {
            Some(n) => class_rows(out, n, &mut text),
            None => value_rows(&pre.decode_targets(out), &mut text),
        }
        sink.write(&text)
    })?;
    if let Some(h) = header {
        sink.write_header(&h)?;
    }
    sink.finish()?;
    if let Some(p) = output {
        println!("wrote {} to {}", super::predict::prediction_count(rows), p.display());
    }
    Ok(())
}

/// `bpnet eval` streamed: the metrics the in-memory command prints.
pub fn eval(data: &str, opts: &CsvOptions, pipeline: &Pipeline, file: &ModelFile, model: &Path) -> Result<TestMetrics> {
    let Pipeline::Table { preprocessor, .. } = pipeline else {
        return Err(Error::config("--stream", "streaming reads CSV files"));
    };
    let net = super::ensemble::net_of(file, model)?;
    let loss = match preprocessor.class_names() {
        Some(_) => Loss::CrossEntropy,
        None => Loss::Mse,
    };
    let mut reader = ChunkReader::open(Path::new(data), opts, bpnet::workflow::stream::chunk_bytes()?)?;
    let m = stream_metrics(&mut reader, preprocessor, &|_| true, &net, loss)?.finish(pipeline);
    if !m.json["loss"].as_f64().is_some_and(f64::is_finite) {
        // A non-finite output somewhere: a second pass names its row.
        stream_outputs(&mut reader, preprocessor, &net, Path::new(data), &mut |_| Ok(()))?;
    }
    Ok(m)
}
