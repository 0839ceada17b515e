//! RMSProp, as `torch.optim.RMSprop`:
//!
//! ```text
//! g = grad + wd p                  v = alpha v + (1 - alpha) g^2
//! centered: a = a + (1 - alpha)(g - a),  denom = sqrt(v - a^2) + eps
//! else:     denom = sqrt(v) + eps
//! momentum: b = mu b + g / denom,  p = p - lr b
//! else:     p = p - lr g / denom
//! ```

use super::{StepCtx, decayed_grad};
use crate::layers::Param;
use crate::scalar::Scalar;

/// Square average, and the gradient average (centered) and momentum buffer
/// when used (empty otherwise).
#[derive(Debug, Clone)]
pub(super) struct RmsPropState<T> {
    pub(super) square_avg: Vec<T>,
    pub(super) grad_avg: Vec<T>,
    pub(super) buf: Vec<T>,
}

impl<T: Scalar> RmsPropState<T> {
    pub(super) fn new(n: usize, centered: bool, momentum: bool) -> Self {
        let opt = |on: bool| if on { vec![T::ZERO; n] } else { Vec::new() };
        RmsPropState {
            square_avg: vec![T::ZERO; n],
            grad_avg: opt(centered),
            buf: opt(momentum),
        }
    }

    pub(super) fn update(&mut self, p: &mut Param<T>, ctx: StepCtx, alpha: f64, eps: f64, momentum: f64) -> bool {
        let n = p.value.as_slice().len();
        if self.square_avg.len() != n {
            return false;
        }
        let (lr, wd, eps) = (T::from_f64(ctx.lr), T::from_f64(ctx.weight_decay), T::from_f64(eps));
        let (a, one_m_a, mu) = (T::from_f64(alpha), T::from_f64(1.0 - alpha), T::from_f64(momentum));
        for i in 0..n {
            let g = decayed_grad(p, i, wd);
            let v = &mut self.square_avg[i];
            *v = a * *v + one_m_a * g * g;
            let denom = match self.grad_avg.get_mut(i) {
                Some(ga) => {
                    *ga += one_m_a * (g - *ga);
                    (*v - *ga * *ga).sqrt() + eps
                }
                None => v.sqrt() + eps,
            };
            let step = match self.buf.get_mut(i) {
                Some(b) => {
                    *b = mu * *b + g / denom;
                    *b
                }
                None => g / denom,
            };
            p.value.as_mut_slice()[i] -= lr * step;
        }
        true
    }
}
