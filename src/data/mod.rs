//! Datasets: in-memory feature matrices with labels, the bundled MNIST, and
//! seeded shuffled mini-batches.

mod batches;
pub mod idx;
mod mnist;

pub use batches::Batches;
pub use mnist::{bundled_mnist_dir, load_mnist};

use crate::error::{Error, Result};
use crate::tensor::Matrix;

/// A classification dataset held in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Features `[rows, features]`.
    pub features: Matrix<f32>,
    /// Class index of each row, `[rows]`.
    pub labels: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Checks that there is one label per row and each is below `classes`.
    pub fn new(features: Matrix<f32>, labels: Vec<usize>, classes: usize) -> Result<Self> {
        if labels.len() != features.rows() {
            return Err(Error::shape("dataset labels", features.rows(), labels.len()));
        }
        if let Some((row, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
            return Err(Error::Label { row, label, classes });
        }
        Ok(Dataset {
            features,
            labels,
            classes,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` rows (all if fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let cols = self.features.cols();
        let features = Matrix::from_vec(n, cols, self.features.as_slice()[..n * cols].to_vec()).unwrap_or_default();
        Dataset {
            features,
            labels: self.labels[..n].to_vec(),
            classes: self.classes,
        }
    }

    /// Copies rows `idx` into `x: [idx.len(), features]` and their labels into
    /// `y`, reusing both buffers' allocations.
    pub fn gather(&self, idx: &[usize], x: &mut Matrix<f32>, y: &mut Vec<usize>) {
        x.resize(idx.len(), self.features.cols());
        y.clear();
        for (r, &i) in idx.iter().enumerate() {
            x.row_mut(r).copy_from_slice(self.features.row(i));
            y.push(self.labels[i]);
        }
    }
}
