//! Results are bit-identical for any thread count: every product shape with
//! 1 to 80 rows and columns on 1 to 4 threads, the benchmark networks'
//! shapes, fused inference, and whole training runs with odd batch sizes.
//! More threads than cores are allowed, so this runs the same on any
//! machine (nothing is skipped). The command-line run is checked in
//! `crates/bpnet-cli/tests/threads_cli.rs`.

use bpnet::layers::{NormKind, RenormConfig};
use bpnet::parallel::{self, MIN_MACS_SPLIT, split::gemm_blocks};
use bpnet::tensor::{Op, Out, gemm};
use bpnet::{BnPlacement, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target, Trainer};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Mutex;

/// The thread count is process-wide: tests that change it take turns.
static LOCK: Mutex<()> = Mutex::new(());

fn random(rows: usize, cols: usize, seed: u64) -> Matrix<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let v = (0..rows * cols).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    Matrix::from_vec(rows, cols, v).unwrap()
}

fn bits(m: &Matrix<f32>) -> Vec<u32> {
    m.as_slice().iter().map(|v| v.to_bits()).collect()
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The transpose combinations the layers use.
const OPS: [(Op, Op); 3] = [(Op::N, Op::T), (Op::T, Op::N), (Op::N, Op::N)];

/// Random numbers to cut operands from (copying is fast even unoptimized).
struct Pool(Vec<f32>);

impl Pool {
    fn new(len: usize) -> Self {
        Pool(random(1, len, 7).as_slice().to_vec())
    }

    fn matrix(&self, rows: usize, cols: usize, offset: usize) -> Matrix<f32> {
        let at = offset % (self.0.len() - rows * cols);
        Matrix::from_vec(rows, cols, self.0[at..at + rows * cols].to_vec()).unwrap()
    }

    /// `c += 0.5 op_a(a) op_b(b)` on the current threads, as bits.
    fn product(&self, (m, k, n): (usize, usize, usize), (op_a, op_b): (Op, Op)) -> Vec<u32> {
        let a = if op_a == Op::N {
            self.matrix(m, k, 1)
        } else {
            self.matrix(k, m, 1)
        };
        let b = if op_b == Op::N {
            self.matrix(k, n, 77)
        } else {
            self.matrix(n, k, 77)
        };
        let mut c = self.matrix(m, n, 555);
        gemm(0.5, &a, op_a, &b, op_b, Out::Add, &mut c).unwrap();
        bits(&c)
    }
}

/// A fingerprint of a result's bits (FNV-1a), so that the results of tens
/// of thousands of products can be kept for comparison.
fn fingerprint(bits: &[u32]) -> u64 {
    bits.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Every pair of sides `a, b` in 1..=80 as rows x columns (never split:
/// the longer side is below two blocks' width), and with the other side
/// 96..=175 in both orientations (split whenever the product is big
/// enough: the inner dimension is chosen so that most are), each with a
/// short and a long inner dimension.
fn small_shapes() -> Vec<(usize, usize, usize)> {
    let mut shapes = Vec::new();
    for a in 1..=80 {
        for b in 1..=80 {
            let long = 95 + b;
            let k = (2 * MIN_MACS_SPLIT / (a * long)).clamp(8, 8192);
            shapes.extend([(a, 7, b), (a, 7, long), (a, k, long), (long, k, a)]);
        }
    }
    shapes
}

#[test]
fn every_small_product_shape_is_bit_identical_on_1_to_4_threads() {
    let _g = lock();
    let pool = Pool::new(1 << 20);
    let shapes = small_shapes();
    let mut first = Vec::new();
    for t in 1..=4 {
        assert_eq!(parallel::set_threads(t), t);
        let mut at = 0;
        for &shape in &shapes {
            for ops in OPS {
                let f = fingerprint(&pool.product(shape, ops));
                if t == 1 {
                    first.push(f);
                } else {
                    assert_eq!(first[at], f, "{shape:?} {ops:?}: 1 and {t} threads differ");
                }
                at += 1;
            }
        }
    }
    parallel::set_threads(1);
    let split = shapes.iter().filter(|&&(m, k, n)| gemm_blocks(m, k, n) > 1).count();
    println!(
        "{} shapes x 3 transposes, {split} shapes split into blocks",
        shapes.len()
    );
    assert!(
        split > 10_000,
        "only {split} shapes were split: the test lost its point"
    );
}

/// The shapes of the benchmark networks (W1: batch 60, widths 784/100; W3:
/// batch 256, widths 784/1024) and odd sizes, on 1 to 4 and 8 threads.
#[test]
fn network_sized_products_are_bit_identical_on_1_to_8_threads() {
    let _g = lock();
    let shapes = [
        (256, 784, 1024),
        (1024, 256, 784),
        (256, 1024, 1024),
        (333, 517, 129),
        (1000, 100, 784),
        (60, 784, 100),
        (100, 60, 784),
        (60, 100, 100),
        (37, 301, 141),
        (130, 70, 33),
        (1, 4099, 97),
        (97, 4099, 1),
    ];
    let pool = Pool::new(1 << 22);
    let products = |t: usize| {
        assert_eq!(parallel::set_threads(t), t);
        let all = shapes.map(|shape| OPS.map(|ops| pool.product(shape, ops)));
        assert!(shapes.iter().all(|&(m, k, n)| gemm_blocks(m, k, n) > 1));
        all
    };
    let one = products(1);
    for t in [2, 3, 4, 8] {
        let other = products(t);
        for (shape, (x, y)) in shapes.iter().zip(one.iter().zip(&other)) {
            assert!(x == y, "{shape:?}: 1 and {t} threads differ");
        }
    }
    parallel::set_threads(1);
}

/// Trains `dims` with BN for a few steps of `batch` rows on `threads`
/// threads; the bits of every parameter and running statistic.
fn train(threads: usize, dims: &[usize], batch: usize, opt: OptimizerConfig) -> Vec<Vec<u32>> {
    let spec = ModelSpec {
        dims: dims.to_vec(),
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    train_spec(threads, &spec, batch, opt)
}

/// [`train`] for any network.
fn train_spec(threads: usize, spec: &ModelSpec, batch: usize, opt: OptimizerConfig) -> Vec<Vec<u32>> {
    assert_eq!(parallel::set_threads(threads), threads);
    let dims = &spec.dims;
    let classes = dims[dims.len() - 1];
    let model = Sequential::<f32>::from_spec(spec, 3).unwrap();
    let mut tr = Trainer::new(model, Optimizer::new(opt).unwrap(), Loss::CrossEntropy);
    for s in 0..4 {
        let x = random(batch, dims[0], 10 + s);
        let y: Vec<usize> = (0..batch).map(|i| (i * 7 + s as usize) % classes).collect();
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

#[test]
fn training_with_odd_batches_is_bit_identical_on_1_to_4_threads() {
    let _g = lock();
    let cases: [(&[usize], usize, OptimizerConfig); 4] = [
        (&[300, 512, 512, 10], 128, OptimizerConfig::adam(1e-3)),
        (&[784, 16, 10], 33, OptimizerConfig::sgd(0.5)),
        (
            &[784, 100, 100, 100, 10],
            61,
            OptimizerConfig::momentum(0.05, 0.9, true),
        ),
        (&[97, 131, 3], 257, OptimizerConfig::rmsprop(1e-3)),
    ];
    for (dims, batch, opt) in cases {
        let one = train(1, dims, batch, opt.clone());
        assert_eq!(
            one,
            train(1, dims, batch, opt.clone()),
            "two single-threaded runs differ"
        );
        for t in 2..=4 {
            assert!(
                one == train(t, dims, batch, opt.clone()),
                "{dims:?} batch {batch}: 1 and {t} threads differ"
            );
        }
    }
}

/// Ghost BN over a batch that makes one ghost batch (at most `N + 1` rows:
/// a last ghost batch of one row joins the one before) is batch
/// normalization, bit for bit: parameters and running statistics after
/// training, then population statistics recalibrated over such batches, on
/// 1 and 4 threads. Batches of 4, 15, 16 and 17 rows make `m / (m - 1)`
/// inexact, where the two roundings of the unbiased variance would differ.
/// Two ghost batches (`N + 2` rows) are not batch normalization: the
/// comparison can tell.
#[test]
fn ghost_bn_of_one_ghost_batch_is_batch_norm_bit_for_bit() {
    let _g = lock();
    const N: usize = 16;
    let spec = |kind| {
        let mut s = ModelSpec {
            dims: vec![7, 19, 3],
            ..ModelSpec::paper_mnist(true, 0.1)
        };
        s.bn.kind = kind;
        s
    };
    let run = |kind, m, t| {
        let mut state = train_spec(t, &spec(kind), m, OptimizerConfig::sgd(0.5));
        state.push(recalibrated(t, &spec(kind), m));
        state
    };
    for m in [2, 3, 4, N - 1, N, N + 1] {
        for t in [1, 4] {
            assert!(
                run(NormKind::Ghost { size: N }, m, t) == run(NormKind::Batch, m, t),
                "batch of {m} rows, ghost batches of {N}, {t} threads: ghost BN differs from BN"
            );
        }
    }
    assert!(run(NormKind::Ghost { size: N }, N + 2, 1) != run(NormKind::Batch, N + 2, 1));
}

/// The population statistics (bits) of a fresh `spec` network recalibrated
/// over three batches of `batch` rows on `threads` threads.
fn recalibrated(threads: usize, spec: &ModelSpec, batch: usize) -> Vec<u32> {
    assert_eq!(parallel::set_threads(threads), threads);
    let mut model = Sequential::<f32>::from_spec(spec, 3).unwrap();
    let xs: Vec<_> = (0..3).map(|s| random(batch, spec.dims[0], 20 + s)).collect();
    model.recalibrate(&xs).unwrap();
    parallel::set_threads(1);
    let mut running = Vec::new();
    model.save_running(&mut running);
    running.iter().map(|v| v.to_bits()).collect()
}

/// The normalization and activation passes are split over the threads
/// (by rows, or by columns for the sums over rows) once a layer's batch
/// holds `MIN_ELEMENTS_SPLIT` values: 257 rows of 333 features is 2.6 times
/// that, and a ghost batch of 128 rows is 1.3 times. Every kind of
/// normalization, both placements and several activations, on 1 to 8 threads.
#[test]
fn split_normalization_and_activation_passes_are_bit_identical_on_1_to_8_threads() {
    let _g = lock();
    const { assert!(257 * 333 > 2 * parallel::MIN_ELEMENTS_SPLIT && 128 * 333 > parallel::MIN_ELEMENTS_SPLIT) };
    let renorm = NormKind::Renorm(RenormConfig {
        warmup_steps: 0,
        rmax_steps: 2,
        dmax_steps: 2,
        ..RenormConfig::default()
    });
    let cases = [
        ("relu", BnPlacement::BeforeActivation, NormKind::Batch),
        ("gelu", BnPlacement::AfterActivation, NormKind::Batch),
        ("tanh", BnPlacement::BeforeActivation, NormKind::Ghost { size: 128 }),
        ("elu", BnPlacement::BeforeActivation, renorm),
        ("softplus", BnPlacement::None, NormKind::Batch),
        ("sigmoid", BnPlacement::BeforeActivation, NormKind::Layer),
    ];
    for (act, placement, kind) in cases {
        let mut spec = ModelSpec {
            dims: vec![50, 333, 10],
            activation: act.parse().unwrap(),
            batch_norm: placement,
            ..ModelSpec::paper_mnist(true, 0.1)
        };
        spec.bn.kind = kind;
        let opt = OptimizerConfig::adam(1e-2);
        let one = train_spec(1, &spec, 257, opt.clone());
        for t in [2, 3, 5, 8] {
            assert!(
                one == train_spec(t, &spec, 257, opt.clone()),
                "{act} {placement:?} {kind:?}: 1 and {t} threads differ"
            );
        }
    }
}

fn train_with(opt: OptimizerConfig, activation: bpnet::Activation) -> Vec<Vec<u32>> {
    let spec = ModelSpec {
        dims: vec![37, 29, 19, 5],
        activation,
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    let model = Sequential::<f32>::from_spec(&spec, 5).unwrap();
    let mut tr = Trainer::new(model, Optimizer::new(opt).unwrap(), Loss::CrossEntropy);
    for s in 0..4 {
        let x = random(23, 37, 20 + s);
        let y: Vec<usize> = (0..23).map(|i| (i * 3 + s as usize) % 5).collect();
        tr.step(&x, Target::Labels(&y)).unwrap();
    }
    let mut out = Vec::new();
    tr.model.visit_params(&mut |p| out.push(bits(&p.value)));
    out
}

#[test]
fn wide_vector_code_gives_the_bits_of_baseline_code() {
    let _g = lock();
    let mut momentum = OptimizerConfig::momentum(0.05, 0.9, true);
    momentum.weight_decay = 1e-3;
    let mut adamw = OptimizerConfig::adamw(1e-3);
    adamw.weight_decay = 1e-2;
    let configs = [OptimizerConfig::sgd(0.1), momentum, OptimizerConfig::adam(1e-3), adamw];
    for act in ["sigmoid", "relu", "tanh", "gelu", "leaky_relu", "leaky_relu:0.3", "elu"] {
        for opt in configs.iter() {
            let act = act.parse().unwrap();
            bpnet::simd::set_baseline_only(true);
            let base = train_with(opt.clone(), act);
            bpnet::simd::set_baseline_only(false);
            let wide = train_with(opt.clone(), act);
            assert!(base == wide, "{act:?} {:?}: widened code differs", opt.method);
        }
    }
    eprintln!("vector level {}", bpnet::simd::level());
}
