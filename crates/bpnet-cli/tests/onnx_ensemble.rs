//! Exported ensembles run in ONNX Runtime and agree with bpnet: library
//! ensembles (softmax probabilities, "logits" = ln of the mean probability,
//! sigmoid, regression in target units; BN folded or not; a blend of
//! members of different architectures) and an ensemble
//! trained with `bpnet train --ensemble 3`, exported with `bpnet export`
//! and compared with `bpnet predict`. Checked by `tools/onnx_check.py` with
//! the Python named by `BPNET_ONNX_PYTHON` (see tests/onnx_runtime.rs);
//! without it the test prints SKIP and passes, unless `CI` is set.
//!
//! Bound: `max |onnxruntime - bpnet| <= 1e-5` (predict's CSV rounds to 6
//! decimals: the CLI case adds up to 5e-7); for the saturated cases, whose
//! log-probabilities reach -87.3, 4 f32 ulps of the largest value.

#[path = "../../bpnet/tests/onnx_common/mod.rs"]
mod onnx_common;

mod common;
use bpnet::onnx::{ExportOptions, Head, OutputScaling, export_onnx_ensemble};
use bpnet::{Activation, BnPlacement, Combine, Matrix, Sequential};
use common::ok as bpnet;
use onnx_common::reference::{Rows, bpnet_outputs, raw_inputs};
use onnx_common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const BOUND: f64 = 1e-5;

fn case(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    opset: [i64; 2],
    raw: &dyn Rows,
    want: &dyn Rows,
    io: [&str; 2],
) -> Value {
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, bytes).unwrap();
    json!({"name": name, "onnx": path, "input_name": io[0], "output_name": io[1], "opset": opset[0],
           "ir_version": opset[1], "input": raw.rows_json(), "expected": want.rows_json(), "metadata": {}})
}

/// Mean over members of bpnet's prediction with `o`'s head and scaling.
fn mean_outputs(members: &mut [Sequential<f32>], raw: &Matrix<f32>, o: &ExportOptions) -> Matrix<f64> {
    let outs: Vec<Matrix<f64>> = members.iter_mut().map(|m| bpnet_outputs(m, raw, o)).collect();
    let mut mean = outs[0].clone();
    for (i, v) in mean.as_mut_slice().iter_mut().enumerate() {
        *v = outs.iter().map(|o| o.as_slice()[i]).sum::<f64>() / outs.len() as f64;
    }
    mean
}

fn library_cases(dir: &Path) -> Vec<Value> {
    let (raw, scaling) = raw_inputs(6, 40, 200);
    let mut cases = Vec::new();
    for fold_bn in [false, true] {
        let s = spec(&[6, 16, 8, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
        let mut members: Vec<Sequential<f32>> = (0..3).map(|k| network(&s, 300 + k)).collect();
        for head in [Head::Softmax, Head::Raw] {
            let o = ExportOptions {
                fold_bn,
                head,
                input_scaling: Some(scaling.clone()),
                ..ExportOptions::default()
            };
            let onnx = export_onnx_ensemble(&members, Combine::Softmax, &o).unwrap();
            let probs = ExportOptions {
                head: Head::Softmax,
                ..o.clone()
            };
            let mut want = mean_outputs(&mut members, &raw, &probs);
            if head == Head::Raw {
                want.as_mut_slice().iter_mut().for_each(|v| *v = v.ln());
            }
            let name = format!("ensemble_softmax_{head:?}_fold{fold_bn}");
            cases.push(case(
                dir,
                &name,
                &onnx.bytes,
                [onnx.opset, onnx.ir_version],
                &raw,
                &want,
                ["input", "output"],
            ));
        }
    }
    // Far-out rows saturate the softmax (and the sigmoid): a class every
    // member gives probability 0 (or 1). The logits are then bpnet's
    // clamped ones, as `EnsembleNet` (what `bpnet predict` runs) computes
    // them; the graph's `Log` of 0 was -inf.
    let far = Matrix::from_vec(
        raw.rows(),
        raw.cols(),
        raw.as_slice()
            .iter()
            .zip(scaling.center.iter().cycle())
            .map(|(&v, &c)| c as f32 + 2000.0 * (v - c as f32))
            .collect(),
    )
    .unwrap();
    let scaled = Matrix::from_vec(
        far.rows(),
        far.cols(),
        far.as_slice()
            .iter()
            .enumerate()
            .map(|(i, &v)| ((f64::from(v) - scaling.center[i % far.cols()]) / scaling.scale[i % far.cols()]) as f32)
            .collect(),
    )
    .unwrap();
    for (dims, combine) in [
        (&[6, 16, 8, 3][..], Combine::Softmax),
        (&[6, 16, 8, 1][..], Combine::Sigmoid),
    ] {
        let s = spec(dims, Activation::Relu, BnPlacement::BeforeActivation, 0.0);
        let members: Vec<Sequential<f32>> = (0..3).map(|k| network(&s, 700 + k)).collect();
        // Folded, as `EnsembleNet` folds them: logits of about 1e3 keep
        // the two within the bound (unfolded, 1.2e-4 apart).
        let o = ExportOptions {
            head: Head::Raw,
            fold_bn: true,
            input_scaling: Some(scaling.clone()),
            ..ExportOptions::default()
        };
        let onnx = export_onnx_ensemble(&members, combine, &o).unwrap();
        let want = bpnet::EnsembleNet::new(&members, combine)
            .unwrap()
            .forward(&scaled)
            .unwrap();
        assert!(
            want.as_slice().iter().any(|&v| v < -80.0),
            "{combine:?}: no saturated class"
        );
        cases.push(case(
            dir,
            &format!("ensemble_{combine:?}_raw_saturated"),
            &onnx.bytes,
            [onnx.opset, onnx.ir_version],
            &far,
            &want,
            ["input", "output"],
        ));
    }
    let s = spec(&[6, 10, 1], Activation::Tanh, BnPlacement::AfterActivation, 0.0);
    let mut members: Vec<Sequential<f32>> = (0..2).map(|k| network(&s, 400 + k)).collect();
    let o = ExportOptions {
        head: Head::Sigmoid,
        input_scaling: Some(scaling.clone()),
        ..ExportOptions::default()
    };
    let onnx = export_onnx_ensemble(&members, Combine::Sigmoid, &o).unwrap();
    let want = mean_outputs(&mut members, &raw, &o);
    cases.push(case(
        dir,
        "ensemble_sigmoid",
        &onnx.bytes,
        [onnx.opset, onnx.ir_version],
        &raw,
        &want,
        ["input", "output"],
    ));
    // A blend (members of different architectures, as `bpnet tune` writes):
    // member 0 needs no more than the lowest opset, member 2's GELU needs
    // opset 20, which the whole export must then use.
    let specs = [
        spec(&[6, 16, 8, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.0),
        spec(&[6, 3], Activation::Relu, BnPlacement::None, 0.0),
        spec(&[6, 12, 3], Activation::Gelu, BnPlacement::AfterActivation, 0.3),
    ];
    let mut members: Vec<Sequential<f32>> = specs.iter().zip(0..).map(|(s, k)| network(s, 600 + k)).collect();
    for fold_bn in [false, true] {
        let o = ExportOptions {
            head: Head::Softmax,
            fold_bn,
            input_scaling: Some(scaling.clone()),
            ..ExportOptions::default()
        };
        let onnx = export_onnx_ensemble(&members, Combine::Softmax, &o).unwrap();
        assert_eq!(onnx.opset, bpnet::onnx::GELU_OPSET);
        let want = mean_outputs(&mut members, &raw, &o);
        cases.push(case(
            dir,
            &format!("blend_softmax_fold{fold_bn}"),
            &onnx.bytes,
            [onnx.opset, onnx.ir_version],
            &raw,
            &want,
            ["input", "output"],
        ));
    }
    let s = spec(&[6, 12, 2], Activation::Gelu, BnPlacement::BeforeActivation, 0.0);
    let mut members: Vec<Sequential<f32>> = (0..4).map(|k| network(&s, 500 + k)).collect();
    let o = ExportOptions {
        input_scaling: Some(scaling),
        output_scaling: Some(OutputScaling {
            center: vec![10.0, -2.0],
            scale: vec![3.0, 0.25],
            names: vec!["a".into(), "b".into()],
        }),
        ..ExportOptions::default()
    };
    let onnx = export_onnx_ensemble(&members, Combine::Mean, &o).unwrap();
    let want = mean_outputs(&mut members, &raw, &o);
    cases.push(case(
        dir,
        "ensemble_regression",
        &onnx.bytes,
        [onnx.opset, onnx.ir_version],
        &raw,
        &want,
        ["input", "output"],
    ));
    cases
}

/// `bpnet train --ensemble 3` on iris, exported with probabilities, against `bpnet predict`.
fn cli_case(dir: &Path) -> Value {
    let iris = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");
    bpnet(
        dir,
        &[
            "train",
            "--data",
            iris,
            "--epochs",
            "5",
            "--hidden",
            "8",
            "--ensemble",
            "3",
            "--quiet",
            "--out",
            "e.safetensors",
        ],
    );
    let info = bpnet(
        dir,
        &[
            "export",
            "--model",
            "e.safetensors",
            "--onnx",
            "e.onnx",
            "--probabilities",
            "--json",
        ],
    );
    let info: Value = serde_json::from_str(info.lines().last().unwrap()).unwrap();
    let predictions = bpnet(dir, &["predict", "--model", "e.safetensors", "--data", iris]);
    let want: Vec<f64> = predictions
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .skip(1)
                .map(|c| c.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let text = std::fs::read_to_string(iris).unwrap();
    let raw: Vec<f32> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .take(4)
                .map(|c| c.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let raw = Matrix::from_vec(150, 4, raw).unwrap();
    let want = Matrix::from_vec(150, 3, want).unwrap();
    let bytes = std::fs::read(dir.join("e.onnx")).unwrap();
    let io = [info["input"].as_str().unwrap(), info["output"].as_str().unwrap()];
    let opset = [info["opset"].as_i64().unwrap(), info["ir_version"].as_i64().unwrap()];
    assert_eq!(
        info["ops"].as_array().unwrap().iter().filter(|o| *o == "Mean").count(),
        1
    );
    case(dir, "cli_ensemble_probabilities", &bytes, opset, &raw, &want, io)
}

#[test]
fn exported_ensembles_agree_with_bpnet_in_onnx_runtime() {
    let Some(python) = std::env::var_os("BPNET_ONNX_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "BPNET_ONNX_PYTHON is not set but CI is"
        );
        eprintln!("SKIP onnx_ensemble: BPNET_ONNX_PYTHON is not set (bash tools/onnx_env.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = library_cases(tmp.path());
    cases.push(cli_case(tmp.path()));
    let (manifest, results) = (tmp.path().join("manifest.json"), tmp.path().join("results.json"));
    std::fs::write(&manifest, json!({"cases": cases}).to_string()).unwrap();
    let checker = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/onnx_check.py");
    let out = Command::new(&python)
        .arg(checker)
        .arg(&manifest)
        .arg(&results)
        .output()
        .unwrap();
    let results: Value = serde_json::from_slice(&std::fs::read(&results).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no results ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let r = &results[name];
        if let Some(e) = r["error"].as_str() {
            failures.push(format!("{name}: {e}"));
            continue;
        }
        let d = r["max_abs_diff"]
            .as_f64()
            .unwrap()
            .max(r["max_abs_diff_one_row"].as_f64().unwrap());
        // Saturated cases hold log-probabilities down to ln(f32's smallest
        // normal), -87.3: their bound is 4 f32 ulps of the largest |y|.
        let bound = match name.ends_with("_saturated") {
            true => BOUND.max(4.0 * f64::from(f32::EPSILON) * r["max_abs_expected"].as_f64().unwrap()),
            false => BOUND,
        };
        eprintln!("  {name:<40} max |diff| {d:.2e} (bound {bound:.1e})");
        if d > bound {
            failures.push(format!("{name}: max |diff| {d:e} > {bound:e}"));
        }
    }
    assert!(out.status.success() && failures.is_empty(), "{}", failures.join("\n"));
}
