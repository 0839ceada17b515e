//! Sequential networks: a [`ModelSpec`] (widths, activation, batch-norm
//! placement, dropout, init) becomes a [`Sequential`] of [`Layer`]s whose
//! parameters and running statistics are named by path (`layers.0.weight`,
//! `layers.1.running_mean`, ...), exactly like a PyTorch `nn.Sequential`
//! stored under the attribute `layers`.

use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::{
    Activation, ActivationLayer, BatchNorm, BatchNormConfig, Dense, Dropout, Layer, LayerNorm, Mode, NormKind, Param,
};
use crate::scalar::Scalar;
use crate::tensor::{Matrix, Out};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Largest number of Dense weights a network may have (2^28, 1 GiB of f32
/// before gradients and optimizer state).
pub const MAX_WEIGHTS: u64 = 1 << 28;

/// Pieces of 22 bits a batch count is saved in by
/// [`Sequential::save_running`] (3 x 22 = 66 bits hold any `u64`).
pub const COUNT_PARTS: usize = 3;

/// The low 22 bits: a piece of a batch count, exact in `f32`.
const COUNT_MASK: u64 = (1 << 22) - 1;

/// Where the normalization layer (batch normalization or the kind of
/// [`BatchNormConfig::kind`]) goes in each hidden block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BnPlacement {
    /// No batch normalization: `Dense(bias) -> act`.
    None,
    /// The paper's placement `g(BN(W u))`: `Dense(no bias) -> BN -> act`.
    BeforeActivation,
    /// `Dense(bias) -> act -> BN`.
    AfterActivation,
}

/// The architecture of a fully connected network.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Widths `[inputs, hidden..., outputs]`, at least two entries.
    pub dims: Vec<usize>,
    /// Hidden-layer activation (the output layer is linear; the loss applies
    /// softmax or sigmoid).
    pub activation: Activation,
    /// Normalization placement in every hidden block.
    pub batch_norm: BnPlacement,
    /// Normalization settings, including which normalization
    /// ([`BatchNormConfig::kind`]: batch, renorm, ghost or layer).
    pub bn: BatchNormConfig,
    /// Dropout rate after each hidden block (0 = none).
    pub dropout: f64,
    /// Weight initialization.
    pub init: Init,
}

impl ModelSpec {
    /// The BN paper's MNIST network 784-100-100-100-10 with sigmoid units,
    /// BN before each sigmoid, and `N(0, std^2)` weights.
    pub fn paper_mnist(batch_norm: bool, init_std: f64) -> Self {
        ModelSpec {
            dims: vec![784, 100, 100, 100, 10],
            activation: Activation::Sigmoid,
            batch_norm: if batch_norm {
                BnPlacement::BeforeActivation
            } else {
                BnPlacement::None
            },
            bn: BatchNormConfig::default(),
            dropout: 0.0,
            init: Init::Normal { std: init_std },
        }
    }

    /// Parses widths written `784-100-100-100-10` (or with commas).
    pub fn parse_dims(s: &str) -> Result<Vec<usize>> {
        let dims = s
            .split(['-', ','])
            .map(|w| {
                w.trim()
                    .parse::<usize>()
                    .map_err(|_| Error::config("layer widths", format!("'{w}' in '{s}' is not a positive integer")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(dims)
    }

    /// Checks widths, dropout, init and batch-norm settings.
    pub fn validate(&self) -> Result<()> {
        if self.dims.len() < 2 {
            return Err(Error::config(
                "layer widths",
                "need at least an input and an output width",
            ));
        }
        if let Some(w) = self.dims.iter().find(|&&w| w == 0 || w > 1 << 24) {
            return Err(Error::config("layer widths", format!("{w} is not in 1..=16777216")));
        }
        let weights = self
            .dims
            .windows(2)
            .try_fold(0u64, |acc, w| (w[0] as u64).checked_mul(w[1] as u64)?.checked_add(acc));
        match weights {
            Some(n) if n <= MAX_WEIGHTS => {}
            _ => {
                return Err(Error::config(
                    "layer widths",
                    format!("{} would need more than {MAX_WEIGHTS} weights", short_dims(&self.dims)),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        self.activation.validate()?;
        self.init.validate()?;
        self.bn.validate()
    }
}

/// A feed-forward network: layers applied in order.
#[derive(Debug, Clone)]
pub struct Sequential<T> {
    layers: Vec<Layer<T>>,
}

impl<T: Scalar> Sequential<T> {
    /// Wraps a list of layers (their parameter names should be `layers.{index}.*`).
    pub fn new(layers: Vec<Layer<T>>) -> Self {
        Sequential { layers }
    }

    /// Builds the network of `spec` with weights drawn from `seed`. Each hidden
    /// block is `Dense -> [BN] -> act -> [BN] -> [Dropout]` per the placement;
    /// a Dense directly followed by BN (or renorm, ghost BN) has no bias, one
    /// followed by LayerNorm keeps it. Dropout layer `i` draws its masks from
    /// its own stream seeded by `seed` and `i`.
    pub fn from_spec(spec: &ModelSpec, seed: u64) -> Result<Self> {
        Self::build(spec, seed, true)
    }

    /// The network of `spec` with every weight and bias 0 (dropout streams
    /// as for seed 0), for loaders that overwrite them all: drawing random
    /// weights first would cost as much as reading them.
    pub(crate) fn zeroed(spec: &ModelSpec) -> Result<Self> {
        Self::build(spec, 0, false)
    }

    fn build(spec: &ModelSpec, seed: u64, draw: bool) -> Result<Self> {
        spec.validate()?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut layers = Vec::new();
        let last = spec.dims.len() - 2;
        for (i, pair) in spec.dims.windows(2).enumerate() {
            let (inp, out) = (pair[0], pair[1]);
            let (w, b) = match draw {
                true => spec.init.sample::<T>(out, inp, &mut rng),
                false => (Matrix::zeros(out, inp), Matrix::zeros(1, out)),
            };
            let hidden = i < last;
            let bn_next = hidden && spec.batch_norm == BnPlacement::BeforeActivation;
            // Batch statistics remove a preceding bias; layer normalization
            // removes only its mean over the features, so the bias stays.
            let drop_bias = bn_next && spec.bn.kind.uses_batch_statistics();
            let path = format!("layers.{}", layers.len());
            layers.push(Layer::Dense(Dense::new(&path, w, (!drop_bias).then_some(b))?));
            if !hidden {
                break;
            }
            let push_bn = |layers: &mut Vec<Layer<T>>| -> Result<()> {
                let path = format!("layers.{}", layers.len());
                layers.push(match spec.bn.kind {
                    NormKind::Layer => Layer::LayerNorm(LayerNorm::new(&path, out, spec.bn.eps, spec.bn.affine)?),
                    _ => Layer::BatchNorm(BatchNorm::new(&path, out, spec.bn.clone())?),
                });
                Ok(())
            };
            if bn_next {
                push_bn(&mut layers)?;
            }
            layers.push(Layer::Activation(ActivationLayer::new(spec.activation)?));
            if spec.batch_norm == BnPlacement::AfterActivation {
                push_bn(&mut layers)?;
            }
            if spec.dropout > 0.0 {
                let stream = seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(layers.len() as u64 + 1));
                layers.push(Layer::Dropout(Dropout::new(spec.dropout, stream)?));
            }
        }
        Ok(Sequential { layers })
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer<T>] {
        &self.layers
    }

    /// The layers, mutable.
    pub fn layers_mut(&mut self) -> &mut [Layer<T>] {
        &mut self.layers
    }

    /// Input width (of the first Dense layer).
    pub fn in_features(&self) -> Option<usize> {
        self.layers.iter().find_map(|l| match l {
            Layer::Dense(d) => Some(d.in_features()),
            _ => None,
        })
    }

    /// Output width (of the last Dense layer).
    pub fn out_features(&self) -> Option<usize> {
        self.layers.iter().rev().find_map(|l| match l {
            Layer::Dense(d) => Some(d.out_features()),
            _ => None,
        })
    }

    /// Whether any layer is batch normalization (training then needs batches
    /// of at least two rows).
    pub fn has_batch_norm(&self) -> bool {
        self.layers.iter().any(|l| matches!(l, Layer::BatchNorm(_)))
    }

    /// Copies every batch-norm layer's running statistics into `buf` (cleared
    /// first; no allocation once `buf` has grown to size): per layer the
    /// means, the variances and the batch count as [`COUNT_PARTS`] pieces of
    /// 22 bits, each exact in `f32`, so any count comes back exactly.
    pub fn save_running(&self, buf: &mut Vec<T>) {
        buf.clear();
        for l in &self.layers {
            if let Layer::BatchNorm(bn) = l {
                buf.extend_from_slice(&bn.running.mean);
                buf.extend_from_slice(&bn.running.var);
                let c = bn.running.batches;
                buf.extend((0..COUNT_PARTS).map(|k| T::from_f64(((c >> (22 * k)) & COUNT_MASK) as f64)));
            }
        }
    }

    /// Restores running statistics saved by [`Sequential::save_running`].
    pub fn restore_running(&mut self, buf: &[T]) {
        let mut at = 0;
        for l in &mut self.layers {
            if let Layer::BatchNorm(bn) = l {
                let f = bn.running.mean.len();
                let Some(count) = buf.get(at + 2 * f..at + 2 * f + COUNT_PARTS) else {
                    return;
                };
                bn.running.mean.copy_from_slice(&buf[at..at + f]);
                bn.running.var.copy_from_slice(&buf[at + f..at + 2 * f]);
                bn.running.batches = count
                    .iter()
                    .enumerate()
                    .fold(0, |c, (k, v)| c | ((v.to_f64() as u64 & COUNT_MASK) << (22 * k)));
                at += 2 * f + COUNT_PARTS;
            }
        }
    }

    /// Where the first non-finite value is, looking at the loss, each layer's
    /// last output in order, then each parameter gradient; `None` if all are
    /// finite.
    pub fn find_non_finite(&self, loss: T) -> Option<String> {
        let bad = |v: &[T]| v.iter().find(|x| !x.is_finite()).map(|x| x.to_f64());
        for (i, l) in self.layers.iter().enumerate() {
            if let Some(v) = bad(l.output().as_slice()) {
                return Some(format!("the output of layers.{i} ({}) holds {v}", l.describe()));
            }
        }
        if !loss.is_finite() {
            return Some(format!("the loss is {loss}"));
        }
        if let Some(running) = self.non_finite_running() {
            return Some(running);
        }
        let mut found = None;
        for l in &self.layers {
            l.params(&mut |p| {
                if found.is_none() {
                    found = bad(p.grad.as_slice()).map(|v| format!("the gradient of {} holds {v}", p.name));
                }
            });
        }
        found
    }

    /// Where the first non-finite running statistic of a batch-norm layer
    /// is, `None` when all are finite. A batch's variance past f32's range
    /// normalizes its outputs to finite values, so neither the loss nor
    /// the gradients show it, but the running variance becomes inf: the
    /// model then could not be saved, after the whole run.
    pub fn non_finite_running(&self) -> Option<String> {
        let bad = |v: &[T]| v.iter().find(|x| !x.is_finite()).map(|x| x.to_f64());
        self.layers.iter().enumerate().find_map(|(i, l)| match l {
            Layer::BatchNorm(bn) => bad(&bn.running.mean)
                .map(|v| format!("the running mean of layers.{i} ({}) holds {v}", l.describe()))
                .or_else(|| {
                    bad(&bn.running.var)
                        .map(|v| format!("the running variance of layers.{i} ({}) holds {v}", l.describe()))
                }),
            _ => None,
        })
    }

    /// True when every parameter gradient is finite (checked before each
    /// optimizer update by the training loop's divergence guard).
    pub fn grads_finite(&self) -> bool {
        let mut ok = true;
        for l in &self.layers {
            l.params(&mut |p| ok = ok && all_finite(p.grad.as_slice()));
        }
        ok
    }

    /// Runs every layer on `x: [batch, in]`; returns the output `[batch, out]`.
    pub fn forward<'a>(&'a mut self, x: &'a Matrix<T>, mode: Mode) -> Result<&'a Matrix<T>> {
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let input = before.last().map_or(x, |l| l.output());
            rest[0].forward(input, mode)?;
        }
        Ok(self.layers.last().map_or(x, |l| l.output()))
    }

    /// Backpropagates `dout = dL/doutput: [batch, out]` through the layers of
    /// the last forward on `x`, adding into every parameter gradient. With
    /// `input_grad`, also computes `dL/dx`, read with [`Sequential::input_grad`].
    pub fn backward(&mut self, x: &Matrix<T>, dout: &Matrix<T>, input_grad: bool) -> Result<()> {
        self.backward_with(x, dout, input_grad, Out::Add)
    }

    /// [`Sequential::backward`], with every parameter gradient added to
    /// (`Out::Add`) or set (`Out::Replace`: the values of
    /// [`Sequential::zero_grad`] then `backward`, without zeroing the dense
    /// layers' weight gradients first; see [`Layer::backward_with`]).
    pub fn backward_with(&mut self, x: &Matrix<T>, dout: &Matrix<T>, input_grad: bool, grads: Out) -> Result<()> {
        for i in (0..self.layers.len()).rev() {
            let (before, rest) = self.layers.split_at_mut(i);
            let (cur, after) = rest.split_at_mut(1);
            let input = before.last().map_or(x, |l| l.output());
            let dy = after.first().map_or(dout, |l| l.input_grad());
            cur[0].backward_with(input, dy, i > 0 || input_grad, grads)?;
        }
        Ok(())
    }

    /// `dL/dx` from the last backward called with `input_grad = true`.
    pub fn input_grad(&self) -> Option<&Matrix<T>> {
        self.layers.first().map(|l| l.input_grad())
    }

    /// Sets how every batch normalization layer treats a batch split over
    /// ranks (`None`: each process's rows alone, the default).
    ///
    /// Errors for Batch Renormalization and Ghost BN layers with a sync.
    pub fn set_bn_sync(&mut self, sync: Option<crate::layers::BnSync>) -> crate::Result<()> {
        for l in &mut self.layers {
            if let Layer::BatchNorm(b) = l {
                b.set_sync(sync.clone())?;
            }
        }
        Ok(())
    }

    /// Data-parallel training: the next training forward's input holds rows
    /// `start..` of a global batch of `rows` rows (dropout draws its masks
    /// for the whole global batch; see [`crate::layers::Dropout::set_window`]).
    /// Applies to the next training forward only.
    pub fn set_row_window(&mut self, start: usize, rows: usize) {
        for l in &mut self.layers {
            if let Layer::Dropout(d) = l {
                d.set_window(start, rows);
            }
        }
    }

    /// Zeroes every parameter gradient.
    pub fn zero_grad(&mut self) {
        self.visit_params(&mut |p| p.zero_grad());
    }

    /// Calls `f` on every trainable parameter in a fixed order (layer order,
    /// weight before bias). Running statistics are not parameters.
    pub fn visit_params(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        for l in &mut self.layers {
            l.visit_params(f);
        }
    }

    /// Names of the trainable parameters, in [`Sequential::visit_params`] order.
    pub fn param_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for l in &self.layers {
            l.params(&mut |p| names.push(p.name.clone()));
        }
        names
    }

    /// Number of trainable scalars.
    pub fn num_params(&mut self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |p| n += p.value.as_slice().len());
        n
    }

    /// Replaces every batch-norm layer's running statistics by population
    /// statistics (the paper's Algorithm 2): forward passes in
    /// [`Mode::Recalibrate`] over `batches` with the weights frozen, then
    /// mean = average of batch means, var = average of unbiased batch
    /// variances. Dropout is off during these passes. Returns the batch count.
    pub fn recalibrate<'a, I>(&mut self, batches: I) -> Result<u64>
    where
        I: IntoIterator<Item = &'a Matrix<T>>,
    {
        self.for_each_bn(|bn| {
            bn.begin_recalibration();
            Ok(())
        })?;
        for x in batches {
            self.forward(x, Mode::Recalibrate)?;
        }
        let mut count = 0;
        self.for_each_bn(|bn| {
            count = bn.finish_recalibration()?;
            Ok(())
        })?;
        Ok(count)
    }

    fn for_each_bn(&mut self, mut f: impl FnMut(&mut BatchNorm<T>) -> Result<()>) -> Result<()> {
        for l in &mut self.layers {
            if let Layer::BatchNorm(bn) = l {
                f(bn)?;
            }
        }
        Ok(())
    }

    /// One line per layer, e.g. `layers.0  Dense(784 -> 100, no bias)`.
    pub fn summary(&self) -> String {
        let lines: Vec<String> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| format!("layers.{i}  {}", l.describe()))
            .collect();
        lines.join("\n")
    }
}

/// Whether every value of `x` is finite: blocks of 1024 values are checked
/// without an early exit inside, so that the check vectorizes (an `all`
/// with its branch per value ran one value per cycle: 10% of a `bpnet tune`
/// search on a small table).
pub(crate) fn all_finite<T: Scalar>(x: &[T]) -> bool {
    x.chunks(1024).all(|c| {
        let mut bad = false;
        any_non_finite(c, &mut bad);
        !bad
    })
}

crate::vectorized! {
    /// Sets `bad` if some value of `x` is NaN or infinite.
    fn any_non_finite<T: Scalar>(x: &[T], bad: &mut bool) {
        *bad |= x.iter().fold(false, |b, v| b | !v.is_finite());
    }
}

/// `784-100-100-10`; past 12 widths, the first and last 5 around the count
/// left out (a million layers had made an error line of 4 MB).
fn short_dims(dims: &[usize]) -> String {
    let join = |d: &[usize]| d.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-");
    match dims.len() {
        0..=12 => join(dims),
        n => format!("{}-...({} more)...-{}", join(&dims[..5]), n - 10, join(&dims[n - 5..])),
    }
}

#[cfg(test)]
mod tests {
    use super::all_finite;

    #[test]
    fn all_finite_finds_a_bad_value_anywhere() {
        for n in [1, 2, 15, 16, 17, 1023, 1024, 1025, 3001] {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                for at in [0, n / 2, n - 1] {
                    let mut v = vec![1e300f64; n];
                    v[at] = bad;
                    assert!(!all_finite(&v), "f64 n {n} at {at}: {bad}");
                    let mut w = vec![f32::MAX; n];
                    w[at] = bad as f32;
                    assert!(!all_finite(&w), "f32 n {n} at {at}: {bad}");
                }
            }
            assert!(all_finite(&vec![f64::MIN_POSITIVE / 2.0; n]) && all_finite(&vec![-f32::MAX; n]));
        }
        assert!(all_finite::<f32>(&[]));
    }
}
