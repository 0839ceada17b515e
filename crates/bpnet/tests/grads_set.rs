//! A training step sets the parameter gradients rather than adding to them
//! (`Sequential::backward_with(.., Out::Replace)`, which spares zeroing the
//! weight gradients): the gradients it leaves must be bit for bit those of
//! zeroing every gradient and then adding (`zero_grad` + `backward`), and
//! nothing of what the gradients held before may leak into them; NaN
//! stands for any stale value. Adversarial shapes: 1 row, 33 rows, a prime
//! width, products split into blocks, every BN placement (1 row without
//! batch statistics), dropout, f32 and f64, 1-3 threads.

use bpnet::{
    Activation, BnPlacement, Init, Loss, Matrix, Mode, ModelSpec, Optimizer, OptimizerConfig, Scalar, Sequential,
    Target, Trainer,
};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Products too small to be split.
const SMALL: [usize; 4] = [7, 13, 11, 3];
/// A first layer whose weight gradient is split into blocks.
const WIDE: [usize; 3] = [97, 600, 3];

fn spec(dims: &[usize], bn: BnPlacement, dropout: f64) -> ModelSpec {
    ModelSpec {
        dims: dims.to_vec(),
        activation: Activation::Tanh,
        batch_norm: bn,
        bn: Default::default(),
        dropout,
        init: Init::HeNormal,
    }
}

fn grads<T: Scalar>(model: &mut Sequential<T>) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    model.visit_params(&mut |p| {
        out.push((
            p.name.clone(),
            p.grad.as_slice().iter().map(|v| v.to_f64().to_bits()).collect(),
        ));
    });
    out
}

fn check<T: Scalar>(dims: &[usize], bn: BnPlacement, dropout: f64, rows: usize) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(rows as u64);
    let x = Matrix::from_vec(
        rows,
        dims[0],
        (0..rows * dims[0])
            .map(|_| T::from_f64(rng.random_range(-2.0..2.0)))
            .collect(),
    )
    .unwrap();
    let labels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..3)).collect();
    let model = Sequential::<T>::from_spec(&spec(dims, bn, dropout), 3).unwrap();

    // The reference: zero every gradient, then add; two steps (dropout
    // draws a new mask in each).
    let mut reference = model.clone();
    let mut want = Vec::new();
    for _ in 0..2 {
        reference.zero_grad();
        let out = reference.forward(&x, Mode::Train).unwrap().clone();
        let mut dlogits = Matrix::default();
        Loss::CrossEntropy
            .forward_backward(&out, Target::Labels(&labels), &mut dlogits)
            .unwrap();
        reference.backward(&x, &dlogits, false).unwrap();
        want.push(grads(&mut reference));
    }

    let sgd = Optimizer::new(OptimizerConfig::sgd(0.1)).unwrap();
    let mut t = Trainer::new(model, sgd, Loss::CrossEntropy);
    t.model
        .visit_params(&mut |p| p.grad.as_mut_slice().fill(T::from_f64(f64::NAN)));
    // The second step starts from the first's (finite) gradients.
    for (step, want) in want.iter().enumerate() {
        t.compute_gradients(&x, Target::Labels(&labels)).unwrap();
        let got = grads(&mut t.model);
        assert_eq!(got.len(), want.len());
        for ((name, g), (_, w)) in got.iter().zip(want) {
            assert!(
                g == w,
                "{name}, step {step}: set gradients differ from zeroed-and-added ones ({bn:?}, {rows} rows)"
            );
        }
    }
}

#[test]
fn a_training_step_sets_the_gradients_it_would_have_added_to_zeros() {
    for threads in 1..=3 {
        bpnet::set_threads(threads);
        for bn in [
            BnPlacement::None,
            BnPlacement::BeforeActivation,
            BnPlacement::AfterActivation,
        ] {
            // Batch statistics need 2 rows.
            let one = if bn == BnPlacement::None { 1 } else { 3 };
            for rows in [one, 2, 33] {
                check::<f64>(&SMALL, bn, 0.0, rows);
                check::<f32>(&SMALL, bn, 0.0, rows);
            }
            // Dropout draws its mask from the model's own generator, the
            // same in the reference clone.
            check::<f64>(&SMALL, bn, 0.3, 33);
            // Products large enough to be cut into blocks over the threads
            // (the weight gradients 600 x 61 x 97 and 3 x 61 x 600).
            check::<f32>(&WIDE, bn, 0.0, 61);
        }
    }
}
