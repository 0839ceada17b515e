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

mod matvec;
mod weights;

use matvec::matvec_split;
use weights::Weights;

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
#[derive(Debug)]
struct Stage<T> {
    /// `[out, in]`, each row on a cache line.
    weight: Weights<T>,
    /// `[out]`.
    bias: Vec<T>,
    /// Applied in order after the bias (usually zero or one).
    acts: Vec<Activation>,
    /// Applied in order after those, from the first layer normalization on
    /// (empty without layer normalization).
    tail: Vec<TailOp<T>>,
}

impl<T: Scalar> Clone for Stage<T> {
    fn clone(&self) -> Self {
        Stage {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            acts: self.acts.clone(),
            tail: self.tail.clone(),
        }
    }
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
                        weight: Weights::new(&d.weight.value),
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
        let (out, inp, stride) = (self.weight.rows(), self.weight.cols(), self.weight.stride());
        let (src, dst) = (&src[..rows * inp], &mut dst[..rows * out]);
        let w = self.weight.as_slice();
        if rows == 1 && matvec_split(w, stride, src, dst) {
            crate::layers::bias_act_kernel(&self.acts, dst, &self.bias);
            self.tail_ops(dst);
            return;
        }
        // SAFETY: `src` is [rows, inp] row-major, `w` is [out, inp] with row
        // stride `stride >= inp` (out * stride elements, `Weights`' layout)
        // read transposed as [inp, out] (strides 1, stride), `dst` is
        // [rows, out] row-major; `src` and `dst` were cut to exactly these
        // sizes above, and `dst` is a distinct mutable slice, so it overlaps
        // neither input.
        unsafe {
            crate::tensor::Job {
                m: rows,
                k: inp,
                n: out,
                alpha: T::ONE,
                a: (src.as_ptr(), inp as isize, 1),
                b: (w.as_ptr(), 1, stride as isize),
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
