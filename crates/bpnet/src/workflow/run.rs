//! One training run from a configuration and prepared data, without files:
//! what `bpnet train` does between loading and saving, for cross-validation,
//! ensembles and the tuner; and the ensemble `bpnet train` trains.

use super::config::{TrainConfig, auto_ensemble};
use super::data::{Pipeline, Prepared};
use super::setup::{fit_config, model_spec, optimizer};
use crate::data::Dataset;
use crate::train::{Event, History, default_loss, fit_resume};
use crate::{Combine, Error, ModelSpec, Optimizer, Result, Sequential, Trainer};
use std::sync::Mutex;

/// A trained network: its architecture, the trainer (model, optimizer,
/// loss) and the history.
pub struct Trained {
    /// The architecture.
    pub spec: ModelSpec,
    /// The model (best epoch's weights under early stopping) and its optimizer.
    pub trainer: Trainer<f32>,
    /// Per-epoch records.
    pub history: History,
}

/// Builds the network of `cfg` (weights seeded by `cfg.seed`) and trains it
/// on `data.train`, validating on `data.val`; `on_event` sees every event.
pub fn train_prepared(
    cfg: &TrainConfig,
    data: &Prepared,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<Trained> {
    let (opt, full_batch) = optimizer(cfg)?;
    let spec = model_spec(cfg, data.train.features.cols(), data.train.outputs())?;
    let model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
    let mut trainer = Trainer::new(model, Optimizer::new(opt)?, default_loss(&data.train));
    super::setup::apply_label_smoothing(&mut trainer, cfg)?;
    let fit_cfg = fit_config(cfg, full_batch, data.val.is_some())?;
    let history = fit_resume(&mut trainer, &data.train, data.val.as_ref(), &fit_cfg, None, on_event)?;
    Ok(Trained { spec, trainer, history })
}

/// An ensemble trained as `bpnet train` trains one: member 0 from
/// `cfg.seed`, member k from `cfg.seed + k`, all on the same rows.
pub struct TrainedEnsemble {
    /// The architecture every member shares.
    pub spec: ModelSpec,
    /// The members' networks, member 0 first.
    pub members: Vec<Sequential<f32>>,
    /// How their predictions are averaged (see [`crate::EnsembleNet`]).
    pub combine: Combine,
    /// Member 0's per-epoch records.
    pub history: History,
}

/// How an ensemble of `model`s trained on `train` averages: softmax or
/// sigmoid probabilities for classifiers, values for regression.
pub fn combine_for(train: &Dataset, model: &Sequential<f32>) -> Combine {
    Combine::for_loss(default_loss(train), model.out_features().unwrap_or(1))
}

/// Members `1..k` of an ensemble on `data` (member 0 being trained from
/// `cfg.seed`), member `m` from seed `cfg.seed + m`; `on_member(m, &trained)`
/// sees each once all have finished, in member order.
///
/// The members train at once, one per part of a
/// [`crate::parallel::run_coarse`] job: with a team of threads each member trains on one thread (the
/// products inside a part run on that thread alone), so 4 further members
/// on 2 threads take about the time of 2. A training run gives the same
/// bits on any thread count (see [`crate::parallel`]), so the members are
/// those a loop of [`train_prepared`] calls gives. The first error, in
/// member order, is returned ([`train_further_members_kept`] keeps the
/// members that trained).
pub fn train_further_members(
    cfg: &TrainConfig,
    data: &Prepared,
    k: usize,
    on_member: &mut dyn FnMut(usize, &Trained),
) -> Result<Vec<Sequential<f32>>> {
    match train_further_members_kept(cfg, data, k, on_member) {
        (members, None) => Ok(members),
        (_, Some(e)) => Err(e),
    }
}

/// [`train_further_members`], returning the members that trained (in
/// member order; `on_member` sees each) together with the first error in
/// member order. A run that fails does not stop the others. An
/// [`Error::Diverged`] names the member and its seed:
/// `ensemble member 3/5 (seed 44): ...`.
pub fn train_further_members_kept(
    cfg: &TrainConfig,
    data: &Prepared,
    k: usize,
    on_member: &mut dyn FnMut(usize, &Trained),
) -> (Vec<Sequential<f32>>, Option<Error>) {
    let cfgs: Vec<TrainConfig> = (1..k.max(1)).map(|m| member_config(cfg, m)).collect();
    let mut members = Vec::with_capacity(cfgs.len());
    let mut first_error = None;
    for (i, trained) in train_each(&cfgs, data).into_iter().enumerate() {
        match trained {
            Ok(trained) => {
                on_member(i + 1, &trained);
                members.push(trained.trainer.model);
            }
            Err(e) if first_error.is_none() => first_error = Some(name_member(e, i + 1, k, cfgs[i].seed)),
            Err(_) => {}
        }
    }
    (members, first_error)
}

/// A divergence of member `m` (0-based) of `k`, trained from `seed`: its
/// detail prefixed by the member and its seed, `ensemble member 3/5 (seed
/// 44): ...`; any other error as it is.
pub fn name_member(e: Error, m: usize, k: usize, seed: u64) -> Error {
    match e {
        Error::Diverged { step, detail } => Error::Diverged {
            step,
            detail: format!("ensemble member {}/{k} (seed {seed}): {detail}", m + 1),
        },
        e => e,
    }
}

/// `cfg` with ensemble member `m`'s seed, `cfg.seed + m` (member 0 is `cfg`).
pub fn member_config(cfg: &TrainConfig, m: usize) -> TrainConfig {
    TrainConfig {
        seed: cfg.seed.wrapping_add(m as u64),
        ..cfg.clone()
    }
}

/// Each of `cfgs` trained on `data` as [`train_prepared`] trains it, at
/// once: one per part of a [`crate::parallel::run_coarse`] job, so each
/// runs on one thread of the team (the results are those of a loop of
/// [`train_prepared`] calls, on any thread count). Results in the order of
/// `cfgs`; a run that fails does not stop the others.
pub fn train_each(cfgs: &[TrainConfig], data: &Prepared) -> Vec<Result<Trained>> {
    let slots: Vec<Mutex<Option<Result<Trained>>>> = cfgs.iter().map(|_| Mutex::new(None)).collect();
    crate::parallel::run_coarse(cfgs.len(), &|i| {
        let trained = train_prepared(&cfgs[i], data, &mut |_| Ok(()));
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(trained);
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .ok_or_else(|| Error::State(format!("training run {} did not finish", i + 1)))?
        })
        .collect()
}

/// Trains the ensemble `bpnet train` would train on `data` in one process:
/// [`auto_ensemble`] members (5 on a table of at most 50,000 training rows
/// when `cfg.ensemble` is 0, the default; else `cfg.ensemble`, or 1);
/// `on_event` sees member 0's training events.
pub fn train_ensemble(
    cfg: &TrainConfig,
    data: &Prepared,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<TrainedEnsemble> {
    let table = matches!(data.pipeline, Pipeline::Table { .. });
    let k = auto_ensemble(cfg.ensemble, table, data.train.len(), true);
    let first = train_prepared(cfg, data, on_event)?;
    let combine = combine_for(&data.train, &first.trainer.model);
    let mut members = vec![first.trainer.model];
    members.extend(train_further_members(cfg, data, k, &mut |_, _| {})?);
    Ok(TrainedEnsemble {
        spec: first.spec,
        members,
        combine,
        history: first.history,
    })
}
