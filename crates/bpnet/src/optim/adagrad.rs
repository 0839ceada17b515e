//! Adagrad, as `torch.optim.Adagrad`:
//!
//! ```text
//! g = grad + wd p     lr_t = lr / (1 + (t - 1) lr_decay)
//! s = s + g^2         p = p - lr_t g / (sqrt s + eps)
//! ```

use super::{StepCtx, decayed_grad};
use crate::layers::Param;
use crate::scalar::Scalar;

/// The running sum of squared gradients.
#[derive(Debug, Clone)]
pub(super) struct AdagradState<T> {
    pub(super) sum: Vec<T>,
}

impl<T: Scalar> AdagradState<T> {
    pub(super) fn new(n: usize, initial: f64) -> Self {
        AdagradState {
            sum: vec![T::from_f64(initial); n],
        }
    }

    pub(super) fn update(&mut self, p: &mut Param<T>, ctx: StepCtx, lr_decay: f64, eps: f64) -> bool {
        let n = p.value.as_slice().len();
        if self.sum.len() != n {
            return false;
        }
        let clr = T::from_f64(ctx.lr / (1.0 + (ctx.t - 1) as f64 * lr_decay));
        let (wd, eps) = (T::from_f64(ctx.weight_decay), T::from_f64(eps));
        for i in 0..n {
            let g = decayed_grad(p, i, wd);
            let s = &mut self.sum[i];
            *s += g * g;
            p.value.as_mut_slice()[i] -= clr * (g / (s.sqrt() + eps));
        }
        true
    }
}
