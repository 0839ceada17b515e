//! Fused inference: the eval-mode function of a network with every batch
//! normalization folded into its Dense layer, computed in blocks of rows.
//!
//! A trained [`Sequential`] in [`Mode::Eval`] runs layer by layer over the
//! whole batch: per hidden layer one GEMM, a bias pass, a BN pass and an
//! activation pass, each over `[batch, width]` in memory. [`InferenceNet`]
//! computes the same function as a chain of stages
//! `h <- act(h W'^T + b')` (`W': [out, in]`, BN folded into `W'` and `b'` by
//! [`fold_batch_norm`]), with the bias add and the activation in one pass
//! right after each GEMM, on blocks of [`BLOCK_ROWS`] rows whose
//! intermediates stay in cache. Blocks are independent, so they are spread
//! over the threads of [`crate::threads`]; each block is computed the same
//! way on whichever thread, so the output is bit-identical for any thread
//! count. It equals the unfolded eval output up to rounding (folding changes
//! the order of operations; measured and bounded in `tests/infer.rs`).
//!
//! [`Mode::Eval`]: crate::Mode::Eval

use crate::error::{Error, Result};
use crate::fold::fold_batch_norm;
use crate::layers::{Activation, Layer};
use crate::model::Sequential;
use crate::scalar::Scalar;
use crate::tensor::Matrix;
use rayon::prelude::*;

/// Rows per block: large enough for efficient GEMMs, small enough that a
/// block's activations (`BLOCK_ROWS x` the widest layer) stay in L2.
pub const BLOCK_ROWS: usize = 128;

/// One stage `y = act_k(... act_1(x W^T + b))`.
#[derive(Debug, Clone)]
struct Stage<T> {
    /// `[out, in]`.
    weight: Matrix<T>,
    /// `[out]`.
    bias: Vec<T>,
    /// Applied in order after the bias (usually zero or one).
    acts: Vec<Activation>,
}

/// A network prepared for fast eval-mode forward passes.
#[derive(Debug, Clone)]
pub struct InferenceNet<T> {
    stages: Vec<Stage<T>>,
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
                    });
                }
                Layer::Activation(a) => match stages.last_mut() {
                    Some(s) => s.acts.push(a.kind),
                    None => {
                        return Err(Error::config(
                            "fused inference",
                            format!("{}: an activation before the first Dense layer", a.describe()),
                        ));
                    }
                },
                Layer::Dropout(_) => {}
                Layer::BatchNorm(bn) => {
                    return Err(Error::State(format!("{}: left unfolded", bn.path())));
                }
            }
        }
        if stages.is_empty() {
            return Err(Error::config("fused inference", "the network has no Dense layer"));
        }
        Ok(InferenceNet { stages })
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
        let (xs, os) = (x.as_slice(), out.as_mut_slice());
        let run = |bufs: &mut (Vec<T>, Vec<T>), (xb, ob): (&[T], &mut [T])| self.block(xb, ob, bufs);
        let init = || (vec![T::ZERO; BLOCK_ROWS * widest], vec![T::ZERO; BLOCK_ROWS * widest]);
        let threads = crate::threads::threads();
        if threads > 1 && x.rows() > BLOCK_ROWS {
            // At most `threads` tasks, each taking a contiguous run of blocks.
            let per_task = x.rows().div_ceil(BLOCK_ROWS).div_ceil(threads) * BLOCK_ROWS;
            let tasks = xs.par_chunks(per_task * inp).zip(os.par_chunks_mut(per_task * outw));
            tasks.for_each_init(init, |bufs, (xt, ot)| {
                xt.chunks(BLOCK_ROWS * inp)
                    .zip(ot.chunks_mut(BLOCK_ROWS * outw))
                    .for_each(|b| run(bufs, b))
            });
        } else {
            let mut bufs = init();
            let blocks = xs.chunks(BLOCK_ROWS * inp).zip(os.chunks_mut(BLOCK_ROWS * outw));
            blocks.for_each(|b| run(&mut bufs, b));
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
        // SAFETY: `src` is [rows, inp] row-major, `w` is [out, inp] row-major
        // read transposed as [inp, out] (strides 1, inp), `dst` is [rows, out]
        // row-major; the lengths were cut to exactly these sizes above (and
        // `w` has out * inp elements by construction), and `dst` is a distinct
        // mutable slice, so it overlaps neither input.
        unsafe {
            T::gemm_raw(
                rows,
                inp,
                out,
                T::ONE,
                (src.as_ptr(), inp as isize, 1),
                (w.as_ptr(), 1, inp as isize),
                false,
                (dst.as_mut_ptr(), out as isize, 1),
                faer::Par::Seq,
            );
        }
        crate::layers::bias_act_kernel(&self.acts, dst, &self.bias);
    }
}
