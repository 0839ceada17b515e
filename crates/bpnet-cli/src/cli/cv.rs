//! `bpnet train --cv K`: k-fold cross-validation before the final fit.

use bpnet::Result;
use bpnet::workflow::{FoldScore, TrainConfig, cross_validate};
use serde_json::Value;

/// Cross-validates `cfg` over `k` folds, printing each fold and the mean ±
/// sd unless `quiet`; the report as JSON. `classify` says whether the
/// folds are stratified (by class); `batch_flag` is `--batch-size` as
/// given, noted on each fold whose training rows it exceeds.
pub fn run(cfg: &TrainConfig, k: usize, classify: bool, batch_flag: Option<usize>, quiet: bool) -> Result<Value> {
    if !quiet {
        let how = if classify {
            "stratified by class"
        } else {
            "not stratified: a regression target"
        };
        println!("cross-validation: {k} folds ({how}, seed {})", cfg.seed);
    }
    let report = cross_validate(cfg, k, &mut |f| {
        if !quiet {
            println!("{}", fold_line(cfg, f));
            if let Some(note) = batch_note(batch_flag, f) {
                println!("{note}");
            }
        }
    })?;
    if !quiet {
        println!("cv: {}", report.summary());
        println!("refitting the final model on all training rows");
    }
    Ok(report.json())
}

/// `  fold 2: score 0.9500 (trained on 120 rows, 57 epochs; scored on 30 rows)`.
fn fold_line(cfg: &TrainConfig, f: &FoldScore) -> String {
    let lr = if cfg.lr_auto {
        format!(", lr {:.3e} by --lr auto on them", f.lr)
    } else {
        String::new()
    };
    format!(
        "  fold {}: score {:.4} (trained on {} rows, {} epochs{lr}; scored on {} rows)",
        f.fold, f.score, f.train_rows, f.epochs, f.test_rows
    )
}

/// A note when `--batch-size` exceeds the rows a fold's steps used (those
/// left after its validation split): the fold took them all in one batch
/// per epoch. The final fit refuses such a flag before the folds run, so
/// this is a fold's smaller share of the rows, not a typo.
fn batch_note(flag: Option<usize>, f: &FoldScore) -> Option<String> {
    flag.filter(|&b| b > f.fit_rows).map(|b| {
        format!(
            "  note: --batch-size {b} is larger than fold {}'s {} training rows (after its validation split): one batch of {} per epoch",
            f.fold, f.fit_rows, f.fit_rows
        )
    })
}
