//! Training diagnostics: per epoch and per layer, the mean and standard
//! deviation of each activation layer's outputs, the fraction of saturated
//! sigmoid/tanh units or dead ReLU units, and the L2 norm of each parameter's
//! gradient; plus warnings in plain words when gradients vanish or explode or
//! units saturate or die.
//!
//! A [`Diagnostics`] collector watches the [`Event`]s of [`crate::train::fit`]:
//! after every step it reads each activation layer's output and each
//! parameter's gradient (both left in the model by that step) and accumulates
//! them; after every epoch it closes an [`EpochDiagnostics`] record.
//!
//! Definitions (per epoch, over every training step of the epoch):
//! - `mean`, `std`: of all output values of the layer (population std);
//! - `saturated` (sigmoid, tanh): fraction of output values within 0.01 of the
//!   function's limits (sigmoid `y < 0.01` or `y > 0.99`, i.e. `|x| > 4.6`;
//!   tanh `|y| > 0.99`, i.e. `|x| > 2.65`), where the derivative is below 4%
//!   (sigmoid) or 2% (tanh) of its maximum;
//! - `dead` (ReLU): fraction of units whose output was 0 for every row of
//!   every batch of the epoch;
//! - `grad_norms`: mean over the epoch's steps of `||dL/dp||_2` of each
//!   parameter tensor `p` (the batch-mean loss's gradient).

mod saved;
mod stats;
mod warnings;

pub use stats::{Moments, l2_norm, percentile, percentile_of_sorted, percentiles};
pub use warnings::{Thresholds, Warning, WarningKind, warnings};

use super::fit::{EpochRecord, Event};
use super::metrics::RegressionMetrics;
use super::{default_loss, evaluate};
use crate::data::{Dataset, Targets};
use crate::error::Result;
use crate::layers::{Activation, Layer, Param, ParamKind};
use crate::model::Sequential;
use serde::Serialize;

/// Output statistics of one activation layer over one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivationDiagnostics {
    /// The layer's path, e.g. `layers.2`.
    pub layer: String,
    /// The activation's name, e.g. `sigmoid`.
    pub activation: String,
    /// Mean of the outputs.
    pub mean: f64,
    /// Standard deviation of the outputs.
    pub std: f64,
    /// Fraction of saturated outputs (sigmoid and tanh only).
    pub saturated: Option<f64>,
    /// Fraction of units that never activated (ReLU only).
    pub dead: Option<f64>,
}

/// The mean gradient norm of one parameter tensor over one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradNorm {
    /// The parameter's path, e.g. `layers.0.weight`.
    pub param: String,
    /// Whether it is a Dense weight matrix (the tensors compared for
    /// vanishing gradients).
    pub weight: bool,
    /// Mean over the epoch's steps of the gradient's L2 norm.
    pub norm: f64,
}

/// The diagnostics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochDiagnostics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Accuracy (classification) or R² (regression) in evaluation mode on the
    /// training sample given to [`Diagnostics::with_train_sample`], if any.
    pub train_metric: Option<f64>,
    /// One entry per activation layer, in network order.
    pub activations: Vec<ActivationDiagnostics>,
    /// One entry per parameter tensor, in network order.
    pub grad_norms: Vec<GradNorm>,
}

/// Accumulators of one activation layer during an epoch.
#[derive(Debug, Clone)]
struct LayerAcc {
    index: usize,
    kind: Activation,
    moments: Moments,
    saturated: u64,
    ever_active: Vec<bool>,
}

/// Collects [`EpochDiagnostics`] from training events.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    sample: Option<Dataset>,
    layers: Vec<LayerAcc>,
    grads: Vec<(String, bool, f64)>,
    steps: usize,
    records: Vec<EpochDiagnostics>,
}

impl Diagnostics {
    /// A collector without a training-metric sample.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also measures the training metric at the end of each epoch, in
    /// evaluation mode, on `sample` (e.g. up to 10,000 training rows).
    pub fn with_train_sample(mut self, sample: Dataset) -> Self {
        self.sample = Some(sample);
        self
    }

    /// Handles one event of [`crate::train::fit`].
    pub fn observe(&mut self, e: &Event<'_>) -> Result<()> {
        match e {
            Event::Step { model, skipped, .. } => {
                self.step(model, *skipped);
                Ok(())
            }
            Event::Epoch(record, model) => self.end_epoch(record, model),
            Event::Checkpoint { .. } => Ok(()),
        }
    }

    /// Accumulates the activations and gradients a training step left in
    /// `model`; a `skipped` step's gradients were not finite (and were
    /// zeroed since), so each counts as an infinite norm: the epoch's mean
    /// is not finite and the exploding-gradient warning names it (the
    /// zeros counted as norms of 0, and a diverged run read "no exploding
    /// gradients").
    pub fn step(&mut self, model: &Sequential<f32>, skipped: bool) {
        let mut k = 0;
        for (index, layer) in model.layers().iter().enumerate() {
            let Layer::Activation(a) = layer else { continue };
            if self.layers.len() <= k {
                self.layers.push(LayerAcc {
                    index,
                    kind: a.kind,
                    moments: Moments::default(),
                    saturated: 0,
                    ever_active: Vec::new(),
                });
            }
            self.layers[k].add(layer.output().as_slice(), layer.output().cols());
            k += 1;
        }
        let mut g = 0;
        for layer in model.layers() {
            for p in params(layer) {
                if self.grads.len() <= g {
                    self.grads.push((p.name.clone(), p.kind == ParamKind::Weight, 0.0));
                }
                self.grads[g].2 += match skipped {
                    true => f64::INFINITY,
                    false => l2_norm(p.grad.as_slice()),
                };
                g += 1;
            }
        }
        self.steps += 1;
    }

    /// Closes the epoch of `record`: stores its diagnostics and resets the
    /// accumulators.
    pub fn end_epoch(&mut self, record: &EpochRecord, model: &Sequential<f32>) -> Result<()> {
        let train_metric = match &self.sample {
            Some(s) if !s.is_empty() => Some(metric(model, s)?),
            _ => None,
        };
        let steps = self.steps.max(1) as f64;
        let activations = self.layers.iter().map(LayerAcc::summary).collect();
        let grad_norms = self
            .grads
            .iter()
            .map(|(name, weight, sum)| GradNorm {
                param: name.clone(),
                weight: *weight,
                norm: sum / steps,
            })
            .collect();
        self.records.push(EpochDiagnostics {
            epoch: record.epoch,
            step: record.step,
            train_metric,
            activations,
            grad_norms,
        });
        self.layers.clear();
        self.grads.clear();
        self.steps = 0;
        Ok(())
    }

    /// The records of the epochs completed so far.
    pub fn records(&self) -> &[EpochDiagnostics] {
        &self.records
    }

    /// Warnings about the epochs so far, with the default [`Thresholds`].
    pub fn warnings(&self) -> Vec<Warning> {
        warnings(&self.records, &Thresholds::default())
    }
}

impl LayerAcc {
    fn add(&mut self, out: &[f32], units: usize) {
        self.moments.extend(out);
        match self.kind {
            Activation::Sigmoid => {
                self.saturated += out.iter().filter(|&&y| !(0.01..=0.99).contains(&y)).count() as u64
            }
            Activation::Tanh => self.saturated += out.iter().filter(|&&y| y.abs() > 0.99).count() as u64,
            Activation::Relu => {
                self.ever_active.resize(units, false);
                for row in out.chunks(units.max(1)) {
                    for (seen, &y) in self.ever_active.iter_mut().zip(row) {
                        *seen |= y > 0.0;
                    }
                }
            }
            _ => {}
        }
    }

    fn summary(&self) -> ActivationDiagnostics {
        let n = self.moments.count().max(1) as f64;
        let units = self.ever_active.len().max(1) as f64;
        ActivationDiagnostics {
            layer: format!("layers.{}", self.index),
            activation: self.kind.name(),
            mean: self.moments.mean(),
            std: self.moments.std(),
            saturated: matches!(self.kind, Activation::Sigmoid | Activation::Tanh).then(|| self.saturated as f64 / n),
            dead: (self.kind == Activation::Relu)
                .then(|| self.ever_active.iter().filter(|a| !**a).count() as f64 / units),
        }
    }
}

/// The trainable parameters of `layer`, read-only, in the order of
/// [`Layer::visit_params`].
pub fn params(layer: &Layer<f32>) -> Vec<&Param<f32>> {
    match layer {
        Layer::Dense(d) => std::iter::once(&d.weight).chain(d.bias.as_ref()).collect(),
        Layer::BatchNorm(b) => b.affine.iter().flat_map(|(g, b)| [g, b]).collect(),
        Layer::LayerNorm(n) => n.affine.iter().flat_map(|(g, b)| [g, b]).collect(),
        Layer::Activation(_) | Layer::Dropout(_) => Vec::new(),
    }
}

/// The L2 norm of the current gradient of every parameter tensor of `model`,
/// as `(path, norm)` in network order.
pub fn grad_norms(model: &Sequential<f32>) -> Vec<(String, f64)> {
    model
        .layers()
        .iter()
        .flat_map(params)
        .map(|p| (p.name.clone(), l2_norm(p.grad.as_slice())))
        .collect()
}

/// Accuracy or R² of a copy of `model` in evaluation mode on `data`.
fn metric(model: &Sequential<f32>, data: &Dataset) -> Result<f64> {
    let mut m = model.clone();
    let ev = evaluate(&mut m, data, default_loss(data), 1024)?;
    Ok(match &data.targets {
        Targets::Classes { labels, .. } => ev.accuracy(labels)?,
        Targets::Values(t) => RegressionMetrics::new(&t.cast(), &ev.outputs.cast()).r2,
    })
}
