//! The training step and evaluation.
//!
//! [`Trainer::step`] = zero gradients, forward in training mode, loss and its
//! gradient, backward through every layer, optimizer update. Every buffer is
//! owned by a layer, the loss or the optimizer and sized on first use, so
//! after the first step a step allocates nothing on the heap.

use crate::data::Dataset;
use crate::error::Result;
use crate::layers::Mode;
use crate::loss::{Loss, Target};
use crate::model::Sequential;
use crate::optim::Optimizer;
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// A model with its optimizer and loss.
#[derive(Debug, Clone)]
pub struct Trainer<T> {
    /// The network being trained.
    pub model: Sequential<T>,
    /// Its optimizer.
    pub optimizer: Optimizer<T>,
    /// The loss minimized.
    pub loss: Loss,
    dlogits: Matrix<T>,
}

impl<T: Scalar> Trainer<T> {
    /// Binds a model, an optimizer and a loss.
    pub fn new(model: Sequential<T>, optimizer: Optimizer<T>, loss: Loss) -> Self {
        Trainer {
            model,
            optimizer,
            loss,
            dlogits: Matrix::default(),
        }
    }

    /// One training step on the batch `x: [batch, in]`; returns the batch
    /// loss before the update.
    pub fn step(&mut self, x: &Matrix<T>, target: Target<'_, T>) -> Result<T> {
        let loss = self.compute_gradients(x, target)?;
        self.optimizer.step(&mut self.model)?;
        Ok(loss)
    }

    /// Zeroes gradients, then forward (training mode), loss and backward;
    /// leaves the gradients in the parameters. Returns the loss.
    pub fn compute_gradients(&mut self, x: &Matrix<T>, target: Target<'_, T>) -> Result<T> {
        self.model.zero_grad();
        let out = self.model.forward(x, Mode::Train)?;
        let loss = self.loss.forward_backward(out, target, &mut self.dlogits)?;
        self.model.backward(x, &self.dlogits, false)?;
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

/// Classification accuracy of `model` in evaluation mode on `data`, computed
/// in chunks of `chunk` rows.
pub fn accuracy(model: &mut Sequential<f32>, data: &Dataset, chunk: usize) -> Result<f64> {
    let mut x = Matrix::default();
    let mut y = Vec::new();
    let mut correct = 0usize;
    let idx: Vec<usize> = (0..data.len()).collect();
    for part in idx.chunks(chunk.max(1)) {
        data.gather(part, &mut x, &mut y);
        let out = model.forward(&x, Mode::Eval)?;
        correct += (0..out.rows()).filter(|&r| argmax(out.row(r)) == y[r]).count();
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}
