//! The product of one row with a stage's weights, `y = W x`, computed by
//! bpnet itself in f32 on AVX-512 machines (the GEMM library's
//! matrix-vector path is compiled for AVX2 and was slower, see
//! [`matvec_f32_avx512`]); every other case goes to the GEMM library.

use crate::scalar::Scalar;

/// Whether [`matvec`] has a kernel for `T` on this CPU (f32 with AVX-512).
fn one_row_kernel<T: Scalar>() -> bool {
    cfg!(target_arch = "x86_64")
        && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && crate::simd::level() == 3
}

/// [`matvec`] cut into the blocks of output rows that a product of this
/// shape is cut into ([`crate::parallel::split::gemm_blocks`]), run over
/// the threads: each output is computed the same way in whichever block,
/// so the result does not depend on the thread count. (Run whole, the
/// 784-1024x3-10 network's row took 404 µs on 2 threads against 211 µs
/// with its products split, on the Intel machine.) `w` as for [`matvec`].
/// False, writing nothing, where [`one_row_kernel`] has none.
pub(super) fn matvec_split<T: Scalar>(w: &[T], stride: usize, x: &[T], y: &mut [T]) -> bool {
    use crate::parallel::split::{SharedMut, gemm_block, gemm_blocks};
    if !one_row_kernel::<T>() {
        return false;
    }
    let (inp, out) = (x.len(), y.len());
    let blocks = gemm_blocks(1, inp, out);
    let ys = SharedMut::new(y);
    crate::parallel::run(blocks, &|i| {
        let r = gemm_block(out, blocks, i);
        let wb = &w[r.start * stride..r.end * stride];
        // SAFETY: the blocks' ranges are disjoint.
        matvec(wb, stride, x, unsafe { ys.range(r) });
    });
    true
}

/// `y[o] = Σ_k w[o * stride + k] x[k]` for `k < x.len()`: one row's
/// product with `W: [y.len(), x.len()]` stored with row stride `stride`
/// (`w.len() == y.len() * stride`, `stride >= x.len()`; the elements past
/// each row's `x.len()` are never read). False where the kernel does not
/// apply ([`one_row_kernel`]), and nothing was written.
pub(super) fn matvec<T: Scalar>(w: &[T], stride: usize, x: &[T], y: &mut [T]) -> bool {
    if !one_row_kernel::<T>() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let f = |v: &[T]| v.as_ptr() as *const f32;
        // SAFETY: T is f32 (checked above), so each slice is a valid f32
        // slice of the same length; `y` is the only mutable one and no
        // other slice aliases it (it is borrowed mutably).
        let (w, x, y) = unsafe {
            (
                std::slice::from_raw_parts(f(w), w.len()),
                std::slice::from_raw_parts(f(x), x.len()),
                std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut f32, y.len()),
            )
        };
        // SAFETY: level 3 means the CPU has AVX-512F.
        unsafe { matvec_f32_avx512(w, stride, x, y) };
    }
    true
}

/// [`matvec`] with AVX-512: four rows of `w` at a time share each load of
/// `x`, two 16-lane partial sums per row (fused multiply-adds), reduced at
/// the end; the last `x.len() % 32` columns with a mask. The GEMM library
/// hands a single row to its matrix-vector kernel, compiled for AVX2: for
/// the paper network's first layer (784 -> 100, 314 KB of weights read from
/// L2) it took 4.7-5.1 µs on the Intel machine of `docs/PERFORMANCE.md`,
/// this loop 3.4-3.7 µs with the rows 16 bytes past a cache line (where
/// glibc places a `Vec<f32>` of this size: every load then touches two
/// lines) and 2.2 µs with every row on a line ([`super::weights::Weights`];
/// `bpnet bench --dims 784,100 --inference --fused --batch-size 1`). A
/// plain sum over 314 KB in L2 took 1.64 µs on that machine. Like the
/// GEMM library's kernels, it sums in its own order: a row predicted alone
/// differs from the same row in a larger call in the last bits (bounded in
/// `tests/infer.rs`). Where the rows start does not change the result.
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() == y.len() * stride` and
/// `stride >= x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn matvec_f32_avx512(w: &[f32], stride: usize, x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let inp = x.len();
    assert!(
        stride >= inp && w.len() == y.len() * stride,
        "matvec: w is [y.len(), x.len()] with a row stride of at least x.len()"
    );
    let (body, rest) = (inp - inp % 32, inp % 32);
    // Lanes of the two masked loads that cover the last `rest` columns.
    let m0: __mmask16 = ((1u32 << rest.min(16)) - 1) as u16;
    let m1: __mmask16 = ((1u32 << rest.saturating_sub(16)) - 1) as u16;
    let xp = x.as_ptr();
    // SAFETY (every load below): row `o + r` spans `w[(o + r) stride ..
    // (o + r) stride + inp]`, in bounds for `o + r < y.len()` by the
    // assertion above; full loads stay below `body`; masked loads touch
    // only the lanes below `inp` (masked-off lanes are never accessed, so
    // they cannot fault), and their addresses, which may lie past the end
    // when a mask is empty, are formed with `wrapping_add`, which has no
    // in-bounds requirement; `y[o + r]` is in bounds likewise.
    unsafe {
        let mut o = 0;
        while o < y.len() {
            let n = (y.len() - o).min(4);
            // Rows past the last are read as the last row and not stored.
            let p: [*const f32; 4] = std::array::from_fn(|r| w.as_ptr().add((o + r.min(n - 1)) * stride));
            let mut acc = [[_mm512_setzero_ps(); 2]; 4];
            let mut k = 0;
            while k < body {
                let x0 = _mm512_loadu_ps(xp.add(k));
                let x1 = _mm512_loadu_ps(xp.add(k + 16));
                for r in 0..4 {
                    acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(p[r].add(k)), x0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(p[r].add(k + 16)), x1, acc[r][1]);
                }
                k += 32;
            }
            let x0 = _mm512_maskz_loadu_ps(m0, xp.wrapping_add(body));
            let x1 = _mm512_maskz_loadu_ps(m1, xp.wrapping_add(body + 16));
            for r in 0..n {
                let a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, p[r].wrapping_add(body)), x0, acc[r][0]);
                let b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, p[r].wrapping_add(body + 16)), x1, acc[r][1]);
                *y.get_unchecked_mut(o + r) = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
            }
            o += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-row kernel against an f64 sum, on widths around its blocks
    /// of 32 columns and 4 rows and on row strides from none to a line and
    /// more of padding, the padding NaN (read, it would show): within 1e-6
    /// of `Σ |w| |x|` (f32 rounding of up to 800 terms), the same bits
    /// whatever the stride, or it does not apply and writes nothing.
    #[test]
    fn the_one_row_product_matches_an_f64_sum() {
        let _level = crate::simd::level_lock();
        let mut seed = 17u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        // Under Miri (`tools/miri.sh`) the block edges alone.
        let (inps, outs): (&[usize], &[usize]) = if cfg!(miri) {
            (&[1, 15, 16, 17, 33, 65], &[1, 4, 5, 9])
        } else {
            (
                &[1, 2, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 97, 784],
                &[1, 2, 3, 4, 5, 7, 8, 9, 13, 100],
            )
        };
        for &inp in inps {
            for &out in outs {
                let w: Vec<f32> = (0..inp * out).map(|_| next()).collect();
                let x: Vec<f32> = (0..inp).map(|_| next()).collect();
                let mut first: Option<Vec<f32>> = None;
                for stride in [inp, inp + 1, inp.next_multiple_of(16), inp + 33] {
                    let mut ws = vec![f32::NAN; out * stride];
                    for o in 0..out {
                        ws[o * stride..o * stride + inp].copy_from_slice(&w[o * inp..(o + 1) * inp]);
                    }
                    let mut y = vec![f32::NAN; out];
                    if !matvec(&ws, stride, &x, &mut y) {
                        assert!(y.iter().all(|v| v.is_nan()), "wrote although it did not apply");
                        continue;
                    }
                    for (o, &got) in y.iter().enumerate() {
                        let row = &w[o * inp..(o + 1) * inp];
                        let want: f64 = row.iter().zip(&x).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                        let scale: f64 = row.iter().zip(&x).map(|(&a, &b)| f64::from(a.abs() * b.abs())).sum();
                        let err = (f64::from(got) - want).abs();
                        assert!(
                            err <= 1e-6 * scale.max(1e-30),
                            "[{out}, {inp}] stride {stride} row {o}: {got} against {want}"
                        );
                    }
                    let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    match &first {
                        None => first = Some(y),
                        Some(f) => assert_eq!(
                            f.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                            bits,
                            "[{out}, {inp}] stride {stride}"
                        ),
                    }
                }
            }
        }
    }

    /// Not f32: the kernel does not apply (the GEMM library computes it).
    #[test]
    fn the_one_row_kernel_is_f32_only() {
        let mut y = [f64::NAN; 3];
        assert!(!matvec(&[1.0f64; 6], 2, &[1.0, 2.0], &mut y));
        assert!(y.iter().all(|v| v.is_nan()));
    }
}
