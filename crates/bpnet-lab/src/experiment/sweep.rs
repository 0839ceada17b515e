//! A grid over learning rate and initial weight scale for the paper's
//! network with and without BN: how the defaults were chosen.

use super::lockstep::{self, Arm, NoProbe};
use super::{ExperimentConfig, Mnist};
use bpnet::error::Result;
use bpnet::io::write_atomic;
use serde::Serialize;
use std::path::Path;

/// One network of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Learning rate.
    pub lr: f64,
    /// Initial weight standard deviation.
    pub init_std: f64,
    /// With batch normalization.
    pub batch_norm: bool,
    /// Test accuracy after `cfg.steps` steps.
    pub final_accuracy: f64,
    /// First evaluated step at 95% test accuracy.
    pub steps_to_95: Option<usize>,
    /// The step whose loss was not finite, if any.
    pub diverged_at: Option<usize>,
}

/// Trains the paper's network with and without BN for every pair of `lrs`
/// and `stds` (`cfg.steps` steps each, same batches), writes `out/sweep.csv`
/// and returns the rows.
pub fn sweep(
    cfg: &ExperimentConfig,
    data: &Mnist,
    lrs: &[f64],
    stds: &[f64],
    out: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<SweepRow>> {
    cfg.validate()?;
    if data.writes() {
        std::fs::create_dir_all(out).map_err(|source| bpnet::Error::Io {
            path: out.to_path_buf(),
            source,
        })?;
    }
    let mut rows = Vec::new();
    let mut plan = cfg.plan();
    plan.extra_evals.clear();
    for &std in stds {
        for &lr in lrs {
            log(&format!("-- lr {lr}, init std {std}"));
            rows.extend(pair(cfg, data, &plan, lr, std, log)?);
        }
    }
    if data.writes() {
        write_csv(out, &rows)?;
    }
    Ok(rows)
}

/// The paper's network with and without BN at one `(lr, std)`.
fn pair(
    cfg: &ExperimentConfig,
    data: &Mnist,
    plan: &lockstep::Plan,
    lr: f64,
    std: f64,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<SweepRow>> {
    let c = ExperimentConfig {
        lr,
        init_std: std,
        ..cfg.clone()
    };
    let mut arms = vec![
        Arm::new("without BN", &c.paper_spec(false), lr, c.seed)?,
        Arm::new("with BN", &c.paper_spec(true), lr, c.seed)?,
    ];
    lockstep::run(&mut arms, data, plan, &mut NoProbe, &mut |_| {})?;
    let mut rows = Vec::new();
    for arm in &arms {
        let r = &arm.result;
        let row = SweepRow {
            lr,
            init_std: std,
            batch_norm: r.batch_norm,
            final_accuracy: r.final_accuracy(),
            steps_to_95: r.first_reaching(0.95),
            diverged_at: r.diverged_at,
        };
        log(&format!(
            "   {:<10} final {:.2}%  95% at {}",
            r.label,
            100.0 * row.final_accuracy,
            row.steps_to_95.map_or("-".into(), |s| s.to_string())
        ));
        rows.push(row);
    }
    Ok(rows)
}

fn write_csv(out: &Path, rows: &[SweepRow]) -> Result<()> {
    let mut csv = String::from("lr,init_std,batch_norm,final_accuracy,steps_to_95,diverged_at\n");
    let opt = |v: Option<usize>| v.map_or(String::new(), |s| s.to_string());
    for r in rows {
        csv += &format!(
            "{},{},{},{:.4},{},{}\n",
            r.lr,
            r.init_std,
            r.batch_norm,
            r.final_accuracy,
            opt(r.steps_to_95),
            opt(r.diverged_at)
        );
    }
    write_atomic(&out.join(super::SWEEP_FILE), csv.as_bytes())
}
