//! Exported models run in ONNX Runtime and agree with bpnet.
//!
//! The test writes models of several shapes (classification with logits,
//! softmax or sigmoid heads, regression mapped back to target units; BN
//! before or after the activation, folded and unfolded; every activation
//! ONNX has natively, plus GELU written with Erf below opset 20), their raw
//! inputs and bpnet's outputs to a temporary directory, then runs
//! `tools/onnx_check.py` with the Python named by `BPNET_ONNX_PYTHON` (a
//! virtual environment with onnx, onnxruntime and numpy from PyPI, made by
//! `tools/onnx_env.sh`; `.ci/run` sets it up). The checker runs
//! `onnx.checker.check_model(full_check=True)`, checks names, dynamic batch
//! dimension, opset and metadata, and runs each model on all rows and on
//! one row.
//!
//! Bound: `max |onnxruntime - bpnet| <= 1e-5` for every case (outputs are of
//! magnitude up to about 10), but targets near 1.7e12 of spread 1,000,
//! mapped back in f64: 1e-5 of their spread. Two end-to-end cases train with the `bpnet`
//! binary on a CSV, export with `bpnet export` and compare with
//! `bpnet predict`, whose CSV prints each probability as the shortest text
//! of its f32 value.
//!
//! Without `BPNET_ONNX_PYTHON` the test prints a SKIP line and passes,
//! unless `CI` is set, where it fails.

#[path = "../../bpnet/tests/onnx_common/mod.rs"]
mod onnx_common;

mod common;
use bpnet::onnx::{ExportOptions, Head, OutputScaling, export_onnx};
use bpnet::{Activation, BatchNormConfig, BnPlacement, Matrix, Sequential};
use common::ok as bpnet;
use onnx_common::reference::{Rows, bpnet_outputs, raw_inputs};
use onnx_common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const BOUND: f64 = 1e-5;

/// Writes to the real stderr, past the test harness's capture.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

struct Cases {
    dir: PathBuf,
    list: Vec<Value>,
}

impl Cases {
    /// Records a case: the ONNX bytes go to `{name}.onnx`; `io` is the
    /// (input, output) name pair, `opset` the (opset, IR version) pair.
    fn add(&mut self, name: &str, bytes: &[u8], io: [&str; 2], opset: [i64; 2], data: [&dyn Rows; 2], meta: Value) {
        let [raw, want] = data;
        let path = self.dir.join(format!("{name}.onnx"));
        std::fs::write(&path, bytes).unwrap();
        self.list.push(json!({
            "name": name, "onnx": path, "input_name": io[0], "output_name": io[1],
            "opset": opset[0], "ir_version": opset[1], "input": raw.rows_json(), "expected": want.rows_json(),
            "metadata": meta,
        }));
    }
}

fn library_case(cases: &mut Cases, name: &str, mut model: Sequential<f32>, options: ExportOptions, raw: &Matrix<f32>) {
    let onnx = export_onnx(&model, &options).unwrap();
    let want = bpnet_outputs(&mut model, raw, &options);
    let meta = json!({"bpnet_version": env!("CARGO_PKG_VERSION"), "bpnet_fold_bn": options.fold_bn.to_string()});
    let io = [options.input_name.as_str(), options.output_name.as_str()];
    cases.add(name, &onnx.bytes, io, [onnx.opset, onnx.ir_version], [raw, &want], meta);
}

fn library_cases(cases: &mut Cases) {
    let (raw, scaling) = raw_inputs(6, 40, 100);
    for (k, act) in activations().into_iter().enumerate() {
        for bn in [BnPlacement::BeforeActivation, BnPlacement::AfterActivation] {
            for fold_bn in [false, true] {
                let spec = spec(&[6, 32, 16, 3], act, bn, 0.1);
                let head = if k % 2 == 0 { Head::Softmax } else { Head::Raw };
                let options = ExportOptions {
                    fold_bn,
                    head,
                    input_scaling: Some(scaling.clone()),
                    input_name: "features".into(),
                    output_name: "scores".into(),
                    ..ExportOptions::default()
                };
                let name = format!("classify_{}_{bn:?}_fold{fold_bn}", act.name().replace(':', "_"));
                library_case(cases, &name, network(&spec, 40 + k as u64), options, &raw);
            }
        }
    }
    for (act, fold_bn) in [
        (Activation::Relu, false),
        (Activation::Tanh, true),
        (Activation::Gelu, false),
    ] {
        let spec = spec(&[6, 24, 24, 2], act, BnPlacement::BeforeActivation, 0.0);
        let post = OutputScaling {
            center: vec![2.0, -1.0],
            scale: vec![1.5, 0.5],
            names: vec!["y1".into(), "y2".into()],
        };
        let options = ExportOptions {
            fold_bn,
            input_scaling: Some(scaling.clone()),
            output_scaling: Some(post),
            ..ExportOptions::default()
        };
        let name = format!("regress_{}_fold{fold_bn}", act.name());
        library_case(cases, &name, network(&spec, 60), options, &raw);
    }
    // Binary classifier with a sigmoid head, no BN; GELU below opset 20;
    // BN without affine and with Keras' eps; missing values filled.
    let binary = spec(&[6, 10, 1], Activation::Elu(1.0), BnPlacement::None, 0.0);
    let sigmoid = ExportOptions {
        head: Head::Sigmoid,
        input_scaling: Some(scaling.clone()),
        ..ExportOptions::default()
    };
    library_case(cases, "binary_sigmoid_head", network(&binary, 61), sigmoid, &raw);
    let gelu = spec(&[6, 16, 16, 3], Activation::Gelu, BnPlacement::BeforeActivation, 0.0);
    let opset17 = ExportOptions {
        opset: Some(17),
        input_scaling: Some(scaling.clone()),
        ..ExportOptions::default()
    };
    library_case(cases, "gelu_as_erf_opset17", network(&gelu, 62), opset17, &raw);
    let mut plain = spec(&[6, 16, 3], Activation::Sigmoid, BnPlacement::BeforeActivation, 0.0);
    plain.bn = BatchNormConfig {
        affine: false,
        ..BatchNormConfig::keras()
    };
    library_case(
        cases,
        "bn_no_affine_keras_eps",
        network(&plain, 63),
        ExportOptions::default(),
        &uniform(20, 6, -2.0, 2.0, 7),
    );
    let mut filled = scaling.clone();
    filled.fill = filled.center.iter().map(|c| c + 1.0).collect();
    let mut holes = raw.clone();
    for r in (0..holes.rows()).step_by(3) {
        holes.row_mut(r)[r % 6] = f32::NAN;
    }
    let impute = ExportOptions {
        input_scaling: Some(filled),
        head: Head::Softmax,
        ..ExportOptions::default()
    };
    library_case(
        cases,
        "missing_values_filled",
        network(
            &spec(&[6, 8, 3], Activation::Relu, BnPlacement::AfterActivation, 0.0),
            64,
        ),
        impute,
        &holes,
    );
}

/// Trains on a CSV with the binary, exports, and records bpnet predict's
/// output for the raw rows.
fn cli_cases(cases: &mut Cases) {
    let dir = cases.dir.clone();
    let (mut cls, mut reg) = (String::from("x1,x2,color,label\n"), String::from("x1,x2,color,y\n"));
    let colors = ["red", "green", "blue"];
    let z = uniform::<f64>(160, 3, -1.0, 1.0, 77);
    let mut raw = Vec::new();
    for r in 0..160 {
        let (x1, x2) = ((50.0 + 10.0 * z.get(r, 0)) as f32, (-3.0 + 0.5 * z.get(r, 1)) as f32);
        let c = (r * 7 + (z.get(r, 2) > 0.0) as usize) % 3;
        let label = ["a", "b", "c"][(((x1 - 50.0) / 7.0 + (x2 + 3.0) * 2.0 + c as f32)
            .round()
            .rem_euclid(3.0)) as usize];
        let y = 3.0 + 1.5 * ((x1 - 50.0) / 10.0).sin() + (x2 + 3.0) - 0.5 * c as f32;
        cls += &format!("{x1},{x2},{},{label}\n", colors[c]);
        reg += &format!("{x1},{x2},{},{y}\n", colors[c]);
        // Input contract: numeric raw values, then one-hot over the sorted categories.
        let onehot = ["blue", "green", "red"].map(|k| (k == colors[c]) as u8 as f32);
        raw.extend([x1, x2, onehot[0], onehot[1], onehot[2]]);
    }
    std::fs::write(dir.join("cls.csv"), cls).unwrap();
    std::fs::write(dir.join("reg.csv"), reg).unwrap();
    let raw = Matrix::from_vec(160, 5, raw).unwrap();
    let features = json!(["x1", "x2", "color=blue", "color=green", "color=red"]).to_string();
    let train = ["--hidden", "16,16", "--epochs", "4", "--quiet", "--seed", "3"];
    bpnet(
        &dir,
        &[
            &[
                "train",
                "--data",
                "cls.csv",
                "--target",
                "label",
                "--out",
                "cls.safetensors",
            ][..],
            &train,
        ]
        .concat(),
    );
    bpnet(
        &dir,
        &[
            &[
                "train",
                "--data",
                "reg.csv",
                "--target",
                "y",
                "--task",
                "regress",
                "--out",
                "reg.safetensors",
            ][..],
            &train,
        ]
        .concat(),
    );
    for (model, extra, name) in [
        ("cls", "--probabilities", "cli_classify_probabilities"),
        ("reg", "--fold-bn", "cli_regress_folded"),
    ] {
        let onnx = dir.join(format!("{name}.onnx"));
        let summary = bpnet(
            &dir,
            &[
                "export",
                "--model",
                &format!("{model}.safetensors"),
                "--onnx",
                onnx.to_str().unwrap(),
                extra,
                "--json",
            ],
        );
        let info: Value = serde_json::from_str(summary.lines().last().unwrap()).unwrap();
        let predictions = bpnet(
            &dir,
            &[
                "predict",
                "--model",
                &format!("{model}.safetensors"),
                "--data",
                &format!("{model}.csv"),
            ],
        );
        let rows: Vec<Vec<f64>> = predictions
            .lines()
            .skip(1)
            .map(|l| {
                let cells = l.split(',');
                let cells: Vec<&str> = if model == "cls" {
                    cells.skip(1).collect()
                } else {
                    cells.collect()
                };
                cells.iter().map(|c| c.parse::<f64>().unwrap()).collect()
            })
            .collect();
        let want = Matrix::from_vec(rows.len(), rows[0].len(), rows.concat()).unwrap();
        let bytes = std::fs::read(&onnx).unwrap();
        let io = [info["input"].as_str().unwrap(), info["output"].as_str().unwrap()];
        let opset = [info["opset"].as_i64().unwrap(), info["ir_version"].as_i64().unwrap()];
        cases.add(
            name,
            &bytes,
            io,
            opset,
            [&raw, &want],
            json!({"input_features": features}),
        );
    }
}

/// A column near 1e6 that varies by 0.01, which an f32 input holds to steps
/// of 0.0625 (6 of its standard deviations): exported with `--input-type
/// f64`, the graph takes the raw f64 values, preprocesses them in f64 and
/// agrees with `bpnet predict` (which reads the CSV against the column's
/// recorded shift).
fn cli_f64_case(cases: &mut Cases) {
    let dir = cases.dir.clone();
    let z = uniform::<f64>(120, 2, -1.0, 1.0, 91);
    let mut csv = String::from("big,x,y\n");
    let mut raw = Vec::new();
    for r in 0..120 {
        let (big, x) = (1e6 + 0.01 * z.get(r, 0), z.get(r, 1));
        let y = 3.0 * z.get(r, 0) - x;
        csv += &format!("{big:.6},{x:.6},{y:.6}\n");
        raw.extend([
            format!("{big:.6}").parse::<f64>().unwrap(),
            format!("{x:.6}").parse().unwrap(),
        ]);
    }
    std::fs::write(dir.join("far.csv"), csv).unwrap();
    let raw = Matrix::from_vec(120, 2, raw).unwrap();
    let train = [
        "--hidden",
        "8",
        "--epochs",
        "6",
        "--quiet",
        "--seed",
        "5",
        "--ensemble",
        "2",
    ];
    let args = [
        "train",
        "--data",
        "far.csv",
        "--target",
        "y",
        "--out",
        "far.safetensors",
    ];
    bpnet(&dir, &[&args[..], &train].concat());
    let onnx = dir.join("far_f64.onnx");
    let export = ["export", "--model", "far.safetensors", "--onnx", onnx.to_str().unwrap()];
    let summary = bpnet(&dir, &[&export[..], &["--input-type", "f64", "--json"]].concat());
    let info: Value = serde_json::from_str(summary.lines().last().unwrap()).unwrap();
    assert_eq!(info["input_type"], "f64");
    let predictions = bpnet(&dir, &["predict", "--model", "far.safetensors", "--data", "far.csv"]);
    let want: Vec<f64> = predictions.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let want = Matrix::from_vec(want.len(), 1, want).unwrap();
    let io = [info["input"].as_str().unwrap(), info["output"].as_str().unwrap()];
    let opset = [info["opset"].as_i64().unwrap(), info["ir_version"].as_i64().unwrap()];
    let bytes = std::fs::read(&onnx).unwrap();
    assert_eq!(info["output_type"], "f64", "a regression output is mapped back in f64");
    cases.add("cli_regress_f64_input", &bytes, io, opset, [&raw, &want], json!({}));
    let case = cases.list.last_mut().unwrap();
    case["input_dtype"] = json!("float64");
    case["output_dtype"] = json!("float64");
}

/// Targets far from zero (1.7e12 + 1000 x, timestamps in milliseconds): an
/// f32 output holds them to steps of 131072, so every row's ONNX output was
/// the same number, up to 4e4 from `bpnet predict`, with `--input-type f64`
/// too (the mapping back was f32). With it the outputs are mapped back and
/// returned in f64, within 1e-5 of the targets' spread of `bpnet predict`;
/// an f32 export says in a note that its output is coarse.
fn cli_far_targets_case(cases: &mut Cases) {
    let dir = cases.dir.clone();
    let z = uniform::<f64>(150, 2, -1.0, 1.0, 17);
    let mut csv = String::from("a,b,ts\n");
    let mut raw = Vec::new();
    for r in 0..150 {
        let (a, b) = (z.get(r, 0), z.get(r, 1));
        csv += &format!("{a:.6},{b:.6},{:.3}\n", 1.7e12 + 1000.0 * a + 300.0 * b);
        raw.extend([
            format!("{a:.6}").parse::<f64>().unwrap(),
            format!("{b:.6}").parse().unwrap(),
        ]);
    }
    std::fs::write(dir.join("ts.csv"), csv).unwrap();
    let raw = Matrix::from_vec(150, 2, raw).unwrap();
    let train = [
        "train",
        "--data",
        "ts.csv",
        "--hidden",
        "8",
        "--epochs",
        "6",
        "--quiet",
        "--ensemble",
        "1",
    ];
    bpnet(&dir, &[&train[..], &["--out", "ts.safetensors"]].concat());
    let export = ["export", "--model", "ts.safetensors", "--onnx"];
    let coarse = bpnet(&dir, &[&export[..], &["ts_f32.onnx"]].concat());
    assert!(
        coarse.contains("note: an f32 output holds ts (steps of 1.311e5"),
        "{coarse}"
    );
    let onnx = dir.join("ts_f64.onnx");
    let summary = bpnet(
        &dir,
        &[&export[..], &[onnx.to_str().unwrap(), "--input-type", "f64", "--json"]].concat(),
    );
    assert!(!summary.contains("note: an f32 output"), "{summary}");
    let info: Value = serde_json::from_str(summary.lines().last().unwrap()).unwrap();
    let predictions = bpnet(&dir, &["predict", "--model", "ts.safetensors", "--data", "ts.csv"]);
    let want: Vec<f64> = predictions.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let spread = want.iter().map(|v| (v - want[0]).abs()).fold(0.0, f64::max);
    assert!(
        spread > 100.0,
        "the model predicts {spread} apart: too few distinct values to tell"
    );
    let want = Matrix::from_vec(want.len(), 1, want).unwrap();
    let io = [info["input"].as_str().unwrap(), info["output"].as_str().unwrap()];
    let opset = [info["opset"].as_i64().unwrap(), info["ir_version"].as_i64().unwrap()];
    let bytes = std::fs::read(&onnx).unwrap();
    cases.add(
        "cli_regress_far_targets_f64",
        &bytes,
        io,
        opset,
        [&raw, &want],
        json!({}),
    );
    let case = cases.list.last_mut().unwrap();
    case["input_dtype"] = json!("float64");
    case["output_dtype"] = json!("float64");
    // 1e-5 of the targets' spread (about 1,000): bpnet maps its f32 outputs
    // back in f64 the same way; the two networks round alike to ~1e-6.
    case["bound"] = json!(1e-5 * 1000.0);
}

#[test]
fn exported_models_agree_with_bpnet_in_onnx_runtime() {
    let Some(python) = std::env::var_os("BPNET_ONNX_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "BPNET_ONNX_PYTHON is not set but CI is: .ci/run must set it (bash tools/onnx_env.sh)"
        );
        say("SKIP onnx_runtime: BPNET_ONNX_PYTHON is not set. To run this test: \
             export BPNET_ONNX_PYTHON=\"$(bash tools/onnx_env.sh | tail -n 1)\"");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = Cases {
        dir: tmp.path().to_path_buf(),
        list: Vec::new(),
    };
    library_cases(&mut cases);
    cli_cases(&mut cases);
    cli_f64_case(&mut cases);
    cli_far_targets_case(&mut cases);
    let manifest = tmp.path().join("manifest.json");
    let results = tmp.path().join("results.json");
    std::fs::write(&manifest, json!({"cases": cases.list}).to_string()).unwrap();
    let checker = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/onnx_check.py"));
    let out = Command::new(&python)
        .arg(checker)
        .arg(&manifest)
        .arg(&results)
        .output()
        .unwrap();
    say(String::from_utf8_lossy(&out.stdout).trim_end());
    let results: Value = serde_json::from_slice(&std::fs::read(&results).unwrap_or_default()).unwrap_or_else(|e| {
        panic!(
            "checker wrote no results ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut worst = (0.0f64, String::new());
    let mut failures = Vec::new();
    for case in &cases.list {
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
        say(&format!(
            "  {name:<48} max |diff| {d:.2e}  (max |y| {:.3})",
            r["max_abs_expected"].as_f64().unwrap()
        ));
        if d > worst.0 {
            worst = (d, name.to_string());
        }
        let bound = case["bound"].as_f64().unwrap_or(BOUND);
        if d > bound {
            failures.push(format!("{name}: max |diff| {d:e} > {bound:e}"));
        }
    }
    say(&format!(
        "onnx_runtime: {} cases, max |onnxruntime - bpnet| = {:.2e} ({}), bound {BOUND:e}",
        cases.list.len(),
        worst.0,
        worst.1
    ));
    assert!(out.status.success() && failures.is_empty(), "{}", failures.join("\n"));
}
