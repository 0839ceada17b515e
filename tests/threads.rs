//! Matrix products give bit-identical results for any thread count, so a
//! training run does too.

use bpnet::tensor::{Op, Out, gemm};
use bpnet::threads::{self, MIN_MACS_SPLIT};
use bpnet::{Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target, Trainer};
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

#[test]
fn products_are_bit_identical_for_one_and_two_threads() {
    let _g = LOCK.lock().unwrap();
    if threads::available() < 2 {
        eprintln!("SKIP: rayon sees one core");
        return;
    }
    // Shapes of W3 (batch 256, widths 784/1024: split by faer), of the
    // paper network (batch 60, widths 784/100: split by bpnet's team) and odd
    // sizes; every transpose combination the layers use.
    let shapes = [
        (256, 784, 1024),
        (1024, 256, 784),
        (256, 1024, 1024),
        (333, 517, 129),
        (1000, 100, 784),
        (60, 784, 100),
        (100, 60, 784),
        (60, 100, 100),
        (37, 301, 41),
        (130, 70, 33),
    ];
    for &(m, k, n) in &shapes {
        assert!(m * k * n >= MIN_MACS_SPLIT, "{m}x{k}x{n} would not be split");
        for (op_a, op_b) in [(Op::N, Op::T), (Op::T, Op::N), (Op::N, Op::N)] {
            let a = if op_a == Op::N {
                random(m, k, 1)
            } else {
                random(k, m, 1)
            };
            let b = if op_b == Op::N {
                random(k, n, 2)
            } else {
                random(n, k, 2)
            };
            let mut c = [random(m, n, 3), random(m, n, 3)];
            for (t, c) in [1, 2].into_iter().zip(c.iter_mut()) {
                assert_eq!(threads::set_threads(t), t);
                gemm(0.5, &a, op_a, &b, op_b, Out::Add, c).unwrap();
            }
            threads::set_threads(1);
            assert!(
                bits(&c[0]) == bits(&c[1]),
                "{m}x{k}x{n} {op_a:?}{op_b:?} differs between 1 and 2 threads"
            );
        }
    }
}

fn train(t: usize) -> Vec<Vec<u32>> {
    threads::set_threads(t);
    let spec = ModelSpec {
        dims: vec![300, 512, 512, 10],
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    let model = Sequential::<f32>::from_spec(&spec, 3).unwrap();
    let mut tr = Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::adam(1e-3)).unwrap(),
        Loss::CrossEntropy,
    );
    for s in 0..5 {
        let x = random(128, 300, 10 + s);
        let y: Vec<usize> = (0..128).map(|i| (i * 7 + s as usize) % 10).collect();
        tr.step(&x, Target::Labels(&y)).unwrap();
    }
    threads::set_threads(1);
    let mut out = Vec::new();
    tr.model.visit_params(&mut |p| out.push(bits(&p.value)));
    out
}

#[test]
fn training_is_bit_identical_for_one_and_two_threads() {
    let _g = LOCK.lock().unwrap();
    if threads::available() < 2 {
        eprintln!("SKIP: rayon sees one core");
        return;
    }
    let one = train(1);
    assert_eq!(one, train(1), "two single-threaded runs differ");
    assert_eq!(one, train(2), "one and two threads differ");
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
    let _g = LOCK.lock().unwrap();
    let mut momentum = OptimizerConfig::momentum(0.05, 0.9, true);
    momentum.weight_decay = 1e-3;
    let mut adamw = OptimizerConfig::adamw(1e-3);
    adamw.weight_decay = 1e-2;
    let configs = [OptimizerConfig::sgd(0.1), momentum, OptimizerConfig::adam(1e-3), adamw];
    for act in ["sigmoid", "relu", "tanh", "gelu"] {
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
