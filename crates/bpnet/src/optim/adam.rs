//! Adam and AdamW, as `torch.optim.Adam` / `AdamW` (single-tensor path):
//!
//! ```text
//! AdamW: p = p (1 - lr wd)         Adam: g = grad + wd p
//! m = m + (1 - b1) (g - m)         v = b2 v + (1 - b2) g^2
//! denom = sqrt(v) / sqrt(1 - b2^t) + eps
//! p = p - lr / (1 - b1^t) * m / denom
//! ```

use super::StepCtx;
use crate::layers::Param;
use crate::parallel::split::{SharedMut, for_ranges};
use crate::scalar::Scalar;

/// First and second moment estimates.
#[derive(Debug, Clone)]
pub(super) struct AdamState<T> {
    pub(super) m: Vec<T>,
    pub(super) v: Vec<T>,
}

impl<T: Scalar> AdamState<T> {
    pub(super) fn new(n: usize) -> Self {
        AdamState {
            m: vec![T::ZERO; n],
            v: vec![T::ZERO; n],
        }
    }

    pub(super) fn update(
        &mut self,
        p: &mut Param<T>,
        ctx: StepCtx,
        [beta1, beta2, eps]: [f64; 3],
        decoupled: bool,
    ) -> bool {
        let n = p.value.as_slice().len();
        if self.m.len() != n {
            return false;
        }
        let t = ctx.t as i32;
        let step_size = T::from_f64(ctx.lr / (1.0 - beta1.powi(t)));
        let bc2_sqrt = T::from_f64((1.0 - beta2.powi(t)).sqrt());
        let (b1, b2, eps) = (T::from_f64(1.0 - beta1), T::from_f64(beta2), T::from_f64(eps));
        let one_m_b2 = T::from_f64(1.0 - beta2);
        let (coupled, shrink) = if decoupled {
            (T::ZERO, T::from_f64(1.0 - ctx.lr * ctx.weight_decay))
        } else {
            (T::from_f64(ctx.weight_decay), T::ONE)
        };
        let k = [coupled, b1, b2, one_m_b2, bc2_sqrt, eps, step_size, shrink];
        let g = p.grad.as_slice();
        let (w, m, v) = (
            SharedMut::new(p.value.as_mut_slice()),
            SharedMut::new(&mut self.m),
            SharedMut::new(&mut self.v),
        );
        for_ranges(n, &|r| {
            // SAFETY: `for_ranges` hands out disjoint ranges.
            let (w, m, v) = unsafe { (w.range(r.clone()), m.range(r.clone()), v.range(r.clone())) };
            adam_kernel(w, &g[r], m, v, k);
        });
        true
    }
}

crate::vectorized! {
    /// The Adam update of one tensor (see [`AdamState::update`]), widened;
    /// `k = [coupled decay, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2^t), eps, step size, shrink]`.
    fn adam_kernel<T: Scalar>(w: &mut [T], g: &[T], m: &mut [T], v: &mut [T], k: [T; 8]) {
        let [coupled, b1, b2, one_m_b2, bc2_sqrt, eps, step_size, shrink] = k;
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if coupled == T::ZERO { g } else { g + coupled * *w };
            *m += b1 * (g - *m);
            *v = b2 * *v + one_m_b2 * g * g;
            let denom = v.sqrt() / bc2_sqrt + eps;
            *w = *w * shrink - step_size * (*m / denom);
        }
    }
}
