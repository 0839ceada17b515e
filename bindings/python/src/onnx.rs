//! `NativeModel.to_onnx`: the model and its preprocessing as an ONNX graph,
//! built the way `bpnet export` builds it.

use crate::model::NativeModel;
use bpnet::data::preprocess::Task;
use bpnet::io::write_atomic;
use bpnet::onnx::{ExportOptions, Head, InputScaling, OutputScaling, export_onnx};
use bpnet::workflow::Pipeline;
use bpnet::{Error, Result};
use std::path::Path;

/// Writes `model` to `path` as ONNX: input `features` (raw column values,
/// f32 [batch, n_features]), output `logits`, `probabilities` or
/// `predictions` (regression, in the targets' units).
pub fn export(model: &NativeModel, path: &Path, probabilities: bool, fold_bn: bool, opset: Option<i64>) -> Result<()> {
    let (input_scaling, output_scaling, regression) = match &model.pipeline {
        Pipeline::Images { features } => (Some(InputScaling::images(*features)), None, false),
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
    let options = ExportOptions {
        fold_bn,
        input_scaling,
        output_scaling,
        head,
        input_name: "features".into(),
        output_name: output_name.into(),
        opset,
        metadata,
        doc: format!(
            "bpnet model (Python): {}",
            model.trainer.model.summary().replace('\n', "; ")
        ),
    };
    let onnx = export_onnx(&model.trainer.model, &options)?;
    write_atomic(path, &onnx.bytes)
}
