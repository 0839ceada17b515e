//! Seeded, shuffled mini-batches over a dataset's row indices.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use serde::{Deserialize, Serialize};

/// Yields row-index batches, reshuffling at the start of every epoch.
///
/// The last partial batch of an epoch is kept, except that with
/// `min_batch = 2` (batch normalization) a final batch of one row is dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    min_batch: usize,
    pos: usize,
    epoch: u64,
    rng: Xoshiro256PlusPlus,
}

impl Batches {
    /// Batches of `batch_size` (clamped to 1..=rows) over `rows` rows.
    pub fn new(rows: usize, batch_size: usize, min_batch: usize, seed: u64) -> Self {
        let mut b = Batches {
            order: (0..rows).collect(),
            batch_size: batch_size.clamp(1, rows.max(1)),
            min_batch,
            pos: 0,
            epoch: 0,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        };
        b.order.shuffle(&mut b.rng);
        b
    }

    /// Rows per batch (the last of an epoch may hold fewer).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Completed epochs.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Rows the order covers (0 for the empty order of a source that keeps
    /// its own).
    pub fn rows(&self) -> usize {
        self.order.len()
    }

    /// Whether the order is one `new` could have made and `next_batch`
    /// reached: a permutation of `0..rows()`, a batch size of at least 1
    /// (at most the rows, when there are any), a position within the
    /// order. An order read from a checkpoint is checked, since anything
    /// else divides by zero or indexes outside the data.
    pub fn check(&self) -> Result<(), String> {
        let n = self.order.len();
        if self.batch_size == 0 || (n > 0 && self.batch_size > n) {
            return Err(format!("batch size {} for {n} rows", self.batch_size));
        }
        if self.pos > n {
            return Err(format!("position {} in an order of {n} rows", self.pos));
        }
        let mut seen = vec![false; n];
        for &r in &self.order {
            match seen.get_mut(r) {
                Some(s) if !*s => *s = true,
                _ => {
                    return Err(format!(
                        "the batch order is not a permutation of the {n} rows (row {r})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Batches per epoch.
    pub fn per_epoch(&self) -> usize {
        let n = self.order.len();
        let full = n / self.batch_size;
        let rest = n % self.batch_size;
        full + usize::from(rest >= self.min_batch.max(1))
    }

    /// The next batch of row indices; starts a new, reshuffled epoch when the
    /// current one is used up.
    pub fn next_batch(&mut self) -> &[usize] {
        let n = self.order.len();
        if self.pos >= n || n - self.pos < self.min_batch.max(1) {
            self.order.shuffle(&mut self.rng);
            self.pos = 0;
            self.epoch += 1;
        }
        let start = self.pos;
        self.pos = (start + self.batch_size).min(n);
        &self.order[start..self.pos]
    }
}
