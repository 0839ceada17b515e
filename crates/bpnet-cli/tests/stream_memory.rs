//! Data larger than the memory allowed: a generated CSV of about 20 MB (420,000 rows),
//! whose preprocessed `f32` matrix is about 77 MB (a 40-category column
//! one-hot encoded), trains with `BPNET_MEMORY=6M` (the file is about 3x
//! that): the run streams on its own, its peak resident memory stays far
//! below the data's size in memory, and its test accuracy is within 2
//! points of training the same data in memory.
//!
//! Peak memory is each child process's own maximum resident set, from
//! `wait4` (its `ru_maxrss`), not a figure the process reports about itself.
//! This test is alone in its binary so that nothing else runs beside it
//! (a child's peak counts the memory of the test process it was forked
//! from, so another test's generated file would count in it).

mod common;
use common::measure::{Gen, run_measured};
use std::path::Path;

const ROWS: usize = 420_000;
const CATEGORIES: u64 = 40;

/// `ROWS` rows: 6 numeric features, a category of 40, a 3-class label.
fn generate(path: &Path) {
    let mut g = Gen(0x5EED);
    let mut s = String::with_capacity(ROWS * 80);
    s += "f0,f1,f2,f3,f4,f5,cat,label\n";
    for _ in 0..ROWS {
        let v: Vec<f64> = (0..6).map(|_| g.below(20_000) as f64 / 1000.0 - 10.0).collect();
        let c = g.below(CATEGORIES);
        let score = v[0] - v[1] + 0.5 * v[2] + if c.is_multiple_of(4) { 4.0 } else { 0.0 };
        let label = if score < -4.0 {
            0
        } else if score < 4.0 {
            1
        } else {
            2
        };
        s += &format!(
            "{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},c{c},{label}\n",
            v[0], v[1], v[2], v[3], v[4], v[5]
        );
    }
    std::fs::write(path, s).unwrap();
}

fn accuracy(stdout: &str) -> f64 {
    let j: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    j["test"]["accuracy"].as_f64().unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn a_file_three_times_the_memory_allowed_trains_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("big.csv");
    generate(&csv);
    let size = std::fs::metadata(&csv).unwrap().len();
    let matrix = ROWS as u64 * (6 + CATEGORIES) * 4;
    let args = [
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--batch-size",
        "256",
        "--test-split",
        "0.1",
        "--patience",
        "0",
        "--seed",
        "1",
        "--json",
        "--out",
        "m.safetensors",
    ];
    let budget = [("BPNET_MEMORY", "6M"), ("BPNET_STREAM_CHUNK", "256K")];
    let (streamed, peak) = run_measured(d, &args, &budget);
    assert!(streamed.contains("note: streaming"), "{streamed}");
    let (in_memory, mem_peak) = run_measured(d, &[&args[..], &["--no-stream"]].concat(), &[]);
    let (a, b) = (accuracy(&streamed), accuracy(&in_memory));
    println!(
        "file {:.1} MB, f32 matrix {:.1} MB; streamed: peak {:.1} MB, test accuracy {a:.4}; \
         in memory: peak {:.1} MB, test accuracy {b:.4}",
        size as f64 / 1e6,
        matrix as f64 / 1e6,
        peak as f64 / 1e6,
        mem_peak as f64 / 1e6
    );
    assert!(
        size * 10 > 28 * (6 << 20),
        "the file ({size} bytes) is about 3x the 6 MiB budget"
    );
    assert!(
        mem_peak > matrix,
        "in memory the peak holds the matrix: not measuring the child?"
    );
    assert!(
        peak < matrix / 2,
        "streamed peak {peak} bytes is not well below the {matrix}-byte matrix"
    );
    assert!((a - b).abs() < 0.02, "streamed accuracy {a} vs in memory {b}");
    assert!(a > 0.9, "streamed accuracy {a}");
}
