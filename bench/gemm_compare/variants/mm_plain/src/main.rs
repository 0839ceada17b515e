//! Worker binary for matrixmultiply with default features (no `threading`).
//! Started by the orchestrator in ../../src/main.rs.

#[path = "../../../src/b_mm.rs"]
mod b_mm;
#[path = "../../../src/harness.rs"]
mod harness;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(args.first().map(String::as_str), Some("worker"), "run through `cargo run --release` in bench/gemm_compare");
    let mm = b_mm::Mm { name: "mm", threads: 1 };
    harness::worker(&[&mm], &args[1..]);
}
