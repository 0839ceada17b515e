//! SGD with optional (Nesterov) momentum, as `torch.optim.SGD`:
//!
//! ```text
//! g = grad + wd p
//! b = g (first step)  |  b = mu b + (1 - dampening) g
//! d = g + mu b (Nesterov)  |  d = b  (momentum)  |  d = g (plain)
//! p = p - lr d
//! ```

use super::{StepCtx, decayed_grad};
use crate::layers::Param;
use crate::scalar::Scalar;

/// The momentum buffer, created on the first step that uses it.
#[derive(Debug, Clone)]
pub(super) struct SgdState<T> {
    pub(super) buf: Vec<T>,
}

impl<T: Scalar> SgdState<T> {
    pub(super) fn new() -> Self {
        SgdState { buf: Vec::new() }
    }

    pub(super) fn update(
        &mut self,
        p: &mut Param<T>,
        ctx: StepCtx,
        momentum: f64,
        dampening: f64,
        nesterov: bool,
    ) -> bool {
        let n = p.value.as_slice().len();
        let (lr, wd, mu) = (
            T::from_f64(ctx.lr),
            T::from_f64(ctx.weight_decay),
            T::from_f64(momentum),
        );
        let damp = T::from_f64(1.0 - dampening);
        let first = self.buf.is_empty();
        if momentum != 0.0 && first {
            self.buf.resize(n, T::ZERO);
        }
        if momentum != 0.0 && self.buf.len() != n {
            return false;
        }
        for i in 0..n {
            let g = decayed_grad(p, i, wd);
            let d = if momentum == 0.0 {
                g
            } else {
                let b = &mut self.buf[i];
                *b = if first { g } else { mu * *b + damp * g };
                if nesterov { g + mu * *b } else { *b }
            };
            p.value.as_mut_slice()[i] -= lr * d;
        }
        true
    }
}
