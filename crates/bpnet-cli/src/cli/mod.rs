//! Subcommands of the `bpnet` binary and the option parsing they share.

pub mod bench;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod eval;
pub mod experiment;
pub mod export;
pub mod history;
pub mod import;
pub mod inspect;
pub mod outputs;
pub mod plot;
pub mod predict;
pub mod progress;
pub mod train;

use bpnet::{Error, OptimizerConfig, Result};

/// The optimizer named on the command line with its default learning rate
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
    if weight_decay > 0.0 || name != "adamw" {
        c.weight_decay = weight_decay;
    }
    c.validate()?;
    Ok(c)
}

/// The process's peak resident memory so far (Linux `ru_maxrss`, reported in
/// KiB), or `None` where the system does not say.
pub fn peak_memory_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage only writes into the zeroed struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            return u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024);
        }
    }
    None
}
