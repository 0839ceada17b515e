//! A stage's weights laid out for the products of [`super::InferenceNet`]:
//! every row starts on a 64-byte boundary.
//!
//! The one-row kernel ([`super::matvec`]) streams a layer's weights from
//! L2 with 64-byte vector loads. On the Intel machine of
//! `docs/PERFORMANCE.md` a load that straddles two cache lines costs two
//! line reads. glibc's allocator put every `Vec<f32>` of 78,400 or
//! 802,816 values (a first layer's weights) 16 bytes past a line, smaller
//! ones on any 16-byte boundary, and a row of 100 f32 ends mid-line: the paper network's
//! one-row call took 4.7-5.0 µs with its weights stored as trained and
//! 3.2 µs with its rows on lines (its first layer alone 3.5 µs against
//! 2.2 µs). In a C copy of the kernel the input vector's alignment made no
//! measurable difference, so only the weights are laid out this way.

use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// The boundary each row starts on, in bytes (a cache line, one AVX-512
/// vector).
const ALIGN: usize = 64;

/// `[rows, cols]` row-major with a row stride of `stride >= cols` elements:
/// row `o` is `as_slice()[o * stride..][..cols]`, the `stride - cols`
/// elements after it are zero. `stride * size_of::<T>()` is a multiple of
/// [`ALIGN`], and `as_slice()` starts on an [`ALIGN`]-byte boundary
/// wherever `<*const T>::align_offset` finds one (it always does for
/// f32/f64 today; where it would not, the rows are merely unaligned, which
/// is slower, never wrong).
#[derive(Debug)]
pub(super) struct Weights<T> {
    /// The rows plus up to one stride of slack in front to reach alignment.
    buf: Vec<T>,
    /// Where row 0 starts in `buf`.
    start: usize,
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<T: Scalar> Weights<T> {
    /// Zeros of shape `[rows, cols]`, laid out as described on the type.
    fn zeros(rows: usize, cols: usize) -> Self {
        let lane = (ALIGN / size_of::<T>()).max(1);
        let stride = cols.next_multiple_of(lane);
        let buf = vec![T::ZERO; rows * stride + lane];
        // In elements; `usize::MAX` (allowed by its contract) or anything
        // that would not leave room means "start unaligned".
        let start = match buf.as_ptr().align_offset(ALIGN) {
            s if s < lane => s,
            _ => 0,
        };
        Weights {
            buf,
            start,
            rows,
            cols,
            stride,
        }
    }

    /// A copy of `m: [rows, cols]`.
    pub(super) fn new(m: &Matrix<T>) -> Self {
        let mut w = Self::zeros(m.rows(), m.cols());
        if w.cols > 0 {
            let (cols, stride) = (w.cols, w.stride);
            for (dst, src) in w.as_mut_slice().chunks_mut(stride).zip(m.as_slice().chunks(cols)) {
                dst[..cols].copy_from_slice(src);
            }
        }
        w
    }

    /// Output width (rows).
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Input width (columns).
    pub(super) fn cols(&self) -> usize {
        self.cols
    }

    /// Elements from one row's start to the next's.
    pub(super) fn stride(&self) -> usize {
        self.stride
    }

    /// The `rows * stride` elements, padding included.
    pub(super) fn as_slice(&self) -> &[T] {
        &self.buf[self.start..self.start + self.rows * self.stride]
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        let len = self.rows * self.stride;
        &mut self.buf[self.start..self.start + len]
    }
}

impl<T: Scalar> Clone for Weights<T> {
    /// A fresh allocation, aligned on its own (a copied `Vec` may sit at
    /// another offset from a line).
    fn clone(&self) -> Self {
        let mut w = Self::zeros(self.rows, self.cols);
        w.as_mut_slice().copy_from_slice(self.as_slice());
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Scalar>(w: &Weights<T>, m: &Matrix<T>) {
        let s = w.as_slice();
        assert_eq!(s.len(), m.rows() * w.stride());
        assert_eq!((w.stride() * size_of::<T>()) % ALIGN, 0);
        assert!(w.stride() >= m.cols());
        assert_eq!(s.as_ptr() as usize % ALIGN, 0, "rows start on a line");
        for o in 0..m.rows() {
            let row = &s[o * w.stride()..(o + 1) * w.stride()];
            assert_eq!(&row[..m.cols()], m.row(o));
            assert!(row[m.cols()..].iter().all(|&v| v == T::ZERO), "padding is zero");
        }
    }

    /// Rows, padding and alignment on widths around a line (f32: 16 per
    /// line, f64: 8), for the original and for clones.
    #[test]
    fn rows_are_copied_padded_and_aligned() {
        for cols in [1, 7, 8, 9, 15, 16, 17, 100, 784] {
            for rows in [1, 3, 33] {
                let m32 = Matrix::from_vec(rows, cols, (0..rows * cols).map(|i| i as f32 + 0.5).collect()).unwrap();
                let m64 = m32.cast::<f64>();
                let (w32, w64) = (Weights::new(&m32), Weights::new(&m64));
                check(&w32, &m32);
                check(&w64, &m64);
                // Clones made while other allocations shift the heap.
                let _spacer = vec![0u8; 4 + cols];
                check(&w32.clone(), &m32);
                check(&w64.clone(), &m64);
            }
        }
    }

    #[test]
    fn an_empty_matrix_has_no_rows() {
        let w = Weights::new(&Matrix::<f32>::zeros(0, 5));
        assert!(w.as_slice().is_empty());
        let w = Weights::new(&Matrix::<f32>::zeros(4, 0));
        assert!(w.as_slice().is_empty());
    }
}
