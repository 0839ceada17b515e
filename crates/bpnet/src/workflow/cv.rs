//! k-fold cross-validation of a training configuration on a CSV table:
//! stratified by class for classification, seeded; each fold's model is
//! trained exactly as `bpnet train` would train it on the other folds'
//! rows (preprocessing fitted on them, `--val-split` taken from them; the
//! same number of ensemble members; `--lr auto`'s range test run on them)
//! and scored on the held-out fold.

use super::config::{TrainConfig, auto_ensemble};
use super::folds::{kfold, mean_sd};
use super::lr_auto::resolve_lr_auto;
use super::metrics::{HeldOut, ensemble_metrics_held_out, metrics_held_out};
use super::run::{combine_for, train_further_members, train_prepared};
use super::setup::optimizer;
use super::table::{TableSource, open_table, prepare_rows};
use crate::train::Event;
use crate::{EnsembleNet, Error, Result};
use serde_json::{Value, json};

/// Seed offset of the fold assignment (distinct from the split seeds).
const FOLD_SEED: u64 = 0xC0_F01D;

/// One fold's result.
#[derive(Debug, Clone)]
pub struct FoldScore {
    /// Fold number, 1-based.
    pub fold: usize,
    /// Rows the fold's model trained on (validation rows included).
    pub train_rows: usize,
    /// Of those, the rows its gradient steps used (those left after its
    /// validation split): a batch size above them takes them all at once.
    pub fit_rows: usize,
    /// Held-out rows it was scored on.
    pub test_rows: usize,
    /// The score: accuracy (classification) or R² (regression), higher is better.
    pub score: f64,
    /// Epochs trained.
    pub epochs: usize,
    /// Networks averaged (the ensemble's members; 1 for one network).
    pub members: usize,
    /// The learning rate trained with (the optimizer's default when none
    /// is given; found on the fold's training rows with `--lr auto`).
    pub lr: f64,
    /// Every metric on the held-out fold, as JSON.
    pub metrics: Value,
    /// The model's predictions on the held-out rows, in the fold's order.
    pub held_out: HeldOut,
}

/// Scores of every fold and their mean and sample standard deviation.
#[derive(Debug, Clone)]
pub struct CvReport {
    /// `accuracy` or `r2`.
    pub metric: &'static str,
    /// Per fold, in order.
    pub folds: Vec<FoldScore>,
    /// Mean score over folds.
    pub mean: f64,
    /// Sample standard deviation over folds.
    pub sd: f64,
}

impl CvReport {
    /// `accuracy 0.9533 ± 0.0306 over 5 folds` (R² likewise).
    pub fn summary(&self) -> String {
        format!(
            "{} {:.4} ± {:.4} over {} folds",
            self.metric,
            self.mean,
            self.sd,
            self.folds.len()
        )
    }

    /// Everything as JSON.
    pub fn json(&self) -> Value {
        let folds: Vec<Value> = self
            .folds
            .iter()
            .map(|f| {
                json!({"fold": f.fold, "train_rows": f.train_rows, "fit_rows": f.fit_rows, "test_rows": f.test_rows,
                       "score": f.score, "epochs": f.epochs, "members": f.members, "lr": f.lr, "metrics": f.metrics})
            })
            .collect();
        json!({"k": self.folds.len(), "metric": self.metric, "mean": self.mean, "sd": self.sd, "folds": folds})
    }
}

/// Every class needs a training row in each fold: the folds deal a
/// class's rows to consecutive folds, so a class of two rows or more keeps
/// one in the training rows of every fold, but a class of one row is
/// missing from those of the fold that holds it out, which then cannot
/// score it.
fn check_class_sizes<S: AsRef<str>>(strata: &[S], k: usize) -> Result<()> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for s in strata {
        *counts.entry(s.as_ref()).or_default() += 1;
    }
    match counts.iter().find(|(_, n)| **n == 1) {
        Some((class, _)) => Err(Error::config(
            "--cv",
            format!(
                "{k} folds, but class '{}' has one training row, which the fold that holds it out cannot learn: remove the row or merge the class",
                crate::data::csv::short_cell(class)
            ),
        )),
        None => Ok(()),
    }
}

/// Regression folds are scored by R², which one row does not define: `k`
/// folds of `n` rows must hold two each (one-row folds had scored R² = 0
/// each, a mean of 0 for any model).
fn check_fold_rows(n: usize, k: usize) -> Result<()> {
    match k >= 2 && k <= n && n < 2 * k {
        true => Err(Error::config(
            "--cv",
            match n {
                0..4 => format!(
                    "{k} folds of {n} rows leave folds of one row, whose R² is undefined: cross-validation needs 4 rows"
                ),
                _ => format!(
                    "{k} folds of {n} rows leave folds of one row, whose R² is undefined: use --cv {} or fewer",
                    n / 2
                ),
            },
        )),
        false => Ok(()),
    }
}

/// The `k` folds of the training rows of `src` (seeded by `seed`),
/// stratified by the first target column for classification.
pub fn table_folds(src: &TableSource, k: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    src.check_targets_present(&src.rows)?;
    let strata = src.strata(&src.rows);
    match &strata {
        Some(s) => check_class_sizes(s, k)?,
        None => check_fold_rows(src.rows.len(), k)?,
    }
    let folds = kfold(src.rows.len(), strata.as_deref(), k, seed ^ FOLD_SEED)?;
    Ok(folds
        .into_iter()
        .map(|f| f.into_iter().map(|i| src.rows[i]).collect())
        .collect())
}

/// Trains `cfg` on the rows outside fold `index` of `folds` and scores it on the fold.
pub fn run_fold(cfg: &TrainConfig, src: &TableSource, folds: &[Vec<usize>], index: usize) -> Result<FoldScore> {
    run_fold_with(cfg, src, folds, index, &mut |_| Ok(()))
}

/// [`run_fold`], with `on_event` seeing the training's events (an error it
/// returns stops the training and is this call's error). One network,
/// whatever `cfg.ensemble` says (the tuner scores one network a trial).
pub fn run_fold_with(
    cfg: &TrainConfig,
    src: &TableSource,
    folds: &[Vec<usize>],
    index: usize,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<FoldScore> {
    run_fold_members(cfg, src, folds, index, 1, on_event)
}

/// [`run_fold_with`] for an ensemble of `members` networks (seeds
/// `cfg.seed`.., as `bpnet train --ensemble` trains them; 0: as many as
/// [`auto_ensemble`] gives for the fold's training rows after its
/// validation split, as `bpnet train` counts them), scored by its averaged
/// prediction; `on_event` sees member 0's events.
pub fn run_fold_members(
    cfg: &TrainConfig,
    src: &TableSource,
    folds: &[Vec<usize>],
    index: usize,
    members: usize,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<FoldScore> {
    let held = &folds[index];
    let train_rows: Vec<usize> = folds
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != index)
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    let mut sorted = train_rows;
    sorted.sort_unstable();
    let data = prepare_rows(cfg, src, &sorted, Some(held))?;
    let members = auto_ensemble(members, true, data.train.len(), true);
    let (cfg, _) = resolve_lr_auto(cfg, &data)?;
    let cfg = &cfg;
    let trained = train_prepared(cfg, &data, on_event)?;
    let test = data
        .test
        .as_ref()
        .ok_or_else(|| Error::config("cv", "internal: a fold without held-out rows"))?;
    let loss = trained.trainer.loss;
    let (m, held_out) = if members > 1 {
        let mut nets = vec![trained.trainer.model];
        nets.extend(train_further_members(cfg, &data, members, &mut |_, _| {})?);
        let net = EnsembleNet::new(&nets, combine_for(&data.train, &nets[0]))?;
        ensemble_metrics_held_out(&net, loss, test, &data.pipeline)?
    } else {
        metrics_held_out(&trained.trainer.model, loss, test, &data.pipeline)?
    };
    let key = if src.is_classification() { "accuracy" } else { "r2" };
    Ok(FoldScore {
        fold: index + 1,
        train_rows: sorted.len(),
        fit_rows: data.train.len(),
        test_rows: held.len(),
        score: m.json[key].as_f64().unwrap_or(f64::NAN),
        epochs: trained.history.epochs.len(),
        members,
        lr: optimizer(cfg)?.0.lr,
        metrics: m.json,
        held_out,
    })
}

/// k-fold cross-validation of `cfg` on its table; `on_fold` sees each fold
/// as it finishes. Each fold trains the ensemble `bpnet train` would train
/// on its rows in one process ([`run_fold_members`] with `cfg.ensemble`).
pub fn cross_validate(cfg: &TrainConfig, k: usize, on_fold: &mut dyn FnMut(&FoldScore)) -> Result<CvReport> {
    let src = open_table(cfg)?;
    let folds = table_folds(&src, k, cfg.seed)?;
    let mut scores = Vec::with_capacity(k);
    for i in 0..k {
        let f = run_fold_members(cfg, &src, &folds, i, cfg.ensemble, &mut |_| Ok(()))?;
        on_fold(&f);
        scores.push(f);
    }
    let values: Vec<f64> = scores.iter().map(|f| f.score).collect();
    let (mean, sd) = mean_sd(&values);
    Ok(CvReport {
        metric: if src.is_classification() { "accuracy" } else { "r2" },
        folds: scores,
        mean,
        sd,
    })
}
