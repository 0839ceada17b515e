//! `bpnet export`: a model file as an ONNX model of the whole predictor.

use bpnet::data::preprocess::Task;
use bpnet::io::{Kind, OutputPlan, load_model, write_atomic};
use bpnet::onnx::{ExportOptions, Head, InputScaling, OutputScaling, export_onnx_ensemble};
use bpnet::workflow::Pipeline;
use bpnet::{Error, Result};
use serde_json::json;
use std::path::PathBuf;

/// Options of `bpnet export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Model file written by `bpnet train` or `bpnet import`.
    #[arg(long)]
    model: PathBuf,
    /// ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
    /// Fold batch normalization into the Dense weights instead of writing BatchNormalization nodes.
    #[arg(long)]
    fold_bn: bool,
    /// Output class probabilities (softmax, or sigmoid for one output) instead of logits.
    #[arg(long)]
    probabilities: bool,
    /// Leave out the stored preprocessing: the ONNX input is then the preprocessed feature matrix.
    #[arg(long)]
    no_preprocessing: bool,
    /// ONNX opset, 15..=21 [default: 15; 17 with layer normalization; 20 with GELU].
    #[arg(long)]
    opset: Option<i64>,
    /// Name of the graph input.
    #[arg(long, default_value = "features")]
    input_name: String,
    /// Element type of the graph input: f32, or f64 to run the preprocessing
    /// in f64 (for raw values an f32 cannot hold closely enough, such as a
    /// column near 1e6 that varies by 0.01); the network runs in f32 either way.
    /// With f64 a regression model's outputs are mapped back to the targets'
    /// units in f64, and the output is f64 too.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    input_type: String,
    /// Name of the graph output [default: logits, probabilities or predictions].
    #[arg(long)]
    output_name: Option<String>,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Replace an existing --onnx file even when it is not an ONNX model (the
    /// model file is never replaced).
    #[arg(long)]
    overwrite: bool,
}

/// Runs `bpnet export`.
pub fn run(a: &ExportArgs) -> Result<()> {
    let mut plan = OutputPlan::new(a.overwrite);
    plan.input("--model", &a.model).output("--onnx", &a.onnx, Kind::Onnx);
    plan.check()?;
    let file = load_model(&a.model)?;
    // Imported models carry no preprocessing: their input is the feature matrix.
    let pipeline = match file.metadata.get("preprocessing") {
        Some(_) => Some(Pipeline::of_model(&file, &a.model)?),
        None => None,
    };
    let outputs = file.model.out_features().unwrap_or(0);
    let mut input_scaling = None;
    let mut output_scaling = None;
    let mut regression = false;
    if let Some(p) = &pipeline {
        match p {
            Pipeline::Images { features } => input_scaling = Some(InputScaling::images(*features)),
            Pipeline::Table { preprocessor, .. } => {
                input_scaling = Some(InputScaling::from_preprocessor(preprocessor));
                output_scaling = OutputScaling::from_preprocessor(preprocessor)?;
                regression = preprocessor.task() == Task::Regress;
            }
            Pipeline::Features { .. } => {}
        }
    }
    if a.no_preprocessing {
        input_scaling = None;
    }
    if regression && a.probabilities {
        return Err(Error::config(
            "--probabilities",
            "the model does regression; its outputs are values, not class scores",
        ));
    }
    let head = match (a.probabilities, outputs) {
        (false, _) => Head::Raw,
        (true, 1) => Head::Sigmoid,
        (true, _) => Head::Softmax,
    };
    let output_name = a.output_name.clone().unwrap_or_else(|| {
        match (head, regression) {
            (Head::Raw, true) => "predictions",
            (Head::Raw, false) => "logits",
            _ => "probabilities",
        }
        .to_string()
    });
    let mut metadata = vec![
        (
            "architecture".to_string(),
            serde_json::to_string(&file.spec).map_err(|e| Error::State(e.to_string()))?,
        ),
        (
            "bpnet_model_format_version".to_string(),
            file.format_version.to_string(),
        ),
        ("bpnet_model_written_by".to_string(), file.bpnet_version.clone()),
    ];
    if let Some(names) = pipeline.as_ref().and_then(Pipeline::class_names) {
        metadata.push(("class_names".to_string(), json!(names).to_string()));
    }
    for (key, value) in &file.metadata {
        metadata.push((key.clone(), value.to_string()));
    }
    let source = a
        .model
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let options = ExportOptions {
        fold_bn: a.fold_bn,
        input_scaling,
        output_scaling,
        head,
        input_name: a.input_name.clone(),
        input_f64: a.input_type == "f64",
        output_name,
        opset: a.opset,
        metadata,
        doc: format!("bpnet model {source}: {}", file.model.summary().replace('\n', "; ")),
    };
    let (members, combine) = super::ensemble::members_of(&file, &a.model)?;
    let onnx = export_onnx_ensemble(&members, combine, &options)?;
    write_atomic(&a.onnx, &onnx.bytes)?;
    println!(
        "wrote {} ({} bytes): opset {}, IR {}, {} nodes: {}",
        a.onnx.display(),
        onnx.bytes.len(),
        onnx.opset,
        onnx.ir_version,
        onnx.ops.len(),
        onnx.ops.join(" -> ")
    );
    println!(
        "input '{}' {} [batch, {}]: {}",
        options.input_name,
        a.input_type,
        onnx.inputs,
        input_contract(pipeline.as_ref(), &options)
    );
    if let (Some(s), false) = (&options.input_scaling, options.input_f64) {
        coarse_f32_note(s);
    }
    let output_f64 = options.input_f64 && options.output_scaling.is_some();
    println!(
        "output '{}' {} [batch, {}]",
        options.output_name,
        if output_f64 { "f64" } else { "f32" },
        onnx.outputs
    );
    if let (Some(s), false) = (&options.output_scaling, output_f64) {
        coarse_output_note(s);
    }
    if a.json {
        println!(
            "{}",
            json!({"onnx": a.onnx.to_string_lossy(), "bytes": onnx.bytes.len(), "opset": onnx.opset, "ir_version": onnx.ir_version,
                   "ops": onnx.ops, "input": options.input_name, "output": options.output_name,
                   "inputs": onnx.inputs, "outputs": onnx.outputs, "fold_bn": a.fold_bn,
                   "input_type": a.input_type, "output_type": if output_f64 { "f64" } else { "f32" }})
        );
    }
    Ok(())
}

/// A note naming the targets an f32 output holds coarsely
/// ([`bpnet::onnx::coarse_outputs`]): `--input-type f64` maps them back in f64.
fn coarse_output_note(s: &OutputScaling) {
    if let Some(held) = bpnet::onnx::coarse_outputs(s) {
        println!(
            "note: an f32 output holds {held} coarsely; --input-type f64 maps the outputs back to the targets' units in f64"
        );
    }
}

/// A note naming the columns an f32 input holds coarsely
/// ([`bpnet::onnx::coarse_inputs`]): `--input-type f64` keeps them.
fn coarse_f32_note(s: &InputScaling) {
    if let Some(held) = bpnet::onnx::coarse_inputs(s) {
        println!(
            "note: an f32 input holds {held} coarsely against the spread the model was trained on; --input-type f64 keeps their precision"
        );
    }
}

/// One line saying what the input must hold.
fn input_contract(pipeline: Option<&Pipeline>, o: &ExportOptions) -> String {
    match (&o.input_scaling, pipeline) {
        (None, _) => "the preprocessed feature matrix (no preprocessing in the graph)".to_string(),
        (Some(_), Some(Pipeline::Images { .. })) => "raw pixel values 0..255 (the graph divides by 255)".to_string(),
        (Some(s), _) => {
            let one_hot = s.names.iter().any(|n| n.contains('='));
            let missing = if s.fill.iter().any(|v| !v.is_nan()) {
                "; a missing numeric value may be NaN (filled as in training)"
            } else {
                ""
            };
            let cats = if one_hot {
                "; a `column=category` feature is 1 when the row's column holds that category, else 0"
            } else {
                ""
            };
            format!("raw values of the columns {}{cats}{missing}", s.names.join(", "))
        }
    }
}
