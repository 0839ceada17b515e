//! The inputs and outputs of `bpnet train`, checked before any data is read
//! (see `bpnet::io::OutputPlan` for the rules). The other commands build
//! their smaller plans where they run.

use bpnet::Result;
use bpnet::io::{Kind, OutputPlan};
use bpnet::workflow::{TrainConfig, data_path};
use std::path::Path;

/// Every file `bpnet train` with `cfg` reads and writes: `--data`, `--test`,
/// `--config` and `--resume` in; the model, its history, checkpoint,
/// diagnostics and plots out.
pub fn check_train(cfg: &TrainConfig, config: Option<&Path>, resume: Option<&Path>, overwrite: bool) -> Result<()> {
    let mut plan = OutputPlan::new(overwrite);
    plan.input("--data", &data_path(&cfg.data));
    if !cfg.test.is_empty() {
        plan.input("--test", &data_path(&cfg.test));
    }
    if let Some(c) = config {
        plan.input_once("--config", c);
    }
    if let Some(r) = resume {
        plan.input("--resume", r);
    }
    let out = Path::new(&cfg.out);
    let of = |what: &str| format!("{what} of --out {}", out.display());
    plan.output("--out", out, Kind::Model);
    let (history_csv, history_json) = super::history::paths(out);
    let history = Kind::csv("a training history", &[super::history::CSV_HEADER]);
    plan.derived("--out", &history_csv, &of("the history"), history);
    plan.derived("--out", &history_json, &of("the history"), Kind::json(&["best_epoch"]));
    if cfg.checkpoint_every > 0 || cfg.checkpoint_steps > 0 {
        let ckpt = super::train::checkpoint_path(out);
        plan.derived("--out", &ckpt, &of("the checkpoint"), Kind::Checkpoint);
    }
    if cfg.diagnostics {
        let csv = super::diagnostics::csv_path(out);
        let kind = Kind::csv("diagnostics", &[super::diagnostics::CSV_HEADER]);
        plan.derived("--out", &csv, &of("the diagnostics"), kind);
    }
    if cfg.plot {
        let dir = super::plot::default_dir(&history_json);
        let files = super::plot::figure_files(cfg.diagnostics);
        plan.folder("--out", &dir, Some(&of("the plots")), &files);
    }
    plan.check()
}
