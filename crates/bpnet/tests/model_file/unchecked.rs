//! The loader the `model_file_nochecksum` fuzz target drives
//! (`bpnet::io::decode_model_unchecked`): every check but the checksum, so
//! mutated files get past it to the model building; run here over mutated
//! files so the entry point is exercised in every test run.

use super::*;
use bpnet::io::{decode_model, decode_model_unchecked};

/// What the fuzz target does with one input: load without the checksum,
/// and evaluate a model that loads. Returns whether it loaded.
fn fuzz_one(bytes: &[u8]) -> bool {
    match decode_model_unchecked(bytes, Path::new("fuzz.safetensors")) {
        Ok(mut f) => {
            let n = f.model.in_features().unwrap();
            f.model.forward(&Matrix::zeros(2, n), Mode::Eval).unwrap();
            true
        }
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            false
        }
    }
}

fn model_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let s = spec(&[5, 8, 3], Activation::Tanh, BnPlacement::BeforeActivation, 0.0);
    save_model(&path, &s, &trained(&s, 3, 4), &sections()).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn unchecked_loading_reaches_the_model_where_the_checksum_stops() {
    let bytes = model_bytes();
    assert!(fuzz_one(&bytes));
    let path = Path::new("fuzz.safetensors");
    // A flipped low mantissa bit of each of the last 40 values (the last
    // tensors' data): the checked loader refuses the file, the unchecked one
    // builds and runs the altered model.
    let mut reached = 0;
    for i in (bytes.len() - 160..bytes.len()).step_by(4) {
        let mut m = bytes.clone();
        m[i] ^= 1;
        let err = decode_model(&m, path).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        reached += usize::from(fuzz_one(&m));
    }
    assert!(reached >= 30, "only {reached} of 40 altered files got past the checks");
    // An edited architecture of the same length (dims 5-8-3 -> 5-9-3): the
    // tensor shapes no longer match, which the unchecked loader reports.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("[5,8,3]").expect("the architecture's dims in the header");
    let mut m = bytes.clone();
    m[at + 3] = b'9';
    let err = decode_model_unchecked(&m, path).unwrap_err().to_string();
    assert!(!err.contains("checksum"), "{err}");
    assert!(err.contains("layers.0.weight"), "{err}");
}

#[test]
fn unchecked_loading_never_panics_on_mutated_files() {
    let bytes = model_bytes();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let mut loaded = 0;
    for round in 0..600 {
        let mut m = bytes.clone();
        match round % 3 {
            0 => m.truncate(rng.random_range(0..bytes.len())),
            1 => {
                let i = rng.random_range(0..m.len());
                m[i] ^= 1 << rng.random_range(0..8);
            }
            _ => {
                // A random byte of the header's text set to a digit, a
                // bracket or a quote.
                let end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                let i = rng.random_range(8..end);
                m[i] = b"0123456789[]\",-"[rng.random_range(0..15)];
            }
        }
        loaded += usize::from(fuzz_one(&m));
    }
    println!("{loaded} of 600 mutated files loaded without the checksum");
    assert!(loaded > 0);
}
