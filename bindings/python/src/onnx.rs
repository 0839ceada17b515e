//! `NativeModel.to_onnx`: the model and its preprocessing as an ONNX graph,
//! built the way `bpnet export` builds it.

use crate::model::NativeModel;
use bpnet::data::preprocess::Task;
use bpnet::io::{ENSEMBLE_KEY, EnsembleSection, write_atomic};
use bpnet::onnx::{ExportOptions, Head, InputScaling, OutputScaling, export_onnx_ensemble};
use bpnet::workflow::Pipeline;
use bpnet::{Error, Result, Sequential};
use std::path::Path;

/// Writes `model` to `path` as ONNX: input `features` (raw column values,
/// f32 [batch, n_features], or f64 with `input_f64`: the preprocessing then
/// runs in f64), output `logits`, `probabilities` or `predictions`
/// (regression, in the targets' units); an ensemble's members averaged as
/// `bpnet export` averages them. Returns what `bpnet export` notes about
/// float32's precision (see [`precision_notes`]).
pub fn export(
    model: &NativeModel,
    path: &Path,
    (probabilities, fold_bn): (bool, bool),
    opset: Option<i64>,
    input_f64: bool,
) -> Result<Vec<String>> {
    let (input_scaling, output_scaling, regression) = match &model.pipeline {
        Pipeline::Images { features } => (Some(InputScaling::images(*features)), None, false),
        Pipeline::Features { .. } => (None, None, false),
        Pipeline::Table { preprocessor, .. } => (
            Some(InputScaling::from_preprocessor(preprocessor)),
            OutputScaling::from_preprocessor(preprocessor)?,
            preprocessor.task() == Task::Regress,
        ),
    };
    if regression && probabilities {
        return Err(Error::config(
            "probabilities",
            "the model does regression; its outputs are values, not class scores",
        ));
    }
    let outputs = model.trainer.model.out_features().unwrap_or(0);
    let head = match (probabilities, outputs) {
        (false, _) => Head::Raw,
        (true, 1) => Head::Sigmoid,
        (true, _) => Head::Softmax,
    };
    let output_name = match (head, regression) {
        (Head::Raw, true) => "predictions",
        (Head::Raw, false) => "logits",
        _ => "probabilities",
    };
    let mut metadata = vec![(
        "architecture".to_string(),
        serde_json::to_string(&model.spec).map_err(|e| Error::State(e.to_string()))?,
    )];
    if let Some(names) = model.pipeline.class_names() {
        metadata.push(("class_names".to_string(), serde_json::json!(names).to_string()));
    }
    if !model.others.is_empty() {
        let section = EnsembleSection {
            members: 1 + model.others.len(),
            combine: model.combine,
            specs: model.other_specs.iter().any(|s| *s != model.spec).then(|| {
                std::iter::once(&model.spec)
                    .chain(&model.other_specs)
                    .cloned()
                    .collect()
            }),
        };
        let text = serde_json::to_string(&section).map_err(|e| Error::State(e.to_string()))?;
        metadata.push((ENSEMBLE_KEY.to_string(), text));
    }
    let options = ExportOptions {
        fold_bn,
        input_scaling,
        output_scaling,
        head,
        input_name: "features".into(),
        input_f64,
        output_name: output_name.into(),
        opset,
        metadata,
        doc: format!(
            "bpnet model (Python): {}",
            model.trainer.model.summary().replace('\n', "; ")
        ),
    };
    // One member exports exactly as `export_onnx`.
    let members: Vec<Sequential<f32>> = model.networks().cloned().collect();
    let onnx = export_onnx_ensemble(&members, model.combine, &options)?;
    write_atomic(path, &onnx.bytes)?;
    let headerless = matches!(model.pipeline, Pipeline::Table { header: false, .. });
    Ok(precision_notes(&options, headerless))
}

/// The columns a float32 input, and the targets a float32 output, hold
/// coarsely (`bpnet export` prints the same notes; a regression model of
/// targets near 1.7e12 gave one value for every row, silently). A model
/// fitted on arrays (`headerless`) names them `X column 0` and `y` (or `y
/// column 1`), not the engine's `col0` and `col2`.
fn precision_notes(o: &ExportOptions, headerless: bool) -> Vec<String> {
    if o.input_f64 {
        return Vec::new();
    }
    let inputs = o
        .input_scaling
        .clone()
        .map(|mut s| {
            if headerless {
                s.names = (0..s.names.len()).map(|j| format!("X column {j}")).collect();
            }
            s
        })
        .as_ref()
        .and_then(bpnet::onnx::coarse_inputs)
        .map(|held| {
            format!(
                "a float32 input holds {held} coarsely against the spread the model was trained on; \
             input_dtype='float64' keeps their precision"
            )
        });
    let outputs = o
        .output_scaling
        .clone()
        .map(|mut s| {
            if headerless {
                s.names = array_target_names(s.names.len());
            }
            s
        })
        .as_ref()
        .and_then(bpnet::onnx::coarse_outputs)
        .map(|held| {
            format!(
                "a float32 output holds {held} coarsely; input_dtype='float64' maps the outputs back to the \
             targets' units in float64"
            )
        });
    inputs.into_iter().chain(outputs).collect()
}

/// `y` for one target; `y column 0`, `y column 1`... for several.
fn array_target_names(n: usize) -> Vec<String> {
    match n {
        1 => vec!["y".into()],
        n => (0..n).map(|j| format!("y column {j}")).collect(),
    }
}
