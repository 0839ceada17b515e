//! Batch normalization over features (Ioffe & Szegedy 2015, arXiv:1502.03167).
//!
//! Shapes: `x, y: [batch, features]`; `gamma`, `beta`, running statistics:
//! `[features]`. Per feature, over the `m` rows of a training batch
//! (Algorithm 1):
//!
//! ```text
//! mu = mean(x)   var = (1/m) sum (x - mu)^2   xhat = (x - mu) / sqrt(var + eps)
//! y  = gamma * xhat + beta
//! ```
//!
//! Backward (with `g = dy`):
//! `dbeta = sum g`, `dgamma = sum g*xhat`,
//! `dx = gamma / (m sqrt(var + eps)) * (m g - sum g - xhat * sum g*xhat)`.
//!
//! Inference (Algorithm 2) replaces `mu, var` by running or population
//! statistics, making the layer the affine map
//! `y = gamma/sqrt(Var+eps) * x + (beta - gamma E[x]/sqrt(Var+eps))`.
//!
//! The same layer is Batch Renormalization or Ghost BN when
//! [`BatchNormConfig::kind`] says so: only their training passes differ
//! (`batch_renorm.rs`, `ghost_batch_norm.rs`); parameters, running
//! statistics, inference, folding and files are shared.

use super::bn_kernels::{backward_sums, input_gradient_kernel, normalize_kernel, statistics_kernel};
use super::bn_sync::{self, BnSync};
use super::{Mode, NormKind, Param, ParamKind};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// How running statistics follow the batch statistics during training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Momentum {
    /// PyTorch's convention: `running = (1 - m) * running + m * batch`
    /// (default `m = 0.1`).
    Torch(f64),
    /// Keras' convention: `running = m * running + (1 - m) * batch`
    /// (Keras' default `m = 0.99`). `Keras(0.9)` equals `Torch(0.1)`.
    Keras(f64),
    /// PyTorch's `momentum=None`: the cumulative average of all batch
    /// statistics seen, `running = running + (batch - running) / k` at batch `k`.
    Cumulative,
}

/// Batch normalization settings. The defaults are PyTorch's `BatchNorm1d`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root (PyTorch 1e-5, Keras 1e-3).
    pub eps: f64,
    /// Running-statistics update rule.
    pub momentum: Momentum,
    /// Learn the scale gamma (init 1) and shift beta (init 0).
    pub affine: bool,
    /// Keep running statistics for inference; if false, inference also uses
    /// batch statistics (PyTorch's `track_running_stats=False`).
    pub track_running_stats: bool,
    /// Update the running variance with the unbiased batch variance
    /// `m/(m-1) var` (PyTorch) rather than the biased one (Keras).
    pub unbiased_running_var: bool,
    /// Which normalization: batch (default), Batch Renormalization, Ghost BN
    /// or layer normalization (a [`super::LayerNorm`] layer, which uses only
    /// `eps` and `affine`). Plain batch normalization is not written to
    /// files, so they stay readable by builds without this field.
    #[serde(default, skip_serializing_if = "NormKind::is_batch")]
    pub kind: NormKind,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Momentum::Torch(0.1),
            affine: true,
            track_running_stats: true,
            unbiased_running_var: true,
            kind: NormKind::Batch,
        }
    }
}

impl BatchNormConfig {
    /// Keras' `BatchNormalization` defaults: eps 1e-3, momentum 0.99 in its
    /// convention, running variance from the biased batch variance.
    pub fn keras() -> Self {
        BatchNormConfig {
            eps: 1e-3,
            momentum: Momentum::Keras(0.99),
            unbiased_running_var: false,
            ..Self::default()
        }
    }

    /// Checks eps > 0 and momentum in [0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(Error::config(
                "batch-norm eps",
                format!("{} is not a positive number", self.eps),
            ));
        }
        if let Momentum::Torch(m) | Momentum::Keras(m) = self.momentum
            && !(0.0..=1.0).contains(&m)
        {
            return Err(Error::config("batch-norm momentum", format!("{m} is not in [0, 1]")));
        }
        if matches!(self.kind, NormKind::Renorm(_)) && !self.track_running_stats {
            return Err(Error::config(
                "batch renorm",
                "needs running statistics (track_running_stats = true): its corrections are relative to them",
            ));
        }
        self.kind.validate()
    }

    /// Weight of the new batch statistic in the running average, for the
    /// `k`-th training batch (k >= 1).
    fn new_weight(&self, k: u64) -> f64 {
        match self.momentum {
            Momentum::Torch(m) => m,
            Momentum::Keras(m) => 1.0 - m,
            Momentum::Cumulative => 1.0 / k as f64,
        }
    }
}

/// Running statistics: updated only by training forward passes (or replaced by
/// a population recalibration), never by an optimizer.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningStats<T> {
    /// Running mean `[features]`, initially 0.
    pub mean: Vec<T>,
    /// Running variance `[features]`, initially 1.
    pub var: Vec<T>,
    /// Training batches seen (PyTorch's `num_batches_tracked`).
    pub batches: u64,
}

/// Sums for the population statistics of Algorithm 2.
#[derive(Debug, Clone, Default)]
struct Population {
    sum_mean: Vec<f64>,
    sum_unbiased_var: Vec<f64>,
    batches: u64,
}

/// A batch normalization layer.
#[derive(Debug, Clone)]
pub struct BatchNorm<T> {
    pub(super) path: String,
    pub(super) config: BatchNormConfig,
    /// Scale gamma `[1, features]` and shift beta `[1, features]`, if affine.
    pub affine: Option<(Param<T>, Param<T>)>,
    /// Running statistics used at inference.
    pub running: RunningStats<T>,
    population: Option<Population>,
    // Per-feature statistics of the last forward: mean, biased variance (batch
    // statistics only) and 1/sqrt(var + eps).
    pub(super) mean: Vec<T>,
    pub(super) var: Vec<T>,
    pub(super) inv_std: Vec<T>,
    pub(super) used_batch_stats: bool,
    pub(super) xhat: Matrix<T>,
    pub(super) out: Matrix<T>,
    pub(super) dx: Matrix<T>,
    pub(super) sum_dy: Vec<T>,
    pub(super) sum_dy_xhat: Vec<T>,
    pub(super) scale: Vec<T>,
    /// State of the renorm and ghost training passes (empty for plain BN).
    pub(super) variant: super::batch_renorm::VariantState<T>,
    /// Statistics across ranks in data-parallel training (`None`: this process's rows).
    sync: Option<BnSync>,
    /// Rows the last training forward normalized over (all ranks' with global sync).
    batch_rows: usize,
    sync_buf: Vec<f64>,
}

impl<T: Scalar> BatchNorm<T> {
    /// A layer over `features` features named `path` (gamma is
    /// `{path}.weight`, beta `{path}.bias`, as in PyTorch).
    pub fn new(path: &str, features: usize, config: BatchNormConfig) -> Result<Self> {
        config.validate()?;
        if config.kind == NormKind::Layer {
            return Err(Error::config(
                "batch norm",
                format!("{path}: layer normalization is a LayerNorm layer, not a BatchNorm"),
            ));
        }
        let vec = |name: &str, kind, v| Param::new(format!("{path}.{name}"), kind, Matrix::filled(1, features, v));
        let affine = config.affine.then(|| {
            (
                vec("weight", ParamKind::NormScale, T::ONE),
                vec("bias", ParamKind::NormShift, T::ZERO),
            )
        });
        Ok(BatchNorm {
            path: path.to_string(),
            config,
            affine,
            running: RunningStats {
                mean: vec![T::ZERO; features],
                var: vec![T::ONE; features],
                batches: 0,
            },
            population: None,
            mean: vec![T::ZERO; features],
            var: vec![T::ZERO; features],
            inv_std: vec![T::ZERO; features],
            used_batch_stats: false,
            xhat: Matrix::default(),
            out: Matrix::default(),
            dx: Matrix::default(),
            sum_dy: vec![T::ZERO; features],
            sum_dy_xhat: vec![T::ZERO; features],
            scale: vec![T::ZERO; features],
            variant: Default::default(),
            sync: None,
            batch_rows: 0,
            sync_buf: Vec::new(),
        })
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// The settings.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// The layer's path, e.g. `layers.1`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How training batches split over ranks are normalized (see
    /// [`BnSync`]); `None` (the default) normalizes this process's rows.
    ///
    /// Errors for Batch Renormalization and Ghost BN, whose statistics are
    /// not synchronized across ranks.
    pub fn set_sync(&mut self, sync: Option<BnSync>) -> Result<()> {
        if sync.is_some() && self.config.kind != NormKind::Batch {
            return Err(Error::config(
                "bn-sync",
                format!(
                    "{}: Batch Renormalization and Ghost BN are not synchronized across processes; train them in one process",
                    self.path
                ),
            ));
        }
        self.sync = sync;
        Ok(())
    }

    /// Forward pass; see the module docs for the formulas per mode. In
    /// training mode with [`BnSync::Global`] every rank must call it (a rank
    /// without rows with `x: [0, features]`).
    pub fn forward(&mut self, x: &Matrix<T>, mode: Mode) -> Result<()> {
        let (m, f) = (x.rows(), self.features());
        if x.cols() != f {
            return Err(Error::shape("batch-norm forward", format!("[_, {f}]"), x));
        }
        let batch_stats = mode != Mode::Eval || !self.config.track_running_stats;
        let eps = T::from_f64(self.config.eps);
        let global = match (&self.sync, mode) {
            (Some(BnSync::Global(c)), Mode::Train) => Some(c.clone()),
            _ => None,
        };
        self.batch_rows = match &global {
            Some(comm) => {
                let stats = [&mut self.mean[..], &mut self.var, &mut self.inv_std];
                bn_sync::global_statistics(&**comm, x.as_slice(), stats, eps, &mut self.sync_buf)?
            }
            None => m,
        };
        // With local sync the ranks check their row counts together, in the
        // running update's all-reduce (a rank may hold no rows).
        let local_sync = matches!((&self.sync, mode), (Some(BnSync::Local(_)), Mode::Train));
        if batch_stats && self.batch_rows < 2 && !(local_sync && self.config.track_running_stats) {
            return Err(Error::BatchTooSmall {
                layer: self.path.clone(),
                rows: self.batch_rows,
            });
        }
        self.variant.active = None;
        match self.config.kind {
            NormKind::Ghost { size } if batch_stats && self.sync.is_none() => return self.ghost_forward(x, mode, size),
            NormKind::Renorm(c) if mode == Mode::Train && self.sync.is_none() => return self.renorm_forward(x, c),
            _ => {}
        }
        match (&global, batch_stats) {
            (Some(_), _) => {}
            (None, true) if m > 0 => self.batch_statistics(x, eps),
            (None, true) => {}
            (None, false) => {
                for j in 0..f {
                    self.mean[j] = self.running.mean[j];
                    self.inv_std[j] = T::ONE / (self.running.var[j] + eps).sqrt();
                }
            }
        }
        self.used_batch_stats = batch_stats;
        self.normalize(x);
        match mode {
            Mode::Train if self.config.track_running_stats => self.update_running(m)?,
            Mode::Recalibrate => self.accumulate_population(m),
            _ => {}
        }
        Ok(())
    }

    /// Backward pass for the last forward (batch or fixed statistics).
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        let (m, f) = (x.rows(), self.features());
        if dy.shape() != [m, f] || self.xhat.shape() != [m, f] {
            return Err(Error::shape(
                "batch-norm backward",
                format!("[{m}, {f}] after a forward of that shape"),
                dy,
            ));
        }
        match self.variant.active {
            Some(super::batch_renorm::Variant::Ghost) => return self.ghost_backward(dy, need_dx),
            Some(super::batch_renorm::Variant::Renorm) => return self.renorm_backward(dy, need_dx),
            None => {}
        }
        backward_sums(
            dy.as_slice(),
            self.xhat.as_slice(),
            &mut self.sum_dy,
            &mut self.sum_dy_xhat,
        );
        if let Some((gamma, beta)) = &mut self.affine {
            for j in 0..f {
                gamma.grad.as_mut_slice()[j] += self.sum_dy_xhat[j];
                beta.grad.as_mut_slice()[j] += self.sum_dy[j];
            }
        }
        // Parameter gradients keep this rank's share (the gradient all-reduce
        // adds the shares); dx needs the sums over the whole global batch.
        if let (Some(BnSync::Global(comm)), true, true) = (&self.sync, need_dx, self.used_batch_stats) {
            bn_sync::global_backward_sums(&**comm, &mut self.sum_dy, &mut self.sum_dy_xhat, &mut self.sync_buf)?;
        }
        if need_dx {
            self.input_gradient(dy);
        }
        Ok(())
    }

    /// The last forward's output `[batch, features]`.
    pub fn output(&self) -> &Matrix<T> {
        &self.out
    }

    /// The last backward's input gradient `[batch, features]`.
    pub fn input_grad(&self) -> &Matrix<T> {
        &self.dx
    }

    /// Visits gamma, then beta (if affine).
    pub fn visit_params(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        if let Some((g, b)) = &mut self.affine {
            f(g);
            f(b);
        }
    }

    /// E.g. `BatchNorm(100, eps 1e-5, momentum Torch(0.1))`.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let affine = if c.affine { "" } else { ", no affine" };
        let name = match c.kind {
            NormKind::Renorm(r) => format!(
                "BatchRenorm(rmax {}, dmax {}, warm-up {}, ramps to {}/{}; ",
                r.rmax, r.dmax, r.warmup_steps, r.rmax_steps, r.dmax_steps
            ),
            NormKind::Ghost { size } => format!("GhostBatchNorm(virtual batch {size}; "),
            _ => "BatchNorm(".into(),
        };
        format!(
            "{name}{}, eps {:e}, momentum {:?}{affine})",
            self.features(),
            c.eps,
            c.momentum
        )
    }

    /// Starts a population recalibration: clears the sums that
    /// [`Mode::Recalibrate`] forward passes accumulate.
    pub fn begin_recalibration(&mut self) {
        let f = self.features();
        self.population = Some(Population {
            sum_mean: vec![0.0; f],
            sum_unbiased_var: vec![0.0; f],
            batches: 0,
        });
    }

    /// Ends a recalibration: running mean = average of the batch means,
    /// running var = average of the unbiased batch variances `m/(m-1) var_B`
    /// (Algorithm 2; with equal batch sizes this is `m/(m-1)` times the
    /// average biased variance). Returns the number of batches used.
    pub fn finish_recalibration(&mut self) -> Result<u64> {
        let pop = self
            .population
            .take()
            .filter(|p| p.batches > 0)
            .ok_or_else(|| Error::State(format!("{}: recalibration saw no batch", self.path)))?;
        let k = pop.batches as f64;
        for j in 0..self.features() {
            self.running.mean[j] = T::from_f64(pop.sum_mean[j] / k);
            self.running.var[j] = T::from_f64(pop.sum_unbiased_var[j] / k);
        }
        Ok(pop.batches)
    }

    /// Two-pass per-feature mean and biased variance of `x` into `mean`,
    /// `var` and `inv_std`.
    fn batch_statistics(&mut self, x: &Matrix<T>, eps: T) {
        statistics_kernel(x.as_slice(), &mut self.mean, &mut self.var, &mut self.inv_std, eps);
    }

    /// `xhat = (x - mean) * inv_std`, `y = gamma * xhat + beta`.
    pub(super) fn normalize(&mut self, x: &Matrix<T>) {
        let (m, f) = (x.rows(), x.cols());
        self.xhat.resize(m, f);
        self.out.resize(m, f);
        let (xh, out) = (self.xhat.as_mut_slice(), self.out.as_mut_slice());
        let affine = self
            .affine
            .as_ref()
            .map(|(g, b)| (g.value.as_slice(), b.value.as_slice()));
        normalize_kernel(x.as_slice(), &self.mean, &self.inv_std, affine, xh, out);
    }

    /// Running statistics after a training batch of `m` rows on this rank
    /// (with global sync, the global batch's statistics and count).
    pub(super) fn update_running(&mut self, m: usize) -> Result<()> {
        if let Some(BnSync::Local(comm)) = &self.sync {
            self.running.batches += 1;
            let w = T::from_f64(self.config.new_weight(self.running.batches));
            let unbiased = self.config.unbiased_running_var;
            let stats = [&self.mean[..], &self.var[..]];
            let (mean, var) =
                bn_sync::average_block_statistics(&**comm, m, stats, unbiased, &self.path, &mut self.sync_buf)?;
            for j in 0..mean.len() {
                let (rm, rv) = (&mut self.running.mean[j], &mut self.running.var[j]);
                *rm = (T::ONE - w) * *rm + w * T::from_f64(mean[j]);
                *rv = (T::ONE - w) * *rv + w * T::from_f64(var[j]);
            }
            return Ok(());
        }
        let m = if self.sync.is_some() { self.batch_rows } else { m };
        let unbias = if self.config.unbiased_running_var {
            m as f64 / (m as f64 - 1.0)
        } else {
            1.0
        };
        self.blend_running(T::from_f64(unbias));
        Ok(())
    }

    /// Moves the running statistics towards `mean` and `unbias * var`.
    pub(super) fn blend_running(&mut self, unbias: T) {
        self.running.batches += 1;
        let w = T::from_f64(self.config.new_weight(self.running.batches));
        for j in 0..self.features() {
            let var = self.var[j] * unbias;
            let (rm, rv) = (&mut self.running.mean[j], &mut self.running.var[j]);
            *rm = (T::ONE - w) * *rm + w * self.mean[j];
            *rv = (T::ONE - w) * *rv + w * var;
        }
    }

    pub(super) fn accumulate_population(&mut self, m: usize) {
        self.accumulate_population_unbiased(m as f64 / (m as f64 - 1.0));
    }

    /// Adds `mean` and `unbias * var` to the population sums.
    pub(super) fn accumulate_population_unbiased(&mut self, unbias: f64) {
        if let Some(p) = &mut self.population {
            for (j, (&mu, &var)) in self.mean.iter().zip(&self.var).enumerate() {
                p.sum_mean[j] += mu.to_f64();
                p.sum_unbiased_var[j] += var.to_f64() * unbias;
            }
            p.batches += 1;
        }
    }

    /// `dx` from the sums of the last backward: with batch statistics
    /// `dx = gamma inv_std (dy - mean(dy) - xhat mean(dy xhat))`, with fixed
    /// statistics `dx = gamma inv_std dy`.
    pub(super) fn input_gradient(&mut self, dy: &Matrix<T>) {
        let (m, f) = (dy.rows(), self.features());
        self.dx.resize(m, f);
        let inv_m = T::ONE / T::from_f64(self.batch_rows.max(1) as f64);
        let keep = if self.used_batch_stats { T::ONE } else { T::ZERO };
        for j in 0..f {
            let gamma = self.affine.as_ref().map_or(T::ONE, |(g, _)| g.value.as_slice()[j]);
            self.scale[j] = gamma * self.inv_std[j];
            self.sum_dy[j] *= inv_m * keep;
            self.sum_dy_xhat[j] *= inv_m * keep;
        }
        let dx = self.dx.as_mut_slice();
        let sums = [&self.scale[..], &self.sum_dy, &self.sum_dy_xhat];
        input_gradient_kernel(dy.as_slice(), self.xhat.as_slice(), sums, dx);
    }
}
