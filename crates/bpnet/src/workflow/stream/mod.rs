//! Data larger than memory: a CSV file read chunk by chunk
//! ([`ChunkReader`]) for training, evaluation and prediction.
//!
//! - [`RowSplit`]: the test and validation rows, chosen by a seeded hash of
//!   the row index, so every pass and epoch agrees on them without a list
//!   of rows. (The in-memory split is a seeded, stratified permutation: the
//!   two choose different rows, in about the same proportions; a streamed
//!   split is not stratified.)
//! - [`StreamFile::fit`]: one pass fitting the preprocessing on the
//!   training rows ([`StreamFit`]), recording each chunk's place.
//! - [`StreamFile::collect`]: rows of some roles, preprocessed, in memory
//!   (the validation set; the training set when it fits in the shuffle
//!   buffer); [`StreamFile::collect_checking`] reads others as well, to
//!   refuse before training what a later pass could not read.
//! - [`for_each_group`]: preprocessed rows in groups of
//!   [`GROUP`] (aligned with the in-memory evaluation's chunks, so outputs
//!   and losses are the same bits), for `eval`, `predict` and test metrics.
//! - [`StreamSource`]: training batches, chunk order and a shuffle buffer.

mod eval;
mod memory;
mod plan;
mod source;

pub use eval::{StreamMetrics, stream_metrics, stream_outputs};
pub use memory::{Estimate, LOAD_PEAK, MemoryLimit, available_memory, estimate, parse_bytes};
pub use plan::{
    MAX_BUFFER, buffer_rows, choose_stream, chunk_bytes, open_train_stream, resume_stream_choice, stream_choice,
};
pub use source::{StreamSource, shuffle_seed};

use crate::data::csv::CsvOptions;
use crate::data::preprocess::{PreprocessSpec, Preprocessor, StreamFit, Targets as TableTargets};
use crate::data::table::{Chunk, ChunkReader, Span};
use crate::data::{Dataset, Targets};
use crate::{Error, Matrix, Result};
use std::path::Path;

/// Rows per group of [`for_each_group`]: the in-memory
/// evaluation's chunk (and a multiple of the fused network's blocks).
pub const GROUP: usize = 1024;

/// What a row of a streamed file is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Training.
    Train,
    /// Validation.
    Val,
    /// Test.
    Test,
    /// Beyond `--limit`.
    Skip,
}

/// Test and validation rows by a seeded hash of the row index (see the
/// module docs): row `i` is a test row when `u_t(i) < test`, else a
/// validation row when `u_v(i) < val`, where `u_t`, `u_v` are two
/// independent hashes of `(seed, i)` mapped to `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowSplit {
    /// Fraction of rows for testing.
    pub test: f64,
    /// Fraction of the other rows for validation.
    pub val: f64,
    /// The seed.
    pub seed: u64,
    /// Rows from this index on are skipped (0: none).
    pub limit: usize,
}

/// SplitMix64's finalizer: a bijective 64-bit mix.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in `[0, 1)` from `(seed, row)`.
fn unit(seed: u64, row: usize) -> f64 {
    (mix(seed ^ mix(row as u64)) >> 11) as f64 / (1u64 << 53) as f64
}

impl RowSplit {
    /// The role of data row `row` (0-based, in file order).
    pub fn role(&self, row: usize) -> Role {
        if self.limit > 0 && row >= self.limit {
            Role::Skip
        } else if self.test > 0.0 && unit(self.seed ^ 0x7E57, row) < self.test {
            Role::Test
        } else if self.val > 0.0 && unit(self.seed ^ 0x0A11D, row) < self.val {
            Role::Val
        } else {
            Role::Train
        }
    }

    /// The rows of a chunk (local indices) that have role `role`.
    pub fn rows(&self, span: &Span, len: usize, role: Role) -> Vec<usize> {
        (0..len).filter(|&r| self.role(span.row + r) == role).collect()
    }
}

/// A file opened for streaming, its preprocessing fitted.
pub struct StreamFile {
    /// The reader (chunks can be read again by span).
    pub reader: ChunkReader,
    /// Every chunk, in file order.
    pub spans: Vec<Span>,
    /// The roles of the rows.
    pub split: RowSplit,
    /// Training, validation and test rows.
    pub counts: [usize; 3],
    /// The preprocessing fitted on the training rows.
    pub preprocessor: Preprocessor,
    /// What the fit says (task, target, categorical columns...).
    pub notes: Vec<String>,
}

impl StreamFile {
    /// Opens `path` and fits `spec` on its training rows in one pass (two
    /// when a mostly-text column holds numbers too).
    pub fn fit(path: &Path, opts: &CsvOptions, spec: &PreprocessSpec, split: RowSplit, chunk: usize) -> Result<Self> {
        let mut header_note = None;
        Self::fit_noting(path, opts, spec, split, chunk, &mut header_note)
            .map_err(|e| super::table::hint_first_line(header_note.is_some(), path, e))
    }

    /// [`StreamFile::fit`], setting `header_note` as soon as the first
    /// chunk shows that header detection took a line with text for data.
    fn fit_noting(
        path: &Path,
        opts: &CsvOptions,
        spec: &PreprocessSpec,
        split: RowSplit,
        chunk: usize,
        header_note: &mut Option<String>,
    ) -> Result<Self> {
        let mut reader = ChunkReader::open(path, opts, chunk)?;
        let mut fit = StreamFit::new(spec)?;
        let (mut spans, mut counts) = (Vec::new(), [0usize; 3]);
        while let Some(c) = reader.next_chunk()? {
            if c.span.row == 0 && opts.header.is_none() {
                *header_note = super::table::first_line_note(&c.table);
            }
            let mut train = Vec::new();
            for r in 0..c.table.len() {
                match split.role(c.span.row + r) {
                    Role::Train => train.push(r),
                    Role::Val => counts[1] += 1,
                    Role::Test => counts[2] += 1,
                    Role::Skip => {}
                }
            }
            counts[0] += train.len();
            fit.add(&c.table, &train)?;
            spans.push(c.span);
        }
        reader.end_pass();
        if !fit.number_text_columns().is_empty() {
            for span in &spans {
                let c = reader.read_span(span)?;
                fit.add_number_texts(&c.table, &split.rows(&c.span, c.table.len(), Role::Train));
            }
            reader.end_pass();
        }
        if counts[0] == 0 && counts[1] + counts[2] > 0 {
            // It said "invalid training data: has no rows", naming neither.
            return Err(Error::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "every one of its {} rows was held out ({} for validation, {} for test): no training rows \
                     are left; lower --val-split or --test-split",
                    counts[1] + counts[2],
                    counts[1],
                    counts[2]
                ),
            });
        }
        let (preprocessor, mut notes) = fit.finish()?;
        notes.splice(0..0, header_note.clone());
        Ok(StreamFile {
            reader,
            spans,
            split,
            counts,
            preprocessor,
            notes,
        })
    }

    /// The rows of each role in `roles`, preprocessed, in file order: one
    /// dataset per role (validation and test rows as held-out rows:
    /// [`Preprocessor::for_held_out`]).
    pub fn collect(&mut self, roles: &[Role]) -> Result<Vec<Dataset>> {
        self.collect_checking(roles, &[])
    }

    /// [`StreamFile::collect`], reading the rows of the roles in `check`
    /// too, as held-out rows, and dropping them chunk by chunk: a cell
    /// they cannot be read with (a missing value without imputation, a
    /// class no training row holds) is the same error here, before
    /// training, as in the passes that read them later. With both lists
    /// empty the file is not read.
    pub fn collect_checking(&mut self, roles: &[Role], check: &[Role]) -> Result<Vec<Dataset>> {
        let mut grown: Vec<Grow> = roles.iter().map(|_| Grow::default()).collect();
        if roles.is_empty() && check.is_empty() {
            return Ok(Vec::new());
        }
        let held = self.preprocessor.for_held_out();
        for i in 0..self.spans.len() {
            let c = self.reader.read_span(&self.spans[i])?;
            for (g, &role) in grown.iter_mut().zip(roles) {
                let rows = self.split.rows(&c.span, c.table.len(), role);
                g.push_rows(&held, &c, &rows, true)?;
            }
            for &role in check {
                let rows = self.split.rows(&c.span, c.table.len(), role);
                Grow::default().push_rows(&held, &c, &rows, true)?;
            }
        }
        self.reader.end_pass();
        grown.into_iter().map(|g| g.finish(&self.preprocessor, true)).collect()
    }
}

/// Preprocessed rows of `reader`'s chunks that `keep` accepts, in file
/// order, handed to `f` in datasets of [`GROUP`] rows (the last one
/// shorter). Without `labelled` the targets are not read (a dataset of
/// zero-class labels).
pub fn for_each_group(
    reader: &mut ChunkReader,
    pre: &Preprocessor,
    keep: &dyn Fn(usize) -> bool,
    labelled: bool,
    f: &mut dyn FnMut(&Dataset) -> Result<()>,
) -> Result<usize> {
    reader.rewind()?;
    let mut g = Grow::default();
    let mut total = 0;
    while let Some(c) = reader.next_chunk()? {
        let rows: Vec<usize> = (0..c.table.len()).filter(|&r| keep(c.span.row + r)).collect();
        g.push_rows(pre, &c, &rows, labelled)?;
        while g.n >= GROUP {
            let head = g.split_off_front(GROUP, pre.n_features());
            total += GROUP;
            f(&head.finish(pre, labelled)?)?;
        }
    }
    reader.end_pass();
    if g.n > 0 {
        total += g.n;
        f(&g.finish(pre, labelled)?)?;
    }
    Ok(total)
}

/// Whether the file of `reader` has the columns `pre` reads (and, when
/// `labelled`, its targets), from its first chunk and without reading a
/// row's cells: a missing column is an error before a long run rather
/// than after it. Its rows are read later, by the passes that use them.
pub fn check_columns(reader: &mut ChunkReader, pre: &Preprocessor, labelled: bool) -> Result<()> {
    reader.rewind()?;
    if let Some(c) = reader.next_chunk()? {
        pre.transform_features(&c.table, &[])?;
        if labelled {
            pre.transform_targets(&c.table, &[])?;
        }
    }
    reader.end_pass();
    Ok(())
}

/// Preprocessed rows being gathered.
#[derive(Default)]
struct Grow {
    x: Vec<f32>,
    labels: Vec<usize>,
    values: Vec<f32>,
    n: usize,
}

impl Grow {
    fn push_rows(&mut self, pre: &Preprocessor, c: &Chunk, rows: &[usize], labelled: bool) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.x
            .extend_from_slice(pre.transform_features(&c.table, rows)?.as_slice());
        if labelled {
            match pre.transform_targets(&c.table, rows)? {
                TableTargets::Labels(l) => self.labels.extend(l),
                TableTargets::Values(v) => self.values.extend_from_slice(v.as_slice()),
            }
        }
        self.n += rows.len();
        Ok(())
    }

    /// The first `k` rows, removed.
    fn split_off_front(&mut self, k: usize, width: usize) -> Grow {
        let per = self.values.len().checked_div(self.n).unwrap_or(0);
        let head = Grow {
            x: self.x.drain(..k * width).collect(),
            labels: self.labels.drain(..k.min(self.labels.len())).collect(),
            values: self.values.drain(..k * per).collect(),
            n: k,
        };
        self.n -= k;
        head
    }

    fn finish(self, pre: &Preprocessor, labelled: bool) -> Result<Dataset> {
        let x = Matrix::from_vec(self.n, pre.n_features(), self.x)?;
        if labelled && pre.class_names().is_none() {
            let outputs = pre.n_outputs();
            return Dataset::regression(x, Matrix::from_vec(self.n, outputs, self.values)?);
        }
        let labels = if labelled { self.labels } else { vec![0; self.n] };
        Dataset::new(x, labels, pre.n_outputs().max(1))
    }
}

/// The targets of a dataset as the loss takes them.
pub(crate) fn target_of(d: &Dataset) -> crate::loss::Target<'_, f32> {
    match &d.targets {
        Targets::Classes { labels, .. } => crate::loss::Target::Labels(labels),
        Targets::Values(v) => crate::loss::Target::Values(v),
    }
}

#[cfg(test)]
mod tests {
    use super::{Role, RowSplit};

    #[test]
    fn hashed_split_holds_out_the_fractions_asked_for_and_is_seeded() {
        let split = RowSplit {
            test: 0.1,
            val: 0.2,
            seed: 7,
            limit: 90_000,
        };
        let roles: Vec<Role> = (0..100_000).map(|r| split.role(r)).collect();
        let count = |role| roles.iter().filter(|&&r| r == role).count();
        assert_eq!(count(Role::Skip), 10_000, "rows from --limit on");
        // 90,000 rows: 10% test, then 20% of the other 81,000 for validation.
        assert!((8_700..9_300).contains(&count(Role::Test)), "{}", count(Role::Test));
        assert!((15_800..16_600).contains(&count(Role::Val)), "{}", count(Role::Val));
        let again: Vec<Role> = (0..100_000).map(|r| split.role(r)).collect();
        assert_eq!(roles, again);
        let other = RowSplit { seed: 8, ..split };
        let moved = (0..90_000).filter(|&r| other.role(r) != roles[r]).count();
        assert!(moved > 10_000, "another seed chooses other rows ({moved} moved)");
    }
}
