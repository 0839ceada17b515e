//! How work is cut into parts: blocks of a matrix product (a function of
//! its shape only), ranges of element-wise work, and a slice whose disjoint
//! ranges the parts write.

use std::ops::Range;

/// Products with fewer multiply-adds stay in one block. Measured on the
/// 2-core machine of `docs/PERFORMANCE.md`: a 60 x 100 x 100 product
/// (0.6 M) takes 6.3 µs on one thread and 3.4 µs split over two (so the
/// hand-off of a part to the other core cost well under 3 µs there).
/// Under Miri both thresholds are 64 times lower, so that its tests reach
/// the split code with shapes the interpreter runs in seconds.
pub const MIN_MACS_SPLIT: usize = if cfg!(miri) { 1 << 12 } else { 1 << 18 };

/// Element-wise work over fewer elements stays on one thread.
pub const MIN_ELEMENTS_SPLIT: usize = if cfg!(miri) { 1 << 9 } else { 1 << 15 };

/// The most blocks a product is cut into.
pub const MAX_GEMM_BLOCKS: usize = 8;

/// Blocks are at least this many output rows or columns wide.
pub const MIN_BLOCK_WIDTH: usize = 48;

/// Blocks hold at least this many multiply-adds.
pub const MIN_BLOCK_MACS: usize = MIN_MACS_SPLIT / 2;

/// Into how many blocks an `m x k` by `k x n` product is cut: a power of two
/// (so that 2 or 4 threads get equal shares), at most [`MAX_GEMM_BLOCKS`],
/// each block at least [`MIN_BLOCK_WIDTH`] wide along the output's longer
/// side and [`MIN_BLOCK_MACS`] big; 1 below [`MIN_MACS_SPLIT`]. A function
/// of the shape only: see [`crate::parallel`] for why.
pub fn gemm_blocks(m: usize, k: usize, n: usize) -> usize {
    let macs = m.saturating_mul(k).saturating_mul(n);
    if macs < MIN_MACS_SPLIT {
        return 1;
    }
    let most = MAX_GEMM_BLOCKS
        .min(m.max(n) / MIN_BLOCK_WIDTH)
        .min(macs / MIN_BLOCK_MACS);
    if most < 2 { 1 } else { 1 << most.ilog2() }
}

/// Block `i` of `blocks` along a side of length `len`: cut at the multiple
/// of 16 nearest an even split (16 elements are one AVX-512 vector of f32),
/// so no block is empty when `len >= blocks * MIN_BLOCK_WIDTH`.
pub fn gemm_block(len: usize, blocks: usize, i: usize) -> Range<usize> {
    let cut = |i: usize| {
        if i >= blocks {
            len
        } else {
            ((i * len / blocks + 8) / 16 * 16).min(len)
        }
    };
    cut(i)..cut(i + 1)
}

/// Into how many parts element-wise work over `len` elements is split.
pub(crate) fn parts_for(len: usize) -> usize {
    if len >= MIN_ELEMENTS_SPLIT && !super::in_job() {
        super::threads()
    } else {
        1
    }
}

/// The `i`-th of `parts` contiguous ranges of `0..len`, with boundaries at
/// multiples of 16 elements.
pub(crate) fn range(len: usize, parts: usize, i: usize) -> Range<usize> {
    let step = len.div_ceil(parts).div_ceil(16) * 16;
    (i * step).min(len)..((i + 1) * step).min(len)
}

/// Runs `f` on disjoint ranges covering `0..len`: one range per thread when
/// `len` is long enough to profit ([`parts_for`]), else `f(0..len)` on the
/// calling thread. Element-wise work only: each element's result must not
/// depend on the range it falls in.
pub(crate) fn for_ranges(len: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let parts = parts_for(len);
    if parts == 1 {
        f(0..len);
    } else {
        super::run(parts, &|i| f(range(len, parts, i)));
    }
}

/// Runs `f` on disjoint ranges of rows covering `0..rows` of a
/// `[rows, cols]` matrix: one range per thread when the matrix is big
/// enough to profit ([`parts_for`]), else `f(0..rows)` on the calling
/// thread. Row-wise work only: each row's result must not depend on the
/// range it falls in.
pub(crate) fn for_rows(rows: usize, cols: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let parts = parts_for(rows.saturating_mul(cols)).min(rows);
    if parts <= 1 {
        f(0..rows);
    } else {
        super::run(parts, &|i| f(row_range(rows, parts, i)));
    }
}

/// The `i`-th of `parts <= rows` ranges of rows, none empty.
fn row_range(rows: usize, parts: usize, i: usize) -> Range<usize> {
    rows * i / parts..rows * (i + 1) / parts
}

/// Runs `f` on disjoint ranges of columns covering `0..cols` of a
/// `[rows, cols]` matrix, cut at multiples of 16 columns: one range per
/// thread when the matrix is big enough to profit ([`parts_for`]), else
/// `f(0..cols)`. For sums over rows: each column's sum runs over the rows in
/// order wherever the column falls, so the result does not depend on the cut.
pub(crate) fn for_columns(rows: usize, cols: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let parts = parts_for(rows.saturating_mul(cols)).min(column_parts(cols));
    if parts <= 1 {
        f(0..cols);
    } else {
        super::run(parts, &|i| f(range(cols, parts, i)));
    }
}

/// The most parts `cols` columns are cut into: one per 16 columns begun.
fn column_parts(cols: usize) -> usize {
    cols.div_ceil(16)
}

/// A mutable slice whose disjoint ranges the parts of a [`super::run`] job
/// write.
pub(crate) struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: the parts only take disjoint ranges (the contract of `range`), so
// no element is accessed from two threads; `T: Send` lets elements be written
// from another thread.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Shares `s` for the duration of one job.
    pub(crate) fn new(s: &'a mut [T]) -> Self {
        SharedMut {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _slice: std::marker::PhantomData,
        }
    }

    /// The elements `r` of the slice.
    ///
    /// # Safety
    /// Ranges taken while another is alive must not overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, r: Range<usize>) -> &'a mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "range {r:?} outside 0..{}",
            self.len
        );
        // SAFETY: in bounds (checked), and not aliased (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_side_without_gaps_or_empty_blocks() {
        for m in [1, 2, 31, 48, 60, 95, 96, 100, 256, 784, 1000, 1024, 4099] {
            for n in [1, 3, 47, 100, 513, 1024] {
                for k in [1, 64, 784, 10_000] {
                    let blocks = gemm_blocks(m, k, n);
                    assert!(blocks.is_power_of_two() && blocks <= MAX_GEMM_BLOCKS);
                    let len = m.max(n);
                    let mut at = 0;
                    for i in 0..blocks {
                        let r = gemm_block(len, blocks, i);
                        assert_eq!(r.start, at, "{m}x{k}x{n} block {i}");
                        assert!(r.len() >= 32 || blocks == 1, "{m}x{k}x{n} block {i}: {r:?}");
                        at = r.end;
                    }
                    assert_eq!(at, len, "{m}x{k}x{n}");
                }
            }
        }
    }

    #[test]
    fn row_and_column_ranges_tile_the_matrix() {
        for len in [1, 2, 3, 15, 16, 17, 33, 97, 100, 257, 333, 1024] {
            for parts in 1..=8 {
                let rows = parts.min(len);
                let mut at = 0;
                for i in 0..rows {
                    let r = row_range(len, rows, i);
                    assert!(
                        r.start == at && !r.is_empty(),
                        "{len} rows, {rows} parts, part {i}: {r:?}"
                    );
                    at = r.end;
                }
                assert_eq!(at, len);
                let cols = parts.min(column_parts(len));
                let mut at = 0;
                for i in 0..cols {
                    let r = range(len, cols, i);
                    assert!(
                        r.start == at && r.start.is_multiple_of(16) || r.is_empty(),
                        "{len} columns: {r:?}"
                    );
                    at = r.end;
                }
                assert_eq!(at, len, "{len} columns, {cols} parts");
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri's thresholds are lower")]
    fn block_counts_of_the_benchmark_networks() {
        // Paper net, batch 60: 2 blocks of the 100-wide side; first-layer
        // weight gradient 100 x 60 x 784: 8 blocks.
        assert_eq!(gemm_blocks(60, 784, 100), 2);
        assert_eq!(gemm_blocks(60, 100, 100), 2);
        assert_eq!(gemm_blocks(100, 60, 784), 8);
        assert_eq!(gemm_blocks(60, 100, 10), 1);
        assert_eq!(gemm_blocks(256, 1024, 1024), 8);
        // Big but thin: both output sides under 2 x MIN_BLOCK_WIDTH, one call
        // (docs/GEMM.md); at 96 the longer side splits.
        const { assert!(60 * 4099 * 64 >= MIN_MACS_SPLIT) };
        assert_eq!(gemm_blocks(60, 4099, 64), 1);
        assert_eq!(gemm_blocks(95, 100_000, 95), 1);
        assert_eq!(gemm_blocks(96, 100_000, 95), 2);
    }
}
