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
//! place on each row between the bias and the activation, or after the
//! activation where the network normalizes after it).
//!
//! Three ways through, by the call:
//! - **f32 on AVX-512, without layer normalization, 2 rows or more**: the
//!   feature-major kernel (`infer/panel.rs`). A block of rows is transposed so
//!   that the batch runs along the vector lanes, every stage multiplies it
//!   by weights packed once at construction, and the last stage's output
//!   is transposed back. Blocks of at most [`FEATURE_MAJOR_ROWS`] rows (fewer
//!   for wide layers, [`FEATURE_MAJOR_BYTES`]), parts of at most
//!   [`PART_CHUNK`] rows claimed by the threads one at a time, or, below two
//!   parts of [`PART_ROWS`], each product split over the threads. Every output is a sum in the order `k = 0, 1,
//!   ...` whatever the block, part or thread, so **a row's output depends
//!   on that row only**: not on the thread count, the batch size or the
//!   other rows. Calls of 2 to [`APART_ROWS`]` - 1` rows through a network
//!   of at most [`APART_WEIGHTS`] weights run row by row instead, as below.
//! - **One row**: the one-row kernel (`infer/matvec.rs`; bpnet's own for f32 on
//!   AVX-512, the GEMM library's elsewhere), its product split over the
//!   threads by output blocks for wide layers.
//! - **Otherwise** (f64, no AVX-512, layer normalization): the GEMM library
//!   on row-major blocks. Narrow networks run on blocks of [`BLOCK_ROWS`]
//!   rows whose intermediates stay in cache, one contiguous run of blocks
//!   per thread of [`crate::threads`]; networks with a layer of [`WIDE`] or
//!   more run each stage over the whole batch with the products split over
//!   the threads.
//!
//! Each way computes every output element the same way on whichever
//! thread, so the output is bit-identical for any thread count; the ways
//! differ from each other in the order of their sums. All equal the
//! unfolded eval output up to rounding (folding changes the order of
//! operations; measured and bounded in `tests/infer.rs`).
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
mod panel;
mod weights;

use matvec::matvec_split;
use panel::Panels;
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
    /// The same weights packed for the feature-major kernel, where the
    /// network takes it ([`InferenceNet::new`]).
    panels: Option<Panels>,
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
            panels: self.panels.clone(),
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

/// Two ping-pong buffers and, for the feature-major path, the transposed
/// input block.
type Workspace<T> = (Vec<T>, Vec<T>, Vec<T>);

impl<T: Scalar> Clone for InferenceNet<T> {
    fn clone(&self) -> Self {
        InferenceNet {
            stages: self.stages.clone(),
            workspaces: new_workspaces(),
        }
    }
}

/// Whether every layer of `model` takes the width the layer before it
/// gives (a Dense layer its input width, a normalization its feature
/// count): the stages' buffers are sized from these widths, so a network
/// whose layers do not connect gave numbers from leftover buffer contents
/// or panicked, where eval mode refuses it.
fn check_widths<T: Scalar>(model: &Sequential<T>) -> Result<()> {
    let mut width: Option<usize> = None;
    for layer in model.layers() {
        let (path, takes, gives) = match layer {
            Layer::Dense(d) => (
                d.weight.name.trim_end_matches(".weight"),
                d.in_features(),
                d.out_features(),
            ),
            Layer::BatchNorm(bn) => (bn.path(), bn.features(), bn.features()),
            Layer::LayerNorm(n) => (n.path(), n.features(), n.features()),
            Layer::Activation(_) | Layer::Dropout(_) => continue,
        };
        if let Some(w) = width.filter(|&w| w != takes) {
            return Err(Error::config(
                "fused inference",
                format!("{path} takes {takes} features, but the layer before it gives {w}"),
            ));
        }
        width = Some(gives);
    }
    Ok(())
}

fn new_workspaces<T>() -> Vec<Mutex<Workspace<T>>> {
    (0..crate::parallel::MAX_THREADS)
        .map(|_| Mutex::new((Vec::new(), Vec::new(), Vec::new())))
        .collect()
}

impl<T: Scalar> InferenceNet<T> {
    /// Folds `model`'s batch normalization and builds the stages. Dropout is
    /// the identity at inference and is dropped. Fails as
    /// [`fold_batch_norm`] does, or when the network does not start with a
    /// Dense layer (after folding).
    pub fn new(model: &Sequential<T>) -> Result<Self> {
        check_widths(model)?;
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
                        panels: None,
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
        if feature_major_kernel::<T>() && stages.iter().all(|s| s.tail.is_empty()) {
            for s in &mut stages {
                let w = &s.weight;
                s.panels = Some(Panels::new(as_f32(w.as_slice()), w.stride(), w.rows(), w.cols()));
            }
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
        let rows = x.rows();
        let apart = self.rows_apart(rows);
        if rows >= 2 && !apart && self.stages[0].panels.is_some() {
            self.forward_feature_major(x.as_slice(), out.as_mut_slice(), rows);
            return Ok(());
        }
        let widest = self.widest();
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
        if apart {
            // Row by row, each as a one-row call.
            run_rows(0, 0..rows, 1);
        } else if widest >= WIDE {
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

    /// [`InferenceNet::forward_into`], but run with rows padded (its last
    /// row repeated) where a small call, or the small last block of a
    /// larger one, would take other kernels than a large call, whose sums
    /// run in another order (a file of 1-7 rows, or the last 1-7 rows of a
    /// file run in groups, printed other last digits; on CPUs without
    /// AVX-512 a row of iris printed other digits alone or among 13 rows
    /// than among 14): **a row's output then depends on that row alone**.
    /// With the feature-major kernel (f32 on AVX-512, no layer
    /// normalization) a call of 1-7 rows runs as 8; elsewhere the last
    /// block runs with at least [`InferenceNet::blocked_rows`] rows. What
    /// `bpnet predict`, `eval` and the Python package run; it costs a small
    /// call the time of those rows and an allocation.
    pub fn forward_rows_into(&self, x: &Matrix<T>, out: &mut Matrix<T>) -> Result<()> {
        let rows = x.rows();
        let want = self.padded_rows(rows);
        if want == rows {
            return self.forward_into(x, out);
        }
        let cols = x.cols();
        let mut padded = Vec::with_capacity(want * cols);
        padded.extend_from_slice(x.as_slice());
        let last = &x.as_slice()[(rows - 1) * cols..];
        for _ in rows..want {
            padded.extend_from_slice(last);
        }
        let mut full = Matrix::zeros(0, 0);
        self.forward_into(&Matrix::from_vec(want, cols, padded)?, &mut full)?;
        let w = full.cols();
        out.resize(rows, w);
        out.as_mut_slice().copy_from_slice(&full.as_slice()[..rows * w]);
        Ok(())
    }

    /// The rows [`InferenceNet::forward_rows_into`] runs a call of `rows`
    /// rows with (`rows` itself where no padding is needed).
    fn padded_rows(&self, rows: usize) -> usize {
        if rows == 0 {
            return 0;
        }
        if self.stages[0].panels.is_some() {
            return if rows < APART_ROWS { APART_ROWS } else { rows };
        }
        // The GEMM library's path: whole blocks of BLOCK_ROWS rows, or the
        // whole call for wide networks; only the last block can be small.
        let block = if self.widest() >= WIDE { usize::MAX } else { BLOCK_ROWS };
        let tail = if block == usize::MAX { rows } else { rows % block };
        let least = self.blocked_rows(block);
        match tail {
            0 => rows,
            t if t < least => rows + least - t,
            _ => rows,
        }
    }

    /// The fewest rows with which every stage's product takes the kernel a
    /// block of `block` rows takes, in the GEMM library (faer): a product
    /// of one row goes to its matrix-vector kernel, and one of
    /// `m * n * k <= 16^3` to its small-matrix kernel (nano-gemm), whose
    /// sums run in another order than its blocked kernel's. A stage of one
    /// output takes the matrix-vector kernel, and one of one input a rank-one
    /// update, whatever the rows; a stage small enough to take the
    /// small-matrix kernel in a whole block takes it in every block.
    /// `tests/infer.rs` checks that a row's output is then the same in
    /// calls of every size (which a change of faer's rules would break).
    fn blocked_rows(&self, block: usize) -> usize {
        self.stages
            .iter()
            .map(|s| (s.weight.rows(), s.weight.cols()))
            .filter(|&(n, k)| n >= 2 && k >= 2 && block.saturating_mul(n * k) > SMALL_PRODUCT)
            .map(|(n, k)| SMALL_PRODUCT / (n * k) + 1)
            .max()
            .unwrap_or(1)
            .max(2)
    }

    /// [`InferenceNet::forward_into`] into a new matrix.
    pub fn forward(&self, x: &Matrix<T>) -> Result<Matrix<T>> {
        let mut out = Matrix::zeros(0, 0);
        self.forward_into(x, &mut out)?;
        Ok(out)
    }

    /// Outputs of the widest stage.
    fn widest(&self) -> usize {
        self.stages.iter().map(|s| s.weight.rows()).max().unwrap_or(0)
    }

    /// Whether a call of `rows` rows runs them one at a time through the
    /// one-row kernel: fewer than [`APART_ROWS`] rows (but more than one)
    /// through a network whose weights fit [`APART_WEIGHTS`] values, where
    /// the feature-major kernel's narrowest tile (16 rows) costs more.
    fn rows_apart(&self, rows: usize) -> bool {
        let weights: usize = self.stages.iter().map(|s| s.weight.rows() * s.weight.cols()).sum();
        (2..APART_ROWS).contains(&rows) && weights <= APART_WEIGHTS && self.stages[0].panels.is_some()
    }

    /// Rows per block of the feature-major path: as many as keep a block's
    /// transposed input and two activations of the widest layer within
    /// [`FEATURE_MAJOR_BYTES`], a multiple of 32 from 32 to
    /// [`FEATURE_MAJOR_ROWS`].
    fn feature_major_rows(&self) -> usize {
        let widest = self.widest();
        let per_row = 4 * (self.in_features() + 2 * widest);
        (FEATURE_MAJOR_BYTES / per_row / 32 * 32).clamp(32, FEATURE_MAJOR_ROWS)
    }

    /// [`InferenceNet::forward_into`] by the feature-major kernel
    /// (`infer/panel.rs`): the rows cut into contiguous parts of at most
    /// [`PART_CHUNK`] rows, at least one per thread (in multiples of 16
    /// rows, at least [`PART_ROWS`] a part), each part in blocks of at most
    /// [`FEATURE_MAJOR_ROWS`]; a call too small for two parts splits each
    /// product over the threads instead. Each row's
    /// output is computed the same way in whichever part and block, so the
    /// split does not change it.
    fn forward_feature_major(&self, xs: &[T], os: &mut [T], rows: usize) {
        let (inp, outw) = (self.in_features(), self.out_features());
        let threads = crate::parallel::threads();
        let least = threads.min(rows / PART_ROWS).max(1);
        let per_part = match least {
            1 => rows,
            // Parts past the team's limit would run on one thread.
            _ => (rows.div_ceil(least).next_multiple_of(16).min(PART_CHUNK))
                .max(rows.div_ceil(crate::parallel::team::MAX_PARTS).next_multiple_of(16)),
        };
        let parts = rows.div_ceil(per_part);
        let block = self.feature_major_rows().min(per_part);
        // The workspaces the parts can hold at once, sized before the job
        // (a part takes the first free one: no allocation once warm).
        let live = &self.workspaces[..parts.min(threads).clamp(1, self.workspaces.len())];
        for ws in live {
            self.size_workspace(&mut ws.lock().unwrap_or_else(|e| e.into_inner()), block);
        }
        let os = crate::parallel::split::SharedMut::new(os);
        let run_part = |i: usize| {
            let r = i * per_part..((i + 1) * per_part).min(rows);
            // SAFETY: the parts' row ranges are disjoint.
            let ob = unsafe { os.range(r.start * outw..r.end * outw) };
            let mut ws = free_workspace(live);
            let xb = &xs[r.start * inp..r.end * inp];
            for (xc, oc) in xb.chunks(block * inp).zip(ob.chunks_mut(block * outw)) {
                self.block_feature_major(as_f32(xc), as_f32_mut(oc), &mut ws);
            }
        };
        if parts == 1 {
            run_part(0);
        } else {
            crate::parallel::run(parts, &run_part);
        }
    }

    /// Grows `ws` to hold a block of `rows` rows on the feature-major path.
    fn size_workspace(&self, ws: &mut Workspace<T>, rows: usize) {
        let (inp, cols) = (self.in_features(), rows.next_multiple_of(16));
        let widest = self.widest();
        for (b, n) in [(&mut ws.0, widest), (&mut ws.1, widest), (&mut ws.2, inp)] {
            if b.len() < n * cols {
                b.resize(n * cols, T::ZERO);
            }
        }
    }

    /// All stages on one block by the feature-major kernel: `xb: [rows,
    /// in]` transposed into `[in, cols]` (`cols` = `rows` rounded up to 16,
    /// the extra columns zero), the stages ping-ponging between two `[_,
    /// cols]` buffers, the last transposed out into `ob: [rows, out]`.
    fn block_feature_major(&self, xb: &[f32], ob: &mut [f32], ws: &mut Workspace<T>) {
        let inp = self.in_features();
        let rows = xb.len() / inp;
        let cols = rows.next_multiple_of(16);
        self.size_workspace(ws, rows);
        let (a, b, xt) = (as_f32_mut(&mut ws.0), as_f32_mut(&mut ws.1), as_f32_mut(&mut ws.2));
        panel::transpose(xb, rows, inp, inp, xt, cols, cols);
        for (i, s) in self.stages.iter().enumerate() {
            let (src, dst): (&[f32], &mut [f32]) = match i {
                0 => (&xt[..], &mut a[..]),
                _ if i % 2 == 1 => (&a[..], &mut b[..]),
                _ => (&b[..], &mut a[..]),
            };
            let p = s.panels.as_ref().expect("every stage has panels on this path");
            let dst = &mut dst[..p.out() * cols];
            panel::product_split(p, src, cols, cols, dst, cols);
            crate::layers::bias_act_rows_kernel(&s.acts, dst, as_f32(&s.bias));
        }
        let last = if self.stages.len() % 2 == 1 { &a[..] } else { &b[..] };
        let outw = self.out_features();
        panel::transpose(last, outw, rows, cols, ob, outw, outw);
    }

    /// All stages on one block of rows: `xb: [rows, in]` to `ob: [rows, out]`,
    /// ping-ponging between the two buffers.
    fn block(&self, xb: &[T], ob: &mut [T], (b0, b1, _): &mut Workspace<T>) {
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

/// The first of `live` that no other thread holds, else (another call on
/// the same network at the same time) the first, once free.
fn free_workspace<T>(live: &[Mutex<Workspace<T>>]) -> std::sync::MutexGuard<'_, Workspace<T>> {
    use std::sync::TryLockError;
    for m in live {
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(e)) => return e.into_inner(),
            Err(TryLockError::WouldBlock) => {}
        }
    }
    live[0].lock().unwrap_or_else(|e| e.into_inner())
}

/// The largest `m * n * k` that faer 0.24 multiplies with its small-matrix
/// kernel (its `NANO_GEMM_THRESHOLD`); see [`InferenceNet::blocked_rows`].
const SMALL_PRODUCT: usize = 16 * 16 * 16;

/// Most rows a thread claims at a time on the feature-major path. Parts
/// are claimed one at a time, so on a machine where another process takes
/// a core the caller runs the parts a stalled worker has not claimed. With
/// one core kept busy (`bench/busy.py --only I1`, 2 runs of 5 rounds) the
/// paper network's 1000 rows took 0.958 and 0.987x as long on 2 threads as
/// on 1 with parts of 128 rows, against 1.043 and 1.013x with one part per
/// thread; on an idle machine the two were within each other's spread (3
/// alternating rounds, 1000 rows of both networks, 2 threads).
pub const PART_CHUNK: usize = 128;

/// Most rows per block of the feature-major path.
pub const FEATURE_MAJOR_ROWS: usize = 256;

/// Bytes of a block's activations on the feature-major path
/// ([`InferenceNet::feature_major_rows`]): three quarters of the 2 MiB L2
/// cache of the machine of `docs/PERFORMANCE.md`. On the 784-1024x3-10
/// network (1 thread, 256 and 1000 rows) budgets of 1 and 1.5 MiB (blocks
/// of 64 and 128 rows) were within each other's spread, 0.5 MiB slower by
/// up to 7%, and blocks of 256 rows (3 MiB) up to 26% slower.
pub const FEATURE_MAJOR_BYTES: usize = 3 << 19;

/// Fewest rows a thread takes as its own part on the feature-major path;
/// smaller calls split each product over the threads instead. With 100
/// rows on 2 threads, two parts took 0.099 ms (paper network) and 2.10 ms
/// (784-1024x3-10) against 0.181 and 2.28 ms for split products.
pub const PART_ROWS: usize = 32;

/// Calls of fewer rows than this run row by row on networks of at most
/// [`APART_WEIGHTS`] weights ([`InferenceNet::forward_into`]).
pub const APART_ROWS: usize = 8;

/// See [`APART_ROWS`]: 256 Ki f32 values, 1 MiB, half the L2 cache of the
/// machine of `docs/PERFORMANCE.md`.
pub const APART_WEIGHTS: usize = 1 << 18;

/// Whether the feature-major kernel (`infer/panel.rs`) applies to `T` on this CPU
/// (f32 with AVX-512).
fn feature_major_kernel<T: Scalar>() -> bool {
    cfg!(target_arch = "x86_64")
        && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && crate::simd::level() == 3
}

/// `v` as f32.
///
/// # Panics
/// If `T` is not f32.
fn as_f32<T: Scalar>(v: &[T]) -> &[f32] {
    assert!(std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>());
    // SAFETY: T is f32 (asserted), so this is the same slice.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const f32, v.len()) }
}

/// `v` as f32, mutably.
///
/// # Panics
/// If `T` is not f32.
fn as_f32_mut<T: Scalar>(v: &mut [T]) -> &mut [f32] {
    assert!(std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>());
    // SAFETY: T is f32 (asserted), so this is the same slice, borrowed
    // mutably from the only reference to it.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len()) }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BnPlacement, ModelSpec};

    fn net(dims: &[usize], activation: Activation) -> InferenceNet<f32> {
        let spec = ModelSpec {
            dims: dims.to_vec(),
            activation,
            batch_norm: BnPlacement::BeforeActivation,
            ..ModelSpec::paper_mnist(true, 0.1)
        };
        InferenceNet::new(&Sequential::<f32>::from_spec(&spec, 5).unwrap()).unwrap()
    }

    fn slice_rows(x: &Matrix<f32>, r: std::ops::Range<usize>) -> Matrix<f32> {
        let c = x.cols();
        Matrix::from_vec(r.len(), c, x.as_slice()[r.start * c..r.end * c].to_vec()).unwrap()
    }

    fn bits(m: &Matrix<f32>, rows: std::ops::Range<usize>) -> Vec<u32> {
        let c = m.cols();
        m.as_slice()[rows.start * c..rows.end * c]
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// Where the feature-major kernel runs, a row's output depends on
    /// nothing but the row: calls of 8 to 1000 rows (primes, tile and block
    /// edges) from several offsets, on 1 to 4 threads, have the bits of the
    /// same rows in one call of 1000 rows; calls of 2 to 7 rows on a
    /// network of at most `APART_WEIGHTS` weights have the bits of one-row
    /// calls, and on a larger one those of the batch. Networks: narrow
    /// (sigmoid), one of 1000 and 600 outputs whose products a small call
    /// splits over the threads (ReLU), and one of 21 outputs (three panels,
    /// the last part full).
    #[test]
    fn a_rows_output_depends_on_nothing_but_the_row() {
        let _level = crate::simd::level_lock();
        if !feature_major_kernel::<f32>() {
            return;
        }
        // Under Miri (`tools/miri.sh`, which interprets the AVX-512 kernel
        // at about 0.2 us a multiply-add) 64 rows, the 21-wide network,
        // calls of 2, 3, 17, 33 and 64 rows, on 1 and 2 threads.
        let n = if cfg!(miri) { 64 } else { 1000 };
        for (dims, act) in [
            (&[30, 64, 64, 10][..], Activation::Sigmoid),
            (&[300, 1000, 600, 9][..], Activation::Relu),
            (&[37, 21, 21][..], Activation::Tanh),
        ] {
            if cfg!(miri) && dims[1] != 21 {
                continue;
            }
            let net = net(dims, act);
            let apart = dims.windows(2).map(|w| w[0] * w[1]).sum::<usize>() <= APART_WEIGHTS;
            let values = (0..n * dims[0]).map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0).collect();
            let x = Matrix::from_vec(n, dims[0], values).unwrap();
            crate::parallel::set_threads(1);
            let all = net.forward(&x).unwrap();
            let one_by_one: Vec<Vec<u32>> = (0..8)
                .map(|r| bits(&net.forward(&slice_rows(&x, r..r + 1)).unwrap(), 0..1))
                .collect();
            for threads in 1..=4 {
                crate::parallel::set_threads(threads);
                for rows in [2, 3, 7, 8, 9, 16, 17, 31, 32, 33, 63, 64, 65, 97, 255, 256, 257, 1000] {
                    if rows > n || (cfg!(miri) && (threads > 2 || ![2, 3, 17, 33, 64].contains(&rows))) {
                        continue;
                    }
                    for start in [0, 1, n - rows] {
                        if start + rows > n || (rows < 8 && start > 0) {
                            continue;
                        }
                        let y = net.forward(&slice_rows(&x, start..start + rows)).unwrap();
                        let got = bits(&y, 0..rows);
                        if rows < APART_ROWS && apart {
                            let want: Vec<u32> = one_by_one[..rows].concat();
                            assert_eq!(got, want, "{dims:?}: {rows} rows apart, {threads} threads");
                        } else {
                            let want = bits(&all, start..start + rows);
                            assert_eq!(got, want, "{dims:?}: {rows} rows from {start}, {threads} threads");
                        }
                    }
                }
            }
            crate::parallel::set_threads(1);
        }
    }
}
