//! Model files (`bpnet::io`): save -> load round trips that are bit-identical,
//! the PyTorch tensor names as seen by a plain reading of the safetensors
//! format, one-line errors for damaged or foreign files, and atomic saves.

use bpnet::io::{BASE_FORMAT_VERSION, FORMAT_VERSION, describe, load_model, save_model};
use bpnet::{
    Activation, BatchNormConfig, BnPlacement, Init, Layer, Loss, Matrix, Mode, ModelSpec, Momentum, Optimizer,
    OptimizerConfig, Sequential, Target, Trainer,
};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use safetensors::{Dtype, SafeTensors};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

mod common;

#[path = "model_file/errors.rs"]
mod errors;
#[path = "model_file/saving.rs"]
mod saving;
#[path = "model_file/unchecked.rs"]
mod unchecked;

const ACTIVATIONS: [Activation; 8] = [
    Activation::Identity,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Elu(0.7),
    Activation::Gelu,
    Activation::Softplus,
];

fn matrix(rows: usize, cols: usize, seed: u64) -> Matrix<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let data = (0..rows * cols)
        .map(|i| rng.random_range(-2.0..2.0) + (i % cols) as f32 * 0.3)
        .collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

fn spec(dims: &[usize], activation: Activation, batch_norm: BnPlacement, dropout: f64) -> ModelSpec {
    ModelSpec {
        dims: dims.to_vec(),
        activation,
        batch_norm,
        bn: BatchNormConfig::default(),
        dropout,
        init: Init::XavierUniform,
    }
}

/// The model of `spec` after `steps` SGD steps on random data (so running
/// statistics and batch counts are non-trivial).
fn trained(spec: &ModelSpec, seed: u64, steps: usize) -> Sequential<f32> {
    let model = Sequential::<f32>::from_spec(spec, seed).unwrap();
    let opt = Optimizer::new(OptimizerConfig::sgd(0.05)).unwrap();
    let mut trainer = Trainer::new(model, opt, Loss::CrossEntropy);
    let (inputs, classes) = (spec.dims[0], *spec.dims.last().unwrap());
    for s in 0..steps {
        let x = matrix(16, inputs, seed * 1000 + s as u64);
        let labels: Vec<usize> = (0..16).map(|r| (r * 7 + s) % classes).collect();
        trainer.step(&x, Target::Labels(&labels)).unwrap();
    }
    trainer.model
}

fn eval_bits(model: &mut Sequential<f32>, x: &Matrix<f32>) -> Vec<u32> {
    model
        .forward(x, Mode::Eval)
        .unwrap()
        .as_slice()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn sections() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "preprocessing".into(),
        json!({"kind": "zscore", "mean": [0.5, -1.25], "std": [2.0, 0.1]}),
    );
    m.insert(
        "training".into(),
        json!({"epochs": 3, "optimizer": "sgd", "lr": 0.05, "note": "ünïcode \"q\""}),
    );
    m.insert("metrics".into(), json!({"accuracy": 0.9125, "loss": null}));
    m
}

fn saved(dir: &Path, name: &str, spec: &ModelSpec, model: &Sequential<f32>) -> PathBuf {
    let path = dir.join(name);
    save_model(&path, spec, model, &sections()).unwrap();
    path
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_is_bit_identical_across_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let placements = [
        BnPlacement::None,
        BnPlacement::BeforeActivation,
        BnPlacement::AfterActivation,
    ];
    let widths: [&[usize]; 4] = [&[3, 2], &[5, 9, 4], &[6, 12, 7, 3], &[4, 1, 5, 2]];
    let mut case = 0u64;
    for (a, &activation) in ACTIVATIONS.iter().enumerate() {
        for (p, &placement) in placements.iter().enumerate() {
            case += 1;
            let dims = widths[(a + p) % widths.len()];
            let dropout = if (a + p) % 2 == 0 { 0.0 } else { 0.25 };
            let mut s = spec(dims, activation, placement, dropout);
            s.bn = match case % 4 {
                0 => BatchNormConfig::default(),
                1 => BatchNormConfig::keras(),
                2 => BatchNormConfig {
                    momentum: Momentum::Cumulative,
                    affine: false,
                    ..Default::default()
                },
                _ => BatchNormConfig {
                    track_running_stats: false,
                    ..Default::default()
                },
            };
            for steps in [0, 3] {
                check_round_trip(dir.path(), &s, case, steps);
            }
        }
    }
}

fn check_round_trip(dir: &Path, spec: &ModelSpec, seed: u64, steps: usize) {
    let mut model = trained(spec, seed, steps);
    let path = saved(dir, &format!("m{seed}-{steps}.safetensors"), spec, &model);
    let mut file = load_model(&path).unwrap();
    let ctx = format!("{spec:?} after {steps} steps");
    assert_eq!(file.spec, *spec, "{ctx}");
    assert_eq!(file.metadata, sections(), "{ctx}");
    assert_eq!(file.format_version, BASE_FORMAT_VERSION);
    assert_eq!(file.bpnet_version, env!("CARGO_PKG_VERSION"));
    let x = matrix(11, spec.dims[0], seed + 77);
    assert_eq!(eval_bits(&mut file.model, &x), eval_bits(&mut model, &x), "{ctx}");
    assert_eq!(file.model.summary(), model.summary(), "{ctx}");
    for (a, b) in file.model.layers().iter().zip(model.layers()) {
        if let (Layer::BatchNorm(a), Layer::BatchNorm(b)) = (a, b) {
            let tracked = spec.bn.track_running_stats;
            assert_eq!(a.running.batches, if tracked { steps as u64 } else { 0 }, "{ctx}");
            assert_eq!(a.running, b.running, "{ctx}");
            if tracked && steps > 0 {
                assert!(
                    a.running.mean.iter().any(|&m| m != 0.0),
                    "running mean untouched: {ctx}"
                );
            }
        }
    }
    // Every parameter, not only those the outputs depend on, comes back exactly.
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    model.visit_params(&mut |p| mine.push((p.name.clone(), p.value.clone())));
    file.model
        .visit_params(&mut |p| theirs.push((p.name.clone(), p.value.clone())));
    assert_eq!(mine, theirs, "{ctx}");
}

#[test]
fn a_fresh_model_differs_from_a_loaded_one() {
    // Guards the round-trip test: loading must overwrite the seed-0 weights.
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&[5, 9, 4], Activation::Tanh, BnPlacement::BeforeActivation, 0.0);
    let mut model = trained(&s, 7, 2);
    let path = saved(dir.path(), "m.safetensors", &s, &model);
    let mut fresh = Sequential::<f32>::from_spec(&s, 0).unwrap();
    let x = matrix(4, 5, 1);
    assert_ne!(eval_bits(&mut fresh, &x), eval_bits(&mut model, &x));
    assert_eq!(
        eval_bits(&mut load_model(&path).unwrap().model, &x),
        eval_bits(&mut model, &x)
    );
}

/// The header of a safetensors file read by hand: 8-byte little-endian
/// length, then that many bytes of JSON.
fn plain_header(bytes: &[u8]) -> (usize, Map<String, Value>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_str(std::str::from_utf8(&bytes[8..8 + n]).unwrap()).unwrap();
    (n, header.as_object().unwrap().clone())
}

/// A trained `5-7-6-3` model with BN before ReLU and dropout (tensors at
/// layers 0, 1, 4, 5, 8), saved; its bytes and hand-read header.
fn plain_fixture() -> (Sequential<f32>, Vec<u8>, usize, Map<String, Value>) {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&[5, 7, 6, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.5);
    let model = trained(&s, 3, 2);
    let path = saved(dir.path(), "m.safetensors", &s, &model);
    let bytes = std::fs::read(&path).unwrap();
    let (n, header) = plain_header(&bytes);
    (model, bytes, n, header)
}

type Entry = (String, String, Vec<usize>);

#[test]
fn plain_reading_shows_pytorch_names_and_shapes() {
    let (_, bytes, _, header) = plain_fixture();
    let mut want: Vec<Entry> = Vec::new();
    let mut push = |name: String, dtype: &str, shape: Vec<usize>| want.push((name, dtype.to_string(), shape));
    push("layers.0.weight".into(), "F32", vec![7, 5]);
    for (i, f) in [(1, 7), (5, 6)] {
        for t in ["weight", "bias", "running_mean", "running_var"] {
            push(format!("layers.{i}.{t}"), "F32", vec![f]);
        }
        push(format!("layers.{i}.num_batches_tracked"), "I64", vec![]);
    }
    push("layers.4.weight".into(), "F32", vec![6, 7]);
    push("layers.8.weight".into(), "F32", vec![3, 6]);
    push("layers.8.bias".into(), "F32", vec![3]);
    let mut got: Vec<Entry> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize);
            (k.clone(), v["dtype"].as_str().unwrap().to_string(), shape.collect())
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // The safetensors crate reads it too.
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("layers.8.bias").unwrap().dtype(), Dtype::F32);
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn plain_reading_finds_little_endian_values_at_their_offsets() {
    let (model, bytes, n, header) = plain_fixture();
    let data = &bytes[8 + n..];
    let offsets = |v: &Value| {
        (
            v["data_offsets"][0].as_u64().unwrap(),
            v["data_offsets"][1].as_u64().unwrap(),
        )
    };
    let mut spans: Vec<(u64, u64)> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(_, v)| offsets(v))
        .collect();
    spans.sort();
    assert_eq!(spans[0].0, 0);
    assert!(spans.windows(2).all(|w| w[0].1 == w[1].0));
    assert_eq!(spans.last().unwrap().1 as usize, data.len());
    let slice = |name: &str| {
        let (a, b) = offsets(&header[name]);
        &data[a as usize..b as usize]
    };
    let Layer::Dense(d) = &model.layers()[0] else {
        panic!("layer 0 is not Dense")
    };
    assert_eq!(f32s(slice("layers.0.weight")), d.weight.value.as_slice());
    let Layer::BatchNorm(b) = &model.layers()[5] else {
        panic!("layer 5 is not BatchNorm")
    };
    assert_eq!(f32s(slice("layers.5.running_var")), b.running.var);
    assert_eq!(
        f32s(slice("layers.5.weight")),
        b.affine.as_ref().unwrap().0.value.as_slice()
    );
    let batches = i64::from_le_bytes(slice("layers.5.num_batches_tracked").try_into().unwrap());
    assert_eq!(batches, 2);
}

#[test]
fn plain_reading_finds_the_metadata_keys() {
    let (model, _, _, header) = plain_fixture();
    let meta = header["__metadata__"].as_object().unwrap();
    let mut keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    keys.sort();
    let expected = [
        "architecture",
        "bpnet_version",
        "checksum",
        "format",
        "format_version",
        "layers",
        "metrics",
    ];
    assert_eq!(keys, [&expected[..], &["preprocessing", "training"]].concat());
    assert_eq!(meta["format"], "bpnet");
    assert_eq!(meta["format_version"], BASE_FORMAT_VERSION.to_string());
    assert_eq!(meta["bpnet_version"], env!("CARGO_PKG_VERSION"));
    let arch: Value = serde_json::from_str(meta["architecture"].as_str().unwrap()).unwrap();
    assert_eq!(arch["dims"], json!([5, 7, 6, 3]));
    assert_eq!(arch["batch_norm"], "before_activation");
    assert_eq!(arch["activation"], "relu");
    assert_eq!(arch["bn"]["momentum"], json!({"torch": 0.1}));
    let layers: Vec<String> = serde_json::from_str(meta["layers"].as_str().unwrap()).unwrap();
    let described: Vec<String> = model.layers().iter().map(|l| l.describe()).collect();
    assert_eq!(layers, described);
    assert_eq!(layers.len(), 9);
    for (k, v) in sections() {
        let stored: Value = serde_json::from_str(meta[&k].as_str().unwrap()).unwrap();
        assert_eq!(stored, v, "{k}");
    }
}

#[test]
fn after_activation_dense_layers_keep_their_bias() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&[4, 6, 2], Activation::Sigmoid, BnPlacement::AfterActivation, 0.0);
    let path = saved(dir.path(), "m.safetensors", &s, &trained(&s, 1, 1));
    let (_, header) = plain_header(&std::fs::read(&path).unwrap());
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort();
    let want = [
        "layers.0.bias",
        "layers.0.weight",
        "layers.2.bias",
        "layers.2.num_batches_tracked",
        "layers.2.running_mean",
        "layers.2.running_var",
        "layers.2.weight",
        "layers.3.bias",
        "layers.3.weight",
    ];
    assert_eq!(names, want);
    assert_eq!(header["layers.0.bias"]["shape"], json!([6]));
}

#[test]
fn describe_lists_versions_layers_counts_and_sections() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&[5, 7, 3], Activation::Gelu, BnPlacement::BeforeActivation, 0.1);
    let mut model = trained(&s, 2, 1);
    let path = saved(dir.path(), "m.safetensors", &s, &model);
    let text = describe(&load_model(&path).unwrap());
    assert!(text.contains(&format!("format {BASE_FORMAT_VERSION}")), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    for line in model.summary().lines() {
        assert!(text.contains(line), "missing '{line}' in\n{text}");
    }
    assert!(text.contains(&format!("{} trainable", model.num_params())), "{text}");
    assert!(text.contains("layers.1.running_var"), "{text}");
    assert!(text.contains("\"kind\": \"zscore\""), "{text}");
    assert!(
        text.contains("preprocessing:") && text.contains("metrics:") && text.contains("training:"),
        "{text}"
    );
}

/// A valid model file in a fresh directory, and its bytes.
fn fixture() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    // Tensors at layers 0 (Dense), 1 (BN), 4 (Dense), 5 (BN), 8 (Dense with bias).
    let s = spec(&[5, 7, 6, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.2);
    let path = saved(dir.path(), "model.safetensors", &s, &trained(&s, 9, 2));
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, bytes)
}
