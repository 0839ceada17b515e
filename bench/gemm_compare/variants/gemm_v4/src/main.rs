//! Worker binary for gemm built with its `x86-v4` (AVX-512) feature.
//! Started by the orchestrator in ../../src/main.rs.

#[path = "../../../src/b_gemm.rs"]
mod b_gemm;
#[path = "../../../src/harness.rs"]
mod harness;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(args.first().map(String::as_str), Some("worker"), "run through `cargo run --release` in bench/gemm_compare");
    if args.iter().any(|a| a.ends_with("par2")) {
        rayon::ThreadPoolBuilder::new().num_threads(2).build_global().unwrap();
    }
    let seq = b_gemm::Gemm { name: "gemm_v4-seq", par: gemm::Parallelism::None, threads: 1 };
    let par = b_gemm::Gemm { name: "gemm_v4-par2", par: gemm::Parallelism::Rayon(2), threads: 2 };
    harness::worker(&[&seq, &par], &args[1..]);
}
