//! Data-parallel training: every rank holds a replica of the model, takes a
//! contiguous block of each global batch, and the gradients are summed over
//! the ranks with one all-reduce per step.
//!
//! Loss scaling: rank `r` with `m_r` of the global batch's `B` rows computes
//! its rows' share of the mean loss over `B` rows (`sum_rows l / B`) and its
//! gradient, so the sum over ranks is exactly the gradient one process
//! computes for the batch of `B` rows; only the order of the additions
//! differs. With global batch-normalization sync the forward pass too is the
//! one of the whole batch (see [`crate::layers::BnSync`]).

use super::{Evaluation, Trainer};
use crate::comm::{Comm, Reduce, agree};
use crate::data::{Dataset, TargetBuf};
use crate::error::Result;
use crate::infer::InferenceNet;
use crate::layers::{BnSync, Layer, Mode};
use crate::loss::{Loss, Target};
use crate::model::Sequential;
use crate::tensor::{Matrix, Out};
use std::sync::Arc;

/// How batch normalization computes its statistics in data-parallel training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnSyncMode {
    /// Over the whole global batch (the same model as one process; default).
    Global,
    /// Over each rank's rows alone (ghost batches; a different model).
    Local,
}

impl std::str::FromStr for BnSyncMode {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "global" => Ok(BnSyncMode::Global),
            "local" => Ok(BnSyncMode::Local),
            o => Err(crate::Error::config(
                "--bn-sync",
                format!("unknown '{o}' (expected global or local)"),
            )),
        }
    }
}

impl<T: Reduce> Trainer<T> {
    /// Trains as one rank of `comm`, batch normalization synchronized per
    /// `bn`. With a world of one rank nothing changes. Errors when the
    /// model has Batch Renormalization or Ghost BN layers and several ranks.
    pub fn set_comm(&mut self, comm: Arc<dyn Comm>, bn: BnSyncMode) -> crate::Result<()> {
        let sync = (comm.size() > 1).then(|| match bn {
            BnSyncMode::Global => BnSync::Global(comm.clone()),
            BnSyncMode::Local => BnSync::Local(comm.clone()),
        });
        self.model.set_bn_sync(sync)?;
        self.comm = comm;
        Ok(())
    }

    /// The ranks this trainer trains with.
    pub fn comm(&self) -> &Arc<dyn Comm> {
        &self.comm
    }

    /// Data-parallel [`Trainer::compute_gradients`]: `x: [m_r, in]` holds
    /// rows `start..start + m_r` of a global batch of `batch_rows` rows
    /// (`m_r` may be 0). Leaves in every parameter the gradient of the global
    /// batch's mean loss, the same on every rank, and returns that loss.
    pub fn compute_gradients_part(
        &mut self,
        x: &Matrix<T>,
        target: Target<'_, T>,
        start: usize,
        batch_rows: usize,
    ) -> Result<T> {
        let outputs = self.model.out_features().unwrap_or(0);
        self.loss
            .check_target(&target, x.rows(), outputs, self.label_smoothing)?;
        self.model.set_row_window(start, batch_rows);
        let out = self.model.forward(x, Mode::Train)?;
        let loss =
            self.loss
                .forward_backward_smoothed(out, target, &mut self.dlogits, batch_rows, self.label_smoothing)?;
        self.model.backward_with(x, &self.dlogits, false, Out::Replace)?;
        if self.comm.size() == 1 {
            return Ok(loss);
        }
        self.all_reduce_gradients(loss)
    }

    /// Sums every gradient and `loss` over the ranks. A gradient of at least
    /// [`OWN_SUM`] values is summed on its own, from the gradient into a spare
    /// matrix of its shape that then takes the gradient's place (a swap, no
    /// copy); the smaller ones and the loss travel together in one flat
    /// buffer. W3 (784-1024x3-10) makes 3 large sums and one of 16,395
    /// values; packing all 2.9 M values into one buffer and back cost about
    /// 12% of a 2-rank step in copies (perf, docs/DISTRIBUTED.md).
    fn all_reduce_gradients(&mut self, loss: T) -> Result<T> {
        let (comm, flat, spares) = (&*self.comm, &mut self.flat, &mut self.spares);
        flat.clear();
        let mut large = 0;
        let mut summed = Ok(());
        self.model.visit_params(&mut |p| {
            if p.grad.as_slice().len() < OWN_SUM {
                flat.extend_from_slice(p.grad.as_slice());
                return;
            }
            if summed.is_err() {
                return;
            }
            if spares.len() == large {
                spares.push(Matrix::default());
            }
            let spare = &mut spares[large];
            if spare.shape() != p.grad.shape() {
                *spare = Matrix::zeros(p.grad.rows(), p.grad.cols());
            }
            summed = T::all_reduce_into(comm, p.grad.as_slice(), spare.as_mut_slice());
            std::mem::swap(&mut p.grad, spare);
            large += 1;
        });
        summed?;
        flat.push(loss);
        T::all_reduce(comm, flat)?;
        let mut at = 0;
        self.model.visit_params(&mut |p| {
            let g = p.grad.as_mut_slice();
            if g.len() < OWN_SUM {
                g.copy_from_slice(&flat[at..at + g.len()]);
                at += g.len();
            }
        });
        Ok(flat[at])
    }
}

/// Gradients of at least this many values (256 KiB in f32) are summed over
/// the ranks on their own rather than packed into the flat buffer.
pub const OWN_SUM: usize = 1 << 16;

/// Folds the bits of `v` into the 64-bit digest `h` (FNV-1a over 32-bit
/// words: detects any changed value; not a cryptographic hash).
pub fn digest_f32(mut h: u64, v: &[f32]) -> u64 {
    for x in v {
        h = (h ^ u64::from(x.to_bits())).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The digest's starting value.
pub const DIGEST_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A digest of every parameter and running statistic's bits.
fn digest(model: &Sequential<f32>) -> u64 {
    let mut h = DIGEST_START;
    let mut eat = |v: &[f32]| h = digest_f32(h, v);
    for l in model.layers() {
        l.params(&mut |p| eat(p.value.as_slice()));
        if let Layer::BatchNorm(b) = l {
            eat(&b.running.mean);
            eat(&b.running.var);
        }
    }
    h
}

/// Checks that every rank's parameters and running statistics are bitwise
/// identical to rank 0's; all ranks fail together, the error naming the
/// ranks that differ and `when` (e.g. `after step 40`).
pub fn replicas_agree(comm: &dyn Comm, model: &Sequential<f32>, when: &str) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    agree(comm, &format!("parameters {when}"), &digest(model).to_le_bytes())
}

/// [`super::evaluate`] split over the ranks of `comm`: each rank runs its
/// contiguous block of `data`'s rows; outputs and the loss are summed over
/// the ranks (each row's outputs come from exactly one rank, so the sum puts
/// them together exactly). Every rank gets the whole evaluation.
pub fn evaluate_split(
    model: &mut Sequential<f32>,
    data: &Dataset,
    loss: Loss,
    chunk: usize,
    comm: &dyn Comm,
) -> Result<Evaluation> {
    let width = model.out_features().unwrap_or(0);
    evaluate_split_with(data, loss, chunk, width, comm, &mut |x, out| {
        out.copy_from(model.forward(x, Mode::Eval)?);
        Ok(())
    })
}

/// [`super::evaluate_fused`] split over the ranks of `comm` like [`evaluate_split`].
pub fn evaluate_fused_split(
    net: &InferenceNet<f32>,
    data: &Dataset,
    loss: Loss,
    chunk: usize,
    comm: &dyn Comm,
) -> Result<Evaluation> {
    evaluate_split_with(data, loss, chunk, net.out_features(), comm, &mut |x, out| {
        net.forward_rows_into(x, out)
    })
}

/// Outputs `[rows, width]` of `forward` over this rank's block of `data`,
/// put together over the ranks, and the mean loss.
fn evaluate_split_with(
    data: &Dataset,
    loss: Loss,
    chunk: usize,
    width: usize,
    comm: &dyn Comm,
    forward: &mut super::ForwardInto<'_>,
) -> Result<Evaluation> {
    let (lo, hi) = crate::comm::block(data.len(), comm.rank(), comm.size());
    let (mut x, mut y, mut grad) = (Matrix::default(), TargetBuf::default(), Matrix::default());
    let mut out = Matrix::default();
    let mut outputs = Matrix::zeros(data.len(), width);
    let idx: Vec<usize> = (lo..hi).collect();
    let mut total = 0.0f64;
    let mut row = lo;
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
    let mut sums = [total];
    comm.all_reduce_f64(&mut sums)?;
    comm.all_reduce_f32(outputs.as_mut_slice())?;
    Ok(Evaluation {
        loss: sums[0] / data.len().max(1) as f64,
        outputs,
    })
}
