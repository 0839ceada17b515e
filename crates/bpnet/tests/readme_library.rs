//! The README's "Library use" code, compiled and run: the test holds the
//! README's two Rust blocks verbatim (checked against README.md, so the two
//! cannot drift apart), with the commented-out calls run on data.

use bpnet::{Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target, Trainer};

/// The README's Rust blocks, as written there.
const FIRST: &str = r#"use bpnet::{Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target, Trainer};

let spec = ModelSpec::paper_mnist(true, 0.1); // 784-100-100-100-10, BN before sigmoid
let model = Sequential::<f32>::from_spec(&spec, 42)?;
let mut trainer = Trainer::new(model, Optimizer::new(OptimizerConfig::sgd(0.5))?, Loss::CrossEntropy);
// x: Matrix<f32> [batch, 784], labels: &[usize]
// let loss = trainer.step(&x, Target::Labels(labels))?;
"#;
const SECOND: &str = r#"bpnet::set_threads(2); // matrix products may use 2 threads (default 1 in the library)
let net = bpnet::InferenceNet::new(&trainer.model)?;
// let probabilities_or_logits = net.forward(&x)?; // [batch, outputs]
"#;

#[test]
fn the_readme_shows_this_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```rust\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(
        blocks,
        [FIRST, SECOND],
        "README.md's Rust blocks changed: update this test"
    );
}

#[test]
fn the_readme_code_trains_and_predicts() -> bpnet::Result<()> {
    // The first block.
    let spec = ModelSpec::paper_mnist(true, 0.1); // 784-100-100-100-10, BN before sigmoid
    let model = Sequential::<f32>::from_spec(&spec, 42)?;
    let mut trainer = Trainer::new(model, Optimizer::new(OptimizerConfig::sgd(0.5))?, Loss::CrossEntropy);
    let x = Matrix::from_vec(8, 784, (0..8 * 784).map(|i| (i % 13) as f32 / 13.0).collect())?;
    let labels: Vec<usize> = (0..8).map(|i| i % 10).collect();
    let loss = trainer.step(&x, Target::Labels(&labels))?;
    assert!(loss.is_finite());
    // The second block.
    bpnet::set_threads(2); // matrix products may use 2 threads (default 1 in the library)
    let net = bpnet::InferenceNet::new(&trainer.model)?;
    let probabilities_or_logits = net.forward(&x)?; // [batch, outputs]
    assert_eq!(probabilities_or_logits.shape(), [8, 10]);
    bpnet::set_threads(1);
    Ok(())
}
