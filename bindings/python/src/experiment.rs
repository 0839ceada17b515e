//! `bpnet.experiment`: the batch-normalization studies of `bpnet experiment`
//! (bpnet-lab), writing the same files and report, their numbers returned
//! to Python as JSON.

use crate::to_py;
use bpnet::io::{Kind, OutputPlan};
use bpnet::{Error, Result};
use bpnet_lab::experiment::{self, ExperimentConfig, Mnist, Study};
use pyo3::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Runs the study `which` (`bn-mnist`, `lr`, `depth`, `population` or
/// `all`) as `bpnet experiment WHICH [--quick] --out OUT` does, with the
/// given settings overriding the defaults; returns a JSON list of
/// `{study, title, summary, seconds}` and writes CSV curves, figures,
/// `config.json`, `results.json` and `report.html` into `out`.
#[pyfunction]
#[pyo3(signature = (which, quick, out, steps=None, lr=None, init_std=None, batch_size=None, eval_every=None, seed=None, train_limit=None, test_limit=None, mnist=None, quiet=true, overwrite=false))]
#[allow(clippy::too_many_arguments)]
pub fn run_experiment(
    py: Python<'_>,
    which: &str,
    quick: bool,
    out: PathBuf,
    steps: Option<usize>,
    lr: Option<f64>,
    init_std: Option<f64>,
    batch_size: Option<usize>,
    eval_every: Option<usize>,
    seed: Option<u64>,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
    mnist: Option<PathBuf>,
    quiet: bool,
    overwrite: bool,
) -> PyResult<String> {
    let mut c = if quick {
        ExperimentConfig::quick()
    } else {
        ExperimentConfig::default()
    };
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = $f { c.$f = v; })* };
    }
    set!(
        steps,
        lr,
        init_std,
        batch_size,
        eval_every,
        seed,
        train_limit,
        test_limit
    );
    c.mnist_dir = mnist;
    let studies = studies(which).map_err(to_py)?;
    let command = format!("python: bpnet.experiment ({which}, quick={quick})");
    py.detach(|| run(&c, &studies, &out, &command, quiet, overwrite))
        .map_err(to_py)
}

fn run(
    cfg: &ExperimentConfig,
    studies: &[Study],
    out: &Path,
    command: &str,
    quiet: bool,
    overwrite: bool,
) -> Result<String> {
    cfg.validate()?;
    check_outputs(cfg, studies, out, overwrite)?;
    let data = Mnist::load(cfg)?;
    let mut log = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    let outputs = experiment::run(studies, cfg, &data, out, command, &mut log)?;
    let list: Vec<serde_json::Value> = outputs
        .iter()
        .map(|o| json!({"study": o.study.name(), "title": o.section.title, "summary": o.summary, "seconds": o.seconds}))
        .collect();
    Ok(serde_json::Value::Array(list).to_string())
}

fn studies(which: &str) -> Result<Vec<Study>> {
    Ok(match which {
        "bn-mnist" | "bn_mnist" | "paper" => vec![Study::Paper],
        "lr" => vec![Study::LearningRate],
        "depth" => vec![Study::Depth],
        "population" => vec![Study::Population],
        "all" => Study::ALL.to_vec(),
        other => {
            return Err(Error::config(
                "experiment",
                format!("unknown '{other}' (expected bn-mnist, lr, depth, population, all)"),
            ));
        }
    })
}

/// The files of `out` the studies write, checked as `bpnet experiment`
/// checks them (an unrelated existing file is not replaced without `overwrite`).
fn check_outputs(cfg: &ExperimentConfig, studies: &[Study], out: &Path, overwrite: bool) -> Result<()> {
    let mut names: Vec<String> = studies.iter().flat_map(|s| s.files()).collect();
    names.extend(experiment::REPORT_FILES.iter().map(|f| f.to_string()));
    names.push(experiment::MARKER.into());
    let files: Vec<(&str, Kind)> = names.iter().map(|n| (n.as_str(), experiment::output_kind(n))).collect();
    let mut plan = OutputPlan::new(overwrite);
    plan.input(
        "mnist",
        &cfg.mnist_dir.clone().unwrap_or_else(bpnet::data::bundled_mnist_dir),
    );
    plan.folder("out", out, None, &files);
    plan.check()
}
