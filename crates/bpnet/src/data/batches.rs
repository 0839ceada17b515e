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

    /// Completed epochs.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Rows the order covers (0 for the empty order of a source that keeps
    /// its own).
    pub fn rows(&self) -> usize {
        self.order.len()
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
