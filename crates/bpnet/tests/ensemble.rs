//! Ensembles: one member is exactly the single network; several average
//! probabilities (softmax or sigmoid) or values; the one-file format keeps
//! every member's tensors and refuses damaged metadata; ONNX export of an
//! ensemble has one subgraph per member and a Mean node.

mod common;

use bpnet::io::{
    BASE_FORMAT_VERSION, BLEND_FORMAT_VERSION, ExtraTensor, blend_bytes, decode_model, ensemble_bytes,
    ensemble_members, load_model, member_specs, save_blend, save_checkpoint, save_ensemble, save_model_with,
};
use bpnet::layers::sigmoid;
use bpnet::onnx::{ExportOptions, Head, export_onnx_ensemble};
use bpnet::{Activation, BnPlacement, Combine, EnsembleNet, InferenceNet, Matrix, ModelSpec, Sequential};
use serde_json::{Value, json};

fn spec(dims: &[usize]) -> ModelSpec {
    ModelSpec {
        dims: dims.to_vec(),
        activation: Activation::Relu,
        batch_norm: BnPlacement::BeforeActivation,
        init: bpnet::Init::XavierUniform,
        ..ModelSpec::paper_mnist(true, 0.1)
    }
}

fn input(rows: usize, cols: usize) -> Matrix<f32> {
    let v = (0..rows * cols).map(|i| ((i * 37 % 23) as f32 - 11.0) / 5.0).collect();
    Matrix::from_vec(rows, cols, v).unwrap()
}

fn members(dims: &[usize], k: u64) -> Vec<Sequential<f32>> {
    (0..k)
        .map(|s| Sequential::from_spec(&spec(dims), 10 + s).unwrap())
        .collect()
}

#[test]
fn one_member_is_the_network_itself_bit_for_bit() {
    let m = members(&[5, 8, 3], 1);
    let x = input(17, 5);
    let single = InferenceNet::new(&m[0]).unwrap().forward(&x).unwrap();
    for c in [Combine::Softmax, Combine::Sigmoid, Combine::Mean] {
        let ens = EnsembleNet::new(&m, c).unwrap().forward(&x).unwrap();
        assert_eq!(ens.as_slice(), single.as_slice());
    }
}

fn softmax(z: &[f32]) -> Vec<f64> {
    let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn several_members_average_probabilities_or_values() {
    let x = input(9, 4);
    // Softmax: forward gives ln of the mean probability.
    let m = members(&[4, 6, 3], 3);
    let outs: Vec<Matrix<f32>> = m
        .iter()
        .map(|n| InferenceNet::new(n).unwrap().forward(&x).unwrap())
        .collect();
    let ens = EnsembleNet::new(&m, Combine::Softmax).unwrap().forward(&x).unwrap();
    for r in 0..x.rows() {
        let p: Vec<Vec<f64>> = outs.iter().map(|o| softmax(o.row(r))).collect();
        for c in 0..3 {
            let mean = p.iter().map(|p| p[c]).sum::<f64>() / 3.0;
            assert!((ens.get(r, c) as f64 - mean.ln()).abs() < 1e-5, "row {r} class {c}");
        }
    }
    // Sigmoid: forward gives the logit of the mean probability.
    let m = members(&[4, 5, 1], 2);
    let outs: Vec<Matrix<f32>> = m
        .iter()
        .map(|n| InferenceNet::new(n).unwrap().forward(&x).unwrap())
        .collect();
    let ens = EnsembleNet::new(&m, Combine::Sigmoid).unwrap().forward(&x).unwrap();
    for r in 0..x.rows() {
        let mean = outs.iter().map(|o| sigmoid(o.get(r, 0)) as f64).sum::<f64>() / 2.0;
        assert!((sigmoid(ens.get(r, 0)) as f64 - mean).abs() < 1e-6, "row {r}");
    }
    // Mean: plain average.
    let m = members(&[4, 5, 2], 4);
    let outs: Vec<Matrix<f32>> = m
        .iter()
        .map(|n| InferenceNet::new(n).unwrap().forward(&x).unwrap())
        .collect();
    let ens = EnsembleNet::new(&m, Combine::Mean).unwrap().forward(&x).unwrap();
    for (i, &v) in ens.as_slice().iter().enumerate() {
        let mean = outs.iter().map(|o| o.as_slice()[i] as f64).sum::<f64>() / 4.0;
        assert!((v as f64 - mean).abs() < 1e-6);
    }
}

/// A member whose output for a row is not finite makes the averaged row
/// not finite (for every combination), so that `predict`, `eval` and the
/// Python estimators refuse it as they refuse a lone network's. The
/// softmax average had turned it into an even split (`NaN.max(P_MIN)`).
#[test]
fn a_members_non_finite_output_is_not_averaged_away() {
    let mut x = input(5, 4);
    x.row_mut(2).fill(3e38);
    for (dims, c) in [
        (&[4, 6, 3][..], Combine::Softmax),
        (&[4, 5, 1][..], Combine::Sigmoid),
        (&[4, 5, 2][..], Combine::Mean),
    ] {
        let m = members(dims, 3);
        let outs: Vec<Matrix<f32>> = m
            .iter()
            .map(|n| InferenceNet::new(n).unwrap().forward(&x).unwrap())
            .collect();
        let bad = |o: &Matrix<f32>, r: usize| o.row(r).iter().any(|v| !v.is_finite());
        assert!(
            outs.iter().any(|o| bad(o, 2)),
            "{c:?}: the input must overflow a member"
        );
        let ens = EnsembleNet::new(&m, c).unwrap().forward(&x).unwrap();
        for r in 0..x.rows() {
            assert_eq!(
                bad(&ens, r),
                outs.iter().any(|o| bad(o, r)),
                "{c:?} row {r}: {:?}",
                ens.row(r)
            );
        }
    }
}

#[test]
fn members_of_different_widths_are_refused() {
    let mut m = members(&[4, 6, 3], 1);
    m.push(Sequential::from_spec(&spec(&[4, 6, 2]), 1).unwrap());
    assert!(EnsembleNet::new(&m, Combine::Mean).is_err());
}

#[test]
fn an_ensemble_file_keeps_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.safetensors");
    let m = members(&[4, 6, 3], 3);
    save_ensemble(&path, &spec(&[4, 6, 3]), &m, Combine::Softmax, &json!({"note": "x"})).unwrap();
    let file = load_model(&path).unwrap();
    let (back, combine) = ensemble_members(&file, &path, Combine::Mean).unwrap();
    assert_eq!(combine, Combine::Softmax);
    assert_eq!(back.len(), 3);
    let x = input(5, 4);
    for (a, b) in m.iter().zip(&back) {
        let (ya, yb) = (
            InferenceNet::new(a).unwrap().forward(&x).unwrap(),
            InferenceNet::new(b).unwrap().forward(&x).unwrap(),
        );
        assert_eq!(ya.as_slice(), yb.as_slice());
    }
    // The bytes for members held apart decode to the same members and
    // metadata (the header's key order is not fixed, so not byte-compared).
    let refs: Vec<&Sequential<f32>> = m.iter().collect();
    let bytes = ensemble_bytes(&path, &spec(&[4, 6, 3]), &refs, Combine::Softmax, &json!({"note": "x"})).unwrap();
    let decoded = decode_model(&bytes, &path).unwrap();
    assert_eq!(decoded.metadata, file.metadata);
    let (again, combine) = ensemble_members(&decoded, &path, Combine::Mean).unwrap();
    assert_eq!((again.len(), combine), (3, Combine::Softmax));
    for (a, b) in m.iter().zip(&again) {
        let (ya, yb) = (
            InferenceNet::new(a).unwrap().forward(&x).unwrap(),
            InferenceNet::new(b).unwrap().forward(&x).unwrap(),
        );
        assert_eq!(ya.as_slice(), yb.as_slice());
    }
    assert!(ensemble_bytes(&path, &spec(&[4, 6, 3]), &[], Combine::Softmax, &json!({})).is_err());
    // A plain model file is one member.
    let single = dir.path().join("s.safetensors");
    save_model_with(&single, &spec(&[4, 6, 3]), &m[0], &json!({})).unwrap();
    let file = load_model(&single).unwrap();
    assert_eq!(ensemble_members(&file, &single, Combine::Mean).unwrap().0.len(), 1);
}

#[test]
fn ensemble_metadata_without_its_members_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let m = members(&[4, 6, 3], 1);
    let meta = json!({"ensemble": {"members": 3, "combine": "softmax"}});
    save_model_with(&path, &spec(&[4, 6, 3]), &m[0], &meta).unwrap();
    let file = load_model(&path).unwrap();
    let err = ensemble_members(&file, &path, Combine::Mean).unwrap_err().to_string();
    assert!(err.contains("bad.safetensors") && err.contains("ensemble.1."), "{err}");
    let meta = json!({"ensemble": {"members": 1, "combine": "mean"}});
    save_model_with(&path, &spec(&[4, 6, 3]), &m[0], &meta).unwrap();
    let file = load_model(&path).unwrap();
    let err = ensemble_members(&file, &path, Combine::Mean).unwrap_err().to_string();
    assert!(err.contains("at least 2"), "{err}");
}

#[test]
fn onnx_export_of_an_ensemble_has_a_subgraph_per_member_and_a_mean() {
    let m = members(&[4, 6, 3], 3);
    let options = ExportOptions {
        head: Head::Softmax,
        ..ExportOptions::default()
    };
    let onnx = export_onnx_ensemble(&m, Combine::Softmax, &options).unwrap();
    let count = |op: &str| onnx.ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("Gemm"), 6);
    assert_eq!(count("Softmax"), 3);
    assert_eq!(count("Mean"), 1);
    assert_eq!(onnx.ops.last().unwrap(), "Mean");
    let raw = export_onnx_ensemble(&m, Combine::Softmax, &ExportOptions::default()).unwrap();
    assert_eq!(raw.ops.last().unwrap(), "Log");
    let folded = ExportOptions {
        fold_bn: true,
        ..options.clone()
    };
    let onnx = export_onnx_ensemble(&m, Combine::Softmax, &folded).unwrap();
    assert!(!onnx.ops.iter().any(|o| o == "BatchNormalization"));
    // One member: exactly the single-model export.
    let one = export_onnx_ensemble(&m[..1], Combine::Softmax, &options).unwrap();
    let single = bpnet::onnx::export_onnx(&m[0], &options).unwrap();
    assert_eq!(one.bytes, single.bytes);
}

#[test]
fn train_ensemble_is_the_default_ensemble_of_train_prepared_runs() {
    use bpnet::workflow::{TrainConfig, load, train_ensemble, train_prepared};
    let cfg = TrainConfig {
        data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv").into(),
        epochs: 4,
        ..TrainConfig::default()
    };
    let data = load(&cfg).unwrap();
    let x = data.train.features.clone();
    let alone: Vec<_> = (0..5)
        .map(|k| {
            let single = TrainConfig {
                seed: cfg.seed + k as u64,
                ..cfg.clone()
            };
            let m = train_prepared(&single, &data, &mut |_| Ok(())).unwrap().trainer.model;
            InferenceNet::new(&m).unwrap().forward(&x).unwrap()
        })
        .collect();
    // The further members train at once on a team (one per thread): the
    // same networks as trained one after the other, on any thread count.
    for threads in [1, 2, 3, 1] {
        bpnet::set_threads(threads);
        let e = train_ensemble(&cfg, &data, &mut |_| Ok(())).unwrap();
        assert_eq!(e.members.len(), 5, "the default on a small table");
        assert_eq!(e.combine, Combine::Softmax);
        for (k, member) in e.members.iter().enumerate() {
            let out = InferenceNet::new(member).unwrap().forward(&x).unwrap();
            assert_eq!(out.as_slice(), alone[k].as_slice(), "member {k}, {threads} thread(s)");
        }
    }
    let one = TrainConfig { ensemble: 1, ..cfg };
    assert_eq!(train_ensemble(&one, &data, &mut |_| Ok(())).unwrap().members.len(), 1);
}

/// Three architectures of equal input and output widths.
fn blend_specs() -> Vec<ModelSpec> {
    vec![
        spec(&[4, 6, 3]),
        ModelSpec {
            batch_norm: BnPlacement::None,
            ..spec(&[4, 3])
        },
        ModelSpec {
            activation: Activation::Gelu,
            batch_norm: BnPlacement::AfterActivation,
            dropout: 0.25,
            ..spec(&[4, 9, 5, 3])
        },
    ]
}

#[test]
fn a_blend_file_keeps_every_members_architecture_and_is_format_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.safetensors");
    let specs = blend_specs();
    let nets: Vec<Sequential<f32>> = specs
        .iter()
        .zip(20..)
        .map(|(s, seed)| Sequential::from_spec(s, seed).unwrap())
        .collect();
    let pairs: Vec<(&ModelSpec, &Sequential<f32>)> = specs.iter().zip(&nets).collect();
    save_blend(&path, &pairs, Combine::Softmax, &json!({"note": "x"})).unwrap();
    let file = load_model(&path).unwrap();
    assert_eq!(file.format_version, BLEND_FORMAT_VERSION);
    assert_eq!(member_specs(&file, &path).unwrap(), specs);
    let (back, combine) = ensemble_members(&file, &path, Combine::Mean).unwrap();
    assert_eq!((back.len(), combine), (3, Combine::Softmax));
    let x = input(7, 4);
    for (a, b) in nets.iter().zip(&back) {
        let (ya, yb) = (
            InferenceNet::new(a).unwrap().forward(&x).unwrap(),
            InferenceNet::new(b).unwrap().forward(&x).unwrap(),
        );
        assert_eq!(ya.as_slice(), yb.as_slice());
    }
    // The averaged prediction is the mean of the members' probabilities.
    let ens = EnsembleNet::new(&back, Combine::Softmax).unwrap().forward(&x).unwrap();
    let probs: Vec<Matrix<f32>> = nets
        .iter()
        .map(|n| softmax_rows(&InferenceNet::new(n).unwrap().forward(&x).unwrap()))
        .collect();
    for (i, &v) in ens.as_slice().iter().enumerate() {
        let mean = probs.iter().map(|p| p.as_slice()[i] as f64).sum::<f64>() / 3.0;
        assert!((v.exp() as f64 - mean).abs() < 1e-6, "{i}");
    }
    // The same bytes for members held apart.
    let bytes = blend_bytes(&path, &pairs, Combine::Softmax, &json!({"note": "x"})).unwrap();
    let decoded = decode_model(&bytes, &path).unwrap();
    assert_eq!(member_specs(&decoded, &path).unwrap(), specs);
    // Members of one architecture stay format 1 (read by older builds),
    // with no architectures in the section.
    let same = dir.path().join("s.safetensors");
    let m = members(&[4, 6, 3], 2);
    save_ensemble(&same, &spec(&[4, 6, 3]), &m, Combine::Softmax, &json!({})).unwrap();
    let file = load_model(&same).unwrap();
    assert_eq!(file.format_version, BASE_FORMAT_VERSION);
    assert!(file.metadata["ensemble"].get("specs").is_none());
    assert_eq!(member_specs(&file, &same).unwrap(), vec![spec(&[4, 6, 3]); 2]);
    // A member that does not match its architecture is not saved.
    let wrong: Vec<(&ModelSpec, &Sequential<f32>)> = vec![(&specs[0], &nets[0]), (&specs[0], &nets[2])];
    let err = save_blend(&dir.path().join("w.safetensors"), &wrong, Combine::Softmax, &json!({})).unwrap_err();
    assert!(err.to_string().contains("member 1"), "{err}");
    assert!(!dir.path().join("w.safetensors").exists());
}

fn softmax_rows(m: &Matrix<f32>) -> Matrix<f32> {
    let c = m.cols();
    let mut out = m.clone();
    for row in out.as_mut_slice().chunks_mut(c) {
        let max = row.iter().fold(f32::MIN, |a, &b| a.max(b));
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
    }
    out
}

#[test]
fn damaged_blend_metadata_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let m = members(&[4, 6, 3], 2);
    let two = |specs: Value| {
        let meta = json!({"ensemble": {"members": 2, "combine": "softmax", "specs": specs}});
        save_checkpoint(
            &path,
            &spec(&[4, 6, 3]),
            &m[0],
            &meta,
            &[stray("ensemble.1.layers.0.weight")],
        )
        .unwrap();
        let file = load_model(&path).unwrap();
        let err = ensemble_members(&file, &path, Combine::Mean).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors") && !err.contains('\n'), "{err}");
        err
    };
    let s = serde_json::to_value(spec(&[4, 6, 3])).unwrap();
    let other = serde_json::to_value(spec(&[4, 5, 3])).unwrap();
    // One architecture for two members.
    assert!(two(json!([s])).contains("1 architectures for 2 members"));
    // Member 0's is not the file's.
    assert!(two(json!([other, s])).contains("member 0 another architecture"));
    // An invalid one.
    let mut bad = s.clone();
    bad["dims"] = json!([4]);
    assert!(two(json!([s, bad])).contains("member 1"));
    // No members at all, asked for the architectures alone (as `bpnet
    // inspect` does first): an error, not a panic.
    let meta = json!({"ensemble": {"members": 0, "combine": "softmax", "specs": []}});
    save_model_with(&path, &spec(&[4, 6, 3]), &m[0], &meta).unwrap();
    let file = load_model(&path).unwrap();
    let err = member_specs(&file, &path).unwrap_err().to_string();
    assert!(err.contains("says 0 members; an ensemble has at least 2"), "{err}");
    // A huge one with few values behind it: refused before it is built.
    let mut huge = s.clone();
    huge["dims"] = json!([4, 16_000_000, 3]);
    let meta = json!({"ensemble": {"members": 2, "combine": "softmax", "specs": [s, huge]}});
    save_checkpoint(
        &path,
        &spec(&[4, 6, 3]),
        &m[0],
        &meta,
        &[stray("ensemble.1.layers.0.weight")],
    )
    .unwrap();
    let file = load_model(&path).unwrap();
    let e = ensemble_members(&file, &path, Combine::Mean).unwrap_err().to_string();
    assert!(e.contains("fewer than its architecture's weights need"), "{e}");
}

/// Member 1 of a 4-6-3 ensemble as flat extra tensors (every value 0.5).
fn member_one_4_6_3() -> Vec<ExtraTensor> {
    let sizes = [
        ("layers.0.weight", 24),
        ("layers.1.weight", 6),
        ("layers.1.bias", 6),
        ("layers.1.running_mean", 6),
        ("layers.1.running_var", 6),
        ("layers.1.num_batches_tracked", 1),
        ("layers.3.weight", 18),
        ("layers.3.bias", 3),
    ];
    sizes
        .iter()
        .map(|&(name, n)| ExtraTensor {
            name: format!("ensemble.1.{name}"),
            shape: vec![n],
            values: vec![0.5; n],
        })
        .collect()
}

/// An extra tensor of 4 values named `name`.
fn stray(name: &str) -> ExtraTensor {
    ExtraTensor {
        name: name.into(),
        shape: vec![4],
        values: vec![0.5; 4],
    }
}

#[test]
fn member_counts_the_tensors_do_not_back_are_refused_before_anything_is_built() {
    // A member count of 10^12 (or 2^62) made every command that loads the
    // file abort allocating that many architectures (or panic on the
    // capacity), 10^7 took gigabytes before the error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let m = members(&[4, 6, 3], 3);
    save_ensemble(&path, &spec(&[4, 6, 3]), &m, Combine::Softmax, &json!({})).unwrap();
    let file = load_model(&path).unwrap();
    for members in [4u64, 10_000_000, 1_000_000_000_000, 1 << 62, u64::MAX] {
        let mut f = file.clone();
        f.metadata
            .insert("ensemble".into(), json!({"members": members, "combine": "softmax"}));
        for e in [
            ensemble_members(&f, &path, Combine::Mean).unwrap_err().to_string(),
            member_specs(&f, &path).unwrap_err().to_string(),
        ] {
            assert!(
                e.contains("bad.safetensors")
                    && e.contains(&format!(
                        "says {members} members, but the file holds no tensors of member 3"
                    )),
                "{e}"
            );
        }
    }
    // Members' tensors with no section: member 0 alone would be used
    // silently (predictions of one network, exit 0).
    let mut f = file.clone();
    f.metadata.remove("ensemble");
    let e = ensemble_members(&f, &path, Combine::Mean).unwrap_err().to_string();
    assert!(
        e.contains("tensor `ensemble.1.") && e.contains("but no `ensemble` metadata"),
        "{e}"
    );
    // A member tensor of the wrong length names the member's tensor.
    let meta = json!({"ensemble": {"members": 2, "combine": "softmax"}});
    let mut extra = member_one_4_6_3();
    extra.last_mut().unwrap().values.pop();
    extra.last_mut().unwrap().shape = vec![2];
    save_checkpoint(&path, &spec(&[4, 6, 3]), &m[0], &meta, &extra).unwrap();
    let e = ensemble_members(&load_model(&path).unwrap(), &path, Combine::Mean)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor `ensemble.1.layers.3.bias` has 2 values, the model needs 3"),
        "{e}"
    );
}

#[test]
fn extra_tensors_of_another_dtype_than_f32_are_refused() {
    // An I32, U8 or F16 member tensor was read as F32 bytes, silently.
    use safetensors::Dtype;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.safetensors");
    let m = members(&[4, 6, 3], 2);
    save_ensemble(&path, &spec(&[4, 6, 3]), &m, Combine::Softmax, &json!({})).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let target = "ensemble.1.layers.3.bias";
    for (dtype, shape) in [(Dtype::I32, vec![3]), (Dtype::U8, vec![12]), (Dtype::F16, vec![6])] {
        let damaged = common::rewrite(&bytes, |_, tensors| {
            let t = tensors.get_mut(target).unwrap();
            (t.0, t.1) = (dtype, shape.clone());
        });
        let e = decode_model(&damaged, &path).unwrap_err().to_string();
        assert!(
            e.contains(&format!("tensor `{target}` is {dtype:?}; bpnet stores it as F32")),
            "{e}"
        );
    }
}

#[test]
fn member_tensors_of_another_shape_or_name_are_refused() {
    // Members 1.. are stored flat; a transposed [3, 6] weight (18 values)
    // loaded as the transpose's values, and tensors no member holds were
    // ignored.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.safetensors");
    let m = members(&[4, 6, 3], 3);
    save_ensemble(&path, &spec(&[4, 6, 3]), &m, Combine::Softmax, &json!({})).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let target = "ensemble.2.layers.3.weight";
    let transposed = common::rewrite(&bytes, |_, tensors| tensors.get_mut(target).unwrap().1 = vec![6, 3]);
    let e = decode_model(&transposed, &path).unwrap_err().to_string();
    assert!(
        e.contains(&format!("tensor `{target}` has shape [6, 3]; bpnet stores it flat")),
        "{e}"
    );
    let meta = json!({"ensemble": {"members": 2, "combine": "softmax"}});
    let mut extra = member_one_4_6_3();
    for (name, says) in [
        ("ensemble.1.layers.99.weight", "is not one of member 1's tensors"),
        ("ensemble.0.layers.0.weight", "member 0 is the file's own network"),
    ] {
        extra.push(stray(name));
        save_checkpoint(&path, &spec(&[4, 6, 3]), &m[0], &meta, &extra).unwrap();
        let e = ensemble_members(&load_model(&path).unwrap(), &path, Combine::Mean)
            .unwrap_err()
            .to_string();
        assert!(e.contains(name) && e.contains(says), "{e}");
        extra.pop();
    }
    save_checkpoint(&path, &spec(&[4, 6, 3]), &m[0], &meta, &extra).unwrap();
    assert_eq!(
        ensemble_members(&load_model(&path).unwrap(), &path, Combine::Mean)
            .unwrap()
            .0
            .len(),
        2
    );
}
