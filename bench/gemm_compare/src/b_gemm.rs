//! gemm backend (sarah-quinones' `gemm` crate): `gemm::gemm`, which computes
//! `dst := alpha·dst + beta·lhs·rhs` and takes each matrix's COLUMN stride
//! before its ROW stride. `read_dst = false` ignores the old dst (alpha unused).

use crate::harness::{Backend, Call};

pub struct Gemm {
    pub name: &'static str,
    pub par: gemm::Parallelism,
    pub threads: usize,
}

impl Backend for Gemm {
    fn name(&self) -> &'static str {
        self.name
    }
    fn threads(&self) -> usize {
        self.threads
    }
    unsafe fn f32(&self, c: &Call<f32>) {
        let alpha = if c.accumulate { 1.0 } else { 0.0 };
        unsafe {
            gemm::gemm(
                c.m, c.n, c.k,
                c.c, c.csc, c.rsc, c.accumulate,
                c.a, c.csa, c.rsa,
                c.b, c.csb, c.rsb,
                alpha, 1.0,
                false, false, false,
                self.par,
            )
        }
    }
    unsafe fn f64(&self, c: &Call<f64>) {
        let alpha = if c.accumulate { 1.0 } else { 0.0 };
        unsafe {
            gemm::gemm(
                c.m, c.n, c.k,
                c.c, c.csc, c.rsc, c.accumulate,
                c.a, c.csa, c.rsa,
                c.b, c.csb, c.rsb,
                alpha, 1.0,
                false, false, false,
                self.par,
            )
        }
    }
}
