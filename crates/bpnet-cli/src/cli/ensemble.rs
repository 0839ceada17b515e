//! `bpnet train --ensemble K`: the further members of an ensemble, their
//! averaged test metrics and the one model file that holds them all; and
//! the loading of any model file (single or ensemble) for eval, predict
//! and export.

use bpnet::data::Dataset;
use bpnet::io::{ModelFile, ensemble_members, save_ensemble};
use bpnet::train::default_loss;
use bpnet::workflow::{
    Pipeline, Prepared, TestMetrics, TrainConfig, combine_for, ensemble_metrics, train_further_members_kept,
};
use bpnet::{Combine, EnsembleNet, Error, ModelSpec, Result, Sequential};
use serde::Serialize;
use std::path::Path;

/// Member 0 (`first`, trained with `cfg.seed`) and members 1..K trained on
/// the same rows from seeds `cfg.seed + k`
/// ([`bpnet::workflow::train_further_members_kept`]), each reported unless
/// `quiet`. Where a member failed: the members that trained, and its error.
pub fn train_members(
    first: Sequential<f32>,
    cfg: &TrainConfig,
    data: &Prepared,
    quiet: bool,
) -> (Vec<Sequential<f32>>, Option<Error>) {
    let mut members = vec![first];
    let mut report = |k: usize, trained: &bpnet::workflow::Trained| {
        if !quiet {
            println!(
                "ensemble member {}/{} (seed {}): {} epochs, best epoch {}",
                k + 1,
                cfg.ensemble,
                cfg.seed.wrapping_add(k as u64),
                trained.history.epochs.len(),
                trained.history.best_epoch
            );
        }
    };
    let (further, error) = train_further_members_kept(cfg, data, cfg.ensemble, &mut report);
    members.extend(further);
    if cfg.ensemble > 1 && !quiet && error.is_none() {
        println!(
            "ensemble of {} networks: predictions averaged ({})",
            members.len(),
            combine_words(combine_for(&data.train, &members[0]))
        );
    }
    (members, error)
}

fn combine_words(c: Combine) -> &'static str {
    match c {
        Combine::Softmax => "softmax probabilities",
        Combine::Sigmoid => "sigmoid probabilities",
        Combine::Mean => "values",
    }
}

/// Test metrics of the members' averaged prediction (one member: its own).
pub fn test_metrics(members: &[Sequential<f32>], test: &Dataset, pipeline: &Pipeline) -> Result<TestMetrics> {
    let net = EnsembleNet::new(members, combine_for(test, &members[0]))?;
    ensemble_metrics(&net, default_loss(test), test, pipeline)
}

/// Writes the members as one model file.
pub fn save<M: Serialize + ?Sized>(
    out: &Path,
    spec: &ModelSpec,
    members: &[Sequential<f32>],
    train: &Dataset,
    meta: &M,
) -> Result<()> {
    save_ensemble(out, spec, members, combine_for(train, &members[0]), meta)
}

/// The members of a loaded file and how they combine (a single model: itself).
pub fn members_of(file: &ModelFile, path: &Path) -> Result<(Vec<Sequential<f32>>, Combine)> {
    ensemble_members(file, path, Combine::Mean)
}

/// The averaging network of a loaded file.
pub fn net_of(file: &ModelFile, path: &Path) -> Result<EnsembleNet> {
    let (members, combine) = members_of(file, path)?;
    EnsembleNet::new(&members, combine)
}
