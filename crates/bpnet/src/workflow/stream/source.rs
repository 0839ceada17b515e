//! [`StreamSource`]: training batches read from a file each epoch, in a
//! shuffled chunk order through a seeded shuffle buffer.
//!
//! Epoch `e` draws a generator seeded by [`shuffle_seed`]`(seed, e)`; it
//! permutes the chunks and reads them [`LANES`] at a time: each incoming
//! row is the next row (in file order within its chunk) of one of the
//! chunks being read, chosen at random, a used-up chunk replaced by the
//! next in the order. The rows go through a buffer of `R` rows: the buffer
//! is filled, then each batch row is a uniformly chosen buffer slot, whose
//! place the next incoming row takes (once the input is used up, the last
//! row does). Every training row is drawn exactly once an epoch (less a last
//! row that batch normalization cannot use alone, as in memory), with
//! `⌊n/b⌋` batches of `b` rows and a last partial batch as [`Batches`]
//! counts them. A row leaves the buffer after a geometric number of draws
//! with mean `R`, so it moves about `R` places from where the chunk order
//! put it; rows of chunks far apart in that order never share a batch.
//! With `R ≥ n` the workflow does not stream: it holds the rows and uses
//! the in-memory order itself (the same model as training in memory).
//!
//! Memory: the buffer (`R` rows), one chunk's table and the preprocessed
//! rows of [`LANES`] chunks. State for checkpoints: the epoch; a run resumes at an epoch
//! boundary only.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{Role, StreamFile, mix};
use crate::data::{Batches, Dataset, TargetBuf, Targets};
use crate::train::{BatchSource, batches_per_epoch};
use crate::{Error, Matrix, Result};

/// Chunks read at once, their rows interleaved at random into the buffer.
pub const LANES: usize = 4;

/// The seed of epoch `epoch`'s chunk order and shuffle buffer.
pub fn shuffle_seed(seed: u64, epoch: u64) -> u64 {
    mix(seed ^ mix(epoch ^ 0x5_4FF1E))
}

/// Training batches streamed from a file (see the module docs).
pub struct StreamSource<'a> {
    file: &'a mut StreamFile,
    rows: usize,
    width: usize,
    /// Target values per row for regression (`None`: class labels).
    values: Option<usize>,
    batch: usize,
    per_epoch: usize,
    capacity: usize,
    seed: u64,
    /// The epoch the next one started will be (0-based).
    next_epoch: u64,
    /// Batches drawn in the current epoch (`None` before the first).
    emitted: Option<usize>,
    rng: Xoshiro256PlusPlus,
    order: Vec<usize>,
    next_chunk: usize,
    /// Chunks being read at once (their preprocessed training rows and the
    /// next row of each).
    lanes: Vec<(Dataset, usize)>,
    buf_x: Vec<f32>,
    buf_labels: Vec<usize>,
    buf_values: Vec<f32>,
    buf_len: usize,
}

impl<'a> StreamSource<'a> {
    /// Batches of `batch` rows (`min_batch`: 2 with batch normalization)
    /// over the training rows of `file`, with a shuffle buffer of
    /// `capacity` rows, epochs seeded from `seed`.
    pub fn new(file: &'a mut StreamFile, batch: usize, min_batch: usize, capacity: usize, seed: u64) -> Result<Self> {
        // Training reports its own progress (steps), not the passes' bytes.
        file.reader.set_progress(false);
        let rows = file.counts[0];
        if rows == 0 {
            return Err(Error::config("training data", "has no rows"));
        }
        let pre = &file.preprocessor;
        let values = pre.class_names().is_none().then(|| pre.n_outputs());
        let batch = batch.clamp(1, rows);
        Ok(StreamSource {
            rows,
            width: pre.n_features(),
            values,
            batch,
            per_epoch: batches_per_epoch(rows, batch, min_batch),
            capacity: capacity.max(batch).max(1),
            seed,
            next_epoch: 0,
            emitted: None,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            order: Vec::new(),
            next_chunk: 0,
            lanes: Vec::new(),
            buf_x: Vec::new(),
            buf_labels: Vec::new(),
            buf_values: Vec::new(),
            buf_len: 0,
            file,
        })
    }

    fn start_epoch(&mut self) {
        if self.next_epoch > 0 {
            self.file.reader.end_pass();
        }
        self.rng = Xoshiro256PlusPlus::seed_from_u64(shuffle_seed(self.seed, self.next_epoch));
        self.next_epoch += 1;
        self.order = (0..self.file.spans.len()).collect();
        self.order.shuffle(&mut self.rng);
        (self.next_chunk, self.buf_len) = (0, 0);
        self.lanes.clear();
        self.emitted = Some(0);
    }

    /// Copies the next incoming training row into buffer slot `slot`: the
    /// next row of a chunk chosen at random among the [`LANES`] being read;
    /// false when the epoch's input is used up.
    fn pull(&mut self, slot: usize) -> Result<bool> {
        while self.lanes.len() < LANES {
            match self.next_lane()? {
                Some(d) => self.lanes.push((d, 0)),
                None => break,
            }
        }
        if self.lanes.is_empty() {
            return Ok(false);
        }
        let k = self.rng.random_range(0..self.lanes.len());
        let (d, pos) = &mut self.lanes[k];
        let (r, w) = (*pos, self.width);
        *pos += 1;
        self.buf_x[slot * w..(slot + 1) * w].copy_from_slice(d.features.row(r));
        match &d.targets {
            Targets::Classes { labels, .. } => self.buf_labels[slot] = labels[r],
            Targets::Values(v) => {
                let k = v.cols();
                self.buf_values[slot * k..(slot + 1) * k].copy_from_slice(v.row(r));
            }
        }
        if *pos == d.len() {
            self.lanes.swap_remove(k);
        }
        Ok(true)
    }

    /// The preprocessed training rows of the next chunk in the epoch's
    /// order that has some; `None` at the end of the order.
    fn next_lane(&mut self) -> Result<Option<Dataset>> {
        while let Some(&i) = self.order.get(self.next_chunk) {
            self.next_chunk += 1;
            let span = self.file.spans[i];
            let c = self.file.reader.read_span(&span)?;
            let rows = self.file.split.rows(&c.span, c.table.len(), Role::Train);
            if !rows.is_empty() {
                return crate::workflow::table_dataset(&self.file.preprocessor, &c.table, &rows).map(Some);
            }
        }
        Ok(None)
    }

    /// The buffer filled as far as the input allows.
    fn fill(&mut self) -> Result<()> {
        let (w, k) = (self.width, self.values.unwrap_or(0));
        if self.buf_x.len() < self.capacity * w {
            self.buf_x.resize(self.capacity * w, 0.0);
            self.buf_labels.resize(self.capacity, 0);
            self.buf_values.resize(self.capacity * k, 0.0);
        }
        while self.buf_len < self.capacity && self.pull(self.buf_len)? {
            self.buf_len += 1;
        }
        Ok(())
    }

    /// Draws one row from the buffer into row `out` of `x`, `y` (when given)
    /// and refills its slot.
    fn draw(&mut self, out: Option<usize>, x: &mut Matrix<f32>, y: &mut TargetBuf) -> Result<()> {
        self.fill()?;
        if self.buf_len == 0 {
            return Err(Error::config(
                "streamed data",
                "fewer training rows than counted; did the file change?",
            ));
        }
        let j = self.rng.random_range(0..self.buf_len);
        let (w, k) = (self.width, self.values.unwrap_or(0));
        if let Some(o) = out {
            x.row_mut(o).copy_from_slice(&self.buf_x[j * w..(j + 1) * w]);
            match self.values {
                None => y.labels_mut()[o] = self.buf_labels[j],
                Some(_) => y
                    .values_mut()
                    .row_mut(o)
                    .copy_from_slice(&self.buf_values[j * k..(j + 1) * k]),
            }
        }
        if !self.pull(j)? {
            let last = self.buf_len - 1;
            self.buf_x.copy_within(last * w..(last + 1) * w, j * w);
            self.buf_labels[j] = self.buf_labels[last];
            self.buf_values.copy_within(last * k..(last + 1) * k, j * k);
            self.buf_len = last;
        }
        Ok(())
    }
}

impl Drop for StreamSource<'_> {
    fn drop(&mut self) {
        self.file.reader.set_progress(true);
    }
}

impl BatchSource for StreamSource<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn width(&self) -> usize {
        self.width
    }

    fn start_order(&self, _batch: usize, min_batch: usize, seed: u64) -> Batches {
        Batches::new(0, 1, min_batch, seed)
    }

    fn per_epoch(&self, _order: &Batches) -> usize {
        self.per_epoch
    }

    fn next_batch(
        &mut self,
        _order: &mut Batches,
        (rank, ranks): (usize, usize),
        x: &mut Matrix<f32>,
        y: &mut TargetBuf,
    ) -> Result<usize> {
        if self.emitted.is_none_or(|e| e >= self.per_epoch) {
            self.start_epoch();
        }
        let done = self.emitted.unwrap_or(0);
        let size = if done < self.rows / self.batch {
            self.batch
        } else {
            self.rows % self.batch
        };
        let (lo, hi) = crate::comm::block(size, rank, ranks);
        x.resize(hi - lo, self.width);
        y.reset(hi - lo, self.values);
        for i in 0..size {
            self.draw((lo..hi).contains(&i).then(|| i - lo), x, y)?;
        }
        self.emitted = Some(done + 1);
        Ok(size)
    }

    fn resume_at(&mut self, step: usize, per_epoch: usize) -> Result<()> {
        if !step.is_multiple_of(per_epoch.max(1)) {
            return Err(Error::config(
                "resume",
                format!(
                    "a streamed run resumes only at an epoch boundary; this checkpoint is at step {step}, inside an epoch of {per_epoch} steps"
                ),
            ));
        }
        self.next_epoch = (step / per_epoch.max(1)) as u64;
        self.emitted = None;
        Ok(())
    }

    fn accepts(&self, order: &Batches) -> bool {
        order.rows() == 0
    }

    fn resumes_mid_epoch(&self) -> bool {
        false
    }
}
