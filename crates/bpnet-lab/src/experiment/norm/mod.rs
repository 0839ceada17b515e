//! Studies of where batch normalization breaks and what to use then: batch
//! size (BN, Batch Renormalization, Ghost BN, LayerNorm, none), BN placement
//! before or after the activation, dropout before or after BN (with the
//! variance shift of Li et al. 2019), and the range of learning rates with
//! and without BN. Every arm is trained from several seeds (`seed`,
//! `seed + 1`, ...; each seed sets the weights and the batch order), and the
//! tables give the mean and the sample standard deviation over the seeds.

pub(super) mod batch_size;
pub(super) mod dropout;
pub(super) mod lr_range;
pub(super) mod placement;

use super::Mnist;
use super::lockstep::test_accuracy;
use crate::plot::{Rgb, Series};
use bpnet::comm::block;
use bpnet::data::{Batches, Dataset, TargetBuf};
use bpnet::error::Result;
use bpnet::layers::Mode;
use bpnet::loss::Loss;
use bpnet::model::Sequential;
use bpnet::optim::{Optimizer, OptimizerConfig};
use bpnet::tensor::Matrix;
use bpnet::train::{BnSyncMode, Trainer};

/// Rows per evaluation chunk.
const EVAL_CHUNK: usize = 1000;

/// What one training run of one seed did.
#[derive(Debug, Clone)]
pub(super) struct Run {
    /// `(step, test accuracy)` at each evaluation (the last at the last step).
    pub curve: Vec<(usize, f64)>,
    /// The step whose loss was not finite (training stopped there).
    pub diverged_at: Option<usize>,
    /// The trained network.
    pub model: Sequential<f32>,
}

impl Run {
    /// Test accuracy at the end (that of a diverged run is measured on the
    /// weights from before the bad step).
    pub fn final_accuracy(&self) -> f64 {
        self.curve.last().map_or(f64::NAN, |p| p.1)
    }
}

/// Trains `model` by plain SGD at `lr` on `steps` mini-batches of `batch`
/// rows (order from `seed`), evaluating test accuracy `evals` times at equal
/// intervals (and at the end). A non-finite loss stops training.
pub(super) fn train(
    model: Sequential<f32>,
    lr: f64,
    batch: usize,
    steps: usize,
    seed: u64,
    data: &Mnist,
    evals: usize,
) -> Result<Run> {
    let min_batch = if model.has_batch_norm() { 2 } else { 1 };
    let mut t = Trainer::new(model, Optimizer::new(OptimizerConfig::sgd(lr))?, Loss::CrossEntropy);
    let ranks = &data.ranks;
    t.set_comm(ranks.clone(), BnSyncMode::Global)?;
    let mut batches = Batches::new(data.train.len(), batch, min_batch, seed ^ 0x5EED);
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    let every = (steps / evals.max(1)).max(1);
    let mut run = Run {
        curve: Vec::new(),
        diverged_at: None,
        model: Sequential::new(Vec::new()),
    };
    for step in 1..=steps {
        // One process takes the whole batch; several ranks each their block.
        let rows = batches.next_batch();
        let (lo, hi) = block(rows.len(), ranks.rank(), ranks.size());
        data.train.gather(&rows[lo..hi], &mut x, &mut y);
        let loss = if ranks.size() == 1 {
            t.compute_gradients(&x, y.target())?
        } else {
            t.compute_gradients_part(&x, y.target(), lo, rows.len())?
        };
        // A running statistic past f32's range is a divergence too, as in `fit`.
        if !loss.is_finite() || !t.model.grads_finite() || t.model.non_finite_running().is_some() {
            run.diverged_at = Some(step);
            break;
        }
        t.optimizer.step(&mut t.model)?;
        if step % every == 0 && step != steps {
            run.curve
                .push((step, test_accuracy(&mut t.model, &data.test, EVAL_CHUNK, &**ranks)?));
        }
    }
    let last = run.diverged_at.unwrap_or(steps);
    run.curve
        .push((last, test_accuracy(&mut t.model, &data.test, EVAL_CHUNK, &**ranks)?));
    // The trained network, on its own (its batch statistics unsynchronized).
    t.model.set_bn_sync(None)?;
    run.model = t.model;
    Ok(run)
}

/// Mean and sample standard deviation (0 for one value; NaN for none).
pub(super) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `97.12% ± 0.31` for fractions; one value alone, `97.12%` (a sample
/// sd of one value is undefined: it read `± 0.00`).
pub(super) fn pct_sd(v: &[f64]) -> String {
    let (m, s) = mean_sd(v);
    match (m.is_finite(), v.len()) {
        (false, _) => "-".into(),
        (true, 1) => format!("{:.2}%", 100.0 * m),
        (true, _) => format!("{:.2}% ± {:.2}", 100.0 * m, 100.0 * s),
    }
}

/// `0.0123 ± 0.0004`; one value alone, `0.0123`.
pub(super) fn num_sd(v: &[f64]) -> String {
    let (m, s) = mean_sd(v);
    match (m.is_finite(), v.len()) {
        (false, _) => "-".into(),
        (true, 1) => format!("{m:.4}"),
        (true, _) => format!("{m:.4} ± {s:.4}"),
    }
}

/// A line through the means of `groups` at `xs`, and one series of
/// vertical bars (mean ± sd) in the same colour.
pub(super) fn mean_with_bars(label: &str, color: Rgb, xs: &[f64], groups: &[Vec<f64>]) -> [Series; 2] {
    let mut line = Vec::new();
    let mut bars = Vec::new();
    for (&x, g) in xs.iter().zip(groups) {
        let (m, s) = mean_sd(g);
        line.push((x, m));
        bars.extend([(x, m - s), (x, m + s), (f64::NAN, f64::NAN)]);
    }
    [
        Series::new(label, color, line).width(3),
        Series::new(format!("{label}: ± 1 sd"), color.lighten(0.4), bars).width(2),
    ]
}

/// Total-variation distance between the train-mode and eval-mode softmax
/// outputs of `model` on `data`, averaged over rows: the rows go through in
/// batches of `batch` rows (a trailing batch of one row is left out when the
/// model has batch normalization), on a copy, so running statistics are not
/// changed. 0 when the two modes compute the same function.
pub(super) fn train_eval_gap(model: &Sequential<f32>, data: &Dataset, batch: usize) -> Result<f64> {
    let mut m = model.clone();
    let mut saved = Vec::new();
    model.save_running(&mut saved);
    let (mut total, mut rows) = (0.0, 0usize);
    let x = &data.features;
    let min = if model.has_batch_norm() { 2 } else { 1 };
    let mut start = 0;
    let mut chunk = Matrix::default();
    let classes = model.out_features().unwrap_or(1);
    while start + min <= x.rows() {
        let end = (start + batch).min(x.rows());
        chunk.resize(end - start, x.cols());
        chunk
            .as_mut_slice()
            .copy_from_slice(&x.as_slice()[start * x.cols()..end * x.cols()]);
        let train = softmax(m.forward(&chunk, Mode::Train)?);
        let eval = softmax(m.forward(&chunk, Mode::Eval)?);
        for (a, b) in train.chunks(classes).zip(eval.chunks(classes)) {
            total += 0.5 * a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f64>();
        }
        rows += end - start;
        start = end;
        // Restore the running statistics the train-mode pass moved.
        m.restore_running(&saved);
    }
    Ok(if rows > 0 { total / rows as f64 } else { f64::NAN })
}

/// Row-wise softmax of `[rows, classes]`, in f64, flattened.
fn softmax(y: &Matrix<f32>) -> Vec<f64> {
    let c = y.cols();
    let mut out = Vec::with_capacity(y.as_slice().len());
    for row in y.as_slice().chunks(c) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| v / s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{mean_sd, num_sd, pct_sd};

    #[test]
    fn mean_and_sample_sd() {
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(mean_sd(&[7.0]), (7.0, 0.0));
    }

    /// One seed has no spread to show (it read `14.00% ± 0.00`).
    #[test]
    fn one_value_is_shown_without_a_spread() {
        assert_eq!(pct_sd(&[0.14]), "14.00%");
        assert_eq!(pct_sd(&[0.1, 0.2]), "15.00% ± 7.07");
        assert_eq!(num_sd(&[0.0123]), "0.0123");
        assert_eq!(num_sd(&[]), "-");
    }
}
