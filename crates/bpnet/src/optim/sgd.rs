//! SGD with optional (Nesterov) momentum, as `torch.optim.SGD`:
//!
//! ```text
//! g = grad + wd p
//! b = g (first step)  |  b = mu b + (1 - dampening) g
//! d = g + mu b (Nesterov)  |  d = b  (momentum)  |  d = g (plain)
//! p = p - lr d
//! ```

use super::StepCtx;
use crate::layers::Param;
use crate::parallel::split::{SharedMut, for_ranges};
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
        let g = p.grad.as_slice();
        let (w, buf) = (SharedMut::new(p.value.as_mut_slice()), SharedMut::new(&mut self.buf));
        for_ranges(n, &|r| {
            // SAFETY: `for_ranges` hands out disjoint ranges.
            let w = unsafe { w.range(r.clone()) };
            if momentum == 0.0 {
                sgd_kernel(w, &g[r], [lr, wd]);
            } else {
                // SAFETY: as above; `buf` has n elements when momentum is on.
                let b = unsafe { buf.range(r.clone()) };
                momentum_kernel(w, &g[r], b, [lr, wd, mu, damp], [first, nesterov]);
            }
        });
        true
    }
}

crate::vectorized! {
    /// Plain SGD on one tensor, widened: `w -= lr (g + wd w)`.
    fn sgd_kernel<T: Scalar>(w: &mut [T], g: &[T], k: [T; 2]) {
        let [lr, wd] = k;
        for (w, &g) in w.iter_mut().zip(g) {
            let g = if wd == T::ZERO { g } else { g + wd * *w };
            *w -= lr * g;
        }
    }
}

crate::vectorized! {
    /// SGD with (Nesterov) momentum on one tensor, widened (PyTorch's form:
    /// the first step sets the buffer to the gradient).
    fn momentum_kernel<T: Scalar>(w: &mut [T], g: &[T], buf: &mut [T], k: [T; 4], flags: [bool; 2]) {
        let [lr, wd, mu, damp] = k;
        let [first, nesterov] = flags;
        for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
            let g = if wd == T::ZERO { g } else { g + wd * *w };
            *b = if first { g } else { mu * *b + damp * g };
            let d = if nesterov { g + mu * *b } else { *b };
            *w -= lr * d;
        }
    }
}
