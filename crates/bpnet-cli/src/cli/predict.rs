//! `bpnet predict`: predictions of a saved model for new rows, as CSV.

use bpnet::io::{Kind, OutputPlan, load_model, write_atomic};
use bpnet::layers::sigmoid;
use bpnet::train::argmax;
use bpnet::workflow::stream::choose_stream;
use bpnet::workflow::{Pipeline, data_path, unlabelled};
use bpnet::{Matrix, Result};
use std::path::PathBuf;

/// Options of `bpnet predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Model file written by `bpnet train`.
    #[arg(long)]
    model: PathBuf,
    /// Rows to predict: a CSV with the training features (target columns may be absent), or an IDX folder / `mnist`.
    #[arg(long)]
    data: String,
    /// Write the predictions here (CSV) instead of stdout (`--out`, as the
    /// other commands name their output, is the same option).
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

/// Runs `bpnet predict`.
pub fn run(a: &PredictArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let pipeline = Pipeline::of_model(&file, &a.model)?;
    pipeline.check_data(&a.data, &a.model)?;
    if let Some(output) = &a.output {
        let mut plan = OutputPlan::new(a.overwrite);
        plan.input("--model", &a.model).input("--data", &data_path(&a.data));
        plan.output("--output", output, predictions_kind(&pipeline));
        plan.check()?;
    }
    super::read_progress::install(false);
    if let Pipeline::Table {
        delimiter,
        header,
        preprocessor,
    } = &pipeline
    {
        let opts = super::stream_eval::csv_options(*delimiter, *header)?;
        if let Some(note) = choose_stream(&a.data, stream_mode(a.stream, a.no_stream), &opts)? {
            eprintln!("{note}");
            return super::stream_eval::predict(a.output.as_deref(), &a.data, &opts, preprocessor, &file, &a.model);
        }
    }
    let x = unlabelled(&pipeline, &a.data)?;
    // The fused network (batch normalization folded into the Dense layers),
    // as `bpnet eval` uses: equal to the eval-mode forward up to rounding;
    // an ensemble's members' probabilities (or values) averaged.
    let out = super::ensemble::net_of(&file, &a.model)?.forward(&x)?;
    let csv = match &pipeline {
        Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => {
            let values = preprocessor.decode_targets(&out);
            let mut s = preprocessor.target_columns().join(",") + "\n";
            value_rows(&values, &mut s);
            s
        }
        _ => class_csv(&out, &pipeline.class_names().unwrap_or_default()),
    };
    match &a.output {
        Some(p) if bpnet::data::Format::of(p) == bpnet::data::Format::Parquet => {
            write_atomic(p, &parquet_bytes(&csv, &text_columns(&pipeline), p)?)?;
            println!("wrote {} predictions to {}", out.rows(), p.display());
        }
        Some(p) => {
            write_atomic(p, csv.as_bytes())?;
            println!("wrote {} predictions to {}", out.rows(), p.display());
        }
        None => print!("{csv}"),
    }
    Ok(())
}

/// The predictions as a Parquet file (`--output x.parquet`): the same
/// columns as the CSV, numbers as `Float64`, class names as strings (see
/// [`text_columns`]).
#[cfg(feature = "columnar")]
fn parquet_bytes(csv: &str, text: &[bool], path: &std::path::Path) -> Result<Vec<u8>> {
    bpnet::data::table::predictions_to_parquet(csv, text, path)
}

#[cfg(not(feature = "columnar"))]
fn parquet_bytes(_csv: &str, _text: &[bool], path: &std::path::Path) -> Result<Vec<u8>> {
    Err(no_parquet(path))
}

/// The error for a Parquet output from a build without it.
#[cfg(not(feature = "columnar"))]
pub fn no_parquet(path: &std::path::Path) -> bpnet::Error {
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

/// Predictions as an output kind: an existing file holds them when its
/// header is the one this model writes (`prediction,...` for classes).
pub fn predictions_kind(pipeline: &Pipeline) -> Kind {
    match pipeline {
        Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => {
            Kind::csv("predictions", &[&preprocessor.target_columns().join(",")])
        }
        _ => Kind::csv("predictions", &["prediction", "prediction,"]),
    }
}

/// `prediction,p_<class>...` rows: the class name and softmax probabilities
/// (or the sigmoid probability for one-output models).
fn class_csv(logits: &Matrix<f32>, names: &[String]) -> String {
    let mut s = class_header(names);
    class_rows(logits, names, &mut s);
    s
}

/// The header line of [`class_csv`].
pub fn class_header(names: &[String]) -> String {
    let mut s = String::from("prediction");
    for n in names {
        s += &format!(",p_{n}");
    }
    s.push('\n');
    s
}

/// The rows of [`class_csv`] for `logits`, appended to `s`.
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
        *s += names.get(class).map_or(&class.to_string(), |n| n);
        for p in probs {
            *s += &format!(",{p:.6}");
        }
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
