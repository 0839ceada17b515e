//! Resuming from a checkpoint continues exactly, for every optimizer: a run
//! stopped after `k` steps, saved with `save_run`, loaded with `load_run` and
//! finished matches the uninterrupted run bit for bit after every later step
//! — weights, batch-norm running statistics and counts, optimizer buffers,
//! step count and learning rate, the loop state (batch order, epoch loss,
//! early-stopping and plateau watch), the best weights, and the history
//! (every `f64` of every epoch but the wall-clock `seconds`). The checkpoint
//! itself reads back identical, `seconds` included, for values plain
//! serde_json parses 1 ulp off, for NaN and infinities, and for batch counts
//! beyond f32's 2^24. tests/resume.rs covers the command line under SIGKILL.

use bpnet::data::Dataset;
use bpnet::io::{load_run, save_run};
use bpnet::train::schedule::Schedule;
use bpnet::train::{EarlyStopping, Event, FitConfig, FitState, Monitor, OnNan, fit_resume};
use bpnet::{
    Activation, BnPlacement, Error, Layer, Loss, Matrix, Method, ModelSpec, Optimizer, OptimizerConfig, Sequential,
    Trainer,
};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;

mod common;

/// 0.9259338926496359: serde_json without `float_roundtrip` reads its
/// shortest text back as the next f64 up.
const ONE_ULP_OFF: f64 = f64::from_bits(0x3fed_a140_1d66_056a);

/// Random features and labels: validation loss soon rises, so the plateau
/// schedule reduces the rate and early stopping ends the run.
fn data(rows: usize, seed: u64) -> Dataset {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x = (0..rows * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y = (0..rows).map(|_| rng.random_range(0..3)).collect();
    Dataset::new(Matrix::from_vec(rows, 6, x).unwrap(), y, 3).unwrap()
}

fn spec() -> ModelSpec {
    ModelSpec {
        dims: vec![6, 12, 10, 3],
        activation: Activation::Tanh,
        batch_norm: BnPlacement::BeforeActivation,
        dropout: 0.1,
        ..ModelSpec::paper_mnist(true, 0.5)
    }
}

fn optimizers() -> Vec<(&'static str, OptimizerConfig)> {
    let rms = |momentum, centered| OptimizerConfig {
        method: Method::RmsProp {
            alpha: 0.9,
            eps: 1e-8,
            momentum,
            centered,
        },
        ..OptimizerConfig::rmsprop(0.01)
    };
    vec![
        ("sgd", OptimizerConfig::sgd(0.3)),
        ("momentum", OptimizerConfig::momentum(0.1, 0.9, false)),
        (
            "nesterov, weight decay, clipping",
            OptimizerConfig {
                weight_decay: 1e-3,
                clip_grad_norm: Some(0.5),
                ..OptimizerConfig::momentum(0.1, 0.9, true)
            },
        ),
        ("adam", OptimizerConfig::adam(0.02)),
        (
            "adamw",
            OptimizerConfig {
                weight_decay: 0.05,
                ..OptimizerConfig::adamw(0.02)
            },
        ),
        ("rmsprop", rms(0.0, false)),
        ("rmsprop centered", rms(0.0, true)),
        ("rmsprop momentum", rms(0.5, false)),
        ("rmsprop centered momentum", rms(0.5, true)),
        (
            "adagrad with lr decay",
            OptimizerConfig {
                method: Method::Adagrad {
                    lr_decay: 0.01,
                    eps: 1e-10,
                    initial_accumulator: 0.1,
                },
                ..OptimizerConfig::adagrad(0.1)
            },
        ),
    ]
}

fn config() -> FitConfig {
    FitConfig {
        epochs: 12,
        steps: None,
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
        seed: 9,
        on_nan: OnNan::Stop,
        checkpoint_epochs: 0,
        checkpoint_steps: 1,
    }
}

fn trainer(opt: &OptimizerConfig) -> Trainer<f32> {
    let model = Sequential::from_spec(&spec(), 4).unwrap();
    Trainer::new(model, Optimizer::new(opt.clone()).unwrap(), Loss::CrossEntropy)
}

/// Every parameter, running statistic and batch count, as bits.
fn model_bits(m: &Sequential<f32>) -> Vec<u64> {
    let mut out = Vec::new();
    for l in m.layers() {
        match l {
            Layer::Dense(d) => {
                out.extend(d.weight.value.as_slice().iter().map(|v| u64::from(v.to_bits())));
                if let Some(b) = &d.bias {
                    out.extend(b.value.as_slice().iter().map(|v| u64::from(v.to_bits())));
                }
            }
            Layer::BatchNorm(bn) => {
                if let Some((g, b)) = &bn.affine {
                    out.extend(
                        g.value
                            .as_slice()
                            .iter()
                            .chain(b.value.as_slice())
                            .map(|v| u64::from(v.to_bits())),
                    );
                }
                let r = &bn.running;
                out.extend(r.mean.iter().chain(&r.var).map(|v| u64::from(v.to_bits())));
                out.push(r.batches);
            }
            Layer::LayerNorm(n) => {
                if let Some((g, b)) = &n.affine {
                    let values = g.value.as_slice().iter().chain(b.value.as_slice());
                    out.extend(values.map(|v| u64::from(v.to_bits())));
                }
            }
            Layer::Activation(_) | Layer::Dropout(_) => {}
        }
    }
    out
}

/// Everything a checkpoint holds, comparable bit for bit.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    step: usize,
    /// The loop state as JSON: with bpnet's exact `f64` encoding, equal text
    /// is equal bits (NaN included).
    state: String,
    model: Vec<u64>,
    optimizer: Vec<(String, Vec<u32>)>,
    optimizer_steps: u64,
    lr: u64,
    best: Option<Vec<u64>>,
}

/// `state` with the wall-clock seconds zeroed (they differ between runs).
fn without_seconds(state: &FitState) -> FitState {
    let mut s = state.clone();
    s.seconds = 0.0;
    s.history.epochs.iter_mut().for_each(|r| r.seconds = 0.0);
    s
}

/// The first part in which two snapshots differ, if any (short, for messages).
fn difference(got: &Snapshot, want: &Snapshot) -> Option<String> {
    let first = |a: &[u64], b: &[u64]| {
        let i = a
            .iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        format!("value {i} of {} ({:?} vs {:?})", b.len(), a.get(i), b.get(i))
    };
    if got.state != want.state {
        return Some(format!("loop state:\n{}\nvs\n{}", got.state, want.state));
    }
    if got.model != want.model {
        return Some(format!("model: {}", first(&got.model, &want.model)));
    }
    if got.best != want.best {
        let (a, b) = (
            got.best.clone().unwrap_or_default(),
            want.best.clone().unwrap_or_default(),
        );
        return Some(format!("best weights: {}", first(&a, &b)));
    }
    if got.optimizer != want.optimizer {
        let i = got.optimizer.iter().zip(&want.optimizer).position(|(a, b)| a != b);
        return Some(format!("optimizer buffer {:?}", i.map(|i| &want.optimizer[i].0)));
    }
    (got != want).then(|| {
        format!(
            "step {} / optimizer steps {} / lr bits {:#x} vs {} / {} / {:#x}",
            got.step, got.optimizer_steps, got.lr, want.step, want.optimizer_steps, want.lr
        )
    })
}

fn snapshot(t: &Trainer<f32>, state: &FitState, best: Option<&Sequential<f32>>) -> Snapshot {
    Snapshot {
        step: state.step,
        state: serde_json::to_string(&without_seconds(state)).unwrap(),
        model: model_bits(&t.model),
        optimizer: t
            .optimizer
            .export_state(&t.model)
            .into_iter()
            .map(|s| (s.name, s.values.iter().map(|v| v.to_bits()).collect()))
            .collect(),
        optimizer_steps: t.optimizer.steps(),
        lr: t.optimizer.lr().to_bits(),
        best: best.map(model_bits),
    }
}

/// Trains from `resume` (or from scratch), recording a snapshot at every
/// step; with `stop_at`, saves a checkpoint to `path` at that step and stops
/// there.
fn run(
    opt: &OptimizerConfig,
    resume: Option<&Path>,
    stop_at: Option<(usize, &Path)>,
) -> (Vec<Snapshot>, Option<bpnet::train::History>) {
    let (train, val) = (data(100, 1), data(40, 2));
    let (mut t, resume) = match resume {
        Some(path) => {
            let ckpt = load_run(path).unwrap();
            let mut t = Trainer::new(
                ckpt.file.model.clone(),
                Optimizer::new(opt.clone()).unwrap(),
                Loss::CrossEntropy,
            );
            ckpt.restore_optimizer(&mut t.optimizer, &mut t.model).unwrap();
            (t, Some(ckpt.resume))
        }
        None => (trainer(opt), None),
    };
    let mut snaps = Vec::new();
    let mut on_event = |e: Event<'_>| {
        if let Event::Checkpoint { trainer, state, best } = e {
            snaps.push(snapshot(trainer, state, best));
            if let Some((k, path)) = stop_at.filter(|(k, _)| *k == state.step) {
                save_run(path, &spec(), trainer, state, best, &serde_json::Map::new())?;
                return Err(Error::State(format!("stopped at step {k}")));
            }
        }
        Ok(())
    };
    let history = fit_resume(&mut t, &train, Some(&val), &config(), resume, &mut on_event).ok();
    (snaps, history)
}

#[test]
fn every_optimizer_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (name, opt) in optimizers() {
        let (reference, history) = run(&opt, None, None);
        let history = history.unwrap();
        let last = reference.last().unwrap().step;
        assert!(history.stopped_early, "{name}: early stopping should end the run");
        assert!(
            history.epochs.windows(2).any(|w| w[1].lr < w[0].lr),
            "{name}: the plateau schedule should reduce the rate"
        );
        // Mid-epoch (7 batches per epoch), at an epoch's end, and later, once
        // the learning rate was reduced and best weights are held.
        for k in [4, 14, last * 2 / 3] {
            let path = dir.path().join(format!("{k}.ckpt.safetensors"));
            run(&opt, None, Some((k, &path)));
            let (resumed, resumed_history) = run(&opt, Some(&path), None);
            let expected = &reference[k..];
            assert_eq!(resumed.len(), expected.len(), "{name}, resumed at step {k}");
            for (got, want) in resumed.iter().zip(expected) {
                if let Some(d) = difference(got, want) {
                    panic!("{name}, resumed at step {k}: differs at step {}: {d}", want.step);
                }
            }
            let mut got = resumed_history.unwrap();
            got.epochs.iter_mut().for_each(|r| r.seconds = 0.0);
            let mut want = history.clone();
            want.epochs.iter_mut().for_each(|r| r.seconds = 0.0);
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "{name}, resumed at step {k}: history"
            );
        }
    }
}

/// A checkpoint's state at step `k` of an Adam run, with best weights.
fn checkpoint_state(k: usize) -> (Trainer<f32>, FitState, Option<Sequential<f32>>) {
    let opt = OptimizerConfig::adam(0.02);
    let mut t = trainer(&opt);
    let (train, val) = (data(100, 1), data(40, 2));
    let mut kept = None;
    let mut on_event = |e: Event<'_>| {
        if let Event::Checkpoint { trainer, state, best } = e
            && state.step == k
        {
            kept = Some((trainer.clone(), state.clone(), best.cloned()));
            return Err(Error::State("enough".into()));
        }
        Ok(())
    };
    let _ = fit_resume(&mut t, &train, Some(&val), &config(), None, &mut on_event);
    kept.unwrap()
}

fn set_counts(m: &mut Sequential<f32>, count: u64) {
    for l in m.layers_mut() {
        if let Layer::BatchNorm(bn) = l {
            bn.running.batches = count;
        }
    }
}

#[test]
fn checkpoints_read_back_identical_for_awkward_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ckpt.safetensors");
    let (mut t, mut state, best) = checkpoint_state(30);
    let mut best = best.expect("best weights are held by step 30");
    // Batch counts beyond 2^24 (f32 would round both to even numbers).
    set_counts(&mut t.model, (1 << 40) + 3);
    set_counts(&mut best, (1 << 33) + 1);
    // Values plain serde_json reads 1 ulp off, and non-finite ones.
    t.optimizer.set_lr(ONE_ULP_OFF);
    state.seconds = ONE_ULP_OFF * 10.0;
    let r = &mut state.history.epochs[0];
    (r.train_loss, r.val_loss, r.val_metric, r.lr) = (ONE_ULP_OFF, Some(f64::NAN), Some(f64::INFINITY), ONE_ULP_OFF);
    state.history.epochs[1].train_loss = f64::NEG_INFINITY;
    save_run(&path, &spec(), &t, &state, Some(&best), &serde_json::Map::new()).unwrap();

    let ckpt = load_run(&path).unwrap();
    let mut restored = trainer(&OptimizerConfig::adam(0.02));
    restored.model = ckpt.file.model.clone();
    ckpt.restore_optimizer(&mut restored.optimizer, &mut restored.model)
        .unwrap();
    assert_eq!(restored.optimizer.lr().to_bits(), ONE_ULP_OFF.to_bits());
    let resumed_best = ckpt.resume.best.as_ref().unwrap();
    let d = difference(
        &snapshot(&restored, &ckpt.resume.state, Some(resumed_best)),
        &snapshot(&t, &state, Some(&best)),
    );
    assert!(
        d.is_none(),
        "the checkpoint reads back different: {}",
        d.unwrap_or_default()
    );
    assert_eq!(ckpt.resume.state.seconds.to_bits(), state.seconds.to_bits());
    let r = &ckpt.resume.state.history.epochs[0];
    assert_eq!(r.train_loss.to_bits(), ONE_ULP_OFF.to_bits());
    assert!(r.val_loss.unwrap().is_nan());
    assert_eq!(r.val_metric, Some(f64::INFINITY));
    assert_eq!(ckpt.resume.state.history.epochs[1].train_loss, f64::NEG_INFINITY);
    for (m, want) in [(&ckpt.file.model, (1u64 << 40) + 3), (resumed_best, (1 << 33) + 1)] {
        for l in m.layers() {
            if let Layer::BatchNorm(bn) = l {
                assert_eq!(bn.running.batches, want);
            }
        }
    }
}

#[test]
fn running_statistics_saved_for_the_divergence_guard_keep_large_counts() {
    let mut m = Sequential::<f32>::from_spec(&spec(), 1).unwrap();
    set_counts(&mut m, u64::MAX - 1);
    let before = model_bits(&m);
    let mut buf = Vec::new();
    m.save_running(&mut buf);
    set_counts(&mut m, 7);
    m.restore_running(&buf);
    assert!(model_bits(&m) == before, "running statistics not restored exactly");
    set_counts(&mut m, (1 << 24) + 1);
    m.save_running(&mut buf);
    set_counts(&mut m, 0);
    m.restore_running(&buf);
    for l in m.layers() {
        if let Layer::BatchNorm(bn) = l {
            assert_eq!(bn.running.batches, (1 << 24) + 1);
        }
    }
}

#[test]
fn checkpoints_whose_training_state_cannot_be_resumed_are_refused() {
    // A batch size of 0 divided by zero, an order entry past the rows
    // indexed outside the data (panics); a negative Adam second moment
    // trained NaN weights. Each is refused by `load_run` in one line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ckpt.safetensors");
    let (t, state, best) = checkpoint_state(30);
    save_run(&path, &spec(), &t, &state, best.as_ref(), &serde_json::Map::new()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let edit_resume = |f: &dyn Fn(&mut serde_json::Value)| {
        common::rewrite(&bytes, |meta, _| {
            let mut resume: serde_json::Value = serde_json::from_str(&meta["resume"]).unwrap();
            f(&mut resume["state"]["batches"]);
            meta.insert("resume".into(), resume.to_string());
        })
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edit_resume(&|b| b["batch_size"] = 0.into()),
            "batch size 0 for 100 rows",
        ),
        (
            edit_resume(&|b| b["batch_size"] = 101.into()),
            "batch size 101 for 100 rows",
        ),
        (
            edit_resume(&|b| b["order"][3] = 99_999.into()),
            "not a permutation of the 100 rows (row 99999)",
        ),
        (
            edit_resume(&|b| b["order"][3] = b["order"][4].clone()),
            "not a permutation of the 100 rows",
        ),
        (
            edit_resume(&|b| b["pos"] = 101.into()),
            "position 101 in an order of 100 rows",
        ),
        (
            common::rewrite(&bytes, |_, tensors| {
                let name = tensors.keys().find(|n| n.ends_with(".exp_avg_sq")).unwrap().clone();
                let (_, _, data) = tensors.get_mut(&name).unwrap();
                data[..4].copy_from_slice(&(-0.5f32).to_le_bytes());
            }),
            "exp_avg_sq holds -0.5 at index 0",
        ),
    ];
    for (damaged, says) in cases {
        std::fs::write(&path, &damaged).unwrap();
        let err = load_run(&path).and_then(|ckpt| {
            let mut restored = trainer(&OptimizerConfig::adam(0.02));
            restored.model = ckpt.file.model.clone();
            ckpt.restore_optimizer(&mut restored.optimizer, &mut restored.model)
        });
        let err = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains(says) && err.contains("c.ckpt.safetensors") && !err.contains('\n'),
            "{says}: {err}"
        );
    }
}
