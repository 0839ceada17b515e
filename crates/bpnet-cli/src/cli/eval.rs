//! `bpnet eval`: metrics of a saved model on a labelled data set.

use super::data::{Pipeline, labelled};
use bpnet::data::{Dataset, Targets};
use bpnet::io::load_model;
use bpnet::loss::Loss;
use bpnet::train::evaluate;
use bpnet::train::metrics::{ClassMetrics, RegressionMetrics};
use bpnet::{Result, Sequential};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Options of `bpnet eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Model file written by `bpnet train`.
    #[arg(long)]
    model: PathBuf,
    /// Labelled data: a CSV like the training file, `mnist` (its test set) or an IDX folder.
    #[arg(long)]
    data: String,
    /// Print a JSON object with the metrics as the last line.
    #[arg(long)]
    json: bool,
}

/// Metrics for display and for scripts.
pub struct TestMetrics {
    /// One line, e.g. `accuracy 97.12%, macro F1 0.9705, loss 0.0912 (10000 rows)`.
    pub summary: String,
    /// Per-class report or regression metrics, as text.
    pub report: String,
    /// Everything as JSON.
    pub json: Value,
}

/// Evaluates `model` on `data`; regression metrics are in the targets' original units.
pub fn metrics(model: &mut Sequential<f32>, loss: Loss, data: &Dataset, pipeline: &Pipeline) -> Result<TestMetrics> {
    let ev = evaluate(model, data, loss, 1024)?;
    let rows = data.len();
    match &data.targets {
        Targets::Classes { labels, classes } => {
            let m = ClassMetrics::new(labels, &ev.classes(), *classes);
            let names = pipeline
                .class_names()
                .unwrap_or_else(|| (0..*classes).map(|c| c.to_string()).collect());
            Ok(TestMetrics {
                summary: format!(
                    "accuracy {:.2}%, macro F1 {:.4}, loss {:.4} ({rows} rows)",
                    m.accuracy * 100.0,
                    m.macro_f1(),
                    ev.loss
                ),
                report: m.report(&names),
                json: json!({
                    "rows": rows, "loss": ev.loss, "accuracy": m.accuracy, "macro_f1": m.macro_f1(), "classes": names,
                    "precision": m.precision, "recall": m.recall, "f1": m.f1, "confusion": m.confusion,
                }),
            })
        }
        Targets::Values(v) => {
            let (truth, pred) = match pipeline {
                Pipeline::Table { preprocessor, .. } => {
                    (preprocessor.decode_targets(v), preprocessor.decode_targets(&ev.outputs))
                }
                Pipeline::Images { .. } => (v.cast(), ev.outputs.cast()),
            };
            let m = RegressionMetrics::new(&truth, &pred);
            let summary = format!(
                "RMSE {:.4}, MAE {:.4}, R² {:.4}, MSE {:.4} ({rows} rows)",
                m.rmse, m.mae, m.r2, m.mse
            );
            Ok(TestMetrics {
                report: summary.clone(),
                summary,
                json: json!({"rows": rows, "mse": m.mse, "rmse": m.rmse, "mae": m.mae, "r2": m.r2, "loss": ev.loss}),
            })
        }
    }
}

/// Runs `bpnet eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    let pipeline = Pipeline::from_metadata(&file.metadata, &a.model)?;
    let data = labelled(&pipeline, &a.data)?;
    let loss = bpnet::train::default_loss(&data);
    let m = metrics(&mut file.model, loss, &data, &pipeline)?;
    println!("{}", m.summary);
    println!("{}", m.report.trim_end());
    if a.json {
        println!("{}", json!({"model": a.model, "data": a.data, "metrics": m.json}));
    }
    Ok(())
}
