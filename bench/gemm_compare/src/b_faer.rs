//! faer backend: `faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, par)`
//! on strided views built with `MatRef::from_raw_parts(ptr, nrows, ncols,
//! row_stride, col_stride)`.

use crate::harness::{Backend, Call};
use faer::{Accum, MatMut, MatRef, Par};

pub struct Faer {
    pub name: &'static str,
    pub par: Par,
    pub threads: usize,
}

impl Backend for Faer {
    fn name(&self) -> &'static str {
        self.name
    }
    fn threads(&self) -> usize {
        self.threads
    }
    unsafe fn f32(&self, c: &Call<f32>) {
        unsafe {
            let a = MatRef::from_raw_parts(c.a, c.m, c.k, c.rsa, c.csa);
            let b = MatRef::from_raw_parts(c.b, c.k, c.n, c.rsb, c.csb);
            let d = MatMut::from_raw_parts_mut(c.c, c.m, c.n, c.rsc, c.csc);
            let acc = if c.accumulate { Accum::Add } else { Accum::Replace };
            faer::linalg::matmul::matmul(d, acc, a, b, 1.0f32, self.par);
        }
    }
    unsafe fn f64(&self, c: &Call<f64>) {
        unsafe {
            let a = MatRef::from_raw_parts(c.a, c.m, c.k, c.rsa, c.csa);
            let b = MatRef::from_raw_parts(c.b, c.k, c.n, c.rsb, c.csb);
            let d = MatMut::from_raw_parts_mut(c.c, c.m, c.n, c.rsc, c.csc);
            let acc = if c.accumulate { Accum::Add } else { Accum::Replace };
            faer::linalg::matmul::matmul(d, acc, a, b, 1.0f64, self.par);
        }
    }
}
