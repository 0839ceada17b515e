//! `bpnet bench`: times training steps (or eval-mode forward passes) of a
//! network on random data, after a warm-up, and reports ms/step, samples/s
//! and GFLOP/s counting only the products computed ([`step_flops`]).

use bpnet::comm::{Comm, block};
use bpnet::tensor::{Op, Out, gemm};
use bpnet::train::BnSyncMode;
use bpnet::workflow::optimizer_config;
use bpnet::{
    Activation, BnPlacement, Error, InferenceNet, Init, Loss, Matrix, Mode, ModelSpec, Optimizer, Result, Sequential,
};
use bpnet::{Target, Trainer};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;
use std::time::Instant;

/// Options of `bpnet bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Layer widths including input and output, e.g. 784,100,100,100,10.
    #[arg(long, default_value = "784,100,100,100,10")]
    dims: String,
    /// Hidden activation.
    #[arg(long, default_value = "sigmoid")]
    activation: String,
    /// Batch normalization before each hidden activation.
    #[arg(long)]
    batch_norm: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = 60)]
    batch_size: usize,
    /// Optimizer: sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad.
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// Learning rate (default per optimizer, as in `train`).
    #[arg(long)]
    lr: Option<f64>,
    /// Timed steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Time eval-mode forward passes instead of training steps.
    #[arg(long)]
    inference: bool,
    /// With --inference: fold batch norm into the Dense layers and time the
    /// fused, row-blocked inference path (`bpnet::InferenceNet`).
    #[arg(long, requires = "inference")]
    fused: bool,
    /// Time one n x n matrix product `C = A B` (f32) instead of a network.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16384),
          conflicts_with_all = ["dims", "activation", "batch_norm", "batch_size", "optimizer", "lr", "inference", "model"])]
    gemm: Option<u32>,
    /// With --inference: time this model file (written by `bpnet train` or
    /// `bpnet import`) instead of a network built from --dims, so that the
    /// same model can be timed in ONNX Runtime after `bpnet export`.
    #[arg(long, requires = "inference")]
    model: Option<std::path::PathBuf>,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Distinct random batches cycled through, so timing does not hinge on one batch.
const POOL: usize = 8;

/// Most values of the pooled batches (at the widest layer): 2^30, 4 GiB.
const MAX_VALUES: usize = 1 << 30;

/// The settings checked and the network built (none for `--gemm`): what
/// each rank does alone.
fn checked(a: &BenchArgs, comm: &Arc<dyn Comm>) -> Result<Option<(Sequential<f32>, Vec<usize>)>> {
    if comm.size() > 1 && (a.inference || a.gemm.is_some()) {
        return Err(Error::Comm(
            "under mpirun `bpnet bench` times training steps only".into(),
        ));
    }
    if a.steps == 0 {
        return Err(Error::config("--steps", "must be at least 1"));
    }
    if a.gemm.is_some() {
        return Ok(None);
    }
    // Training with batch normalization needs 2 rows; inference takes 1.
    let min_batch = if a.inference || !a.batch_norm { 1 } else { 2 };
    if a.batch_size < min_batch {
        return Err(Error::config(
            "--batch-size",
            format!("need a batch of at least {min_batch} rows (batch normalization trains on 2 or more)"),
        ));
    }
    let (model, dims) = network(a)?;
    let widest = dims.iter().copied().max().unwrap_or(0);
    if a.batch_size.saturating_mul(widest).saturating_mul(POOL) > MAX_VALUES {
        return Err(Error::config(
            "--batch-size",
            format!(
                "{} rows x {widest} units x {POOL} pooled batches exceeds {MAX_VALUES} values; use smaller batches",
                a.batch_size
            ),
        ));
    }
    Ok(Some((model, dims)))
}

/// Runs `bpnet bench`. Under `mpirun` (training only) every rank takes its
/// block of each batch of `--batch-size` rows, and rank 0 also reports the
/// time of the gradient all-reduce alone.
pub fn run(a: &BenchArgs, comm: &Arc<dyn Comm>) -> Result<()> {
    // Each rank alone, its errors shared ([`super::dist::settle`]).
    let Some((model, dims)) = super::dist::settle(&**comm, checked(a, comm))? else {
        return gemm_only(a, a.gemm.unwrap_or_default() as usize);
    };
    let pool = random_batches(a.batch_size, dims[0], dims[dims.len() - 1])?;
    let opt = Optimizer::new(optimizer_config(&a.optimizer, a.lr, 0.9, 0.0)?)?;
    let fused = a.fused.then(|| InferenceNet::new(&model)).transpose()?;
    let mut fused_out = Matrix::zeros(0, 0);
    let mut t = Trainer::new(model, opt, Loss::CrossEntropy);
    t.set_comm(comm.clone(), BnSyncMode::Global)?;
    let (lo, hi) = block(a.batch_size, comm.rank(), comm.size());
    let parts: Vec<_> = pool.iter().map(|(x, y)| part(x, y, lo, hi)).collect::<Result<_>>()?;
    let mut step = |i: usize| -> Result<()> {
        let (x, y) = &pool[i % POOL];
        if let Some(net) = &fused {
            net.forward_into(x, &mut fused_out)?;
        } else if a.inference {
            t.model.forward(x, Mode::Eval)?;
        } else if comm.size() > 1 {
            let (x, y) = &parts[i % POOL];
            t.compute_gradients_part(x, Target::Labels(y), lo, a.batch_size)?;
            t.optimizer.step(&mut t.model)?;
        } else {
            t.step(x, Target::Labels(y))?;
        }
        Ok(())
    };
    for i in 0..a.warmup {
        step(i)?;
    }
    comm.barrier()?;
    let start = Instant::now();
    for i in 0..a.steps {
        step(i)?;
    }
    comm.barrier()?;
    let secs = start.elapsed().as_secs_f64();
    let reduce_ms = (comm.size() > 1)
        .then(|| all_reduce_ms(&**comm, t.model.num_params() + 1, a.steps))
        .transpose()?;
    if comm.rank() == 0 {
        report(a, &dims, secs, comm.size(), reduce_ms);
    }
    Ok(())
}

/// Rows `lo..hi` of a batch.
fn part(x: &Matrix<f32>, y: &[usize], lo: usize, hi: usize) -> Result<(Matrix<f32>, Vec<usize>)> {
    let c = x.cols();
    Ok((
        Matrix::from_vec(hi - lo, c, x.as_slice()[lo * c..hi * c].to_vec())?,
        y[lo..hi].to_vec(),
    ))
}

/// Milliseconds of one sum over the ranks of `len` f32 values (as many as
/// the gradients) from one buffer into another, as training sums its large
/// gradients; averaged over `reps` after a warm-up.
fn all_reduce_ms(comm: &dyn Comm, len: usize, reps: usize) -> Result<f64> {
    let send = vec![1.0f32; len];
    let mut recv = vec![0.0f32; len];
    for _ in 0..10 {
        comm.all_reduce_into_f32(&send, &mut recv)?;
    }
    comm.barrier()?;
    let start = Instant::now();
    for _ in 0..reps {
        comm.all_reduce_into_f32(&send, &mut recv)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
}

/// The network to time: read from `--model`, or built from `--dims`,
/// `--activation` and `--batch-norm` (Xavier-uniform weights, seed 1);
/// with its widths `[in, ..., out]`.
fn network(a: &BenchArgs) -> Result<(Sequential<f32>, Vec<usize>)> {
    if let Some(path) = &a.model {
        if !a.inference {
            return Err(Error::config("--model", "times inference only: add --inference"));
        }
        let file = bpnet::io::load_model(path)?;
        if file.metadata.contains_key(bpnet::io::ENSEMBLE_KEY) {
            return Err(Error::config(
                "--model",
                format!(
                    "{} is an ensemble; bench times one network: train it with --ensemble 1",
                    path.display()
                ),
            ));
        }
        let model = file.model;
        let mut dims = vec![model.in_features().unwrap_or(0)];
        for l in model.layers() {
            if let bpnet::Layer::Dense(d) = l {
                dims.push(d.out_features());
            }
        }
        return Ok((model, dims));
    }
    let dims = ModelSpec::parse_dims(&a.dims)?;
    let spec = ModelSpec {
        dims: dims.clone(),
        activation: a.activation.parse::<Activation>()?,
        batch_norm: if a.batch_norm {
            BnPlacement::BeforeActivation
        } else {
            BnPlacement::None
        },
        bn: Default::default(),
        dropout: 0.0,
        init: Init::XavierUniform,
    };
    spec.validate()?;
    Ok((Sequential::<f32>::from_spec(&spec, 1)?, dims))
}

/// [`POOL`] random batches `[batch, inputs]` with labels below `classes`.
fn random_batches(batch: usize, inputs: usize, classes: usize) -> Result<Vec<(Matrix<f32>, Vec<usize>)>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    (0..POOL)
        .map(|_| {
            let x = (0..batch * inputs).map(|_| rng.random::<f32>()).collect();
            let y = (0..batch).map(|_| rng.random_range(0..classes.max(1))).collect();
            Ok((Matrix::from_vec(batch, inputs, x)?, y))
        })
        .collect()
}

/// Floating-point operations of the matrix products of one step on a
/// batch of `batch` rows through layers `dims`: `2 batch Σ in out` for an
/// inference pass; a training step adds the weight gradients (as many)
/// and the input gradients of every layer but the first (the first
/// layer's is not computed): `2 batch (3 Σ in out - dims[0] dims[1])`.
fn step_flops(dims: &[usize], batch: usize, inference: bool) -> f64 {
    let macs: usize = dims.windows(2).map(|w| w[0] * w[1]).sum();
    let first = if dims.len() >= 2 { dims[0] * dims[1] } else { 0 };
    let per_row = if inference { macs } else { 3 * macs - first };
    2.0 * batch as f64 * per_row as f64
}

/// Prints the timing line (and the JSON summary); `ranks` processes, whose
/// gradient all-reduce alone takes `reduce_ms`.
fn report(a: &BenchArgs, dims: &[usize], secs: f64, ranks: usize, reduce_ms: Option<f64>) {
    let flops_per_step = step_flops(dims, a.batch_size, a.inference);
    let ms = secs * 1e3 / a.steps as f64;
    let samples = a.batch_size as f64 * a.steps as f64 / secs;
    let gflops = flops_per_step * a.steps as f64 / secs / 1e9;
    let what = match (a.inference, a.fused) {
        (true, true) => "fused inference passes",
        (true, false) => "inference passes",
        _ => "training steps",
    };
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
    println!(
        "{} {what} of {shape}, batch {}: {ms:.4} ms/step, {samples:.0} samples/s, {gflops:.1} GFLOP/s",
        a.steps, a.batch_size
    );
    if let Some(r) = reduce_ms {
        println!(
            "{ranks} processes; gradient all-reduce alone: {r:.4} ms ({:.1}% of a step)",
            100.0 * r / ms
        );
    }
    if a.json {
        let summary = serde_json::json!({
            "ms_per_step": ms, "samples_per_s": samples, "gflops": gflops, "steps": a.steps,
            "batch_size": a.batch_size, "dims": shape, "inference": a.inference, "fused": a.fused, "model": a.model.as_ref().map(|m| m.to_string_lossy()),
            "threads": bpnet::parallel::threads(), "ranks": ranks, "all_reduce_ms": reduce_ms,
        });
        let mut summary = summary;
        if a.model.is_none() {
            // A model file's layers are its own, not these flags'.
            summary["activation"] = a.activation.clone().into();
            summary["batch_norm"] = a.batch_norm.into();
            summary["optimizer"] = a.optimizer.clone().into();
        }
        println!("{summary}");
    }
}

/// `bpnet bench --gemm N`: times `C = A B` for random `n x n` f32 matrices.
fn gemm_only(a: &BenchArgs, n: usize) -> Result<()> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut random = || -> Result<Matrix<f32>> { Matrix::from_vec(n, n, (0..n * n).map(|_| rng.random()).collect()) };
    let (x, y) = (random()?, random()?);
    let mut c = Matrix::zeros(n, n);
    for _ in 0..a.warmup {
        gemm(1.0, &x, Op::N, &y, Op::N, Out::Replace, &mut c)?;
    }
    let start = Instant::now();
    for _ in 0..a.steps {
        gemm(1.0, &x, Op::N, &y, Op::N, Out::Replace, &mut c)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let ms = secs * 1e3 / a.steps as f64;
    let gflops = 2.0 * (n as f64).powi(3) * a.steps as f64 / secs / 1e9;
    let threads = bpnet::parallel::threads();
    println!(
        "{} products {n} x {n} x {n} ({threads} threads): {ms:.4} ms each, {gflops:.1} GFLOP/s",
        a.steps
    );
    if a.json {
        let summary = serde_json::json!({
            "ms_per_step": ms, "samples_per_s": 0.0, "gflops": gflops, "steps": a.steps, "gemm": n, "threads": threads,
        });
        println!("{summary}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::step_flops;

    /// The counts quoted in docs/PERFORMANCE.md: the paper network at batch
    /// 60 (13.2 M multiply-adds a step), the 1024-wide network at batch 256
    /// (4.06 GFLOP), and an inference pass of 1000 rows (199 MFLOP).
    #[test]
    fn a_step_counts_the_products_it_computes() {
        let paper = [784, 100, 100, 100, 10];
        assert_eq!(step_flops(&paper, 60, false), 2.0 * 60.0 * (3.0 * 99_400.0 - 78_400.0));
        assert_eq!(step_flops(&paper, 60, false), 26_376_000.0);
        assert_eq!(step_flops(&[784, 1024, 1024, 1024, 10], 256, false), 4_059_037_696.0);
        assert_eq!(step_flops(&paper, 1000, true), 198_800_000.0);
        // No hidden layer: one product forward, one weight gradient.
        assert_eq!(step_flops(&[4, 3], 5, false), 2.0 * 5.0 * 2.0 * 12.0);
    }
}
