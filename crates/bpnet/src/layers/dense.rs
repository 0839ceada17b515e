//! Fully connected layer: `y = x W^T + b`.
//!
//! Shapes: `x: [batch, in]`, `W: [out, in]` (PyTorch's layout), `b: [1, out]`,
//! `y: [batch, out]`. Backward: `dW += dy^T x`, `db += sum_rows(dy)`,
//! `dx = dy W` (or `dW = ...`, `db = ...`: [`Dense::backward_with`]).

use super::{Mode, Param, ParamKind};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::{Matrix, Op, Out, gemm};

/// A fully connected (affine) layer.
#[derive(Debug, Clone)]
pub struct Dense<T> {
    /// Weights `[out, in]`.
    pub weight: Param<T>,
    /// Optional bias `[1, out]`; absent when batch normalization follows.
    pub bias: Option<Param<T>>,
    out: Matrix<T>,
    dx: Matrix<T>,
}

impl<T: Scalar> Dense<T> {
    /// A layer with the given weights `[out, in]` and optional bias `[1, out]`,
    /// named `{path}.weight` and `{path}.bias`.
    pub fn new(path: &str, weight: Matrix<T>, bias: Option<Matrix<T>>) -> Result<Self> {
        if let Some(b) = &bias
            && b.shape() != [1, weight.rows()]
        {
            return Err(Error::shape("dense bias", format!("[1, {}]", weight.rows()), b));
        }
        Ok(Dense {
            weight: Param::new(format!("{path}.weight"), ParamKind::Weight, weight),
            bias: bias.map(|b| Param::new(format!("{path}.bias"), ParamKind::Bias, b)),
            out: Matrix::default(),
            dx: Matrix::default(),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.value.cols()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.value.rows()
    }

    /// `y = x W^T + b`; `x: [batch, in]`. The mode does not matter here.
    pub fn forward(&mut self, x: &Matrix<T>, _mode: Mode) -> Result<()> {
        if x.cols() != self.in_features() {
            return Err(Error::shape("dense forward", format!("[_, {}]", self.in_features()), x));
        }
        self.out.resize(x.rows(), self.out_features());
        gemm(T::ONE, x, Op::N, &self.weight.value, Op::T, Out::Replace, &mut self.out)?;
        if let Some(b) = &self.bias {
            let b = b.value.as_slice();
            for r in 0..self.out.rows() {
                for (y, &bj) in self.out.row_mut(r).iter_mut().zip(b) {
                    *y += bj;
                }
            }
        }
        Ok(())
    }

    /// `dW += dy^T x`, `db += sum_rows(dy)`, and `dx = dy W` when `need_dx`.
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        self.backward_with(x, dy, need_dx, Out::Add)
    }

    /// [`Dense::backward`], with the parameter gradients added to
    /// (`Out::Add`) or set (`Out::Replace`: `dW = dy^T x`, `db =
    /// sum_rows(dy)`, their old contents ignored). Setting saves zeroing
    /// `dW` and reading it back in the product: a step of the 784-1024x3-10
    /// network zeroes 12 MB of weight gradients otherwise.
    pub fn backward_with(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool, grads: Out) -> Result<()> {
        if dy.shape() != [x.rows(), self.out_features()] {
            return Err(Error::shape(
                "dense backward",
                format!("[{}, {}]", x.rows(), self.out_features()),
                dy,
            ));
        }
        gemm(T::ONE, dy, Op::T, x, Op::N, grads, &mut self.weight.grad)?;
        if let Some(b) = &mut self.bias {
            let db = b.grad.as_mut_slice();
            if grads == Out::Replace {
                db.fill(T::ZERO);
            }
            for r in 0..dy.rows() {
                for (g, &d) in db.iter_mut().zip(dy.row(r)) {
                    *g += d;
                }
            }
        }
        if need_dx {
            self.dx.resize(x.rows(), self.in_features());
            gemm(T::ONE, dy, Op::N, &self.weight.value, Op::N, Out::Replace, &mut self.dx)?;
        }
        Ok(())
    }

    /// The last forward's output `[batch, out]`.
    pub fn output(&self) -> &Matrix<T> {
        &self.out
    }

    /// The last backward's input gradient `[batch, in]`.
    pub fn input_grad(&self) -> &Matrix<T> {
        &self.dx
    }

    /// Visits `weight`, then `bias`.
    pub fn visit_params(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.weight);
        if let Some(b) = &mut self.bias {
            f(b);
        }
    }

    /// E.g. `Dense(784 -> 100, no bias)`.
    pub fn describe(&self) -> String {
        let bias = if self.bias.is_some() { "bias" } else { "no bias" };
        format!("Dense({} -> {}, {bias})", self.in_features(), self.out_features())
    }
}
