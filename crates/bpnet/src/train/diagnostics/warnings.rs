//! Plain-language warnings from epoch diagnostics: vanishing or exploding
//! gradients, saturated sigmoid/tanh units, dead ReLU units. Each warning
//! names the layer, the epochs it held in, the worst value, and what to try.

use super::EpochDiagnostics;
use serde::Serialize;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The first Dense layer's gradient is tiny next to the last one's.
    VanishingGradients,
    /// A gradient norm is huge or not finite.
    ExplodingGradients,
    /// Many sigmoid/tanh outputs sit at the function's limits.
    Saturation,
    /// Many ReLU units never activate.
    DeadUnits,
}

/// When a condition counts as a problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Vanishing when `norm(first Dense weight grad) / norm(last Dense weight
    /// grad)` is below this.
    pub vanishing_ratio: f64,
    /// Exploding when any gradient norm exceeds this (or is not finite).
    pub exploding_norm: f64,
    /// Saturation when the saturated fraction of a layer exceeds this.
    pub saturated_fraction: f64,
    /// Dead units when the dead fraction of a layer exceeds this.
    pub dead_fraction: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            vanishing_ratio: 1e-2,
            exploding_norm: 1e2,
            saturated_fraction: 0.5,
            dead_fraction: 0.5,
        }
    }
}

/// One problem, over the epochs where it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// The kind of problem.
    pub kind: WarningKind,
    /// The layer or parameter concerned.
    pub layer: String,
    /// First epoch (1-based) where it held.
    pub first_epoch: usize,
    /// Last epoch where it held.
    pub last_epoch: usize,
    /// Number of epochs where it held.
    pub epochs: usize,
    /// The worst value seen (ratio, norm or fraction, per kind).
    pub worst: f64,
    /// The warning in plain words, with suggestions.
    pub message: String,
}

/// The warnings for `records`, one per kind and layer, in order of first
/// appearance.
pub fn warnings(records: &[EpochDiagnostics], t: &Thresholds) -> Vec<Warning> {
    let mut found: Vec<Warning> = Vec::new();
    let mut note = |kind, layer: &str, epoch: usize, value: f64, worse: fn(f64, f64) -> bool| match found
        .iter_mut()
        .find(|w| w.kind == kind && w.layer == layer)
    {
        Some(w) => {
            w.last_epoch = epoch;
            w.epochs += 1;
            if worse(value, w.worst) {
                w.worst = value;
            }
        }
        None => found.push(Warning {
            kind,
            layer: layer.to_string(),
            first_epoch: epoch,
            last_epoch: epoch,
            epochs: 1,
            worst: value,
            message: String::new(),
        }),
    };
    let lower = |a: f64, b: f64| a < b;
    let higher = |a: f64, b: f64| a > b || a.is_nan();
    for r in records {
        let weights: Vec<_> = r.grad_norms.iter().filter(|g| g.weight).collect();
        if let (Some(first), Some(last)) = (weights.first(), weights.last())
            && weights.len() >= 2
            && last.norm > 0.0
            && first.norm / last.norm < t.vanishing_ratio
        {
            note(
                WarningKind::VanishingGradients,
                &first.param,
                r.epoch,
                first.norm / last.norm,
                lower,
            );
        }
        for g in r
            .grad_norms
            .iter()
            .filter(|g| !g.norm.is_finite() || g.norm > t.exploding_norm)
        {
            note(WarningKind::ExplodingGradients, &g.param, r.epoch, g.norm, higher);
        }
        for a in &r.activations {
            if let Some(s) = a.saturated.filter(|&s| s > t.saturated_fraction) {
                note(WarningKind::Saturation, &a.layer, r.epoch, s, higher);
            }
            if let Some(d) = a.dead.filter(|&d| d > t.dead_fraction) {
                note(WarningKind::DeadUnits, &a.layer, r.epoch, d, higher);
            }
        }
    }
    for w in &mut found {
        w.message = message(w, records, t);
    }
    found
}

fn epochs(w: &Warning) -> String {
    if w.first_epoch == w.last_epoch {
        format!("in epoch {}", w.first_epoch)
    } else {
        format!("in {} epochs between {} and {}", w.epochs, w.first_epoch, w.last_epoch)
    }
}

fn message(w: &Warning, records: &[EpochDiagnostics], t: &Thresholds) -> String {
    let when = epochs(w);
    match w.kind {
        WarningKind::VanishingGradients => {
            let last = records
                .iter()
                .flat_map(|r| r.grad_norms.iter().rfind(|g| g.weight))
                .next()
                .map_or("the last layer".to_string(), |g| g.param.clone());
            format!(
                "vanishing gradients {when}: the gradient of the first layer ({}) was as small as {:.1e} times that of the last layer ({last}), so the first layers barely learn. Try batch normalization (--batch-norm), a ReLU activation with he_normal init, or fewer layers.",
                w.layer, w.worst
            )
        }
        WarningKind::ExplodingGradients => format!(
            "exploding gradients {when}: the gradient norm of {} reached {:.3e} (above {:.0e}). Lower the learning rate (--lr) or add batch normalization (--batch-norm).",
            w.layer, w.worst, t.exploding_norm
        ),
        WarningKind::Saturation => {
            let act = activation_of(records, &w.layer);
            format!(
                "saturated units {when}: up to {:.0}% of the {act} outputs of {} were within 0.01 of the function's limits, where its gradient is nearly zero. Try batch normalization before the activation (--batch-norm), a smaller initial weight scale (--init), or --activation relu.",
                w.worst * 100.0,
                w.layer
            )
        }
        WarningKind::DeadUnits => format!(
            "dead units {when}: up to {:.0}% of the ReLU units of {} never activated during an epoch, so they no longer learn. Lower the learning rate (--lr), use --activation leaky_relu, or add batch normalization (--batch-norm).",
            w.worst * 100.0,
            w.layer
        ),
    }
}

fn activation_of(records: &[EpochDiagnostics], layer: &str) -> String {
    records
        .iter()
        .flat_map(|r| &r.activations)
        .find(|a| a.layer == layer)
        .map_or_else(|| "activation".into(), |a| a.activation.clone())
}
