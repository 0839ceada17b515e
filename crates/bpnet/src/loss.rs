//! Losses, each the mean over the batch, returning the value and writing the
//! gradient with respect to its input (the network's output, "logits").
//!
//! Shapes: `logits, grad: [batch, outputs]`; targets are class indices
//! `[batch]` or a matrix `[batch, outputs]`.

use crate::error::{Error, Result};
use crate::layers::sigmoid;
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy from logits with integer labels:
    /// `L = mean_i (logsumexp(z_i) - z_{i, y_i})`,
    /// `dL/dz = (softmax(z) - onehot(y)) / batch`.
    CrossEntropy,
    /// Mean squared error over all elements (PyTorch's `MSELoss`):
    /// `L = mean (z - t)^2`, `dL/dz = 2 (z - t) / (batch * outputs)`.
    Mse,
    /// Binary cross-entropy with logits over all elements:
    /// `L = mean (max(z, 0) - z t + ln(1 + e^-|z|))`,
    /// `dL/dz = (sigmoid(z) - t) / (batch * outputs)`.
    BceWithLogits,
}

/// What a loss compares the output with.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a, T> {
    /// One class index per row, `[batch]`.
    Labels(&'a [usize]),
    /// One value per output, `[batch, outputs]`.
    Values(&'a Matrix<T>),
}

impl Loss {
    /// The loss value of `logits` against `target`; writes `dL/dlogits` into
    /// `grad` (resized to the shape of `logits`).
    pub fn forward_backward<T: Scalar>(
        self,
        logits: &Matrix<T>,
        target: Target<'_, T>,
        grad: &mut Matrix<T>,
    ) -> Result<T> {
        if logits.rows() == 0 {
            return Err(Error::shape("loss", "a batch of at least one row", logits));
        }
        self.forward_backward_share(logits, target, grad, logits.rows())
    }

    /// The share of `logits: [rows, out]` in the mean loss over a batch of
    /// `batch_rows >= rows` rows of which they are a part (data-parallel
    /// training: the sum over the parts is the batch's mean loss), and its
    /// gradient `d share / d logits` in `grad`. With `batch_rows == rows` this
    /// is [`Loss::forward_backward`]; `rows` may be 0 (share 0).
    pub fn forward_backward_share<T: Scalar>(
        self,
        logits: &Matrix<T>,
        target: Target<'_, T>,
        grad: &mut Matrix<T>,
        batch_rows: usize,
    ) -> Result<T> {
        check_part(logits, batch_rows)?;
        grad.resize(logits.rows(), logits.cols());
        match (self, target) {
            (Loss::CrossEntropy, Target::Labels(y)) => cross_entropy(logits, y, grad, batch_rows),
            (Loss::Mse, Target::Values(t)) => elementwise(logits, t, grad, mse_term, batch_rows),
            (Loss::BceWithLogits, Target::Values(t)) => elementwise(logits, t, grad, bce_term, batch_rows),
            (loss, _) => Err(Error::config(
                "loss target",
                format!("{loss:?} needs {}", loss.target_kind()),
            )),
        }
    }

    /// [`Loss::forward_backward_share`] with label smoothing `eps` in
    /// `[0, 1)` (PyTorch's `CrossEntropyLoss(label_smoothing=eps)`): the
    /// target of row `i` is `q = (1 - eps) onehot(y_i) + eps / K` over the
    /// `K` classes, `L = mean_i (logsumexp(z_i) - sum_k q_k z_ik)`,
    /// `dL/dz = (softmax(z) - q) / batch`. `eps = 0` is the plain loss, bit
    /// for bit; only [`Loss::CrossEntropy`] takes `eps > 0`.
    pub fn forward_backward_smoothed<T: Scalar>(
        self,
        logits: &Matrix<T>,
        target: Target<'_, T>,
        grad: &mut Matrix<T>,
        batch_rows: usize,
        eps: f64,
    ) -> Result<T> {
        if eps == 0.0 {
            return self.forward_backward_share(logits, target, grad, batch_rows);
        }
        check_smoothing(self, eps)?;
        check_part(logits, batch_rows)?;
        grad.resize(logits.rows(), logits.cols());
        match target {
            Target::Labels(y) => smoothed_cross_entropy(logits, y, grad, batch_rows, eps),
            Target::Values(_) => Err(Error::config("loss target", "cross-entropy needs integer class labels")),
        }
    }

    /// Checks, before a training step touches anything, that `target` fits
    /// `rows` rows (a batch, or a rank's part of one, which may be empty)
    /// of a network with `outputs` outputs and this
    /// loss (with label smoothing `eps`): the errors the loss itself would
    /// give, but before the forward pass has moved the running statistics
    /// or drawn dropout masks, so that a refused step leaves the model as it
    /// was. Allocates nothing unless it fails.
    pub fn check_target<T: Scalar>(self, target: &Target<'_, T>, rows: usize, outputs: usize, eps: f64) -> Result<()> {
        if eps != 0.0 {
            check_smoothing(self, eps)?;
        }
        match (self, target) {
            (Loss::CrossEntropy, Target::Labels(y)) => {
                if y.len() != rows {
                    return Err(Error::shape("cross-entropy labels", rows, y.len()));
                }
                match y.iter().position(|&l| l >= outputs) {
                    Some(row) => Err(Error::Label {
                        row,
                        label: y[row],
                        classes: outputs,
                    }),
                    None => Ok(()),
                }
            }
            (Loss::Mse | Loss::BceWithLogits, Target::Values(t)) if t.shape() == [rows, outputs] => Ok(()),
            (Loss::Mse | Loss::BceWithLogits, Target::Values(t)) => {
                Err(Error::shape("loss target", format!("[{rows}, {outputs}]"), t))
            }
            (loss, _) => Err(Error::config(
                "loss target",
                format!("{loss:?} needs {}", loss.target_kind()),
            )),
        }
    }

    /// The loss value only (the gradient is computed into a scratch buffer).
    pub fn value<T: Scalar>(self, logits: &Matrix<T>, target: Target<'_, T>) -> Result<T> {
        let mut scratch = Matrix::default();
        self.forward_backward(logits, target, &mut scratch)
    }

    fn target_kind(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "integer class labels",
            Loss::Mse | Loss::BceWithLogits => "a target matrix of the output's shape",
        }
    }
}

/// `logits: [rows, out]` must be a part of a non-empty batch of `batch_rows` rows.
fn check_part<T: Scalar>(logits: &Matrix<T>, batch_rows: usize) -> Result<()> {
    if batch_rows == 0 || batch_rows < logits.rows() {
        return Err(Error::shape(
            "loss",
            format!("a part of at most {batch_rows} rows of a non-empty batch"),
            logits,
        ));
    }
    Ok(())
}

/// One label per row of `z`.
fn check_labels<T: Scalar>(z: &Matrix<T>, labels: &[usize]) -> Result<()> {
    if labels.len() != z.rows() {
        return Err(Error::shape("cross-entropy labels", z.rows(), labels.len()));
    }
    Ok(())
}

/// Row `r` of `z` and its `logsumexp`, after checking its label `y`.
fn row_lse<T: Scalar>(z: &Matrix<T>, r: usize, y: usize) -> Result<(&[T], T)> {
    let k = z.cols();
    if y >= k {
        return Err(Error::Label {
            row: r,
            label: y,
            classes: k,
        });
    }
    let zr = z.row(r);
    let max = zr.iter().fold(zr[0], |m, &v| m.max(v));
    let sum: T = zr.iter().map(|&v| (v - max).exp()).sum();
    Ok((zr, max + sum.ln()))
}

/// Mean cross-entropy over `batch_rows` rows, of which `z` holds some.
fn cross_entropy<T: Scalar>(z: &Matrix<T>, labels: &[usize], grad: &mut Matrix<T>, batch_rows: usize) -> Result<T> {
    check_labels(z, labels)?;
    let n = batch_rows;
    let inv_n = T::ONE / T::from_f64(n as f64);
    let mut total = 0.0f64;
    for (r, &y) in labels.iter().enumerate() {
        let (zr, lse) = row_lse(z, r, y)?;
        total += (lse - zr[y]).to_f64();
        for (g, &v) in grad.row_mut(r).iter_mut().zip(zr) {
            *g = (v - lse).exp() * inv_n;
        }
        grad.row_mut(r)[y] -= inv_n;
    }
    Ok(T::from_f64(total / n as f64))
}

/// Label smoothing `eps` must be in `[0, 1)`, and only for cross-entropy.
pub fn check_smoothing(loss: Loss, eps: f64) -> Result<()> {
    if !(0.0..1.0).contains(&eps) {
        return Err(Error::config("label-smoothing", format!("{eps} is not in [0, 1)")));
    }
    if eps > 0.0 && loss != Loss::CrossEntropy {
        return Err(Error::config(
            "label-smoothing",
            format!("applies to classification (softmax cross-entropy), not to {loss:?}"),
        ));
    }
    Ok(())
}

/// [`cross_entropy`] against the smoothed targets (see
/// [`Loss::forward_backward_smoothed`]).
fn smoothed_cross_entropy<T: Scalar>(
    z: &Matrix<T>,
    labels: &[usize],
    grad: &mut Matrix<T>,
    batch_rows: usize,
    eps: f64,
) -> Result<T> {
    check_labels(z, labels)?;
    let k = z.cols() as f64;
    let inv_n = T::ONE / T::from_f64(batch_rows as f64);
    let (off, on) = (eps / k, 1.0 - eps + eps / k);
    let mut total = 0.0f64;
    for (r, &y) in labels.iter().enumerate() {
        let (zr, lse) = row_lse(z, r, y)?;
        let lse = lse.to_f64();
        // logsumexp - sum_k q_k z_k = sum_k q_k (lse - z_k), since sum_k q_k = 1.
        let mut row = 0.0f64;
        for (j, (g, &v)) in grad.row_mut(r).iter_mut().zip(zr).enumerate() {
            let q = if j == y { on } else { off };
            row += q * (lse - v.to_f64());
            *g = (T::from_f64((v.to_f64() - lse).exp()) - T::from_f64(q)) * inv_n;
        }
        total += row;
    }
    Ok(T::from_f64(total / batch_rows as f64))
}

/// A per-element loss term and its derivative `(l(z, t), dl/dz)`.
type Term<T> = fn(T, T) -> (T, T);

fn mse_term<T: Scalar>(z: T, t: T) -> (T, T) {
    let d = z - t;
    (d * d, d + d)
}

fn bce_term<T: Scalar>(z: T, t: T) -> (T, T) {
    let l = z.max(T::ZERO) - z * t + (-z.abs()).exp().ln_1p();
    (l, sigmoid(z) - t)
}

/// Mean of `term` over the `batch_rows x cols` elements of a batch, of which `z` holds some rows.
fn elementwise<T: Scalar>(
    z: &Matrix<T>,
    t: &Matrix<T>,
    grad: &mut Matrix<T>,
    term: Term<T>,
    batch_rows: usize,
) -> Result<T> {
    if z.shape() != t.shape() {
        return Err(Error::shape("loss target", z, t));
    }
    let count = (batch_rows * z.cols()).max(1);
    let inv = T::ONE / T::from_f64(count as f64);
    let mut total = 0.0f64;
    for ((g, &zv), &tv) in grad.as_mut_slice().iter_mut().zip(z.as_slice()).zip(t.as_slice()) {
        let (l, d) = term(zv, tv);
        total += l.to_f64();
        *g = d * inv;
    }
    Ok(T::from_f64(total / count as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Matrix<f64> {
        Matrix::from_vec(
            3,
            4,
            vec![0.5, -1.0, 2.0, 0.1, 3.0, 0.0, -2.0, 1.0, -0.3, 0.3, 0.0, 0.7],
        )
        .unwrap()
    }

    #[test]
    fn no_smoothing_is_the_plain_loss_bit_for_bit() {
        let z = logits().cast::<f32>();
        let (mut a, mut b) = (Matrix::default(), Matrix::default());
        let y = [2, 0, 3];
        let la = Loss::CrossEntropy
            .forward_backward(&z, Target::Labels(&y), &mut a)
            .unwrap();
        let lb = Loss::CrossEntropy
            .forward_backward_smoothed(&z, Target::Labels(&y), &mut b, 3, 0.0)
            .unwrap();
        assert_eq!(la.to_bits(), lb.to_bits());
        assert_eq!(a.as_slice(), b.as_slice());
    }

    #[test]
    fn smoothing_matches_its_definition() {
        // L = mean_i sum_k q_ik (lse_i - z_ik), q = (1 - e) onehot + e / K.
        let z = logits();
        let (y, eps, k) = ([2usize, 0, 3], 0.2, 4.0);
        let mut g = Matrix::default();
        let l = Loss::CrossEntropy
            .forward_backward_smoothed(&z, Target::Labels(&y), &mut g, 3, eps)
            .unwrap();
        let mut want = 0.0;
        for (r, &yr) in y.iter().enumerate() {
            let row = z.row(r);
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            for (j, &v) in row.iter().enumerate() {
                let q = eps / k + if j == yr { 1.0 - eps } else { 0.0 };
                want += q * (lse - v) / 3.0;
                let expect = ((v - lse).exp() - q) / 3.0;
                assert!((g.row(r)[j] - expect).abs() < 1e-15, "grad ({r}, {j})");
            }
        }
        assert!((l - want).abs() < 1e-14, "{l} against {want}");
        // Each row's gradient sums to zero, as softmax and q both sum to one.
        for r in 0..3 {
            assert!(g.row(r).iter().sum::<f64>().abs() < 1e-15);
        }
    }

    #[test]
    fn smoothing_is_refused_out_of_range_and_for_other_losses() {
        for eps in [-0.1, 1.0, 1.5, f64::NAN] {
            let e = check_smoothing(Loss::CrossEntropy, eps).unwrap_err().to_string();
            assert!(e.contains("label-smoothing") && e.contains("[0, 1)"), "{e}");
        }
        let e = check_smoothing(Loss::Mse, 0.1).unwrap_err().to_string();
        assert!(e.contains("classification"), "{e}");
        assert!(check_smoothing(Loss::Mse, 0.0).is_ok());
        let (z, t) = (logits(), logits());
        let e = Loss::Mse.forward_backward_smoothed(&z, Target::Values(&t), &mut Matrix::default(), 3, 0.1);
        assert!(e.is_err());
    }
}
