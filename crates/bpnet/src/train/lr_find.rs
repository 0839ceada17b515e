//! The learning-rate range test (Smith 2017, "Cyclical Learning Rates for
//! Training Neural Networks", arXiv:1506.01186; fastai's `lr_find`).
//!
//! One short run on a copy of the model: at batch `i` of `n` the rate is
//! `lr_i = start * (end / start)^(i / (n - 1))` (exponential growth per
//! batch). The loss of each batch (measured before that batch's update) is
//! smoothed by a bias-corrected exponential moving average,
//! `avg_i = beta avg_{i-1} + (1 - beta) loss_i`, `smooth_i = avg_i / (1 - beta^(i+1))`,
//! and the run stops early when `smooth_i > diverge * min_k smooth_k` or the
//! loss is not finite. The model given is never changed.
//!
//! Two suggestions, as fastai prints them:
//! - **steepest**: the rate where the smoothed loss falls fastest against
//!   `ln(lr)` (the most negative central-difference slope, taken over `k`
//!   points on each side, `k` a twentieth of the points but at least 1, so
//!   that one noisy batch does not make a slope), over the points
//!   without the first tenth and the last five (fastai's trimming, which
//!   skips the noisy start and the blow-up);
//! - **minimum / 10**: a tenth of the rate at the smallest smoothed loss
//!   (same points); none where that is the first of those points, since
//!   a loss that never fell below where they start has no minimum to read
//!   (`--lr auto` then takes the steepest rate, or says that no rate made
//!   the loss fall).

use crate::data::{Batches, Dataset, TargetBuf};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::tensor::Matrix;
use crate::train::Trainer;

/// Settings of a range test; the defaults are fastai's.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFindConfig {
    /// First rate (fastai 1e-7).
    pub start_lr: f64,
    /// Last rate (fastai 10).
    pub end_lr: f64,
    /// Batches at most (fastai 100).
    pub steps: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Smoothing factor of the moving average (fastai 0.98).
    pub beta: f64,
    /// Stop when the smoothed loss exceeds this multiple of its minimum (fastai 4).
    pub diverge: f64,
    /// Seed of the batch order.
    pub seed: u64,
    /// Label smoothing of a cross-entropy loss (see
    /// [`crate::Loss::forward_backward_smoothed`]), as in the training it
    /// chooses a rate for.
    pub label_smoothing: f64,
}

impl Default for LrFindConfig {
    fn default() -> Self {
        LrFindConfig {
            start_lr: 1e-7,
            end_lr: 10.0,
            steps: 100,
            batch_size: 32,
            beta: 0.98,
            diverge: 4.0,
            seed: 0,
            label_smoothing: 0.0,
        }
    }
}

impl LrFindConfig {
    /// Checks `0 < start < end` with both rates normal f32 values (the
    /// updates run in f32: a smaller start is subnormal or 0 there, a larger
    /// end is infinite), at least 2 steps, batch >= 1, beta in [0, 1), diverge > 1.
    pub fn validate(&self) -> Result<()> {
        let ok = |c: bool, field: &str, why: String| if c { Ok(()) } else { Err(Error::config(field, why)) };
        ok(
            self.start_lr > 0.0 && self.end_lr > self.start_lr && self.end_lr.is_finite(),
            "lr-find range",
            format!("need 0 < start ({}) < end ({})", self.start_lr, self.end_lr),
        )?;
        let (lo, hi) = (f32::MIN_POSITIVE as f64, f32::MAX as f64);
        ok(
            self.start_lr >= lo && self.end_lr <= hi,
            "lr-find range",
            format!(
                "start ({:e}) and end ({:e}) must lie in [{lo:e}, {hi:e}], the normal f32 values the updates run in",
                self.start_lr, self.end_lr
            ),
        )?;
        ok(self.steps >= 2, "lr-find steps", format!("{} is below 2", self.steps))?;
        ok(self.batch_size >= 1, "lr-find batch size", "must be at least 1".into())?;
        ok(
            (0.0..1.0).contains(&self.beta),
            "lr-find beta",
            format!("{} is not in [0, 1)", self.beta),
        )?;
        ok(
            self.diverge > 1.0,
            "lr-find diverge",
            format!("{} is not above 1", self.diverge),
        )
    }

    /// The rate at batch `i`.
    pub fn lr_at(&self, i: usize) -> f64 {
        let frac = i as f64 / (self.steps - 1) as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(frac)
    }
}

/// What a range test measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LrFindResult {
    /// Rate of each batch run.
    pub lrs: Vec<f64>,
    /// Raw batch losses (before each update).
    pub losses: Vec<f64>,
    /// Smoothed losses.
    pub smoothed: Vec<f64>,
    /// True when the loss exploded (or stopped being finite) before the last rate.
    pub stopped_early: bool,
    /// Rate of steepest descent of the smoothed loss against ln(lr).
    pub steepest: Option<f64>,
    /// A tenth of the rate at the smallest smoothed loss.
    pub min_div10: Option<f64>,
}

impl LrFindResult {
    /// The suggestion `--lr auto` uses: the minimum / 10, or the
    /// steepest-descent rate when there is no minimum to read. The minimum
    /// / 10 is the more robust of the two: on a loss that barely falls (a
    /// sigmoid network without BN at N(0, 0.01^2) weights, MNIST) the
    /// steepest point was noise at lr 9e-7, where nothing trains.
    pub fn suggestion(&self) -> Option<f64> {
        self.min_div10.or(self.steepest)
    }
}

/// Runs the range test on a copy of `model` with a fresh optimizer of
/// `optimizer` (its rate replaced batch by batch); see the module docs.
pub fn lr_find(
    model: &Sequential<f32>,
    optimizer: &OptimizerConfig,
    loss: Loss,
    train: &Dataset,
    cfg: &LrFindConfig,
) -> Result<LrFindResult> {
    cfg.validate()?;
    if train.is_empty() {
        return Err(Error::config("lr-find data", "no training rows"));
    }
    let mut trainer = Trainer::new(model.clone(), Optimizer::new(optimizer.clone())?, loss);
    crate::loss::check_smoothing(loss, cfg.label_smoothing)?;
    trainer.label_smoothing = cfg.label_smoothing;
    let min_batch = if model.has_batch_norm() { 2 } else { 1 };
    let mut batches = Batches::new(train.len(), cfg.batch_size, min_batch, cfg.seed);
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    let mut r = LrFindResult {
        lrs: Vec::new(),
        losses: Vec::new(),
        smoothed: Vec::new(),
        stopped_early: false,
        steepest: None,
        min_div10: None,
    };
    let (mut avg, mut best) = (0.0, f64::INFINITY);
    for i in 0..cfg.steps {
        let lr = cfg.lr_at(i);
        trainer.optimizer.set_lr(lr);
        train.gather(batches.next_batch(), &mut x, &mut y);
        let l = trainer.step(&x, y.target())? as f64;
        if !l.is_finite() && i == 0 {
            return Err(Error::config(
                "lr-find data",
                format!(
                    "the loss of the first batch is {l} at lr {lr:e}, before any rate could be tried: the data or the network gives non-finite values (scale the features, e.g. --scaling zscore)"
                ),
            ));
        }
        if !l.is_finite() {
            r.stopped_early = true;
            break;
        }
        avg = cfg.beta * avg + (1.0 - cfg.beta) * l;
        let smooth = avg / (1.0 - cfg.beta.powi(i as i32 + 1));
        r.lrs.push(lr);
        r.losses.push(l);
        r.smoothed.push(smooth);
        best = best.min(smooth);
        if smooth > cfg.diverge * best {
            r.stopped_early = true;
            break;
        }
    }
    (r.steepest, r.min_div10) = suggestions(&r.lrs, &r.smoothed);
    Ok(r)
}

/// Whether `n` points leave fewer than 3 once the first tenth and the last
/// five are left out.
pub fn too_few_to_read(n: usize) -> bool {
    n.saturating_sub(5) < n / 10 + 3
}

/// `(steepest, minimum / 10)` over the trimmed points (see the module docs);
/// none when trimming leaves fewer than 3 points (a run of 8 batches or
/// fewer, or one the loss stopped that soon): the untrimmed ones had put the
/// minimum at the blow-up's edge, the last rate over 10.
pub fn suggestions(lrs: &[f64], smoothed: &[f64]) -> (Option<f64>, Option<f64>) {
    let n = lrs.len();
    if too_few_to_read(n) {
        return (None, None);
    }
    let (lo, hi) = (n / 10, n - 5);
    let (l, s) = (&lrs[lo..hi], &smoothed[lo..hi]);
    let min_div10 = s
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .filter(|&(i, _)| i > 0)
        .map(|(i, _)| l[i] / 10.0);
    let k = (l.len() / 20).max(1);
    if l.len() < 2 * k + 1 {
        return (None, min_div10);
    }
    let slope = |i: usize| (s[i + k] - s[i - k]) / (l[i + k].ln() - l[i - k].ln());
    let steepest = (k..l.len() - k)
        .map(|i| (i, slope(i)))
        .filter(|(_, g)| *g < 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| l[i]);
    (steepest, min_div10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Too few points to trim give no suggestion: untrimmed, the minimum of
    /// a falling loss was its last point, the last rate over 10.
    #[test]
    fn too_few_points_give_no_suggestion() {
        for n in [2usize, 5, 7] {
            let lrs: Vec<f64> = (0..n).map(|i| 10f64.powi(i as i32 - 6)).collect();
            let smoothed: Vec<f64> = (0..n).map(|i| 2.0 - i as f64 * 0.1).collect();
            assert!(too_few_to_read(n));
            assert_eq!(suggestions(&lrs, &smoothed), (None, None), "{n} points");
        }
        assert!(!too_few_to_read(8) && !too_few_to_read(100));
    }

    #[test]
    fn rates_grow_exponentially_from_start_to_end() {
        let c = LrFindConfig {
            start_lr: 1e-4,
            end_lr: 1.0,
            steps: 5,
            ..LrFindConfig::default()
        };
        let lrs: Vec<f64> = (0..5).map(|i| c.lr_at(i)).collect();
        for (got, want) in lrs.iter().zip([1e-4, 1e-3, 1e-2, 1e-1, 1.0]) {
            assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn suggestions_on_a_known_curve() {
        // Loss falls fastest at lr = 1e-2 (a tanh step in log lr) and is
        // lowest near 1e-1 (the grid point 10^-1), then rises.
        let lrs: Vec<f64> = (0..41).map(|i| 10f64.powf(-5.0 + i as f64 * 0.125)).collect();
        let s: Vec<f64> = lrs
            .iter()
            .map(|l| {
                let t = l.log10();
                2.0 - (2.0 * (t + 2.0)).tanh() + if t > -1.0 { 3.0 * (t + 1.0).powi(2) } else { 0.0 }
            })
            .collect();
        let (steep, min10) = suggestions(&lrs, &s);
        let steep = steep.unwrap();
        assert!((steep.log10() + 2.0).abs() < 0.13, "steepest {steep}");
        let min10 = min10.unwrap();
        assert!((min10.log10() + 2.0).abs() < 1e-9, "min/10 {min10}");
    }

    /// The first tenth and the last five points are not read: a lower and
    /// steeper cliff at point 3, or at point 97 of 100, changes neither
    /// suggestion of a curve that falls fastest at point 50 and is lowest at
    /// point 94, the last one kept.
    #[test]
    fn the_first_tenth_and_the_last_five_points_are_not_read() {
        let lrs: Vec<f64> = (0..100).map(|i| 10f64.powf(-6.0 + i as f64 * 0.07)).collect();
        let curve: Vec<f64> = (0..100).map(|i| 2.0 - ((i as f64 - 50.0) / 5.0).tanh() * 0.5).collect();
        let plain = suggestions(&lrs, &curve);
        assert_eq!(plain.1, Some(lrs[94] / 10.0));
        assert!(plain.0.is_some_and(|s| s >= lrs[48] && s <= lrs[52]), "{plain:?}");
        let with_cliff = |at: usize| {
            let mut cliff = curve.clone();
            cliff[at] = -10.0;
            suggestions(&lrs, &cliff)
        };
        for at in [3, 9, 95, 97] {
            assert_eq!(with_cliff(at), plain, "cliff at {at}");
        }
        // Kept points: the cliff is the minimum, except at the first one
        // kept, where a minimum means the loss never fell (no minimum).
        for at in [11, 94] {
            assert_eq!(with_cliff(at).1, Some(lrs[at] / 10.0), "cliff at {at}");
        }
        assert_eq!(with_cliff(10).1, None);
    }

    /// A loss that only rises has no minimum to read and no steepest fall:
    /// no suggestion (`--lr auto` then fails, naming the range test). One
    /// that dips in the middle after a rise from its start has a steepest
    /// fall but its smallest value at the start: the steepest rate is the
    /// suggestion.
    #[test]
    fn a_loss_that_never_falls_below_its_start_has_no_minimum() {
        let lrs: Vec<f64> = (0..60).map(|i| 10f64.powf(-5.0 + i as f64 * 0.1)).collect();
        let rising: Vec<f64> = (0..60).map(|i| 1.0 + i as f64 * 0.01).collect();
        assert_eq!(suggestions(&lrs, &rising), (None, None));
        let r = LrFindResult {
            lrs: lrs.clone(),
            losses: rising.clone(),
            smoothed: rising,
            steepest: None,
            min_div10: None,
            stopped_early: false,
        };
        assert_eq!(r.suggestion(), None);
        let dip: Vec<f64> = (0..60)
            .map(|i| 1.0 + i as f64 * 0.01 - if (30..40).contains(&i) { 0.2 } else { 0.0 })
            .collect();
        let (steep, min10) = suggestions(&lrs, &dip);
        assert_eq!(min10, None);
        // The fall is between points 29 and 30.
        assert!(steep.is_some_and(|s| s >= lrs[27] && s <= lrs[31]), "{steep:?}");
    }
}
