//! ONNX export and batch-norm folding, checked without Python: folded and
//! unfolded networks agree in eval mode, and every exported graph, decoded
//! from its bytes and run by a small f64 reference interpreter
//! (`tests/onnx_common/interp.rs`), reproduces bpnet's eval output. ONNX
//! Runtime itself is exercised by `tests/onnx_runtime.rs`.
//!
//! Bounds (measured values are printed by each test):
//! - folding in f64: `|folded - unfolded| <= 1e-13 * max(1, max|y|)`
//!   (measured 8e-16);
//! - folding in f32: `|folded - unfolded| <= 2e-6 * max(1, max|y|)`
//!   (measured 4e-7): the folded weights are rounded once from f64, but the
//!   two networks round different sums in f32, each about
//!   `6e-8 * sum|terms|`; the bound is for these widths (up to 16) and grows
//!   with the width and the size of the weights;
//! - interpreter vs bpnet f32 eval: `<= 2e-6 * max(1, max|y|)` (measured
//!   3e-7), bpnet's f32 rounding against the interpreter's f64.

mod onnx_common;

use bpnet::onnx::proto::ModelProto;
use bpnet::onnx::{ExportOptions, Head, InputScaling, OutputScaling, export_onnx};
use bpnet::{Activation, BatchNormConfig, BnPlacement, Layer, Matrix, Mode, fold_batch_norm};
use onnx_common::*;
use prost::Message;

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("exported bytes decode as a ModelProto")
}

fn ops(m: &ModelProto) -> Vec<String> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone().unwrap())
        .collect()
}

fn placements() -> [BnPlacement; 3] {
    [
        BnPlacement::BeforeActivation,
        BnPlacement::AfterActivation,
        BnPlacement::None,
    ]
}

#[test]
fn folding_keeps_the_eval_output_f64() {
    let x = uniform::<f64>(32, 5, -2.0, 2.0, 1);
    let mut worst: f64 = 0.0;
    for act in activations() {
        for bn in placements() {
            for dropout in [0.0, 0.3] {
                let spec = spec(&[5, 7, 6, 3], act, bn, dropout);
                let mut model = network::<f64>(&spec, 11);
                let mut folded = fold_batch_norm(&model).unwrap();
                assert!(!folded.has_batch_norm());
                let y = model.forward(&x, Mode::Eval).unwrap().clone();
                let yf = folded.forward(&x, Mode::Eval).unwrap().clone();
                let rel = max_abs_diff(&y, &yf) / max_abs(&y).max(1.0);
                worst = worst.max(rel);
                assert!(rel <= 1e-13, "{act:?} {bn:?} dropout {dropout}: relative diff {rel:e}");
            }
        }
    }
    println!("fold f64: max |folded - unfolded| / max(1, max|y|) = {worst:e} (bound 1e-13)");
}

#[test]
fn folding_keeps_the_eval_output_f32() {
    let x = uniform::<f32>(64, 5, -2.0, 2.0, 2);
    let mut worst: f64 = 0.0;
    for act in activations() {
        for bn in placements() {
            let spec = spec(&[5, 16, 16, 4], act, bn, 0.0);
            let mut model = network::<f32>(&spec, 12);
            let mut folded = fold_batch_norm(&model).unwrap();
            let y = model.forward(&x, Mode::Eval).unwrap().clone();
            let yf = folded.forward(&x, Mode::Eval).unwrap().clone();
            let rel = max_abs_diff(&y, &yf) / max_abs(&y).max(1.0);
            worst = worst.max(rel);
            assert!(rel <= 2e-6, "{act:?} {bn:?}: relative diff {rel:e}");
        }
    }
    println!("fold f32: max |folded - unfolded| / max(1, max|y|) = {worst:e} (bound 2e-6)");
}

#[test]
fn folding_renames_layers_and_matches_the_formula() {
    let spec = spec(&[3, 2, 2], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
    let model = network::<f64>(&spec, 3);
    let folded = fold_batch_norm(&model).unwrap();
    let names: Vec<String> = folded.layers().iter().map(|l| l.describe()).collect();
    assert_eq!(
        names,
        ["Dense(3 -> 2, bias)", "Activation(relu)", "Dense(2 -> 2, bias)"]
    );
    let (Layer::Dense(d), Layer::BatchNorm(bn), Layer::Dense(f)) =
        (&model.layers()[0], &model.layers()[1], &folded.layers()[0])
    else {
        panic!("unexpected layers");
    };
    assert_eq!(f.weight.name, "layers.0.weight");
    let (g, b) = bn.affine.as_ref().unwrap();
    for j in 0..2 {
        let s = g.value.as_slice()[j] / (bn.running.var[j] + 1e-5).sqrt();
        let want_b = (0.0 - bn.running.mean[j]) * s + b.value.as_slice()[j];
        assert!((f.bias.as_ref().unwrap().value.as_slice()[j] - want_b).abs() < 1e-15);
        for k in 0..3 {
            let want_w = d.weight.value.get(j, k) * s;
            assert!((f.weight.value.get(j, k) - want_w).abs() < 1e-15);
        }
    }
}

#[test]
fn folding_refuses_batch_statistics_at_inference() {
    let mut spec = spec(&[3, 4, 2], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
    spec.bn = BatchNormConfig {
        track_running_stats: false,
        ..BatchNormConfig::default()
    };
    let model = network::<f32>(&spec, 4);
    let err = fold_batch_norm(&model).unwrap_err().to_string();
    assert!(err.contains("layers.1") && err.contains("track_running_stats"), "{err}");
    let err = export_onnx(&model, &ExportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("layers.1") && err.contains("track_running_stats"), "{err}");
}

/// Exports, decodes, checks the signature and runs the interpreter on `x`
/// (raw inputs); returns the interpreter's output.
fn export_and_run(
    model: &bpnet::Sequential<f32>,
    options: &ExportOptions,
    x: &Matrix<f32>,
) -> (ModelProto, Matrix<f64>) {
    let onnx = export_onnx(model, options).unwrap();
    let m = decode(&onnx.bytes);
    let g = m.graph.as_ref().unwrap();
    assert_eq!(g.input[0].name.as_deref(), Some(options.input_name.as_str()));
    assert_eq!(g.output[0].name.as_deref(), Some(options.output_name.as_str()));
    assert_eq!(m.opset_import[0].version, Some(onnx.opset));
    assert_eq!(ops(&m), onnx.ops);
    let y = interp::run(&m, x);
    (m, y)
}

#[test]
fn exported_graphs_compute_the_eval_output() {
    let x = uniform::<f32>(16, 5, -2.0, 2.0, 5);
    let mut worst: f64 = 0.0;
    for act in activations() {
        for bn in placements() {
            for fold_bn in [false, true] {
                let spec = spec(&[5, 8, 6, 3], act, bn, 0.2);
                let mut model = network::<f32>(&spec, 21);
                let options = ExportOptions {
                    fold_bn,
                    ..ExportOptions::default()
                };
                let (m, y) = export_and_run(&model, &options, &x);
                let want = model.forward(&x, Mode::Eval).unwrap().cast::<f64>();
                let rel = max_abs_diff(&want, &y) / max_abs(&want).max(1.0);
                worst = worst.max(rel);
                assert!(rel <= 2e-6, "{act:?} {bn:?} fold {fold_bn}: relative diff {rel:e}");
                let has_bn = ops(&m).iter().any(|o| o == "BatchNormalization");
                assert_eq!(has_bn, bn != BnPlacement::None && !fold_bn, "{:?}", ops(&m));
                assert!(!ops(&m).iter().any(|o| o == "Dropout"));
            }
        }
    }
    println!("interpreter vs bpnet eval: max relative diff {worst:e} (bound 2e-6)");
}

#[test]
fn graph_layout_opset_and_metadata() {
    let spec = spec(&[4, 8, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
    let model = network::<f32>(&spec, 6);
    let options = ExportOptions {
        head: Head::Softmax,
        input_name: "features".into(),
        output_name: "probabilities".into(),
        metadata: vec![("class_names".into(), "[\"a\",\"b\",\"c\"]".into())],
        ..ExportOptions::default()
    };
    let onnx = export_onnx(&model, &options).unwrap();
    assert_eq!((onnx.opset, onnx.ir_version, onnx.inputs, onnx.outputs), (15, 8, 4, 3));
    let m = decode(&onnx.bytes);
    assert_eq!(ops(&m), ["Gemm", "BatchNormalization", "Relu", "Gemm", "Softmax"]);
    let g = m.graph.as_ref().unwrap();
    let w = g
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some("layers.0.weight"))
        .unwrap();
    assert_eq!(w.dims, [8, 4], "Gemm B is [out, in] with transB = 1");
    assert!(g.node[0].input.len() == 2, "a Dense layer before BN has no bias");
    let dims = format!("{:?}", g.input[0].r#type);
    assert!(
        dims.contains("DimParam(\"batch\")") && dims.contains("DimValue(4)"),
        "{dims}"
    );
    let props: Vec<(String, String)> = m
        .metadata_props
        .iter()
        .map(|p| (p.key.clone().unwrap(), p.value.clone().unwrap()))
        .collect();
    let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("bpnet_version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(get("bpnet_head"), Some("softmax"));
    assert_eq!(get("class_names"), Some("[\"a\",\"b\",\"c\"]"));
    assert_eq!(m.producer_name.as_deref(), Some("bpnet"));
}

#[test]
fn gelu_is_native_from_opset_20_and_decomposed_below() {
    let spec = spec(&[3, 4, 2], Activation::Gelu, BnPlacement::None, 0.0);
    let mut model = network::<f32>(&spec, 7);
    let x = uniform::<f32>(8, 3, -3.0, 3.0, 8);
    let want = model.forward(&x, Mode::Eval).unwrap().cast::<f64>();
    let native = export_onnx(&model, &ExportOptions::default()).unwrap();
    assert_eq!((native.opset, native.ir_version), (20, 9));
    assert_eq!(native.ops, ["Gemm", "Gelu", "Gemm"]);
    let options = ExportOptions {
        opset: Some(17),
        ..ExportOptions::default()
    };
    let (m, y) = export_and_run(&model, &options, &x);
    assert_eq!(ops(&m), ["Gemm", "Mul", "Erf", "Add", "Mul", "Mul", "Gemm"]);
    let d = max_abs_diff(&want, &y);
    println!("GELU as Erf at opset 17: max |diff| vs bpnet {d:e}");
    assert!(d <= 1e-5);
}

#[test]
fn preprocessing_and_postprocessing_are_in_the_graph() {
    let spec = spec(&[3, 6, 2], Activation::Tanh, BnPlacement::AfterActivation, 0.0);
    let mut model = network::<f32>(&spec, 9);
    let scaling = InputScaling {
        center: vec![10.0, -3.0, 0.0],
        scale: vec![2.5, 0.5, 1.0],
        fill: vec![11.0, f64::NAN, f64::NAN],
        names: vec!["a".into(), "b".into(), "c=x".into()],
    };
    let post = OutputScaling {
        center: vec![3.0, -1.0],
        scale: vec![1.5, 0.25],
        names: vec!["y1".into(), "y2".into()],
    };
    let options = ExportOptions {
        input_scaling: Some(scaling.clone()),
        output_scaling: Some(post.clone()),
        ..ExportOptions::default()
    };
    let mut raw = uniform::<f32>(6, 3, -1.0, 1.0, 10);
    for r in 0..6 {
        let row = raw.row_mut(r);
        row[0] = 10.0 + 2.5 * row[0];
        row[1] = -3.0 + 0.5 * row[1];
        row[2] = if r % 2 == 0 { 1.0 } else { 0.0 };
    }
    raw.row_mut(1)[0] = f32::NAN;
    let (m, y) = export_and_run(&model, &options, &raw);
    assert_eq!(ops(&m)[..4], ["IsNaN", "Where", "Sub", "Div"]);
    assert_eq!(ops(&m)[ops(&m).len() - 2..], ["Mul", "Add"]);
    // bpnet's side: fill, scale in f64, run, map back in f64.
    let mut x = Matrix::<f32>::zeros(6, 3);
    for r in 0..6 {
        for c in 0..3 {
            let v = raw.get(r, c) as f64;
            let v = if v.is_nan() { scaling.fill[c] } else { v };
            x.row_mut(r)[c] = ((v - scaling.center[c]) / scaling.scale[c]) as f32;
        }
    }
    let z = model.forward(&x, Mode::Eval).unwrap().cast::<f64>();
    let mut want = z.clone();
    for r in 0..6 {
        for c in 0..2 {
            want.row_mut(r)[c] = z.get(r, c) * post.scale[c] + post.center[c];
        }
    }
    let d = max_abs_diff(&want, &y);
    println!("pre- and postprocessing: max |diff| vs bpnet {d:e}");
    assert!(d <= 1e-5, "{d:e}");
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let spec = spec(&[3, 4, 1], Activation::Relu, BnPlacement::None, 0.0);
    let model = network::<f32>(&spec, 10);
    let err = |o: ExportOptions| export_onnx(&model, &o).unwrap_err().to_string();
    assert!(
        err(ExportOptions {
            opset: Some(14),
            ..ExportOptions::default()
        })
        .contains("opset")
    );
    assert!(
        err(ExportOptions {
            opset: Some(22),
            ..ExportOptions::default()
        })
        .contains("opset")
    );
    assert!(
        err(ExportOptions {
            head: Head::Softmax,
            ..ExportOptions::default()
        })
        .contains("sigmoid")
    );
    let same = ExportOptions {
        output_name: "input".into(),
        ..ExportOptions::default()
    };
    assert!(err(same).contains("names"));
    let short = ExportOptions {
        input_scaling: Some(InputScaling::images(2)),
        ..ExportOptions::default()
    };
    assert!(err(short).contains("3 features"));
    let regression_probs = ExportOptions {
        head: Head::Sigmoid,
        output_scaling: Some(OutputScaling {
            center: vec![0.0],
            scale: vec![1.0],
            names: vec!["y".into()],
        }),
        ..ExportOptions::default()
    };
    assert!(err(regression_probs).contains("regression"));
    // A name the graph holds: an input named as a weight replaced it (ORT
    // listed no input), an output named as an inner value was defined twice.
    for (input, output) in [("layers.0.weight", "out"), ("features", "layers.0.out")] {
        let clash = ExportOptions {
            input_name: input.into(),
            output_name: output.into(),
            ..ExportOptions::default()
        };
        let e = err(clash);
        assert!(e.contains("is the name of a tensor inside the graph"), "{e}");
    }
}
