//! The search space of `bpnet tune` and its TPE samplers (the `tpe` crate:
//! one Tree-structured Parzen Estimator per parameter, Bergstra et al. 2011).
//!
//! | parameter | values |
//! |---|---|
//! | depth | 0 (no hidden layer: logistic / linear regression), 1, 2, 3 |
//! | width | 2^4 .. 2^9 (log scale) |
//! | batch normalization | none, before the activation, after it |
//! | activation | relu, gelu, tanh, elu, leaky_relu |
//! | optimizer | adam, adamw, momentum, nesterov |
//! | learning rate | 1e-4 .. 0.3 (log scale) |
//! | weight decay | 1e-7 .. 1e-2 (log scale) |
//! | dropout | 0 .. 0.5 |
//! | batch size | 16, 32, 64, 128, 256 (at most the training rows) |
//!
//! Every search first tries the [`portfolio`]: `bpnet train`'s defaults, a
//! linear model, and the two best single-network variants of the defaults
//! on the choice half of `bench/tabular` (docs/TABULAR.md). TPE's points
//! follow, and the median rule prunes them against the portfolio's scores.

use bpnet::workflow::TrainConfig;
use bpnet::{Error, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tpe::{TpeOptimizer, categorical_range, histogram_estimator, parzen_estimator, range};

const ACTIVATIONS: [&str; 5] = ["relu", "gelu", "tanh", "elu", "leaky_relu"];
const OPTIMIZERS: [&str; 4] = ["adam", "adamw", "momentum", "nesterov"];
const BN: [&str; 3] = ["none", "before", "after"];
const BATCHES: [usize; 5] = [16, 32, 64, 128, 256];
const DEPTHS: usize = 4;

/// Names of the parameters, in the order of [`Params::raw`].
pub const NAMES: [&str; 9] = [
    "depth",
    "width",
    "batch_norm",
    "activation",
    "optimizer",
    "lr",
    "weight_decay",
    "dropout",
    "batch_size",
];

/// Whether a parameter is categorical (else numeric).
pub const CATEGORICAL: [bool; 9] = [true, false, true, true, true, false, false, false, true];

/// One point of the space: the raw values the samplers returned (what they
/// are told back), in the order of [`NAMES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Raw sampler values.
    pub raw: [f64; 9],
}

fn pick<T: Copy>(options: &[T], raw: f64) -> T {
    options[(raw.max(0.0) as usize).min(options.len() - 1)]
}

impl Params {
    /// Hidden layers (0 = none).
    pub fn depth(&self) -> usize {
        (self.raw[0].max(0.0) as usize).min(DEPTHS - 1)
    }
    /// Units per hidden layer.
    pub fn width(&self) -> usize {
        2f64.powf(self.raw[1]).round() as usize
    }
    /// `none`, `before` or `after`.
    pub fn batch_norm(&self) -> &'static str {
        pick(&BN, self.raw[2])
    }
    /// Hidden activation.
    pub fn activation(&self) -> &'static str {
        pick(&ACTIVATIONS, self.raw[3])
    }
    /// Optimizer name.
    pub fn optimizer(&self) -> &'static str {
        pick(&OPTIMIZERS, self.raw[4])
    }
    /// Learning rate.
    pub fn lr(&self) -> f64 {
        10f64.powf(self.raw[5])
    }
    /// Weight decay.
    pub fn weight_decay(&self) -> f64 {
        10f64.powf(self.raw[6])
    }
    /// Dropout rate.
    pub fn dropout(&self) -> f64 {
        self.raw[7]
    }
    /// Rows per mini-batch.
    pub fn batch_size(&self) -> usize {
        pick(&BATCHES, self.raw[8])
    }

    /// The decoded values as text, in the order of [`NAMES`].
    pub fn values(&self) -> [String; 9] {
        [
            self.depth().to_string(),
            self.width().to_string(),
            self.batch_norm().to_string(),
            self.activation().to_string(),
            self.optimizer().to_string(),
            format!("{:.3e}", self.lr()),
            format!("{:.3e}", self.weight_decay()),
            format!("{:.3}", self.dropout()),
            self.batch_size().to_string(),
        ]
    }

    /// `base` with this point's settings (the batch size capped at `rows`).
    pub fn apply(&self, base: &TrainConfig, rows: usize) -> TrainConfig {
        let depth = self.depth();
        let hidden = vec![self.width().to_string(); depth].join(",");
        TrainConfig {
            hidden,
            batch_norm: depth > 0 && self.batch_norm() != "none",
            bn_after: self.batch_norm() == "after",
            activation: self.activation().into(),
            optimizer: self.optimizer().into(),
            lr: self.lr(),
            weight_decay: self.weight_decay(),
            dropout: if depth > 0 { self.dropout() } else { 0.0 },
            batch_size: self.batch_size().min(rows.max(2)),
            ..base.clone()
        }
    }
}

/// The raw value that decodes to `options[i]` of a categorical parameter.
fn at(i: usize) -> f64 {
    i as f64 + 0.5
}

/// The first [`PORTFOLIO`] trials of every search, in trial order:
///
/// 0. `bpnet train`'s defaults: 2 hidden ReLU layers of 100 with BN before
///    the activation, Adam at 1e-3, batches of 128, no dropout (weight
///    decay 1e-7, the space's floor, in place of 0);
/// 1. a linear model (no hidden layer: logistic or linear regression) with
///    Adam at 1e-2, batches of 32 and weight decay 1e-3, about the ridge
///    penalty scikit-learn's `Ridge()` and `LogisticRegression()` put on a
///    few hundred standardized rows (of four linear settings on the choice
///    half, the one closest to scikit-learn's linear models on every set);
/// 2. the defaults with AdamW and weight decay 1e-2 (the raw value sits just
///    below the space's open upper end, 1e-2 within 3e-12 relative: the
///    same f32 step);
/// 3. the defaults with dropout 0.2.
///
/// 2 and 3 were the best-ranked single networks of the third round of
/// candidates on the choice half (docs/TABULAR.md). Starting from known good
/// settings means a short search is never worse, in cross-validation, than
/// those settings, and the pruning rule has a fair bar from the second group.
pub fn portfolio() -> [Params; PORTFOLIO] {
    let defaults = [at(2), 100f64.log2(), at(1), at(0), at(0), -3.0, -7.0, 0.0, at(3)];
    let mut linear = defaults;
    (linear[0], linear[2], linear[5], linear[6], linear[8]) = (at(0), at(0), -2.0, -3.0, at(1));
    let mut adamw = defaults;
    (adamw[4], adamw[6]) = (at(1), -2.0 - 1e-12);
    let mut dropout = defaults;
    dropout[7] = 0.2;
    [defaults, linear, adamw, dropout].map(|raw| Params { raw })
}

/// Trials of the [`portfolio`].
pub const PORTFOLIO: usize = 4;

/// Names of the [`portfolio`]'s points, in trial order.
pub const PORTFOLIO_NAMES: [&str; PORTFOLIO] = ["defaults", "linear", "defaults+adamw", "defaults+dropout"];

/// Where trial `t`'s point came from: a [`PORTFOLIO_NAMES`] entry, or `tpe`.
pub fn origin(t: usize) -> &'static str {
    PORTFOLIO_NAMES.get(t).copied().unwrap_or("tpe")
}

/// One TPE sampler per parameter.
pub struct Space {
    samplers: Vec<TpeOptimizer>,
}

impl Space {
    /// The space of the table in the module docs, nothing told yet.
    pub fn new() -> Result<Self> {
        let bad = |e: tpe::range::RangeError| Error::State(format!("tune search space: {e}"));
        let cat = |n: usize| {
            Ok(TpeOptimizer::new(
                histogram_estimator(),
                categorical_range(n).map_err(bad)?,
            ))
        };
        let num = |a: f64, b: f64| Ok(TpeOptimizer::new(parzen_estimator(), range(a, b).map_err(bad)?));
        Ok(Space {
            samplers: vec![
                cat(DEPTHS)?,
                num(4.0, 9.0)?,
                cat(BN.len())?,
                cat(ACTIVATIONS.len())?,
                cat(OPTIMIZERS.len())?,
                num(-4.0, (0.3f64).log10())?,
                num(-7.0, -2.0)?,
                num(0.0, 0.5)?,
                cat(BATCHES.len())?,
            ],
        })
    }

    /// Whether every raw value of `p` lies in its sampler's range (a
    /// journal written by another version may not).
    pub fn contains(p: &Params) -> bool {
        let bounds = [
            (0.0, DEPTHS as f64),
            (4.0, 9.0),
            (0.0, BN.len() as f64),
            (0.0, ACTIVATIONS.len() as f64),
            (0.0, OPTIMIZERS.len() as f64),
            (-4.0, (0.3f64).log10()),
            (-7.0, -2.0),
            (0.0, 0.5),
            (0.0, BATCHES.len() as f64),
        ];
        p.raw.iter().zip(bounds).all(|(&v, (a, b))| v >= a && v < b)
    }

    /// The next point to try.
    pub fn ask<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Params {
        let mut raw = [0.0; 9];
        for (r, s) in raw.iter_mut().zip(&mut self.samplers) {
            // The default estimators never fail on a valid range.
            *r = s.ask(rng).unwrap_or(f64::NAN);
        }
        Params { raw }
    }

    /// Records that `params` scored `loss` (lower is better).
    pub fn tell(&mut self, params: &Params, loss: f64) {
        for (s, &p) in self.samplers.iter_mut().zip(&params.raw) {
            // Only a NaN loss or an out-of-range value is refused; neither
            // comes from `ask`, and a journal's values are checked on reading.
            let _ = s.tell(p, loss);
        }
    }
}
