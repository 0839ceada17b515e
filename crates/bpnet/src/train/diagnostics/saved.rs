//! What a checkpoint keeps of a [`Diagnostics`] collector: the records of
//! the epochs so far and the accumulators of the epoch in progress, every
//! `f64` exactly ([`crate::train::exact`]: an infinite gradient norm of a
//! skipped step stays infinite). A resumed run continues the collection,
//! so its diagnostics equal an uninterrupted run's (they had started empty).

use super::{ActivationDiagnostics, Diagnostics, EpochDiagnostics, GradNorm, LayerAcc, Moments};
use crate::error::{Error, Result};
use crate::layers::Activation;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(super) struct Saved {
    records: Vec<SavedEpoch>,
    layers: Vec<SavedLayer>,
    grads: Vec<SavedGrad>,
    steps: usize,
}

#[derive(Serialize, Deserialize)]
struct SavedEpoch {
    epoch: usize,
    step: usize,
    #[serde(with = "crate::train::exact::opt")]
    train_metric: Option<f64>,
    activations: Vec<SavedActivation>,
    grad_norms: Vec<SavedGrad>,
}

#[derive(Serialize, Deserialize)]
struct SavedActivation {
    layer: String,
    activation: String,
    #[serde(with = "crate::train::exact")]
    mean: f64,
    #[serde(with = "crate::train::exact")]
    std: f64,
    #[serde(with = "crate::train::exact::opt")]
    saturated: Option<f64>,
    #[serde(with = "crate::train::exact::opt")]
    dead: Option<f64>,
}

/// A gradient norm of a record, or the running sum of the epoch in progress.
#[derive(Serialize, Deserialize)]
struct SavedGrad {
    param: String,
    weight: bool,
    #[serde(with = "crate::train::exact")]
    norm: f64,
}

#[derive(Serialize, Deserialize)]
struct SavedLayer {
    index: usize,
    kind: Activation,
    count: u64,
    #[serde(with = "crate::train::exact")]
    mean: f64,
    #[serde(with = "crate::train::exact")]
    m2: f64,
    saturated: u64,
    ever_active: Vec<bool>,
}

impl Saved {
    pub(super) fn of(d: &Diagnostics) -> Self {
        Saved {
            records: d.records.iter().map(SavedEpoch::of).collect(),
            layers: d.layers.iter().map(SavedLayer::of).collect(),
            grads: d
                .grads
                .iter()
                .map(|(param, weight, norm)| SavedGrad {
                    param: param.clone(),
                    weight: *weight,
                    norm: *norm,
                })
                .collect(),
            steps: d.steps,
        }
    }

    /// Sets `d`'s records and accumulators (its training sample is kept).
    pub(super) fn restore(self, d: &mut Diagnostics) {
        d.records = self.records.into_iter().map(SavedEpoch::record).collect();
        d.layers = self.layers.into_iter().map(SavedLayer::acc).collect();
        d.grads = self.grads.into_iter().map(|g| (g.param, g.weight, g.norm)).collect();
        d.steps = self.steps;
    }
}

impl SavedEpoch {
    fn of(r: &EpochDiagnostics) -> Self {
        SavedEpoch {
            epoch: r.epoch,
            step: r.step,
            train_metric: r.train_metric,
            activations: r
                .activations
                .iter()
                .map(|a| SavedActivation {
                    layer: a.layer.clone(),
                    activation: a.activation.clone(),
                    mean: a.mean,
                    std: a.std,
                    saturated: a.saturated,
                    dead: a.dead,
                })
                .collect(),
            grad_norms: r
                .grad_norms
                .iter()
                .map(|g| SavedGrad {
                    param: g.param.clone(),
                    weight: g.weight,
                    norm: g.norm,
                })
                .collect(),
        }
    }

    fn record(self) -> EpochDiagnostics {
        EpochDiagnostics {
            epoch: self.epoch,
            step: self.step,
            train_metric: self.train_metric,
            activations: self
                .activations
                .into_iter()
                .map(|a| ActivationDiagnostics {
                    layer: a.layer,
                    activation: a.activation,
                    mean: a.mean,
                    std: a.std,
                    saturated: a.saturated,
                    dead: a.dead,
                })
                .collect(),
            grad_norms: self
                .grad_norms
                .into_iter()
                .map(|g| GradNorm {
                    param: g.param,
                    weight: g.weight,
                    norm: g.norm,
                })
                .collect(),
        }
    }
}

impl SavedLayer {
    fn of(l: &LayerAcc) -> Self {
        let (count, mean, m2) = l.moments.parts();
        SavedLayer {
            index: l.index,
            kind: l.kind,
            count,
            mean,
            m2,
            saturated: l.saturated,
            ever_active: l.ever_active.clone(),
        }
    }

    fn acc(self) -> LayerAcc {
        LayerAcc {
            index: self.index,
            kind: self.kind,
            moments: Moments::from_parts(self.count, self.mean, self.m2),
            saturated: self.saturated,
            ever_active: self.ever_active,
        }
    }
}

impl Diagnostics {
    /// The collector's state as a checkpoint keeps it (see the module docs).
    pub fn saved(&self) -> serde_json::Value {
        // Plain structs of numbers, strings and bools: serializing cannot fail.
        serde_json::to_value(Saved::of(self)).unwrap_or_default()
    }

    /// Continues from a state written by [`Diagnostics::saved`].
    pub fn restore(&mut self, saved: &serde_json::Value) -> Result<()> {
        let s = Saved::deserialize(saved).map_err(|e| Error::State(format!("invalid saved diagnostics: {e}")))?;
        s.restore(self);
        Ok(())
    }
}
