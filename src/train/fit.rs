//! The training loop: seeded shuffled mini-batches, a learning-rate schedule,
//! validation after every epoch, early stopping that restores the best
//! weights, and a per-epoch history. Progress is reported through events, so
//! the caller decides how to show it (progress bar, lines, nothing).

use super::schedule::Schedule;
use super::{Trainer, evaluate};
use crate::data::{Batches, Dataset, TargetBuf};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::tensor::Matrix;
use std::time::Instant;

/// The quantity early stopping and plateau schedules watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monitor {
    /// Validation loss (lower is better).
    ValLoss,
    /// Validation accuracy for classification, R² for regression (higher is better).
    ValMetric,
}

/// Stop when the monitored value has not improved by more than `min_delta`
/// for `patience` epochs; the best epoch's weights are restored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
}

/// Settings of [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Passes over the training set (ignored when `steps` is set).
    pub epochs: usize,
    /// Total optimizer steps instead of whole epochs.
    pub steps: Option<usize>,
    /// Rows per mini-batch; `None` = the whole training set (full-batch gradient descent).
    pub batch_size: Option<usize>,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// What early stopping and the plateau schedule watch.
    pub monitor: Monitor,
    /// Early stopping (needs validation data).
    pub early_stopping: Option<EarlyStopping>,
    /// Seed of the batch order.
    pub seed: u64,
}

/// One row of the training history.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Mean training loss over the epoch's batches (training mode).
    pub train_loss: f64,
    /// Validation loss (evaluation mode), if validation data was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy (classification) or R² of the scaled targets (regression).
    pub val_metric: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall seconds since training started.
    pub seconds: f64,
}

/// What happened during training.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// One record per completed epoch.
    pub epochs: Vec<EpochRecord>,
    /// Epoch (1-based) whose weights the model holds at the end: the best
    /// monitored epoch with early stopping, else the last.
    pub best_epoch: usize,
    /// True if early stopping ended training.
    pub stopped_early: bool,
    /// Notes for the user (e.g. a dropped one-row batch).
    pub notes: Vec<String>,
}

/// Progress reports from [`fit`].
pub enum Event<'a> {
    /// After each optimizer step (1-based `step` of `total`), with the model
    /// as the step left it (gradients of this batch, layer outputs of its
    /// forward pass).
    Step {
        /// The model.
        model: &'a Sequential<f32>,
        /// Steps done.
        step: usize,
        /// Steps planned.
        total: usize,
        /// This batch's loss.
        loss: f64,
        /// Current learning rate.
        lr: f64,
    },
    /// After each epoch's validation, with the current model.
    Epoch(&'a EpochRecord, &'a Sequential<f32>),
}

impl FitConfig {
    fn validate(&self, rows: usize) -> Result<()> {
        if rows == 0 {
            return Err(Error::config("training data", "has no rows"));
        }
        if self.batch_size == Some(0) {
            return Err(Error::config("batch size", "must be at least 1"));
        }
        if self.steps == Some(0) || (self.steps.is_none() && self.epochs == 0) {
            return Err(Error::config("epochs/steps", "must be at least 1"));
        }
        self.schedule.validate()
    }
}

/// Watches the monitored value for early stopping and the plateau schedule.
struct Watch {
    best: Option<f64>,
    since_best: usize,
    since_reduce: usize,
    plateau_scale: f64,
}

impl Watch {
    /// Records `value` (higher is better after sign flip); returns whether it improved.
    fn observe(&mut self, value: f64, min_delta: f64) -> bool {
        let improved = self.best.is_none_or(|b| value > b + min_delta);
        if improved {
            self.best = Some(value);
            self.since_best = 0;
            self.since_reduce = 0;
        } else {
            self.since_best += 1;
            self.since_reduce += 1;
        }
        improved
    }
}

/// Trains `trainer` on `train`, validating on `val` after every epoch.
pub fn fit(
    trainer: &mut Trainer<f32>,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<History> {
    cfg.validate(train.len())?;
    let n = train.len();
    let batch = cfg.batch_size.unwrap_or(n).min(n);
    let min_batch = if trainer.model.has_batch_norm() { 2 } else { 1 };
    let mut history = History::default();
    if n % batch == 1 && min_batch == 2 && n > 1 {
        history.notes.push(format!(
            "note: {n} rows in batches of {batch} leave a last batch of 1 row, which batch normalization cannot use; it is dropped each epoch (a different row each time)"
        ));
    }
    let mut batches = Batches::new(n, batch, min_batch, cfg.seed);
    let per_epoch = batches.per_epoch().max(1);
    let total = cfg.steps.unwrap_or(cfg.epochs * per_epoch);
    let lr0 = trainer.optimizer.config().lr;
    let mut watch = Watch {
        best: None,
        since_best: 0,
        since_reduce: 0,
        plateau_scale: 1.0,
    };
    let mut best_model: Option<Sequential<f32>> = None;
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    let start = Instant::now();
    let (mut step, mut epoch) = (0, 0);
    while step < total {
        let mut loss_sum = 0.0;
        let mut count = 0;
        let epoch_steps = per_epoch.min(total - step);
        for _ in 0..epoch_steps {
            let lr = cfg.schedule.lr(lr0, step, total, epoch, watch.plateau_scale);
            trainer.optimizer.set_lr(lr);
            train.gather(batches.next_batch(), &mut x, &mut y);
            let loss = trainer.step(&x, y.target())? as f64;
            loss_sum += loss;
            count += 1;
            step += 1;
            on_event(Event::Step { model: &trainer.model, step, total, loss, lr })?;
        }
        epoch += 1;
        let record = validate_epoch(trainer, val, epoch, step, loss_sum / count as f64, start)?;
        on_event(Event::Epoch(&record, &trainer.model))?;
        let stop = track(&record, cfg, &mut watch, &mut history, &mut best_model, &trainer.model);
        history.epochs.push(record);
        if stop {
            history.stopped_early = true;
            break;
        }
    }
    if let Some(best) = best_model {
        trainer.model = best;
    } else {
        history.best_epoch = epoch;
    }
    Ok(history)
}

fn validate_epoch(
    trainer: &mut Trainer<f32>,
    val: Option<&Dataset>,
    epoch: usize,
    step: usize,
    train_loss: f64,
    start: Instant,
) -> Result<EpochRecord> {
    let (mut val_loss, mut val_metric) = (None, None);
    if let Some(v) = val.filter(|v| !v.is_empty()) {
        let ev = evaluate(&mut trainer.model, v, trainer.loss, 1024)?;
        val_loss = Some(ev.loss);
        val_metric = Some(match (v.labels(), &v.targets) {
            (Some(labels), _) => ev.accuracy(labels),
            (None, crate::data::Targets::Values(t)) => r2(t, &ev.outputs),
            (None, _) => 0.0,
        });
    }
    Ok(EpochRecord {
        epoch,
        step,
        train_loss,
        val_loss,
        val_metric,
        lr: trainer.optimizer.lr(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Updates the watch after an epoch: keeps the best model, applies plateau
/// reductions; returns true when early stopping should end training.
fn track(
    record: &EpochRecord,
    cfg: &FitConfig,
    watch: &mut Watch,
    history: &mut History,
    best_model: &mut Option<Sequential<f32>>,
    model: &Sequential<f32>,
) -> bool {
    let value = match cfg.monitor {
        Monitor::ValLoss => record.val_loss.map(|l| -l),
        Monitor::ValMetric => record.val_metric,
    };
    let Some(value) = value else { return false };
    let min_delta = cfg.early_stopping.map_or(0.0, |e| e.min_delta);
    if watch.observe(value, min_delta) {
        history.best_epoch = record.epoch;
        if cfg.early_stopping.is_some() {
            *best_model = Some(model.clone());
        }
    }
    if let Schedule::Plateau { factor, patience } = cfg.schedule
        && watch.since_reduce > patience
    {
        watch.plateau_scale *= factor;
        watch.since_reduce = 0;
    }
    cfg.early_stopping.is_some_and(|e| watch.since_best > e.patience)
}

/// Mean R² over outputs of `pred` against `truth` (same scaling).
fn r2(truth: &Matrix<f32>, pred: &Matrix<f32>) -> f64 {
    super::metrics::RegressionMetrics::new(&truth.cast(), &pred.cast()).r2
}

/// The loss matching a dataset's targets: cross-entropy for classes, MSE for values.
pub fn default_loss(data: &Dataset) -> Loss {
    if data.labels().is_some() {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    }
}
