//! From a [`TrainConfig`] to the pieces of a training run: the network's
//! architecture, the optimizer and the loop's settings, each validated with
//! an error that names the option.

use super::config::TrainConfig;
use crate::layers::NormKind;
use crate::train::schedule::Schedule;
use crate::train::{EarlyStopping, FitConfig, Monitor, OnNan};
use crate::{Activation, BatchNormConfig, BnPlacement, Error, Init, ModelSpec, OptimizerConfig, Result, Trainer};

/// The optimizer called `name` with its default learning rate
/// unless `lr` is given.
pub fn optimizer_config(name: &str, lr: Option<f64>, momentum: f64, weight_decay: f64) -> Result<OptimizerConfig> {
    let lr = |default: f64| lr.unwrap_or(default);
    let mut c = match name {
        "sgd" | "gd" => OptimizerConfig::sgd(lr(0.5)),
        "momentum" => OptimizerConfig::momentum(lr(0.05), momentum, false),
        "nesterov" => OptimizerConfig::momentum(lr(0.05), momentum, true),
        "adam" => OptimizerConfig::adam(lr(1e-3)),
        "adamw" => OptimizerConfig::adamw(lr(1e-3)),
        "rmsprop" => OptimizerConfig::rmsprop(lr(1e-3)),
        "adagrad" => OptimizerConfig::adagrad(lr(1e-2)),
        other => {
            return Err(Error::config(
                "--optimizer",
                format!("unknown '{other}' (expected sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad)"),
            ));
        }
    };
    // Exactly the configured decay, for adamw too (0 trains without decay;
    // the command line resolves adamw's default of 0.01, `ADAMW_DECAY`).
    c.weight_decay = weight_decay;
    c.validate()?;
    Ok(c)
}

/// The architecture: `inputs`, the hidden widths of `cfg`, `outputs`.
pub fn model_spec(cfg: &TrainConfig, inputs: usize, outputs: usize) -> Result<ModelSpec> {
    let mut dims = vec![inputs];
    if !cfg.hidden.trim().is_empty() {
        dims.extend(ModelSpec::parse_dims(&cfg.hidden)?);
    }
    dims.push(outputs);
    let (normalize, kind) = match cfg.norm.trim() {
        "none" => (false, NormKind::Batch),
        "" => (cfg.batch_norm, NormKind::Batch),
        other => (cfg.batch_norm, NormKind::parse(other)?),
    };
    let spec = ModelSpec {
        dims,
        activation: cfg.activation.parse::<Activation>()?,
        batch_norm: match (normalize, cfg.bn_after) {
            (false, _) => BnPlacement::None,
            (true, false) => BnPlacement::BeforeActivation,
            (true, true) => BnPlacement::AfterActivation,
        },
        bn: BatchNormConfig {
            kind: if normalize { kind } else { NormKind::Batch },
            ..Default::default()
        },
        dropout: cfg.dropout,
        init: cfg.init.parse::<Init>()?,
    };
    spec.validate()?;
    Ok(spec)
}

/// Sets `trainer`'s label smoothing from `cfg` (see
/// [`crate::loss::check_smoothing`]: a value outside `[0, 1)`, or one for
/// a loss other than cross-entropy, is an error).
pub fn apply_label_smoothing(trainer: &mut Trainer<f32>, cfg: &TrainConfig) -> Result<()> {
    crate::loss::check_smoothing(trainer.loss, cfg.label_smoothing)?;
    trainer.label_smoothing = cfg.label_smoothing;
    Ok(())
}

/// The optimizer config, and whether it is full-batch gradient descent.
pub fn optimizer(cfg: &TrainConfig) -> Result<(OptimizerConfig, bool)> {
    let full = cfg.optimizer == "gd";
    let name = if full { "sgd" } else { cfg.optimizer.as_str() };
    let lr = (cfg.lr != 0.0).then_some(cfg.lr);
    let mut c = optimizer_config(name, lr, cfg.momentum, cfg.weight_decay)?;
    c.clip_grad_norm = (cfg.clip_grad_norm != 0.0).then_some(cfg.clip_grad_norm);
    c.validate()?;
    Ok((c, full))
}

/// The training loop's settings (`has_val`: a validation set exists).
pub fn fit_config(cfg: &TrainConfig, full_batch: bool, has_val: bool) -> Result<FitConfig> {
    let monitor = match cfg.monitor.as_str() {
        "val_loss" => Monitor::ValLoss,
        "val_metric" | "val_accuracy" | "val_r2" => Monitor::ValMetric,
        m => {
            return Err(Error::config(
                "monitor",
                format!("unknown '{m}' (expected val_loss or val_metric)"),
            ));
        }
    };
    if !(cfg.min_delta >= 0.0 && cfg.min_delta.is_finite()) {
        return Err(Error::config(
            "min-delta",
            format!("{} is not a non-negative number", cfg.min_delta),
        ));
    }
    if cfg.batch_size == 0 {
        return Err(Error::config("batch-size", "must be at least 1"));
    }
    if cfg.ensemble > super::config::MAX_ENSEMBLE {
        return Err(Error::config(
            "ensemble",
            format!(
                "{} networks; at most {} (0 is the default)",
                cfg.ensemble,
                super::config::MAX_ENSEMBLE
            ),
        ));
    }
    Ok(FitConfig {
        epochs: cfg.epochs,
        steps: (cfg.steps > 0).then_some(cfg.steps),
        batch_size: (!full_batch).then_some(cfg.batch_size),
        schedule: Schedule::parse(&cfg.schedule)?,
        monitor,
        early_stopping: (cfg.patience > 0 && has_val).then_some(EarlyStopping {
            patience: cfg.patience,
            min_delta: cfg.min_delta,
        }),
        seed: cfg.seed.wrapping_add(1),
        on_nan: match cfg.on_nan.as_str() {
            "stop" => OnNan::Stop,
            "skip-batch" | "skip_batch" => OnNan::SkipBatch,
            o => {
                return Err(Error::config(
                    "on-nan",
                    format!("unknown '{o}' (expected stop or skip-batch)"),
                ));
            }
        },
        checkpoint_epochs: cfg.checkpoint_every,
        checkpoint_steps: cfg.checkpoint_steps,
    })
}
