//! `bpnet predict` and `bpnet eval` on a CSV file read in chunks: bounded
//! memory whatever the file's size; predictions written as they are
//! computed (to the temporary file that replaces `--output` at the end, or
//! to stdout), byte for byte what the in-memory commands write.

use super::predict::{class_header, class_rows, value_rows};
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

/// How the model's training file was read.
pub fn csv_options(delimiter: char, header: bool) -> Result<CsvOptions> {
    let delimiter = u8::try_from(delimiter).map_err(|_| Error::config("delimiter", "not a single byte"))?;
    Ok(CsvOptions {
        header: Some(header),
        delimiter,
    })
}

/// Where predictions go: the temporary file of `--output`, or stdout.
enum Sink {
    File(AtomicWriter),
    Stdout(std::io::StdoutLock<'static>),
}

impl Sink {
    fn write(&mut self, s: &str) -> Result<()> {
        match self {
            Sink::File(w) => w.write(s.as_bytes()),
            Sink::Stdout(o) => o.write_all(s.as_bytes()).map_err(|source| Error::Io {
                path: "<stdout>".into(),
                source,
            }),
        }
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
    if let Some(p) = output.filter(|p| Format::of(p) != Format::Csv) {
        return Err(Error::config(
            "--output",
            format!("{}: while streaming, predictions are written as CSV only", p.display()),
        ));
    }
    let net = super::ensemble::net_of(file, model)?;
    let mut reader = ChunkReader::open(Path::new(data), opts, bpnet::workflow::stream::chunk_bytes())?;
    let mut sink = match output {
        Some(p) => Sink::File(AtomicWriter::create(p)?),
        None => Sink::Stdout(std::io::stdout().lock()),
    };
    let names = pre.class_names();
    let header = match names {
        Some(n) => class_header(n),
        None => pre.target_columns().join(",") + "\n",
    };
    sink.write(&header)?;
    let mut text = String::new();
    let rows = stream_outputs(&mut reader, pre, &net, &mut |out| {
        text.clear();
        match names {
            Some(n) => class_rows(out, n, &mut text),
            None => value_rows(&pre.decode_targets(out), &mut text),
        }
        sink.write(&text)
    })?;
    match (sink, output) {
        (Sink::File(w), Some(p)) => {
            w.commit()?;
            println!("wrote {rows} predictions to {}", p.display());
        }
        (Sink::Stdout(mut o), _) => o.flush().map_err(|source| Error::Io {
            path: "<stdout>".into(),
            source,
        })?,
        (Sink::File(w), None) => w.commit()?,
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
    let mut reader = ChunkReader::open(Path::new(data), opts, bpnet::workflow::stream::chunk_bytes())?;
    let m = stream_metrics(&mut reader, preprocessor, &|_| true, &net, loss)?;
    Ok(m.finish(pipeline))
}
