//! The IDX (MNIST) reader: valid files in both encodings, and every kind of
//! damage reported with the file name and what is wrong.

use bpnet::data::idx::read_idx;
use bpnet::data::load_mnist;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

fn idx_bytes(magic_type: u8, dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, magic_type, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(values);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn err(path: &Path, ndims: u8) -> String {
    read_idx(path, ndims).unwrap_err().to_string()
}

#[test]
fn reads_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let raw = idx_bytes(8, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (name, bytes) in [("a", raw.clone()), ("b.gz", gz(&raw)), ("c", gz(&raw))] {
        let a = read_idx(&write(dir.path(), name, &bytes), 3).unwrap();
        assert_eq!(a.dims, [2, 2, 3]);
        assert_eq!(a.data, (1..=12).collect::<Vec<u8>>());
    }
}

#[test]
fn damaged_files_give_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = idx_bytes(8, &[3, 2, 2], &[0; 12]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "too short"),
        (
            "magic",
            {
                let mut b = good.clone();
                b[0] = 7;
                b
            },
            "not an IDX file",
        ),
        ("type", idx_bytes(0x0d, &[3, 2, 2], &[0; 48]), "value type 0x0d"),
        ("ndims", idx_bytes(8, &[12], &[0; 12]), "1 dimensions, expected 3"),
        ("header", good[..9].to_vec(), "truncated IDX header"),
        (
            "short",
            good[..good.len() - 1].to_vec(),
            "need 12 bytes of values, found 11",
        ),
        ("long", [good.clone(), vec![1]].concat(), "trailing bytes"),
        ("short.gz", gz(&good[..good.len() - 3]), "found 9"),
        ("cut.gz", gz(&good)[..20].to_vec(), "cannot read IDX data"),
        (
            "huge",
            idx_bytes(8, &[u32::MAX, u32::MAX, 2], &[]),
            "more than the limit",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = write(dir.path(), name, &bytes);
        let e = err(&path, 3);
        assert!(e.contains(want), "{name}: '{e}' lacks '{want}'");
        assert!(e.contains(name), "{name}: '{e}' does not name the file");
        assert!(!e.contains('\n'), "{name}: error is more than one line");
    }
}

#[test]
fn mnist_folder_with_disagreeing_counts_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "train-images-idx3-ubyte",
        &idx_bytes(8, &[3, 2, 2], &[0; 12]),
    );
    write(dir.path(), "train-labels-idx1-ubyte", &idx_bytes(8, &[2], &[1, 2]));
    write(
        dir.path(),
        "t10k-images-idx3-ubyte.gz",
        &gz(&idx_bytes(8, &[1, 2, 2], &[0; 4])),
    );
    write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gz(&idx_bytes(8, &[1], &[3])));
    let e = load_mnist(dir.path()).unwrap_err().to_string();
    assert!(e.contains("2 labels but") && e.contains("has 3 images"), "{e}");
    write(dir.path(), "train-labels-idx1-ubyte", &idx_bytes(8, &[3], &[1, 12, 2]));
    let e = load_mnist(dir.path()).unwrap_err().to_string();
    assert!(e.contains("label 12 at index 1"), "{e}");
    write(dir.path(), "train-labels-idx1-ubyte", &idx_bytes(8, &[3], &[1, 0, 2]));
    let (train, test) = load_mnist(dir.path()).unwrap();
    assert_eq!((train.len(), test.len(), train.features.cols()), (3, 1, 4));
}

#[test]
fn bundled_mnist_is_complete() {
    let (train, test) = load_mnist(&bpnet::data::bundled_mnist_dir()).unwrap();
    assert_eq!((train.len(), test.len(), train.features.cols()), (60000, 10000, 784));
    assert_eq!(&train.labels().unwrap()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels().unwrap()[..5], &[7, 2, 1, 0, 4]);
    let mean = train.features.as_slice().iter().map(|&v| v as f64).sum::<f64>() / (60000.0 * 784.0);
    assert!((mean - 0.130660).abs() < 1e-5, "pixel mean {mean}");
}
