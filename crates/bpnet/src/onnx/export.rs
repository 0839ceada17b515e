//! The exported graph: preprocessing, layers, postprocessing and output head,
//! and the model around it (opset, IR version, metadata).

use super::graph::{BATCH_DIM, Graph, attr_int, batch_matrix};
use super::nodes::{activation, batch_norm, dense, layer_norm};
use super::proto::tensor_proto::DataType;
use super::proto::{ModelProto, OperatorSetIdProto, StringStringEntryProto};
use super::scaling::{InputScaling, OutputScaling};
use crate::error::{Error, Result};
use crate::fold::fold_batch_norm;
use crate::layers::{Activation, Layer};
use crate::model::Sequential;
use prost::Message;

/// Lowest opset written: BatchNormalization-15, Gemm-13, Softmax-13.
pub const MIN_OPSET: i64 = 15;
/// Highest opset that may be requested.
pub const MAX_OPSET: i64 = 21;
/// The first opset with a `LayerNormalization` operator.
pub const LAYER_NORM_OPSET: i64 = 17;
/// The first opset with a `Gelu` operator; below it GELU is written as
/// `x * 0.5 * (1 + Erf(x / sqrt 2))`.
pub const GELU_OPSET: i64 = 20;

/// What the exported model's output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Head {
    /// The last Dense layer's output (class scores, or regression values
    /// after the optional [`OutputScaling`]).
    #[default]
    Raw,
    /// Softmax over the outputs: class probabilities.
    Softmax,
    /// Element-wise logistic sigmoid: the probability of a one-output
    /// (binary) classifier.
    Sigmoid,
}

/// How to export a model; see [`export_onnx`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Fold batch normalization into the Dense layers
    /// ([`fold_batch_norm`](crate::fold_batch_norm)) instead of writing
    /// `BatchNormalization` nodes.
    pub fold_bn: bool,
    /// Preprocessing of the raw input features, if any.
    pub input_scaling: Option<InputScaling>,
    /// Mapping of the outputs back to target units, if any.
    pub output_scaling: Option<OutputScaling>,
    /// Output head.
    pub head: Head,
    /// Graph input name.
    pub input_name: String,
    /// Take the input as f64: the preprocessing (filling, centering,
    /// scaling) runs in f64 and its result is cast to f32 for the first
    /// layer, so that raw values an f32 cannot hold closely enough (a
    /// column near 1e6 that varies by 0.01) keep their precision; with
    /// [`ExportOptions::output_scaling`] the outputs are cast to f64, mapped
    /// back to the targets' units in f64 and returned as f64 (targets near
    /// 1e12 that vary by 1,000 lose everything in f32).
    pub input_f64: bool,
    /// Graph output name.
    pub output_name: String,
    /// Opset to write; `None` picks [`MIN_OPSET`], [`LAYER_NORM_OPSET`] when
    /// the model uses layer normalization, or [`GELU_OPSET`] when it uses GELU.
    pub opset: Option<i64>,
    /// Extra `metadata_props` entries (key, value); they override the ones
    /// bpnet writes itself under the same key.
    pub metadata: Vec<(String, String)>,
    /// The model's `doc_string`.
    pub doc: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            fold_bn: false,
            input_scaling: None,
            output_scaling: None,
            head: Head::Raw,
            input_name: "input".into(),
            input_f64: false,
            output_name: "output".into(),
            opset: None,
            metadata: Vec::new(),
            doc: String::new(),
        }
    }
}

/// An exported model: the serialized `ModelProto` and a summary of it.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The `.onnx` file contents.
    pub bytes: Vec<u8>,
    /// Opset version of the default domain.
    pub opset: i64,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Operator type of every node, in order.
    pub ops: Vec<String>,
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
}

/// The IR version that goes with an opset (the ONNX release that introduced
/// the opset): opsets 15-18 are IR 8, 19-20 IR 9, 21 IR 10.
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        _ => 10,
    }
}

/// Exports the inference function of `model` (eval mode: BN with running
/// statistics, no dropout) as an ONNX model.
///
/// The graph is, in order: optional missing-value filling
/// (`Where(IsNaN(x), fill, x)`) and feature scaling (`Sub`, `Div`), one
/// `Gemm` per Dense layer (`transB = 1`, weights `[out, in]` as stored),
/// `BatchNormalization` in inference form (unless folded; Batch
/// Renormalization and Ghost BN have the same inference form),
/// `LayerNormalization` (opset 17 or later, never folded), one node per
/// activation (`Sigmoid`, `Tanh`, `Relu`, `LeakyRelu`, `Elu`, `Softplus`,
/// `Gelu`; identity writes nothing), dropout omitted, optional output scaling
/// (`Mul`, `Add`) and head (`Softmax` on the last axis or `Sigmoid`). The
/// input and output are f32 `[batch, width]` with a symbolic batch dimension
/// (the input f64 with [`ExportOptions::input_f64`], the preprocessing in f64
/// and then a `Cast` to f32).
/// `metadata_props` holds `bpnet_version`, `bpnet_layers`, `bpnet_fold_bn`,
/// `bpnet_head`, the feature and output names when known, and
/// `options.metadata`.
pub fn export_onnx(model: &Sequential<f32>, options: &ExportOptions) -> Result<OnnxModel> {
    let folded;
    let model = if options.fold_bn {
        folded = fold_batch_norm(model)?;
        &folded
    } else {
        model
    };
    let (opset, inputs, outputs) = plan(model, options)?;
    let mut g = Graph::default();
    let x = graph_input(&mut g, options);
    let x = layers(&mut g, model, "", &x, opset)?;
    finish(g, model, options, x, opset, inputs, outputs)
}

/// The nodes of every layer of `model` applied to `x`, node and constant
/// names prefixed by `prefix`; returns the output name.
pub(super) fn layers(g: &mut Graph, model: &Sequential<f32>, prefix: &str, x: &str, opset: i64) -> Result<String> {
    let mut x = x.to_string();
    for (i, layer) in model.layers().iter().enumerate() {
        let path = format!("{prefix}layers.{i}");
        x = match layer {
            Layer::Dense(d) => dense(g, d, prefix, &path, &x)?,
            Layer::BatchNorm(bn) => batch_norm(g, bn, &path, &x)?,
            Layer::LayerNorm(n) => layer_norm(g, n, &path, &x),
            Layer::Activation(a) => activation(g, a.kind, &path, &x, opset),
            Layer::Dropout(_) => x,
        };
    }
    Ok(x)
}

/// The opset to write for `model` and the input and output widths, with
/// the options checked.
pub(super) fn plan(model: &Sequential<f32>, options: &ExportOptions) -> Result<(i64, usize, usize)> {
    let inputs = model
        .in_features()
        .ok_or_else(|| Error::config("onnx export", "the model has no Dense layer"))?;
    let outputs = model.out_features().unwrap_or(inputs);
    let gelu = model
        .layers()
        .iter()
        .any(|l| matches!(l, Layer::Activation(a) if a.kind == Activation::Gelu));
    let layer_norm_used = model.layers().iter().any(|l| matches!(l, Layer::LayerNorm(_)));
    let opset = options.opset.unwrap_or(match (gelu, layer_norm_used) {
        (true, _) => GELU_OPSET,
        (false, true) => LAYER_NORM_OPSET,
        _ => MIN_OPSET,
    });
    check_options(options, opset, inputs, outputs)?;
    if layer_norm_used && opset < LAYER_NORM_OPSET {
        return Err(Error::config(
            "opset",
            format!("{opset} has no LayerNormalization; layer normalization needs opset {LAYER_NORM_OPSET} or later"),
        ));
    }
    Ok((opset, inputs, outputs))
}

/// Output scaling, head, output name and the model around the graph.
pub(super) fn finish(
    mut g: Graph,
    model: &Sequential<f32>,
    options: &ExportOptions,
    mut x: String,
    opset: i64,
    inputs: usize,
    outputs: usize,
) -> Result<OnnxModel> {
    if let Some(s) = &options.output_scaling {
        x = output_scaling(&mut g, s, &x, options.input_f64);
    }
    match options.head {
        Head::Raw => {}
        Head::Softmax => x = g.node("Softmax", "head", &[&x], "head.out", vec![attr_int("axis", -1)]),
        Head::Sigmoid => x = g.node("Sigmoid", "head", &[&x], "head.out", Vec::new()),
    }
    // A name the graph holds would alias a weight or an inner value: an
    // input named as a weight replaced it (ORT lists no input, the features
    // become the weights); an output named as an inner value is defined twice.
    for (flag, name) in [("input", &options.input_name), ("output", &options.output_name)] {
        if g.holds_name(name) {
            return Err(Error::config(
                "onnx names",
                format!("the {flag} name '{name}' is the name of a tensor inside the graph; choose another"),
            ));
        }
    }
    if x == options.input_name || !g.rename_last_output(&options.output_name) {
        // Only reachable for a model without layers, refused above.
        return Err(Error::config("onnx export", "the graph has no node"));
    }
    let ops = g.op_types();
    let model_proto = model_proto(model, options, g, opset, inputs, outputs);
    Ok(OnnxModel {
        bytes: model_proto.encode_to_vec(),
        opset,
        ir_version: ir_version(opset),
        ops,
        inputs,
        outputs,
    })
}

fn check_options(o: &ExportOptions, opset: i64, inputs: usize, outputs: usize) -> Result<()> {
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(Error::config(
            "opset",
            format!("{opset} is not in {MIN_OPSET}..={MAX_OPSET}"),
        ));
    }
    if o.input_name.is_empty() || o.output_name.is_empty() || o.input_name == o.output_name {
        return Err(Error::config(
            "onnx names",
            "input and output names must be non-empty and different",
        ));
    }
    if let Some(s) = &o.input_scaling {
        s.validate()?;
        if s.len() != inputs {
            return Err(Error::shape(
                "onnx input scaling",
                format!("{inputs} features"),
                s.len(),
            ));
        }
    }
    if o.head != Head::Raw && o.output_scaling.is_some() {
        return Err(Error::config(
            "onnx head",
            "a probability head (softmax or sigmoid) on a regression model with output scaling makes no sense",
        ));
    }
    if o.head == Head::Softmax && outputs < 2 {
        return Err(Error::config(
            "onnx head",
            "softmax over a single output is always 1; use sigmoid",
        ));
    }
    if let Some(s) = &o.output_scaling {
        s.validate()?;
        if s.center.len() != outputs {
            return Err(Error::shape(
                "onnx output scaling",
                format!("{outputs} outputs"),
                s.center.len(),
            ));
        }
    }
    Ok(())
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The graph's input, preprocessed: the nodes of [`ExportOptions::input_scaling`]
/// in f32, or with [`ExportOptions::input_f64`] in f64 followed by a `Cast`
/// to f32; returns the name of the first layer's input.
pub(super) fn graph_input(g: &mut Graph, o: &ExportOptions) -> String {
    let x = match &o.input_scaling {
        Some(s) => input_scaling(g, s, &o.input_name, o.input_f64),
        None => o.input_name.clone(),
    };
    match o.input_f64 {
        true => g.node(
            "Cast",
            "preprocess/cast",
            &[&x],
            "preprocess.f32",
            vec![attr_int("to", DataType::Float as i64)],
        ),
        false => x,
    }
}

fn input_scaling(g: &mut Graph, s: &InputScaling, x: &str, double: bool) -> String {
    let n = s.len();
    let mut x = x.to_string();
    let constant = |g: &mut Graph, name: &str, v: &[f64]| match double {
        true => g.constant_f64(name, &[n], v),
        false => g.constant(name, &[n], &f32s(v)),
    };
    if s.has_fill() {
        let nan = g.node("IsNaN", "preprocess/isnan", &[&x], "preprocess.missing", Vec::new());
        let fill = constant(g, "preprocess.fill", &s.fill);
        x = g.node(
            "Where",
            "preprocess/fill",
            &[&nan, &fill, &x],
            "preprocess.filled",
            Vec::new(),
        );
    }
    if s.center.iter().any(|&c| c != 0.0) {
        let c = constant(g, "preprocess.center", &s.center);
        x = g.node("Sub", "preprocess/center", &[&x, &c], "preprocess.centered", Vec::new());
    }
    if s.scale.iter().any(|&v| v != 1.0) {
        let c = constant(g, "preprocess.scale", &s.scale);
        x = g.node("Div", "preprocess/scale", &[&x, &c], "preprocess.scaled", Vec::new());
    }
    x
}

/// The network's standardized outputs mapped back to the targets' units:
/// `x * scale + center`, in f32, or with `double` cast to f64 first and
/// computed and returned in f64 (targets far from zero, e.g. 1.7e12 +- 1000,
/// are held by f32 to steps of 131072).
fn output_scaling(g: &mut Graph, s: &OutputScaling, x: &str, double: bool) -> String {
    let n = s.center.len();
    let mut x = x.to_string();
    let constant = |g: &mut Graph, name: &str, v: &[f64]| match double {
        true => g.constant_f64(name, &[n], v),
        false => g.constant(name, &[n], &f32s(v)),
    };
    if double {
        let to = vec![attr_int("to", DataType::Double as i64)];
        x = g.node("Cast", "postprocess/cast", &[&x], "postprocess.f64", to);
    }
    if s.scale.iter().any(|&v| v != 1.0) {
        let c = constant(g, "postprocess.scale", &s.scale);
        x = g.node("Mul", "postprocess/scale", &[&x, &c], "postprocess.scaled", Vec::new());
    }
    if s.center.iter().any(|&v| v != 0.0) {
        let c = constant(g, "postprocess.center", &s.center);
        x = g.node(
            "Add",
            "postprocess/center",
            &[&x, &c],
            "postprocess.centered",
            Vec::new(),
        );
    }
    x
}

fn model_proto(
    model: &Sequential<f32>,
    o: &ExportOptions,
    g: Graph,
    opset: i64,
    inputs: usize,
    outputs: usize,
) -> ModelProto {
    let version = env!("CARGO_PKG_VERSION");
    let layers: Vec<String> = model.layers().iter().map(|l| l.describe()).collect();
    let head = match o.head {
        Head::Raw if o.output_scaling.is_some() => "values",
        Head::Raw => "raw",
        Head::Softmax => "softmax",
        Head::Sigmoid => "sigmoid",
    };
    let mut meta: Vec<(String, String)> = vec![
        ("bpnet_version".into(), version.into()),
        ("bpnet_layers".into(), serde_json::Value::from(layers).to_string()),
        ("bpnet_fold_bn".into(), o.fold_bn.to_string()),
        ("bpnet_head".into(), head.into()),
    ];
    let input_doc = match &o.input_scaling {
        Some(s) => {
            meta.push((
                "input_features".into(),
                serde_json::Value::from(s.names.clone()).to_string(),
            ));
            format!(
                "raw features [{BATCH_DIM}, {inputs}] in the order of metadata input_features; the model scales them"
            )
        }
        None => format!("features [{BATCH_DIM}, {inputs}], already preprocessed"),
    };
    if let Some(s) = &o.output_scaling {
        meta.push((
            "output_names".into(),
            serde_json::Value::from(s.names.clone()).to_string(),
        ));
    }
    for (k, v) in &o.metadata {
        meta.retain(|(key, _)| key != k);
        meta.push((k.clone(), v.clone()));
    }
    let input = batch_matrix(&o.input_name, inputs, &input_doc, o.input_f64);
    let output = batch_matrix(
        &o.output_name,
        outputs,
        &format!("{head} [{BATCH_DIM}, {outputs}]"),
        o.input_f64 && o.output_scaling.is_some(),
    );
    ModelProto {
        ir_version: Some(ir_version(opset)),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("bpnet".into()),
        producer_version: Some(version.into()),
        model_version: Some(1),
        doc_string: Some(o.doc.clone()),
        graph: Some(g.finish("bpnet", &o.doc, input, output)),
        metadata_props: meta
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: Some(key),
                value: Some(value),
            })
            .collect(),
        ..ModelProto::default()
    }
}
