//! Datasets: in-memory feature matrices with labels, the bundled MNIST, and
//! seeded shuffled mini-batches.

mod batches;
pub mod csv;
mod encoding;
pub mod idx;
mod mnist;
pub mod names;
mod parts;
pub mod preprocess;
pub mod split;
pub mod table;

pub use batches::Batches;
pub use csv::{ColumnRef, CsvOptions, RawTable, Shifts, delimiter_byte, parse_csv, read_csv};
pub use mnist::{bundled_mnist_dir, load_mnist, load_mnist_test, load_mnist_test_images, load_mnist_train};
pub use names::ColumnIndex;
pub use preprocess::{Feature, FeatureKind, Impute, PreprocessSpec, Preprocessor, Scaling, Task};
pub use split::split;
pub use table::{AsTable, Cell, Column, Format, Table, read_data, read_table};

use crate::error::{Error, Result};
use crate::loss::Target;
use crate::parallel::split::{SharedMut, for_rows};
use crate::tensor::Matrix;

/// What a dataset's rows are labelled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// A class index per row, each below `classes`.
    Classes {
        /// `[rows]` class indices.
        labels: Vec<usize>,
        /// Number of classes.
        classes: usize,
    },
    /// Real-valued targets `[rows, outputs]` (regression, already scaled).
    Values(Matrix<f32>),
}

/// A dataset held in memory: features and targets, one row per example.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Features `[rows, features]`.
    pub features: Matrix<f32>,
    /// Targets of each row.
    pub targets: Targets,
}

/// Reusable buffers for one mini-batch's targets (see [`Dataset::gather`]).
#[derive(Debug, Clone, Default)]
pub struct TargetBuf {
    labels: Vec<usize>,
    values: Matrix<f32>,
    is_values: bool,
}

impl TargetBuf {
    /// The batch's targets, as the loss takes them.
    pub fn target(&self) -> Target<'_, f32> {
        if self.is_values {
            Target::Values(&self.values)
        } else {
            Target::Labels(&self.labels)
        }
    }

    /// The batch's class labels (empty for regression).
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Makes room for `rows` class labels, or with `values = Some(k)` for
    /// `rows` rows of `k` target values (contents unspecified; allocations
    /// kept).
    pub(crate) fn reset(&mut self, rows: usize, values: Option<usize>) {
        self.labels.clear();
        match values {
            Some(k) => {
                self.is_values = true;
                self.values.resize(rows, k);
            }
            None => {
                self.is_values = false;
                self.labels.resize(rows, 0);
            }
        }
    }

    /// The labels, to fill after [`TargetBuf::reset`].
    pub(crate) fn labels_mut(&mut self) -> &mut [usize] {
        &mut self.labels
    }

    /// The target values `[rows, k]`, to fill after [`TargetBuf::reset`].
    pub(crate) fn values_mut(&mut self) -> &mut Matrix<f32> {
        &mut self.values
    }
}

impl Dataset {
    /// A classification dataset; checks one label per row, each below `classes`.
    pub fn new(features: Matrix<f32>, labels: Vec<usize>, classes: usize) -> Result<Self> {
        if labels.len() != features.rows() {
            return Err(Error::shape("dataset labels", features.rows(), labels.len()));
        }
        if let Some((row, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
            return Err(Error::Label { row, label, classes });
        }
        Ok(Dataset {
            features,
            targets: Targets::Classes { labels, classes },
        })
    }

    /// A regression dataset; checks one target row per feature row.
    pub fn regression(features: Matrix<f32>, values: Matrix<f32>) -> Result<Self> {
        if values.rows() != features.rows() {
            return Err(Error::shape("dataset targets", features.rows(), values.rows()));
        }
        Ok(Dataset {
            features,
            targets: Targets::Values(values),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.features.rows()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Output width a model needs: the number of classes or of target columns.
    pub fn outputs(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values(v) => v.cols(),
        }
    }

    /// Class labels, for a classification dataset.
    pub fn labels(&self) -> Option<&[usize]> {
        match &self.targets {
            Targets::Classes { labels, .. } => Some(labels),
            Targets::Values(_) => None,
        }
    }

    /// The rows `idx`, in that order, as a new dataset.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut x = Matrix::default();
        let mut y = TargetBuf::default();
        self.gather(idx, &mut x, &mut y);
        let targets = match &self.targets {
            Targets::Classes { classes, .. } => Targets::Classes {
                labels: y.labels,
                classes: *classes,
            },
            Targets::Values(_) => Targets::Values(y.values),
        };
        Dataset { features: x, targets }
    }

    /// Splits into (rows `keep`, rows `out`), both strictly increasing, as
    /// [`Dataset::subset`] would but without holding two copies of the
    /// kept rows: `out` is copied, then `keep` is compacted in place. The
    /// peak is the dataset plus the `out` rows.
    pub fn partition(mut self, keep: &[usize], out: &[usize]) -> (Dataset, Dataset) {
        let held = self.subset(out);
        self.features.retain_rows(keep);
        match &mut self.targets {
            Targets::Classes { labels, .. } => {
                *labels = keep.iter().map(|&i| labels[i]).collect();
            }
            Targets::Values(v) => v.retain_rows(keep),
        }
        (self, held)
    }

    /// The first `n` rows (all if fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx)
    }

    /// Copies rows `idx` into `x: [idx.len(), features]` and their targets into
    /// `y`, reusing both buffers' allocations.
    ///
    /// The feature rows are copied by the thread team when the batch is big
    /// enough ([`crate::parallel::MIN_ELEMENTS_SPLIT`] values): the rows sit
    /// anywhere in a table that outgrows the caches, so a single thread
    /// waits on memory, and two copy at about twice the rate (a batch of 128
    /// MNIST rows is 401 KB). Each row is a plain copy wherever it runs.
    pub fn gather(&self, idx: &[usize], x: &mut Matrix<f32>, y: &mut TargetBuf) {
        let cols = self.features.cols();
        x.resize(idx.len(), cols);
        let out = SharedMut::new(x.as_mut_slice());
        for_rows(idx.len(), cols, &|rows| {
            // SAFETY: `for_rows` hands out disjoint row ranges.
            let dst = unsafe { out.range(rows.start * cols..rows.end * cols) };
            for (d, &i) in dst.chunks_exact_mut(cols.max(1)).zip(&idx[rows]) {
                d.copy_from_slice(self.features.row(i));
            }
        });
        y.labels.clear();
        match &self.targets {
            Targets::Classes { labels, .. } => {
                y.is_values = false;
                y.labels.extend(idx.iter().map(|&i| labels[i]));
            }
            Targets::Values(v) => {
                y.is_values = true;
                y.values.resize(idx.len(), v.cols());
                for (r, &i) in idx.iter().enumerate() {
                    y.values.row_mut(r).copy_from_slice(v.row(i));
                }
            }
        }
    }
}
