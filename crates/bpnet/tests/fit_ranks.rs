//! The training loop on several ranks (threads of this process, no MPI):
//! validation split over ranks, early stopping, checkpoints, and a
//! checkpoint taken on 2 ranks resumed on 1 and on 3, against one process.
//! Bound: every tensor within 1e-5 of the one-process model relative to the
//! tensor's largest value (f32; sums are reordered, so bit identity is not
//! expected); validation losses within 1e-5 relative; the same epochs.

mod distributed;

use bpnet::comm::Comm;
use bpnet::data::Dataset;
use bpnet::train::schedule::Schedule;
use bpnet::train::{
    BnSyncMode, EarlyStopping, Event, FitConfig, FitState, History, Monitor, OnNan, Resume, fit_resume,
};
use bpnet::{Activation, BnPlacement, Init, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Trainer};
use distributed::{max_rel_diff, on_ranks, state};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

/// Three noisy classes in 6 features.
fn data(rows: usize, seed: u64) -> Dataset {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..rows {
        let c = rng.random_range(0..3usize);
        y.push(c);
        x.extend((0..6).map(|j| if j % 3 == c { 1.0 } else { 0.0 } + rng.random_range(-0.8f32..0.8)));
    }
    Dataset::new(Matrix::from_vec(rows, 6, x).unwrap(), y, 3).unwrap()
}

fn trainer() -> Trainer<f32> {
    let spec = ModelSpec {
        dims: vec![6, 32, 16, 3],
        activation: Activation::Relu,
        batch_norm: BnPlacement::BeforeActivation,
        bn: Default::default(),
        dropout: 0.1,
        init: Init::HeNormal,
    };
    let opt = Optimizer::new(OptimizerConfig::adam(0.01)).unwrap();
    Trainer::new(Sequential::from_spec(&spec, 4).unwrap(), opt, Loss::CrossEntropy)
}

fn config() -> FitConfig {
    FitConfig {
        epochs: 6,
        steps: None,
        // 70 rows: 4 batches of 16 and one of 6 (2 rows a rank on 3 ranks).
        batch_size: Some(16),
        schedule: Schedule::Plateau {
            factor: 0.5,
            patience: 1,
        },
        monitor: Monitor::ValLoss,
        early_stopping: Some(EarlyStopping {
            patience: 3,
            min_delta: 0.0,
        }),
        seed: 2,
        on_nan: OnNan::Stop,
        checkpoint_epochs: 0,
        checkpoint_steps: 7,
    }
}

type Saved = (Trainer<f32>, FitState, Option<Sequential<f32>>);
/// Named tensors of a model (see `distributed::state`).
type Tensors = Vec<(String, Vec<f64>)>;

/// Trains on the ranks of `comm` (from `resume` if given); returns the
/// final state, the history and the checkpoint taken at step 7.
fn train(comm: Arc<dyn Comm>, resume: Option<Saved>) -> (Tensors, History, Option<Saved>) {
    let (train, val) = (data(70, 1), data(31, 2));
    let (mut t, resume) = match resume {
        Some((t, state, best)) => (t, Some(Resume { state, best })),
        None => (trainer(), None),
    };
    t.set_comm(comm, BnSyncMode::Global).unwrap();
    let mut saved = None;
    let history = fit_resume(&mut t, &train, Some(&val), &config(), resume, &mut |e| {
        if let Event::Checkpoint { trainer, state, best } = e
            && saved.is_none()
        {
            saved = Some((trainer.clone(), state.clone(), best.cloned()));
        }
        Ok(())
    })
    .unwrap();
    (state(&t.model), history, saved)
}

fn assert_close(got: &(Tensors, History), want: &(Tensors, History), what: &str) {
    let (diff, name) = max_rel_diff(&got.0, &want.0);
    assert!(diff <= 1e-5, "{what}: {name} differs by {diff:e} (relative)");
    assert_eq!(got.1.epochs.len(), want.1.epochs.len(), "{what}: epochs");
    assert_eq!(got.1.best_epoch, want.1.best_epoch, "{what}: best epoch");
    for (a, b) in got.1.epochs.iter().zip(&want.1.epochs) {
        let (va, vb) = (a.val_loss.unwrap(), b.val_loss.unwrap());
        assert!(
            (va - vb).abs() <= 1e-5 * vb.abs(),
            "{what}: epoch {} val_loss {va} vs {vb}",
            a.epoch
        );
        assert_eq!(a.lr, b.lr, "{what}: epoch {} learning rate", a.epoch);
    }
}

#[test]
fn ranks_train_the_one_process_model_and_resume_on_other_counts() {
    let (s1, h1, _) = train(bpnet::comm::single(), None);
    let one = (s1, h1);
    let mut checkpoint = None;
    for n in [2, 3] {
        let runs = on_ranks(n, |c| train(c, None));
        for (r, run) in runs.iter().enumerate() {
            assert_eq!(run.0, runs[0].0, "rank {r} of {n} differs from rank 0");
            assert_close(&(run.0.clone(), run.1.clone()), &one, &format!("{n} ranks"));
        }
        if n == 2 {
            checkpoint = runs.into_iter().next().unwrap().2;
        }
    }
    // The step-7 checkpoint of the 2-rank run, resumed on 1 and on 3 ranks.
    let saved = checkpoint.expect("a checkpoint at step 7");
    let (s, h, _) = train(bpnet::comm::single(), Some(saved.clone()));
    assert_close(&(s, h), &one, "2 ranks resumed on 1");
    let runs = on_ranks(3, |c| train(c, Some(saved.clone())));
    for run in &runs {
        assert_close(&(run.0.clone(), run.1.clone()), &one, "2 ranks resumed on 3");
    }
}
