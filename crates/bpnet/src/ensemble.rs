//! Ensembles: K networks whose predictions are averaged, stored in one
//! model file: of one architecture trained from K seeds (`bpnet train
//! --ensemble K`), or of several architectures with the same input and
//! output widths (a *blend*: the settings `bpnet tune` averages).
//!
//! Averaging happens in probability space for classifiers and in value
//! space for regression ([`Combine`]). So that every consumer of raw
//! outputs (losses, argmax, the probability printing of `bpnet predict`)
//! works unchanged, [`EnsembleNet::forward`] returns the averaged
//! prediction mapped back to "logits": `ln p̄` for softmax classifiers
//! (`softmax(ln p̄) = p̄` since `Σ p̄ = 1`), `ln(p̄ / (1 - p̄))` for a
//! one-output (sigmoid) classifier, and the mean `ȳ` for regression. With
//! one member the output is that member's, bit for bit.

use crate::infer::InferenceNet;
use crate::layers::sigmoid;
use crate::loss::Loss;
use crate::{Error, Matrix, Result, Sequential};
use serde::{Deserialize, Serialize};

/// How member outputs are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Mean of the members' softmax probabilities `[rows, classes]`.
    Softmax,
    /// Mean of the members' sigmoid probabilities (one-output classifiers).
    Sigmoid,
    /// Mean of the members' outputs (regression, in standardized units; the
    /// map back to target units is affine, so it commutes with the mean).
    Mean,
}

impl Combine {
    /// The averaging that fits a model trained with `loss` with `outputs` outputs.
    pub fn for_loss(loss: Loss, outputs: usize) -> Self {
        match loss {
            Loss::CrossEntropy if outputs > 1 => Combine::Softmax,
            Loss::CrossEntropy | Loss::BceWithLogits => Combine::Sigmoid,
            Loss::Mse => Combine::Mean,
        }
    }

    /// One network's outputs `z: [rows, out]` as what the ensemble
    /// averages: softmax or sigmoid probabilities, or the values themselves.
    pub fn probabilities(self, z: &Matrix<f32>) -> Matrix<f32> {
        let mut p = Matrix::zeros(z.rows(), z.cols());
        accumulate(&mut p, z, self);
        p
    }
}

/// The fused inference networks of an ensemble's members.
pub struct EnsembleNet {
    nets: Vec<InferenceNet<f32>>,
    combine: Combine,
}

/// Smallest probability kept before taking logarithms (f32's smallest normal).
pub(crate) const P_MIN: f32 = f32::MIN_POSITIVE;
/// The largest averaged probability a sigmoid ensemble's logit is taken of.
pub(crate) const P_MAX: f32 = 1.0 - f32::EPSILON / 2.0;

impl EnsembleNet {
    /// The fused networks of `members` (at least one, equal input and output widths).
    pub fn new(members: &[Sequential<f32>], combine: Combine) -> Result<Self> {
        Self::of(members, combine)
    }

    /// [`EnsembleNet::new`] for members held apart (e.g. each in its own trainer).
    pub fn of<'a>(members: impl IntoIterator<Item = &'a Sequential<f32>>, combine: Combine) -> Result<Self> {
        let nets = members.into_iter().map(InferenceNet::new).collect::<Result<Vec<_>>>()?;
        let first = nets.first().ok_or_else(|| Error::config("ensemble", "no members"))?;
        let (i, o) = (first.in_features(), first.out_features());
        if nets.iter().any(|n| n.in_features() != i || n.out_features() != o) {
            return Err(Error::config("ensemble", "members of different widths"));
        }
        Ok(EnsembleNet { nets, combine })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    /// Always false (an ensemble has at least one member).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.nets[0].in_features()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.nets[0].out_features()
    }

    /// The averaged prediction for `x: [rows, in]` as "logits" `[rows, out]`
    /// (see the [module docs](self)), written into `out`.
    ///
    /// Each member runs [`InferenceNet::forward_rows_into`]: a row's output
    /// depends on that row alone, whatever the call holds besides it.
    pub fn forward_into(&self, x: &Matrix<f32>, out: &mut Matrix<f32>) -> Result<()> {
        if self.nets.len() == 1 {
            return self.nets[0].forward_rows_into(x, out);
        }
        let mut sum = Matrix::zeros(x.rows(), self.out_features());
        let mut member = Matrix::zeros(0, 0);
        for net in &self.nets {
            net.forward_rows_into(x, &mut member)?;
            accumulate(&mut sum, &member, self.combine);
        }
        let k = self.nets.len() as f32;
        out.resize(sum.rows(), sum.cols());
        for (o, &s) in out.as_mut_slice().iter_mut().zip(sum.as_slice()) {
            let mean = s / k;
            *o = match self.combine {
                Combine::Mean => mean,
                // `max` would turn a NaN (a member's non-finite output) into P_MIN.
                Combine::Softmax if mean.is_nan() => mean,
                Combine::Softmax => mean.max(P_MIN).ln(),
                Combine::Sigmoid => {
                    let p = mean.clamp(P_MIN, P_MAX);
                    (p / (1.0 - p)).ln()
                }
            };
        }
        Ok(())
    }

    /// [`EnsembleNet::forward_into`] into a new matrix.
    pub fn forward(&self, x: &Matrix<f32>) -> Result<Matrix<f32>> {
        let mut out = Matrix::zeros(0, 0);
        self.forward_into(x, &mut out)?;
        Ok(out)
    }

    /// [`EnsembleNet::forward`] over `x` in calls of `group` rows (the last
    /// one shorter), as `bpnet eval` and `bpnet predict` run files, so that
    /// the buffers of a call stay small (with the feature-major kernel the
    /// outputs are those of one call; see
    /// [`InferenceNet::forward_rows_into`]).
    pub fn forward_in_groups(&self, x: &Matrix<f32>, group: usize) -> Result<Matrix<f32>> {
        let group = group.max(1);
        if x.rows() <= group {
            return self.forward(x);
        }
        let cols = x.cols();
        let (mut all, mut out) = (Vec::with_capacity(x.rows() * self.out_features()), Matrix::zeros(0, 0));
        for start in (0..x.rows()).step_by(group) {
            let end = (start + group).min(x.rows());
            let part = Matrix::from_vec(end - start, cols, x.as_slice()[start * cols..end * cols].to_vec())?;
            self.forward_into(&part, &mut out)?;
            all.extend_from_slice(out.as_slice());
        }
        Matrix::from_vec(x.rows(), self.out_features(), all)
    }
}

/// Adds one member's outputs `z`, turned into probabilities (or kept as
/// values), to `sum`.
fn accumulate(sum: &mut Matrix<f32>, z: &Matrix<f32>, combine: Combine) {
    for r in 0..z.rows() {
        let (zr, sr) = (z.row(r), sum.row_mut(r));
        if combine != Combine::Mean && zr.iter().any(|v| !v.is_finite()) {
            // A member's non-finite output gives no probability: the row's
            // average is NaN, so that callers refuse it as they refuse a
            // lone network's (a softmax of an infinite logit had hidden it
            // as an even split).
            sr.fill(f32::NAN);
            continue;
        }
        match combine {
            Combine::Mean => sr.iter_mut().zip(zr).for_each(|(s, &v)| *s += v),
            Combine::Sigmoid => sr.iter_mut().zip(zr).for_each(|(s, &v)| *s += sigmoid(v)),
            Combine::Softmax => {
                let max = zr.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let total: f32 = zr.iter().map(|&v| (v - max).exp()).sum();
                sr.iter_mut().zip(zr).for_each(|(s, &v)| *s += (v - max).exp() / total);
            }
        }
    }
}
