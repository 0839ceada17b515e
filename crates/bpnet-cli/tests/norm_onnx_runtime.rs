//! Batch Renormalization, Ghost BN and layer normalization exported to ONNX
//! run in ONNX Runtime and agree with bpnet's eval output: renorm and ghost
//! BN as `BatchNormalization` (unfolded) or folded into `Gemm`, layer
//! normalization as `LayerNormalization` (opset 17), before and after the
//! activation. Same checker, environment and rules as `tests/onnx_runtime.rs`
//! (`tools/onnx_check.py` with the Python of `BPNET_ONNX_PYTHON`; without it
//! a SKIP line, or a failure when `CI` is set).
//!
//! Bound: `max |onnxruntime - bpnet| <= 1e-5` per case.

#[path = "../../bpnet/tests/onnx_common/mod.rs"]
mod onnx_common;

use bpnet::layers::{NormKind, RenormConfig};
use bpnet::onnx::{ExportOptions, export_onnx};
use bpnet::{Activation, BatchNormConfig, BnPlacement, Mode};
use onnx_common::reference::{Rows, bpnet_outputs};
use onnx_common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::Command;

const BOUND: f64 = 1e-5;

fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn cases(dir: &Path) -> Vec<Value> {
    let renorm = RenormConfig {
        rmax: 2.0,
        dmax: 1.0,
        warmup_steps: 2,
        rmax_steps: 6,
        dmax_steps: 5,
    };
    let mut list = Vec::new();
    let raw = uniform::<f32>(50, 6, -2.0, 2.0, 61);
    for kind in [NormKind::Renorm(renorm), NormKind::Ghost { size: 4 }, NormKind::Layer] {
        for placement in [BnPlacement::BeforeActivation, BnPlacement::AfterActivation] {
            for fold_bn in [false, true] {
                let mut s = spec(&[6, 16, 12, 3], Activation::Tanh, placement, 0.0);
                s.bn = BatchNormConfig {
                    kind,
                    ..BatchNormConfig::default()
                };
                let mut model = network::<f32>(&s, 62);
                for k in 0..8 {
                    model
                        .forward(&uniform::<f32>(10, 6, -2.0, 2.0, 70 + k), Mode::Train)
                        .unwrap();
                }
                let options = ExportOptions {
                    fold_bn,
                    ..ExportOptions::default()
                };
                let onnx = export_onnx(&model, &options).unwrap();
                let want = bpnet_outputs(&mut model, &raw, &options);
                let name = format!("{}_{placement:?}_fold{fold_bn}", kind.name().replace(':', ""));
                let path = dir.join(format!("{name}.onnx"));
                std::fs::write(&path, &onnx.bytes).unwrap();
                list.push(json!({
                    "name": name, "onnx": path, "input_name": options.input_name,
                    "output_name": options.output_name, "opset": onnx.opset, "ir_version": onnx.ir_version,
                    "input": raw.rows_json(), "expected": want.rows_json(),
                    "metadata": {"bpnet_version": env!("CARGO_PKG_VERSION"), "bpnet_fold_bn": fold_bn.to_string()},
                }));
            }
        }
    }
    list
}

#[test]
fn normalization_kinds_agree_with_bpnet_in_onnx_runtime() {
    let Some(python) = std::env::var_os("BPNET_ONNX_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "BPNET_ONNX_PYTHON is not set but CI is: .ci/run must set it (bash tools/onnx_env.sh)"
        );
        say(
            "SKIP norm_onnx_runtime: BPNET_ONNX_PYTHON is not set. To run this test: \
             export BPNET_ONNX_PYTHON=\"$(bash tools/onnx_env.sh | tail -n 1)\"",
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let list = cases(tmp.path());
    let (manifest, results) = (tmp.path().join("manifest.json"), tmp.path().join("results.json"));
    std::fs::write(&manifest, json!({ "cases": list }).to_string()).unwrap();
    let checker = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/onnx_check.py"));
    let out = Command::new(&python)
        .arg(checker)
        .arg(&manifest)
        .arg(&results)
        .output()
        .unwrap();
    let results: Value = serde_json::from_slice(&std::fs::read(&results).unwrap_or_default()).unwrap_or_else(|e| {
        panic!(
            "checker wrote no results ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    for case in &list {
        let name = case["name"].as_str().unwrap();
        let r = &results[name];
        if let Some(e) = r["error"].as_str() {
            failures.push(format!("{name}: {e}"));
            continue;
        }
        let d = r["max_abs_diff"]
            .as_f64()
            .unwrap()
            .max(r["max_abs_diff_one_row"].as_f64().unwrap());
        say(&format!("  {name:<40} max |diff| {d:.2e}"));
        worst = worst.max(d);
        if d > BOUND {
            failures.push(format!("{name}: max |diff| {d:e} > {BOUND:e}"));
        }
    }
    say(&format!(
        "norm_onnx_runtime: {} cases, max |onnxruntime - bpnet| = {worst:.2e}",
        list.len()
    ));
    assert_eq!(list.len(), 12);
    assert!(out.status.success() && failures.is_empty(), "{}", failures.join("\n"));
}
