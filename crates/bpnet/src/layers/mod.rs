//! Layers of a sequential network. Each layer keeps its forward and backward
//! side by side with mirrored signatures:
//!
//! - `forward(x, mode)` reads the input `x: [batch, in]`, writes its own output
//!   buffer `[batch, out]` and caches what backward needs;
//! - `backward(x, dy, need_dx)` reads the same `x` and the output gradient
//!   `dy: [batch, out]`, **adds** into its parameters' gradients and, when
//!   `need_dx`, writes the input gradient `[batch, in]` into its own buffer.
//!
//! Buffers are sized on the first call and reused, so a training step
//! allocates nothing once warm. Gradients are zeroed explicitly
//! ([`Param::zero_grad`]), or set rather than added to by
//! [`Layer::backward_with`] (what a training step does).

mod activation;
pub(crate) use activation::{bias_act_kernel, bias_act_rows_kernel};
mod batch_norm;
mod batch_renorm;
mod bn_kernels;
mod bn_sync;
mod dense;
mod dropout;
mod ghost_batch_norm;
mod layer_norm;
mod norm_kind;

pub use activation::{Activation, ActivationLayer, SOFTPLUS_THRESHOLD, sigmoid};
pub use batch_norm::{BatchNorm, BatchNormConfig, Momentum, RunningStats};
pub use bn_sync::BnSync;
pub use dense::Dense;
pub use dropout::Dropout;
pub use ghost_batch_norm::ghost_batches;
pub use layer_norm::LayerNorm;
pub(crate) use layer_norm::layer_norm_in_place;
pub use norm_kind::{NormKind, RenormConfig};

use crate::error::Result;
use crate::scalar::Scalar;
use crate::tensor::{Matrix, Out};

/// Whether a forward pass is for training or for inference. Always passed
/// explicitly, never stored globally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: batch normalization uses batch statistics and updates its
    /// running statistics; dropout is active.
    Train,
    /// Inference: batch normalization uses its running (or population)
    /// statistics and changes nothing; dropout is the identity.
    Eval,
    /// A pass for recomputing population statistics (the paper's Algorithm 2):
    /// batch normalization normalizes with batch statistics and accumulates
    /// them, leaving running statistics alone; dropout is the identity. See
    /// [`crate::model::Sequential::recalibrate`].
    Recalibrate,
}

/// What a parameter is, so that weight decay can exempt biases and the
/// normalization's scale and shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A Dense layer's weight matrix.
    Weight,
    /// A Dense layer's bias.
    Bias,
    /// Batch normalization's scale gamma.
    NormScale,
    /// Batch normalization's shift beta.
    NormShift,
}

/// A trainable tensor and its gradient (same shape). Only `Param`s are seen by
/// optimizers; running statistics are a separate type.
#[derive(Debug, Clone)]
pub struct Param<T> {
    /// Path name, e.g. `layers.0.weight`.
    pub name: String,
    /// What the parameter is.
    pub kind: ParamKind,
    /// Values, `[rows, cols]` (a vector is `[1, n]`).
    pub value: Matrix<T>,
    /// Gradient of the loss, accumulated by backward; same shape as `value`.
    pub grad: Matrix<T>,
}

impl<T: Scalar> Param<T> {
    /// A parameter holding `value`, with a zero gradient.
    pub fn new(name: String, kind: ParamKind, value: Matrix<T>) -> Self {
        let grad = Matrix::zeros(value.rows(), value.cols());
        Param {
            name,
            kind,
            value,
            grad,
        }
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&mut self) {
        self.grad.fill(T::ZERO);
    }
}

/// One layer of a [`crate::model::Sequential`] network.
// Layers live in one Vec per model; boxing the larger variants would only add
// an indirection on every forward and backward call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Layer<T> {
    /// Fully connected affine map.
    Dense(Dense<T>),
    /// Batch normalization over features (also Batch Renormalization and
    /// Ghost BN, which differ from it only in training).
    BatchNorm(BatchNorm<T>),
    /// Layer normalization over the features of each row.
    LayerNorm(LayerNorm<T>),
    /// Element-wise nonlinearity.
    Activation(ActivationLayer<T>),
    /// Inverted dropout.
    Dropout(Dropout<T>),
}

macro_rules! each {
    ($self:expr, $l:ident => $e:expr) => {
        match $self {
            Layer::Dense($l) => $e,
            Layer::BatchNorm($l) => $e,
            Layer::LayerNorm($l) => $e,
            Layer::Activation($l) => $e,
            Layer::Dropout($l) => $e,
        }
    };
}

impl<T: Scalar> Layer<T> {
    /// Forward pass: `x: [batch, in]` -> [`Layer::output`] `[batch, out]`.
    pub fn forward(&mut self, x: &Matrix<T>, mode: Mode) -> Result<()> {
        each!(self, l => l.forward(x, mode))
    }

    /// Backward pass for the last forward: `x` is that forward's input, `dy`
    /// the gradient wrt the output. Adds parameter gradients; writes
    /// [`Layer::input_grad`] when `need_dx`.
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        each!(self, l => l.backward(x, dy, need_dx))
    }

    /// [`Layer::backward`], with the parameter gradients added to
    /// (`Out::Add`) or set (`Out::Replace`: the same values as zeroing them
    /// first, without writing a dense layer's weight gradient twice).
    pub fn backward_with(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool, grads: Out) -> Result<()> {
        match self {
            Layer::Dense(d) => d.backward_with(x, dy, need_dx, grads),
            other => {
                if grads == Out::Replace {
                    other.visit_params(&mut |p| p.zero_grad());
                }
                other.backward(x, dy, need_dx)
            }
        }
    }

    /// The output of the last forward pass, `[batch, out]`.
    pub fn output(&self) -> &Matrix<T> {
        each!(self, l => l.output())
    }

    /// The input gradient of the last backward pass, `[batch, in]`.
    pub fn input_grad(&self) -> &Matrix<T> {
        each!(self, l => l.input_grad())
    }

    /// Output width for an input width.
    pub fn out_features(&self, in_features: usize) -> usize {
        match self {
            Layer::Dense(d) => d.out_features(),
            _ => in_features,
        }
    }

    /// Calls `f` on every trainable parameter, in a fixed order.
    pub fn visit_params(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        match self {
            Layer::Dense(d) => d.visit_params(f),
            Layer::BatchNorm(b) => b.visit_params(f),
            Layer::LayerNorm(n) => n.visit_params(f),
            Layer::Activation(_) | Layer::Dropout(_) => {}
        }
    }

    /// Calls `f` on every trainable parameter, read-only, in the order of
    /// [`Layer::visit_params`].
    pub fn params(&self, f: &mut dyn FnMut(&Param<T>)) {
        match self {
            Layer::Dense(d) => {
                f(&d.weight);
                if let Some(b) = &d.bias {
                    f(b);
                }
            }
            Layer::BatchNorm(b) => {
                if let Some((g, beta)) = &b.affine {
                    f(g);
                    f(beta);
                }
            }
            Layer::LayerNorm(n) => {
                if let Some((g, beta)) = &n.affine {
                    f(g);
                    f(beta);
                }
            }
            Layer::Activation(_) | Layer::Dropout(_) => {}
        }
    }

    /// Short description, e.g. `Dense(784 -> 100, no bias)`.
    pub fn describe(&self) -> String {
        each!(self, l => l.describe())
    }
}
