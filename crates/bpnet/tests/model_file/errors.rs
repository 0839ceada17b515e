//! Loading damaged or foreign files: each refusal is one line naming the file,
//! the problem and a hint.

use super::*;

/// Loads `path`, which must fail with one line naming the file; returns it.
fn load_error(path: &Path) -> String {
    let msg = match load_model(path) {
        Ok(_) => panic!("{} loaded but should not have", path.display()),
        Err(e) => e.to_string(),
    };
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "does not name the file: {msg}"
    );
    msg
}

fn write_and_load_error(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    load_error(path)
}

use crate::common::rewrite;

#[test]
fn truncated_files_are_named_as_truncated() {
    let (_dir, path, bytes) = fixture();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for cut in [
        1,
        4,
        7,
        8,
        9,
        8 + n / 2,
        8 + n - 1,
        8 + n,
        8 + n + 1,
        8 + n + 4,
        bytes.len() - 1,
    ] {
        let msg = write_and_load_error(&path, &bytes[..cut]);
        assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
    }
    let msg = write_and_load_error(&path, b"");
    assert!(msg.contains("empty file"), "{msg}");
}

#[test]
fn trailing_garbage_is_refused() {
    let (_dir, path, mut bytes) = fixture();
    bytes.extend_from_slice(b"junk");
    let msg = write_and_load_error(&path, &bytes);
    assert!(msg.contains("4 unexpected bytes after the tensor data"), "{msg}");
}

#[test]
fn flipped_header_bytes_are_caught() {
    let (_dir, path, bytes) = fixture();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // Every byte of the length prefix and of the header, inverted: never loads.
    for i in 0..8 + n {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0xFF;
        let msg = write_and_load_error(&path, &damaged);
        assert!(
            msg.contains("not a safetensors file") || msg.contains("truncated") || msg.contains("corrupt"),
            "byte {i}: {msg}"
        );
    }
    // A single flipped bit anywhere in the header never panics, and any error
    // is one line naming the file.
    let mut refused = 0;
    for i in 0..8 + n {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x02;
        std::fs::write(&path, &damaged).unwrap();
        if load_model(&path).is_err() {
            load_error(&path);
            refused += 1;
        }
    }
    assert!(refused > (8 + n) / 2, "only {refused} of {} bit flips refused", 8 + n);
}

#[test]
fn files_that_are_not_safetensors_are_refused() {
    let (dir, _, _) = fixture();
    let csv = dir.path().join("data.csv");
    let msg = write_and_load_error(
        &csv,
        b"sepal_length,sepal_width,label\n5.1,3.5,setosa\n4.9,3.0,setosa\n",
    );
    assert!(msg.contains("not a safetensors file"), "{msg}");
    let tiny = dir.path().join("tiny.bin");
    let msg = write_and_load_error(&tiny, b"abc");
    assert!(
        msg.contains("not a safetensors file") && msg.contains("3 bytes"),
        "{msg}"
    );
    // A plausible length prefix followed by something that is not JSON.
    let mut fake = 16u64.to_le_bytes().to_vec();
    fake.extend_from_slice(b"this is not json");
    let msg = write_and_load_error(&tiny, &fake);
    assert!(msg.contains("not valid JSON"), "{msg}");
    let empty = dir.path().join("empty.safetensors");
    let msg = write_and_load_error(&empty, b"");
    assert!(msg.contains("empty file"), "{msg}");
    let msg = load_error(dir.path());
    assert!(msg.to_lowercase().contains("directory"), "{msg}");
    let missing = dir.path().join("nope.safetensors");
    let msg = load_error(&missing);
    assert!(msg.to_lowercase().contains("no such file"), "{msg}");
}

#[test]
fn foreign_safetensors_files_are_not_bpnet_models() {
    let (_dir, path, bytes) = fixture();
    let msg = write_and_load_error(&path, &rewrite(&bytes, |m, _| m.clear()));
    assert!(
        msg.contains("not a bpnet model") && msg.contains("format: bpnet"),
        "{msg}"
    );
    let torch = rewrite(&bytes, |m, _| {
        m.clear();
        m.insert("format".into(), "pt".into());
    });
    let msg = write_and_load_error(&path, &torch);
    assert!(msg.contains("not a bpnet model") && msg.contains("\"pt\""), "{msg}");
}

#[test]
fn a_newer_format_version_is_refused_with_both_versions() {
    let (_dir, path, bytes) = fixture();
    let next = FORMAT_VERSION + 1;
    let newer = rewrite(&bytes, |m, _| {
        m.insert("format_version".into(), next.to_string());
    });
    let msg = write_and_load_error(&path, &newer);
    assert!(
        msg.contains(&format!(
            "written by a newer bpnet (format {next}); this build reads format {FORMAT_VERSION}"
        )),
        "{msg}"
    );
    let bad = rewrite(&bytes, |m, _| {
        m.insert("format_version".into(), "one".into());
    });
    assert!(write_and_load_error(&path, &bad).contains("invalid format_version \"one\""));
}

#[test]
fn an_invalid_architecture_is_refused() {
    let (_dir, path, bytes) = fixture();
    let cases = [
        ("{\"dims\": [5, 7", "invalid `architecture` metadata"),
        (
            "{\"dims\": [5, 7, 6, 3], \"surprise\": 1}",
            "invalid `architecture` metadata",
        ),
        ("", "invalid `architecture` metadata"),
    ];
    for (arch, want) in cases {
        let damaged = rewrite(&bytes, |m, _| {
            m.insert("architecture".into(), arch.into());
        });
        let msg = write_and_load_error(&path, &damaged);
        assert!(msg.contains(want), "{arch}: {msg}");
    }
    let spec_json = |dims: &str| {
        let s = spec(&[1, 1], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
        serde_json::to_string(&s).unwrap().replace("[1,1]", dims)
    };
    // Widths out of range, and widths that would need far more memory than the file holds.
    let msg = write_and_load_error(
        &path,
        &rewrite(&bytes, |m, _| {
            m.insert("architecture".into(), spec_json("[5,0,3]"));
        }),
    );
    assert!(
        msg.contains("invalid `architecture` metadata") && msg.contains("layer widths"),
        "{msg}"
    );
    let msg = write_and_load_error(
        &path,
        &rewrite(&bytes, |m, _| {
            m.insert("architecture".into(), spec_json("[4096,4096,4096]"));
        }),
    );
    assert!(msg.contains("needs more than the"), "{msg}");
    let msg = write_and_load_error(
        &path,
        &rewrite(&bytes, |m, _| {
            m.insert("architecture".into(), spec_json("[16777216,16777216,16777216]"));
        }),
    );
    assert!(msg.contains("would need more than 268435456 weights"), "{msg}");
    let msg = write_and_load_error(
        &path,
        &rewrite(&bytes, |m, _| {
            m.remove("architecture");
        }),
    );
    assert!(msg.contains("without an `architecture`"), "{msg}");
}

#[test]
fn tensor_mismatches_name_the_tensor_and_shapes() {
    let (_dir, path, bytes) = fixture();
    let transposed = rewrite(&bytes, |_, t| {
        t.get_mut("layers.0.weight").unwrap().1 = vec![5, 7];
    });
    let msg = write_and_load_error(&path, &transposed);
    assert!(
        msg.contains("tensor `layers.0.weight` has shape [5, 7], but the architecture implies [7, 5]"),
        "{msg}"
    );

    let missing = rewrite(&bytes, |_, t| {
        t.remove("layers.1.running_var");
    });
    let msg = write_and_load_error(&path, &missing);
    assert!(
        msg.contains("missing tensor `layers.1.running_var`") && msg.contains("[7]"),
        "{msg}"
    );

    let extra = rewrite(&bytes, |_, t| {
        t.insert("layers.2.weight".into(), (Dtype::F32, vec![2], vec![0; 8]));
    });
    let msg = write_and_load_error(&path, &extra);
    assert!(msg.contains("unexpected tensor `layers.2.weight`"), "{msg}");

    let f64_bias = rewrite(&bytes, |_, t| {
        t.insert("layers.8.bias".into(), (Dtype::F64, vec![3], vec![0; 24]));
    });
    let msg = write_and_load_error(&path, &f64_bias);
    assert!(
        msg.contains("tensor `layers.8.bias` has dtype F64, expected F32"),
        "{msg}"
    );

    // PyTorch sometimes stores num_batches_tracked as [1]: accepted.
    let as_one = rewrite(&bytes, |_, t| {
        t.get_mut("layers.1.num_batches_tracked").unwrap().1 = vec![1];
    });
    std::fs::write(&path, as_one).unwrap();
    let file = load_model(&path).unwrap();
    let Layer::BatchNorm(bn) = &file.model.layers()[1] else {
        panic!("layer 1 is not BatchNorm")
    };
    assert_eq!(bn.running.batches, 2);
}

#[test]
fn non_finite_and_impossible_values_are_refused() {
    let (_dir, path, bytes) = fixture();
    for (name, index, value) in [("layers.0.weight", 3, f32::NAN), ("layers.8.bias", 1, f32::INFINITY)] {
        let poisoned = rewrite(&bytes, |_, t| {
            t.get_mut(name).unwrap().2[index * 4..index * 4 + 4].copy_from_slice(&value.to_le_bytes());
        });
        let msg = write_and_load_error(&path, &poisoned);
        assert!(
            msg.contains(&format!(
                "tensor `{name}` holds a non-finite value ({value}) at index {index}"
            )),
            "{msg}"
        );
    }
    let negative_var = rewrite(&bytes, |_, t| {
        t.get_mut("layers.5.running_var").unwrap().2[..4].copy_from_slice(&(-1.0f32).to_le_bytes());
    });
    assert!(write_and_load_error(&path, &negative_var).contains("negative variance"));
    let negative_count = rewrite(&bytes, |_, t| {
        t.get_mut("layers.5.num_batches_tracked").unwrap().2 = (-3i64).to_le_bytes().to_vec();
    });
    assert!(write_and_load_error(&path, &negative_count).contains("negative count (-3)"));
}

#[test]
fn edits_that_keep_the_file_well_formed_fail_the_checksum() {
    let (_dir, path, bytes) = fixture();
    // A finite weight changed in place: still a valid safetensors file.
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut flipped = bytes.clone();
    flipped[8 + n] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    let e = load_model(&path).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");
    // A metadata value changed, and the checksum removed.
    let text = String::from_utf8_lossy(&bytes[8..8 + n]).into_owned();
    let altered = text.replacen("\\\"relu\\\"", "\\\"tanh\\\"", 1);
    if altered != text && altered.len() == text.len() {
        let mut b = bytes.clone();
        b[8..8 + n].copy_from_slice(altered.as_bytes());
        std::fs::write(&path, &b).unwrap();
        assert!(load_model(&path).unwrap_err().to_string().contains("checksum mismatch"));
    }
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = meta.metadata().clone().unwrap();
    metadata.remove(bpnet::io::CHECKSUM_KEY);
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let unsealed = safetensors::serialize(st.tensors(), Some(metadata)).unwrap();
    std::fs::write(&path, unsealed).unwrap();
    let e = load_model(&path).unwrap_err().to_string();
    assert!(e.contains("no `checksum`"), "{e}");
}
