//! The training step, evaluation, and the training loop with its schedules,
//! early stopping, history and metrics.
//!
//! [`Trainer::step`] = zero gradients, forward in training mode, loss and its
//! gradient, backward through every layer, optimizer update. Every buffer is
//! owned by a layer, the loss or the optimizer and sized on first use, so
//! after the first step a step allocates nothing on the heap.

pub mod diagnostics;
mod distributed;
pub(crate) mod exact;
mod fit;
pub mod lr_find;
pub mod metrics;
pub mod schedule;
mod source;

pub use distributed::{
    BnSyncMode, DIGEST_START, OWN_SUM, digest_f32, evaluate_fused_split, evaluate_split, replicas_agree,
};
pub use fit::{
    EarlyStopping, EpochRecord, Event, FitConfig, FitState, History, Monitor, OnNan, Resume, Validation, default_loss,
    fit, fit_resume, fit_source,
};
pub use source::{BatchSource, DatasetSource, batches_per_epoch};

use crate::data::{Dataset, TargetBuf};
use crate::error::{Error, Result};
use crate::infer::InferenceNet;
use crate::layers::Mode;
use crate::loss::{Loss, Target};
use crate::model::Sequential;
use crate::optim::Optimizer;
use crate::scalar::Scalar;
use crate::tensor::{Matrix, Out};

/// A model with its optimizer and loss.
#[derive(Debug, Clone)]
pub struct Trainer<T> {
    /// The network being trained.
    pub model: Sequential<T>,
    /// Its optimizer.
    pub optimizer: Optimizer<T>,
    /// The loss minimized.
    pub loss: Loss,
    /// Label smoothing of a cross-entropy loss, in `[0, 1)` (0: none; see
    /// [`Loss::forward_backward_smoothed`]). Training steps use it; the
    /// losses of evaluation do not. [`fit`] sets it from its configuration.
    pub label_smoothing: f64,
    dlogits: Matrix<T>,
    /// The ranks training together (default: this process alone).
    comm: std::sync::Arc<dyn crate::comm::Comm>,
    /// Flat buffer of the small gradients and the loss, summed over the ranks.
    flat: Vec<T>,
    /// One spare per large gradient, the target of its sum over the ranks.
    spares: Vec<Matrix<T>>,
}

impl<T: Scalar> Trainer<T> {
    /// Binds a model, an optimizer and a loss.
    pub fn new(model: Sequential<T>, optimizer: Optimizer<T>, loss: Loss) -> Self {
        Trainer {
            model,
            optimizer,
            loss,
            label_smoothing: 0.0,
            dlogits: Matrix::default(),
            comm: crate::comm::single(),
            flat: Vec::new(),
            spares: Vec::new(),
        }
    }

    /// One training step on the batch `x: [batch, in]`; returns the batch
    /// loss before the update.
    pub fn step(&mut self, x: &Matrix<T>, target: Target<'_, T>) -> Result<T> {
        let loss = self.compute_gradients(x, target)?;
        self.optimizer.step(&mut self.model)?;
        Ok(loss)
    }

    /// Forward (training mode), loss and backward; leaves the gradients in
    /// the parameters (set, not added to: [`Sequential::backward_with`]).
    /// Returns the loss.
    pub fn compute_gradients(&mut self, x: &Matrix<T>, target: Target<'_, T>) -> Result<T> {
        // A refused target leaves the model untouched (the forward pass
        // moves the running statistics and draws dropout masks).
        if x.rows() == 0 {
            return Err(Error::shape("loss", "a batch of at least one row", x));
        }
        let outputs = self.model.out_features().unwrap_or(0);
        self.loss
            .check_target(&target, x.rows(), outputs, self.label_smoothing)?;
        let out = self.model.forward(x, Mode::Train)?;
        let rows = out.rows();
        let loss = self
            .loss
            .forward_backward_smoothed(out, target, &mut self.dlogits, rows, self.label_smoothing)?;
        self.model.backward_with(x, &self.dlogits, false, Out::Replace)?;
        Ok(loss)
    }
}

/// Index of the largest value in `row` (the first on ties).
pub fn argmax<T: Scalar>(row: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Model outputs in evaluation mode over a dataset, and the mean loss.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Mean loss over all rows.
    pub loss: f64,
    /// Raw outputs `[rows, outputs]` (logits, or scaled regression values).
    pub outputs: Matrix<f32>,
}

impl Evaluation {
    /// Predicted class of each row (argmax of the outputs).
    pub fn classes(&self) -> Vec<usize> {
        (0..self.outputs.rows()).map(|r| argmax(self.outputs.row(r))).collect()
    }

    /// Fraction of rows whose predicted class equals `labels` (one label
    /// per row: other counts are an error; they were cut to the shorter and
    /// divided by the labels, 1.0 for 2 right labels of 4 rows).
    pub fn accuracy(&self, labels: &[usize]) -> Result<f64> {
        if labels.len() != self.outputs.rows() {
            return Err(Error::shape("accuracy labels", self.outputs.rows(), labels.len()));
        }
        let hits = self.classes().iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(hits as f64 / labels.len().max(1) as f64)
    }
}

/// Runs `model` in evaluation mode over `data` in chunks of `chunk` rows;
/// returns the outputs and the mean `loss`.
pub fn evaluate(model: &mut Sequential<f32>, data: &Dataset, loss: Loss, chunk: usize) -> Result<Evaluation> {
    let width = model.out_features().unwrap_or(0);
    evaluate_with(data, loss, chunk, width, &mut |x, out| {
        out.copy_from(model.forward(x, Mode::Eval)?);
        Ok(())
    })
}

/// [`evaluate`] through the fused inference network of a trained model
/// (batch normalization folded into the Dense layers): the same function up
/// to rounding (`tests/infer.rs` bounds the difference), faster.
pub fn evaluate_fused(net: &InferenceNet<f32>, data: &Dataset, loss: Loss, chunk: usize) -> Result<Evaluation> {
    evaluate_with(data, loss, chunk, net.out_features(), &mut |x, out| {
        net.forward_rows_into(x, out)
    })
}

/// [`evaluate_fused`] for an ensemble: the averaged prediction as "logits"
/// (see [`crate::ensemble`]); one member gives exactly [`evaluate_fused`].
pub fn evaluate_ensemble(net: &crate::EnsembleNet, data: &Dataset, loss: Loss, chunk: usize) -> Result<Evaluation> {
    evaluate_with(data, loss, chunk, net.out_features(), &mut |x, out| {
        net.forward_into(x, out)
    })
}

/// A forward pass writing `[rows, out]` outputs for `x: [rows, in]` into its
/// second argument.
type ForwardInto<'a> = dyn FnMut(&Matrix<f32>, &mut Matrix<f32>) -> Result<()> + 'a;

/// Outputs `[rows, width]` of `forward(x, out)` over `data` in chunks, and the mean loss.
fn evaluate_with(
    data: &Dataset,
    loss: Loss,
    chunk: usize,
    width: usize,
    forward: &mut ForwardInto<'_>,
) -> Result<Evaluation> {
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    let (mut grad, mut out) = (Matrix::default(), Matrix::default());
    let mut outputs = Matrix::zeros(data.len(), width);
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut total = 0.0f64;
    let mut row = 0;
    for part in idx.chunks(chunk.max(1)) {
        data.gather(part, &mut x, &mut y);
        forward(&x, &mut out)?;
        let out = &out;
        total += loss.forward_backward(out, y.target(), &mut grad)? as f64 * part.len() as f64;
        for r in 0..out.rows() {
            outputs.row_mut(row).copy_from_slice(out.row(r));
            row += 1;
        }
    }
    Ok(Evaluation {
        loss: total / data.len().max(1) as f64,
        outputs,
    })
}

/// Classification accuracy of `model` in evaluation mode on `data` (0 for a
/// regression dataset), computed in chunks of `chunk` rows.
pub fn accuracy(model: &mut Sequential<f32>, data: &Dataset, chunk: usize) -> Result<f64> {
    let Some(labels) = data.labels() else { return Ok(0.0) };
    evaluate(model, data, Loss::CrossEntropy, chunk)?.accuracy(labels)
}
