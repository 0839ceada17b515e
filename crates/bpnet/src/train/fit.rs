//! The training loop: seeded shuffled mini-batches, a learning-rate schedule,
//! validation after every epoch, early stopping that restores the best
//! weights, a divergence guard, and a per-epoch history. Progress and
//! checkpoints are reported through events, so the caller decides how to show
//! and where to save them. The loop's whole state ([`FitState`]) is
//! serializable, so a run can be resumed exactly.

use super::Trainer;
use super::schedule::Schedule;
use super::source::{BatchSource, DatasetSource};
use crate::data::{Batches, Dataset, TargetBuf};
use crate::error::{Error, Result};
use crate::io::tensors::{Tensor, assign, decode, model_tensors};
use crate::layers::Mode;
use crate::loss::Loss;
use crate::model::Sequential;
use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};
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
/// for more than `patience` epochs in a row: `patience` such epochs are
/// tolerated and the run stops at the end of the next (best epoch 4 and
/// patience 3 stop after epoch 8; Keras' `EarlyStopping` would stop after
/// 7). The best epoch's weights are restored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
}

/// What to do when a batch gives a non-finite loss or gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNan {
    /// Stop with [`Error::Diverged`]; the model keeps the weights from before
    /// the bad step (running statistics included).
    Stop,
    /// Skip the batch (no update, running statistics restored) and go on;
    /// stop after 10 consecutive skipped batches.
    SkipBatch,
}

/// Settings of [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Passes over the training set (ignored when `steps` is set).
    pub epochs: usize,
    /// Total optimizer steps instead of whole epochs.
    pub steps: Option<usize>,
    /// Rows per mini-batch (at most the training rows); `None` = the whole
    /// training set (full-batch gradient descent).
    pub batch_size: Option<usize>,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// What early stopping and the plateau schedule watch.
    pub monitor: Monitor,
    /// Early stopping (needs validation data).
    pub early_stopping: Option<EarlyStopping>,
    /// Seed of the batch order.
    pub seed: u64,
    /// Divergence policy.
    pub on_nan: OnNan,
    /// Emit [`Event::Checkpoint`] every this many epochs (0 = never).
    pub checkpoint_epochs: usize,
    /// Emit [`Event::Checkpoint`] every this many steps (0 = never).
    pub checkpoint_steps: usize,
}

/// One row of the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Mean training loss over the epoch's batches (training mode).
    #[serde(with = "super::exact")]
    pub train_loss: f64,
    /// Validation loss (evaluation mode), if validation data was given.
    #[serde(with = "super::exact::opt", default)]
    pub val_loss: Option<f64>,
    /// Validation accuracy (classification) or R² of the scaled targets (regression).
    #[serde(with = "super::exact::opt", default)]
    pub val_metric: Option<f64>,
    /// Learning rate at the end of the epoch.
    #[serde(with = "super::exact")]
    pub lr: f64,
    /// Wall seconds since training started (across resumes).
    #[serde(with = "super::exact")]
    pub seconds: f64,
}

/// What happened during training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// Watches the monitored value for early stopping and the plateau schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Watch {
    #[serde(with = "super::exact::opt", default)]
    best: Option<f64>,
    since_best: usize,
    since_reduce: usize,
    #[serde(with = "super::exact")]
    plateau_scale: f64,
}

/// Everything the loop needs to continue exactly where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitState {
    /// Optimizer steps taken (including skipped batches).
    pub step: usize,
    /// Completed epochs.
    pub epoch: usize,
    /// Sum and count of the batch losses of the epoch in progress.
    #[serde(with = "super::exact::pair")]
    epoch_loss: (f64, usize),
    /// Batches skipped by the divergence guard, in a row.
    skipped_in_a_row: usize,
    /// The batch order and its random stream.
    pub batches: Batches,
    watch: Watch,
    /// The history so far.
    pub history: History,
    /// Wall seconds spent before this run segment.
    #[serde(with = "super::exact")]
    pub seconds: f64,
}

/// A saved run to continue: its loop state and, with early stopping, the best
/// weights so far.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The loop state.
    pub state: FitState,
    /// The best model so far (early stopping), if any.
    pub best: Option<Sequential<f32>>,
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
        /// Whether the batch was skipped (a non-finite loss or gradient,
        /// `OnNan::SkipBatch`): the model's gradients were zeroed and no
        /// update was made.
        skipped: bool,
    },
    /// After each epoch's validation, with the current model.
    Epoch(&'a EpochRecord, &'a Sequential<f32>),
    /// Time to save a checkpoint (per `checkpoint_epochs` / `checkpoint_steps`):
    /// everything needed to resume.
    Checkpoint {
        /// Model and optimizer.
        trainer: &'a Trainer<f32>,
        /// Loop state.
        state: &'a FitState,
        /// Best model so far under early stopping.
        best: Option<&'a Sequential<f32>>,
    },
}

/// Largest `batch * width` of one layer's activation buffer (2^30 values).
const MAX_ACTIVATIONS: usize = 1 << 30;

impl FitConfig {
    /// Checks the configuration for `rows` training rows through a network
    /// whose widest layer (inputs included) has `widest` units: at least one
    /// row, batch and step, a one-layer activation buffer of at most 2^30
    /// values, a finite non-negative early-stopping `min_delta`, a valid
    /// schedule. `fit` calls it; a caller may call it first
    /// to refuse a run before building its network.
    pub fn validate(&self, rows: usize, widest: usize) -> Result<()> {
        if rows == 0 {
            return Err(Error::config("training data", "has no rows"));
        }
        if self.batch_size == Some(0) {
            return Err(Error::config("batch size", "must be at least 1"));
        }
        let batch = self.batch_size.unwrap_or(rows).min(rows);
        if batch.saturating_mul(widest) > MAX_ACTIVATIONS {
            return Err(Error::config(
                "batch size",
                format!(
                    "{batch} rows x {widest} units exceeds {MAX_ACTIVATIONS} activations per layer; use smaller batches"
                ),
            ));
        }
        if self.steps == Some(0) || (self.steps.is_none() && self.epochs == 0) {
            return Err(Error::config("epochs/steps", "must be at least 1"));
        }
        if let Some(es) = &self.early_stopping
            && !(es.min_delta >= 0.0 && es.min_delta.is_finite())
        {
            // NaN stopped a run whose loss still fell, restoring epoch 1.
            return Err(Error::config(
                "min-delta",
                format!("{} is not a non-negative number", es.min_delta),
            ));
        }
        self.schedule.validate()
    }
}

impl Watch {
    /// Records `value` (higher is better); returns whether it improved.
    fn observe(&mut self, value: f64, min_delta: f64) -> bool {
        // A non-finite value (a NaN loss) is never the best: as the first
        // one it had made every later comparison false.
        let improved = value.is_finite() && self.best.is_none_or(|b| value > b + min_delta);
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

/// The loop state at the start of a fresh run.
fn initial_state(trainer: &Trainer<f32>, source: &dyn BatchSource, cfg: &FitConfig) -> FitState {
    let rows = source.rows();
    let batch = cfg.batch_size.unwrap_or(rows).min(rows);
    let min_batch = if trainer.model.has_batch_norm() { 2 } else { 1 };
    let mut history = History::default();
    if rows % batch == 1 && min_batch == 2 && rows > 1 {
        history.notes.push(format!(
            "note: {rows} rows in batches of {batch} leave a last batch of 1 row, which batch normalization cannot use; it is dropped each epoch (a different row each time)"
        ));
    }
    FitState {
        step: 0,
        epoch: 0,
        epoch_loss: (0.0, 0),
        skipped_in_a_row: 0,
        batches: source.start_order(batch, min_batch, cfg.seed),
        watch: Watch {
            best: None,
            since_best: 0,
            since_reduce: 0,
            plateau_scale: 1.0,
        },
        history,
        seconds: 0.0,
    }
}

/// Where the validation of every epoch's end comes from.
pub enum Validation<'a> {
    /// No validation.
    None,
    /// Rows held in memory, evaluated split over the trainer's ranks.
    Rows(&'a Dataset),
    /// A pass computed by the caller (e.g. rows streamed from a file):
    /// `(mean loss, metric)` of the model in evaluation mode, the metric
    /// being accuracy for classes and R² for values.
    Pass(&'a mut ValidationPass),
}

/// The callback of [`Validation::Pass`].
pub type ValidationPass = dyn FnMut(&Sequential<f32>) -> Result<(f64, f64)>;

impl<'a> Validation<'a> {
    /// [`Validation::Rows`] for `Some` rows (not empty), else none.
    pub fn rows(val: Option<&'a Dataset>) -> Self {
        match val.filter(|v| !v.is_empty()) {
            Some(v) => Validation::Rows(v),
            None => Validation::None,
        }
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
    fit_resume(trainer, train, val, cfg, None, on_event)
}

/// [`fit`], continuing from `resume` when given (the trainer must hold the
/// weights and optimizer state saved with it): the result is bit-identical to
/// an uninterrupted run.
pub fn fit_resume(
    trainer: &mut Trainer<f32>,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    resume: Option<Resume>,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<History> {
    fit_source(
        trainer,
        &mut DatasetSource(train),
        Validation::rows(val),
        cfg,
        resume,
        on_event,
    )
}

/// [`fit_resume`] over any [`BatchSource`] (an in-memory dataset, or a file
/// streamed chunk by chunk), validated by `val` after every epoch.
pub fn fit_source(
    trainer: &mut Trainer<f32>,
    source: &mut dyn BatchSource,
    mut val: Validation<'_>,
    cfg: &FitConfig,
    resume: Option<Resume>,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<History> {
    let widest = trainer
        .model
        .layers()
        .iter()
        .map(|l| l.out_features(0))
        .max()
        .unwrap_or(0);
    cfg.validate(source.rows(), widest.max(source.width()))?;
    if cfg.checkpoint_steps > 0 && !source.resumes_mid_epoch() {
        return Err(Error::config(
            "checkpoint steps",
            "this data source resumes only at epoch boundaries; checkpoint every N epochs instead",
        ));
    }
    let (mut s, mut best_model) = match resume {
        Some(r) => (r.state, r.best),
        None => (initial_state(trainer, source, cfg), None),
    };
    if !source.accepts(&s.batches) {
        return Err(Error::config(
            "resume",
            "the checkpoint's batch order is not one of this data (streamed and in-memory runs do not resume each other)",
        ));
    }
    let per_epoch = source.per_epoch(&s.batches).max(1);
    source.resume_at(s.step, per_epoch)?;
    let total = cfg.steps.unwrap_or(cfg.epochs * per_epoch);
    if s.step > total {
        // It trained nothing and reported the checkpoint's epochs, exit 0.
        let n = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        let asked = match cfg.steps {
            Some(k) => n(k, "step"),
            None => format!("{} ({})", n(cfg.epochs, "epoch"), n(total, "step")),
        };
        return Err(Error::config(
            "epochs/steps",
            format!(
                "the run to resume has taken {} ({} done), more than the {asked} asked for: ask for at least as many",
                n(s.step, "step"),
                n(s.epoch, "epoch")
            ),
        ));
    }
    let lr0 = trainer.optimizer.config().lr;
    let (mut x, mut y, mut saved) = (Matrix::default(), TargetBuf::default(), Vec::new());
    let mut before_last: Option<Vec<Tensor>> = None;
    let mut checked = false;
    let start = Instant::now();
    let ranks = (trainer.comm().rank(), trainer.comm().size());
    while s.step < total && !s.history.stopped_early {
        let lr = cfg.schedule.lr(lr0, s.step, total, s.epoch, s.watch.plateau_scale);
        trainer.optimizer.set_lr(lr);
        // Every rank draws the same global batch and takes its block of it.
        let rows = source.next_batch(&mut s.batches, ranks, &mut x, &mut y)?;
        let (lo, _) = crate::comm::block(rows, ranks.0, ranks.1);
        trainer.model.save_running(&mut saved);
        if s.step + 1 == total {
            // No next batch's loss checks the last update (see
            // `check_last`): the weights to keep if it fails (tensors
            // only: a clone of the model doubled a large batch's memory).
            before_last = Some(model_tensors(&trainer.model));
        }
        let loss = trainer.compute_gradients_part(&x, y.target(), lo, rows)?;
        s.step += 1;
        // The running statistics too: an overflow there leaves the outputs,
        // the loss and the gradients finite (see `non_finite_running`).
        let skipped =
            !loss.is_finite() || !trainer.model.grads_finite() || trainer.model.non_finite_running().is_some();
        if skipped {
            guard(trainer, (&saved, &x), loss, &mut s, cfg.on_nan)?;
            // A skipped last step changed nothing: its weights are the
            // earlier steps', not ones to go back to.
            before_last = None;
        } else {
            trainer.optimizer.step(&mut trainer.model)?;
            s.skipped_in_a_row = 0;
            s.epoch_loss.0 += loss as f64;
            s.epoch_loss.1 += 1;
        }
        let step = s.step;
        on_event(Event::Step {
            model: &trainer.model,
            step,
            total,
            loss: loss as f64,
            lr,
            skipped,
        })?;
        let epoch_done = step % per_epoch == 0 || step == total;
        if epoch_done {
            end_epoch(trainer, &mut val, cfg, &mut s, &mut best_model, start, on_event)?;
        }
        if step == total && best_model.is_none() {
            // Before the last checkpoint is written, which a resume would
            // take as trained (no best epoch is restored after this one).
            let what = match before_last {
                Some(_) => "the last step's weights",
                // A skipped last step changed nothing.
                None => "the trained weights",
            };
            check_last(trainer, &x, &val, before_last.take(), step, what)?;
            checked = true;
        }
        let by_steps = cfg.checkpoint_steps > 0 && step % cfg.checkpoint_steps == 0;
        // A run that `--steps` ends inside an epoch ends one there; a source
        // that resumes only at epoch boundaries keeps its last boundary's
        // checkpoint instead (one written here could not be resumed).
        let resumable = step % per_epoch == 0 || source.resumes_mid_epoch();
        let by_epochs = epoch_done && resumable && cfg.checkpoint_epochs > 0 && s.epoch % cfg.checkpoint_epochs == 0;
        if by_steps || by_epochs {
            // The checkpoint holds the time so far; `seconds` itself is put
            // back exactly (adding and subtracting would round).
            let before = s.seconds;
            s.seconds += start.elapsed().as_secs_f64();
            on_event(Event::Checkpoint {
                trainer,
                state: &s,
                best: best_model.as_ref(),
            })?;
            s.seconds = before;
        }
    }
    super::replicas_agree(
        &**trainer.comm(),
        &trainer.model,
        &format!("at the end (step {})", s.step),
    )?;
    let mut history = s.history;
    let restored = best_model.is_some();
    match best_model {
        Some(best) => trainer.model = best,
        None => history.best_epoch = s.epoch,
    }
    if !checked {
        // The best epoch's weights restored, or a run early stopping ended
        // without a best one: checked as they are, nothing to go back to.
        let what = if restored {
            "the best epoch's weights"
        } else {
            "the trained weights"
        };
        check_last(trainer, &x, &val, None, s.step, what)?;
    }
    Ok(history)
}

/// Each step's loss checks the update before it, but nothing checked the
/// last one, and an overflow there had left a model that predicted NaN or
/// inf: the model's outputs in evaluation mode (running statistics, no
/// dropout) on the last batch `x` and on validation rows held in memory
/// must be finite, or the run ends in [`Error::Diverged`], `what` naming
/// the weights; `before` (the tensors from before the last step) is put
/// back when given. Outputs, not the loss: a validation loss summed in f32
/// overflows on far-out targets while the outputs are fine.
fn check_last(
    trainer: &mut Trainer<f32>,
    x: &Matrix<f32>,
    val: &Validation<'_>,
    before: Option<Vec<Tensor>>,
    step: usize,
    what: &str,
) -> Result<()> {
    let comm = trainer.comm().clone();
    let mut bad = [0.0f64; 2];
    if x.rows() > 0 && !finite_where_inputs_are(x, trainer.model.forward(x, Mode::Eval)?) {
        bad[0] = 1.0;
    }
    if let Validation::Rows(v) = val
        && !v.is_empty()
    {
        let ev = super::evaluate_split(&mut trainer.model, v, trainer.loss, 1024, &*comm)?;
        bad[1] = f64::from(u8::from(!finite_where_inputs_are(&v.features, &ev.outputs)));
    }
    // Each rank holds its block of the batch: agreed over the ranks.
    comm.all_reduce_f64(&mut bad)?;
    let rows = match bad {
        [0.0, 0.0] => return Ok(()),
        [_, 0.0] => "the last batch",
        _ => "the validation rows",
    };
    let mut detail = format!("{what} give non-finite outputs on {rows} in evaluation mode");
    if let Some(tensors) = before {
        for t in tensors {
            let values = decode(&t.name, t.dtype, &t.bytes).map_err(Error::State)?;
            assign(&mut trainer.model, &t.name, values).map_err(Error::State)?;
        }
        detail += crate::error::DIVERGED_KEPT;
    }
    Err(Error::Diverged { step, detail })
}

/// Whether every row of `out` whose input row in `x` is finite is finite
/// (a NaN in the data gives a NaN output from any weights: the library
/// takes such rows, which `OnNan::SkipBatch` skips).
fn finite_where_inputs_are(x: &Matrix<f32>, out: &Matrix<f32>) -> bool {
    use crate::model::all_finite;
    all_finite(out.as_slice()) || (0..x.rows()).all(|r| !all_finite(x.row(r)) || all_finite(out.row(r)))
}

/// Handles a non-finite loss or gradient: restores the running statistics the
/// bad forward pass changed (`saved`), then stops or skips per `policy`.
///
/// A non-finite loss of the batch `x` whose inputs are all finite comes
/// from the weights themselves: an earlier update took them past the
/// divergence, and the weights kept (those from before this step) give
/// it too. The error says so: it had called them the last good weights.
fn guard(
    trainer: &mut Trainer<f32>,
    (saved, x): (&[f32], &Matrix<f32>),
    loss: f32,
    s: &mut FitState,
    policy: OnNan,
) -> Result<()> {
    let mut detail = trainer
        .model
        .find_non_finite(loss)
        .unwrap_or_else(|| "a non-finite value".into());
    if !loss.is_finite() && crate::model::all_finite(x.as_slice()) {
        detail += ", from finite inputs: an earlier update went wrong, and the weights kept already give it";
    }
    trainer.model.restore_running(saved);
    trainer.model.zero_grad();
    s.skipped_in_a_row += 1;
    if policy == OnNan::Stop || s.skipped_in_a_row > 10 {
        let detail = if policy == OnNan::Stop {
            format!("{detail}{}", crate::error::DIVERGED_KEPT)
        } else {
            format!("{detail} (10 batches in a row skipped){}", crate::error::DIVERGED_KEPT)
        };
        return Err(Error::Diverged { step: s.step, detail });
    }
    s.history
        .notes
        .push(format!("note: skipped the batch of step {}: {detail}", s.step));
    Ok(())
}

/// Validation, history, early stopping and the plateau schedule at the end of an epoch.
fn end_epoch(
    trainer: &mut Trainer<f32>,
    val: &mut Validation<'_>,
    cfg: &FitConfig,
    s: &mut FitState,
    best_model: &mut Option<Sequential<f32>>,
    start: Instant,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<()> {
    s.epoch += 1;
    let (sum, count) = std::mem::take(&mut s.epoch_loss);
    let train_loss = if count == 0 { f64::NAN } else { sum / count as f64 };
    let record = validate_epoch(
        trainer,
        val,
        s.epoch,
        s.step,
        train_loss,
        s.seconds + start.elapsed().as_secs_f64(),
    )?;
    super::replicas_agree(&**trainer.comm(), &trainer.model, &format!("after step {}", s.step))?;
    on_event(Event::Epoch(&record, &trainer.model))?;
    let stop = track(&record, cfg, s, best_model, &trainer.model);
    s.history.epochs.push(record);
    s.history.stopped_early = stop;
    Ok(())
}

fn validate_epoch(
    trainer: &mut Trainer<f32>,
    val: &mut Validation<'_>,
    epoch: usize,
    step: usize,
    train_loss: f64,
    seconds: f64,
) -> Result<EpochRecord> {
    let (mut val_loss, mut val_metric) = (None, None);
    match val {
        Validation::None => {}
        Validation::Rows(v) if v.is_empty() => {}
        Validation::Rows(v) => {
            let comm = trainer.comm().clone();
            let ev = super::evaluate_split(&mut trainer.model, v, trainer.loss, 1024, &*comm)?;
            val_loss = Some(ev.loss);
            val_metric = Some(match (v.labels(), &v.targets) {
                (Some(labels), _) => ev.accuracy(labels)?,
                (None, crate::data::Targets::Values(t)) => r2(t, &ev.outputs),
                (None, _) => 0.0,
            });
        }
        Validation::Pass(pass) => {
            let (loss, metric) = pass(&trainer.model)?;
            val_loss = Some(loss);
            val_metric = Some(metric);
        }
    }
    let lr = trainer.optimizer.lr();
    Ok(EpochRecord {
        epoch,
        step,
        train_loss,
        val_loss,
        val_metric,
        lr,
        seconds,
    })
}

/// Updates the watch after an epoch: keeps the best model, applies plateau
/// reductions; returns true when early stopping should end training.
fn track(
    record: &EpochRecord,
    cfg: &FitConfig,
    s: &mut FitState,
    best_model: &mut Option<Sequential<f32>>,
    model: &Sequential<f32>,
) -> bool {
    let value = match cfg.monitor {
        Monitor::ValLoss => record.val_loss.map(|l| -l),
        Monitor::ValMetric => record.val_metric,
    };
    let Some(value) = value else { return false };
    let min_delta = cfg.early_stopping.map_or(0.0, |e| e.min_delta);
    if s.watch.observe(value, min_delta) {
        s.history.best_epoch = record.epoch;
        if cfg.early_stopping.is_some() {
            *best_model = Some(model.clone());
        }
    }
    if let Schedule::Plateau { factor, patience } = cfg.schedule
        && s.watch.since_reduce > patience
    {
        s.watch.plateau_scale *= factor;
        s.watch.since_reduce = 0;
    }
    cfg.early_stopping.is_some_and(|e| s.watch.since_best > e.patience)
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

#[cfg(test)]
mod tests {
    use super::Watch;

    /// A NaN first value had become the best, and no later value compared
    /// greater: early stopping kept epoch 1 whatever followed.
    #[test]
    fn a_non_finite_value_is_never_the_best() {
        let mut w = Watch {
            best: None,
            since_best: 0,
            since_reduce: 0,
            plateau_scale: 1.0,
        };
        assert!(!w.observe(f64::NAN, 0.0));
        assert!(!w.observe(f64::NEG_INFINITY, 0.0));
        assert_eq!((w.best, w.since_best), (None, 2));
        assert!(w.observe(-3.0, 0.0));
        assert!(!w.observe(f64::NAN, 0.0));
        assert!(w.observe(-1.0, 0.0));
        assert_eq!((w.best, w.since_best), (Some(-1.0), 0));
    }
}
