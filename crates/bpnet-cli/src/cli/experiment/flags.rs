//! Which `bpnet experiment` options each study reads: an option given to a
//! study that does not read it is refused in one line (it was ignored while
//! the banner printed its value), and the banner names only what applies.

use super::ExperimentArgs;
use bpnet::{Error, Result};
use bpnet_lab::experiment::ExperimentConfig;

/// The sweep's learning rates when `--sweep-lrs` is not given.
pub const SWEEP_LRS: [f64; 5] = [0.05, 0.1, 0.5, 1.0, 2.0];

/// The sweep's initial weight standard deviations when `--sweep-stds` is not given.
pub const SWEEP_STDS: [f64; 3] = [0.01, 0.1, 1.0];

/// What a paper study's lockstep training reads.
const TRAINING: [&str; 6] = [
    "--quick",
    "--steps",
    "--lr",
    "--init-std",
    "--batch-size",
    "--eval-every",
];

/// The study-specific options `which` reads (besides [`TRAINING`] for the
/// paper studies). `--mnist`, `--train-limit`, `--test-limit`, `--seed`,
/// `--out`, `--quiet` and `--overwrite` apply to every study.
fn own_options(which: &str) -> Vec<&'static str> {
    match which {
        "bn-mnist" => vec!["--unit", "--probe-rows", "--seeds"],
        "lr" => vec!["--lr-multipliers", "--seeds"],
        "depth" => vec!["--depth", "--seeds"],
        "population" => vec!["--population-batches", "--seeds"],
        "all" => ["bn-mnist", "lr", "depth", "population"]
            .into_iter()
            .flat_map(own_options)
            .collect(),
        "sweep" => vec![
            "--quick",
            "--steps",
            "--batch-size",
            "--eval-every",
            "--sweep-lrs",
            "--sweep-stds",
        ],
        // Steps come from --epochs over the training rows at each size.
        "batch-size" => vec![
            "--lr",
            "--init-std",
            "--batch-sizes",
            "--epochs",
            "--ghost-size",
            "--seeds",
        ],
        // Ten evaluations over the run, whatever --eval-every.
        "placement" => vec!["--quick", "--steps", "--lr", "--init-std", "--batch-size", "--seeds"],
        "dropout-bn" => vec![
            "--quick",
            "--steps",
            "--lr",
            "--init-std",
            "--batch-size",
            "--dropout-rate",
            "--seeds",
        ],
        // Its rates are --lr-range's.
        "lr-range" => vec![
            "--quick",
            "--steps",
            "--init-std",
            "--batch-size",
            "--lr-range",
            "--seeds",
        ],
        "norm" => ["batch-size", "placement", "dropout-bn", "lr-range"]
            .into_iter()
            .flat_map(own_options)
            .collect(),
        _ => Vec::new(),
    }
}

/// Every option `which` reads.
fn reads(which: &str) -> Vec<&'static str> {
    let paper = ["bn-mnist", "lr", "depth", "population", "all"].contains(&which);
    let mut all = own_options(which);
    if paper {
        all.extend(TRAINING);
    }
    all
}

/// The study-specific options given on the command line.
fn given(a: &ExperimentArgs) -> Vec<&'static str> {
    [
        ("--quick", a.quick),
        ("--steps", a.steps.is_some()),
        ("--lr", a.lr.is_some()),
        ("--init-std", a.init_std.is_some()),
        ("--batch-size", a.batch_size.is_some()),
        ("--eval-every", a.eval_every.is_some()),
        ("--unit", a.unit.is_some()),
        ("--probe-rows", a.probe_rows.is_some()),
        ("--lr-multipliers", a.lr_multipliers.is_some()),
        ("--depth", a.depth.is_some()),
        ("--population-batches", a.population_batches.is_some()),
        ("--batch-sizes", a.batch_sizes.is_some()),
        ("--epochs", a.epochs.is_some()),
        ("--ghost-size", a.ghost_size.is_some()),
        ("--dropout-rate", a.dropout_rate.is_some()),
        ("--lr-range", a.lr_range.is_some()),
        ("--sweep-lrs", a.sweep_lrs.is_some()),
        ("--sweep-stds", a.sweep_stds.is_some()),
        ("--seeds", a.seeds.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The first option given that `a.which` does not read, as an error; and
/// the sweep's grid checked (positive, finite numbers).
pub fn refuse_unused(a: &ExperimentArgs) -> Result<()> {
    let read = reads(&a.which);
    if let Some(name) = given(a).into_iter().find(|g| !read.contains(g)) {
        return Err(Error::config(
            name,
            format!(
                "has no effect on `bpnet experiment {}`, which reads {}",
                a.which,
                read.join(", ")
            ),
        ));
    }
    for (name, values) in [("--sweep-lrs", sweep_lrs(a)), ("--sweep-stds", sweep_stds(a))] {
        if values.is_empty() || values.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
            return Err(Error::config(name, "must be positive numbers"));
        }
        if (1..values.len()).any(|i| values[..i].contains(&values[i])) {
            // Each names a row of sweep.csv (a repeat ran the same networks twice).
            return Err(Error::config(name, "must be distinct"));
        }
    }
    Ok(())
}

/// `--sweep-lrs`, or [`SWEEP_LRS`].
pub fn sweep_lrs(a: &ExperimentArgs) -> Vec<f64> {
    a.sweep_lrs.clone().unwrap_or_else(|| SWEEP_LRS.to_vec())
}

/// `--sweep-stds`, or [`SWEEP_STDS`].
pub fn sweep_stds(a: &ExperimentArgs) -> Vec<f64> {
    a.sweep_stds.clone().unwrap_or_else(|| SWEEP_STDS.to_vec())
}

/// The settings `a.which` trains with, for the banner: those of the
/// options it reads, then the seed.
pub fn banner(a: &ExperimentArgs, cfg: &ExperimentConfig) -> String {
    let list = |v: &[f64]| v.iter().map(f64::to_string).collect::<Vec<_>>().join(", ");
    let read = reads(&a.which);
    let mut parts = Vec::new();
    if a.which == "sweep" {
        parts.push(format!(
            "plain SGD, learning rates {} x initial weight sds {}",
            list(&sweep_lrs(a)),
            list(&sweep_stds(a))
        ));
    } else if read.contains(&"--lr") {
        parts.push(format!("plain SGD, learning rate {}", cfg.lr));
    } else {
        parts.push(format!("plain SGD, learning rates {}", list(&cfg.lr_range)));
    }
    if read.contains(&"--init-std") {
        parts.push(format!("initial weights N(0, {}^2)", cfg.init_std));
    }
    if read.contains(&"--batch-size") {
        parts.push(format!("batches of {}", cfg.batch_size));
    }
    if read.contains(&"--steps") {
        parts.push(format!("{} steps", cfg.steps));
    }
    if read.contains(&"--batch-sizes") {
        let sizes: Vec<String> = cfg.batch_sizes.iter().map(usize::to_string).collect();
        parts.push(format!(
            "batch-size study: batches of {} for {} epoch(s) each",
            sizes.join(", "),
            cfg.norm_epochs
        ));
    }
    parts.push(format!("seed {}", cfg.seed));
    parts.join(", ")
}
