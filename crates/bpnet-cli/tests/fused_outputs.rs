//! `bpnet eval` and `bpnet predict` run the fused network (batch
//! normalization folded into the Dense layers): their outputs must equal the
//! unfolded eval-mode forward of the same model file within the bound of
//! `crates/bpnet/tests/infer.rs` (2e-6 relative in f32). Checked on a BN
//! classifier (iris, BN before the activation) and a BN regressor
//! (diabetes, BN after the activation).

mod common;
use bpnet::io::load_model;
use bpnet::train::{default_loss, evaluate};
use bpnet::workflow::{Pipeline, labelled, unlabelled};
use bpnet::{Mode, Sequential};
use common::ok as bpnet;
use std::path::Path;

use common::ROOT;

/// Trains `data` with `extra` options; returns the model path.
fn train(dir: &Path, data: &str, target: &str, extra: &[&str]) -> String {
    let model = dir.join(format!("{target}.safetensors")).display().to_string();
    let mut args = vec![
        "--threads",
        "1",
        "train",
        "--data",
        data,
        "--target",
        target,
        "--epochs",
        "30",
    ];
    // One network: the test compares it with its own unfolded forward pass.
    args.extend([
        "--hidden",
        "32,16",
        "--seed",
        "4",
        "--ensemble",
        "1",
        "--quiet",
        "--out",
        &model,
    ]);
    args.extend(extra);
    bpnet(dir, &args);
    model
}

fn unfolded(model: &str, data: &str) -> (Sequential<f32>, Pipeline, bpnet::Matrix<f32>) {
    let mut file = load_model(Path::new(model)).unwrap();
    let pipeline = Pipeline::from_metadata(&file.metadata, Path::new(model)).unwrap();
    let x = unlabelled(&pipeline, data).unwrap();
    let out = file.model.forward(&x, Mode::Eval).unwrap().clone();
    (file.model, pipeline, out)
}

#[test]
fn predict_probabilities_equal_the_unfolded_forward_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    let model = train(dir.path(), &data, "species", &[]);
    let csv = bpnet(dir.path(), &["predict", "--model", &model, "--data", &data]);
    let (_, _, logits) = unfolded(&model, &data);
    let mut worst = 0.0f64;
    for (r, line) in csv.lines().skip(1).enumerate() {
        let z: Vec<f64> = logits.row(r).iter().map(|&v| v as f64).collect();
        let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
        for (c, cell) in line.split(',').skip(1).enumerate() {
            let want = (z[c] - max).exp() / sum;
            let got: f64 = cell.parse().unwrap();
            // Printed as its f32 exactly: the bound alone.
            worst = worst.max((got - want).abs());
            assert!((got - want).abs() <= 2e-6, "row {r} class {c}: {got} vs {want}");
        }
    }
    println!("largest difference of a printed probability: {worst:e}");
}

#[test]
fn eval_metrics_equal_the_unfolded_forward_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/diabetes.csv");
    let model = train(
        dir.path(),
        &data,
        "progression",
        &["--bn-after", "--activation", "tanh"],
    );
    let json = bpnet(dir.path(), &["eval", "--model", &model, "--data", &data, "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    let got = v["metrics"]["loss"].as_f64().unwrap();
    let (mut net, pipeline, _) = unfolded(&model, &data);
    let labelled = labelled(&pipeline, &data).unwrap();
    let want = evaluate(&mut net, &labelled, default_loss(&labelled), 1024)
        .unwrap()
        .loss;
    println!("eval loss {got} (fused) vs {want} (unfolded)");
    assert!((got - want).abs() <= 4e-6 * want.abs(), "{got} vs {want}");
}
