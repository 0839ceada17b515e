//! A training step allocates nothing on the heap once warm: counted by a
//! global allocator wrapper, on every thread (this file holds one test, so
//! nothing else runs in the process meanwhile), with 1, 2 and 3 threads
//! (the spinning team and the split products and updates).

use bpnet::data::{Batches, Dataset, TargetBuf};
use bpnet::loss::Loss;
use bpnet::{Activation, BnPlacement, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

fn dataset(rows: usize, cols: usize) -> Dataset {
    let x = (0..rows * cols).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    let y = (0..rows).map(|i| i % 10).collect();
    Dataset::new(Matrix::from_vec(rows, cols, x).unwrap(), y, 10).unwrap()
}

fn steady_state_allocations(spec: ModelSpec, opt: OptimizerConfig) -> usize {
    let data = dataset(250, spec.dims[0]);
    let model = Sequential::<f32>::from_spec(&spec, 5).unwrap();
    let mut t = Trainer::new(model, Optimizer::new(opt).unwrap(), Loss::CrossEntropy);
    // 250 rows in batches of 60: the last batch of each epoch has 10 rows, so
    // buffers also shrink and regrow within their capacity.
    let mut batches = Batches::new(data.len(), 60, 2, 1);
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    let mut step = |x: &mut Matrix<f32>, y: &mut TargetBuf| {
        data.gather(batches.next_batch(), x, y);
        t.step(x, y.target()).unwrap()
    };
    for _ in 0..6 {
        step(&mut x, &mut y);
    }
    let before = allocations();
    for _ in 0..20 {
        step(&mut x, &mut y);
    }
    allocations() - before
}

#[test]
fn training_steps_allocate_nothing_after_warm_up() {
    let paper = ModelSpec {
        dims: vec![784, 100, 100, 100, 10],
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    for (name, spec, opt) in [
        ("paper BN + sgd", paper.clone(), OptimizerConfig::sgd(0.5)),
        (
            "paper no BN + nesterov",
            ModelSpec {
                batch_norm: BnPlacement::None,
                ..paper.clone()
            },
            OptimizerConfig::momentum(0.1, 0.9, true),
        ),
        (
            "relu BN-after dropout + adamw clipped",
            ModelSpec {
                activation: Activation::Relu,
                batch_norm: BnPlacement::AfterActivation,
                dropout: 0.2,
                ..paper.clone()
            },
            OptimizerConfig {
                clip_grad_norm: Some(1.0),
                ..OptimizerConfig::adamw(1e-3)
            },
        ),
        (
            "gelu BN + rmsprop centered",
            ModelSpec {
                activation: Activation::Gelu,
                ..paper.clone()
            },
            OptimizerConfig {
                method: bpnet::Method::RmsProp {
                    alpha: 0.99,
                    eps: 1e-8,
                    momentum: 0.9,
                    centered: true,
                },
                ..OptimizerConfig::rmsprop(1e-3)
            },
        ),
        (
            "tanh BN + adagrad",
            ModelSpec {
                activation: Activation::Tanh,
                ..paper
            },
            OptimizerConfig::adagrad(0.01),
        ),
    ] {
        for threads in [1, 2, 3] {
            assert_eq!(bpnet::set_threads(threads), threads);
            let n = steady_state_allocations(spec.clone(), opt.clone());
            println!("{name}, {threads} threads: {n} allocations in 20 steady-state steps");
            assert_eq!(
                n, 0,
                "{name}, {threads} threads: {n} heap allocations in 20 steps after warm-up"
            );
        }
    }
}
