//! Fused inference: the eval-mode function of a network with every batch
//! normalization folded into its Dense layer.
//!
//! A trained [`Sequential`] in [`Mode::Eval`] runs layer by layer over the
//! whole batch: per hidden layer one GEMM, a bias pass, a BN pass and an
//! activation pass, each over `[batch, width]` in memory. [`InferenceNet`]
//! computes the same function as a chain of stages
//! `h <- act(h W'^T + b')` (`W': [out, in]`, BN folded into `W'` and `b'` by
//! [`fold_batch_norm`]), with the bias add and the activation in one pass
//! right after each GEMM (layer normalization, which cannot fold, runs in
//! place on each row after them). Narrow networks run on blocks of [`BLOCK_ROWS`]
//! rows whose intermediates stay in cache, one contiguous run of blocks per
//! thread of [`crate::threads`]; networks with a layer of [`WIDE`] or more
//! run each stage over the whole batch with the products split over the
//! threads. Either way each output element is computed the same way on
//! whichever thread, so the output is bit-identical for any thread count.
//! It equals the unfolded eval output up to rounding (folding changes the
//! order of operations; measured and bounded in `tests/infer.rs`).
//!
//! [`Mode::Eval`]: crate::Mode::Eval

use crate::error::{Error, Result};
use crate::fold::fold_batch_norm;
use crate::layers::{Activation, Layer};
use crate::model::Sequential;
use crate::scalar::Scalar;
use crate::tensor::Matrix;
use std::sync::Mutex;

/// Rows per block. Measured on the 2-core machine of `docs/PERFORMANCE.md`
/// (W1 and W3 networks, batch 1000, blocks of 64 to 1000 rows): 512 was the
/// fastest or within 3% of it for 1 and 2 threads; smaller blocks repeat the
/// packing of the weights too often for 1024-wide layers.
pub const BLOCK_ROWS: usize = 512;

/// Networks with a layer at least this wide run each stage over the whole
/// batch instead, with every product split over the threads by output
/// columns: for 1024-wide layers (W3, batch 1000, one thread) whole-batch
/// products took 25.9 ms per pass against 30.6 ms in blocks of 512 rows.
pub const WIDE: usize = 512;

/// One stage `y = tail(act_k(... act_1(x W^T + b)))`.
#[derive(Debug, Clone)]
struct Stage<T> {
    /// `[out, in]`.
    weight: Matrix<T>,
    /// `[out]`.
    bias: Vec<T>,
    /// Applied in order after the bias (usually zero or one).
    acts: Vec<Activation>,
    /// Applied in order after those, from the first layer normalization on
    /// (empty without layer normalization).
    tail: Vec<TailOp<T>>,
}

/// A step after the fused bias and activations.
#[derive(Debug, Clone)]
enum TailOp<T> {
    /// Layer normalization of each row with `eps`, gain and bias `[out]`.
    LayerNorm { eps: T, gamma: Vec<T>, beta: Vec<T> },
    /// An activation.
    Act(Activation),
}

/// A network prepared for fast eval-mode forward passes.
#[derive(Debug)]
pub struct InferenceNet<T> {
    stages: Vec<Stage<T>>,
    /// Per-thread ping-pong buffers, kept between calls (allocating them per
    /// call cost page faults: measured 1-4 ms per pass on the W3 network).
    workspaces: Vec<Mutex<Workspace<T>>>,
}

type Workspace<T> = (Vec<T>, Vec<T>);

impl<T: Scalar> Clone for InferenceNet<T> {
    fn clone(&self) -> Self {
        InferenceNet {
            stages: self.stages.clone(),
            workspaces: new_workspaces(),
        }
    }
}

fn new_workspaces<T>() -> Vec<Mutex<Workspace<T>>> {
    (0..crate::parallel::MAX_THREADS)
        .map(|_| Mutex::new((Vec::new(), Vec::new())))
        .collect()
}

impl<T: Scalar> InferenceNet<T> {
    /// Folds `model`'s batch normalization and builds the stages. Dropout is
    /// the identity at inference and is dropped. Fails as
    /// [`fold_batch_norm`] does, or when the network does not start with a
    /// Dense layer (after folding).
    pub fn new(model: &Sequential<T>) -> Result<Self> {
        let folded = fold_batch_norm(model)?;
        let mut stages: Vec<Stage<T>> = Vec::new();
        for layer in folded.layers() {
            match layer {
                Layer::Dense(d) => {
                    let bias = match &d.bias {
                        Some(b) => b.value.as_slice().to_vec(),
                        None => vec![T::ZERO; d.out_features()],
                    };
                    stages.push(Stage {
                        weight: d.weight.value.clone(),
                        bias,
                        acts: Vec::new(),
                        tail: Vec::new(),
                    });
                }
                Layer::Activation(a) => match stages.last_mut() {
                    Some(s) if s.tail.is_empty() => s.acts.push(a.kind),
                    Some(s) => s.tail.push(TailOp::Act(a.kind)),
                    None => {
                        return Err(Error::config(
                            "fused inference",
                            format!("{}: an activation before the first Dense layer", a.describe()),
                        ));
                    }
                },
                Layer::Dropout(_) => {}
                Layer::LayerNorm(n) => {
                    let f = n.features();
                    let (gamma, beta) = match &n.affine {
                        Some((g, b)) => (g.value.as_slice().to_vec(), b.value.as_slice().to_vec()),
                        None => (vec![T::ONE; f], vec![T::ZERO; f]),
                    };
                    let op = TailOp::LayerNorm {
                        eps: T::from_f64(n.eps()),
                        gamma,
                        beta,
                    };
                    match stages.last_mut() {
                        Some(s) => s.tail.push(op),
                        None => {
                            return Err(Error::config(
                                "fused inference",
                                format!("{}: a layer normalization before the first Dense layer", n.path()),
                            ));
                        }
                    }
                }
                Layer::BatchNorm(bn) => {
                    return Err(Error::State(format!("{}: left unfolded", bn.path())));
                }
            }
        }
        if stages.is_empty() {
            return Err(Error::config("fused inference", "the network has no Dense layer"));
        }
        Ok(InferenceNet {
            stages,
            workspaces: new_workspaces(),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.stages[0].weight.cols()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.stages[self.stages.len() - 1].weight.rows()
    }

    /// The eval-mode outputs `[batch, out]` for `x: [batch, in]`, written
    /// into `out` (resized as needed).
    pub fn forward_into(&self, x: &Matrix<T>, out: &mut Matrix<T>) -> Result<()> {
        let (inp, outw) = (self.in_features(), self.out_features());
        if x.cols() != inp {
            return Err(Error::shape("fused inference", format!("[_, {inp}]"), x));
        }
        out.resize(x.rows(), outw);
        let widest = self.stages.iter().map(|s| s.weight.rows()).max().unwrap_or(0);
        let rows = x.rows();
        let (xs, os) = (x.as_slice(), crate::parallel::split::SharedMut::new(out.as_mut_slice()));
        let run_rows = |i: usize, r: std::ops::Range<usize>, block: usize| {
            // SAFETY: the parts' row ranges are disjoint.
            let ob = unsafe { os.range(r.start * outw..r.end * outw) };
            // Part i has workspace i to itself unless another thread runs a
            // forward pass on this network at the same time (then it waits).
            let mut ws = self.workspaces[i % self.workspaces.len()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let bufs = &mut *ws;
            for b in [&mut bufs.0, &mut bufs.1] {
                if b.len() < block * widest {
                    b.resize(block * widest, T::ZERO);
                }
            }
            let xb = &xs[r.start * inp..r.end * inp];
            for (xc, oc) in xb.chunks(block * inp).zip(ob.chunks_mut(block * outw)) {
                self.block(xc, oc, bufs);
            }
        };
        if widest >= WIDE {
            // Whole batch per stage; `block` splits each product by columns.
            run_rows(0, 0..rows, rows.max(1));
        } else {
            // One part per thread, each a contiguous run of whole blocks; a
            // block is computed the same way whichever part holds it (its
            // products stay on that thread: the team is busy).
            let blocks = rows.div_ceil(BLOCK_ROWS);
            let parts = crate::parallel::threads().min(blocks).max(1);
            let per_part = blocks.div_ceil(parts) * BLOCK_ROWS;
            if parts == 1 {
                // One block (or one thread): its products may use the threads.
                run_rows(0, 0..rows, BLOCK_ROWS);
            } else {
                crate::parallel::run(parts, &|i| {
                    run_rows(i, (i * per_part).min(rows)..((i + 1) * per_part).min(rows), BLOCK_ROWS)
                });
            }
        }
        Ok(())
    }

    /// [`InferenceNet::forward_into`] into a new matrix.
    pub fn forward(&self, x: &Matrix<T>) -> Result<Matrix<T>> {
        let mut out = Matrix::zeros(0, 0);
        self.forward_into(x, &mut out)?;
        Ok(out)
    }

    /// All stages on one block of rows: `xb: [rows, in]` to `ob: [rows, out]`,
    /// ping-ponging between the two buffers.
    fn block(&self, xb: &[T], ob: &mut [T], (b0, b1): &mut (Vec<T>, Vec<T>)) {
        let rows = xb.len() / self.in_features();
        let last = self.stages.len() - 1;
        for (i, s) in self.stages.iter().enumerate() {
            let (src, dst): (&[T], &mut [T]) = match (i, i == last) {
                (0, true) => (xb, &mut *ob),
                (0, false) => (xb, &mut b0[..]),
                (_, true) if i % 2 == 1 => (&b0[..], &mut *ob),
                (_, true) => (&b1[..], &mut *ob),
                (_, false) if i % 2 == 1 => (&b0[..], &mut b1[..]),
                (_, false) => (&b1[..], &mut b0[..]),
            };
            s.apply(rows, src, dst);
        }
    }
}

impl<T: Scalar> Stage<T> {
    /// `dst[..rows * out] = acts(src[..rows * in] W^T + b)`.
    fn apply(&self, rows: usize, src: &[T], dst: &mut [T]) {
        let (out, inp) = (self.weight.rows(), self.weight.cols());
        let (src, dst) = (&src[..rows * inp], &mut dst[..rows * out]);
        let w = self.weight.as_slice();
        if rows == 1 && matvec_split(w, src, dst) {
            crate::layers::bias_act_kernel(&self.acts, dst, &self.bias);
            self.tail_ops(dst);
            return;
        }
        // SAFETY: `src` is [rows, inp] row-major, `w` is [out, inp] row-major
        // read transposed as [inp, out] (strides 1, inp), `dst` is [rows, out]
        // row-major; the lengths were cut to exactly these sizes above (and
        // `w` has out * inp elements by construction), and `dst` is a distinct
        // mutable slice, so it overlaps neither input.
        unsafe {
            crate::tensor::Job {
                m: rows,
                k: inp,
                n: out,
                alpha: T::ONE,
                a: (src.as_ptr(), inp as isize, 1),
                b: (w.as_ptr(), 1, inp as isize),
                accumulate: false,
                c: (dst.as_mut_ptr(), out as isize, 1),
            }
            .run_split();
        }
        crate::layers::bias_act_kernel(&self.acts, dst, &self.bias);
        self.tail_ops(dst);
    }

    /// The steps after the bias and activations, on `dst: [_, out]`.
    fn tail_ops(&self, dst: &mut [T]) {
        for op in &self.tail {
            match op {
                TailOp::LayerNorm { eps, gamma, beta } => crate::layers::layer_norm_in_place(dst, *eps, gamma, beta),
                TailOp::Act(a) => a.apply_in_place(dst),
            }
        }
    }
}

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
/// with its products split, on the Intel machine.) False, writing
/// nothing, where [`one_row_kernel`] has none.
fn matvec_split<T: Scalar>(w: &[T], x: &[T], y: &mut [T]) -> bool {
    use crate::parallel::split::{SharedMut, gemm_block, gemm_blocks};
    if !one_row_kernel::<T>() {
        return false;
    }
    let (inp, out) = (x.len(), y.len());
    let blocks = gemm_blocks(1, inp, out);
    let ys = SharedMut::new(y);
    crate::parallel::run(blocks, &|i| {
        let r = gemm_block(out, blocks, i);
        let wb = &w[r.start * inp..r.end * inp];
        // SAFETY: the blocks' ranges are disjoint.
        matvec(wb, x, unsafe { ys.range(r) });
    });
    true
}

/// `y[o] = Σ_k w[o, k] x[k]` for `w: [y.len(), x.len()]` row-major (one
/// row's product, see [`matvec_f32_avx512`]); false where that kernel does
/// not apply ([`one_row_kernel`]), and nothing was written.
fn matvec<T: Scalar>(w: &[T], x: &[T], y: &mut [T]) -> bool {
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
        unsafe { matvec_f32_avx512(w, x, y) };
    }
    true
}

/// [`matvec`] with AVX-512: four rows of `w` at a time share each load of
/// `x`, two 16-lane partial sums per row (fused multiply-adds), reduced at
/// the end; the last `x.len() % 32` columns with a mask. The GEMM library
/// hands a single row to its matrix-vector kernel, compiled for AVX2: for
/// the paper network's first layer (784 -> 100, 314 KB of weights read from
/// L2) it took 4.7-5.1 µs on the Intel machine of `docs/PERFORMANCE.md`,
/// this loop 3.4-3.7 µs (other layouts, 8 or 2 rows at a time or the
/// weights transposed, 3.2-3.4 µs: the weights' reading from L2 bounds
/// them all). Like the GEMM library's kernels, it sums in its own order: a
/// row predicted alone differs from the same row in a larger call in the
/// last bits (bounded in `tests/infer.rs`).
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() == y.len() * x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn matvec_f32_avx512(w: &[f32], x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let inp = x.len();
    assert_eq!(w.len(), y.len() * inp, "matvec: w is [y.len(), x.len()]");
    let (body, rest) = (inp - inp % 32, inp % 32);
    // Lanes of the two masked loads that cover the last `rest` columns.
    let m0: __mmask16 = ((1u32 << rest.min(16)) - 1) as u16;
    let m1: __mmask16 = ((1u32 << rest.saturating_sub(16)) - 1) as u16;
    let xp = x.as_ptr();
    // SAFETY (every load below): row `o + r` spans `w[(o + r) inp ..
    // (o + r + 1) inp]`, in bounds for `o + r < y.len()` by the assertion
    // above; full loads stay below `body`; masked loads touch only the
    // lanes below `inp` (masked-off lanes are never accessed, so they cannot
    // fault), and their addresses, which may lie past the end when a mask
    // is empty, are formed with `wrapping_add`, which has no in-bounds
    // requirement; `y[o + r]` is in bounds likewise.
    unsafe {
        let mut o = 0;
        while o < y.len() {
            let n = (y.len() - o).min(4);
            // Rows past the last are read as the last row and not stored.
            let p: [*const f32; 4] = std::array::from_fn(|r| w.as_ptr().add((o + r.min(n - 1)) * inp));
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
    /// of 32 columns and 4 rows: within 1e-6 of `Σ |w| |x|` (f32 rounding
    /// of up to 800 terms), or it does not apply and writes nothing.
    #[test]
    fn the_one_row_product_matches_an_f64_sum() {
        let mut seed = 17u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for inp in [1, 2, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 97, 784] {
            for out in [1, 2, 3, 4, 5, 7, 8, 9, 13, 100] {
                let w: Vec<f32> = (0..inp * out).map(|_| next()).collect();
                let x: Vec<f32> = (0..inp).map(|_| next()).collect();
                let mut y = vec![f32::NAN; out];
                if !matvec(&w, &x, &mut y) {
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
                        "[{out}, {inp}] row {o}: {got} against {want}"
                    );
                }
            }
        }
    }

    /// Not f32: the kernel does not apply (the GEMM library computes it).
    #[test]
    fn the_one_row_kernel_is_f32_only() {
        let mut y = [f64::NAN; 3];
        assert!(!matvec(&[1.0f64; 6], &[1.0, 2.0], &mut y));
        assert!(y.iter().all(|v| v.is_nan()));
    }
}
