//! matrixmultiply backend: `sgemm`/`dgemm` with arbitrary row/column strides.
//! Whether it threads depends on the crate's `threading` feature and the
//! MATMUL_NUM_THREADS environment variable (read once per process).

use crate::harness::{Backend, Call};

pub struct Mm {
    pub name: &'static str,
    pub threads: usize,
}

impl Backend for Mm {
    fn name(&self) -> &'static str {
        self.name
    }
    fn threads(&self) -> usize {
        self.threads
    }
    unsafe fn f32(&self, c: &Call<f32>) {
        // C = alpha·A·B + beta·C; argument order (m, k, n).
        let beta = if c.accumulate { 1.0 } else { 0.0 };
        unsafe {
            matrixmultiply::sgemm(
                c.m, c.k, c.n, 1.0, c.a, c.rsa, c.csa, c.b, c.rsb, c.csb, beta, c.c, c.rsc, c.csc,
            )
        }
    }
    unsafe fn f64(&self, c: &Call<f64>) {
        let beta = if c.accumulate { 1.0 } else { 0.0 };
        unsafe {
            matrixmultiply::dgemm(
                c.m, c.k, c.n, 1.0, c.a, c.rsa, c.csa, c.b, c.rsb, c.csb, beta, c.c, c.rsc, c.csc,
            )
        }
    }
}
