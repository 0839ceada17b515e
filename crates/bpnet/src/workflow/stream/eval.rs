//! Evaluation and prediction of streamed rows in groups of [`GROUP`]:
//! bounded memory, and for the same rows the same outputs, loss and
//! classification metrics, bit for bit, as the in-memory evaluation (which
//! runs the fused network on chunks of the same size); regression's `R²`
//! uses Welford's `SS_tot` (equal up to rounding).

#[cfg(doc)]
use super::GROUP;
use super::{for_each_group, target_of};
use crate::data::Targets;
use crate::data::preprocess::Preprocessor;
use crate::data::table::ChunkReader;
use crate::loss::Loss;
use crate::train::argmax;
use crate::train::metrics::{ClassMetrics, RegressionSums};
use crate::workflow::Pipeline;
use crate::workflow::TestMetrics;
use crate::workflow::metrics::{class_metrics, regression_metrics};
use crate::{EnsembleNet, Matrix, Result};

/// Sums over the rows evaluated so far.
#[derive(Debug, Clone, Default)]
pub struct StreamMetrics {
    /// `Σ (group's mean loss × group's rows)`, groups in row order.
    loss: f64,
    rows: usize,
    confusion: Vec<Vec<u64>>,
    regression: Option<RegressionSums>,
}

impl StreamMetrics {
    /// The mean loss and the metric an epoch's validation records:
    /// accuracy for classes, `R²` (of the values in their own units) for
    /// regression.
    pub fn loss_and_metric(self) -> (f64, f64) {
        let loss = self.loss / self.rows.max(1) as f64;
        match self.regression {
            Some(r) => (loss, r.finish().r2),
            None => {
                let hits: u64 = (0..self.confusion.len()).map(|i| self.confusion[i][i]).sum();
                (loss, hits as f64 / self.rows.max(1) as f64)
            }
        }
    }

    /// The metrics as [`crate::workflow::metrics`] reports them.
    pub fn finish(self, pipeline: &Pipeline) -> TestMetrics {
        let loss = self.loss / self.rows.max(1) as f64;
        match self.regression {
            Some(r) => regression_metrics(r.finish(), loss, self.rows, pipeline),
            None => class_metrics(ClassMetrics::from_confusion(self.confusion), loss, self.rows, pipeline),
        }
    }
}

/// Test metrics of `net` on the rows of `reader`'s file that `keep`
/// accepts (by 0-based data row), read with `pre`.
pub fn stream_metrics(
    reader: &mut ChunkReader,
    pre: &Preprocessor,
    keep: &dyn Fn(usize) -> bool,
    net: &EnsembleNet,
    loss: Loss,
) -> Result<StreamMetrics> {
    let mut m = StreamMetrics::default();
    let (mut out, mut grad) = (Matrix::default(), Matrix::default());
    if let Some(names) = pre.class_names() {
        m.confusion = vec![vec![0; names.len()]; names.len()];
    } else {
        m.regression = Some(RegressionSums::default());
    }
    for_each_group(reader, pre, keep, true, &mut |d| {
        net.forward_into(&d.features, &mut out)?;
        m.loss += loss.forward_backward(&out, target_of(d), &mut grad)? as f64 * d.len() as f64;
        m.rows += d.len();
        match (&d.targets, &mut m.regression) {
            (Targets::Classes { labels, .. }, _) => {
                for (r, &l) in labels.iter().enumerate() {
                    m.confusion[l][argmax(out.row(r))] += 1;
                }
            }
            (Targets::Values(v), Some(sums)) => {
                sums.push(&pre.decode_targets(v), &pre.decode_targets(&out));
            }
            (Targets::Values(_), None) => {}
        }
        Ok(())
    })?;
    Ok(m)
}

/// The outputs of `net` for every row of `reader`'s file, handed to `f` in
/// groups of [`GROUP`] rows; returns the rows. A row whose output is not
/// finite is an error naming it in `path` ([`crate::workflow::check_finite_outputs`]).
pub fn stream_outputs(
    reader: &mut ChunkReader,
    pre: &Preprocessor,
    net: &EnsembleNet,
    path: &std::path::Path,
    f: &mut dyn FnMut(&Matrix<f32>) -> Result<()>,
) -> Result<usize> {
    let mut out = Matrix::default();
    let mut done = 0;
    for_each_group(reader, pre, &|_| true, false, &mut |d| {
        net.forward_into(&d.features, &mut out)?;
        // Before the rows are handed on (printed): a non-finite output is an error.
        crate::workflow::check_finite_outputs(&out, done, path)?;
        done += out.rows();
        f(&out)
    })
}
