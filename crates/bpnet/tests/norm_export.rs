//! Batch Renormalization, Ghost BN and layer normalization outside training:
//! model files keep the kind and every tensor, fused inference and the
//! exported ONNX graph (run by the f64 reference interpreter of
//! `tests/onnx_common/interp.rs`) reproduce the eval output. Renorm and ghost
//! BN fold into the Dense layer like batch normalization; layer normalization
//! is written as `LayerNormalization` (opset 17).
//!
//! Bounds as in `tests/onnx_export.rs` and `tests/infer.rs`: f32 against the
//! f64 interpreter, and fused against unfolded, within
//! `2e-6 * max(1, max|y|)` (measured values printed).

mod onnx_common;

use bpnet::io::{load_model, save_model};
use bpnet::layers::{NormKind, RenormConfig};
use bpnet::onnx::proto::ModelProto;
use bpnet::onnx::{ExportOptions, export_onnx};
use bpnet::{Activation, BatchNormConfig, BnPlacement, InferenceNet, Layer, Mode, ModelSpec, Sequential};
use onnx_common::*;
use prost::Message;

fn kinds() -> [NormKind; 3] {
    let renorm = RenormConfig {
        rmax: 2.0,
        dmax: 1.0,
        warmup_steps: 3,
        rmax_steps: 10,
        dmax_steps: 8,
    };
    [NormKind::Renorm(renorm), NormKind::Ghost { size: 4 }, NormKind::Layer]
}

fn spec_of(kind: NormKind, placement: BnPlacement, act: Activation) -> ModelSpec {
    let mut s = spec(&[5, 16, 12, 3], act, placement, 0.2);
    s.bn = BatchNormConfig {
        kind,
        ..BatchNormConfig::default()
    };
    s
}

/// A network of `spec` trained a few steps in training mode (so renorm's
/// schedule and running statistics and ghost BN's averages move), with
/// random affine parameters.
fn trained(spec: &ModelSpec) -> Sequential<f32> {
    let mut m = network::<f32>(spec, 5);
    for s in 0..12 {
        m.forward(&uniform::<f32>(10, 5, -2.0, 2.0, 100 + s), Mode::Train)
            .unwrap();
    }
    m
}

#[test]
fn model_file_round_trip_keeps_kind_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let x = uniform::<f32>(9, 5, -2.0, 2.0, 7);
    for kind in kinds() {
        for placement in [BnPlacement::BeforeActivation, BnPlacement::AfterActivation] {
            let spec = spec_of(kind, placement, Activation::Tanh);
            let mut model = trained(&spec);
            let path = dir
                .path()
                .join(format!("{}.safetensors", kind.name().replace(':', "_")));
            save_model(&path, &spec, &model, &Default::default()).unwrap();
            let mut file = load_model(&path).unwrap();
            assert_eq!(file.spec, spec, "{kind:?}: spec");
            let y = model.forward(&x, Mode::Eval).unwrap().clone();
            let y2 = file.model.forward(&x, Mode::Eval).unwrap().clone();
            assert_eq!(
                y.as_slice(),
                y2.as_slice(),
                "{kind:?} {placement:?}: eval output after reload"
            );
            let summary = file.model.summary();
            let want = match kind {
                NormKind::Renorm(_) => "BatchRenorm(",
                NormKind::Ghost { .. } => "GhostBatchNorm(virtual batch 4",
                _ => "LayerNorm(16",
            };
            assert!(summary.contains(want), "{summary}");
        }
    }
    // Plain batch normalization writes no `kind`, so builds before it read the file.
    let plain = spec(&[5, 8, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("kind"), "{json}");
}

#[test]
fn fused_inference_and_onnx_agree_with_eval() {
    let x = uniform::<f32>(40, 5, -2.0, 2.0, 8);
    let mut worst: (f64, f64) = (0.0, 0.0);
    for kind in kinds() {
        for placement in [BnPlacement::BeforeActivation, BnPlacement::AfterActivation] {
            for act in [Activation::Sigmoid, Activation::Relu, Activation::Gelu] {
                let spec = spec_of(kind, placement, act);
                let mut model = trained(&spec);
                let y = model.forward(&x, Mode::Eval).unwrap().clone();
                let scale = max_abs(&y).max(1.0);
                let fused = InferenceNet::new(&model).unwrap().forward(&x).unwrap();
                let d = max_abs_diff(&y, &fused) / scale;
                worst.0 = worst.0.max(d);
                assert!(d <= 2e-6, "{kind:?} {placement:?} {act:?}: fused {d:e}");
                for fold_bn in [false, true] {
                    let options = ExportOptions {
                        fold_bn,
                        ..ExportOptions::default()
                    };
                    let onnx = export_onnx(&model, &options).unwrap();
                    let is_layer = kind == NormKind::Layer;
                    assert_eq!(onnx.ops.iter().any(|o| o == "LayerNormalization"), is_layer);
                    let has_bn = onnx.ops.iter().any(|o| o == "BatchNormalization");
                    assert_eq!(has_bn, !is_layer && !fold_bn, "{kind:?} fold {fold_bn}: {:?}", onnx.ops);
                    if is_layer {
                        assert!(onnx.opset >= 17, "opset {}", onnx.opset);
                    }
                    let proto = ModelProto::decode(&onnx.bytes[..]).unwrap();
                    let yi = interp::run(&proto, &x);
                    let yf = y.as_slice().iter().map(|v| *v as f64).collect::<Vec<_>>();
                    let d = yi
                        .as_slice()
                        .iter()
                        .zip(&yf)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max)
                        / scale;
                    worst.1 = worst.1.max(d);
                    assert!(d <= 2e-6, "{kind:?} {placement:?} {act:?} fold {fold_bn}: onnx {d:e}");
                }
            }
        }
    }
    println!(
        "fused vs eval {:e}, onnx interpreter vs eval {:e} (bound 2e-6)",
        worst.0, worst.1
    );
}

#[test]
fn layer_norm_needs_opset_17() {
    let model = trained(&spec_of(
        NormKind::Layer,
        BnPlacement::BeforeActivation,
        Activation::Relu,
    ));
    let options = ExportOptions {
        opset: Some(15),
        ..ExportOptions::default()
    };
    let e = export_onnx(&model, &options).unwrap_err().to_string();
    assert!(e.contains("LayerNormalization") && e.contains("17"), "{e}");
}

#[test]
fn layer_norm_networks_train_with_batches_of_one() {
    let mut model = trained(&spec_of(
        NormKind::Layer,
        BnPlacement::BeforeActivation,
        Activation::Relu,
    ));
    assert!(!model.has_batch_norm());
    assert!(model.layers().iter().any(|l| matches!(l, Layer::LayerNorm(_))));
    model.forward(&uniform::<f32>(1, 5, -1.0, 1.0, 9), Mode::Train).unwrap();
}

/// A model file written by a build without the normalization kinds (`bpnet
/// train --data data/iris.csv --hidden 6 --epochs 3 --seed 2`, see
/// `tests/fixtures/README.md`) loads as plain batch normalization, and
/// saving it again writes no `kind`, so older builds can still read it.
#[test]
fn a_file_from_before_the_norm_kinds_loads_and_saves_unchanged() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/model_before_norm_kinds.safetensors"
    );
    let mut file = load_model(std::path::Path::new(path)).unwrap();
    assert_eq!(file.spec.bn.kind, NormKind::Batch);
    assert!(file.model.summary().contains("BatchNorm(6"), "{}", file.model.summary());
    assert!(!serde_json::to_string(&file.spec).unwrap().contains("kind"));
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.safetensors");
    save_model(&again, &file.spec, &file.model, &Default::default()).unwrap();
    let mut reloaded = load_model(&again).unwrap();
    let x = uniform::<f32>(7, 4, -2.0, 2.0, 3);
    let a = file.model.forward(&x, Mode::Eval).unwrap().clone();
    let b = reloaded.model.forward(&x, Mode::Eval).unwrap().clone();
    assert_eq!(a.as_slice(), b.as_slice());
}
