//! `bpnet eval`: metrics of a saved model on a labelled data set.

use bpnet::Result;
use bpnet::data::ColumnRef;
use bpnet::io::load_model;
use bpnet::workflow::stream::choose_stream;
use bpnet::workflow::{Pipeline, ensemble_metrics, labelled_with};
use serde_json::json;
use std::path::PathBuf;

/// Options of `bpnet eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Model file written by `bpnet train` (or `bpnet import`).
    #[arg(long)]
    model: PathBuf,
    /// Labelled data: a CSV like the training file, `mnist` (its test set) or an IDX folder;
    /// for a model from `bpnet import`, the feature matrix and the --target column(s).
    #[arg(long)]
    data: String,
    /// Only for a model from `bpnet import` (no preprocessing): the label column (class
    /// indices 0..K-1 for K >= 2 outputs) or one value column per output, by name or 0-based index;
    /// every other column is an input feature.
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Print a JSON object with the metrics as the last line.
    #[arg(long)]
    json: bool,
    /// Read the data in chunks (bounded memory) [default: only when the
    /// file would not fit in memory].
    #[arg(long, overrides_with = "no_stream")]
    stream: bool,
    /// Load the data in memory even when it seems not to fit.
    #[arg(long, overrides_with = "stream")]
    no_stream: bool,
}

/// Runs `bpnet eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let pipeline = Pipeline::of_model(&file, &a.model)?;
    pipeline.check_data(&a.data, &a.model)?;
    let targets = a
        .target
        .iter()
        .map(|t| t.parse::<ColumnRef>())
        .collect::<Result<Vec<_>>>()?;
    pipeline.check_targets(&targets, &a.model)?;
    super::read_progress::install(false);
    super::predict::check_stream(&pipeline, a.stream)?;
    let streamed = match &pipeline {
        Pipeline::Table {
            delimiter,
            header,
            preprocessor,
        } => {
            let opts = super::stream_eval::csv_options(*delimiter, *header, preprocessor)?;
            let mode = super::predict::stream_mode(a.stream, a.no_stream);
            match choose_stream(&a.data, mode, &opts)? {
                Some(note) => {
                    eprintln!("{note}");
                    Some(super::stream_eval::eval(&a.data, &opts, &pipeline, &file, &a.model)?)
                }
                None => None,
            }
        }
        Pipeline::Images { .. } | Pipeline::Features { .. } => None,
    };
    let m = match streamed {
        Some(m) => m,
        None => {
            let data = labelled_with(&pipeline, &a.data, &targets)?;
            let loss = bpnet::train::default_loss(&data);
            let net = super::ensemble::net_of(&file, &a.model)?;
            let m = ensemble_metrics(&net, loss, &data, &pipeline)?;
            if !m.json["loss"].as_f64().is_some_and(f64::is_finite) {
                // A non-finite output somewhere: name its row.
                let out = net.forward_in_groups(&data.features, bpnet::workflow::stream::GROUP)?;
                bpnet::workflow::check_finite_outputs(&out, 0, &bpnet::workflow::data_path(&a.data))?;
            }
            m
        }
    };
    println!("{}", m.summary);
    if !m.report.trim().is_empty() {
        println!("{}", m.report.trim_end());
    }
    if a.json {
        println!(
            "{}",
            json!({"model": a.model.to_string_lossy(), "data": a.data, "metrics": m.json})
        );
    }
    Ok(())
}
