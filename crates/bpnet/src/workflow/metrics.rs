//! Test metrics of a trained model: a one-line summary, a report and JSON
//! (classification: accuracy, macro F1, per-class precision/recall/F1 and
//! the confusion matrix; regression: RMSE, MAE, R², MSE in the target's
//! original units).

use super::data::Pipeline;
use crate::data::{Dataset, Targets};
use crate::loss::Loss;
use crate::train::evaluate_fused_split;
use crate::train::metrics::{ClassMetrics, RegressionMetrics};
use crate::train::{Evaluation, evaluate_ensemble};
use crate::{Combine, EnsembleNet, InferenceNet};
use crate::{Error, Matrix, Result, Sequential};
use serde_json::{Value, json};

/// Metrics for display and for scripts.
pub struct TestMetrics {
    /// One line, e.g. `accuracy 97.12%, macro F1 0.9705, loss 0.0912 (10000 rows)`.
    pub summary: String,
    /// Per-class report, as text; empty for regression, whose summary
    /// holds every metric.
    pub report: String,
    /// Everything as JSON.
    pub json: Value,
}

/// Evaluates `model` on `data` through its fused inference network (as
/// `bpnet eval` and `bpnet predict` do); regression metrics are in the
/// targets' original units.
pub fn metrics(model: &Sequential<f32>, loss: Loss, data: &Dataset, pipeline: &Pipeline) -> Result<TestMetrics> {
    metrics_split(model, loss, data, pipeline, &crate::comm::Single)
}

/// A model's predictions on held-out rows, with the rows' true targets: what
/// a blend's members are weighted by (`bpnet tune`).
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOut {
    /// `[rows, outputs]`: what an ensemble averages ([`Combine`]): class
    /// probabilities (one column, P(class 1), for a one-output classifier),
    /// or regression values in the targets' original units.
    pub predictions: Matrix<f64>,
    /// `[rows, 1]` class indices, or `[rows, targets]` values in original units.
    pub truth: Matrix<f64>,
    /// The class names the indices and columns refer to (None for regression).
    pub classes: Option<Vec<String>>,
}

impl HeldOut {
    /// The rows of `parts` one after the other; an error when their widths
    /// or class names differ.
    pub fn concat(parts: &[HeldOut]) -> Result<HeldOut> {
        let first = parts
            .first()
            .ok_or_else(|| Error::State("no held-out predictions".into()))?;
        let (w, t) = (first.predictions.cols(), first.truth.cols());
        if parts
            .iter()
            .any(|p| p.predictions.cols() != w || p.truth.cols() != t || p.classes != first.classes)
        {
            return Err(Error::State(
                "held-out predictions of different widths or classes".into(),
            ));
        }
        let stack = |m: &dyn Fn(&HeldOut) -> &Matrix<f64>, cols: usize| {
            let data: Vec<f64> = parts.iter().flat_map(|p| m(p).as_slice().iter().copied()).collect();
            Matrix::from_vec(data.len() / cols.max(1), cols, data)
        };
        Ok(HeldOut {
            predictions: stack(&|p| &p.predictions, w)?,
            truth: stack(&|p| &p.truth, t)?,
            classes: first.classes.clone(),
        })
    }
}

/// [`metrics`] and the model's [`HeldOut`] predictions on `data`.
pub fn metrics_held_out(
    model: &Sequential<f32>,
    loss: Loss,
    data: &Dataset,
    pipeline: &Pipeline,
) -> Result<(TestMetrics, HeldOut)> {
    let ev = evaluate_fused_split(&InferenceNet::new(model)?, data, loss, 1024, &crate::comm::Single)?;
    held_out_of(ev, loss, data, pipeline)
}

/// [`metrics_held_out`] for an ensemble: its averaged prediction.
pub fn ensemble_metrics_held_out(
    net: &EnsembleNet,
    loss: Loss,
    data: &Dataset,
    pipeline: &Pipeline,
) -> Result<(TestMetrics, HeldOut)> {
    held_out_of(evaluate_ensemble(net, data, loss, 1024)?, loss, data, pipeline)
}

/// The metrics and held-out predictions of an evaluation of `data`.
fn held_out_of(ev: Evaluation, loss: Loss, data: &Dataset, pipeline: &Pipeline) -> Result<(TestMetrics, HeldOut)> {
    let probs = Combine::for_loss(loss, ev.outputs.cols()).probabilities(&ev.outputs);
    let held = match (&data.targets, pipeline) {
        (Targets::Classes { labels, .. }, _) => HeldOut {
            predictions: probs.cast(),
            truth: Matrix::from_vec(labels.len(), 1, labels.iter().map(|&l| l as f64).collect())?,
            classes: pipeline.class_names(),
        },
        (Targets::Values(v), Pipeline::Table { preprocessor, .. }) => HeldOut {
            predictions: preprocessor.decode_targets(&probs),
            truth: preprocessor.decode_targets(v),
            classes: None,
        },
        (Targets::Values(v), Pipeline::Images { .. } | Pipeline::Features { .. }) => HeldOut {
            predictions: probs.cast(),
            truth: v.cast(),
            classes: None,
        },
    };
    Ok((metrics_of(ev, data, pipeline)?, held))
}

/// [`metrics`] with the rows split over the ranks of `comm` (every rank
/// gets the metrics of all rows).
pub fn metrics_split(
    model: &Sequential<f32>,
    loss: Loss,
    data: &Dataset,
    pipeline: &Pipeline,
    comm: &dyn crate::comm::Comm,
) -> Result<TestMetrics> {
    let ev = evaluate_fused_split(&InferenceNet::new(model)?, data, loss, 1024, comm)?;
    metrics_of(ev, data, pipeline)
}

/// [`metrics`] of an ensemble's averaged prediction.
pub fn ensemble_metrics(net: &EnsembleNet, loss: Loss, data: &Dataset, pipeline: &Pipeline) -> Result<TestMetrics> {
    let ev = evaluate_ensemble(net, data, loss, 1024)?;
    metrics_of(ev, data, pipeline)
}

fn metrics_of(ev: Evaluation, data: &Dataset, pipeline: &Pipeline) -> Result<TestMetrics> {
    let rows = data.len();
    match &data.targets {
        Targets::Classes { labels, classes } => {
            let m = ClassMetrics::new(labels, &ev.classes(), *classes);
            Ok(class_metrics(m, ev.loss, rows, pipeline))
        }
        Targets::Values(v) => {
            let (truth, pred) = match pipeline {
                Pipeline::Table { preprocessor, .. } => {
                    (preprocessor.decode_targets(v), preprocessor.decode_targets(&ev.outputs))
                }
                Pipeline::Images { .. } | Pipeline::Features { .. } => (v.cast(), ev.outputs.cast()),
            };
            Ok(regression_metrics(
                RegressionMetrics::new(&truth, &pred),
                ev.loss,
                rows,
                pipeline,
            ))
        }
    }
}

/// An error for the first row of `out` (row `first_row` of the file at
/// `path` is its row 0) whose output is not finite: an input the reader
/// takes (within ±1e30) can still grow past f32 once scaled by a column's
/// tiny spread in training, and a NaN output had been printed as a
/// prediction (a class label beside NaN probabilities), with exit 0.
pub fn check_finite_outputs(out: &Matrix<f32>, first_row: usize, path: &std::path::Path) -> Result<()> {
    let Some((r, what)) = first_non_finite(out) else {
        return Ok(());
    };
    Err(Error::Format {
        path: path.to_path_buf(),
        reason: format!("data row {}: {}", first_row + r + 1, non_finite_reason(what)),
    })
}

/// The first row of `out` holding a value that is not finite (0-based),
/// with "NaN" or "infinite" for what it holds.
pub fn first_non_finite(out: &Matrix<f32>) -> Option<(usize, &'static str)> {
    let r = (0..out.rows()).find(|&r| out.row(r).iter().any(|v| !v.is_finite()))?;
    let nan = out.row(r).iter().any(|v| v.is_nan());
    Some((r, if nan { "NaN" } else { "infinite" }))
}

/// Why a row whose output is `what` ("NaN" or "infinite") gets no prediction.
pub fn non_finite_reason(what: &str) -> String {
    format!(
        "the network's output is {what}, so no prediction is made for it (a value far from its column's \
         training values, scaled by their spread, can grow past 32-bit floats)"
    )
}

/// Classification metrics for display and scripts.
pub(crate) fn class_metrics(m: ClassMetrics, loss: f64, rows: usize, pipeline: &Pipeline) -> TestMetrics {
    let classes = m.confusion.len();
    let names = pipeline
        .class_names()
        .unwrap_or_else(|| (0..classes).map(|c| c.to_string()).collect());
    TestMetrics {
        summary: format!(
            "accuracy {:.2}%, macro F1 {:.4}, loss {:.4} ({rows} rows)",
            m.accuracy * 100.0,
            m.macro_f1(),
            loss
        ),
        report: m.report(&names),
        json: json!({
            "rows": rows, "loss": loss, "accuracy": m.accuracy, "macro_f1": m.macro_f1(), "classes": names,
            "precision": m.precision, "recall": m.recall, "f1": m.f1, "confusion": m.confusion,
        }),
    }
}

/// Regression metrics (original units) for display and scripts; with
/// several targets, each one's too (named by `pipeline`'s target columns).
/// `loss` is the training loss on the network's outputs: for a table,
/// the MSE of the standardized targets (JSON `loss_scale`).
pub(crate) fn regression_metrics(m: RegressionMetrics, loss: f64, rows: usize, pipeline: &Pipeline) -> TestMetrics {
    // A constant truth (one row, or one value) has no R²: scored 0, as
    // scikit-learn's `r2_score` does, and said so.
    let undefined = match m.r2_defined {
        true => "",
        false => " (undefined: the target is constant in these rows; 0 as scikit-learn scores it)",
    };
    let several = match m.targets.len() {
        0 | 1 => "",
        _ => " (pooled over the targets; each below)",
    };
    let summary = format!(
        "RMSE {:.4}, MAE {:.4}, R² {:.4}{undefined}, MSE {:.4}{several} ({rows} rows)",
        m.rmse, m.mae, m.r2, m.mse
    );
    let names: Vec<String> = match pipeline {
        Pipeline::Table { preprocessor, .. } => preprocessor.target_columns().to_vec(),
        Pipeline::Images { .. } | Pipeline::Features { .. } => Vec::new(),
    };
    let scale = match pipeline {
        Pipeline::Table { .. } => "standardized",
        Pipeline::Images { .. } | Pipeline::Features { .. } => "original",
    };
    let targets: Vec<Value> = m
        .targets
        .iter()
        .enumerate()
        .map(|(j, t)| {
            json!({"target": names.get(j).cloned().unwrap_or_else(|| format!("output {j}")),
                   "mse": t.mse, "rmse": t.rmse, "mae": t.mae, "r2": t.r2, "r2_defined": t.r2_defined})
        })
        .collect();
    TestMetrics {
        summary,
        report: m.report(&names),
        json: json!({
            "rows": rows, "mse": m.mse, "rmse": m.rmse, "mae": m.mae, "r2": m.r2, "r2_defined": m.r2_defined,
            "loss": loss, "loss_scale": scale, "targets": targets,
        }),
    }
}
