//! `--lr auto`: the learning-rate range test (`bpnet lr-find`) on the
//! network, optimizer, batch size, seed and label smoothing a
//! [`TrainConfig`] describes, and the rate it suggests.

use super::config::TrainConfig;
use super::data::Prepared;
use super::setup::{model_spec, optimizer};
use crate::train::default_loss;
use crate::train::lr_find::{LrFindConfig, LrFindResult, lr_find};
use crate::{Error, Result, Sequential};

/// The range test for `cfg` on the training split of `data` (the rate of
/// `cfg` is ignored): `range`'s rates, batches of `cfg`'s size (all rows
/// for full-batch gradient descent), batch order seeded by `cfg.seed + 1`.
/// It runs on a network built as training builds it, which it leaves alone.
pub fn lr_range_test(cfg: &TrainConfig, data: &Prepared, range: LrFindConfig) -> Result<LrFindResult> {
    let spec = model_spec(cfg, data.train.features.cols(), data.train.outputs())?;
    let model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
    let (opt, full_batch) = optimizer(cfg)?;
    let rows = data.train.len();
    let range = LrFindConfig {
        batch_size: if full_batch { rows } else { cfg.batch_size.min(rows) },
        seed: cfg.seed.wrapping_add(1),
        label_smoothing: cfg.label_smoothing,
        ..range
    };
    lr_find(&model, &opt, default_loss(&data.train), &data.train, &range)
}

/// The rate `--lr auto` trains with: [`LrFindResult::suggestion`], or an
/// error when the range test found none (no minimum after the first point
/// kept and no falling stretch).
pub fn auto_lr_rate(r: &LrFindResult) -> Result<f64> {
    r.suggestion().ok_or_else(|| {
        Error::config(
            "--lr auto",
            format!(
                "the range test ({} batches) found no rate where the loss falls; give --lr",
                r.lrs.len()
            ),
        )
    })
}

/// `cfg` with its `--lr auto` resolved on `data` by the default range
/// test (`cfg` itself when its rate is given), and the range test's result.
pub fn resolve_lr_auto(cfg: &TrainConfig, data: &Prepared) -> Result<(TrainConfig, Option<LrFindResult>)> {
    if !cfg.lr_auto {
        return Ok((cfg.clone(), None));
    }
    let r = lr_range_test(cfg, data, LrFindConfig::default())?;
    let lr = auto_lr_rate(&r)?;
    Ok((
        TrainConfig {
            lr,
            lr_auto: false,
            ..cfg.clone()
        },
        Some(r),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::lr_find::suggestions;

    fn result(smoothed: Vec<f64>) -> LrFindResult {
        let lrs: Vec<f64> = (0..smoothed.len())
            .map(|i| 10f64.powf(-7.0 + i as f64 * 0.08))
            .collect();
        let (steepest, min_div10) = suggestions(&lrs, &smoothed);
        LrFindResult {
            lrs,
            losses: smoothed.clone(),
            smoothed,
            stopped_early: false,
            steepest,
            min_div10,
        }
    }

    /// A loss that only rises gives the one-line error; one that dips after
    /// a rise from its start trains at the steepest fall; one with a
    /// minimum inside trains at a tenth of its rate.
    #[test]
    fn lr_auto_takes_the_minimum_then_the_steepest_fall_then_fails() {
        let rising = result((0..100).map(|i| 1.0 + i as f64 * 0.01).collect());
        let err = auto_lr_rate(&rising).unwrap_err().to_string();
        assert!(
            err.contains("--lr auto") && err.contains("100 batches") && err.contains("give --lr"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let dip = result(
            (0..100)
                .map(|i| 1.0 + i as f64 * 0.01 - if (50..60).contains(&i) { 0.3 } else { 0.0 })
                .collect(),
        );
        assert_eq!((dip.min_div10, auto_lr_rate(&dip).ok()), (None, dip.steepest));
        assert!(dip.steepest.is_some());
        let valley = result((0..100).map(|i| 1.0 + ((i as f64 - 60.0) / 20.0).powi(2)).collect());
        assert_eq!(auto_lr_rate(&valley).unwrap(), valley.lrs[60] / 10.0);
    }
}
