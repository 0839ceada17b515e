//! `bpnet train`: train a network on MNIST-format data and report test accuracy.

use super::optimizer_config;
use bpnet::data::{Batches, bundled_mnist_dir, load_mnist};
use bpnet::train::accuracy;
use bpnet::{
    Activation, BnPlacement, Error, Init, Loss, Matrix, ModelSpec, Optimizer, Result, Sequential, Target, Trainer,
};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// `mnist` for the bundled MNIST, or a folder with MNIST-format IDX files.
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Hidden layer widths, comma-separated.
    #[arg(long, default_value = "100,100,100")]
    hidden: String,
    /// Hidden activation: sigmoid, tanh, relu, leaky_relu[:slope], elu[:alpha], gelu, softplus, identity.
    #[arg(long, default_value = "sigmoid")]
    activation: String,
    /// Batch normalization before each hidden activation (the default).
    #[arg(long, overrides_with = "no_batch_norm")]
    batch_norm: bool,
    /// No batch normalization.
    #[arg(long)]
    no_batch_norm: bool,
    /// Put batch normalization after the activation instead of before it.
    #[arg(long)]
    bn_after: bool,
    /// Dropout rate after each hidden block.
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Weight init: normal[:std], xavier_uniform, xavier_normal, he_uniform, he_normal, torch.
    #[arg(long, default_value = "normal:0.1")]
    init: String,
    /// Optimizer: sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad.
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// Learning rate [default: 0.5 for sgd, 0.05 for momentum and nesterov,
    /// 0.001 for adam, adamw and rmsprop, 0.01 for adagrad].
    #[arg(long)]
    lr: Option<f64>,
    /// Momentum for `momentum` and `nesterov`.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay (L2; decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 60)]
    batch_size: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Train for this many steps instead of whole epochs.
    #[arg(long)]
    steps: Option<usize>,
    /// Use only the first N training rows.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Seed for weights, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
}

/// Runs `bpnet train`.
pub fn run(a: &TrainArgs) -> Result<()> {
    let dir = if a.data == "mnist" {
        bundled_mnist_dir()
    } else {
        PathBuf::from(&a.data)
    };
    let (mut train, test) = load_mnist(&dir)?;
    if let Some(n) = a.train_limit {
        train = train.head(n);
    }
    if a.batch_size == 0 {
        return Err(Error::config("--batch-size", "must be at least 1"));
    }
    let mut dims = vec![train.features.cols()];
    dims.extend(ModelSpec::parse_dims(&a.hidden)?);
    dims.push(train.classes);
    let bn = !a.no_batch_norm;
    let spec = ModelSpec {
        dims,
        activation: a.activation.parse::<Activation>()?,
        batch_norm: match (bn, a.bn_after) {
            (false, _) => BnPlacement::None,
            (true, false) => BnPlacement::BeforeActivation,
            (true, true) => BnPlacement::AfterActivation,
        },
        bn: Default::default(),
        dropout: a.dropout,
        init: a.init.parse::<Init>()?,
    };
    let model = Sequential::<f32>::from_spec(&spec, a.seed)?;
    let mut trainer = Trainer::new(
        model,
        Optimizer::new(optimizer_config(&a.optimizer, a.lr, a.momentum, a.weight_decay)?)?,
        Loss::CrossEntropy,
    );
    let mut batches = Batches::new(
        train.len(),
        a.batch_size,
        if bn { 2 } else { 1 },
        a.seed.wrapping_add(1),
    );
    let steps = a.steps.unwrap_or(a.epochs * batches.per_epoch());
    if !a.quiet {
        println!("model:\n{}", trainer.model.summary());
        println!(
            "training on {} rows for {steps} steps of batch {}",
            train.len(),
            a.batch_size
        );
    }
    let (mut x, mut y) = (Matrix::default(), Vec::new());
    let start = Instant::now();
    let mut running = 0.0f64;
    for step in 1..=steps {
        train.gather(batches.next_batch(), &mut x, &mut y);
        running += trainer.step(&x, Target::Labels(&y))? as f64;
        if !a.quiet && (step % 500 == 0 || step == steps) {
            let k = if step % 500 == 0 { 500 } else { step % 500 };
            println!(
                "step {step:>6}  loss {:.4}  {:.1}s",
                running / k as f64,
                start.elapsed().as_secs_f64()
            );
            running = 0.0;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let acc = accuracy(&mut trainer.model, &test, 1000)?;
    println!(
        "test accuracy {:.2}% ({} test images) after {steps} steps in {secs:.1}s ({:.3} ms/step)",
        acc * 100.0,
        test.len(),
        secs * 1e3 / steps.max(1) as f64
    );
    Ok(())
}
