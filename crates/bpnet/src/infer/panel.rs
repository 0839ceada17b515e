//! Products in the feature-major layout, computed by bpnet itself in f32 on
//! AVX-512 machines: a block of activations is stored feature by feature,
//! `xt: [in, cols]` (column `j` is row `j` of the batch), and a stage
//! computes `ct: [out, cols] = W xt` with its weights packed once into
//! [`Panels`] of [`MR`] output rows.
//!
//! The kernel holds `MR x 32` sums in registers (`MR` weight rows times 32
//! batch rows along the vector lanes) and adds one `k` at a time: a
//! broadcast weight times a vector of 16 batch rows, by fused multiply-add.
//! Every sum therefore runs `k = 0, 1, ...` from zero in one f32
//! accumulator, whichever tile, block or thread holds its row: a row's
//! output does not depend on the rows computed with it. Against the GEMM
//! library's row-major products (C prototypes on the Intel machine of
//! `docs/PERFORMANCE.md`, one thread): 193 GFLOP/s on 512 x 784 x 100 and
//! 230 on 512 x 100 x 100 against about 125 for the library's kernels,
//! which leave the 4 outputs past 96 of a 100-wide layer to a slower
//! kernel; with the outputs along the lanes instead, 137-142.
//!
//! Between stages the layout stays feature-major; the block's input is
//! transposed in ([`transpose`], 16 x 16 tiles in registers) and its output
//! transposed out.

/// Output rows per panel: `MR x 2` accumulators, two input vectors and a
/// broadcast fit the 32 vector registers (C prototypes, one thread, 512 x
/// 784 x 100: 193 GFLOP/s with 10, 183 with 12, 163 with 14).
pub(super) const MR: usize = 10;

/// Batch rows per tile of the kernel (two vectors of 16 lanes).
const TILE: usize = 32;

/// Fewest panels per block when [`product_split`] splits a product. 32
/// rows through the paper network on 2 threads took 0.041 ms with its
/// 10-panel products whole and 0.058 ms with them cut in two; the
/// 784-1024x3-10 network's 103-panel products, cut in two, took 0.54
/// against 0.55 ms (3 alternating runs each).
const MIN_SPLIT_PANELS: usize = 16;

/// `[out, in]` weights packed for [`product`]: panel `p` holds output rows
/// `p MR .. p MR + MR` as `[in][MR]`, `k` major, rows past `out` zero.
#[derive(Debug, Clone)]
pub(super) struct Panels {
    data: Vec<f32>,
    out: usize,
    inp: usize,
}

impl Panels {
    /// Packs `w: [out, inp]` stored with row stride `stride >= inp`.
    pub(super) fn new(w: &[f32], stride: usize, out: usize, inp: usize) -> Self {
        assert!(
            stride >= inp && w.len() >= out * stride,
            "panels: w is [out, inp] with stride"
        );
        let panels = out.div_ceil(MR);
        let mut data = vec![0.0; panels * inp * MR];
        for (o, row) in w.chunks(stride).take(out).enumerate() {
            let (p, r) = (o / MR, o % MR);
            let panel = &mut data[p * inp * MR..(p + 1) * inp * MR];
            for (k, &v) in row[..inp].iter().enumerate() {
                panel[k * MR + r] = v;
            }
        }
        Panels { data, out, inp }
    }

    /// Output rows.
    pub(super) fn out(&self) -> usize {
        self.out
    }
}

/// `ct[n ldc + j] = Σ_k w[n, k] xt[k ldx + j]` for `n < out`, `j < cols`:
/// each sum by fused multiply-adds in the order `k = 0, 1, ...` from zero.
/// `cols` must be a multiple of 16 and at most `ldx` and `ldc`.
///
/// # Panics
/// If the CPU lacks AVX-512F or the slices are too short for these shapes.
pub(super) fn product(p: &Panels, xt: &[f32], ldx: usize, cols: usize, ct: &mut [f32], ldc: usize) {
    product_rows(&p.data, p.out, p.inp, xt, ldx, cols, ct, ldc);
}

/// [`product`] on the panels `data` of `out` output rows.
#[allow(clippy::too_many_arguments)]
fn product_rows(data: &[f32], out: usize, inp: usize, xt: &[f32], ldx: usize, cols: usize, ct: &mut [f32], ldc: usize) {
    assert!(data.len() >= out.div_ceil(MR) * inp * MR, "panel product: the panels");
    assert!(crate::simd::has_avx512f(), "panel product: needs AVX-512F");
    assert!(
        cols.is_multiple_of(16) && cols <= ldx && cols <= ldc,
        "panel product: cols"
    );
    assert!(
        inp == 0 || xt.len() >= (inp - 1) * ldx + cols,
        "panel product: xt is [in, ldx]"
    );
    assert!(
        out == 0 || ct.len() >= (out - 1) * ldc + cols,
        "panel product: ct is [out, ldc]"
    );
    let (panels, wide) = (out.div_ceil(MR), cols - cols % TILE);
    let panel = |p: usize| &data[p * inp * MR..(p + 1) * inp * MR];
    #[cfg(target_arch = "x86_64")]
    for p in 0..panels {
        let rows = (out - p * MR).min(MR);
        for j in (0..wide).step_by(TILE) {
            // SAFETY: AVX-512F was checked above; the tile reads `xt[k ldx
            // + j .. + 32]` for `k < inp` and writes `ct[(p MR + r) ldc + j
            // .. + 32]` for `r < rows`, in bounds by the assertions above
            // since `j + 32 <= cols`; the panel holds `inp * MR` values.
            unsafe {
                let (x, c) = (xt.as_ptr().add(j), ct.as_mut_ptr().add(p * MR * ldc + j));
                tile::<2, 1>(rows, [panel(p)], inp, x, ldx, c, ldc);
            }
        }
    }
    // The last 16 columns, if any, two panels at a time (one vector of
    // columns per output row, so twice the rows keep the registers busy).
    #[cfg(target_arch = "x86_64")]
    if wide < cols {
        for p in (0..panels).step_by(2) {
            let rows = (out - p * MR).min(2 * MR);
            // SAFETY: as above, for columns `wide .. wide + 16 = cols` and
            // output rows `p MR .. p MR + rows`, in panels `p` and `p + 1`
            // (the second only where it exists).
            unsafe {
                let (x, c) = (xt.as_ptr().add(wide), ct.as_mut_ptr().add(p * MR * ldc + wide));
                if p + 1 < panels {
                    tile::<1, 2>(rows, [panel(p), panel(p + 1)], inp, x, ldx, c, ldc);
                } else {
                    tile::<1, 1>(rows, [panel(p)], inp, x, ldx, c, ldc);
                }
            }
        }
    }
}

/// [`product`] with its panels cut evenly into as many blocks as
/// [`crate::parallel::split::gemm_blocks`] gives a product of this shape,
/// at most one per [`MIN_SPLIT_PANELS`] panels, run over the threads. Each output is computed the
/// same way in whichever block, so the result does not depend on the
/// thread count.
pub(super) fn product_split(p: &Panels, xt: &[f32], ldx: usize, cols: usize, ct: &mut [f32], ldc: usize) {
    use crate::parallel::split::{SharedMut, gemm_blocks};
    let panels = p.out.div_ceil(MR);
    let blocks = gemm_blocks(cols, p.inp, p.out).min(panels / MIN_SPLIT_PANELS);
    if blocks <= 1 {
        return product(p, xt, ldx, cols, ct, ldc);
    }
    assert!(ct.len() >= (p.out - 1) * ldc + cols, "panel product: ct is [out, ldc]");
    let cs = SharedMut::new(ct);
    crate::parallel::run(blocks, &|i| {
        let r = i * panels / blocks..(i + 1) * panels / blocks;
        let (first, end) = (r.start * MR, (r.end * MR).min(p.out));
        if first >= end {
            return;
        }
        let size = p.inp * MR;
        let data = &p.data[r.start * size..r.end * size];
        // SAFETY: the blocks' panel ranges, hence their output rows, are
        // disjoint.
        let c = unsafe { cs.range(first * ldc..((end - 1) * ldc + cols)) };
        product_rows(data, end - first, p.inp, xt, ldx, cols, c, ldc);
    });
}

/// One tile: `P MR` output rows (the first `rows` stored) by `16 V`
/// columns, from `P` panels.
///
/// # Safety
/// AVX-512F; each `w[q]: [inp][MR]`; `x + k ldx + 16 v` readable for 16
/// lanes and `c + r ldc + 16 v` writable for 16 lanes, for `k < inp`,
/// `v < V`, `r < rows <= P MR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// Indexed loops: with the stores written over `acc.iter()` the compiler
// kept a copy of the accumulators in memory and stored to it on every `k`
// (the paper network's 1000-row pass took 2.9 ms instead of 1.5).
#[allow(clippy::needless_range_loop)]
unsafe fn tile<const V: usize, const P: usize>(
    rows: usize,
    w: [&[f32]; P],
    inp: usize,
    x: *const f32,
    ldx: usize,
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[[_mm512_setzero_ps(); V]; MR]; P];
    for wq in &w {
        assert!(wq.len() >= inp * MR, "tile: a panel is [inp][MR]");
    }
    // SAFETY: the caller's contract; the weights' reads are in bounds by
    // the assertion above.
    unsafe {
        for k in 0..inp {
            let xk: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(x.add(k * ldx + 16 * v)));
            for q in 0..P {
                let wk = w[q].as_ptr().add(k * MR);
                for r in 0..MR {
                    let b = _mm512_set1_ps(*wk.add(r));
                    for v in 0..V {
                        acc[q][r][v] = _mm512_fmadd_ps(b, xk[v], acc[q][r][v]);
                    }
                }
            }
        }
        for q in 0..P {
            for r in 0..MR {
                if q * MR + r < rows {
                    for v in 0..V {
                        _mm512_storeu_ps(c.add((q * MR + r) * ldc + 16 * v), acc[q][r][v]);
                    }
                }
            }
        }
    }
}

/// `dst[j ldd + i] = src[i lds + j]` for `i < rows`, `j < cols`, and
/// `dst[j ldd + i] = 0` for `rows <= i < cap`: the transpose of `src:
/// [rows, cols]` into `dst: [cols, cap]` (`cap >= rows`), by 16 x 16 tiles
/// in registers.
///
/// # Panics
/// If the CPU lacks AVX-512F or the slices are too short for these shapes.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, lds: usize, dst: &mut [f32], ldd: usize, cap: usize) {
    assert!(crate::simd::has_avx512f(), "transpose: needs AVX-512F");
    assert!(cols <= lds && cap >= rows && cap <= ldd, "transpose: shapes");
    assert!(
        rows == 0 || src.len() >= (rows - 1) * lds + cols,
        "transpose: src is [rows, lds]"
    );
    assert!(
        cols == 0 || dst.len() >= (cols - 1) * ldd + cap,
        "transpose: dst is [cols, ldd]"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F was checked above; `transpose_avx512` reads only
    // `src[i lds + j]` for `i < rows`, `j < cols` and writes only
    // `dst[j ldd + i]` for `j < cols`, `i < cap`, in bounds by the
    // assertions above.
    unsafe {
        transpose_avx512(src.as_ptr(), rows, cols, lds, dst.as_mut_ptr(), ldd, cap)
    };
}

/// How far ahead of its loads [`transpose_avx512`] prefetches each row, in
/// values.
const PREFETCH: usize = 64;

/// [`transpose`] on pointers.
///
/// # Safety
/// AVX-512F; as [`transpose`]'s assertions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_avx512(
    src: *const f32,
    rows: usize,
    cols: usize,
    lds: usize,
    dst: *mut f32,
    ldd: usize,
    cap: usize,
) {
    use std::arch::x86_64::*;
    let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as u16 };
    let mut i0 = 0;
    while i0 < cap {
        let mut j0 = 0;
        let (live, store) = (rows.saturating_sub(i0).min(16), lanes(cap - i0));
        while j0 < cols {
            let width = (cols - j0).min(16);
            let m = lanes(width);
            // SAFETY: row `i0 + r < rows` is read at columns `j0 .. j0 +
            // width <= cols` only (masked lanes are never accessed); rows
            // at or past `rows` are not read.
            let t: [__m512; 16] = std::array::from_fn(|r| {
                if r < live {
                    let row = src.wrapping_add((i0 + r) * lds + j0);
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(PREFETCH) as *const i8);
                    unsafe { _mm512_maskz_loadu_ps(m, row) }
                } else {
                    _mm512_setzero_ps()
                }
            });
            let t = transpose16(t);
            for (c, v) in t.iter().enumerate().take(width) {
                // SAFETY: `dst` row `j0 + c < cols`, lanes `i0 .. cap`.
                unsafe { _mm512_mask_storeu_ps(dst.add((j0 + c) * ldd + i0), store, *v) };
            }
            j0 += 16;
        }
        i0 += 16;
    }
}

/// The transpose of a 16 x 16 tile held as 16 row vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    // Pairs of rows interleaved by 1, then by 2 lanes, then 128-bit lane
    // groups gathered in two steps: after the last, vector `c` holds
    // column `c`.
    let a: [__m512; 16] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(x, y)
        } else {
            _mm512_unpackhi_ps(x, y)
        }
    });
    let b: [__m512; 16] = std::array::from_fn(|i| {
        let g = i & !3;
        let (x, y) = (a[g + (i % 4) / 2], a[g + 2 + (i % 4) / 2]);
        if i % 2 == 0 {
            _mm512_shuffle_ps::<0x44>(x, y)
        } else {
            _mm512_shuffle_ps::<0xEE>(x, y)
        }
    });
    let c: [__m512; 16] = std::array::from_fn(|i| {
        let g = (i / 8) * 8;
        let (x, y) = (b[g + i % 4], b[g + 4 + i % 4]);
        if (i % 8) < 4 {
            _mm512_shuffle_f32x4::<0x88>(x, y)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(x, y)
        }
    });
    std::array::from_fn(|i| {
        let (x, y) = (c[i % 8], c[8 + i % 8]);
        if i < 8 {
            _mm512_shuffle_f32x4::<0x88>(x, y)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(x, y)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Every shape around the tiles' edges (1, 15-17, 31-33 and 47 rows
    /// and columns), with room past the edges: the transpose, zeros in the
    /// capacity past `rows`, and nothing written past `cap` or `cols`.
    #[test]
    fn the_transpose_of_every_edge_shape() {
        if !crate::simd::has_avx512f() {
            return;
        }
        for rows in [1usize, 2, 15, 16, 17, 31, 32, 33, 47] {
            for cols in [1usize, 3, 15, 16, 17, 32, 33, 47] {
                let (lds, cap) = (cols + 3, rows.next_multiple_of(16));
                let ldd = cap + 5;
                let src = values(rows * lds, (rows * 100 + cols) as u64);
                let mut dst = vec![f32::NAN; (cols + 1) * ldd];
                transpose(&src, rows, cols, lds, &mut dst, ldd, cap);
                for j in 0..cols + 1 {
                    for i in 0..ldd {
                        let got = dst[j * ldd + i];
                        if j < cols && i < rows {
                            assert_eq!(got.to_bits(), src[i * lds + j].to_bits(), "{rows}x{cols} [{j}, {i}]");
                        } else if j < cols && i < cap {
                            assert_eq!(got.to_bits(), 0, "{rows}x{cols} padding [{j}, {i}]");
                        } else {
                            assert!(got.is_nan(), "{rows}x{cols}: wrote [{j}, {i}] past the edge");
                        }
                    }
                }
            }
        }
    }

    /// The product against sequential fused multiply-adds in f32 from zero,
    /// `k = 0, 1, ...`: the same bits, for outputs around the panels' edge
    /// (1, 9-11, 19-21 rows) and columns in tiles of 32 and 16 (16, 32, 48,
    /// 80), with NaN past the columns computed (read, it would show).
    #[test]
    fn the_product_has_the_bits_of_sequential_fused_multiply_adds() {
        if !crate::simd::has_avx512f() {
            return;
        }
        // Under Miri (`tools/miri.sh`) fewer shapes, every edge kept.
        let (inps, outs, colss): (&[usize], &[usize], &[usize]) = if cfg!(miri) {
            (&[1, 7, 33], &[1, 10, 11, 21], &[16, 48])
        } else {
            (&[1, 2, 7, 16, 33, 100], &[1, 9, 10, 11, 19, 20, 21], &[16, 32, 48, 80])
        };
        for &inp in inps {
            for &out in outs {
                for &cols in colss {
                    let (ldx, ldc) = (cols + 16, cols + 7);
                    let stride = inp + 2;
                    let w = values(out * stride, (inp * 31 + out) as u64);
                    let mut xt = values(inp * ldx, (cols + inp) as u64);
                    for k in 0..inp {
                        xt[k * ldx + cols..(k + 1) * ldx].fill(f32::NAN);
                    }
                    let mut ct = vec![f32::NAN; out * ldc];
                    product(&Panels::new(&w, stride, out, inp), &xt, ldx, cols, &mut ct, ldc);
                    for n in 0..out {
                        for j in 0..ldc {
                            let got = ct[n * ldc + j];
                            if j >= cols {
                                assert!(got.is_nan(), "[{out}, {inp}] x {cols}: wrote column {j}");
                                continue;
                            }
                            let want = (0..inp).fold(0.0f32, |a, k| w[n * stride + k].mul_add(xt[k * ldx + j], a));
                            assert_eq!(got.to_bits(), want.to_bits(), "[{out}, {inp}] x {cols}: [{n}, {j}]");
                        }
                    }
                }
            }
        }
    }
}
