//! `bpnet train --cv K`: k-fold cross-validation before the final fit.

use bpnet::Result;
use bpnet::workflow::{TrainConfig, cross_validate};
use serde_json::Value;

/// Cross-validates `cfg` over `k` folds, printing each fold and the mean ±
/// sd unless `quiet`; the report as JSON.
pub fn run(cfg: &TrainConfig, k: usize, quiet: bool) -> Result<Value> {
    if !quiet {
        println!(
            "cross-validation: {k} folds (stratified for classification, seed {})",
            cfg.seed
        );
    }
    let report = cross_validate(cfg, k, &mut |f| {
        if !quiet {
            let lr = if cfg.lr_auto {
                format!(", lr {:.3e} by --lr auto on them", f.lr)
            } else {
                String::new()
            };
            println!(
                "  fold {}: score {:.4} (trained on {} rows, {} epochs{lr}; scored on {} rows)",
                f.fold, f.score, f.train_rows, f.epochs, f.test_rows
            );
        }
    })?;
    if !quiet {
        println!("cv: {}", report.summary());
        println!("refitting the final model on all training rows");
    }
    Ok(report.json())
}
