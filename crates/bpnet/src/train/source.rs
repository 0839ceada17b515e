//! Where the training loop's mini-batches come from: a [`BatchSource`]
//! fills reusable buffers with the next batch. [`DatasetSource`] is a
//! dataset held in memory, batched by the seeded [`Batches`] order kept in
//! the loop's state (so a checkpoint resumes it exactly, at any step); a
//! streaming source reads a file chunk by chunk and keeps its own order
//! (see `workflow::stream`).

use crate::data::{Batches, Dataset, TargetBuf};
use crate::error::Result;
use crate::tensor::Matrix;

/// A supplier of training mini-batches.
///
/// Every rank of a data-parallel run draws the same global batch and keeps
/// its contiguous block of it ([`crate::comm::block`]).
pub trait BatchSource {
    /// Training rows per epoch.
    fn rows(&self) -> usize;

    /// Width of a feature row.
    fn width(&self) -> usize;

    /// The batch order a fresh run starts with, stored in the loop state:
    /// the seeded permutation of the rows for an in-memory source; an empty
    /// order for a source that keeps its own.
    fn start_order(&self, batch: usize, min_batch: usize, seed: u64) -> Batches;

    /// Batches per epoch (`⌊n/b⌋`, plus one for a last partial batch of at
    /// least `min_batch` rows).
    fn per_epoch(&self, order: &Batches) -> usize;

    /// Fills `x: [m_r, width]` and `y` with this rank's block (rank `rank`
    /// of `ranks`) of the next global batch; returns the global batch's
    /// rows. Crossing an epoch boundary starts a new epoch's order.
    fn next_batch(
        &mut self,
        order: &mut Batches,
        ranks: (usize, usize),
        x: &mut Matrix<f32>,
        y: &mut TargetBuf,
    ) -> Result<usize>;

    /// Prepares to continue a run after `step` optimizer steps of
    /// `per_epoch` each: an error when the source cannot resume there
    /// exactly (a streaming source resumes at epoch boundaries only).
    fn resume_at(&mut self, step: usize, per_epoch: usize) -> Result<()> {
        let _ = (step, per_epoch);
        Ok(())
    }

    /// Whether `order` (e.g. from a checkpoint) is an order of this source.
    fn accepts(&self, order: &Batches) -> bool {
        order.rows() == self.rows()
    }

    /// Whether a checkpoint taken inside an epoch resumes exactly.
    fn resumes_mid_epoch(&self) -> bool {
        true
    }
}

/// A dataset in memory, batched by the seeded [`Batches`] order: gathering
/// a batch copies its rows into the reused buffers (no allocation after the
/// first step).
pub struct DatasetSource<'a>(pub &'a Dataset);

impl BatchSource for DatasetSource<'_> {
    fn rows(&self) -> usize {
        self.0.len()
    }

    fn width(&self) -> usize {
        self.0.features.cols()
    }

    fn start_order(&self, batch: usize, min_batch: usize, seed: u64) -> Batches {
        Batches::new(self.0.len(), batch, min_batch, seed)
    }

    fn per_epoch(&self, order: &Batches) -> usize {
        order.per_epoch()
    }

    fn next_batch(
        &mut self,
        order: &mut Batches,
        (rank, ranks): (usize, usize),
        x: &mut Matrix<f32>,
        y: &mut TargetBuf,
    ) -> Result<usize> {
        let batch = order.next_batch();
        let (lo, hi) = crate::comm::block(batch.len(), rank, ranks);
        self.0.gather(&batch[lo..hi], x, y);
        Ok(batch.len())
    }
}

/// Batches per epoch of `rows` rows in batches of `batch` (clamped to
/// `1..=rows`), a last partial batch kept when it has `min_batch` rows or
/// more: what [`Batches::per_epoch`] counts.
pub fn batches_per_epoch(rows: usize, batch: usize, min_batch: usize) -> usize {
    let b = batch.clamp(1, rows.max(1));
    rows / b + usize::from(rows % b >= min_batch.max(1))
}
