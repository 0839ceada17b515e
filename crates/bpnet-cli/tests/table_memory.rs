//! A numeric table that fits is held about once while its matrices are
//! built: the table's rows are released as the matrices fill
//! (`Preprocessor::take_sets`).
//!
//! Peak memory is each child process's own maximum resident set, from
//! `wait4`. This test is alone in its binary so that nothing else runs
//! beside it (a child's peak counts the memory of the test process it was
//! forked from).

mod common;
use common::measure::{Gen, run_measured};
use std::path::Path;

/// `rows` rows of 20 numbers with 3 decimals and a 3-class label, written
/// as they are made: a child's peak counts its parent's, so this process
/// must not hold the file.
fn generate_numeric(path: &Path, rows: usize) {
    use std::io::Write;
    let mut g = Gen(0xDA7A);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header: String = (0..20).map(|i| format!("f{i},")).collect();
    writeln!(f, "{header}label").unwrap();
    for _ in 0..rows {
        for _ in 0..20 {
            write!(f, "{:.3},", g.below(20_000) as f64 / 1000.0 - 10.0).unwrap();
        }
        writeln!(f, "{}", g.below(3)).unwrap();
    }
    f.flush().unwrap();
}

/// Rows of the numeric table below: its typed table (4 bytes a cell, 21
/// columns) is 42 MB, as are its training and validation matrices together.
const NUMERIC_ROWS: usize = 500_000;

/// The memory `bpnet train` needs for a numeric table beyond what it needs
/// for a tiny one stays near one copy of the data: the typed table, the
/// label vectors (8 bytes a row) and the read buffer (one 8 MiB block and
/// its parsed cells, counted as 16 MiB), with 15% to spare. Holding the
/// table and the matrices at once, as before, needs about twice the data.
#[test]
#[cfg(target_os = "linux")]
fn a_numeric_table_is_held_about_once_while_its_matrices_are_built() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (big, tiny) = (d.join("big.csv"), d.join("tiny.csv"));
    generate_numeric(&big, NUMERIC_ROWS);
    generate_numeric(&tiny, 200);
    let args = |csv: &Path| {
        let csv = csv.to_str().unwrap().to_string();
        let rest = ["--steps", "1", "--hidden", "8", "--json", "--out", "m.safetensors"];
        [&["train", "--data"][..], &[csv.as_str()], &rest]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run = |csv: &Path| {
        let a = args(csv);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_measured(d, &a, &[]).1
    };
    let base = run(&tiny);
    let peak = run(&big);
    let table = NUMERIC_ROWS as u64 * 21 * 4;
    let labels = NUMERIC_ROWS as u64 * 8;
    let buffer = 16 << 20;
    let extra = peak.saturating_sub(base);
    println!(
        "tiny table: peak {:.1} MB; {NUMERIC_ROWS} rows: peak {:.1} MB, {:.1} MB more for {:.1} MB of data ({:.2}x)",
        base as f64 / 1e6,
        peak as f64 / 1e6,
        extra as f64 / 1e6,
        table as f64 / 1e6,
        extra as f64 / table as f64
    );
    assert!(
        extra > table,
        "{extra} bytes more than a tiny table: not measuring the child?"
    );
    let bound = (table + labels + buffer) * 115 / 100;
    assert!(extra < bound, "{extra} bytes more than a tiny table, bound {bound}");
}
