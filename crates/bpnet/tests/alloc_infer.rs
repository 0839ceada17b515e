//! Fused inference allocates nothing on the heap once warm: counted by a
//! global allocator wrapper on every thread (this file holds one test, so
//! nothing else runs in the process meanwhile), for 1, 7 and 1,300 rows (a
//! partial block, two full blocks and a partial one), narrow and wide
//! networks, on 1 and 2 threads.

use bpnet::{Activation, BnPlacement, InferenceNet, Matrix, ModelSpec, Sequential};
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

fn input(rows: usize, cols: usize) -> Matrix<f32> {
    let x = (0..rows * cols)
        .map(|i| ((i * 37 % 101) as f32) / 101.0 - 0.5)
        .collect();
    Matrix::from_vec(rows, cols, x).unwrap()
}

#[test]
fn fused_inference_allocates_nothing_once_warm() {
    let narrow = ModelSpec {
        dims: vec![784, 100, 100, 100, 10],
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    let wide = ModelSpec {
        dims: vec![300, 600, 600, 10],
        activation: Activation::Relu,
        batch_norm: BnPlacement::AfterActivation,
        ..narrow.clone()
    };
    for (name, spec) in [("narrow", narrow), ("wide", wide)] {
        let net = InferenceNet::new(&Sequential::<f32>::from_spec(&spec, 3).unwrap()).unwrap();
        for threads in [1, 2] {
            assert_eq!(bpnet::set_threads(threads), threads);
            let inputs = [
                input(1, spec.dims[0]),
                input(7, spec.dims[0]),
                input(1300, spec.dims[0]),
            ];
            let mut out = Matrix::zeros(0, 0);
            // Warm-up: workspaces grow to the largest batch; `out` too.
            for x in inputs.iter().rev() {
                net.forward_into(x, &mut out).unwrap();
            }
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for _ in 0..5 {
                for x in &inputs {
                    net.forward_into(x, &mut out).unwrap();
                }
            }
            let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
            println!("{name}, {threads} threads: {n} allocations in 15 warm calls");
            assert_eq!(n, 0, "{name}, {threads} threads: {n} heap allocations in 15 warm calls");
        }
    }
    bpnet::set_threads(1);
}
