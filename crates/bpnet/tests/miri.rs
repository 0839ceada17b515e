//! The parallel paths at the edge of their split thresholds, on 1 to 3
//! threads: training steps (products split by blocks, normalization and
//! activation passes split by rows and columns, optimizer updates split by
//! ranges) and fused inference split by blocks of rows, each checked for
//! the bits of one thread.
//!
//! The shapes are derived from [`MIN_MACS_SPLIT`] and [`MIN_ELEMENTS_SPLIT`],
//! which are 64 times lower under Miri, so that `tools/miri.sh` runs these
//! tests in the interpreter (which checks every unsafe slice the parts
//! write for overlap and every access between threads for data races) in
//! minutes, while a native `cargo test` runs them with the shapes that
//! split there.

use bpnet::layers::NormKind;
use bpnet::parallel::{self, MIN_ELEMENTS_SPLIT, MIN_MACS_SPLIT, split::gemm_blocks};
use bpnet::{
    Activation, BnPlacement, InferenceNet, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target,
    Trainer, infer::BLOCK_ROWS,
};
use std::sync::Mutex;

/// The thread count is process-wide: tests that change it take turns.
static LOCK: Mutex<()> = Mutex::new(());

/// Rows of a batch: odd, so no split falls on a power of two.
const BATCH: usize = 9;

/// Input features.
const INPUTS: usize = 16;

/// Hidden width: a batch of it holds at least [`MIN_ELEMENTS_SPLIT`]
/// values, and at least 100 (two blocks of a product's longer side).
const HIDDEN: usize = {
    let w = MIN_ELEMENTS_SPLIT / BATCH + 7;
    if w > 100 { w } else { 100 }
};

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deterministic values in [-1, 1) (no generator: cheap under Miri).
fn values(rows: usize, cols: usize, seed: usize) -> Matrix<f32> {
    let v = (0..rows * cols)
        .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5 - 1.0)
        .collect();
    Matrix::from_vec(rows, cols, v).unwrap()
}

fn bits(m: &Matrix<f32>) -> Vec<u32> {
    m.as_slice().iter().map(|v| v.to_bits()).collect()
}

/// Two training steps of `spec` on `threads` threads; the bits of every
/// parameter and running statistic.
fn train(threads: usize, spec: &ModelSpec, opt: &OptimizerConfig) -> Vec<Vec<u32>> {
    assert_eq!(parallel::set_threads(threads), threads);
    let classes = spec.dims[spec.dims.len() - 1];
    let model = Sequential::<f32>::from_spec(spec, 3).unwrap();
    let mut tr = Trainer::new(model, Optimizer::new(opt.clone()).unwrap(), Loss::CrossEntropy);
    for s in 0..2 {
        let x = values(BATCH, spec.dims[0], s);
        let y: Vec<usize> = (0..BATCH).map(|i| (i * 5 + s) % classes).collect();
        tr.step(&x, Target::Labels(&y)).unwrap();
    }
    parallel::set_threads(1);
    let mut out = Vec::new();
    tr.model.visit_params(&mut |p| out.push(bits(&p.value)));
    let mut running = Vec::new();
    tr.model.save_running(&mut running);
    out.push(running.iter().map(|v| v.to_bits()).collect());
    out
}

// The shapes reach every split: normalization and activation passes, the
// optimizers' updates, the products (checked at compile time).
const _: () = assert!(BATCH * HIDDEN >= MIN_ELEMENTS_SPLIT && INPUTS * HIDDEN >= MIN_ELEMENTS_SPLIT);
const _: () = assert!(BATCH * INPUTS * HIDDEN >= MIN_MACS_SPLIT);

#[test]
fn the_products_are_split() {
    assert!(gemm_blocks(BATCH, INPUTS, HIDDEN) >= 2, "the forward product splits");
    assert!(gemm_blocks(HIDDEN, BATCH, INPUTS) >= 2, "the weight gradient splits");
}

#[test]
fn training_steps_at_the_split_thresholds_are_bit_identical_on_1_to_3_threads() {
    let _g = lock();
    let cases = [
        (
            "relu",
            BnPlacement::BeforeActivation,
            NormKind::Batch,
            OptimizerConfig::adam(1e-2),
        ),
        (
            "gelu",
            BnPlacement::AfterActivation,
            NormKind::Ghost { size: 4 },
            OptimizerConfig::momentum(0.05, 0.9, true),
        ),
        ("tanh", BnPlacement::None, NormKind::Batch, OptimizerConfig::sgd(0.1)),
    ];
    for (act, placement, kind, opt) in cases {
        let mut spec = ModelSpec {
            dims: vec![INPUTS, HIDDEN, 3],
            activation: act.parse().unwrap(),
            batch_norm: placement,
            ..ModelSpec::paper_mnist(true, 0.1)
        };
        spec.bn.kind = kind;
        let one = train(1, &spec, &opt);
        assert!(one == train(1, &spec, &opt), "{act}: two runs on one thread differ");
        for t in [2, 3] {
            assert!(
                one == train(t, &spec, &opt),
                "{act} {placement:?} {kind:?}: 1 and {t} threads differ"
            );
        }
    }
}

/// Calls of 1 to `2 BLOCK_ROWS + 3` rows: one row, rows apart, parts of
/// rows and blocks of rows on the path the machine takes (on AVX-512 the
/// feature-major kernel and the one-row kernel; `tools/miri.sh` runs this
/// file once with AVX-512 enabled for them).
#[test]
fn fused_inference_calls_of_1_to_1027_rows_are_bit_identical_on_1_to_3_threads() {
    let _g = lock();
    let spec = ModelSpec {
        dims: vec![4, 8, 3],
        activation: Activation::Sigmoid,
        batch_norm: BnPlacement::BeforeActivation,
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    let model = Sequential::<f32>::from_spec(&spec, 5).unwrap();
    let net = InferenceNet::new(&model).unwrap();
    for rows in [1, 2, 5, 17, 33, 2 * BLOCK_ROWS + 3] {
        let x = values(rows, 4, rows);
        let mut outs = Vec::new();
        for t in 1..=3 {
            assert_eq!(parallel::set_threads(t), t);
            outs.push(bits(&net.forward(&x).unwrap()));
        }
        parallel::set_threads(1);
        assert!(
            outs.iter().all(|o| *o == outs[0]),
            "{rows} rows: fused outputs differ between thread counts"
        );
    }
}
