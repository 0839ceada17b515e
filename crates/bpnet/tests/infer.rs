//! The fused inference path (`InferenceNet`): batch norm folded into the
//! Dense layers, bias and activation in one pass, blocks of rows over
//! threads. It computes the unfolded network's eval output up to rounding,
//! and the same bits for any thread count.
//!
//! Bounds (measured values are printed): f64 `|fused - eval| <= 1e-13 *
//! max(1, max|y|)`; f32 `<= 2e-6 * max(1, max|y|)`, the folding bound of
//! `tests/onnx_export.rs` (the fused path adds no rounding of its own beyond
//! the sigmoid's polynomial exponential, which both paths share).

mod onnx_common;

use bpnet::parallel as threads;
use bpnet::{Activation, BnPlacement, InferenceNet, Matrix, Mode, Scalar, infer::BLOCK_ROWS};
use onnx_common::*;

fn check<T: Scalar>(rows: usize, dims: &[usize], bound: f64) -> f64 {
    let mut worst: f64 = 0.0;
    let x = uniform::<T>(rows, dims[0], -2.0, 2.0, 3);
    for act in activations() {
        for bn in [
            BnPlacement::BeforeActivation,
            BnPlacement::AfterActivation,
            BnPlacement::None,
        ] {
            for dropout in [0.0, 0.25] {
                let spec = spec(dims, act, bn, dropout);
                let mut model = network::<T>(&spec, 21);
                let net = InferenceNet::new(&model).unwrap();
                let y = model.forward(&x, Mode::Eval).unwrap().clone();
                let yf = net.forward(&x).unwrap();
                assert_eq!(yf.shape(), y.shape());
                let rel = max_abs_diff(&y, &yf) / max_abs(&y).max(1.0);
                worst = worst.max(rel);
                assert!(rel <= bound, "{act:?} {bn:?} dropout {dropout}: relative diff {rel:e}");
            }
        }
    }
    worst
}

#[test]
fn fused_path_computes_the_eval_output_f64() {
    // Two full blocks and a partial one.
    let worst = check::<f64>(2 * BLOCK_ROWS + 44, &[6, 9, 7, 4], 1e-13);
    println!("fused f64: max relative diff {worst:e} (bound 1e-13)");
}

#[test]
fn fused_path_computes_the_eval_output_f32() {
    let worst = check::<f32>(BLOCK_ROWS + 1, &[12, 16, 16, 5], 2e-6);
    println!("fused f32: max relative diff {worst:e} (bound 2e-6)");
}

#[test]
fn fused_output_has_the_same_bits_for_any_thread_count() {
    let spec = spec(
        &[30, 64, 64, 10],
        Activation::Sigmoid,
        BnPlacement::BeforeActivation,
        0.0,
    );
    let net = InferenceNet::new(&network::<f32>(&spec, 4)).unwrap();
    let x = uniform::<f32>(5 * BLOCK_ROWS + 7, 30, -1.0, 1.0, 9);
    let bits = |m: &Matrix<f32>| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    threads::set_threads(1);
    let one = bits(&net.forward(&x).unwrap());
    for t in 2..=4 {
        assert_eq!(threads::set_threads(t), t);
        let many = bits(&net.forward(&x).unwrap());
        threads::set_threads(1);
        assert!(one == many, "1 and {t} threads differ");
    }
    // A few rows computed alone agree with the same rows inside a large
    // batch up to the fused path's bound (bit for bit where the
    // feature-major kernel runs both: `infer::tests`).
    for rows in [3, 33] {
        let head = Matrix::from_vec(rows, 30, x.as_slice()[..rows * 30].to_vec()).unwrap();
        let head = net.forward(&head).unwrap();
        let want = &f32s(&one)[..rows * 10];
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (a, b) in head.as_slice().iter().zip(want) {
            assert!(
                (a - b).abs() <= 2e-6 * scale,
                "{rows} rows: {a} against {b} in the batch"
            );
        }
    }
}

fn f32s(bits: &[u32]) -> Vec<f32> {
    bits.iter().map(|&b| f32::from_bits(b)).collect()
}

/// One row through a network wide enough that its products are cut into
/// blocks over the threads (1000 and 777 outputs: several blocks, a last
/// block that is not a multiple of 16): the same bits on 1 to 4 threads,
/// and within the fused path's bound of the same row inside a batch.
#[test]
fn one_row_of_a_wide_network_has_the_same_bits_for_any_thread_count() {
    let spec = spec(
        &[301, 1000, 777, 9],
        Activation::Relu,
        BnPlacement::BeforeActivation,
        0.0,
    );
    let net = InferenceNet::new(&network::<f32>(&spec, 5)).unwrap();
    let x = uniform::<f32>(6, 301, -1.0, 1.0, 13);
    let row = Matrix::from_vec(1, 301, x.as_slice()[2 * 301..3 * 301].to_vec()).unwrap();
    let bits = |m: &Matrix<f32>| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    threads::set_threads(1);
    let one = net.forward(&row).unwrap();
    for t in 2..=4 {
        assert_eq!(threads::set_threads(t), t);
        let many = net.forward(&row).unwrap();
        threads::set_threads(1);
        assert_eq!(bits(&one), bits(&many), "1 and {t} threads differ");
    }
    let batch = net.forward(&x).unwrap();
    let want = &batch.as_slice()[2 * 9..3 * 9];
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (a, b) in one.as_slice().iter().zip(want) {
        assert!((a - b).abs() <= 2e-6 * scale, "{a} against {b} in the batch");
    }
}

#[test]
fn fused_path_rejects_a_wrong_width() {
    let spec = spec(&[8, 5, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
    let net = InferenceNet::new(&network::<f32>(&spec, 1)).unwrap();
    assert_eq!((net.in_features(), net.out_features()), (8, 3));
    let err = net.forward(&Matrix::zeros(4, 7)).unwrap_err().to_string();
    assert!(err.contains("fused inference") && err.contains('7'), "{err}");
}

/// Layers that do not connect (4 -> 8 then 3 -> 2; 4 -> 3 then 8 -> 2)
/// are refused as eval mode refuses them: the fused path gave numbers from
/// leftover buffer contents, or panicked.
#[test]
fn fused_path_refuses_layers_that_do_not_connect() {
    use bpnet::layers::Dense;
    use bpnet::{Layer, Sequential};
    let dense = |path: &str, out: usize, inp: usize| {
        let w = Matrix::<f64>::filled(out, inp, 0.1);
        Layer::Dense(Dense::new(path, w, Some(Matrix::zeros(1, out))).unwrap())
    };
    for (a, b) in [((8, 4), (2, 3)), ((3, 4), (2, 8))] {
        let mut m = Sequential::new(vec![dense("layers.0", a.0, a.1), dense("layers.1", b.0, b.1)]);
        let x = Matrix::filled(40, 4, 0.5);
        assert!(m.forward(&x, Mode::Eval).is_err());
        let err = InferenceNet::new(&m).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains(&format!(
                "layers.1 takes {} features, but the layer before it gives {}",
                b.1, a.0
            )),
            "{err}"
        );
    }
}

/// Rows predicted a few at a time against the same rows inside one batch,
/// for the paper's network (784-100-100-100-10, sigmoid, BN). One row (and,
/// on AVX-512 in f32, up to 7 rows of a network this small) goes through a
/// matrix-vector kernel, larger calls through a product kernel (bpnet's
/// feature-major one on AVX-512 in f32, the GEMM library's elsewhere), so
/// the sums run in another order and the outputs agree up to rounding
/// only: within the fused path's f32 bound, `2e-6 * max(1, max|y|)`. (On
/// AVX-512 in f32 the calls of 17 and 33 rows have the batch's bits: the
/// feature-major kernel computes each row alike, tested in `infer::tests`.)
#[test]
fn rows_predicted_apart_match_the_same_rows_in_a_batch_up_to_rounding() {
    let spec = spec(
        &[784, 100, 100, 100, 10],
        Activation::Sigmoid,
        BnPlacement::BeforeActivation,
        0.0,
    );
    let net = InferenceNet::new(&network::<f32>(&spec, 7)).unwrap();
    let rows = 41;
    let x = uniform::<f32>(rows, 784, -1.0, 1.0, 11);
    let all = net.forward(&x).unwrap();
    let mut worst: f64 = 0.0;
    let mut same_bits = Vec::new();
    for size in [1, 2, 3, 4, 5, 17, 33] {
        let mut identical = true;
        for start in (0..rows - size).step_by(size.max(3)) {
            let part = Matrix::from_vec(size, 784, x.as_slice()[start * 784..(start + size) * 784].to_vec()).unwrap();
            let y = net.forward(&part).unwrap();
            let want = &all.as_slice()[start * 10..(start + size) * 10];
            let scale = want.iter().fold(1.0f64, |m, v| m.max(f64::from(v.abs())));
            for (a, b) in y.as_slice().iter().zip(want) {
                let rel = f64::from((a - b).abs()) / scale;
                identical &= a.to_bits() == b.to_bits();
                worst = worst.max(rel);
                assert!(rel <= 2e-6, "{size} rows from row {start}: {a} against {b}");
            }
        }
        if identical {
            same_bits.push(size);
        }
    }
    println!("rows apart: max relative diff {worst:e} (bound 2e-6); the same bits with {same_bits:?} rows");
}

/// Each row of `base` through `net.forward_rows_into`, in calls of every
/// size in `sizes` (the first `size` rows of `base`), on 1 to 3 threads,
/// against the same row alone: the same bits. Returns the calls compared.
fn rows_alone_and_in_calls<T: Scalar>(net: &InferenceNet<T>, base: &Matrix<T>, sizes: &[usize]) -> usize {
    let (cols, outs) = (base.cols(), net.out_features());
    let row = |i: usize| Matrix::from_vec(1, cols, base.row(i).to_vec()).unwrap();
    let mut out = Matrix::zeros(0, 0);
    threads::set_threads(1);
    let alone: Vec<Vec<T>> = (0..base.rows())
        .map(|i| {
            net.forward_rows_into(&row(i), &mut out).unwrap();
            out.as_slice().to_vec()
        })
        .collect();
    let mut calls = 0;
    for t in 1..=3 {
        threads::set_threads(t);
        for &size in sizes {
            let x = Matrix::from_vec(size, cols, base.as_slice()[..size * cols].to_vec()).unwrap();
            net.forward_rows_into(&x, &mut out).unwrap();
            assert_eq!(out.shape(), [size, outs]);
            for (i, want) in alone.iter().enumerate().take(size) {
                let got = out.row(i);
                let same = got
                    .iter()
                    .zip(want)
                    .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits());
                assert!(
                    same,
                    "{t} threads, a call of {size} rows: row {i} {got:?}, alone {want:?}"
                );
            }
            calls += 1;
        }
    }
    threads::set_threads(1);
    calls
}

/// What `bpnet predict`, `eval` and the Python package run
/// (`forward_rows_into`): a row's output has the same bits alone and in a
/// call of any size, at any place in it, on any thread count, on every
/// path (the feature-major kernel on AVX-512, the GEMM library's
/// elsewhere, whose small-matrix kernel had taken a call of up to 13 rows
/// of a 4-100-100-3 network and its blocked kernel one of 14 or more, so a
/// row of iris printed other last digits alone than in a file of 14).
/// Shapes: the paper's network, iris's, stages too small for the blocked
/// kernel in any block (2-3-2), one output, a wide layer (the whole call
/// per stage), and f64.
#[test]
fn a_row_through_forward_rows_into_has_the_same_bits_in_a_call_of_any_size() {
    let mut sizes: Vec<usize> = (1..=20).collect();
    sizes.extend([31, 33, 61, 511, 512, 513, 530, 1025, 1031]);
    let short: Vec<usize> = sizes.iter().copied().filter(|&s| s <= 530).collect();
    let shapes: [(&[usize], Activation, &[usize]); 6] = [
        (&[784, 100, 100, 100, 10], Activation::Sigmoid, &short),
        (&[4, 100, 100, 3], Activation::Relu, &sizes),
        (&[2, 3, 2], Activation::Tanh, &sizes),
        (&[5, 16, 1], Activation::Relu, &sizes),
        (&[3, 40, 2], Activation::Elu(1.0), &sizes),
        (&[6, 600, 4], Activation::Relu, &short),
    ];
    let mut calls = 0;
    for (dims, act, sizes) in shapes {
        let spec = spec(dims, act, BnPlacement::BeforeActivation, 0.0);
        let net = InferenceNet::new(&network::<f32>(&spec, 5)).unwrap();
        let most = *sizes.iter().max().unwrap();
        let base = uniform::<f32>(most, dims[0], -2.0, 2.0, 17);
        calls += rows_alone_and_in_calls(&net, &base, sizes);
    }
    let spec = spec(&[4, 100, 100, 3], Activation::Relu, BnPlacement::BeforeActivation, 0.0);
    let net = InferenceNet::new(&network::<f64>(&spec, 5)).unwrap();
    let base = uniform::<f64>(1031, 4, -2.0, 2.0, 17);
    calls += rows_alone_and_in_calls(&net, &base, &sizes);
    println!("{calls} calls, every row's bits as alone");
}
