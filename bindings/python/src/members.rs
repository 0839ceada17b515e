//! The further networks of an estimator that averages several (the
//! `ensemble` parameter, `bpnet train --ensemble K`): member k (k ≥ 1) is
//! trained on the same rows as member 0 from seed `seed + k`, exactly as
//! `bpnet train` trains it, and predictions are averaged by [`Combine`]
//! (probabilities for classifiers, values for regression).

use crate::train::{build, fit_checked_named, new_trainer};
use bpnet::io::ensemble_members;
pub use bpnet::workflow::member_config;
use bpnet::workflow::{Pipeline, Prepared, TrainConfig, fit_config, name_member, optimizer};
use bpnet::{Combine, Result, Sequential, Trainer};
use pyo3::prelude::*;
use std::path::Path;

/// The averaging of a network trained with `trainer`'s loss.
pub fn combine_of(trainer: &Trainer<f32>) -> Combine {
    Combine::for_loss(trainer.loss, trainer.model.out_features().unwrap_or(1))
}

/// Members 1..`k` of an ensemble on `data` (member 0 is trained by the
/// caller with `cfg.seed`), each from seed `cfg.seed + k`, with the GIL
/// released while each trains.
pub fn train_others(
    py: Python<'_>,
    cfg: &TrainConfig,
    k: usize,
    data: &Prepared,
    bn: (f64, f64),
) -> PyResult<Vec<Trainer<f32>>> {
    let mut others = Vec::with_capacity(k.saturating_sub(1));
    for m in 1..k {
        let member_cfg = member_config(cfg, m);
        let (_, mut trainer) = build(&member_cfg, data, bn.0, bn.1).map_err(crate::to_py)?;
        let full = optimizer(&member_cfg).map_err(crate::to_py)?.1;
        let fit_cfg = fit_config(&member_cfg, full, data.val.is_some()).map_err(crate::to_py)?;
        let name = |e| name_member(e, m, k, member_cfg.seed);
        fit_checked_named(py, &mut trainer, &data.train, data.val.as_ref(), &fit_cfg, name)?;
        others.push(trainer);
    }
    Ok(others)
}

/// The members of a loaded model file as trainers (a fresh optimizer each,
/// as a loaded single network gets), and how they combine (the file's
/// averaging; for a single network, the one its loss implies).
pub fn load_members(
    file: &bpnet::io::ModelFile,
    path: &Path,
    cfg: &TrainConfig,
    pipeline: &Pipeline,
) -> Result<(Vec<Trainer<f32>>, Combine)> {
    let (members, combine) = ensemble_members(file, path, Combine::Mean)?;
    let trainers = members
        .into_iter()
        .map(|m| new_trainer(cfg, m, pipeline))
        .collect::<Result<Vec<_>>>()?;
    let combine = match trainers.as_slice() {
        [single] => combine_of(single),
        _ => combine,
    };
    Ok((trainers, combine))
}

/// The members' networks in order: member 0, then the others.
pub fn networks<'a>(first: &'a Trainer<f32>, others: &'a [Trainer<f32>]) -> impl Iterator<Item = &'a Sequential<f32>> {
    std::iter::once(&first.model).chain(others.iter().map(|t| &t.model))
}
