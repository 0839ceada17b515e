//! `bpnet predict`: predictions of a saved model for new rows, as CSV.

use bpnet::io::{Kind, OutputPlan, load_model, write_atomic};
use bpnet::layers::sigmoid;
use bpnet::train::argmax;
use bpnet::workflow::stream::{GROUP, choose_stream};
use bpnet::workflow::{Pipeline, data_path, unlabelled};
use bpnet::{Matrix, Result};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Options of `bpnet predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Model file written by `bpnet train` (or `bpnet import`).
    #[arg(long)]
    model: PathBuf,
    /// Rows to predict: a CSV with the training features (target columns may be absent), or an IDX folder / `mnist`;
    /// for a model from `bpnet import`, the feature matrix itself (one numeric column per input).
    #[arg(long)]
    data: String,
    /// Write the predictions here (CSV) instead of stdout (`--out`, as the
    /// other commands name their output, is the same option; `-` is stdout).
    #[arg(long, visible_alias = "out")]
    output: Option<PathBuf>,
    /// Replace an existing --output file even when it does not hold predictions
    /// (an input file is never replaced).
    #[arg(long)]
    overwrite: bool,
    /// Read the data in chunks and write predictions as they are computed
    /// (bounded memory) [default: only when the file would not fit in memory].
    #[arg(long, overrides_with = "no_stream")]
    stream: bool,
    /// Load the data in memory even when it seems not to fit.
    #[arg(long, overrides_with = "stream")]
    no_stream: bool,
}

/// `on`, `off` or `auto` from `--stream` / `--no-stream`.
pub fn stream_mode(stream: bool, no_stream: bool) -> &'static str {
    match (stream, no_stream) {
        (true, _) => "on",
        (_, true) => "off",
        _ => "auto",
    }
}

/// Whether `path`'s extension names a format other than CSV and Parquet
/// (Arrow IPC, JSON, tab-separated, spreadsheets, NumPy), which predict
/// does not write.
fn other_format(path: &Path) -> bool {
    const OTHER: [&str; 9] = ["json", "jsonl", "ndjson", "tsv", "tab", "xlsx", "xls", "npy", "npz"];
    bpnet::data::Format::of(path) == bpnet::data::Format::Ipc
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| OTHER.iter().any(|o| e.eq_ignore_ascii_case(o)))
}

/// Runs `bpnet predict`.
pub fn run(a: &PredictArgs) -> Result<()> {
    // `-` is stdout, as for most tools (it wrote a file named `-`).
    let output = a.output.as_deref().filter(|p| p.as_os_str() != "-");
    if let Some(p) = output.filter(|p| other_format(p)) {
        // It wrote CSV text under another format's name, which nothing read back.
        return Err(bpnet::Error::config(
            "--output",
            format!(
                "{}: predictions are written as CSV, or as Parquet for .parquet and .pq; not in the format its extension names",
                p.display()
            ),
        ));
    }
    let file = load_model(&a.model)?;
    let pipeline = Pipeline::of_model(&file, &a.model)?;
    pipeline.check_data(&a.data, &a.model)?;
    if let Some(output) = output {
        let mut plan = OutputPlan::new(a.overwrite);
        plan.input("--model", &a.model).input("--data", &data_path(&a.data));
        plan.output("--output", output, predictions_kind(&pipeline));
        plan.check()?;
    }
    super::read_progress::install(false);
    check_stream(&pipeline, a.stream)?;
    if let Pipeline::Table {
        delimiter,
        header,
        preprocessor,
    } = &pipeline
    {
        let opts = super::stream_eval::csv_options(*delimiter, *header, preprocessor)?;
        if let Some(note) = choose_stream(&a.data, stream_mode(a.stream, a.no_stream), &opts)? {
            eprintln!("{note}");
            return super::stream_eval::predict(output, &a.data, &opts, preprocessor, &file, &a.model);
        }
    }
    let x = unlabelled(&pipeline, &a.data)?;
    // The fused network (batch normalization folded into the Dense layers),
    // as `bpnet eval` uses: equal to the eval-mode forward up to rounding;
    // an ensemble's members' probabilities (or values) averaged.
    // In groups of rows, as the streamed predict and `bpnet eval` run them,
    // so that a row's output does not depend on how its file was read.
    let out = super::ensemble::net_of(&file, &a.model)?.forward_in_groups(&x, GROUP)?;
    bpnet::workflow::check_finite_outputs(&out, 0, &data_path(&a.data))?;
    let (header, rows) = prediction_csv(&pipeline, &out);
    match output {
        Some(p) if bpnet::data::Format::of(p) == bpnet::data::Format::Parquet => {
            write_atomic(p, &parquet_bytes(&header, &rows, &text_columns(&pipeline), p)?)?;
            println!("wrote {} to {}", prediction_count(out.rows()), p.display());
        }
        Some(p) => {
            write_atomic(p, (header + &rows).as_bytes())?;
            println!("wrote {} to {}", prediction_count(out.rows()), p.display());
        }
        None => print!("{header}{rows}"),
    }
    Ok(())
}

/// `1 prediction`, `150 predictions`.
pub fn prediction_count(n: usize) -> String {
    format!("{n} prediction{}", if n == 1 { "" } else { "s" })
}

/// `--stream` with a model without preprocessing, which is read in memory,
/// is an error.
pub fn check_stream(pipeline: &Pipeline, stream: bool) -> Result<()> {
    match (pipeline, stream) {
        (Pipeline::Features { .. }, true) => Err(bpnet::Error::config(
            "--stream",
            "a model without preprocessing (from `bpnet import`) reads its data in memory",
        )),
        _ => Ok(()),
    }
}

/// The header line and the rows of the predictions `out` (the network's
/// outputs) as CSV.
fn prediction_csv(pipeline: &Pipeline, out: &Matrix<f32>) -> (String, String) {
    let mut rows = String::new();
    match pipeline {
        Pipeline::Features { outputs, .. } => {
            output_rows(out, &mut rows);
            (output_header(*outputs), rows)
        }
        Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => {
            value_rows(&preprocessor.decode_targets(out), &mut rows);
            (value_header(preprocessor.target_columns()), rows)
        }
        _ => {
            let names = pipeline.class_names().unwrap_or_default();
            class_rows(out, &names, &mut rows);
            (class_header(&names), rows)
        }
    }
}

/// The predictions as a Parquet file (`--output x.parquet`): the columns
/// of the CSV `header` and `rows`, numbers as `Float64`, class names as
/// strings (see [`text_columns`]).
#[cfg(feature = "columnar")]
fn parquet_bytes(header: &str, rows: &str, text: &[bool], path: &Path) -> Result<Vec<u8>> {
    let mut w = bpnet::data::table::PredictionParquet::new(Vec::new(), header, text, path)?;
    w.write_rows(rows)?;
    w.finish()
}

#[cfg(not(feature = "columnar"))]
fn parquet_bytes(_header: &str, _rows: &str, _text: &[bool], path: &Path) -> Result<Vec<u8>> {
    Err(no_parquet(path))
}

/// The error for a Parquet output from a build without it.
#[cfg(not(feature = "columnar"))]
pub fn no_parquet(path: &Path) -> bpnet::Error {
    bpnet::Error::config(
        "--output",
        format!(
            "{}: this bpnet was built without the 'columnar' feature (Parquet)",
            path.display()
        ),
    )
}

/// Which prediction columns hold text: the predicted class, unless every
/// class name of the model is a number; probabilities and regression
/// values are numbers. From the model alone, so that a file written in
/// chunks has the types of one written at once.
pub fn text_columns(pipeline: &Pipeline) -> Vec<bool> {
    match pipeline {
        Pipeline::Features { outputs, .. } => vec![false; *outputs],
        Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => {
            vec![false; preprocessor.target_columns().len()]
        }
        _ => class_text_columns(&pipeline.class_names().unwrap_or_default()),
    }
}

/// [`text_columns`] of `prediction,p_<class>...`.
pub fn class_text_columns(names: &[String]) -> Vec<bool> {
    let text = !names.iter().all(|n| n.parse::<f64>().is_ok());
    std::iter::once(text).chain(names.iter().map(|_| false)).collect()
}

/// The headers of any bpnet model's predictions: a classifier's
/// (`prediction,p_<class>...`) and a model without preprocessing's
/// (`output_0,output_1...`), field by field (a data file whose first
/// column is named `prediction` is not predictions).
const ANY_PREDICTIONS: [&str; 1] = ["prediction"];

/// Field patterns of any bpnet model's predictions ([`Kind::with_patterns`]).
const PREDICTION_FIELDS: [&str; 2] = ["prediction,p_*", "output_*"];

/// Predictions as an output kind: an existing file holds them when its
/// header is a classifier's or an imported model's predictions
/// ([`ANY_PREDICTIONS`], [`PREDICTION_FIELDS`], whichever model wrote them), or the one this
/// regression model writes (its target columns, as a CSV line or as
/// Parquet column names; another regression model's target names cannot be
/// told from a data file's header).
pub fn predictions_kind(pipeline: &Pipeline) -> Kind {
    match pipeline {
        Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => {
            let columns = preprocessor.target_columns();
            let line = value_header(columns);
            let line = line.trim_end_matches('\n');
            let joined = columns.join(",");
            let mut headers: Vec<&str> = ANY_PREDICTIONS.to_vec();
            headers.extend([line, joined.as_str()]);
            Kind::csv(
                &format!("predictions (this model's header '{line}', or prediction,... or output_0,...)"),
                &headers,
            )
            .with_patterns(&PREDICTION_FIELDS)
        }
        _ => Kind::csv(
            "predictions (a header of prediction,... or output_0,...)",
            &ANY_PREDICTIONS,
        )
        .with_patterns(&PREDICTION_FIELDS),
    }
}

/// `field` as one CSV field, as the `csv` crate writes it (RFC 4180):
/// quoted, with its quotes doubled, when it holds a comma, a quote or a
/// line break.
pub fn csv_field(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// `fields` as one CSV line, with its newline (a lone empty field quoted,
/// so that the line is not blank).
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut s = match fields {
        [one] if one.as_ref().is_empty() => "\"\"".to_string(),
        _ => fields
            .iter()
            .map(|f| csv_field(f.as_ref()))
            .collect::<Vec<_>>()
            .join(","),
    };
    s.push('\n');
    s
}

/// The header line of regression predictions: the target columns.
pub fn value_header(columns: &[String]) -> String {
    csv_line(columns)
}

/// The header line of class predictions: `prediction,p_<class>...`.
pub fn class_header(names: &[String]) -> String {
    let probs = names.iter().map(|n| format!("p_{n}"));
    csv_line(
        &std::iter::once("prediction".to_string())
            .chain(probs)
            .collect::<Vec<_>>(),
    )
}

/// `prediction,p_<class>...` rows for `logits`, appended to `s`: the class
/// name and softmax probabilities (or the sigmoid probability for
/// one-output models).
pub fn class_rows(logits: &Matrix<f32>, names: &[String], s: &mut String) {
    for r in 0..logits.rows() {
        let z = logits.row(r);
        let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f32> = z.iter().map(|&v| (v - max).exp()).collect();
        let sum: f32 = e.iter().sum();
        let probs: Vec<f32> = if z.len() == 1 {
            vec![sigmoid(z[0])]
        } else {
            e.iter().map(|v| v / sum).collect()
        };
        let class = argmax(z);
        *s += &names.get(class).map_or(Cow::Owned(class.to_string()), |n| csv_field(n));
        for p in probs {
            s.push(',');
            *s += &prob_text(p);
        }
        s.push('\n');
    }
}

/// A probability as the shortest text that reads back as the same f32:
/// plain below 1 down to 1e-4, in exponent form under it (`3.3620887e-5`),
/// so that a small probability is neither rounded to 0 nor written as 40
/// digits.
pub fn prob_text(p: f32) -> String {
    if p != 0.0 && p.abs() < 1e-4 {
        format!("{p:e}")
    } else {
        p.to_string()
    }
}

/// The header line of a model without preprocessing: `output_0,...`, its
/// raw outputs (the network's last layer, e.g. logits: nothing records
/// what they mean).
pub fn output_header(outputs: usize) -> String {
    csv_line(&(0..outputs).map(|i| format!("output_{i}")).collect::<Vec<_>>())
}

/// Raw outputs `out` as CSV rows (each value as the shortest text that
/// reads back as the same f32), appended to `s`.
pub fn output_rows(out: &Matrix<f32>, s: &mut String) {
    for r in 0..out.rows() {
        *s += &out.row(r).iter().map(f32::to_string).collect::<Vec<_>>().join(",");
        s.push('\n');
    }
}

/// Regression predictions `values` (original units) as CSV rows, appended to `s`.
pub fn value_rows(values: &Matrix<f64>, s: &mut String) {
    for r in 0..values.rows() {
        *s += &values
            .row(r)
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_read_back_as_the_same_f32() {
        for p in [
            0.0f32,
            1.0,
            0.5,
            0.1,
            1e-4,
            9.9999e-5,
            3.362_088_7e-5,
            1e-30,
            f32::MIN_POSITIVE,
            1e-45,
        ] {
            let text = prob_text(p);
            assert_eq!(text.parse::<f32>().unwrap(), p, "{text}");
            assert!(text.len() <= 16, "{text}");
        }
        assert_eq!(prob_text(3.362_088_7e-5), "3.3620887e-5");
        assert_eq!(prob_text(0.25), "0.25");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("setosa"), "setosa");
        assert_eq!(csv_field("x,1"), "\"x,1\"");
        assert_eq!(csv_field("z \"q\""), "\"z \"\"q\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_line(&["a", "b,c"]), "a,\"b,c\"\n");
        assert_eq!(csv_line(&[""]), "\"\"\n");
        assert_eq!(csv_line(&["", ""]), ",\n");
        assert_eq!(class_header(&["x,1".into()]), "prediction,\"p_x,1\"\n");
    }
}
