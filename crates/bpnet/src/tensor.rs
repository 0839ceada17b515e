//! Row-major matrices `[rows, cols]` and the matrix products the layers use.
//!
//! Products go through the GEMM kernel of [`Scalar::gemm_raw`]; transposed
//! operands are read in place through strides, never copied.

use crate::error::{Error, Result};
use crate::parallel::split::{gemm_block, gemm_blocks};
use crate::scalar::Scalar;

/// A dense row-major matrix: element `(r, c)` is `data[r * cols + c]`.
///
/// Invariant (the kernels' raw-pointer products rely on it):
/// `data.len() == rows * cols` without overflow. Every constructor checks
/// the product ([`elements`]); a shape whose product overflows `usize`
/// (e.g. `[2^63, 2]`, which wraps to 0) is refused, never stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

/// Whether a GEMM operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use its transpose (read in place through strides).
    T,
}

/// `rows * cols`; panics when the product overflows `usize` (as
/// `Vec::with_capacity` does past its capacity), so that no matrix ever
/// holds fewer elements than its shape says.
fn elements(rows: usize, cols: usize) -> usize {
    rows.checked_mul(cols)
        .unwrap_or_else(|| panic!("matrix [{rows}, {cols}]: more elements than a usize counts"))
}

impl<T: Scalar> Matrix<T> {
    /// A `rows x cols` matrix of zeros. Panics if `rows * cols` overflows.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![T::ZERO; elements(rows, cols)],
        }
    }

    /// A `rows x cols` matrix with every element `v`. Panics if
    /// `rows * cols` overflows.
    pub fn filled(rows: usize, cols: usize, v: T) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![v; elements(rows, cols)],
        }
    }

    /// Wraps row-major `data` of length `rows * cols` (an error otherwise,
    /// and for a shape whose element count overflows `usize`).
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        match rows.checked_mul(cols) {
            Some(n) if n == data.len() => Ok(Matrix { rows, cols, data }),
            n => Err(Error::shape(
                "matrix from_vec",
                match n {
                    Some(n) => format!("{n} values for [{rows}, {cols}]"),
                    None => format!("[{rows}, {cols}], more values than a usize counts"),
                },
                data.len(),
            )),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The shape as `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// All elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// All elements, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Row `r` (length `cols`).
    pub fn row(&self, r: usize) -> &[T] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutable.
    pub fn row_mut(&mut self, r: usize) -> &mut [T] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Element `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> T {
        self.data[r * self.cols + c]
    }

    /// Reshapes to `rows x cols`, reusing the allocation when it is large
    /// enough (so a buffer sized for the largest batch never reallocates).
    /// Contents are unspecified afterwards.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        let n = elements(rows, cols);
        // The data first: if it cannot grow (a capacity overflow panics),
        // the old shape is kept with the old data, and the invariant holds
        // for a caller that catches the panic.
        self.data.resize(n, T::ZERO);
        self.rows = rows;
        self.cols = cols;
    }

    /// Keeps only rows `idx` (strictly increasing), in that order, moving
    /// them down in place and returning the freed memory: no second copy of
    /// the matrix is ever held. Panics if `idx` is not strictly increasing
    /// or names a row out of range.
    pub fn retain_rows(&mut self, idx: &[usize]) {
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "retain_rows: indices must increase"
        );
        assert!(
            idx.last().is_none_or(|&i| i < self.rows),
            "retain_rows: row out of range"
        );
        let c = self.cols;
        for (r, &i) in idx.iter().enumerate() {
            // r <= i as idx increases: the source row is not yet overwritten.
            if r != i {
                self.data.copy_within(i * c..(i + 1) * c, r * c);
            }
        }
        self.rows = idx.len();
        self.data.truncate(idx.len() * c);
        self.data.shrink_to_fit();
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: T) {
        self.data.fill(v);
    }

    /// Copies `other` into `self`, resizing `self` first.
    pub fn copy_from(&mut self, other: &Matrix<T>) {
        self.resize(other.rows, other.cols);
        self.data.copy_from_slice(&other.data);
    }

    /// Converts every element to another scalar type.
    pub fn cast<U: Scalar>(&self) -> Matrix<U> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect(),
        }
    }

    /// The shape of `op(self)`.
    fn op_shape(&self, op: Op) -> (usize, usize) {
        match op {
            Op::N => (self.rows, self.cols),
            Op::T => (self.cols, self.rows),
        }
    }

    /// Row and column strides of `op(self)`.
    fn op_strides(&self, op: Op) -> (isize, isize) {
        let (rs, cs) = (self.cols as isize, 1isize);
        match op {
            Op::N => (rs, cs),
            Op::T => (cs, rs),
        }
    }
}

impl<T: Scalar> std::fmt::Display for Matrix<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.rows, self.cols)
    }
}

/// Whether a product overwrites or accumulates into its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// `C = alpha op_a(A) op_b(B)`; old contents of `C` are ignored (NaN-safe).
    Replace,
    /// `C += alpha op_a(A) op_b(B)`.
    Add,
}

/// `C = alpha * op_a(A) * op_b(B)` or `C += ...`, per `out`.
///
/// Shapes: `op_a(A)` is `[m, k]`, `op_b(B)` is `[k, n]`, and `C` must already be
/// `[m, n]`. Transposed operands are read in place through strides.
pub fn gemm<T: Scalar>(
    alpha: T,
    a: &Matrix<T>,
    op_a: Op,
    b: &Matrix<T>,
    op_b: Op,
    out: Out,
    c: &mut Matrix<T>,
) -> Result<()> {
    let (m, k) = a.op_shape(op_a);
    let (k2, n) = b.op_shape(op_b);
    if k != k2 || c.rows != m || c.cols != n {
        return Err(Error::shape(
            "gemm",
            format!("[{m}, {k}] x [{k}, {n}] -> [{m}, {n}]"),
            format!("[{m}, {k}] x [{k2}, {n}] -> {c}"),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        // An empty sum: `C = 0` (`C += 0` leaves it).
        if out == Out::Replace {
            c.data.fill(T::ZERO);
        }
        return Ok(());
    }
    let (rsa, csa) = a.op_strides(op_a);
    let (rsb, csb) = b.op_strides(op_b);
    let job = Job {
        m,
        k,
        n,
        alpha,
        a: (a.data.as_ptr(), rsa, csa),
        b: (b.data.as_ptr(), rsb, csb),
        accumulate: out == Out::Add,
        c: (c.data.as_mut_ptr(), c.cols as isize, 1),
    };
    // SAFETY: the shapes were checked above and each pointer addresses a
    // buffer of exactly rows*cols elements with the strides of its layout;
    // `c` is borrowed mutably so it cannot alias `a` or `b`.
    unsafe { job.run_split() };
    Ok(())
}

/// Runs one small product in f32 and in f64 on the calling thread, so that
/// the GEMM kernel's per-thread scratch memory exists before training
/// starts (the team's workers call this when they start; otherwise a
/// worker's first product could allocate in the middle of a training run).
/// Skipped under Miri, where the interpreted products would take minutes
/// for each worker and allocations are not counted.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn warm_thread() {
    if cfg!(miri) {
        return;
    }
    fn warm<T: Scalar>() {
        let a = Matrix::<T>::filled(64, 64, T::ONE);
        let mut c = Matrix::<T>::zeros(64, 64);
        let job = Job {
            m: 64,
            k: 64,
            n: 64,
            alpha: T::ONE,
            a: (a.data.as_ptr(), 64, 1),
            b: (a.data.as_ptr(), 1, 64),
            accumulate: false,
            c: (c.data.as_mut_ptr(), 64, 1),
        };
        // SAFETY: three 64 x 64 row-major buffers (`b` reads `a` transposed),
        // `c` distinct from `a`. Run unsplit: a split would need the team,
        // which is still starting when its workers call this.
        unsafe { job.run() };
    }
    warm::<f32>();
    warm::<f64>();
}

/// One product `C = alpha A B` (or `C +=` with `accumulate`) on raw
/// strided storage given as (pointer, row stride, column stride); `A` is
/// `m x k`, `B` is `k x n`, `C` is `m x n` (see [`Scalar::gemm_raw`]).
#[derive(Clone, Copy)]
pub(crate) struct Job<T> {
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) alpha: T,
    pub(crate) a: (*const T, isize, isize),
    pub(crate) b: (*const T, isize, isize),
    pub(crate) accumulate: bool,
    pub(crate) c: (*mut T, isize, isize),
}

// SAFETY: jobs are shared between threads only by `gemm`, whose parts write
// disjoint blocks of `c` and only read `a` and `b`.
unsafe impl<T: Sync> Sync for Job<T> {}

impl<T: Scalar> Job<T> {
    /// Runs the product in the blocks of [`gemm_blocks`] (a function of
    /// the shape only), spread over the threads of [`crate::parallel`]; each
    /// block is one call of the single-threaded kernel, so the result is the
    /// same for any thread count.
    ///
    /// # Safety
    /// As [`Scalar::gemm_raw`].
    pub(crate) unsafe fn run_split(self) {
        let blocks = gemm_blocks(self.m, self.k, self.n);
        if blocks == 1 {
            // SAFETY: the caller's contract.
            unsafe { self.run() };
        } else {
            // SAFETY: the caller's contract; the blocks write disjoint parts of `c`.
            crate::parallel::run(blocks, &|i| unsafe { self.block(i, blocks).run() });
        }
    }

    /// # Safety
    /// As [`Scalar::gemm_raw`].
    unsafe fn run(self) {
        if self.m == 0 || self.n == 0 {
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            T::gemm_raw(
                self.m,
                self.k,
                self.n,
                self.alpha,
                self.a,
                self.b,
                self.accumulate,
                self.c,
            )
        };
    }

    /// Block `i` of `blocks` ([`gemm_block`]) along the output's longer side.
    fn block(mut self, i: usize, blocks: usize) -> Self {
        let r = gemm_block(self.n.max(self.m), blocks, i);
        // Offsets stay within the buffers: r.start <= the side's length.
        if self.n >= self.m {
            self.n = r.len();
            self.b.0 = self.b.0.wrapping_offset(r.start as isize * self.b.2);
            self.c.0 = self.c.0.wrapping_offset(r.start as isize * self.c.2);
        } else {
            self.m = r.len();
            self.a.0 = self.a.0.wrapping_offset(r.start as isize * self.a.1);
            self.c.0 = self.c.0.wrapping_offset(r.start as isize * self.c.1);
        }
        self
    }
}

/// Naive triple-loop reference for `op_a(A) * op_b(B)`, accumulated in `f64`.
/// For tests only: it checks the GEMM kernel, never used in training.
pub fn matmul_reference<T: Scalar>(a: &Matrix<T>, op_a: Op, b: &Matrix<T>, op_b: Op) -> Matrix<T> {
    let (m, k) = a.op_shape(op_a);
    let (_, n) = b.op_shape(op_b);
    let at = |i: usize, p: usize| match op_a {
        Op::N => a.get(i, p),
        Op::T => a.get(p, i),
    };
    let bt = |p: usize, j: usize| match op_b {
        Op::N => b.get(p, j),
        Op::T => b.get(j, p),
    };
    let mut c = Matrix::zeros(m, n);
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| at(i, p).to_f64() * bt(p, j).to_f64()).sum();
            c.data[i * n + j] = T::from_f64(s);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[2^63, 2]` wrapped to 0 elements: an empty vector made a matrix of
    /// that shape, and a product over it read outside memory (a segfault
    /// from safe code in a release build).
    #[test]
    fn shapes_whose_element_count_overflows_are_refused() {
        let err = Matrix::<f32>::from_vec(1 << 63, 2, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("more values than a usize counts"), "{err}");
        assert!(Matrix::<f32>::from_vec(usize::MAX, usize::MAX, vec![0.0]).is_err());
        for shape in [(usize::MAX, 2), (1 << 63, 2), (2, 1 << 63)] {
            let zeros = std::panic::catch_unwind(|| Matrix::<f32>::zeros(shape.0, shape.1));
            assert!(zeros.is_err(), "{shape:?}");
            let resized = std::panic::catch_unwind(|| Matrix::<f32>::default().resize(shape.0, shape.1));
            assert!(resized.is_err(), "{shape:?}");
        }
        // A count that fits a usize but not an allocation (2^62 f32 values
        // are 2^64 bytes): the panic leaves the old shape with its data (the
        // shape was stored first, and a product over it segfaulted).
        let mut a = Matrix::<f32>::zeros(2, 3);
        let grown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.resize(1, 1 << 62)));
        assert!(grown.is_err());
        assert_eq!((a.rows(), a.cols(), a.as_slice().len()), (2, 3, 6));
    }

    fn seq(rows: usize, cols: usize, f: f64) -> Matrix<f64> {
        let data = (0..rows * cols).map(|i| ((i as f64) * f).sin()).collect();
        Matrix::from_vec(rows, cols, data).unwrap()
    }

    #[test]
    fn gemm_matches_reference_for_every_transpose() {
        let (m, k, n) = (7, 5, 3);
        for (op_a, op_b) in [(Op::N, Op::N), (Op::N, Op::T), (Op::T, Op::N), (Op::T, Op::T)] {
            let a = if op_a == Op::N { seq(m, k, 0.3) } else { seq(k, m, 0.3) };
            let b = if op_b == Op::N { seq(k, n, 0.7) } else { seq(n, k, 0.7) };
            let r = matmul_reference(&a, op_a, &b, op_b);
            for out in [Out::Replace, Out::Add] {
                let mut c = seq(m, n, 1.1);
                let c0 = c.clone();
                gemm(2.0, &a, op_a, &b, op_b, out, &mut c).unwrap();
                let keep = if out == Out::Add { 1.0 } else { 0.0 };
                for i in 0..m * n {
                    let want = 2.0 * r.data[i] + keep * c0.data[i];
                    assert!((c.data[i] - want).abs() < 1e-12, "{op_a:?}{op_b:?}{out:?} at {i}");
                }
            }
        }
    }

    #[test]
    fn gemm_rejects_mismatched_shapes() {
        let a = seq(2, 3, 1.0);
        let b = seq(4, 2, 1.0);
        let mut c = Matrix::zeros(2, 2);
        let err = gemm(1.0, &a, Op::N, &b, Op::N, Out::Replace, &mut c).unwrap_err();
        assert!(err.to_string().contains("gemm"), "{err}");
    }

    #[test]
    fn replace_ignores_nan_in_output() {
        let a = seq(2, 2, 1.0);
        let mut c = Matrix::from_vec(2, 2, vec![f64::NAN; 4]).unwrap();
        gemm(1.0, &a, Op::N, &a, Op::N, Out::Replace, &mut c).unwrap();
        assert!(c.as_slice().iter().all(|v| v.is_finite()));
    }
}
